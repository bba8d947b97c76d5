# shellcheck shell=sh
# Deploy's fixed functions and setup, after the host session (src/remote/session.sh), the
# assignments deploy/deploy_script.rs prepends (ROOT, RESTART, APP_USER, KEEP, ENV_FILE,
# CONFIRM_TIMEOUT, DEPLOYED_BY, WATCHDOG_SH), envfile.sh, release.sh and ledger.sh; TIMEOUT
# comes from the session header (src/remote/mod.rs).
# Who acts where (README, "Security"): ROOT, its ledger, `current` and the stage are root's,
# in folders only root can write (checked first, `safe_chain`); `releases/` and `shared/` are
# the app user's, and everything done inside them (building, linking the cache, pruning,
# removing a failed release) runs as the app user. Root only renames a finished release into
# releases/ (rename(2) follows no link in its last component) after unpacking and chowning it
# in the stage, which the app user cannot enter.
# fail WHAT OUTPUT: report WHAT failed, with its output, and stop.
fail() { mark fail "$1"; printf '%s\n' "$2" | mark_out; exit 1; }
# build_failed WHAT OUTPUT: the half-built release goes; the ledger says why.
# shellcheck disable=SC2317 # --rollback builds nothing
build_failed() {
  as_app rm -rf -- "$REL" < /dev/null 9>&-
  ledger_set "$NAME" status failed finished "$(ledger_now)" result "$1 failed"
  fail "$1" "$2"
}
# run_step DIR: $STEP in DIR, as the app user, with the env file's variables (as data:
# ENV_WORDS are quoted words, never the file itself; release.sh's ENV_RUN), not holding the
# host lock, bounded by the session's TIMEOUT (then TERM to it and all it started, KILL 5 s
# later: a hung step neither runs on nor keeps the lock once the client gave up).
# shellcheck disable=SC2317 # --rollback builds nothing
run_step() {
  r_dir=$1
  if [ "$APP_USER" = root ]; then set --; else set -- runuser -u "$APP_USER" --; fi
  MICROCTL_DIR=$r_dir MICROCTL_STEP=$STEP MICROCTL_ENV=$ENV_WORDS timeout -k 5 "$TIMEOUT" "$@" /bin/sh -c "$ENV_RUN" < /dev/null 9>&-
}
# as_app CMD...: CMD as the app user (what root must not do in folders the app user owns:
# follow a link planted there, delete or create by a path the app user can change).
# shellcheck disable=SC2317 # --rollback builds nothing
as_app() {
  if [ "$APP_USER" = root ]; then "$@"; else runuser -u "$APP_USER" -- "$@"; fi
}
# safe_chain PATH: PATH (or, while it does not exist, its nearest existing folder) and every
# folder above it, as the kernel resolves them, are the session user's (root) and writable by
# no one else (a folder above may be sticky, like /tmp): nothing root does by a path below it
# can be redirected by another user. Else prints the first folder that is not, and fails.
safe_chain() {
  s_p=$1
  while [ ! -d "$s_p" ]; do
    s_p=${s_p%/*}
    [ -n "$s_p" ] || s_p=/
  done
  s_p=$(cd -P -- "$s_p" 2> /dev/null && pwd -P) || { printf '%s (cannot enter it)' "$1"; return 1; }
  set --
  while :; do
    set -- "$@" "$s_p"
    [ "$s_p" != / ] || break
    s_p=${s_p%/*}
    [ -n "$s_p" ] || s_p=/
  done
  s_me=$(id -u)
  s_first=1
  s_stat=$(stat -c '%u %a' -- "$@") || { printf '%s (cannot stat)' "$1"; return 1; }
  for s_m in $(printf '%s\n' "$s_stat" | tr ' ' ':'); do
    s_u=${s_m%%:*}
    s_m=$((0${s_m#*:}))
    if [ "$s_u" != 0 ] && [ "$s_u" != "$s_me" ]; then
      printf '%s (owned by uid %s)' "$1" "$s_u"
      return 1
    fi
    if [ $((s_m & 18)) != 0 ] && { [ "$s_first" = 1 ] || [ $((s_m & 512)) = 0 ]; }; then
      printf '%s (writable by group or others: mode %o)' "$1" "$s_m"
      return 1
    fi
    s_first=0
    shift
  done
}
# place_release DIR: the release unpacked or cloned in DIR (in the root-only stage) becomes the
# app user's there, where no one else can reach it, then moves to $REL in one rename(2) (on
# the same filesystem, checked at setup): root creates, unpacks and chowns nothing in releases/.
# shellcheck disable=SC2317 # --rollback makes no release
place_release() {
  if [ "$APP_USER" != root ]; then
    chown -R -P -h -- "$APP_USER" "$1" || fail setup "cannot give the release to $APP_USER"
  fi
  mv -fT -- "$1" "$REL" 2> /dev/null || fail setup "release $NAME exists in $ROOT/releases"
}
# Build steps and the restart see ROOT (the release is their working folder).
export ROOT
umask 022
s_bad=$(safe_chain "$ROOT") || fail setup "refusing to deploy into $ROOT: $s_bad; deploy acts there as root, so it and every folder above it must be root's and writable only by root (chown root: FOLDER; chmod go-w FOLDER)"
if [ -n "$ENV_FILE" ]; then
  s_bad=$(safe_chain "${ENV_FILE%/*}/") || fail setup "refusing to read $ENV_FILE as root: $s_bad; keep the env file in a folder only root can write (e.g. /etc)"
fi
mkdir -p -- "$ROOT/releases" "$ROOT/shared" "$LEDGER" || fail setup "cannot create $ROOT"
[ "$APP_USER" = root ] || chown -- "$APP_USER" "$ROOT/releases" "$ROOT/shared" || fail setup "no user $APP_USER"
STAGE="$ROOT/.stage"
rm -rf -- "$STAGE"
mkdir -m 0700 -- "$STAGE" || fail setup "cannot create $STAGE"
s_dev=$(stat -L -c %d -- "$STAGE" "$ROOT/releases") || fail setup "cannot stat $ROOT/releases"
[ "${s_dev%%"$NL"*}" = "${s_dev#*"$NL"}" ] ||
  fail setup "$ROOT/releases is on another filesystem than $ROOT: a release must move there in one rename"
ENV_WORDS=
if [ -n "$ENV_FILE" ] && [ -f "$ENV_FILE" ]; then
  ENV_WORDS=$(env_words "$ENV_FILE") || fail setup "cannot read $ENV_FILE"
fi
# A switched release nobody decided on (its watchdog died without deciding): roll it back now.
if [ -f "$LEDGER/.pending" ]; then
  { IFS= read -r NAME; IFS= read -r PREV; } < "$LEDGER/.pending"
  if name_ok "$NAME" && mkdir -- "$LEDGER/.decided.$NAME" 2> /dev/null; then
    roll_back "never confirmed" | mark_out
    mark recovered "$NAME"
  fi
  rm -f -- "$LEDGER/.pending"
fi
# We hold the host lock, and so does a live watchdog: no decision is pending any more.
rm -rf -- "$LEDGER"/.decided.*
# Releases of runs that stopped before a verdict (a killed build) are removed.
for f in "$LEDGER"/*; do
  r=${f##*/}
  if ! name_ok "$r" || [ ! -f "$f" ] || [ ! -d "$ROOT/releases/$r" ]; then continue; fi
  [ "$(ledger_get "$r" status)" = incomplete ] || continue
  [ "$(readlink -- "$ROOT/current")" != "releases/$r" ] || continue
  as_app rm -rf -- "$ROOT/releases/$r" < /dev/null 9>&-
  ledger_set "$r" result "removed: its deploy stopped before a verdict"
  mark cleaned "$r"
done
PREV=$(readlink -- "$ROOT/current" 2> /dev/null || true)
mark previous "$PREV"
