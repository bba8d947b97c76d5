# shellcheck shell=sh
# The confirm watchdog (deploy-rs's "magic rollback"): started detached (setsid, its own
# session, stdio on /dev/null) right BEFORE `current` switches, holding the host lock it
# inherited (fd 9), with ROOT, NAME, PREV, RESTART and CONFIRM_TIMEOUT in its
# environment, after release.sh and ledger.sh. Unless a verdict is recorded
# ($LEDGER/.decided.$NAME) within CONFIRM_TIMEOUT seconds, it takes the decision itself and
# switches back to PREV and restarts it: a controller killed, cut off or stalled at any point
# after the switch cannot leave an unconfirmed release live. It polls 5 times a second, on the
# wall clock, and starts only `sleep` and `date` while it waits. Once the session is gone (its
# EXIT trap emptied $STATE/lock.owner; STATE and LOCK_OWNER are in its environment too), it
# names itself there as the lock's holder, and empties the note again when it ends.
trap '' HUP INT
w_own=0
trap '[ "$w_own" = 0 ] || : > "$STATE/lock.owner"' EXIT
# The time in milliseconds (seconds * 1000 where `date` has no %N).
now_ms() {
  w_t=$(date +%s%N)
  case $w_t in
    *N) echo $((${w_t%%[!0-9]*} * 1000)) ;;
    *) echo $((w_t / 1000000)) ;;
  esac
}
w_end=$(($(now_ms) + CONFIRM_TIMEOUT * 1000))
w_until=$(date -u -d "@$((w_end / 1000))" +"at %Y-%m-%dT%H:%M:%SZ" 2> /dev/null) || w_until="in ${CONFIRM_TIMEOUT} s"
while [ "$(now_ms)" -lt "$w_end" ]; do
  [ -d "$LEDGER/.decided.$NAME" ] && exit 0
  if [ "$w_own" = 0 ] && [ -n "${STATE:-}" ] && [ ! -s "$STATE/lock.owner" ]; then
    w_own=1
    printf 'microctl confirm watchdog (of %s; host pid %s, rolls back %s unless confirmed)\n' \
      "${LOCK_OWNER:-a deploy}" "$$" "$w_until" > "$STATE/lock.owner"
  fi
  sleep 0.2
done
mkdir -- "$LEDGER/.decided.$NAME" 2> /dev/null || exit 0
roll_back "not confirmed within ${CONFIRM_TIMEOUT} s (controller gone or stalled)" > /dev/null 2>&1
