# shellcheck shell=sh
# Wait for the controller's verdict after its health check, and take the decision unless the
# watchdog took it first (too late: it rolled back). `ok`: the release is healthy; prune all
# but the newest $KEEP in the ledger's order (never the previous one), their ledger entries,
# and unused cached environments (as the app user: releases/ and shared/ are its folders).
# Anything else, or the controller vanishing (EOF): switch back, restart, exit 3.
# The verdict is read in the background so that a stalled controller (connection up, nothing
# said) does not keep this session, and the host lock, once the watchdog has decided.
V="$LEDGER/.verdict.$NAME"
rm -f -- "$V"
# (stdin through fd 7: a background job's own stdin would be /dev/null)
exec 7<&0
(
  IFS= read -r v <&7 || v=rollback
  printf '%s\n' "$v" > "$V.new" && mv -f -- "$V.new" "$V"
) 9>&- &
exec 7<&-
reader=$!
while [ ! -f "$V" ] && [ ! -d "$LEDGER/.decided.$NAME" ]; do sleep 0.2; done
verdict=$(cat -- "$V" 2> /dev/null || echo none)
rm -f -- "$V"
if ! mkdir -- "$LEDGER/.decided.$NAME" 2> /dev/null; then
  kill "$reader" 2> /dev/null
  mark rolled-back "$PREV"
  fail confirm "no verdict within $CONFIRM_TIMEOUT s: the host rolled back to ${PREV#releases/} on its own"
fi
if [ "$verdict" = ok ]; then
  ledger_set "$NAME" status healthy finished "$(ledger_now)" result "$OK_RESULT"
  rm -f -- "$LEDGER/.pending"
  # Keep the newest KEEP releases (and the previous one); the others go, as the app user.
  v_n=0
  ledger_newest | while IFS= read -r r; do
    [ -d "$ROOT/releases/$r" ] || continue
    v_n=$((v_n + 1))
    if [ "$v_n" -gt "$KEEP" ] && [ "releases/$r" != "$PREV" ] && [ "$r" != "$NAME" ]; then
      as_app rm -rf -- "$ROOT/releases/$r" < /dev/null 9>&-
      rm -f -- "$LEDGER/$r"
    fi
  done
  ledger_newest | while IFS= read -r r; do
    [ -d "$ROOT/releases/$r" ] || printf '%s\n' "$r"
  done | tail -n +"$((KEEP + 1))" | while IFS= read -r r; do rm -f -- "$LEDGER/$r"; done
  [ -z "${CACHE_DIR:-}" ] || cache_prune
  mark pruned
  exit 0
fi
roll_back "health check failed" | mark_out
mark rolled-back "$PREV"
exit 3
