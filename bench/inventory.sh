#!/usr/bin/env bash
# Inventory scale benchmark: generates inventories of N hosts (default 2000 5000 10000 20000;
# 100 groups, 100 jump hosts behind one bastion, so every target has a 3-hop chain, per-host
# vars) and times, with hyperfine (medians), the commands that read the whole inventory without
# SSH: `inventory`, `inventory PATTERN` (host selection), `check` (renders one template per host).
# Prints a markdown table and ns per host, so linear growth is visible.
# Usage: bash bench/inventory.sh [N...]
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(2000 5000 10000 20000)
command -v hyperfine >/dev/null || { apt-get update -qq; apt-get install -y -qq hyperfine >/dev/null; }
cargo build --release --quiet
bin=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/microctl
work=bench/work/inventory
mkdir -p "$work/roles/scale/templates"
printf '[[file]]\ndest = "/etc/scale.conf"\ntemplate = "scale.conf.j2"\n' > "$work/roles/scale/role.toml"
printf 'host {{ host.name }} rack {{ rack }} since {{ since }}\n' > "$work/roles/scale/templates/scale.conf.j2"

generate() { # N FILE
  awk -v n="$1" 'BEGIN {
    printf "[defaults]\nuser = \"deploy\"\nidentity = \"~/.ssh/id_ed25519\"\nvars = { since = 2026-01-01, env = \"bench\" }\n\n"
    printf "[hosts.bastion]\naddress = \"198.18.0.1\"\n\n"
    for (j = 1; j <= 100; j++) printf "[hosts.jump%03d]\naddress = \"10.%d.0.1\"\nvia = \"bastion\"\n\n", j, j
    for (i = 1; i <= n; i++) {
      j = (i % 100) + 1
      printf "[hosts.node%05d]\naddress = \"10.%d.%d.%d\"\nvia = \"jump%03d\"\ngroups = [\"g%03d\"]\nvars = { rack = %d }\n\n", i, j, int(i / 250) % 250, (i % 250) + 1, j, j, i % 40
    }
    for (g = 1; g <= 100; g++) printf "[groups.g%03d]\nroles = [\"scale\"]\nvars = { tier = \"t%d\" }\n\n", g, g % 7
  }' > "$2"
}

echo "Median wall time (mean CPU time, user + system) of 10 runs each."
echo "| hosts | file | inventory | inventory 'g00*,!node0000*' | check | check CPU per host |"
echo "|---|---|---|---|---|---|"
for n in "${sizes[@]}"; do
  inv="$work/inventory-$n.toml"
  generate "$n" "$inv"
  size=$(du -k "$inv" | cut -f1)
  hyperfine -N --style none --warmup 1 --runs 10 --export-json "$work/inventory-$n.json" \
    -n inventory "$bin -i $inv inventory" \
    -n select "$bin -i $inv inventory 'g00*,!node0000*'" \
    -n check "$bin -i $inv --roles-dir $work/roles check" >/dev/null
  python3 - "$work/inventory-$n.json" "$n" "$size" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
n = int(sys.argv[2])
cpu = lambda k: r[k]["user"] + r[k]["system"]
cell = lambda k: f"{r[k]['median'] * 1000:.0f} ms ({cpu(k) * 1000:.0f} ms)"
print(f"| {n} | {int(sys.argv[3]) / 1024:.1f} MiB | {cell('inventory')} | {cell('select')} | {cell('check')} "
      f"| {cpu('check') / n * 1e6:.1f} µs |")
PY
done
