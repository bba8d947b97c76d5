# shellcheck shell=sh
# The hash record's reading half, the probe's first part (src/plan/probe.rs appends the
# rest): list the hash record (the folder $STATE/hashes that `record_hashes` in write.sh
# makes: its facts are in the names, one `readdir`, no file is read) and keep each name as a
# line `H<TAB>NAME` in H for the client (printed with the start of `find`'s records, in one
# write), which alone decides what the record vouches for (mod.rs). For the probe's `find`,
# set T0 (the record's time), HT (the path of its `T_` entry, whose ctime the client compares
# with the folder's) and, as positional parameters, `-o -inum INODE` for each file the record
# may vouch for (not `N_` ones: always hashed): `find` hashes a file unless its inode is one
# of those and its ctime is not newer than T0. Names only: nothing is opened or followed
# before the client has seen the state folder's mode (it refuses the host, using nothing of
# this, unless it is 0700). Anything malformed leaves T0=0: every file is hashed.
T0=0
H=''
set --
if [ -d "$STATE/hashes" ] && [ ! -L "$STATE/hashes" ]; then
  for e in "$STATE"/hashes/*; do
    e=${e##*/}
    [ "$e" != '*' ] || break
    H="${H}H	$e
"
    case $e in
      T_*) T0=${e#T_} ;;
      N_*) ;;
      *)
        i=${e#*_}
        i=${i%%_*}
        case $i in
          '' | *[!0-9]*) ;;
          *) set -- "$@" -o -inum "$i" ;;
        esac
        ;;
    esac
  done
fi
case $T0 in
  [0-9]*.[0-9]*) case $T0 in *[!0-9.]* | *.*.*) T0=0 ;; esac ;;
  *) T0=0 ;;
esac
# shellcheck disable=SC2034 # a starting point of the probe's `find` (src/plan/probe.rs)
HT=$STATE/hashes/T_$T0
