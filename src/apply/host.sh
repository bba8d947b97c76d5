# shellcheck shell=sh
# Converge's part of the host session (after src/remote/session.sh, run with
# STATE_CHECK=client, and the probe section, whose `find` printed the state folder's record):
# end the probe; read the client's frames. `hash` + paths + an empty line: the client needs
# the hashes of files the probe left to the hash record, which could not vouch for them
# (src/plan/hashes.rs): print them, end with `probe-end`, read the next frame. Then one last
# frame: none (stdin ended: the client refused the state folder or went away) exits having
# written nothing; `0\n` (nothing to change) and a payload (`LEN\n` + a tar of
# `stage.$NONCE/`: apply.sh and the changed files, if any: a run that changes nothing but
# must write the hash record again sends one too) mean the client found the folder ours with
# mode 0700: remove what a killed run left staged; for a payload, record this run as the
# lock holder (`hold`), unpack it inside the state folder (the payload never touches /tmp)
# and source apply.sh. The EXIT trap empties the lock owner line. With no state folder
# (NOSTATE, converge --check on a fresh host) nothing is removed or written: exit.
mark probe-end
IFS= read -r n || exit 0
while [ "$n" = hash ]; do
  set --
  while IFS= read -r p && [ -n "$p" ]; do set -- "$@" "$p"; done
  [ "$#" -eq 0 ] || find "$@" -maxdepth 0 -type f -exec sha256sum -- '{}' + 2> /dev/null
  mark probe-end
  IFS= read -r n || exit 0
done
[ -z "$NOSTATE" ] || exit 0
for old in "$STATE"/stage.*; do
  [ -e "$old" ] && rm -rf -- "$STATE"/stage.*
  break
done
case "$n" in '' | 0) exit 0 ;; esac
hold
W=$STATE/stage.$NONCE
trap 'rm -rf -- "$W"; : > "$STATE/lock.owner"' EXIT
# The client closes stdin after the payload: tar reads it to the end, no `head` needed.
tar -x --no-same-owner -C "$STATE" -f - || { mark error "cannot unpack the payload"; exit 70; }
# shellcheck source=/dev/null
. "$W/apply.sh"
