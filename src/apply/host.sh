# shellcheck shell=sh
# Converge's part of the host session (after src/remote/session.sh and the probe section):
# end the probe; remove what a killed run left staged; read the payload frame (`LEN\n` + a
# tar of `stage.$NONCE/`: apply.sh and the changed files; `0\n` for none) and unpack it
# inside the state folder (root's, 0700: the payload never touches /tmp), then source
# apply.sh. The session's EXIT trap empties the lock owner line.
mark probe-end
for old in "$STATE"/stage.*; do
  [ -e "$old" ] && rm -rf -- "$STATE"/stage.*
  break
done
IFS= read -r n || n=0
case "$n" in '' | 0) exit 0 ;; esac
W=$STATE/stage.$NONCE
trap 'rm -rf -- "$W"; : > "$STATE/lock.owner"' EXIT
# The client closes stdin after the payload: tar reads it to the end, no `head` needed.
tar -x --no-same-owner -C "$STATE" -f - || { mark error "cannot unpack the payload"; exit 70; }
# shellcheck source=/dev/null
. "$W/apply.sh"
