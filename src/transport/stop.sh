# shellcheck shell=sh
# Stop what this SSH connection runs on the host (the client was interrupted: Ctrl-C).
# $1: the pid of the sshd process serving the connection (the login shell's $PPID). Every
# session it started is a session leader (sshd calls setsid for each); all of them but this
# one's own are stopped: each process of those sessions gets TERM (the session scripts' traps
# run and empty the lock note; `timeout` passes TERM on to its process group), then KILL what
# is left after 3 s. The host lock (fd 9, inherited by every process of the session) is free
# once they are gone. A session with a detached child (a process of its own session whose
# parent is in ours: deploy's confirm watchdog, armed before the switch) is left alone: the
# host then decides on its own, as when the controller is killed. Builtins only, but `sleep`
# while waiting; prints `stopped N` and `kept N` (sessions).
set -u
conn=$1
read -r l < "/proc/$$/stat" || exit 70
l=${l##*) }
# shellcheck disable=SC2086 # the fields of /proc/PID/stat after the name: numbers and letters
set -- $l
mine=$4
# scan: every process as a word `pid,ppid,sid,state` in $all.
scan() {
  all=''
  for f in /proc/[0-9]*/stat; do
    read -r l 2> /dev/null < "$f" || continue
    p=${l%% *}
    l=${l##*) }
    # shellcheck disable=SC2086 # as above
    set -- $l
    all="$all $p,$2,$4,$1"
  done
}
# split WORD: p, pp, s, st from a word of $all.
split() {
  p=${1%%,*}
  r=${1#*,}
  pp=${r%%,*}
  r=${r#*,}
  s=${r%%,*}
  st=${r#*,}
}
scan
sids=' '
members=' '
for w in $all; do
  split "$w"
  [ "$pp" = "$conn" ] && [ "$s" != "$mine" ] && [ "$p" = "$s" ] && sids="$sids$s "
done
[ "$sids" = ' ' ] && { echo 'stopped 0'; echo 'kept 0'; exit 0; }
for w in $all; do
  split "$w"
  case $sids in *" $s "*) members="$members$p=$s " ;; esac
done
kept=' '
for w in $all; do
  split "$w"
  case $sids in *" $s "*) continue ;; esac
  case $members in
    *" $pp="*)
      k=${members#* "$pp"=}
      kept="$kept${k%% *} "
      ;;
  esac
done
# victims: the live processes of the sessions stopped, in $v.
victims() {
  v=''
  for w in $all; do
    split "$w"
    case $sids in *" $s "*) ;; *) continue ;; esac
    case $kept in *" $s "*) continue ;; esac
    [ "$st" = Z ] || v="$v $p"
  done
}
n=0
k=0
for s in $sids; do
  case $kept in *" $s "*) k=$((k + 1)) ;; *) n=$((n + 1)) ;; esac
done
victims
# shellcheck disable=SC2086 # a list of pids
[ -z "$v" ] || kill -TERM $v 2> /dev/null
# alive: which of $v still run (not zombies), in $v.
alive() {
  a=''
  for p in $v; do
    read -r l 2> /dev/null < "/proc/$p/stat" || continue
    l=${l##*) }
    case $l in Z*) ;; *) a="$a $p" ;; esac
  done
  v=$a
}
i=0
while [ -n "$v" ] && [ $i -lt 30 ]; do
  sleep 0.1
  i=$((i + 1))
  alive
done
if [ -n "$v" ]; then
  scan
  victims
fi
# shellcheck disable=SC2086 # a list of pids
[ -z "$v" ] || kill -KILL $v 2> /dev/null
echo "stopped $n"
echo "kept $k"
