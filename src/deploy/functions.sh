# shellcheck shell=sh
# Deploy's fixed functions and setup, after the host session (src/remote/session.sh) and the
# assignments of ROOT, RESTART, APP_USER and KEEP that deploy/script.rs prepends.
# fail WHAT OUTPUT: report WHAT failed, with its output, and stop.
fail() { mark fail "$1"; printf '%s\n' "$2" | mark_out; exit 1; }
switch_to() { ln -sfn -- "$1" "$ROOT/.current.new" && mv -fT -- "$ROOT/.current.new" "$ROOT/current"; }
restart() { (cd / && eval "$RESTART") 2>&1 < /dev/null 9>&-; }
rollback() {
  if [ -n "$PREV" ]; then switch_to "$PREV"; else rm -f -- "$ROOT/current"; fi
  out=$(restart) || printf '%s\n' "$out" | mark_out
  mark rolled-back "$PREV"
}
mkdir -p -- "$ROOT/releases" "$ROOT/shared" || fail setup "cannot create $ROOT"
[ "$APP_USER" = root ] || chown -- "$APP_USER" "$ROOT/shared" || fail setup "no user $APP_USER"
PREV=$(readlink -- "$ROOT/current" 2> /dev/null || true)
mark previous "$PREV"
