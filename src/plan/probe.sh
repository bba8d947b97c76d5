# shellcheck shell=sh
# The probe's first part (src/plan/probe.rs appends the rest): list the hash record (the
# `hash_*` names `record_hashes` in src/apply/host.sh leaves in the state folder: its facts
# are in the names, one `readdir`, no file is read) and print each name as `H<TAB>NAME` for
# the client, which alone decides what the record vouches for (src/plan/hashes.rs). For the
# probe's `find`, set T0 (the record's time) and, as positional parameters, `-o -inum INODE`
# for each file the record may vouch for: `find` hashes a file unless its inode is one of
# those and its ctime is not newer than T0. Names only: nothing is opened or followed before
# the client has seen the state folder's mode (it refuses the host, using nothing of this,
# unless it is 0700). Anything malformed leaves T0=0: every file is hashed.
T0=0
set --
for e in "$STATE"/hash_*; do
  e=${e##*/}
  [ "$e" != 'hash_*' ] || break
  printf 'H\t%s\n' "$e"
  case $e in
    hash_T_*) T0=${e#hash_T_} ;;
    *)
      i=${e#hash_*_}
      i=${i%%_*}
      case $i in
        '' | *[!0-9]*) ;;
        *) set -- "$@" -o -inum "$i" ;;
      esac
      ;;
  esac
done
case $T0 in
  [0-9]*.[0-9]*) case $T0 in *[!0-9.]* | *.*.*) T0=0 ;; esac ;;
  *) T0=0 ;;
esac
