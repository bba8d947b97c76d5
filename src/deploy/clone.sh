# shellcheck shell=sh
# A release cloned on the host from $GIT_URL at $GIT_REF (a branch, a tag or a commit SHA:
# `git clone --branch` takes no SHA), named by date and commit: fetch just that ref, else
# clone everything and check the ref out. Cloned as root (root's git credentials) in the
# root-only stage, without the host lock's descriptor, then placed in releases/.
T="$STAGE/clone"
out=$( (git init --quiet -- "$T" && git -C "$T" fetch --quiet --depth 1 -- "$GIT_URL" "$GIT_REF" &&
  git -C "$T" checkout --quiet --detach FETCH_HEAD) 2>&1 < /dev/null 9>&-) ||
  out=$( (rm -rf -- "$T" && git clone --quiet --no-checkout -- "$GIT_URL" "$T" &&
    git -C "$T" checkout --quiet --detach "$GIT_REF") 2>&1 < /dev/null 9>&-) || {
  rm -rf -- "$T"
  fail clone "$out"
}
REVISION=$(git -C "$T" rev-parse --short=10 HEAD 9>&-)
NAME="$(date -u +%Y%m%dT%H%M%S.%3NZ)-$REVISION"
REL="$ROOT/releases/$NAME"
name_ok "$NAME" || fail clone "refusing the release name $NAME"
if [ -e "$REL" ] || [ -L "$REL" ]; then fail clone "release $NAME exists"; fi
ledger_new "$NAME"
ledger_set "$NAME" status incomplete by "$DEPLOYED_BY" started "$(ledger_now)" revision "$REVISION ($GIT_REF)" result building
place_release "$T"
