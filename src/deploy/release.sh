# shellcheck shell=sh
# What both the deploy session and its confirm watchdog do to a host's releases, after the
# assignments of ROOT and RESTART (and, in a deploy session, ENV_WORDS: the env file's
# assignments as quoted words, envfile.sh, for functions.sh's run_step): switch `current`,
# restart, roll back. Output only on stdout, no markers.
# switch_to releases/NAME: point `current` there by renaming a new symlink over it (in ROOT,
# root's own folder: see functions.sh's safe_chain).
switch_to() { ln -sfn -- "$1" "$ROOT/.current.new" && mv -fT -- "$ROOT/.current.new" "$ROOT/current"; }
# ENV_RUN: `sh -c "$ENV_RUN"` runs MICROCTL_STEP in the folder MICROCTL_DIR (entered by the
# user the step runs as, never by root) with the env file's variables. Both the step and the
# variables travel in the environment (MICROCTL_STEP, MICROCTL_ENV: only the same user and root
# read /proc/PID/environ), never on a command line (/proc/PID/cmdline is world-readable, and
# runuser stays for the whole step).
# shellcheck disable=SC2016,SC2034 # expanded by the shell it is given to (functions.sh's run_step)
ENV_RUN='cd -- "$MICROCTL_DIR" || exit 1; [ -z "$MICROCTL_ENV" ] || eval "export $MICROCTL_ENV"; microctl_step=$MICROCTL_STEP; unset MICROCTL_ENV MICROCTL_STEP MICROCTL_DIR; eval "$microctl_step"'
# restart: the restart command, as root, in `/`, with a fixed minimal environment (PATH, HOME,
# LANG, ROOT): never the env file's variables (systemd applies EnvironmentFile= to the
# service, not to root's commands: a PATH there would run the app user's binaries as root).
# The command reaches `sh` on its stdin (not a command line). Not holding the host lock,
# killed (with what it started in its process group) after TIMEOUT seconds like a build step.
restart() {
  (cd / && printf '%s\n' "$RESTART" | timeout -k 5 "${TIMEOUT:-600}" env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME="${HOME:-/root}" \
    LANG="${LANG:-C.UTF-8}" ROOT="$ROOT" /bin/sh -s) 2>&1 9>&-
}
# roll_back WHY: back to $PREV (or no `current` at all), restart, record NAME as failed.
roll_back() {
  if [ -n "$PREV" ]; then switch_to "$PREV"; else rm -f -- "$ROOT/current"; fi
  rb_out=$(restart) || printf '%s\n' "$rb_out"
  ledger_set "$NAME" status failed finished "$(ledger_now)" result "$1; rolled back to ${PREV#releases/}"
  rm -f -- "$LEDGER/.pending"
}
