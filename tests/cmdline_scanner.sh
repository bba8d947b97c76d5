#!/bin/sh
# The attacker of the tests that snippets holding a secret stay off command lines: run as user
# `nobody`, it scans every /proc/PID/cmdline (world-readable) while a snippet waits for it.
# Usage: sh cmdline_scanner.sh DIR ROUND...; the secret to look for is in $NEEDLE (the
# environment: never on this process's own command line). For each ROUND, once DIR/started.ROUND
# exists: three passes over every command line, `SAW ROUND: LINE` in DIR/log for each line
# holding the needle, then `ROUND: scanned N command lines, W bounded wrappers` (the snippets'
# `timeout -k 5` wrapper: seen, so the scan ran while the snippet did), then DIR/done.ROUND.
# Rounds are served in whatever order they start; it gives up after 60 s.
D=$1
shift
left=$#
polls=0
while [ "$left" -gt 0 ]; do
  for r in "$@"; do
    if [ ! -e "$D/started.$r" ] || [ -e "$D/done.$r" ]; then continue; fi
    n=0
    w=0
    for pass in 1 2 3; do
      for f in /proc/[0-9]*/cmdline; do
        c=$(tr '\0' ' ' 2>/dev/null < "$f") || continue
        n=$((n + 1))
        case $c in *"timeout -k 5 "*) w=$((w + 1)) ;; esac
        case $c in *"$NEEDLE"*) printf 'SAW %s: %s\n' "$r" "$c" >> "$D/log" ;; esac
      done
    done
    printf '%s: scanned %s command lines, %s bounded wrappers (%s passes)\n' "$r" "$n" "$w" "$pass" >> "$D/log"
    touch "$D/done.$r"
    left=$((left - 1))
  done
  polls=$((polls + 1))
  if [ "$polls" -gt 1200 ]; then
    echo "gave up waiting with $left rounds left" >> "$D/log"
    exit 1
  fi
  sleep 0.05
done
