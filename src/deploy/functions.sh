# shellcheck shell=sh
# Deploy's fixed functions and setup, after the host session (src/remote/session.sh), the
# assignments deploy/script.rs prepends (ROOT, RESTART, APP_USER, KEEP, ENV_FILE,
# CONFIRM_TIMEOUT, DEPLOYED_BY, WATCHDOG_SH), envfile.sh, release.sh and ledger.sh; TIMEOUT
# comes from the session header (src/remote/mod.rs).
# fail WHAT OUTPUT: report WHAT failed, with its output, and stop.
fail() { mark fail "$1"; printf '%s\n' "$2" | mark_out; exit 1; }
# build_failed WHAT OUTPUT: the half-built release goes; the ledger says why.
# shellcheck disable=SC2317 # --rollback builds nothing
build_failed() {
  rm -rf -- "$REL"
  ledger_set "$NAME" status failed finished "$(ledger_now)" result "$1 failed"
  fail "$1" "$2"
}
# run_step: $STEP in the current folder, as the app user, with the env file's variables (as
# data: ENV_WORDS are quoted words, never the file itself; release.sh's ENV_RUN), not holding
# the host lock, bounded by the session's TIMEOUT (then TERM to it and all it started, KILL
# 5 s later: a hung step neither runs on nor keeps the lock once the client gave up).
# shellcheck disable=SC2317 # --rollback builds nothing
run_step() {
  if [ "$APP_USER" = root ]; then
    MICROCTL_ENV=$ENV_WORDS timeout -k 5 "$TIMEOUT" /bin/sh -c "$ENV_RUN" sh "$STEP"
  else
    MICROCTL_ENV=$ENV_WORDS timeout -k 5 "$TIMEOUT" runuser -u "$APP_USER" -- sh -c "$ENV_RUN" sh "$STEP"
  fi < /dev/null 9>&-
}
# as_app CMD...: CMD as the app user (what root must not do in folders the app user owns:
# follow a link planted there).
# shellcheck disable=SC2317 # --rollback builds nothing
as_app() {
  if [ "$APP_USER" = root ]; then "$@"; else runuser -u "$APP_USER" -- "$@"; fi
}
# Build steps and the restart see ROOT (the release is their working folder).
export ROOT
mkdir -p -- "$ROOT/releases" "$ROOT/shared" "$LEDGER" || fail setup "cannot create $ROOT"
[ "$APP_USER" = root ] || chown -- "$APP_USER" "$ROOT/shared" || fail setup "no user $APP_USER"
ENV_WORDS=
if [ -n "$ENV_FILE" ] && [ -f "$ENV_FILE" ]; then
  ENV_WORDS=$(env_words "$ENV_FILE") || fail setup "cannot read $ENV_FILE"
fi
# A switched release nobody decided on (its watchdog died without deciding): roll it back now.
if [ -f "$LEDGER/.pending" ]; then
  { IFS= read -r NAME; IFS= read -r PREV; } < "$LEDGER/.pending"
  if mkdir -- "$LEDGER/.decided.$NAME" 2> /dev/null; then
    roll_back "never confirmed" | mark_out
    mark recovered "$NAME"
  fi
  rm -f -- "$LEDGER/.pending"
fi
# We hold the host lock, and so does a live watchdog: no decision is pending any more.
rm -rf -- "$LEDGER"/.decided.* "$ROOT/releases"/.clone.*
# Releases of runs that stopped before a verdict (a killed build) are removed.
for f in "$LEDGER"/*; do
  r=${f##*/}
  if [ ! -f "$f" ] || [ ! -d "$ROOT/releases/$r" ]; then continue; fi
  [ "$(ledger_get "$r" status)" = incomplete ] || continue
  [ "$(readlink -- "$ROOT/current")" != "releases/$r" ] || continue
  rm -rf -- "${ROOT:?}/releases/$r"
  ledger_set "$r" result "removed: its deploy stopped before a verdict"
  mark cleaned "$r"
done
PREV=$(readlink -- "$ROOT/current" 2> /dev/null || true)
mark previous "$PREV"
