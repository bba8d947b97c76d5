#!/usr/bin/env bash
# Controller cost per host at scale: `microctl exec all -- true` and a no-op converge of the
# bench workload (bench/microctl/roles/bench, as bench/converge.sh uses it) on N loopback sshd
# hosts (bench/fleet.sh). Per command: median wall time, controller CPU (user + system) and
# peak RSS of the microctl process over RUNS runs, and both divided by N.
# Usage (as root): flock /tmp/microctl-bench.lock bash bench/cost.sh [N...]   default: 500
# Env: RUNS (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(500)
runs=${RUNS:-5}
ulimit -n "$(ulimit -Hn)"  # a connection per host, and then some
cargo build --release --quiet
bin=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/microctl
work=$PWD/bench/work/cost
fleet=$work/fleet
source bench/fleet.sh
max=0; for n in "${sizes[@]}"; do [ "$n" -gt "$max" ] && max=$n; done
# The fleet's ports are fixed (22001..22000+N): refuse to start when one is taken, rather than
# benchmark someone else's daemon.
for port in $(seq 22001 $((22000 + max))); do
  if ss -ltnH "sport = :$port" | grep -q .; then echo "port $port is in use: pick a smaller N" >&2; exit 2; fi
done
trap 'fleet_down "$fleet"' EXIT
fleet_up "$max" "$fleet"
mkdir -p bench/microctl/files
python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 7 + 3) % 251 for i in range(64 * 1024)))' > bench/microctl/files/static.bin

inventory() { # N FILE
  local n=$1 i all
  all=$(for i in $(seq 1 "$n"); do printf '"198.18.%d.%d",' $((2 + i / 250)) $((i % 250 + 1)); done)
  {
    printf '[defaults]\nuser = "root"\nidentity = "%s"\nknown_hosts = "%s"\n' "$fleet/id_ed25519" "$fleet/known_hosts"
    printf 'vars = { workers = 2, upstream_port = 5000, all_hosts = [%s] }\n\n' "${all%,}"
    for i in $(seq 1 "$n"); do
      mkdir -p "$work/roots/h$i"
      printf '[hosts.h%d]\naddress = "127.0.0.1"\nport = %d\ngroups = ["bench"]\nstate_dir = "%s/state"\n' "$i" $((22000 + i)) "$work/roots/h$i"
      printf 'vars = { root = "%s", inventory_name = "h%d", private_address = "198.18.%d.%d" }\n' "$work/roots/h$i" "$i" $((2 + i / 250)) $((i % 250 + 1))
    done
    printf '[groups.bench]\nroles = ["bench"]\n'
  } > "$2"
}

measure() { # LABEL N CMD...: RUNS runs of CMD, prints a table row of medians
  local label=$1 n=$2; shift 2
  local out=$work/times
  : > "$out"
  for _ in $(seq 1 "$runs"); do
    /usr/bin/time -a -o "$out" -f '%e %U %S %M' "$@" > "$work/last.log" 2>&1 || { echo "$label failed:"; tail -20 "$work/last.log"; exit 1; }
  done
  python3 - "$out" "$label" "$n" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip() and l[0].isdigit()]
n = int(sys.argv[3])
wall = statistics.median(r[0] for r in rows)
cpu = statistics.median(r[1] + r[2] for r in rows)
rss = statistics.median(r[3] for r in rows) / 1024
print(f"| {sys.argv[2]} | {n} | {wall:.2f} s | {cpu:.2f} s | {cpu / n * 1000:.1f} ms | {rss:.0f} MiB | {rss / n * 1024:.0f} KiB |")
PY
}

echo "| command | hosts | wall (median) | controller CPU | CPU per host | peak RSS | RSS per host |"
echo "|---|---|---|---|---|---|---|"
for n in "${sizes[@]}"; do
  inv=$work/inventory-$n.toml
  rm -rf "$work/roots"
  inventory "$n" "$inv"
  measure "exec all -- true" "$n" "$bin" -i "$inv" exec all --forks "$n" -- true
  converge=("$bin" -i "$inv" --roles-dir bench/microctl/roles converge --forks "$n")
  "${converge[@]}" > "$work/fresh.log" 2>&1 || { echo "fresh converge failed:"; tail -20 "$work/fresh.log"; exit 1; }
  measure "converge (no-op)" "$n" "${converge[@]}"
done
