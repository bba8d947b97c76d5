# shellcheck shell=sh
# Wait for the controller's verdict after its health check: `ok` keeps the release and prunes
# all but the newest $KEEP (never the previous one); anything else, or the controller
# vanishing (EOF), switches back and restarts (exit 3).
IFS= read -r verdict || verdict=rollback
if [ "$verdict" = ok ]; then
  # shellcheck disable=SC2010 # release names are made by microctl: no newline, sorted by name
  ls -1 -- "$ROOT/releases" | grep -v '^\.' | sort -r | tail -n +"$((KEEP + 1))" | while IFS= read -r r; do
    [ "releases/$r" = "$PREV" ] || [ "$r" = "$NAME" ] || rm -rf -- "$ROOT/releases/$r"
  done
  mark pruned
  exit 0
fi
rollback
exit 3
