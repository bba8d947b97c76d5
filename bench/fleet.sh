#!/usr/bin/env bash
# A fleet of N independent OpenSSH sshd daemons on 127.0.0.1 (ports 22001..22000+N), for
# benchmarks. Sourced by the bench scripts: fleet_up N DIR, fleet_down DIR.
# Only loopback is ever used.
#
# A second kind, for what must not run on this machine itself (a host firewall): fleet_up_netns
# N DIR, fleet_down_netns DIR. Host i is network namespace mcbench-I with its own sshd on port
# 22, reached over a veth pair (mcbenchI here, eth0 there) with a /30 of 198.18.64.0/18
# (fleet_netns_addr; the lab uses 198.18.0-1.x, the integration tests 198.19.x).
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

# Host i's two addresses in the netns fleet: "HERE THERE" (this machine's side, the host's).
fleet_netns_addr() {
  local off=$((4 * $1))
  echo "198.18.$((64 + off / 256)).$((off % 256 + 1)) 198.18.$((64 + off / 256)).$((off % 256 + 2))"
}

fleet_up_netns() {
  local n=$1 dir i here there h ns
  dir=$(realpath -m "$2")
  if [ "$n" -lt 1 ] || [ "$n" -gt 4095 ]; then echo "fleet_up_netns: N must be 1..4095" >&2; return 2; fi
  fleet_down_netns "$dir" # what a crashed run left
  mkdir -p "$dir/hosts" /run/sshd
  [ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519"
  : > "$dir/known_hosts"
  for i in $(seq 1 "$n"); do
    read -r here there < <(fleet_netns_addr "$i")
    ns=mcbench-$i h="$dir/hosts/h$i"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add "mcbench$i" type veth peer name eth0 netns "$ns"
    ip addr add "$here/30" dev "mcbench$i"
    ip link set "mcbench$i" up
    ip -n "$ns" addr add "$there/30" dev eth0
    ip -n "$ns" link set eth0 up
    mkdir -p "$h"
    [ -f "$h/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$h/host_key"
    cp "$dir/id_ed25519.pub" "$h/authorized_keys"
    cat > "$h/sshd_config" <<CFG
Port 22
ListenAddress $there
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
    echo "$there $(cut -d' ' -f1-2 "$h/host_key.pub")" >> "$dir/known_hosts"
  done
  : > "$dir/empty"
  # As fleet_up: root's ~/.bashrc is empty for the daemons. `ip netns exec` unshares a mount
  # namespace of its own, a copy of this one: the bind mount stays.
  # shellcheck disable=SC2016
  unshare --mount --propagation private bash -c '
    set -e
    [ ! -f ~root/.bashrc ] || mount --bind "$1/empty" ~root/.bashrc
    for i in $(seq 1 "$2"); do
      ip netns exec "mcbench-$i" /usr/sbin/sshd -f "$1/hosts/h$i/sshd_config" -E "$1/hosts/h$i/sshd.log"
    done
  ' fleet "$dir" "$n"
  for i in $(seq 1 "$n"); do
    read -r here there < <(fleet_netns_addr "$i")
    for _ in $(seq 1 100); do
      (exec 3<>"/dev/tcp/$there/22") 2>/dev/null && break
      sleep 0.05
    done
  done
}

# Every process in the mcbench-* namespaces (sshd, its sessions, a firewall watchdog), then
# the namespaces and the veths. Only names this file creates are touched.
fleet_down_netns() {
  local dir=$1 ns pid link
  for ns in $(ip netns list | awk '{print $1}' | grep '^mcbench-[0-9]*$' || true); do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  for link in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^mcbench[0-9]*$' || true); do
    ip link del "$link" 2>/dev/null || true
  done
  rm -f "$dir"/hosts/h*/sshd.pid
}
