# shellcheck shell=sh
# The facts' fingerprint (src/facts/mod.rs): the boot id and os-release's ID and VERSION_ID,
# read with shell builtins only (no process, no round trip: it runs inside the probe of a
# host whose roles read `facts`). One line: `F<TAB>BOOT_ID<TAB>ID=..<TAB>VERSION_ID=..`.
# A value holding a tab or a newline cannot forge another line: the client compares the
# whole line with the one the facts were gathered under.
MF_b=
MF_i=
MF_v=
[ -r /proc/sys/kernel/random/boot_id ] && read -r MF_b < /proc/sys/kernel/random/boot_id
if [ -r /etc/os-release ]; then
  while IFS= read -r MF_l || [ -n "$MF_l" ]; do
    case $MF_l in
      ID=*) MF_i=$MF_l ;;
      VERSION_ID=*) MF_v=$MF_l ;;
    esac
  done < /etc/os-release
fi
printf 'F\t%s\t%s\t%s\n' "$MF_b" "$MF_i" "$MF_v"
