#!/usr/bin/env bash
# The main job, on a fresh Debian 12 machine as root (with Rust >= 1.89): install what is
# needed, build microctl, bring up the lab (four real systemd hosts on this machine), converge
# every host, deploy the app, and print the URLs. Rerunning it is safe: every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: the lab creates network namespaces and containers" >&2; exit 2; }
command -v cargo >/dev/null || { echo "cargo not found: install Rust 1.89 or newer (rustup) first" >&2; exit 2; }

packages=(debootstrap systemd-container iproute2 openssh-client python3 python3-pip git curl ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cargo build --release --quiet
bin="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/microctl"
lab=${MICROCTL_LAB_DIR:-/var/lib/microctl-lab}

step() { printf '\n== %s\n' "$*"; }
step "lab up";                 "$bin" lab up
step "converge";               "$bin" -i "$lab/inventory.toml" converge
step "deploy app";             "$bin" -i "$lab/inventory.toml" deploy app
step "jenkins and grafana: rendered and planned only (their apt repositories are not reachable from the lab)"
rc=0; "$bin" -i "$lab/inventory-full.toml" converge --check ci,monitoring || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 3 ] || exit "$rc"

step "done"
echo "site (nginx on web -> gunicorn on app):  http://198.18.0.11/"
echo "Prometheus (monitoring):                 http://198.18.0.12:9090/targets"
echo "a shell on app (through web):            $bin lab ssh app"
echo "tear down:                               $bin lab down"
