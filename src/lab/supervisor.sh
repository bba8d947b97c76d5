#!/usr/bin/env bash
# Per-host supervisor (embedded in microctl): puts itself in the host's own cgroups, then runs
# systemd-nspawn booting the host, again after an in-container reboot (exit 133).
main() {
  local name=$1 LAB=${MICROCTL_LAB_DIR:?} h c rc fd
  # Descriptors inherited from whoever ran `lab up` (e.g. the fd of a caller's
  # `flock /tmp/microctl-lab.lock`) must not live as long as the lab: that lock would stay
  # held by the containers.
  for fd in "/proc/$$/fd/"*; do
    fd=${fd##*/}
    case $fd in 0 | 1 | 2 | 255) ;; *) eval "exec $fd>&-" 2>/dev/null || true ;; esac
  done
  h="$LAB/hosts/$name"
  for c in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
    if [ -d "$c" ] && { [ -f "$c/cgroup.procs" ] || [ -f "$c/tasks" ]; }; then
      mkdir -p "$c/lab/$name" && echo $$ > "$c/lab/$name/cgroup.procs" 2>/dev/null || true
      [ "$c" = /sys/fs/cgroup/unified ] && break
    fi
  done
  echo $$ > "$h/supervisor.pid"
  while :; do
    for f in $(find /sys/fs/cgroup -path "*/lab/$name/payload*" -name cgroup.procs 2>/dev/null); do
      while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done < "$f"
    done
    TERM=dumb systemd-nspawn --quiet --boot --register=no --keep-unit --machine="$name" --hostname="$name" \
      --directory="$h/root" --private-network --network-namespace-path="/run/netns/lab-$name" \
      --resolv-conf=off --timezone=off --link-journal=no --console=read-only &
    echo $! > "$h/nspawn.pid"
    wait $!
    rc=$?
    [ "$rc" = 133 ] || break
  done
  rm -f "$h/nspawn.pid" "$h/supervisor.pid"
}
main "$@"
