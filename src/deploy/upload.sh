# shellcheck shell=sh
# An uploaded release ($NAME, from $REVISION): its tar comes as the next stdin frame
# (`LEN\n` + bytes). The ledger records it as incomplete before its first byte lands. It is
# unpacked in the root-only stage, not in releases/ (the app user's), and placed from there.
name_ok "$NAME" || fail upload "refusing the release name $NAME"
REL="$ROOT/releases/$NAME"
IFS= read -r n || fail upload 'no payload'
if [ -e "$REL" ] || [ -L "$REL" ]; then fail upload "release $NAME exists"; fi
mkdir -- "$STAGE/$NAME" || fail upload "cannot stage $NAME"
ledger_new "$NAME"
ledger_set "$NAME" status incomplete by "$DEPLOYED_BY" started "$(ledger_now)" revision "$REVISION" result building
head -c "$n" | tar -x --no-same-owner -C "$STAGE/$NAME" -f - || build_failed upload 'cannot unpack the release'
place_release "$STAGE/$NAME"
