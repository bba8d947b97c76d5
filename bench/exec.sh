#!/usr/bin/env bash
# Benchmark: `microctl exec all -- true` against parallel OpenSSH (one `ssh host true` process
# per host, all at once) on N loopback sshd hosts. Medians over repeated runs (hyperfine).
# Usage (as root): bash bench/exec.sh [N...]      default: 10 50
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(10 50)
for tool in hyperfine sshd; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { apt-get update -qq; apt-get install -y -qq hyperfine openssh-server openssh-client >/dev/null; }
done
cargo build --release --quiet
bin=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/microctl
work=bench/work/exec
source bench/fleet.sh
max=0; for n in "${sizes[@]}"; do [ "$n" -gt "$max" ] && max=$n; done
trap 'fleet_down "$work"' EXIT
fleet_up "$max" "$work"

echo "| hosts | microctl exec all -- true | parallel ssh true | ratio |"
echo "|---|---|---|---|"
for n in "${sizes[@]}"; do
  inv="$work/inventory-$n.toml"
  {
    printf '[defaults]\nuser = "root"\nidentity = "%s"\nknown_hosts = "%s"\n' "$PWD/$work/id_ed25519" "$PWD/$work/known_hosts"
    for i in $(seq 1 "$n"); do printf '[hosts.h%d]\naddress = "127.0.0.1"\nport = %d\n' "$i" $((22000 + i)); done
  } > "$inv"
  ports=$(seq -s ' ' 22001 $((22000 + n)))
  ssh_all="for p in $ports; do ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$work/known_hosts -i $work/id_ed25519 -p \$p root@127.0.0.1 true & done; wait"
  hyperfine --style none --warmup 2 --runs 15 --export-json "$work/exec-$n.json" \
    -n microctl "$bin -i $inv exec all -- true >/dev/null 2>&1" \
    -n openssh "$ssh_all" >/dev/null
  python3 - "$work/exec-$n.json" "$n" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
m, o = r["microctl"]["median"], r["openssh"]["median"]
print(f"| {sys.argv[2]} | {m*1000:.0f} ms | {o*1000:.0f} ms | {o/m:.1f}x faster |")
PY
done
