# shellcheck shell=sh
# Run by the apply script AS THE USER (`runuser -u USER -- /bin/sh -c THIS sh HOME NONCE
# EXCLUSIVE NDROP DROP... ADD...`, HOME from the user database: src/apply/users.rs): edits
# `HOME/.ssh/authorized_keys`. `.ssh` is made 0700 if missing; a symlinked `.ssh` or file is
# refused. The new file is written beside the live one (0600, the user's), fsynced and renamed
# over it (atomic). Unless EXCLUSIVE is 1, it keeps every line of the live file but the NDROP
# lines given (exact matches: the planner named the old lines microctl manages), read now (a
# line the user added since the probe is kept), then appends the ADD lines; EXCLUSIVE=1 writes
# the ADD lines alone.
cd -- "$1" || exit 1
n=$2
ex=$3
nd=$4
shift 4
if [ -L .ssh ]; then
  echo "$PWD/.ssh is a symlink: refusing to write through it"
  exit 1
fi
[ -d .ssh ] || mkdir -m 0700 .ssh || exit 1
chmod 0700 .ssh || exit 1
f=.ssh/authorized_keys
t=.ssh/.authorized_keys.microctl.$n
if [ -L "$f" ]; then
  echo "$PWD/$f is a symlink: refusing to write through it"
  exit 1
fi
if [ -e "$f" ] && [ ! -f "$f" ]; then
  echo "$PWD/$f is not a regular file: refusing"
  exit 1
fi
umask 077
trap 'rm -f -- "$t"' EXIT
rm -f -- "$t"
: > "$t" || exit 1
if [ "$ex" != 1 ] && [ -f "$f" ]; then
  while IFS= read -r l || [ -n "$l" ]; do
    i=0
    k=1
    for d in "$@"; do
      [ "$i" -lt "$nd" ] || break
      i=$((i + 1))
      if [ "$l" = "$d" ]; then
        k=0
        break
      fi
    done
    [ "$k" = 0 ] || printf '%s\n' "$l"
  done < "$f" >> "$t" || exit 1
fi
i=0
for a in "$@"; do
  i=$((i + 1))
  [ "$i" -le "$nd" ] || printf '%s\n' "$a"
done >> "$t" || exit 1
chmod 0600 "$t" && sync -- "$t" && mv -f -- "$t" "$f"
