# shellcheck shell=sh
# Converge's part of the host session (after src/remote/session.sh and the probe section):
# end the probe, read the payload frame (`LEN\n` + a tar holding apply.sh and the changed
# files; `0\n` for none) and run apply.sh. The lock owner line is emptied by the shell when done.
mark probe-end
IFS= read -r n || n=0
case "$n" in '' | 0) : > "$STATE/lock.owner"; exit 0 ;; esac
W=$(mktemp -d) || exit 70
trap 'rm -rf -- "$W"' EXIT
head -c "$n" | tar -x -C "$W" -f - || { mark error "cannot unpack the payload"; exit 70; }
export NONCE STATE W
sh "$W/apply.sh"
rc=$?
: > "$STATE/lock.owner"
exit $rc
