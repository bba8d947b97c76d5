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

# Host H's sshd_config (H: its folder), listening on ADDR:PORT.
fleet_sshd_config() { # PORT ADDR H
  local h=$3
  cat > "$h/sshd_config" <<CFG
Port $1
ListenAddress $2
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
}

# Host I's folder DIR/hosts/hI: host key, authorized_keys, sshd_config for ADDR:PORT, and
# its known_hosts line under NAME.
fleet_host() { # DIR I PORT ADDR NAME
  local h="$1/hosts/h$2"
  mkdir -p "$h"
  [ -f "$h/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$h/host_key"
  cp "$1/id_ed25519.pub" "$h/authorized_keys"
  fleet_sshd_config "$3" "$4" "$h"
  echo "$5 $(cut -d' ' -f1-2 "$h/host_key.pub")" >> "$1/known_hosts"
}

# Starts the N daemons of DIR, in their mcbench-I namespaces when NETNS is yes. `ip netns
# exec` unshares a mount namespace of its own, a copy of this one: the bind mount stays.
fleet_start() { # DIR N NETNS
  : > "$1/empty"
  # shellcheck disable=SC2016
  unshare --mount --propagation private bash -c '
    set -e
    [ ! -f ~root/.bashrc ] || mount --bind "$1/empty" ~root/.bashrc
    for i in $(seq 1 "$2"); do
      run=()
      [ "$3" != yes ] || run=(ip netns exec "mcbench-$i")
      "${run[@]}" /usr/sbin/sshd -f "$1/hosts/h$i/sshd_config" -E "$1/hosts/h$i/sshd.log"
    done
  ' fleet "$@"
}

fleet_up() {
  local n=$1 dir i port
  dir=$(realpath -m "$2")
  mkdir -p "$dir/hosts" /run/sshd
  [ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519"
  : > "$dir/known_hosts"
  for i in $(seq 1 "$n"); do
    port=$((22000 + i))
    fleet_host "$dir" "$i" "$port" 127.0.0.1 "[127.0.0.1]:$port"
  done
  fleet_start "$dir" "$n" no
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
  local n=$1 dir i here there ns
  dir=$(realpath -m "$2")
  if [ "$n" -lt 1 ] || [ "$n" -gt 4095 ]; then echo "fleet_up_netns: N must be 1..4095" >&2; return 2; fi
  fleet_down_netns "$dir" # what a crashed run left
  mkdir -p "$dir/hosts" /run/sshd
  [ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519"
  : > "$dir/known_hosts"
  for i in $(seq 1 "$n"); do
    read -r here there < <(fleet_netns_addr "$i")
    ns=mcbench-$i
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add "mcbench$i" type veth peer name eth0 netns "$ns"
    ip addr add "$here/30" dev "mcbench$i"
    ip link set "mcbench$i" up
    ip -n "$ns" addr add "$there/30" dev eth0
    ip -n "$ns" link set eth0 up
    fleet_host "$dir" "$i" 22 "$there" "$there"
  done
  fleet_start "$dir" "$n" yes
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
