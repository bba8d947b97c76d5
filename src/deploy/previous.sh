# shellcheck shell=sh
# --rollback: $TARGET if given (any complete release), else the newest HEALTHY release older
# than the live one (in the ledger's order, ledger_order); failed and incomplete releases are
# never picked on their own.
[ -n "$PREV" ] || fail rollback 'no live release'
CUR=${PREV##*/}
if [ -n "$TARGET" ]; then
  NAME=$TARGET
  if ! name_ok "$NAME" || [ ! -d "$ROOT/releases/$NAME" ]; then fail rollback "no release $NAME on this host"; fi
  [ "$NAME" != "$CUR" ] || fail rollback "$NAME is already live"
  [ "$(ledger_get "$NAME" status)" != incomplete ] || fail rollback "$NAME is incomplete: its deploy never finished"
else
  NAME=$(ledger_newest | {
    p_seen=0
    while IFS= read -r r; do
      if [ "$p_seen" = 0 ]; then
        [ "$r" != "$CUR" ] || p_seen=1
      elif [ -d "$ROOT/releases/$r" ] && [ "$(ledger_get "$r" status)" = healthy ]; then
        printf '%s\n' "$r"
        break
      fi
    done
  })
  [ -n "$NAME" ] || fail rollback "no healthy release older than $CUR"
fi
mark release "$NAME"
