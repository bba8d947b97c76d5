# shellcheck shell=sh
# What both the deploy session and its confirm watchdog do to a host's releases, after the
# assignments of ROOT, RESTART and ENV_WORDS (the env file's assignments as quoted words,
# envfile.sh): switch `current`, restart, roll back. Output only on stdout, no markers.
# switch_to releases/NAME: point `current` there by renaming a new symlink over it.
switch_to() { ln -sfn -- "$1" "$ROOT/.current.new" && mv -fT -- "$ROOT/.current.new" "$ROOT/current"; }
# ENV_RUN: `sh -c "$ENV_RUN" sh CMD` runs CMD with the env file's variables, which travel in
# MICROCTL_ENV (the environment: only the same user and root read /proc/PID/environ), never on a
# command line (/proc/PID/cmdline is world-readable, and runuser stays for the whole step).
# shellcheck disable=SC2016 # expanded by the shell it is given to
ENV_RUN='[ -z "$MICROCTL_ENV" ] || eval "export $MICROCTL_ENV"; unset MICROCTL_ENV; exec sh -c "$1"'
# restart: the restart command, with the env file's variables, not holding the host lock,
# killed (with what it started in its process group) after TIMEOUT seconds like a build step.
restart() {
  (cd / && MICROCTL_ENV=$ENV_WORDS timeout -k 5 "${TIMEOUT:-600}" /bin/sh -c "$ENV_RUN" sh "$RESTART") 2>&1 < /dev/null 9>&-
}
# roll_back WHY: back to $PREV (or no `current` at all), restart, record NAME as failed.
roll_back() {
  if [ -n "$PREV" ]; then switch_to "$PREV"; else rm -f -- "$ROOT/current"; fi
  rb_out=$(restart) || printf '%s\n' "$rb_out"
  ledger_set "$NAME" status failed finished "$(ledger_now)" result "$1; rolled back to ${PREV#releases/}"
  rm -f -- "$LEDGER/.pending"
}
