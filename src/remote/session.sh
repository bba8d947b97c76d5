# shellcheck shell=sh
# The start of every host session (after the assignments of NONCE, STATE, LOCK_OWNER and
# LOCK_WAIT that src/remote/mod.rs prepends, and mark.sh), run by the bootstrap's `eval`
# (no script file anywhere): say `start`; create the state folder, or refuse one that is not
# ours with mode 0700 (the lock and the staged payload live there); take the host lock
# (waiting up to LOCK_WAIT seconds, then exit 75 naming the holder), record ourselves as the
# holder (emptied again on exit, by the shell), say `ready`. Starts `find` and `flock` only.
set -u
mark start
if [ ! -e "$STATE" ] && [ ! -L "$STATE" ]; then
  # shellcheck disable=SC2174 # only the state folder itself must be 0700
  mkdir -p -m 0700 -- "$STATE" || { mark error "cannot create $STATE"; exit 70; }
elif [ -L "$STATE" ] || [ ! -O "$STATE" ] || [ -z "$(find "$STATE" -maxdepth 0 -type d -perm 0700)" ]; then
  mark error "refusing state folder $STATE (it must be a folder of the session user, root, with mode 0700: fix or remove it)"
  exit 70
fi
exec 9>>"$STATE/lock"
if ! flock -n 9; then
  mark waiting "$(cat "$STATE/lock.owner" 2>/dev/null)"
  if ! flock -w "$LOCK_WAIT" 9; then
    mark locked "$(cat "$STATE/lock.owner" 2>/dev/null)"
    exit 75
  fi
fi
printf '%s, host pid %s\n' "$LOCK_OWNER" "$$" > "$STATE/lock.owner"
trap ': > "$STATE/lock.owner"' EXIT
trap 'exit 129' HUP
trap 'exit 141' PIPE
trap 'exit 143' TERM
mark ready
