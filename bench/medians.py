#!/usr/bin/env python3
"""Medians of interleaved benchmark runs (bench/noop-ab.sh, bench/firewall-noop.sh): reads
lines `NAME WALL USER SYSTEM` (/usr/bin/time -f "NAME %e %U %S"), prints every run of each
name, its median wall time, its ratio to the median of `floor` and the controller's CPU."""
import statistics
import sys

runs = {}
for line in open(sys.argv[1]):
    name, wall, user, system = line.split()
    runs.setdefault(name, []).append((float(wall), float(user) + float(system)))
floor = statistics.median(w for w, _ in runs["floor"])
for name, rs in runs.items():
    wall = statistics.median(w for w, _ in rs)
    print(f"{name}: " + " ".join(f"{w:.3f}" for w, _ in rs) + f" | median {wall:.3f} s, {wall / floor:.2f}x the floor,"
          f" controller CPU {statistics.median(c for _, c in rs):.2f} s")
