#!/usr/bin/env bash
# Redeploy benchmark on the lab (as root; takes the lab lock): `microctl deploy app` of the
# example app with a fresh venv (the cached environments removed first) against a redeploy
# whose requirements did not change (the venv reused), RUNS times each; prints every run and
# the medians. The lab stays up afterwards only if it was up before.
# Usage: bash bench/redeploy.sh [RUNS]       (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
cargo build --release --quiet
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/microctl"
lab=${MICROCTL_LAB_DIR:-/var/lib/microctl-lab}
exec 8>/tmp/microctl-lab.lock
flock 8
was_up=0
"$bin" lab status >/dev/null 2>&1 && was_up=1
"$bin" lab up 8>&- >/dev/null
inv="$lab/inventory.toml"
"$bin" -i "$inv" converge >/dev/null
seconds() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); python3 -c "print($t1 - $t0)"; }
fresh=() reused=()
for i in $(seq "$runs"); do
  "$bin" -i "$inv" exec app --sudo -- rm -rf /srv/microblog/shared/cache >/dev/null 2>&1
  f=$(seconds "$bin" -i "$inv" deploy app)
  r=$(seconds "$bin" -i "$inv" deploy app)
  printf 'run %d: fresh venv %.1f s, unchanged requirements %.1f s\n' "$i" "$f" "$r"
  fresh+=("$f") reused+=("$r")
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
mf=$(median "${fresh[@]}") mr=$(median "${reused[@]}")
printf 'median of %d: fresh venv %.1f s, unchanged requirements %.1f s (%.0f%%), microctl %s\n' \
  "$runs" "$mf" "$mr" "$(python3 -c "print(100 * $mr / $mf)")" "$(git rev-parse --short HEAD)"
[ "$was_up" = 1 ] || "$bin" lab down >/dev/null
