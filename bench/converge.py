#!/usr/bin/env python3
"""Converge benchmark: microctl vs ansible-core vs pyinfra on the same loopback sshd fleet
(bench/fleet.sh), the same workload (bench/workload/templates), three scenarios:
fresh (empty hosts), noop (nothing changes), one (one var changed: one file, one handler).

Every run is checked afterwards (contents, modes, handler count) and a failed check is
reported as a failure, not timed. Wall time and peak memory (RSS summed over the tool's whole
process tree, sampled every 20 ms from /proc) per run; medians over the runs.

Usage (as root, fleet running, tools installed): see bench/converge.sh.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(BENCH, "work", "converge")
PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(root_pid):
    """Sum of RSS (bytes) of root_pid and all its descendants."""
    parents = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parents[int(pid)] = (int(fields[1]), int(fields[21]))
        except (OSError, IndexError, ValueError):
            pass
    total, frontier = 0, [root_pid]
    while frontier:
        p = frontier.pop()
        if p in parents:
            total += parents[p][1] * PAGE
        frontier.extend(c for c, (pp, _) in parents.items() if pp == p)
    return total


def timed(cmd, env=None, cwd=None):
    """Runs cmd; returns (seconds, peak tree RSS bytes, exit code, output)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.02)
    out = proc.stdout.read().decode(errors="replace")
    return time.monotonic() - start, peak, proc.returncode, out


class Fleet:
    def __init__(self, n, fleet_dir):
        self.n = n
        self.dir = fleet_dir
        self.hosts = [f"h{i}" for i in range(1, n + 1)]

    def root(self, h):
        return os.path.join(WORK, "roots", h)

    def private(self, h):
        i = int(h[1:])
        return f"198.18.{2 + i // 250}.{i % 250 + 1}"

    def wipe(self):
        shutil.rmtree(os.path.join(WORK, "roots"), ignore_errors=True)
        for h in self.hosts:
            os.makedirs(self.root(h))

    def check(self, port, handler_lines):
        """Returns None if every host has the expected state, else what is wrong."""
        static = open(os.path.join(WORK, "static.bin"), "rb").read()
        for h in self.hosts:
            r = self.root(h)
            try:
                site = open(f"{r}/etc/app/site.conf").read()
                if f"server {self.private(h)}:{port};" not in site:
                    return f"{h}: site.conf has not port {port}"
                prom = open(f"{r}/etc/prometheus/prometheus.yml").read()
                if prom.count(":9100\"") != self.n:
                    return f"{h}: prometheus.yml does not list {self.n} hosts"
                for s in ("start.sh", "backup.sh"):
                    if os.stat(f"{r}/etc/app/{s}").st_mode & 0o777 != 0o755:
                        return f"{h}: {s} is not 0755"
                for u in ("gunicorn", "node_exporter", "prometheus"):
                    if h not in open(f"{r}/etc/systemd/{u}.service").read():
                        return f"{h}: {u}.service not rendered for it"
                if open(f"{r}/etc/app/static.bin", "rb").read() != static:
                    return f"{h}: static.bin differs"
                lines = len(open(f"{r}/handler.log").read().splitlines()) if os.path.exists(f"{r}/handler.log") else 0
                if lines != handler_lines:
                    return f"{h}: handler ran {lines} times, expected {handler_lines}"
            except OSError as e:
                return f"{h}: {e}"
        return None


def microctl_tool(fleet, binary):
    inv = os.path.join(WORK, f"microctl-{fleet.n}.toml")
    with open(inv, "w") as f:
        f.write(f'[defaults]\nuser = "root"\nidentity = "{fleet.dir}/id_ed25519"\nknown_hosts = "{fleet.dir}/known_hosts"\n')
        f.write(f"vars = {{ workers = 2, upstream_port = 5000, all_hosts = {json.dumps([fleet.private(h) for h in fleet.hosts])} }}\n\n")
        for h in fleet.hosts:
            f.write(f'[hosts.{h}]\naddress = "127.0.0.1"\nport = {22000 + int(h[1:])}\ngroups = ["bench"]\n')
            f.write(f'state_dir = "{fleet.root(h)}/state"\n')
            f.write(f'vars = {{ root = "{fleet.root(h)}", inventory_name = "{h}", private_address = "{fleet.private(h)}" }}\n')
        f.write('[groups.bench]\nroles = ["bench"]\n')
    roles = os.path.join(BENCH, "microctl", "roles")
    return lambda port: [binary, "-i", inv, "--roles-dir", roles, "converge", "--forks", str(fleet.n), "-e", f"upstream_port={port}"]


def ansible_tool(fleet, venv):
    inv = os.path.join(WORK, f"ansible-{fleet.n}.ini")
    with open(inv, "w") as f:
        f.write("[bench]\n")
        for h in fleet.hosts:
            f.write(f"{h} ansible_host=127.0.0.1 ansible_port={22000 + int(h[1:])} root={fleet.root(h)} "
                    f"inventory_name={h} private_address={fleet.private(h)}\n")
        f.write(f"[bench:vars]\nansible_user=root\nansible_python_interpreter=/usr/bin/python3\nworkers=2\nstatic_file={WORK}/static.bin\n")
        f.write(f"all_hosts={json.dumps([fleet.private(h) for h in fleet.hosts])}\n")
    cfg = os.path.join(WORK, "ansible.cfg")
    with open(cfg, "w") as f:
        f.write(f"[defaults]\nforks = {fleet.n}\nhost_key_checking = True\ngathering = explicit\n"
                f"interpreter_python = auto_silent\nprivate_key_file = {fleet.dir}/id_ed25519\n"
                "[ssh_connection]\npipelining = True\ncontrol_path_dir = /tmp/mctl-ans\n"
                f"ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile={fleet.dir}/known_hosts "
                "-o StrictHostKeyChecking=yes\n")
    playbook = os.path.join(BENCH, "ansible", "site.yml")
    cmd = lambda port: [f"{venv}/bin/ansible-playbook", "-i", inv, playbook, "-e", f"upstream_port={port}"]
    return cmd, {"ANSIBLE_CONFIG": cfg}


def pyinfra_tool(fleet, venv):
    inv = os.path.join(WORK, f"pyinfra-{fleet.n}.py")
    with open(inv, "w") as f:
        f.write("hosts = [\n")
        for h in fleet.hosts:
            data = dict(ssh_hostname="127.0.0.1", ssh_port=22000 + int(h[1:]), ssh_user="root",
                        ssh_key=f"{fleet.dir}/id_ed25519", ssh_known_hosts_file=f"{fleet.dir}/known_hosts",
                        ssh_strict_host_key_checking="yes", root=fleet.root(h), inventory_name=h,
                        private_address=fleet.private(h), workers=2, static_file=f"{WORK}/static.bin",
                        all_hosts=[fleet.private(x) for x in fleet.hosts])
            f.write(f"    ({h!r}, {data!r}),\n")
        f.write("]\n")
    deploy = os.path.join(BENCH, "pyinfra", "deploy.py")
    return lambda port: [f"{venv}/bin/pyinfra", "-y", "--parallel", str(fleet.n), "--data", f"upstream_port={port}", inv, deploy]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,50,100")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tools", default="microctl,ansible,pyinfra")
    ap.add_argument("--microctl", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--fleet", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    with open(os.path.join(WORK, "static.bin"), "wb") as f:
        f.write(bytes((i * 7 + 3) % 251 for i in range(64 * 1024)))
    os.makedirs(os.path.join(BENCH, "microctl", "files"), exist_ok=True)
    shutil.copy(os.path.join(WORK, "static.bin"), os.path.join(BENCH, "microctl", "files", "static.bin"))

    results = []
    for n in [int(x) for x in a.sizes.split(",")]:
        fleet = Fleet(n, a.fleet)
        for tool in a.tools.split(","):
            env = dict(os.environ)
            if tool == "microctl":
                cmd = microctl_tool(fleet, a.microctl)
            elif tool == "ansible":
                cmd, extra = ansible_tool(fleet, a.venv)
                env.update(extra)
            else:
                cmd = pyinfra_tool(fleet, a.venv)
            if tool == "microctl":
                secs, _, code, out = timed([a.microctl, "-i", os.path.join(WORK, f"microctl-{n}.toml"), "exec", "all", "--forks", str(n), "--", "true"])
                results.append(dict(tool="microctl exec all -- true", n=n, scenario="connect floor", seconds=secs, rss=0, ok=code == 0))
            for run in range(1, a.runs + 1):
                fleet.wipe()
                for scenario, port, handlers in (("fresh", 5000, 1), ("noop", 5000, 1), ("one", 5000 + run, 2)):
                    secs, rss, code, out = timed(cmd(port), env=env, cwd=BENCH)
                    problem = None if code == 0 else f"exit {code}: {out[-2000:]}"
                    problem = problem or fleet.check(port, handlers)
                    results.append(dict(tool=tool, n=n, scenario=scenario, run=run, seconds=secs, rss=rss, ok=problem is None, problem=problem))
                    print(f"{tool:9} n={n:3} {scenario:5} run {run}: {secs:7.2f}s {rss / 2**20:7.1f} MiB {'ok' if problem is None else 'FAILED: ' + problem}", flush=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=1)

    print("\n| hosts | scenario | " + " | ".join(a.tools.split(",")) + " |")
    print("|---|---|" + "---|" * len(a.tools.split(",")))
    for n in [int(x) for x in a.sizes.split(",")]:
        for scenario in ("fresh", "noop", "one"):
            cells = []
            for tool in a.tools.split(","):
                rs = [r for r in results if r["tool"] == tool and r["n"] == n and r["scenario"] == scenario]
                if rs and all(r["ok"] for r in rs):
                    cells.append(f"{statistics.median(r['seconds'] for r in rs):.2f} s, {statistics.median(r['rss'] for r in rs) / 2**20:.0f} MiB")
                else:
                    cells.append("FAILED" if rs else "-")
            print(f"| {n} | {scenario} | " + " | ".join(cells) + " |")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
