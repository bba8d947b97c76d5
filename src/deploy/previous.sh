# shellcheck shell=sh
# --rollback: $TARGET if given (any complete release), else the newest HEALTHY release older
# than the live one; failed and incomplete releases are never picked on their own.
[ -n "$PREV" ] || fail rollback 'no live release'
CUR=${PREV##*/}
if [ -n "$TARGET" ]; then
  NAME=$TARGET
  [ -d "$ROOT/releases/$NAME" ] || fail rollback "no release $NAME on this host"
  [ "$NAME" != "$CUR" ] || fail rollback "$NAME is already live"
  [ "$(ledger_get "$NAME" status)" != incomplete ] || fail rollback "$NAME is incomplete: its deploy never finished"
else
  # shellcheck disable=SC2010 # release names are made by microctl: no newline, sorted by name
  NAME=$(ls -1 -- "$ROOT/releases" | grep -v '^\.' | sort -r | awk -v c="$CUR" '$0 < c' | while IFS= read -r r; do
    if [ "$(ledger_get "$r" status)" = healthy ]; then
      printf '%s\n' "$r"
      break
    fi
  done)
  [ -n "$NAME" ] || fail rollback "no healthy release older than $CUR"
fi
mark release "$NAME"
