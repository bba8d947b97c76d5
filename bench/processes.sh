#!/usr/bin/env bash
# Processes one host starts for the benchmark workload (bench/microctl/roles/bench), fresh
# then noop, counted with `strace -f -e trace=process` attached to one loopback sshd
# (bench/fleet.sh, port 22001: wrap in `flock /tmp/microctl-bench.lock`). As root:
#   bash bench/processes.sh BINARY...
# Counts include sshd's own session process and the login shell.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/fleet.sh
work=$PWD/bench/work/processes
rm -rf "$work"; mkdir -p "$work"
fleet=$work/fleet
trap 'kill $st 2>/dev/null || true; fleet_down "$fleet"' EXIT
fleet_up 1 "$fleet"
# The workload's static file (bench/converge.sh and bench/cost.sh write it too).
python3 -c 'import sys; sys.path.insert(0, "bench"); import converge; converge.write_static()'
pid=$(cat "$fleet/hosts/h1/sshd.pid")
{
  printf '[defaults]\nuser = "root"\nidentity = "%s/id_ed25519"\nknown_hosts = "%s/known_hosts"\nvars = { workers = 2, upstream_port = 5000, all_hosts = ["127.0.0.1"] }\n' "$fleet" "$fleet"
  printf '[hosts.h1]\naddress = "127.0.0.1"\nport = 22001\ngroups = ["bench"]\nstate_dir = "%s/root/state"\nvars = { root = "%s/root", inventory_name = "h1", private_address = "127.0.0.1" }\n[groups.bench]\nroles = ["bench"]\n' "$work" "$work"
} > "$work/inventory.toml"
for bin in "$@"; do
  rm -rf "$work/root"; mkdir -p "$work/root"
  for scenario in fresh noop; do
    strace -f -qq -e trace=process -o "$work/trace" -p "$pid" & st=$!
    sleep 0.5
    "$bin" -i "$work/inventory.toml" --roles-dir bench/microctl/roles converge > "$work/out" 2>&1 || { cat "$work/out"; exit 1; }
    sleep 0.3; kill $st; wait $st 2>/dev/null || true
    n=$(awk '{print $1}' "$work/trace" | sort -u | wc -l)
    execs=$(grep -c 'execve(' "$work/trace" || true)
    echo "$bin $scenario: $n processes under sshd (incl. sshd's own session processes), $execs execs"
    grep -o 'execve("[^"]*"' "$work/trace" | sort | uniq -c | sort -rn | tr '\n' ';'; echo
  done
done
