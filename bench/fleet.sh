#!/usr/bin/env bash
# A fleet of N independent OpenSSH sshd daemons on 127.0.0.1 (ports 22001..22000+N), for
# benchmarks. Sourced by the bench scripts: fleet_up N DIR, fleet_down DIR.
# Only loopback is ever used.

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
    /usr/sbin/sshd -f "$h/sshd_config" -E "$h/sshd.log"
    echo "[127.0.0.1]:$port $(cut -d' ' -f1-2 "$h/host_key.pub")" >> "$dir/known_hosts"
  done
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
    kill "$pid" 2>/dev/null || true
    rm -f "$f"
  done
}
