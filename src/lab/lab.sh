#!/usr/bin/env bash
# The lab's system plumbing (embedded in microctl, written to $LAB/scripts/, run as root):
# base image, host overlays, network namespaces, containers. Usage: lab.sh up|down|fresh.
# Addresses only in 198.18.0.0/15; nothing routes out of the lab (see lab-notes.md).
set -euo pipefail
LAB=${MICROCTL_LAB_DIR:?}
MIRROR=${MICROCTL_LAB_MIRROR:-http://deb.debian.org/debian}
# Every host the lab knows; those to run (`lab up --app2` adds the second app host).
ALL_HOSTS="jenkins web monitoring app app2"
HOSTS=${MICROCTL_LAB_HOSTS:-jenkins web monitoring app}

pub_ip() { case $1 in jenkins) echo 198.18.0.10 ;; web) echo 198.18.0.11 ;; monitoring) echo 198.18.0.12 ;; *) echo "" ;; esac; }
priv_ip() { case $1 in web) echo 198.18.1.11 ;; monitoring) echo 198.18.1.12 ;; app) echo 198.18.1.20 ;; app2) echo 198.18.1.21 ;; *) echo "" ;; esac; }
say() { echo "lab: $*" >&2; }

build_base() {
  # The image is rebuilt when its recipe (these scripts, the app's requirements) changes.
  [ -f "$LAB/base/etc/lab-base-id" ] && [ "$(cat "$LAB/base/etc/lab-recipe" 2>/dev/null)" = "${MICROCTL_LAB_RECIPE:-}" ] && return 0
  if mountpoint -q "$LAB/hosts/web/root" 2>/dev/null; then
    say "the lab image recipe changed: run \`microctl lab down\` first, then \`lab up\` rebuilds the image"
    exit 1
  fi
  if [ ! -x "$LAB/rootfs/usr/bin/systemctl" ]; then
    say "debootstrap bookworm from $MIRROR (about a minute)"
    rm -rf "$LAB/rootfs.tmp"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,openssh-server,sudo bookworm "$LAB/rootfs.tmp" "$MIRROR" >"$LAB/debootstrap.log" 2>&1 \
      || { say "debootstrap failed, see $LAB/debootstrap.log"; exit 1; }
    mv "$LAB/rootfs.tmp" "$LAB/rootfs"
  fi
  say "customising the base image (users, sshd, offline apt cache)"
  rm -rf "$LAB/base.tmp"
  cp -a "$LAB/rootfs" "$LAB/base.tmp"
  cp "$LAB/scripts/customize.sh" "$LAB/base.tmp/root/lab-customize.sh"
  say "downloading the app's wheels for the image's Python (3.11, x86_64)"
  rm -rf "$LAB/wheels"
  python3 -m pip download --quiet --only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.11 \
    --implementation cp --abi cp311 --dest "$LAB/wheels" -r "$LAB/scripts/requirements.txt" \
    || { say "pip download failed (python3-pip is needed on this machine)"; exit 1; }
  mkdir -p "$LAB/base.tmp/var/cache/microctl"
  cp -a "$LAB/wheels" "$LAB/base.tmp/var/cache/microctl/wheels"
  systemd-nspawn -q -D "$LAB/base.tmp" --register=no --keep-unit --resolv-conf=copy-host --timezone=off \
    --link-journal=no bash /root/lab-customize.sh >"$LAB/customize.log" 2>&1 \
    || { say "customising failed, see $LAB/customize.log"; exit 1; }
  rm -f "$LAB/base.tmp/root/lab-customize.sh"
  printf '%s' "${MICROCTL_LAB_RECIPE:-}" > "$LAB/base.tmp/etc/lab-recipe"
  rm -rf "$LAB/base"
  mv "$LAB/base.tmp" "$LAB/base"
}

make_host() {
  local name=$1 h="$LAB/hosts/$1"
  mkdir -p "$h/upper" "$h/work" "$h/root"
  if [ -f "$h/base-id" ] && ! cmp -s "$h/base-id" "$LAB/base/etc/lab-base-id"; then
    say "$name: base image changed, resetting the host"
    umount "$h/root" 2>/dev/null || true
    rm -rf "$h/upper" "$h/work"; mkdir -p "$h/upper" "$h/work"
  fi
  mountpoint -q "$h/root" || mount -t overlay "lab-$name" -o "lowerdir=$LAB/base,upperdir=$h/upper,workdir=$h/work" "$h/root"
  [ -f "$h/upper/.lab-initialised" ] && return 0
  local r="$h/root"
  echo "$name" > "$r/etc/hostname"
  cat > "$r/etc/hosts" <<HOSTS
127.0.0.1 localhost
127.0.1.1 $name
198.18.0.1 control
198.18.0.10 jenkins
198.18.0.11 web
198.18.0.12 monitoring
198.18.1.20 app
198.18.1.21 app2
198.18.1.11 web-priv
198.18.1.12 monitoring-priv
HOSTS
  systemd-id128 new > "$r/etc/machine-id"
  ssh-keygen -A -f "$r" >/dev/null
  local uid gid
  uid=$(awk -F: '$1=="ubuntu"{print $3}' "$r/etc/passwd"); gid=$(awk -F: '$1=="ubuntu"{print $4}' "$r/etc/passwd")
  install -d -m 0700 -o "$uid" -g "$gid" "$r/home/ubuntu/.ssh"
  install -m 0600 -o "$uid" -g "$gid" "$LAB/id_ed25519.pub" "$r/home/ubuntu/.ssh/authorized_keys"
  cp "$LAB/base/etc/lab-base-id" "$h/base-id"
  touch "$h/upper/.lab-initialised"
}

net_up() {
  if ! ip link show labbr-pub >/dev/null 2>&1; then
    ip link add labbr-pub type bridge
    ip addr add 198.18.0.1/24 dev labbr-pub
    ip link set labbr-pub up
  fi
  # Guards: the lab range never leaves this machine, and nothing from the lab is forwarded.
  ip route replace unreachable 198.18.0.0/15
  ip rule show pref 1918 | grep -q . || ip rule add pref 1918 iif labbr-pub lookup 1918
  ip route replace unreachable default table 1918
  if ! ip netns list | grep -qw lab-sw; then
    ip netns add lab-sw
    ip -n lab-sw link set lo up
    ip -n lab-sw link add br-priv type bridge
    ip -n lab-sw link set br-priv up
  fi
  local name pub priv ns dev
  for name in $HOSTS; do
    ns=lab-$name
    ip netns list | grep -qw "$ns" || { ip netns add "$ns"; ip -n "$ns" link set lo up; }
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=0
    pub=$(pub_ip "$name"); priv=$(priv_ip "$name")
    if [ -n "$pub" ] && ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
      ip link add "lab-${name}0" type veth peer name eth0 netns "$ns"
      ip link set "lab-${name}0" master labbr-pub up
      ip -n "$ns" addr add "$pub/24" dev eth0
      ip -n "$ns" link set eth0 up
      ip -n "$ns" route replace default via 198.18.0.1
    fi
    dev=eth1; [ -z "$pub" ] && dev=eth0
    if [ -n "$priv" ] && ! ip -n "$ns" link show "$dev" >/dev/null 2>&1; then
      ip link add name "${name}1" netns lab-sw type veth peer name "$dev" netns "$ns"
      ip -n lab-sw link set "${name}1" master br-priv up
      ip -n "$ns" addr add "$priv/24" dev "$dev"
      ip -n "$ns" link set "$dev" up
      [ -z "$pub" ] && ip -n "$ns" route replace default via 198.18.1.11
    fi
  done
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_host() {
  local name=$1 h="$LAB/hosts/$1"
  alive "$h/supervisor.pid" && return 0
  setsid -f bash "$LAB/scripts/supervisor.sh" "$name" </dev/null >"$h/console.log" 2>&1
}

# Every process left in a host's cgroups, SIGKILLed by pid.
kill_cgroup() {
  local name=$1 f pid
  for f in $(find /sys/fs/cgroup -path "*/lab/$name/*" -name cgroup.procs 2>/dev/null); do
    while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done < "$f"
  done
}

stop_host() {
  local name=$1 h="$LAB/hosts/$1" i
  if alive "$h/nspawn.pid"; then
    kill -TERM "$(cat "$h/nspawn.pid")" 2>/dev/null || true   # nspawn turns it into a clean poweroff
    for i in $(seq 1 100); do alive "$h/nspawn.pid" || break; sleep 0.1; done
  fi
  alive "$h/supervisor.pid" && kill -9 "$(cat "$h/supervisor.pid")" 2>/dev/null || true
  kill_cgroup "$name"
  for i in $(seq 1 20); do
    [ -z "$(find /sys/fs/cgroup -path "*/lab/$name/*" -name cgroup.procs -exec cat {} + 2>/dev/null)" ] && break
    sleep 0.1; kill_cgroup "$name"
  done
  find /sys/fs/cgroup -depth -type d -path "*/lab/$name*" -exec rmdir {} \; 2>/dev/null || true
  rm -f "$h/nspawn.pid" "$h/supervisor.pid"
  umount "$h/root" 2>/dev/null || true
  rmdir "/run/systemd/nspawn/propagate/$name" 2>/dev/null || true
}

net_down() {
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep '^lab-' || true); do ip netns del "$ns"; done
  ip link del labbr-pub 2>/dev/null || true
  ip route del unreachable 198.18.0.0/15 2>/dev/null || true
  while ip rule del pref 1918 2>/dev/null; do :; done
  ip route flush table 1918 2>/dev/null || true
}

case ${1:-} in
  up)
    mkdir -p "$LAB/hosts"
    # A host of an earlier `lab up --app2` that this one does not run.
    for n in $ALL_HOSTS; do
      case " $HOSTS " in *" $n "*) ;; *) stop_host "$n" ;; esac
    done
    [ -f "$LAB/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C microctl-lab -f "$LAB/id_ed25519"
    build_base
    for n in $HOSTS; do
      # A host whose container died, or a crashed half-up lab: clean it before starting again.
      alive "$LAB/hosts/$n/supervisor.pid" || kill_cgroup "$n"
      make_host "$n"
    done
    net_up
    for n in $HOSTS; do start_host "$n"; done
    ;;
  down)
    for n in $ALL_HOSTS; do stop_host "$n"; done
    net_down
    find /sys/fs/cgroup -maxdepth 2 -type d -name lab -exec rmdir {} \; 2>/dev/null || true
    ;;
  fresh)
    for n in $ALL_HOSTS; do rm -rf "$LAB/hosts/$n"; done
    ;;
  *) echo "usage: lab.sh up|down|fresh" >&2; exit 2 ;;
esac
