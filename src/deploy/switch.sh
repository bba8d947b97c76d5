# shellcheck shell=sh
# Arm the confirm watchdog (watchdog.sh: detached, holding the host lock, rolls back unless a
# verdict is recorded in CONFIRM_TIMEOUT seconds), THEN switch `current` to releases/$NAME
# atomically and restart; a failed restart rolls back at once.
rm -rf -- "$LEDGER/.decided.$NAME"
# Said first: a controller gone by now (the write fails) stops us before anything is armed.
mark armed "$CONFIRM_TIMEOUT" || exit 1
printf '%s\n%s\n' "$NAME" "$PREV" > "$LEDGER/.pending" || fail switch "cannot write $LEDGER/.pending"
ROOT=$ROOT NAME=$NAME PREV=$PREV RESTART=$RESTART CONFIRM_TIMEOUT=$CONFIRM_TIMEOUT \
  TIMEOUT=${TIMEOUT:-600} STATE=${STATE:-} LOCK_OWNER=${LOCK_OWNER:-} setsid sh -c "$WATCHDOG_SH" microctl-confirm < /dev/null > /dev/null 2>&1 &
switch_to "releases/$NAME" || fail switch 'cannot switch current'
mark switched "$NAME"
if ! out=$(restart); then
  if mkdir -- "$LEDGER/.decided.$NAME" 2> /dev/null; then
    roll_back "restart failed" | mark_out
    mark rolled-back "$PREV"
  fi
  fail restart "$out"
fi
mark restarted
