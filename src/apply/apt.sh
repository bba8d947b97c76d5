# shellcheck shell=sh
# Waiting for dpkg's and apt's locks before a package step (after src/shell/mark.sh and
# apply.sh). On a fresh cloud VM, cloud-init and unattended-upgrades hold them for minutes
# after boot; apt-get alone would fail at once. The holder is named from /proc/locks (the
# kernel's list of held locks: `ID: KIND ADVISORY MODE PID MAJ:MIN:INODE START END`, a
# waiting request's line has `->` where KIND is), matched to the lock files by inode.
APT_LOCKS="/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock"
APT0=$APT
# apt_holder: $a_h is "PID NAME" of a process holding one of $APT_LOCKS, or empty; $a_i holds
# the lock files' inodes (set by apt_wait).
apt_holder() {
  a_h=''
  [ -n "$a_i" ] && [ -r /proc/locks ] || return 0
  while read -r _ a_kind _ _ a_pid a_dev _; do
    case $a_kind in POSIX | FLOCK | OFDLCK) ;; *) continue ;; esac
    case " $a_i " in *" ${a_dev##*:} "*) ;; *) continue ;; esac
    a_n='another process'
    case $a_pid in
      '' | *[!0-9]* | 0) ;;
      *)
        a_n='?'
        [ -r "/proc/$a_pid/comm" ] && read -r a_n < "/proc/$a_pid/comm"
        case $a_n in *[!A-Za-z0-9._+:-]* | '') a_n='?' ;; esac
        a_n="$a_pid $a_n"
        ;;
    esac
    a_h=$a_n
    return 0
  done < /proc/locks
}
# apt_wait ID SECS: wait while a process holds one of the locks, at most SECS seconds, saying
# who once per holder (`apt-wait` marker: the client shows it and restarts the step's
# timeout); then apt-get waits itself for what is left (DPkg::Lock::Timeout), for a holder
# that comes between this check and apt's lock. Past SECS the step fails naming the holder.
apt_wait() {
  # shellcheck disable=SC2086 # the list of paths, split on purpose
  a_i=$(stat --printf '%i ' -- $APT_LOCKS 2> /dev/null)
  a_s=0
  a_said=''
  while apt_holder && [ -n "$a_h" ]; do
    if [ "$a_s" -ge "$2" ]; then
      echo "dpkg's lock is still held by $a_h after ${2}s (the host's apt_lock_timeout): let it finish, or raise apt_lock_timeout" > "$W/step.out"
      return 1
    fi
    [ "$a_said" = "$a_h" ] || mark apt-wait "$a_h"
    a_said=$a_h
    sleep 1
    a_s=$((a_s + 1))
  done
  APT="$APT0 -o DPkg::Lock::Timeout=$(($2 - a_s))"
}
# apt_update: `apt-get update`, again after 2 s and after 4 s more when it fails (a mirror
# mid-sync, a fresh VM's network still coming up); apt retries each download itself too
# (Acquire::Retries, with its own backoff).
apt_update() {
  $APT update && return 0
  sleep 2
  $APT update && return 0
  sleep 4
  $APT update
}
