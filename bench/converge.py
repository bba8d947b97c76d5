#!/usr/bin/env python3
"""Converge benchmark: microctl vs ansible-core vs pyinfra on the same loopback sshd fleet
(bench/fleet.sh), the same workload (bench/workload/templates), three scenarios:
fresh (empty hosts), noop (nothing changes), one (one var changed: one file, one handler).

Every run is checked afterwards (contents, modes, handler count) and a failed check is
reported as a failure, not timed. Wall time and peak memory (RSS summed over the tool's whole
process tree, sampled every 50 ms from /proc) per run; medians over the runs (bench/report.py).

Usage (as root, fleet running, tools installed): see bench/converge.sh.
"""
import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(BENCH, "work", "converge")
PAGE = os.sysconf("SC_PAGE_SIZE")
SAMPLE_EVERY = 0.05  # seconds between memory samples
RUN_TIMEOUT = 3600  # seconds before a run is killed and recorded as failed


def descendants(pid):
    """pid and all its descendants, walking /proc/PID/task/TID/children (cheap: only the tree)."""
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    frontier.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def tree_rss(root_pid):
    """Sum of resident memory (bytes) of root_pid and all its descendants."""
    total = 0
    for p in descendants(root_pid):
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            pass
    return total


def timed(cmd, env=None, cwd=None):
    """Runs cmd with its output in a file (never a pipe it could fill and block on).
    Returns (seconds, peak tree RSS bytes, largest single-process RSS bytes as /usr/bin/time -v
    reports it, exit code, last 4000 bytes of output)."""
    with tempfile.TemporaryFile() as log:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        # Memory is sampled by a thread; the end is the blocking wait's return, so the time is
        # exact (a polling loop would add up to SAMPLE_EVERY to every run).
        done = threading.Event()
        peak = [0]

        def sample():
            while not done.wait(SAMPLE_EVERY):
                peak[0] = max(peak[0], tree_rss(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        killer = threading.Timer(RUN_TIMEOUT, lambda: os.killpg(proc.pid, signal.SIGKILL))
        killer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - start
        killer.cancel()
        done.set()
        sampler.join()
        peak = peak[0]
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(max(0, log.seek(0, os.SEEK_END) - 4000))
        out = log.read().decode(errors="replace")
    return seconds, peak, usage.ru_maxrss * 1024, proc.returncode, out


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
    converge = lambda port: [binary, "-i", inv, "--roles-dir", roles, "converge", "--forks", str(fleet.n), "-e", f"upstream_port:={port}"]
    floor = [binary, "-i", inv, "exec", "all", "--forks", str(fleet.n), "--", "true"]
    return converge, floor


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


def write_static():
    """The workload's 64 KiB static file, for the checks and for microctl's role."""
    os.makedirs(WORK, exist_ok=True)
    with open(os.path.join(WORK, "static.bin"), "wb") as f:
        f.write(bytes((i * 7 + 3) % 251 for i in range(64 * 1024)))
    os.makedirs(os.path.join(BENCH, "microctl", "files"), exist_ok=True)
    shutil.copy(os.path.join(WORK, "static.bin"), os.path.join(BENCH, "microctl", "files", "static.bin"))


def machine():
    """What the numbers were measured on."""
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    sshd = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    return dict(cpus=os.cpu_count(), cpu=cpu, mem_mib=mem, kernel=platform.release(), openssh=sshd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="10,50,100")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tools", default="microctl,ansible,pyinfra")
    ap.add_argument("--microctl", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--fleet", required=True)
    ap.add_argument("--versions", default="")
    ap.add_argument("--command", default="bash bench/converge.sh")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    write_static()

    doc = dict(command=a.command, machine=machine(),
               versions=a.versions, started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), results=[])

    def record(**r):
        doc["results"].append(r)
        with open(a.out + ".tmp", "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(a.out + ".tmp", a.out)
        state = "ok" if r["ok"] else "FAILED: " + r["problem"]
        print(f"{r['tool']:9} n={r['n']:3} {r['scenario']:5} run {r['run']}: {r['seconds']:7.2f}s "
              f"{r['rss'] / 2**20:7.1f} MiB {state}", flush=True)

    for n in [int(x) for x in a.sizes.split(",")]:
        fleet = Fleet(n, a.fleet)
        for tool in a.tools.split(","):
            env, floor = dict(os.environ), None
            if tool == "microctl":
                cmd, floor = microctl_tool(fleet, a.microctl)
            elif tool == "ansible":
                cmd, extra = ansible_tool(fleet, a.venv)
                env.update(extra)
            else:
                cmd = pyinfra_tool(fleet, a.venv)
            for run in range(1, a.runs + 1):
                if floor:
                    secs, rss, maxrss, code, out = timed(floor)
                    record(tool="exec", n=n, scenario="floor", run=run, seconds=secs, rss=rss, maxrss=maxrss,
                           ok=code == 0, problem=None if code == 0 else f"exit {code}: {out}")
                fleet.wipe()
                for scenario, port, handlers in (("fresh", 5000, 1), ("noop", 5000, 1), ("one", 5000 + run, 2)):
                    secs, rss, maxrss, code, out = timed(cmd(port), env=env, cwd=BENCH)
                    problem = None if code == 0 else f"exit {code}: {out}"
                    problem = problem or fleet.check(port, handlers)
                    record(tool=tool, n=n, scenario=scenario, run=run, seconds=secs, rss=rss, maxrss=maxrss,
                           ok=problem is None, problem=problem)
    return 0 if all(r["ok"] for r in doc["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
