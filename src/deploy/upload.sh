# shellcheck shell=sh
# An uploaded release ($NAME, from $REVISION): its tar comes as the next stdin frame
# (`LEN\n` + bytes). The ledger records it as incomplete before its first byte lands.
REL="$ROOT/releases/$NAME"
IFS= read -r n || fail upload 'no payload'
mkdir -- "$REL" || fail upload "release $NAME exists"
ledger_set "$NAME" status incomplete by "$DEPLOYED_BY" started "$(ledger_now)" revision "$REVISION" result building
head -c "$n" | tar -x -C "$REL" -f - || build_failed upload 'cannot unpack the release'
