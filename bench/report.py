#!/usr/bin/env python3
"""Turns converge benchmark results (bench/results/converge-*.json, written by converge.py)
into the markdown tables of BENCHMARKS.md: medians per tool, size and scenario, the
`exec all -- true` floor, the ratios, and the issue's goals checked against them.

Usage: python3 bench/report.py bench/results/converge-A.json [B.json ...]
Later files win where two files measured the same tool, size and scenario.
"""
import json
import statistics
import sys

TOOLS = ("microctl", "ansible", "pyinfra")


def load(paths):
    cells = {}
    for path in paths:
        doc = json.load(open(path))
        runs = {}
        for r in doc["results"]:
            runs.setdefault((r["tool"], r["n"], r["scenario"]), []).append(r)
        cells.update(runs)
    return cells


def median(rs, key):
    return statistics.median(r[key] for r in rs)


def cell(rs):
    if not rs:
        return "-"
    if not all(r["ok"] for r in rs):
        bad = sum(not r["ok"] for r in rs)
        return f"FAILED ({bad} of {len(rs)})"
    runs = "" if len(rs) >= 3 else f" ({len(rs)} run{'s' if len(rs) > 1 else ''})"
    return f"{median(rs, 'seconds'):.2f} s, {median(rs, 'rss') / 2**20:.0f} MiB{runs}"


def seconds(cells, tool, n, scenario):
    rs = cells.get((tool, n, scenario), [])
    return median(rs, "seconds") if rs and all(r["ok"] for r in rs) else None


def ratio(a, b):
    return f"{a / b:.0f}x" if a and b and a / b >= 10 else (f"{a / b:.1f}x" if a and b else "-")


def main(paths):
    cells = load(paths)
    sizes = sorted({n for (_, n, _) in cells})
    print("| hosts | scenario | microctl | ansible-core | pyinfra | ansible / microctl | pyinfra / microctl | microctl / exec floor |")
    print("|---|---|---|---|---|---|---|---|")
    for n in sizes:
        floor = seconds(cells, "exec", n, "floor")
        for scenario in ("fresh", "noop", "one"):
            m = seconds(cells, "microctl", n, scenario)
            row = [cell(cells.get((t, n, scenario), [])) for t in TOOLS]
            row += [ratio(seconds(cells, "ansible", n, scenario), m), ratio(seconds(cells, "pyinfra", n, scenario), m), ratio(m, floor)]
            print(f"| {n} | {scenario} | " + " | ".join(row) + " |")
        print(f"| {n} | exec floor | {cell(cells.get(('exec', n, 'floor'), []))} | | | | | |")

    print("\nGoals:")
    m50 = {s: seconds(cells, "microctl", 50, s) for s in ("fresh", "noop")}
    checks = [
        ("N=50 noop: ansible-core / microctl >= 20", seconds(cells, "ansible", 50, "noop"), m50["noop"], 20, True),
        ("N=50 noop: pyinfra / microctl >= 5", seconds(cells, "pyinfra", 50, "noop"), m50["noop"], 5, True),
        ("N=50 noop: microctl / exec floor <= 1.5", m50["noop"], seconds(cells, "exec", 50, "floor"), 1.5, False),
        ("N=50 fresh: ansible-core / microctl >= 10", seconds(cells, "ansible", 50, "fresh"), m50["fresh"], 10, True),
    ]
    for name, a, b, goal, at_least in checks:
        if a is None or b is None:
            print(f"- {name}: not measured")
            continue
        met = a / b >= goal if at_least else a / b <= goal
        print(f"- {name}: {a / b:.2f} ({'met' if met else 'MISSED'})")
    peaks = [r["rss"] for s in ("fresh", "noop", "one") for r in cells.get(("microctl", 100, s), [])]
    if peaks:
        print(f"- N=100: microctl peak memory < 64 MiB: highest of {len(peaks)} runs {max(peaks) / 2**20:.1f} MiB "
              f"({'met' if max(peaks) < 64 * 2**20 else 'MISSED'})")
    else:
        print("- N=100 microctl peak memory: not measured")


if __name__ == "__main__":
    main(sys.argv[1:])
