# shellcheck shell=sh
# Switch `current` to releases/$NAME atomically and restart; a failed restart rolls back at once.
switch_to "releases/$NAME" || fail switch 'cannot switch current'
mark switched "$NAME"
if ! out=$(restart); then
  rollback
  fail restart "$out"
fi
mark restarted
