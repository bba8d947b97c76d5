#!/usr/bin/env bash
# No-op converge against the exec floor, interleaved: each round times `exec all -- true`
# (with the first binary), then a no-op `converge` of the workload of bench/converge.sh with
# each binary, on one loopback fleet (bench/fleet.sh, ports 22001+). On a shared machine whose
# load changes from minute to minute, interleaving hits every column alike, so two binaries
# (or one and the floor) compare more fairly than in separate invocations. As root:
#   flock /tmp/microctl-bench.lock bash bench/noop-ab.sh N ROUNDS BINARY...
# Prints every run (wall time, the controller's CPU by /usr/bin/time), then the medians and
# their ratio to the floor's. Every timed converge must exit 0 (nothing to change: the first,
# untimed converge made every host right).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: bash bench/noop-ab.sh N ROUNDS BINARY..." >&2; exit 2; }
n=$1 rounds=$2
shift 2
source bench/fleet.sh
fleet=$PWD/bench/work/fleet
trap 'fleet_down "$fleet"' EXIT
fleet_up "$n" "$fleet" > /dev/null
python3 - "$n" "$fleet" "$1" << 'PY'
import sys
sys.path.insert(0, "bench")
import converge as c
c.write_static()
fleet = c.Fleet(int(sys.argv[1]), sys.argv[2])
fleet.wipe()
c.microctl_tool(fleet, sys.argv[3])
PY
inv=$PWD/bench/work/converge/microctl-$n.toml
roles=$PWD/bench/microctl/roles
times=$(mktemp)
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$1" -i "$inv" --roles-dir "$roles" converge --forks "$n" -e upstream_port:=5000 > /dev/null 2>&1
for _ in $(seq "$rounds"); do
  /usr/bin/time -a -o "$times" -f "floor %e %U %S" "$1" -i "$inv" exec all --forks "$n" -- true > /dev/null 2>&1
  for b in "$@"; do
    /usr/bin/time -a -o "$times" -f "$b %e %U %S" \
      "$b" -i "$inv" --roles-dir "$roles" converge --forks "$n" -e upstream_port:=5000 > /dev/null 2>&1
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 bench/medians.py "$times"
rm -f "$times"
