#!/usr/bin/env bash
# The test command: installs what the tests need (Debian 12, as root), then runs formatting,
# lint, unit and integration tests. Integration tests start real OpenSSH sshd daemons on
# loopback and in network namespaces they create, so this must run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh must run as root (it starts sshd and creates network namespaces)" >&2
  exit 2
fi
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust 1.89 or newer (rustup) first" >&2
  exit 2
fi

packages=(openssh-server openssh-client gnupg dash iproute2 procps git curl nginx prometheus shellcheck strace inotify-tools groff-base systemd systemd-container debootstrap python3 python3-pip python3-yaml openssl nftables)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's maintainer scripts may start daemons where an init system exists; tests start their own.
mkdir -p /run/sshd

echo "== shellcheck -s sh: host-side shell under src/"
# Everything that runs on a host is POSIX sh. The lab's own scripts (src/lab/, bash, run on this
# machine by `microctl lab`) are not host-side and keep their bash shebang.
find src -name '*.sh' -not -path 'src/lab/*' -print0 | xargs -0 shellcheck -s sh
echo "== shellcheck: the bash scripts of this machine (lab, test, demo, benchmarks)"
find src/lab scripts bench -name '*.sh' -print0 | xargs -0 shellcheck
echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test (with the tests marked #[ignore = \"needs root: run by scripts/test.sh\"])"
# Tests that need root (they play user nobody, or run the lab) are ignored by a plain `cargo
# test`, which lists them as not run; here, as root, they run too. Only benchmarks stay out.
cargo test --locked -- --include-ignored --skip render_bench --test-threads="${TEST_THREADS:-4}"
