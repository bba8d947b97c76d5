# shellcheck shell=sh
# The release ledger: $ROOT/.ledger/NAME, one per release, `KEY<TAB>VALUE` lines written by
# root only: seq (the host's own count of releases, which orders them: never the controller's
# clock), status (incomplete, healthy or failed), by, started, finished, revision, result.
# A release is `incomplete` from its first byte until a verdict: healthy once confirmed,
# failed when its build, restart or health check failed or nobody confirmed it in time.
# Also: the pending decision of a switched release (`.pending`: NAME, PREV), which the
# session and the confirm watchdog race for with `mkdir .decided.NAME` (exactly one wins).
# Names come from `releases/` (the app user's folder) and the ledger only through a glob,
# never a line-based listing, and only when `name_ok` (a name microctl can have made).
LEDGER="$ROOT/.ledger"
TAB=$(printf '\t')
NL=$(printf '\n.')
NL=${NL%.}

# name_ok NAME: letters, digits, `.`, `_`, `-`, not starting with a dot, not empty: no newline,
# tab or slash can reach a command or a listing.
name_ok() {
  case $1 in
    '' | .* | *[!A-Za-z0-9._-]*) return 1 ;;
  esac
}

# ledger_set NAME KEY VALUE [KEY VALUE]...: set fields of NAME's entry (tabs and newlines in
# values become spaces), replacing the file atomically.
ledger_set() {
  l_name=$1
  shift
  name_ok "$l_name" || return 1
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

# ledger_new NAME: a new entry, numbered one past every release the ledger knows.
# shellcheck disable=SC2317 # --rollback makes no release
ledger_new() {
  l_seq=$(ledger_order | tail -n 1 | cut -f 1)
  ledger_set "$1" seq "$((${l_seq:-0} + 1))"
}

# ledger_order: `SEQ<TAB>NAME` for every release (a folder in releases/ or a ledger entry), oldest
# first: by seq, then by name (releases made before seq existed count as 0, and sort by name).
ledger_order() {
  for l_r in "$ROOT/releases"/* "$LEDGER"/*; do
    l_r=${l_r##*/}
    name_ok "$l_r" && printf '%s\n' "$l_r"
  done | LC_ALL=C sort -u | while IFS= read -r l_r; do
    l_s=$(ledger_get "$l_r" seq)
    case $l_s in '' | *[!0-9]*) l_s=0 ;; esac
    printf '%s\t%s\n' "$l_s" "$l_r"
  done | LC_ALL=C sort -t "$TAB" -k 1,1n -k 2,2
}

# ledger_newest: the names of ledger_order, newest first.
ledger_newest() { ledger_order | LC_ALL=C sort -t "$TAB" -k 1,1nr -k 2,2r | cut -f 2; }

# ledger_list: one line per release, oldest first: NAME status by started finished revision
# result, tab-separated; a release folder without an entry (made before the ledger) is `unknown`.
# shellcheck disable=SC2317 # used by --list, not by the deploy script
ledger_list() {
  ledger_order | while IFS="$TAB" read -r _ r; do
    s=$(ledger_get "$r" status)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "${s:-unknown}" "$(ledger_get "$r" by)" "$(ledger_get "$r" started)" \
      "$(ledger_get "$r" finished)" "$(ledger_get "$r" revision)" "$(ledger_get "$r" result)"
  done
}

# ledger_now: the time for `started` and `finished`.
ledger_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
