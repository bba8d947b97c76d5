# shellcheck shell=sh
# The one marker emitter of the host side (src/remote/mod.rs parses what it prints):
# `mark KIND [FIELD...]` prints "$NONCE KIND<TAB>FIELD..." as one line, with builtins only,
# in one write (each write to the channel can cost the host's sshd a packet of its own).
# $NONCE is this run's random token: the client reads only lines that start with it, so
# banners, MOTDs and a chatty .bashrc can neither hide nor forge a marker.
mark() {
  m_line="$NONCE $1"
  shift
  for f in "$@"; do m_line="$m_line	$f"; done
  printf '%s\n' "$m_line"
}
# mark_out: the lines of stdin as `out` markers (a step's output for the report).
# shellcheck disable=SC2317 # not every script reports step output
mark_out() { sed "s/^/$NONCE out	/"; }
