# shellcheck shell=sh
# Wait for the controller's verdict after its health check, and take the decision unless the
# watchdog took it first (too late: it rolled back). `ok`: the release is healthy; prune all
# but the newest $KEEP (never the previous one), their ledger entries, and unused cached
# environments. Anything else, or the controller vanishing (EOF): switch back, restart, exit 3.
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
  # shellcheck disable=SC2010 # release names are made by microctl: no newline, sorted by name
  ls -1 -- "$ROOT/releases" | grep -v '^\.' | sort -r | tail -n +"$((KEEP + 1))" | while IFS= read -r r; do
    if [ "releases/$r" != "$PREV" ] && [ "$r" != "$NAME" ]; then
      rm -rf -- "${ROOT:?}/releases/$r" "${LEDGER:?}/$r"
    fi
  done
  # shellcheck disable=SC2010 # as above
  ls -1 -- "$LEDGER" | grep -v '^\.' | sort -r | while IFS= read -r r; do
    [ -d "$ROOT/releases/$r" ] || printf '%s\n' "$r"
  done | tail -n +"$((KEEP + 1))" | while IFS= read -r r; do rm -f -- "$LEDGER/$r"; done
  [ -z "${CACHE_DIR:-}" ] || cache_prune
  mark pruned
  exit 0
fi
roll_back "health check failed" | mark_out
mark rolled-back "$PREV"
exit 3
