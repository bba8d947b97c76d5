# shellcheck shell=sh
# Drain: take one app host out of nginx's upstream on a health_via host, or put it back. Runs
# in a host session on that host (src/remote/session.sh: root, NONCE, TIMEOUT, the host lock
# held, so drains of several app hosts on one nginx take turns), after the assignments of
# FILE (the nginx site), SERVER (the `server` line's address and port, as a sed pattern),
# DRAIN (`down` or `up`) and RELOAD (check and graceful reload).
# The site (the file a site link points at: the link stays) is edited in a stage beside it,
# a copy of it with its owner and mode and with this run's nonce in a hidden name (nginx's
# `include DIR/*` skips dot files), fsynced and renamed over it; the old file is kept beside
# it the same way until RELOAD accepted the new one, and renamed back if it refuses. Stages a
# killed drain left are removed first (we hold the lock: no other drain runs). A graceful
# reload lets in-flight requests finish on the old workers.
[ -f "$FILE" ] || { echo "no nginx site $FILE"; exit 1; }
site=$(readlink -f -- "$FILE") || { echo "cannot resolve $FILE"; exit 1; }
line="^[[:space:]]*server[[:space:]][[:space:]]*${SERVER}[[:space:];]"
grep -q "$line" "$site" || { echo "no upstream server $SERVER in $FILE"; exit 1; }
dir=${site%/*}
stage="$dir/.${site##*/}.microctl-drain"
rm -f -- "$stage".*
new="$stage.$NONCE"
old="$stage.$NONCE.old"
trap 'rm -f -- "$new"; : > "$STATE/lock.owner"' EXIT
cp -p -- "$site" "$new" || exit 1
if [ "$DRAIN" = down ]; then
  sed "/$line/{/[[:space:]]down;/!s/;[[:space:]]*\$/ down;/;}" "$site" > "$new" || exit 1
else
  sed "/$line/s/[[:space:]]down;/;/" "$site" > "$new" || exit 1
fi
cmp -s "$new" "$site" && exit 0
if ! { cp -p -- "$site" "$old" && sync -- "$new" "$old" && mv -f -- "$new" "$site"; }; then
  rm -f -- "$old"
  exit 1
fi
# (RELOAD reaches sh on its stdin: no command of the inventory's on a command line.)
if ! out=$(printf '%s\n' "$RELOAD" | timeout -k 5 "$TIMEOUT" /bin/sh -s 2>&1 9>&-); then
  mv -f -- "$old" "$site"
  printf 'nginx refused the drained site: %s\n' "$out"
  exit 1
fi
rm -f -- "$old"
echo changed
