# shellcheck shell=sh
# The apply script's fixed prelude (after src/remote/mark.sh; $NONCE, $STATE and $W come
# from the environment). Steps run in this shell with their output in "$W/step.out" (no
# `$( )` subshell: every process counts on a host); the first failure stops the run.
set -u
umask 022
STAGED=""
cleanup() { for t in $STAGED; do rm -f -- "$t"; done; }
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 141' PIPE
trap 'exit 143' TERM
# fail ID RC: report step ID failed with RC, and its output.
fail() {
  mark fail "$1" "$2"
  mark_out < "$W/step.out"
  exit 1
}
# stage DEST: a temp file $t next to DEST, removed on exit unless renamed over DEST.
stage() {
  d=${1%/*}
  [ -n "$d" ] || d=/
  [ -d "$d" ] || mkdir -p -- "$d" || return 1
  t=$(mktemp -- "$d/.microctl.XXXXXX") || return 1
  STAGED="$STAGED $t"
}
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2034 # used by the generated package steps
APT="apt-get -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
