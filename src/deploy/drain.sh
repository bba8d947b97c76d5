# shellcheck shell=sh
# Drain: take one app host out of nginx's upstream on a health_via host, or put it back, as
# root, after the assignments of FILE (the nginx site), SERVER (the `server` line's address
# and port, as a sed pattern), STATE (`down` or `up`) and RELOAD (check and graceful reload).
# The site is rewritten beside itself and renamed over the live one; an nginx that refuses it
# gets the old file back. A graceful reload lets in-flight requests finish on the old workers.
[ -f "$FILE" ] || { echo "no nginx site $FILE"; exit 1; }
grep -q "^[[:space:]]*server[[:space:]][[:space:]]*${SERVER}[[:space:];]" "$FILE" ||
  { echo "no upstream server $SERVER in $FILE"; exit 1; }
tmp="$FILE.microctl-drain.$$"
if [ "$STATE" = down ]; then
  sed "/^[[:space:]]*server[[:space:]][[:space:]]*${SERVER}[[:space:];]/{/[[:space:]]down;/!s/;[[:space:]]*\$/ down;/;}" "$FILE" > "$tmp"
else
  sed "/^[[:space:]]*server[[:space:]][[:space:]]*${SERVER}[[:space:];]/s/[[:space:]]down;/;/" "$FILE" > "$tmp"
fi
if cmp -s "$tmp" "$FILE"; then
  rm -f -- "$tmp"
  exit 0
fi
# The new content in a copy of the live file (its owner and mode), renamed over it.
if ! { cp -p -- "$FILE" "$FILE.microctl-drain.old" && cp -p -- "$FILE" "$tmp.new" &&
  cat "$tmp" > "$tmp.new" && mv -f -- "$tmp.new" "$FILE"; }; then
  rm -f -- "$tmp" "$tmp.new"
  exit 1
fi
rm -f -- "$tmp"
if ! out=$(eval "$RELOAD" 2>&1); then
  mv -f -- "$FILE.microctl-drain.old" "$FILE"
  printf 'nginx refused the drained site: %s\n' "$out"
  exit 1
fi
rm -f -- "$FILE.microctl-drain.old"
echo changed
