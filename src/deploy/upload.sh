# shellcheck shell=sh
# An uploaded release ($NAME): its tar comes as the next stdin frame (`LEN\n` + bytes).
REL="$ROOT/releases/$NAME"
IFS= read -r n || fail upload 'no payload'
mkdir -- "$REL" || fail upload "release $NAME exists"
head -c "$n" | tar -x -C "$REL" -f - || { rm -rf -- "$REL"; fail upload 'cannot unpack the release'; }
