#!/usr/bin/env bash
# Peak memory of one converge that writes one big file to a few hosts (as root):
# `bash bench/memory.sh [--size-mb 200] [--hosts 3] [BINARY...]` starts a loopback sshd fleet
# (bench/fleet.sh; wrap in `flock /tmp/microctl-bench.lock`), writes a random file of SIZE MB
# as a role's static file, and runs a fresh `converge` with each BINARY (default: this
# checkout's --release build) under `/usr/bin/time -v`, printing its maximum resident set.
set -euo pipefail
cd "$(dirname "$0")/.."
size=200 hosts=3 bins=()
while [ $# -gt 0 ]; do
  case "$1" in
    --size-mb) size=$2; shift 2 ;;
    --hosts) hosts=$2; shift 2 ;;
    *) bins+=("$1"); shift ;;
  esac
done
if [ ${#bins[@]} -eq 0 ]; then
  cargo build --release --quiet
  bins=("$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/microctl")
fi
source bench/fleet.sh
work=$PWD/bench/work/memory
fleet=$work/fleet
trap 'fleet_down "$fleet"' EXIT
rm -rf "$work/roots" "$work/roles" "$work/files"
fleet_up "$hosts" "$fleet"
mkdir -p "$work/roles/big" "$work/files"
head -c "$((size * 1024 * 1024))" /dev/urandom > "$work/files/big.bin"
printf '[[file]]\ndest = "{{ root }}/big.bin"\nsrc = "big.bin"\nmode = "0600"\n' > "$work/roles/big/role.toml"
{
  printf '[defaults]\nuser = "root"\nidentity = "%s/id_ed25519"\nknown_hosts = "%s/known_hosts"\n' "$fleet" "$fleet"
  for i in $(seq 1 "$hosts"); do
    printf '[hosts.h%s]\naddress = "127.0.0.1"\nport = %s\nstate_dir = "%s/roots/h%s/state"\nvars = { root = "%s/roots/h%s" }\ngroups = ["big"]\n' \
      "$i" "$((22000 + i))" "$work" "$i" "$work" "$i"
  done
  printf '[groups.big]\nroles = ["big"]\n'
} > "$work/inventory.toml"
for bin in "${bins[@]}"; do
  rm -rf "$work/roots"
  for i in $(seq 1 "$hosts"); do mkdir -p "$work/roots/h$i"; done
  /usr/bin/time -v "$bin" -i "$work/inventory.toml" --roles-dir "$work/roles" converge > "$work/out.txt" 2> "$work/time.txt" || { cat "$work/out.txt" "$work/time.txt"; exit 1; }
  for i in $(seq 1 "$hosts"); do cmp -s "$work/files/big.bin" "$work/roots/h$i/big.bin" || { echo "h$i: big.bin differs"; exit 1; }; done
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
  echo "$bin: ${size} MB file to $hosts hosts: peak RSS $((rss / 1024)) MiB, wall $wall"
done
