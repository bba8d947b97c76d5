# shellcheck shell=sh
# The probe's first part (src/plan/probe.rs appends the rest): read the hash record
# ($STATE/hashes, written by `record_hashes` in src/apply/host.sh) with builtins and print
# each of its lines as `H<TAB>LINE` for the client, which alone decides what the record
# vouches for (src/plan/hashes.rs). For the probe's `find`, set T0 (the record's time) and,
# as positional parameters, `-o -inum INODE` for each file the record may vouch for: `find`
# hashes a file unless its inode is one of those and its ctime is not newer than T0.
# Read from a plain file only (never through a symlink, never a FIFO): the client has not yet
# seen the state folder's mode, and refuses the host (using nothing of this) unless it is
# 0700. Anything malformed leaves T0=0: every file is hashed.
T0=0
set --
if [ -f "$STATE/hashes" ] && [ ! -L "$STATE/hashes" ]; then
  while IFS= read -r l; do
    printf 'H\t%s\n' "$l"
    case $l in
      "T	"*) T0=${l#T	} ;;
      "S	"*)
        case ${l#S	} in
          '' | *[!0-9]*) ;;
          *) set -- "$@" -o -inum "${l#S	}" ;;
        esac
        ;;
    esac
  done < "$STATE/hashes"
fi
case $T0 in
  [0-9]*.[0-9]*) case $T0 in *[!0-9.]* | *.*.*) T0=0 ;; esac ;;
  *) T0=0 ;;
esac
