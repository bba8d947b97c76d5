//! Test harness: real OpenSSH `sshd` daemons on loopback (or inside network namespaces the test
//! creates), client keys made with `ssh-keygen`, inventories written to a temp dir, and the real
//! `microctl` binary. Everything started is stopped by pid on drop.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

/// Another run holding the host lock on `state` (`flock` on the folder, as the host session
/// takes it), returned once the lock is HELD (the holder says so on its stdout: no sleep
/// guessing when it got there). Kill the child to release it (`-F`: flock became it).
pub fn hold_lock(state: &Path) -> Child {
    use std::io::BufRead;
    let mut holder = Command::new("flock")
        .arg("-F")
        .arg(state)
        .args(["sh", "-c", "echo held; exec sleep 60"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("flock is missing: install the Debian package util-linux");
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "held\n", "the lock holder did not start");
    holder
}

/// Runs a command, panicking with its output if it fails.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("spawn sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A client key pair made by ssh-keygen.
pub struct Key {
    pub private: PathBuf,
    pub public_line: String,
}

impl Key {
    pub fn generate(dir: &Path, name: &str, kind: &str, passphrase: &str) -> Key {
        let private = dir.join(name);
        let bits = if kind == "rsa" { "-b 3072" } else { "" };
        sh(&format!("ssh-keygen -q -t {kind} {bits} -N '{passphrase}' -C test-{name} -f {}", private.display()));
        let public_line = std::fs::read_to_string(private.with_extension("pub")).unwrap().trim().to_string();
        Key { private, public_line }
    }
}

/// Options for one sshd.
pub struct SshdOptions {
    pub max_sessions: u32,
    /// Run inside this network namespace, listening on `address:22`.
    pub netns: Option<(String, String)>,
    /// Port inside the namespace (default 22).
    pub netns_port: Option<u16>,
    pub authorized: Vec<String>,
    /// authorized_keys options for the workspace's own key (e.g. `command="..."`).
    pub key_options: Option<String>,
    /// Host key types (`ssh-keygen -t`), each a `HostKey`; the first is `Sshd::host_key`.
    pub host_key_types: Vec<&'static str>,
    /// Also trust each user's own `~/.ssh/authorized_keys` (after the test's file).
    pub home_keys: bool,
}

impl Default for SshdOptions {
    fn default() -> Self {
        SshdOptions {
            max_sessions: 10,
            netns: None,
            netns_port: None,
            authorized: vec![],
            key_options: None,
            host_key_types: vec!["ed25519"],
            home_keys: false,
        }
    }
}

/// A running OpenSSH server.
pub struct Sshd {
    pub address: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// `ssh-ed25519 AAAA...` of the server's (first) host key.
    pub host_key: String,
    child: Option<Child>,
}

impl Sshd {
    pub fn start(opts: SshdOptions) -> Sshd {
        // Green means checked (#21): not root is a failure that says so, never a skip.
        let root = std::fs::read_to_string("/proc/self/status")
            .is_ok_and(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")));
        assert!(
            root,
            "the integration tests log in as root to a real sshd (and create network namespaces): run them as root, as scripts/test.sh does"
        );
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install the Debian package openssh-server (scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut host_keys = String::new();
        for kind in &opts.host_key_types {
            sh(&format!("ssh-keygen -q -t {kind} -N '' -f {}/host_{kind}", d.display()));
            host_keys.push_str(&format!("HostKey {}/host_{kind}\n", d.display()));
        }
        std::fs::create_dir_all("/run/sshd").unwrap();
        std::fs::write(d.join("authorized_keys"), opts.authorized.join("\n") + "\n").unwrap();
        let (address, port) = match &opts.netns {
            Some((_, addr)) => (addr.clone(), opts.netns_port.unwrap_or(22)),
            None => ("127.0.0.1".to_string(), free_port()),
        };
        let config = format!(
            "Port {port}\nListenAddress {address}\n{host_keys}PidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys{home_keys}\nStrictModes no\nUsePAM no\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             MaxSessions {}\nMaxStartups 500:30:1000\nAllowTcpForwarding yes\nLogLevel VERBOSE\n\
             Subsystem sftp internal-sftp\nAcceptEnv LANG\n",
            opts.max_sessions,
            d = d.display(),
            home_keys = if opts.home_keys { " .ssh/authorized_keys" } else { "" }
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let mut cmd = match &opts.netns {
            Some((ns, _)) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, SSHD]);
                c
            }
            None => Command::new(SSHD),
        };
        let child = cmd
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd (install openssh-server)");
        let host_key = std::fs::read_to_string(d.join(format!("host_{}.pub", opts.host_key_types[0]))).unwrap();
        let host_key = host_key.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        let sshd = Sshd { address, port, dir, host_key, child: Some(child) };
        sshd.wait_listening();
        sshd
    }

    /// The listening daemon's pid (its session processes are its descendants).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().contains("Server listening on") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("sshd did not start: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// How many sessions the server authenticated (one per SSH connection).
    pub fn accepted(&self) -> usize {
        self.log().matches("Accepted publickey").count()
    }

    /// `[addr]:port key` as known_hosts wants it.
    pub fn known_hosts_line(&self) -> String {
        if self.port == 22 {
            format!("{} {}", self.address, self.host_key)
        } else {
            format!("[{}]:{} {}", self.address, self.port, self.host_key)
        }
    }

    /// SIGKILLs the listener and every sshd process under it (the connections), as a crash
    /// would; the remote shells are left to notice on their own. `restart` brings it back.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            for pid in descendants(child.id()).into_iter().filter(|p| comm(*p) == "sshd") {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the daemon again with the same config, port and host key.
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new().append(true).open(self.dir.path().join("sshd.log")).unwrap();
        let before = self.log().matches("Server listening on").count();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(self.dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.log().matches("Server listening on").count() == before {
            assert!(Instant::now() < deadline, "sshd did not restart: {}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the daemon and the connections it serves.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            // Session processes are children of the listener; end them too, by parent pid.
            let _ = Command::new("pkill").args(["-TERM", "-P", &pid.to_string()]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every process below `pid`, from /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
        // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) else { continue };
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|x| x.parse().ok()) {
            parents.push((p, ppid));
        }
    }
    let mut out = vec![];
    let mut frontier = vec![pid];
    while let Some(cur) = frontier.pop() {
        for (p, pp) in &parents {
            if *pp == cur {
                out.push(*p);
                frontier.push(*p);
            }
        }
    }
    out
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

static NEXT_NET: AtomicU32 = AtomicU32::new(0);

/// Two network namespaces, `jump` and `target`: this machine reaches `jump` over a veth pair;
/// `target` is reachable only from `jump` (a second veth pair), like a private subnet.
/// Addresses are in 198.19.0.0/16 (inside the 198.18.0.0/15 benchmark range); traffic to the
/// private subnet from this machine is routed to `unreachable`, so it can never leave.
pub struct PrivateNet {
    pub jump_ns: String,
    pub target_ns: String,
    pub jump_address: String,
    pub target_address: String,
    host_if: String,
    private_subnet: String,
}

impl PrivateNet {
    pub fn create() -> PrivateNet {
        let n = NEXT_NET.fetch_add(1, Ordering::SeqCst);
        // 16 networks per test process before a slot repeats (tests run in parallel and each
        // network must own its subnets on this machine), 8 processes' ranges in 198.19.0.0/16.
        assert!(n < 16, "more private networks than slots in one test run");
        let slot = (std::process::id() % 8) * 16 + n;
        let (a, b) = (slot * 2, slot * 2 + 1);
        let tag = format!("{}{}", std::process::id() % 100000, n);
        let net = PrivateNet {
            jump_ns: format!("mctl-j{tag}"),
            target_ns: format!("mctl-t{tag}"),
            jump_address: format!("198.19.{a}.2"),
            target_address: format!("198.19.{b}.2"),
            host_if: format!("mctlh{tag}"),
            private_subnet: format!("198.19.{b}.0/24"),
        };
        let mut script = String::from("set -e\n");
        let (j, t, h) = (&net.jump_ns, &net.target_ns, &net.host_if);
        let _ = write!(
            script,
            "ip netns add {j}\nip netns add {t}\n\
             ip -n {j} link set lo up\nip -n {t} link set lo up\n\
             ip link add {h} type veth peer name eth0 netns {j}\n\
             ip addr add 198.19.{a}.1/24 dev {h}\nip link set {h} up\n\
             ip -n {j} addr add 198.19.{a}.2/24 dev eth0\nip -n {j} link set eth0 up\n\
             ip -n {j} link add eth1 type veth peer name eth0 netns {t}\n\
             ip -n {j} addr add 198.19.{b}.1/24 dev eth1\nip -n {j} link set eth1 up\n\
             ip -n {t} addr add 198.19.{b}.2/24 dev eth0\nip -n {t} link set eth0 up\n\
             ip route replace unreachable {sub}\n",
            sub = net.private_subnet
        );
        sh(&script);
        net
    }
}

impl Drop for PrivateNet {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ip route del unreachable {s}; ip link del {h}; ip netns del {j}; ip netns del {t}",
                s = self.private_subnet,
                h = self.host_if,
                j = self.jump_ns,
                t = self.target_ns
            ))
            .output();
    }
}

/// A scratch workspace: a client key, a known_hosts file, an inventory, and a HOME with no
/// keys of its own, so nothing from the developer's ~/.ssh leaks into a test.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    pub key: Key,
}

impl Workspace {
    pub fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let key = Key::generate(dir.path(), "id_ed25519", "ed25519", "");
        Workspace { dir, key }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts an sshd that trusts this workspace's key.
    pub fn sshd(&self, mut opts: SshdOptions) -> Sshd {
        let line = match &opts.key_options {
            Some(o) => format!("{o} {}", self.key.public_line),
            None => self.key.public_line.clone(),
        };
        opts.authorized.push(line);
        Sshd::start(opts)
    }

    pub fn known_hosts(&self, servers: &[&Sshd]) {
        let text: String = servers.iter().map(|s| s.known_hosts_line() + "\n").collect();
        std::fs::write(self.path("known_hosts"), text).unwrap();
    }

    /// Writes inventory.toml with `[defaults]` for this workspace, then `hosts` (raw TOML).
    pub fn inventory(&self, hosts: &str) -> PathBuf {
        let text = format!(
            "[defaults]\nuser = \"root\"\nidentity = \"{}\"\nknown_hosts = \"{}\"\nconnect_timeout = 20\n\n{hosts}",
            self.key.private.display(),
            self.path("known_hosts").display()
        );
        let path = self.path("inventory.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs the real binary with this workspace's inventory.
    pub fn microctl(&self, args: &[&str]) -> Run {
        self.microctl_env(args, &[])
    }

    /// Runs the real binary like `microctl`, but kills it and fails the test if it is still
    /// running after `limit` (for properties like "nothing waits forever").
    pub fn microctl_within(&self, args: &[&str], limit: std::time::Duration) -> Run {
        let (out_path, err_path) = (self.path("run.stdout"), self.path("run.stderr"));
        let mut child = self
            .command(args)
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .expect("run microctl");
        let until = std::time::Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                panic!("microctl {args:?} still running after {limit:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        Run {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(out_path).unwrap(),
            stderr: std::fs::read_to_string(err_path).unwrap(),
        }
    }

    pub fn microctl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.microctl_in(Path::new("."), args, env)
    }

    /// [`Workspace::microctl_env`] run in the folder `cwd`.
    pub fn microctl_in(&self, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = self.command(args).current_dir(cwd).envs(env.iter().copied()).output().expect("run microctl");
        Run::from(out)
    }

    /// Runs the binary like `microctl_env`, inside a pseudo-terminal (`script -qec`): its
    /// stdin, stdout and stderr are a terminal unless `tail` (shell text after the command,
    /// e.g. `| cat > out`) redirects them. `stdout` is the terminal's transcript.
    pub fn microctl_tty(&self, args: &[&str], tail: &str, env: &[(&str, &str)]) -> Run {
        let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        let inventory = self.path("inventory.toml");
        let mut line = vec![quote(env!("CARGO_BIN_EXE_microctl")), "-i".into(), quote(inventory.to_str().unwrap())];
        line.extend(args.iter().map(|a| quote(a)));
        let line = format!("{} {tail}", line.join(" "));
        let cmd = self.command(&[]);
        let mut out = Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .envs(cmd.get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))))
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("MICROCTL_INVENTORY")
            .env_remove("MICROCTL_KEY_PASSPHRASE")
            .env_remove("MICROCTL_ROLES")
            .envs(env.iter().copied())
            // Held open until the end: `script` ends the session when its stdin ends.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run script");
        let stdin = out.stdin.take();
        let out = out.wait_with_output().expect("wait for script");
        drop(stdin);
        Run::from(out)
    }

    /// Starts the real binary like `microctl` with stdout and stderr piped, for tests that act
    /// on what it prints while it runs (see [`Lines`]).
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run microctl")
    }

    /// The real binary with this workspace's inventory, HOME and no agent or passphrase.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_microctl"));
        cmd.args(["-i", self.path("inventory.toml").to_str().unwrap()])
            .args(args)
            .env("HOME", self.path("home"))
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("MICROCTL_INVENTORY")
            .env_remove("MICROCTL_KEY_PASSPHRASE")
            .env_remove("MICROCTL_ROLES")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }
}

/// A finished run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    /// The JSON Lines objects on stdout.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
            .collect()
    }

    /// The `{"type":"host"}` object for `host`.
    pub fn host(&self, host: &str) -> serde_json::Value {
        self.json()
            .into_iter()
            .find(|v| v["type"] == "host" && v["host"] == host)
            .unwrap_or_else(|| panic!("no JSON for host {host} in {}", self.stdout))
    }

    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "exit code\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// A running process's stderr, read line by line on a thread: a test waits for a line it
/// expects (not for a time), then collects the rest.
pub struct Lines {
    rx: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Lines {
    pub fn of(stream: impl std::io::Read + Send + 'static) -> Lines {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stream)).map_while(|l| l.ok()) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { rx, seen: vec![] }
    }

    /// Waits (at most `limit`) for a line containing `needle`; panics with what was seen.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> String {
        let until = Instant::now() + limit;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {needle:?} within {limit:?}; saw:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Every line until the stream ends.
    pub fn rest(&mut self) -> String {
        self.seen.extend(self.rx.iter());
        self.seen.join("\n")
    }
}
