#!/usr/bin/env bash
# No-op converge with the host firewall (issue 23) on every host, against the exec floor,
# interleaved as in bench/noop-ab.sh. A firewall table on a loopback "host" would filter this
# machine itself, so the fleet is the netns kind (bench/fleet.sh fleet_up_netns: one network
# namespace and sshd per host, reached over a veth /30 of 198.18.64.0/18). The workload is
# bench/converge.sh's (bench/microctl/roles/bench); the firewall inventory adds
# `firewall = true` and `ssh_from` = this machine's side of the host's veth. As root:
#   flock /tmp/microctl-bench.lock bash bench/firewall-noop.sh N ROUNDS
# The first converge (untimed) applies every host's table, which is then asserted live in
# each namespace. Each round times `exec all -- true` (the floor), a no-op converge with the
# firewall, and a no-op converge of the same inventory without the `firewall` var (converge
# then neither probes nor touches the table: the tables are asserted unchanged at the end).
# Every timed run must exit 0; every timed converge must report, for every host, status ok,
# 0 changes and one SSH channel (`channels_opened`: the no-op is one exec). Prints every run
# (wall time, the controller's CPU by /usr/bin/time), the medians and their ratio to the floor.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: bash bench/firewall-noop.sh N ROUNDS" >&2; exit 2; }
n=$1 rounds=$2
ulimit -n "$(ulimit -Hn)" # a connection per host, and then some
command -v nft > /dev/null || { echo "nft is missing: install the Debian package nftables" >&2; exit 2; }
cargo build --release --quiet
bin=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/microctl
work=$PWD/bench/work/firewall
fleet=$work/fleet
roles=$PWD/bench/microctl/roles
source bench/fleet.sh
trap 'fleet_down_netns "$fleet"' EXIT
fleet_up_netns "$n" "$fleet" > /dev/null
python3 -c 'import sys; sys.path.insert(0, "bench"); import converge; converge.write_static()'
rm -rf "$work/roots"

inventory() { # FILE FIREWALL_VARS(yes|no)
  local i all here there private
  all=$(for i in $(seq 1 "$n"); do printf '"198.18.%d.%d",' $((2 + i / 250)) $((i % 250 + 1)); done)
  {
    printf '[defaults]\nuser = "root"\nidentity = "%s"\nknown_hosts = "%s"\n' "$fleet/id_ed25519" "$fleet/known_hosts"
    printf 'vars = { workers = 2, upstream_port = 5000, all_hosts = [%s] }\n\n' "${all%,}"
    for i in $(seq 1 "$n"); do
      read -r here there < <(fleet_netns_addr "$i")
      private=198.18.$((2 + i / 250)).$((i % 250 + 1))
      mkdir -p "$work/roots/h$i"
      printf '[hosts.h%d]\naddress = "%s"\ngroups = ["bench"]\nstate_dir = "%s/state"\n' "$i" "$there" "$work/roots/h$i"
      printf 'vars = { root = "%s", inventory_name = "h%d", private_address = "%s", ssh_from = "%s"%s }\n' \
        "$work/roots/h$i" "$i" "$private" "$here" "$([ "$2" = yes ] && echo ', firewall = true')"
    done
    printf '[groups.bench]\nroles = ["bench"]\n'
  } > "$1"
}
inventory "$work/firewall.toml" yes
inventory "$work/plain.toml" no

# Every host of the JSON Lines in FILE: status ok, 0 changes, one channel.
noop_ok() { # LABEL FILE
  python3 - "$n" "$@" << 'PY'
import json, sys
n, label, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
hosts = [json.loads(l) for l in open(path) if l.startswith("{")]
hosts = [h for h in hosts if h.get("type") == "host"]
bad = [h for h in hosts if (h.get("status"), h.get("changed"), h.get("channels_opened")) != ("ok", 0, 1)]
if len(hosts) != n or bad:
    sys.exit(f"{label}: {len(hosts)} hosts reported of {n}; not a no-op of one channel: {bad[:3]}")
PY
}

tables() { # every host's live table
  local i
  for i in $(seq 1 "$n"); do
    ip netns exec "mcbench-$i" nft list table inet microctl 2> /dev/null || { echo "mcbench-$i has no table inet microctl" >&2; return 1; }
  done
}

# The load average also counts the sessions of a bench that just ended: the share of idle CPU
# over one second says whether someone else is using the machine.
idle() {
  local a b
  read -ra a < /proc/stat
  sleep 1
  read -ra b < /proc/stat
  echo "$(((b[4] - a[4]) * 100 / (b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + b[7] - a[1] - a[2] - a[3] - a[4] - a[5] - a[6] - a[7])))% idle"
}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg), CPU $(idle)"
"$bin" -i "$work/firewall.toml" --roles-dir "$roles" converge --forks "$n" --json > "$work/first.json" 2>&1 \
  || { echo "the first converge failed:" >&2; tail -20 "$work/first.json" >&2; exit 1; }
tables > "$work/tables.before"
[ "$(grep -c 'comment "microctl sha256:' "$work/tables.before")" -eq "$n" ] \
  || { echo "not every host has microctl's table" >&2; exit 1; }
echo "every host's table inet microctl is live ($n namespaces)"

times=$work/times
: > "$times"
# Wall time from bash's microsecond clock (/usr/bin/time's %e has 10 ms steps, too coarse for
# small N); the controller's CPU from /usr/bin/time.
timed() { # LABEL CMD...
  local label=$1 t0 t1 cpu
  shift
  t0=$EPOCHREALTIME
  /usr/bin/time -o "$work/cpu" -f "%U %S" "$@" > "$work/last.json" 2>&1 \
    || { echo "$label failed:" >&2; tail -20 "$work/last.json" >&2; exit 1; }
  t1=$EPOCHREALTIME
  cpu=$(tail -1 "$work/cpu")
  awk -v l="$label" -v a="$t0" -v b="$t1" -v c="$cpu" 'BEGIN { printf "%s %.4f %s\n", l, b - a, c }' >> "$times"
}
for _ in $(seq "$rounds"); do
  timed floor "$bin" -i "$work/firewall.toml" exec all --forks "$n" --json -- true
  timed firewall "$bin" -i "$work/firewall.toml" --roles-dir "$roles" converge --forks "$n" --json
  noop_ok firewall "$work/last.json"
  timed no-firewall "$bin" -i "$work/plain.toml" --roles-dir "$roles" converge --forks "$n" --json
  noop_ok no-firewall "$work/last.json"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg), CPU $(idle) (a second after the last run)"
tables > "$work/tables.after"
cmp -s "$work/tables.before" "$work/tables.after" || { echo "a host's table changed during the rounds" >&2; exit 1; }
python3 bench/medians.py "$times"
