# shellcheck shell=sh
# The apply script's fixed prelude (after src/shell/mark.sh), sourced by the host session
# (src/apply/host.sh: $NONCE, $STATE and $W are set; the session's traps stay). Steps run in
# this shell with their output in "$W/step.out" (no `$( )` subshell: every process counts on
# a host); the first failure stops the run. Files are staged as `.microctl.$NONCE.ID` beside
# their destination (files in a staging folder `.microctl.$NONCE/` there, under their own
# names); whatever is still staged on exit is removed, in one `rm`.
set -u
umask 022
# Staged paths, one per line (managed paths never hold a newline).
STAGED=""
cleanup() {
  IFS='
'
  set -- "$W"
  for t in $STAGED; do
    if [ -e "$t" ] || [ -L "$t" ]; then set -- "$@" "$t"; fi
  done
  rm -rf -- "$@"
  : > "$STATE/lock.owner"
}
trap cleanup EXIT
# fail ID RC: report step ID failed with RC, and its output.
fail() {
  mark fail "$1" "$2"
  mark_out < "$W/step.out"
  exit 1
}
# stage DEST ID: $t is the staged path of DEST (`.microctl.$NONCE.ID` in DEST's folder, which
# is created if missing), removed on exit unless renamed over DEST.
stage() {
  d=${1%/*}
  [ -n "$d" ] || d=/
  [ -d "$d" ] || mkdir -p -- "$d" || return 1
  t=$d/.microctl.$NONCE.$2
  STAGED="$STAGED$t
"
}
# staged DIR...: record the staging folders (`DIR/.microctl.$NONCE`) that `install -D`
# makes; removed on exit, with whatever they still hold (no process until then).
staged() {
  for d in "$@"; do STAGED="$STAGED$d/.microctl.$NONCE
"; done
}
# private STAGE...: make the root-only (0700) staging folders of files bound for folders a user
# other than root can write (each beside such a folder, in its parent, which only root can
# write: see src/plan/trust.rs), recorded first (removed on exit); one `mkdir`.
private() {
  for d in "$@"; do STAGED="$STAGED$d
"; done
  mkdir -m 0700 -- "$@"
}
# plain PATH: PATH is a regular file or folder, not a symlink (meta is fixed on it, never
# on what a symlink swapped in since the probe points at).
plain() {
  if [ -L "$1" ] || { [ ! -f "$1" ] && [ ! -d "$1" ]; }; then
    echo "$1 is no longer a plain file or folder (a symlink?): not touching it"
    return 1
  fi
}
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2034 # used by the generated package steps
APT="apt-get -q -y -o Acquire::Retries=3 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
