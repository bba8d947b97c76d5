# shellcheck shell=sh
# The start of every host session (after the assignments of NONCE, STATE, LOCK_OWNER,
# LOCK_WAIT and STATE_CHECK that src/remote/mod.rs prepends, and mark.sh): say `start`;
# create the state folder, or refuse one that is a symlink, not a folder or not the session
# user's (builtins only); take the host lock on the folder itself (`flock` on a read-only fd
# of it: nothing is created or written inside before its mode is known), waiting up to
# LOCK_WAIT seconds, then exit 75 naming the holder; say `ready`.
# STATE_CHECK=look (converge --check: the client checks, and the run writes nothing): a
# missing folder is not created and there is no lock (NOSTATE=1: the lock keeps a probe from
# reading a half-applied host, and a host with no folder has seen no run that could hold it;
# the body writes and deletes nothing then); an existing one is locked as with `client`.
# The folder's mode (exactly 0700: the lock note, pending handlers and staged payloads live
# there) is checked by `find`: here when STATE_CHECK=host, which then also records this run
# as the holder (`hold`); with STATE_CHECK=client the caller's probe prints the folder's
# record, its client refuses the host unless it is 0700, and the body calls `hold` only when
# the client's next frame says to go on. No-op path: `flock` is the only process started here.
set -u
nl='
'
# refuse_state: the state folder is not ours with mode 0700: stop, having written nothing.
refuse_state() {
  mark error "refusing state folder $STATE (it must be a folder of the session user, root, with mode 0700: fix or remove it)"
  exit 70
}
# state_checked: the folder's mode is exactly 0700, and no folder above it can be written by
# a user other than root or the session user, who could swap it after this check (a sticky
# one, /tmp, may be, where the next folder on the way is root's or the session user's); one
# `find` (src/plan/trust.rs says the same for the client's check), or the session stops.
state_checked() {
  case $STATE in
    /*) ;;
    *)
      mark error "refusing state folder $STATE: not an absolute path (the folders above it cannot be checked): use an absolute state_dir"
      exit 70
      ;;
  esac
  set -- "$STATE"
  a=${STATE%/*}
  while [ -n "$a" ]; do
    set -- "$a" "$@"
    a=${a%/*}
  done
  set -- / "$@"
  r=$(find "$@" -maxdepth 0 -printf '%U %m %y\n' 2> /dev/null)
  case ${r##*"$nl"} in *' 700 d') ;; *) refuse_state ;; esac
  me=${r##*"$nl"}
  me=${me%% *}
  prev=''
  for p in "$@"; do
    l=${r%%"$nl"*}
    r=${r#*"$nl"}
    if [ -n "$prev" ]; then
      u=${prev%% *}
      m=${prev#* }
      t=${m#* }
      m=${m%% *}
      ok=''
      case $u in 0 | "$me") ok=1 ;; esac
      case $m in
        *[2367]? | *[2367])
          case $m in
            [1357]???) case ${l%% *} in 0 | "$me") ;; *) ok='' ;; esac ;;
            *) ok='' ;;
          esac
          ;;
      esac
      { [ "$t" = d ] && [ -n "$ok" ]; } || exposed "$q" "$u" "$m"
    fi
    prev=$l
    q=$p
  done
}
# exposed FOLDER UID MODE: a folder above the state folder that others can write: stop.
exposed() {
  mark error "refusing state folder $STATE: folder $1 (owner uid $2, mode $3) can be written by a user other than root, who could swap the state folder (make it root's and not group/other-writable: chown root: $1; chmod go-w $1, or choose a state_dir below root-owned folders)"
  exit 70
}
# hold: record this run as the lock holder (emptied again on exit, by the shell). Only once
# the folder is known to be ours with mode 0700: nothing is written through a planted link.
hold() {
  printf '%s, host pid %s\n' "$LOCK_OWNER" "$$" > "$STATE/lock.owner"
  trap ': > "$STATE/lock.owner"' EXIT
}
# holder_state: what this host knows of the session named by the lock note ($note, which
# `hold` ends with `host pid N`), in $hs: `gone` when that process no longer runs as a shell
# (what it started holds the lock), `orphan` when it runs with no sshd above it (the
# connection of the client that took the lock is gone), else empty (it runs under sshd, or
# the note names no pid: another run's own words, as the confirm watchdog's). Builtins only.
holder_state() {
  hs=''
  p=${note##*, host pid }
  case $p in '' | *[!0-9]*) return ;; esac
  read -r l 2> /dev/null < "/proc/$p/stat" || { hs=gone; return; }
  case $l in *' (sh) '[!ZX]*) ;; *)
    hs=gone
    return
    ;;
  esac
  while :; do
    c=${l#*\(}
    case ${c%\)*} in sshd | sshd-session) return ;; esac
    l=${l##*) }
    # shellcheck disable=SC2086 # the fields of /proc/PID/stat after the name
    set -- $l
    if [ "$2" -le 1 ] || ! read -r l 2> /dev/null < "/proc/$2/stat"; then
      hs=orphan
      return
    fi
  done
}
mark start
NOSTATE=''
if [ ! -e "$STATE" ] && [ ! -L "$STATE" ]; then
  if [ "$STATE_CHECK" = look ]; then
    NOSTATE=1
  else
    # shellcheck disable=SC2174 # only the state folder itself must be 0700
    mkdir -p -m 0700 -- "$STATE" || { mark error "cannot create $STATE"; exit 70; }
  fi
elif [ -L "$STATE" ] || [ ! -d "$STATE" ] || [ ! -O "$STATE" ]; then
  refuse_state
fi
[ "$STATE_CHECK" = look ] && STATE_CHECK=client
if [ -z "$NOSTATE" ]; then
  [ "$STATE_CHECK" = client ] || state_checked
  exec 9< "$STATE" || { mark error "cannot open $STATE"; exit 70; }
  if ! flock -n 9; then
    # The holder's note is read only from a folder known to be ours with mode 0700.
    [ "$STATE_CHECK" = host ] || state_checked
    note=$(cat "$STATE/lock.owner" 2>/dev/null)
    holder_state
    mark waiting "$note" ${hs:+"$hs"}
    if ! flock -w "$LOCK_WAIT" 9; then
      note=$(cat "$STATE/lock.owner" 2>/dev/null)
      holder_state
      mark locked "$note" ${hs:+"$hs"}
      exit 75
    fi
  fi
fi
trap 'exit 129' HUP
trap 'exit 141' PIPE
trap 'exit 143' TERM
[ "$STATE_CHECK" = client ] || hold
mark ready
