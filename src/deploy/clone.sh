# shellcheck shell=sh
# A release cloned on the host from $GIT_URL at $GIT_REF, named by date and commit.
T="$ROOT/releases/.clone.$$"
out=$(git clone --quiet --depth 1 --branch "$GIT_REF" -- "$GIT_URL" "$T" 2>&1) || { rm -rf -- "$T"; fail clone "$out"; }
NAME="$(date -u +%Y%m%dT%H%M%SZ)-$(git -C "$T" rev-parse --short=10 HEAD)"
REL="$ROOT/releases/$NAME"
mv -- "$T" "$REL" || fail clone 'cannot place the release'
