# shellcheck shell=sh
# Gathers a host's facts (src/facts/mod.rs), after fingerprint.sh (its `F` line): one exec,
# as the login user (nothing here needs root). Prints `KEY<TAB>VALUE` lines; the client
# takes what it knows and requires each fact. Processes: `dpkg` and `nproc`.
printf 'arch\t%s\n' "$(dpkg --print-architecture 2> /dev/null)"
printf 'cpus\t%s\n' "$(nproc 2> /dev/null)"
while read -r MF_k MF_n _; do
  case $MF_k in MemTotal:) printf 'mem_kib\t%s\n' "$MF_n" ;; esac
done < /proc/meminfo
MF_h=
read -r MF_h < /proc/sys/kernel/hostname
printf 'hostname\t%s\n' "$MF_h"
if [ -r /etc/os-release ]; then
  while IFS= read -r MF_l || [ -n "$MF_l" ]; do
    case $MF_l in
      ID=* | VERSION_ID=* | VERSION_CODENAME=*) printf 'os\t%s\n' "$MF_l" ;;
    esac
  done < /etc/os-release
fi
