# shellcheck shell=sh
# --rollback: the newest release older than the live one.
[ -n "$PREV" ] || fail rollback 'no live release'
CUR=${PREV##*/}
# shellcheck disable=SC2010 # release names are made by microctl: no newline, sorted by name
NAME=$(ls -1 -- "$ROOT/releases" | grep -v '^\.' | sort | awk -v c="$CUR" '$0 < c' | tail -n 1)
[ -n "$NAME" ] || fail rollback "no release older than $CUR"
mark release "$NAME"
