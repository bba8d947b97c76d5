#!/usr/bin/env bash
# A fleet of N independent OpenSSH sshd daemons on 127.0.0.1 (ports 22001..22000+N), for
# benchmarks. Sourced by the bench scripts: fleet_up N DIR, fleet_down DIR.
# Only loopback is ever used.
#
# The daemons run in a private mount namespace where root's ~/.bashrc is an empty file: sshd
# runs every command through bash, which reads ~/.bashrc, and a controller's own shell setup
# (pyenv init on the machine these numbers come from: ~100 ms of CPU per command) would
# otherwise be charged to every command of every tool, as no fresh host would.

fleet_up() {
  local n=$1 dir i port
  dir=$(realpath -m "$2")
  mkdir -p "$dir/hosts" /run/sshd
  [ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519"
  : > "$dir/known_hosts"
  for i in $(seq 1 "$n"); do
    port=$((22000 + i))
    local h="$dir/hosts/h$i"
    mkdir -p "$h"
    [ -f "$h/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$h/host_key"
    cp "$dir/id_ed25519.pub" "$h/authorized_keys"
    cat > "$h/sshd_config" <<CFG
Port $port
ListenAddress 127.0.0.1
HostKey $h/host_key
PidFile $h/sshd.pid
AuthorizedKeysFile $h/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxStartups 500:30:1000
MaxSessions 20
LogLevel ERROR
Subsystem sftp internal-sftp
CFG
    echo "[127.0.0.1]:$port $(cut -d' ' -f1-2 "$h/host_key.pub")" >> "$dir/known_hosts"
  done
  : > "$dir/empty"
  # shellcheck disable=SC2016
  unshare --mount --propagation private bash -c '
    set -e
    [ ! -f ~root/.bashrc ] || mount --bind "$1/empty" ~root/.bashrc
    for i in $(seq 1 "$2"); do /usr/sbin/sshd -f "$1/hosts/h$i/sshd_config" -E "$1/hosts/h$i/sshd.log"; done
  ' fleet "$dir" "$n"
  # Wait until every daemon accepts connections.
  for i in $(seq 1 "$n"); do
    for _ in $(seq 1 100); do
      (exec 3<>/dev/tcp/127.0.0.1/$((22000 + i))) 2>/dev/null && break
      sleep 0.05
    done
  done
}

fleet_down() {
  local dir=$1 pid f
  for f in "$dir"/hosts/h*/sshd.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    pkill -P "$pid" 2>/dev/null || true # its open sessions
    kill "$pid" 2>/dev/null || true
    rm -f "$f"
  done
}
