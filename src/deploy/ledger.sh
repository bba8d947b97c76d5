# shellcheck shell=sh
# The release ledger: $ROOT/.ledger/NAME, one per release, `KEY<TAB>VALUE` lines written by
# root only: status (incomplete, healthy or failed), by, started, finished, revision, result.
# A release is `incomplete` from its first byte until a verdict: healthy once confirmed,
# failed when its build, restart or health check failed or nobody confirmed it in time.
# Also: the pending decision of a switched release (`.pending`: NAME, PREV), which the
# session and the confirm watchdog race for with `mkdir .decided.NAME` (exactly one wins).
LEDGER="$ROOT/.ledger"

# ledger_set NAME KEY VALUE [KEY VALUE]...: set fields of NAME's entry (tabs and newlines in
# values become spaces), replacing the file atomically.
ledger_set() {
  l_name=$1
  shift
  mkdir -p -- "$LEDGER" || return 1
  l_tmp="$LEDGER/.$l_name.$$"
  cp -- "$LEDGER/$l_name" "$l_tmp" 2> /dev/null || : > "$l_tmp"
  while [ $# -ge 2 ]; do
    l_value=$(printf '%s' "$2" | tr '\t\n' '  ')
    grep -v "^$1	" -- "$l_tmp" > "$l_tmp.n"
    printf '%s\t%s\n' "$1" "$l_value" >> "$l_tmp.n"
    mv -f -- "$l_tmp.n" "$l_tmp"
    shift 2
  done
  mv -f -- "$l_tmp" "$LEDGER/$l_name"
}

# ledger_get NAME KEY: the field's value (empty when unset or no entry).
ledger_get() { sed -n "s/^$2	//p" -- "$LEDGER/$1" 2> /dev/null || :; }

# ledger_list: one line per release, newest last: NAME status by started finished revision
# result, tab-separated; a release folder without an entry (made before the ledger) is `unknown`.
# shellcheck disable=SC2317 # used by --list, not by the deploy script
ledger_list() {
  # shellcheck disable=SC2010 # release names are made by microctl: no newline, sorted by name
  { ls -1 -- "$ROOT/releases" 2> /dev/null; ls -1 -- "$LEDGER" 2> /dev/null; } | grep -v '^\.' | sort -u |
    while IFS= read -r r; do
      s=$(ledger_get "$r" status)
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "${s:-unknown}" "$(ledger_get "$r" by)" "$(ledger_get "$r" started)" \
        "$(ledger_get "$r" finished)" "$(ledger_get "$r" revision)" "$(ledger_get "$r" result)"
    done
}

# ledger_now: the time for `started` and `finished`.
ledger_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
