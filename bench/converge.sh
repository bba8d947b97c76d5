#!/usr/bin/env bash
# Converge benchmark entry point (as root): microctl vs the latest ansible-core and pyinfra on a
# loopback sshd fleet, same workload, correctness checked after every run.
# Usage: bash bench/converge.sh [--sizes 10,50,100] [--runs 3] [--tools microctl,ansible,pyinfra]
set -euo pipefail
cd "$(dirname "$0")/.."
for p in openssh-server openssh-client python3-venv; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || { apt-get update -qq; apt-get install -y -qq "$p" >/dev/null; }
done
if [ ! -x bench/.venv/bin/ansible-playbook ] || [ ! -x bench/.venv/bin/pyinfra ]; then
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install --quiet --upgrade ansible-core pyinfra
fi
versions="microctl $(git rev-parse --short HEAD), $(bench/.venv/bin/ansible-playbook --version | head -1), pyinfra $(bench/.venv/bin/pyinfra --version 2>&1 | tail -1)"
echo "versions: $versions"
cargo build --release --quiet
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/microctl"
source bench/fleet.sh
sizes=10,50,100
for ((i = 1; i <= $#; i++)); do [ "${!i}" = --sizes ] && { j=$((i + 1)); sizes=${!j}; }; done
max=$(tr ',' '\n' <<<"$sizes" | sort -n | tail -1)
fleet=$PWD/bench/work/fleet
trap 'fleet_down "$fleet"' EXIT
fleet_up "$max" "$fleet"
mkdir -p bench/results
out="bench/results/converge-$(date -u +%Y%m%dT%H%M%SZ).json"
python3 bench/converge.py --microctl "$bin" --venv "$PWD/bench/.venv" --fleet "$fleet" --versions "$versions" \
  --command "bash bench/converge.sh $*" \
  --out "$out" "$@" || status=$?
python3 bench/report.py "$out"
exit "${status:-0}"
