# shellcheck shell=sh
# The start of every host session (after the assignments of NONCE, STATE, LOCK_OWNER and
# LOCK_WAIT that src/remote/mod.rs prepends, and mark.sh): delete the script file, say
# `start`, take the host lock (waiting up to LOCK_WAIT seconds, then exit 75 naming the
# holder), record ourselves as the holder, say `ready`. Starts `rm` and `flock` only.
rm -f -- "$0"
set -u
mark start
[ -d "$STATE" ] || { mkdir -p -- "$STATE" && chmod 0700 -- "$STATE"; } || { mark error "cannot create $STATE"; exit 70; }
exec 9>>"$STATE/lock"
if ! flock -n 9; then
  mark waiting "$(cat "$STATE/lock.owner" 2>/dev/null)"
  if ! flock -w "$LOCK_WAIT" 9; then
    mark locked "$(cat "$STATE/lock.owner" 2>/dev/null)"
    exit 75
  fi
fi
printf '%s, host pid %s\n' "$LOCK_OWNER" "$$" > "$STATE/lock.owner"
mark ready
