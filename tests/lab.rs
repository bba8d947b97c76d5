//! End to end on the lab (root; takes down any lab already running on this machine):
//! lab up -> converge -> the app's page through nginx and gunicorn on app -> Prometheus reports
//! node_exporter on app and jenkins `up` -> a second converge changes nothing in one channel
//! per host -> deploys v1, v2, an unhealthy one, a broken build, --list, --rollback, with the
//! requests that failed while a deploy ran -> HTTPS from the lab's ACME CA (pebble on
//! monitoring), a redeploy under HTTPS load -> lab down leaves nothing behind.
//! Every step's duration is printed (`cargo test --test lab -- --nocapture`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio_rustls::rustls;

const BIN: &str = env!("CARGO_BIN_EXE_microctl");

fn lab_dir() -> PathBuf {
    std::env::var_os("MICROCTL_LAB_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/lib/microctl-lab"))
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn microctl(args: &[&str]) -> Out {
    let out = Command::new(BIN)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(args: &[&str]) -> Out {
    let out = microctl(args);
    assert_eq!(out.code, 0, "microctl {args:?}\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    out
}

/// `command` as root on `host` (microctl exec --sudo); must succeed. Its `stdout` keeps only
/// the command's own `host | ...` lines, not the recap and summary that follow them.
fn as_root(inv: &str, host: &str, command: &str) -> Out {
    let mut out = ok(&["-i", inv, "exec", host, "--sudo", "--", command]);
    out.stdout = out
        .stdout
        .lines()
        .filter(|l| l.split_once(" | ").is_some_and(|(h, _)| h.trim_end() == host))
        .map(|l| format!("{l}\n"))
        .collect();
    out
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    eprintln!("lab e2e: {what}: {:.1}s", t.elapsed().as_secs_f64());
    r
}

/// GET from a lab address; (status, body).
fn get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: lab\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()))
}

fn page_version() -> String {
    let (status, body) = get("198.18.0.11:80", "/").unwrap();
    assert_eq!(status, 200, "{body}");
    footer_version(&body)
}

/// The version in the page's footer (`<footer>microblog-lite VERSION</footer>`).
fn footer_version(page: &str) -> String {
    page.lines()
        .find_map(|l| l.trim().strip_prefix("<footer>microblog-lite "))
        .map(|v| v.trim_end_matches("</footer>").to_string())
        .unwrap_or_default()
}

/// rustls on ring (as microctl's health check), trusting only `roots` (PEM).
#[allow(deprecated)]
fn tls_client(roots: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut store = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(roots.as_bytes()) {
        store.add(cert.unwrap()).unwrap();
    }
    assert!(!store.is_empty(), "no certificate in {roots}");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    Arc::new(config)
}

/// GET over HTTPS from a lab address, SNI and Host `name`, the certificate verified by
/// `config`; (status, head, body).
fn get_https(
    addr: &str,
    name: &str,
    config: &Arc<rustls::ClientConfig>,
    path: &str,
) -> std::io::Result<(u16, String, String)> {
    let tcp = TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(3))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let server = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), server).map_err(std::io::Error::other)?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    write!(s, "GET {path} HTTP/1.0\r\nHost: {name}\r\n\r\n")?;
    let mut raw = Vec::new();
    match s.read_to_end(&mut raw) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok((status, head.to_string(), body.to_string()))
}

/// Requests through nginx from several client threads at once, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(clients: usize) -> Load {
        Load::start_with(clients, Arc::new(|| matches!(get("198.18.0.11:80", "/"), Ok((200, _)))))
    }

    /// Over HTTPS to `name` on web, each request a new connection verified by `config`.
    fn start_https(clients: usize, name: &'static str, config: Arc<rustls::ClientConfig>) -> Load {
        Load::start_with(
            clients,
            Arc::new(move || matches!(get_https("198.18.0.11:443", name, &config, "/"), Ok((200, _, _)))),
        )
    }

    /// Clients each repeating `request` (true: it succeeded).
    fn start_with(clients: usize, request: Arc<dyn Fn() -> bool + Send + Sync>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let threads = (0..clients)
            .map(|_| {
                let (stop, sent, failed, request) = (stop.clone(), sent.clone(), failed.clone(), request.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) && sent.load(Ordering::Relaxed) < 1_000_000 {
                        sent.fetch_add(1, Ordering::Relaxed);
                        if !request() {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        Load { stop, sent, failed, threads }
    }

    /// Stops the clients; (sent, failed).
    fn stop(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        (self.sent.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }
}

/// The lab deploys' confirm timeout (seconds): the host rolls back an unconfirmed release after it.
const CONFIRM_TIMEOUT: u64 = 30;

/// Where `current` points on app.
fn live(inv: &str) -> String {
    as_root(inv, "app", "readlink /srv/microblog/current").stdout.trim().to_string()
}

/// The controller's clock as the ledger writes times (`2026-11-30T17:02:16Z`; the lab's hosts
/// share this machine's clock).
fn utc_now() -> String {
    let out = Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// app's release ledger (`deploy --list --json`).
fn ledger(inv: &str) -> Vec<serde_json::Value> {
    let list = ok(&["-i", inv, "deploy", "app", "--list", "--json"]);
    let app = json_lines(&list.stdout)
        .into_iter()
        .find(|h| h["type"] == "host" && h["host"] == "app")
        .unwrap_or_else(|| panic!("no host line for app in:\n{}\n{}", list.stdout, list.stderr));
    app["ledger"].as_array().unwrap().clone()
}

#[derive(Clone, Copy)]
enum Stop {
    /// SIGKILL.
    Kill,
    /// SIGSTOP for the confirm timeout and more, then SIGCONT.
    Stall,
}

/// Deploys `version` and stops the controller as soon as it prints a line containing `at`.
/// For a stall: returns the controller's outcome once resumed (after the host decided).
fn stop_deploy_at(inv: &str, version: &str, at: &str, how: Stop) -> Option<Out> {
    let mut child = Command::new(BIN)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["-i", inv, "deploy", "app", "--ref", version])
        .env("NO_COLOR", "1")
        .env_remove("SSH_AUTH_SOCK")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
        assert!(n > 0, "the deploy ended before `{at}`:\n{seen}");
        seen.push_str(&line);
        if line.contains(at) {
            break;
        }
    }
    match how {
        Stop::Kill => {
            child.kill().unwrap();
            child.wait().unwrap();
            None
        }
        Stop::Stall => {
            let pid = child.id().to_string();
            assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
            std::thread::sleep(Duration::from_secs(CONFIRM_TIMEOUT + 3));
            assert!(Command::new("kill").args(["-CONT", &pid]).status().unwrap().success());
            let mut rest = String::new();
            stdout.read_to_string(&mut rest).unwrap();
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            let status = child.wait().unwrap();
            Some(Out { code: status.code().unwrap_or(-1), stdout: seen + &rest, stderr })
        }
    }
}

/// Takes the lab down when the test fails: never leave the machine's one lab up.
struct DownOnPanic;

impl Drop for DownOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = microctl(&["lab", "down"]);
        }
    }
}

/// A secret as hostile as they come: command substitution, `$`, both quotes, backticks, a
/// backslash, runs of spaces. It must reach the app byte for byte, and nothing may run.
const SECRET: &str = "abc$(touch /tmp/x)def `touch /tmp/y` pa$word \"dq\" 'sq' back\\slash  two  spaces";

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

/// A git copy of the example app with tagged versions: v1, v2, sick (unhealthy), broken (build fails).
fn versions_repo(dir: &Path) -> PathBuf {
    let app = dir.join("repo");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/microblog-lite");
    let sh = |cmd: &str| {
        let out = Command::new("sh").arg("-c").arg(cmd).current_dir(&app).output().unwrap();
        assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
    };
    std::fs::create_dir_all(&app).unwrap();
    sh(&format!("cp -r {}/. . && rm -rf venv __pycache__ app/__pycache__ *.db", src.display()));
    sh("git init -q && git config user.email lab@example.invalid && git config user.name lab");
    sh("echo 1.0.0 > VERSION && git add -A && git commit -qm v1 && git tag v1");
    sh("echo 2.0.0 > VERSION && git commit -qam v2 && git tag v2");
    sh(
        "echo 3.0.0-sick > VERSION && sed -i 's/db=\"ok\")$/db=\"ok\"), 500/' app/routes.py && git commit -qam sick && git tag sick",
    );
    sh(
        "git checkout -q v2 && echo 4.0.0-broken > VERSION && echo 'no-such-package==0.0.1' >> requirements.txt && git commit -qam broken && git tag broken",
    );
    app
}

/// Runs files/Jenkinsfile's deploy step the way a Jenkins agent does, on the lab's jenkins host:
/// user `jenkins`, in its workspace (a checkout of the app at `commit`, made here as Jenkins's
/// git step would), the step's `sh` line run by `sh -xe` with WORKSPACE, GIT_COMMIT and the
/// pipeline's environment. Everything else the agent uses (microctl, the inventory, secrets,
/// the deploy key, known_hosts, the user) was put there by converge (role microctl_agent).
fn jenkins_deploys_as_shipped(lab: &Path, repo: &Path, commit: &str) -> Out {
    let jenkinsfile = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("files/Jenkinsfile")).unwrap();
    let deploy_stage = jenkinsfile.split("stage('Deploy')").nth(1).expect("a Deploy stage");
    let step = deploy_stage.lines().find(|l| l.trim().starts_with("sh '")).expect("an sh step in Deploy").trim();
    let command = step.strip_prefix("sh '").and_then(|s| s.strip_suffix('\'')).unwrap();
    assert!(command.contains("--source \"$WORKSPACE\""), "{command}");
    assert!(!command.contains("--accept-new"), "a build never accepts new host keys: {command}");
    let inventory_line = jenkinsfile.lines().find(|l| l.contains("MICROCTL_INVENTORY =")).expect("MICROCTL_INVENTORY");
    let inventory_path = inventory_line.split('"').nth(1).unwrap();
    assert_eq!(inventory_path, "/etc/microctl/inventory.toml");

    // Jenkins's part: the workspace, a checkout owned by jenkins.
    let root = lab.join("hosts/jenkins/root");
    let workspace = "/var/lib/jenkins/workspace/microblog";
    let on_disk = root.join(workspace.trim_start_matches('/'));
    let _ = std::fs::remove_dir_all(&on_disk);
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["clone", "-q", "--no-checkout", repo.to_str().unwrap(), on_disk.to_str().unwrap()]);
    git(&["-C", on_disk.to_str().unwrap(), "checkout", "-q", "--detach", commit]);
    let inv = lab.join("inventory.toml");
    let inv = inv.to_str().unwrap();
    as_root(inv, "jenkins", &format!("chown -R jenkins: {workspace}/.."));

    let script = format!(
        "cd {workspace} && sudo -u jenkins env HOME=/var/lib/jenkins WORKSPACE={workspace} GIT_COMMIT={commit} \
         MICROCTL_INVENTORY={inventory_path} NO_COLOR=1 sh -xec {}",
        shell_quote(command)
    );
    microctl(&["-i", inv, "exec", "jenkins", "--sudo", "--", &script])
}

/// The SHA256 fingerprint of the jenkins agent's deploy key (as sshd logs it).
fn deploy_key_fingerprint(inv: &str) -> String {
    let line = as_root(inv, "jenkins", "ssh-keygen -lf /etc/microctl/deploy_key").stdout;
    let fpr = line.split_whitespace().find(|w| w.starts_with("SHA256:")).unwrap_or_else(|| panic!("{line}"));
    fpr.to_string()
}

/// sshd's `Accepted publickey` lines on `host` since `since` (a `date +%s`).
fn accepted_logins(inv: &str, host: &str, since: &str) -> String {
    as_root(inv, host, &format!("journalctl -q -o cat -u ssh --since @{since} | grep 'Accepted publickey' || true"))
        .stdout
}

/// A process that takes dpkg's frontend lock on `host` (fcntl, as apt and unattended-upgrades
/// take it) and lets go of it by itself 25 s later; returns its PID once it holds the lock.
/// Started as a transient unit, so it outlives this exec.
fn hold_dpkg_lock(inv: &str, host: &str) -> String {
    let perl = r#"use Fcntl; open(my $f, ">>", "/var/lib/dpkg/lock-frontend") or die "open: $!";
        my $l = pack("ssx4qqix4", F_WRLCK, 0, 0, 0, 0); fcntl($f, F_SETLK, $l) or die "lock: $!";
        open(my $m, ">", "/root/lab-dpkg-held.new") or die; print $m "$$\n"; close $m;
        rename("/root/lab-dpkg-held.new", "/root/lab-dpkg-held"); sleep 25;"#;
    let out = as_root(
        inv,
        host,
        &format!(
            "rm -f /root/lab-dpkg-held && systemd-run --quiet --collect --unit=lab-dpkg-holder perl -e {} \
             && for i in $(seq 100); do [ -s /root/lab-dpkg-held ] && break; sleep 0.1; done; cat /root/lab-dpkg-held",
            // systemd-run expands `$NAME` in the command line: `$$` is a `$`.
            shell_quote(&perl.replace('$', "$$"))
        ),
    );
    let pid =
        out.stdout.lines().find_map(|l| l.split_once(" | ")).map(|(_, p)| p.trim().to_string()).unwrap_or_default();
    assert!(
        !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()),
        "the holder did not take the lock: {}",
        out.stdout
    );
    pid
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// On app, a real systemd host: every case of `envfile::CASES` read by systemd
/// (`systemd-run -p EnvironmentFile=`) and by the deploy's `env_words` (under the host's dash
/// and awk) gives the same variables.
fn envfile_reads_like_systemd(lab: &Path, inv: &str) {
    let root = lab.join("hosts/app/root");
    let dir = root.join("var/lib/envcases");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("envfile.sh"), microctl::deploy::envfile::ENVFILE_SH.raw()).unwrap();
    for (i, (content, _)) in microctl::deploy::envfile::CASES.iter().enumerate() {
        std::fs::write(dir.join(format!("{i}.env")), content).unwrap();
    }
    as_root(
        inv,
        "app",
        "cd /var/lib/envcases && . ./envfile.sh && for f in *.env; do n=${f%.env}; \
         systemd-run --quiet --wait --pipe --collect -p EnvironmentFile=/var/lib/envcases/$f /usr/bin/env -0 > $n.systemd </dev/null \
         && eval \"env -i $(env_words $f) /usr/bin/env -0\" > $n.ours || exit 1; done",
    );
    let vars = |path: PathBuf| -> Vec<(String, String)> {
        let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
        let mut map: Vec<(String, String)> = Vec::new();
        for a in text.split_terminator('\0') {
            let (k, v) = a.split_once('=').unwrap();
            if ["A", "B", "C", "D", "E", "_ok9"].contains(&k) {
                map.retain(|(key, _)| key != k);
                map.push((k.to_string(), v.to_string()));
            }
        }
        map.sort();
        map
    };
    let mut differ = Vec::new();
    for (i, (content, _)) in microctl::deploy::envfile::CASES.iter().enumerate() {
        let systemd = vars(dir.join(format!("{i}.systemd")));
        let ours = vars(dir.join(format!("{i}.ours")));
        if ours != systemd {
            differ.push(format!("{content:?}: env_words {ours:?}, systemd {systemd:?}"));
        }
    }
    assert!(differ.is_empty(), "env_words differs from systemd:\n{}", differ.join("\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The lab inventory with every host's firewall on (SSH from the control host and jenkins, the
/// CI), written beside the lab's (its secrets file is there); jenkins's `ssh_from` and confirm
/// timeout replaced when `jenkins` is given.
fn firewall_inventory(lab: &Path, jenkins: Option<(&str, u64)>) -> PathBuf {
    let text = std::fs::read_to_string(lab.join("inventory.toml")).unwrap();
    let mut out = String::new();
    let mut host = String::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("[hosts.").and_then(|l| l.strip_suffix(']')) {
            host = name.to_string();
        }
        match line.strip_prefix("vars = { private_address = ") {
            Some(rest) => {
                let (from, confirm) = match jenkins {
                    Some((from, secs)) if host == "jenkins" => (from.to_string(), secs),
                    _ => ("[\"198.18.0.1\", \"198.18.0.10\"]".to_string(), 30),
                };
                out.push_str(&format!(
                    "vars = {{ firewall = true, ssh_from = {from}, firewall_confirm_timeout = {confirm}, private_address = {rest}\n"
                ));
            }
            None => out.push_str(&format!("{line}\n")),
        }
    }
    assert!(out.matches("firewall = true").count() >= 4, "{out}");
    let path = lab.join(if jenkins.is_some() { "inventory-firewall-wrong.toml" } else { "inventory-firewall.toml" });
    std::fs::write(&path, out).unwrap();
    path
}

/// Issue #23: every host's firewall on, derived from the topology. From monitoring, app's
/// node_exporter answers and app's gunicorn and SSH do not (dropped: a timeout, not a
/// refusal); from web, gunicorn answers; from jenkins, app's node_exporter does not; a second
/// converge changes nothing in one channel per host; a wrong `ssh_from` on jenkins is undone
/// by the host within its confirm timeout and jenkins stays reachable.
fn firewall_from_the_topology(lab: &Path, secret: &str) {
    let fw = firewall_inventory(lab, None);
    let fw = fw.to_str().unwrap();
    let first = ok(&["-i", fw, "converge", "--json", "-e", secret]);
    for h in json_lines(&first.stdout).iter().filter(|h| h["type"] == "host") {
        assert!(h["changes"].to_string().contains("firewall table inet microctl"), "{h}");
    }
    let probe = |from: &str, command: &str| as_root(fw, from, command).stdout;
    let metrics =
        "curl -s -o /dev/null -w 'http=%{http_code}\\n' --max-time 3 http://198.18.1.20:9100/metrics; echo exit=$?";
    let out = probe("monitoring", metrics);
    assert!(out.contains("http=200") && out.contains("exit=0"), "monitoring -> app:9100: {out}");
    let out = probe(
        "monitoring",
        "curl -s -o /dev/null --max-time 3 http://198.18.1.20:5000/; echo gunicorn=$?; \
         timeout 3 bash -c '</dev/tcp/198.18.1.20/22' 2>/dev/null; echo ssh=$?",
    );
    assert!(
        out.contains("gunicorn=28") && out.contains("ssh=124"),
        "monitoring -> app:5000 and :22 must time out: {out}"
    );
    let out = probe(
        "web",
        "curl -s -o /dev/null -w 'http=%{http_code}\\n' --max-time 3 http://198.18.1.20:5000/; echo exit=$?",
    );
    assert!(out.contains("exit=0") && !out.contains("http=000"), "web -> app:5000: {out}");
    let out = probe("jenkins", metrics);
    assert!(!out.contains("exit=0"), "jenkins -> app:9100 must not answer: {out}");

    let second = ok(&["-i", fw, "converge", "--json", "-e", secret]);
    for h in json_lines(&second.stdout).iter().filter(|h| h["type"] == "host") {
        assert_eq!(h["changed"], 0, "{h}");
        assert_eq!(h["channels_opened"], 1, "{h}");
    }

    // jenkins's SSH only from an address that is not the controller's: cut, then undone.
    let table = "nft list table inet microctl";
    let before = as_root(fw, "jenkins", table).stdout;
    let wrong = firewall_inventory(lab, Some(("\"198.18.0.99\"", 5)));
    let wrong = wrong.to_str().unwrap();
    let t = Instant::now();
    let cut = microctl(&["-i", wrong, "converge", "jenkins", "--json", "-e", secret]);
    let took = t.elapsed();
    assert_eq!(cut.code, 1, "{}{}", cut.stdout, cut.stderr);
    let host = json_lines(&cut.stdout).into_iter().find(|h| h["type"] == "host").unwrap();
    assert_eq!(host["error"]["message"], "the new firewall cut our SSH path; the previous rules are back", "{host}");
    assert!(took < Duration::from_secs(5 + 15), "took {took:?}");
    eprintln!("lab e2e: a wrong ssh_from on jenkins undone, the converge failed after {:.1}s", took.as_secs_f64());
    assert_eq!(as_root(fw, "jenkins", table).stdout, before, "the previous rules are back");
    std::fs::remove_file(wrong).unwrap();
    std::fs::remove_file(fw).unwrap();
}

/// A GET through nginx on web, timed.
fn timed_get() -> (u16, String, Duration) {
    let t = Instant::now();
    let (status, body) =
        get("198.18.0.11:80", "/").unwrap_or_else(|e| panic!("no answer through nginx after {:?}: {e}", t.elapsed()));
    (status, body, t.elapsed())
}

/// gunicorn cannot start (a drop-in points it at a crashing command, as a release that dies at
/// import or a database that is down would): systemd gives up after its start limit and closes
/// the socket, so every visitor gets nginx's maintenance page (503) within a second, not a 504
/// after 60 s. A plain start is then refused (start-limit-hit). With no release at all, the first
/// visitor gets the page at once. The next deploy's restart (reset-failed first) brings the
/// good release back.
fn cannot_start_then_deploy(inv: &str, vi: &str) {
    // A runtime drop-in: gone with the next boot, should this test stop half-way.
    let unit = "/run/systemd/system/gunicorn.service.d";
    as_root(
        inv,
        "app",
        &format!(
            "mkdir -p {unit} && printf '[Service]\\nExecStart=\\nExecStart=/bin/false\\n' > {unit}/lab-crash.conf \
             && systemctl daemon-reload && {{ systemctl restart gunicorn || true; }}"
        ),
    );
    // A visitor arriving while systemd still retries waits at most for the retries (3 starts,
    // 1 s apart), then gets the page.
    let (status, body, took) = timed_get();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("Down for maintenance"), "{body}");
    assert!(took < Duration::from_secs(8), "a visitor during the retries waited {took:?}");
    eprintln!(
        "lab e2e: the app cannot start: the first visitor got the maintenance page in {:.2}s",
        took.as_secs_f64()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while as_root(inv, "app", "systemctl is-active -q gunicorn.socket && echo LISTENING || true")
        .stdout
        .contains("LISTENING")
    {
        assert!(Instant::now() < deadline, "gunicorn.socket still listens while gunicorn cannot start");
        std::thread::sleep(Duration::from_millis(250));
    }
    for _ in 0..5 {
        let (status, body, took) = timed_get();
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("Down for maintenance"), "{body}");
        assert!(took < Duration::from_secs(1), "the maintenance page took {took:?}");
    }
    let why = as_root(inv, "app", "systemctl show -p Result --value gunicorn.socket").stdout;
    assert!(why.contains("| service-start-limit-hit"), "the socket closed because gunicorn hit its start limit: {why}");
    let plain = as_root(inv, "app", "if systemctl start gunicorn.service; then echo STARTED; fi").stdout;
    assert!(!plain.contains("STARTED"), "a plain start within the start limit interval: {plain}");
    as_root(inv, "app", &format!("rm -r {unit} && systemctl daemon-reload"));

    // No release (a host rebooted before its first deploy): gunicorn's start condition fails,
    // which is no failure; the first visitor's connection makes the socket retry until its
    // trigger limit closes it, so that visitor gets the page at once too.
    let current = "/srv/microblog/current";
    as_root(
        inv,
        "app",
        &format!(
            "mv {current} {current}.lab-off && systemctl reset-failed gunicorn.socket gunicorn.service \
             && {{ systemctl restart gunicorn || true; }}"
        ),
    );
    let (status, body, took) = timed_get();
    as_root(inv, "app", &format!("mv {current}.lab-off {current}"));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("Down for maintenance"), "{body}");
    assert!(took < Duration::from_secs(1), "with no release, the maintenance page took {took:?}");
    let state =
        as_root(inv, "app", "systemctl is-failed gunicorn.service; systemctl show -p Result --value gunicorn.socket");
    assert!(state.stdout.contains("| inactive") && state.stdout.contains("| trigger-limit-hit"), "{}", state.stdout);

    ok(&["-i", vi, "deploy", "app", "--ref", "v2"]);
    assert_eq!(page_version(), "2.0.0");
}

/// The machine has one lab: its tests run one at a time.
static LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// An inventory for deploying the tagged versions of `repo` to `hosts`, with the lab's hosts.
fn versions_inventory(lab: &Path, dir: &Path, repo: &Path, hosts: &str) -> PathBuf {
    let inventory = std::fs::read_to_string(lab.join("inventory.toml")).unwrap();
    let (head, _) = inventory.split_once("[deploy.app]").unwrap();
    let path = dir.join("inventory.toml");
    // The inventory's secrets live next to it.
    std::fs::copy(lab.join("secrets.toml"), dir.join("secrets.toml")).unwrap();
    std::fs::write(
        &path,
        format!(
            "{head}[deploy.app]\nhosts = \"{hosts}\"\nsource = \"{}\"\nhealth_path = \"/healthz\"\nhealth_via = \"web\"\n\
             health_timeout = 10\nconfirm_timeout = {CONFIRM_TIMEOUT}\nkeep = 10\n",
            repo.display()
        ),
    )
    .unwrap();
    path
}

/// A throwaway CA called `ca_name` and a certificate from it for `name`: (the CA's PEM, the
/// chain, the key).
fn site_certificate(ca_name: &str, name: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, ca_name);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
    (ca_pem, cert.pem(), key.serialize_pem())
}

/// `microctl secrets set NAME` of `inventory`, the value on stdin.
fn set_secret(inventory: &str, name: &str, value: &str) {
    use std::process::Stdio;
    let mut child = Command::new(BIN)
        .args(["-i", inventory, "secrets", "set", name])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "secrets set {name}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The site's version over HTTPS (SNI and Host `SITE`, verified by `config`).
fn page_version_https(config: &Arc<rustls::ClientConfig>) -> String {
    let (status, _, body) = get_https("198.18.0.11:443", SITE, config, "/").unwrap();
    assert_eq!(status, 200, "{body}");
    footer_version(&body)
}

/// Rolling over two app hosts (`lab up --app2`), batch 1, over HTTPS with the team's own
/// certificate (`tls = "files"`, the chain and key from secrets, issued by a CA this test
/// makes; the deploy's check through nginx trusts it by `health_ca_file`): each host is out
/// of nginx's rotation while it is switched and checked, and four HTTPS clients through nginx
/// see no failed request.
#[test]
#[ignore = "needs root, takes down any running lab: run by scripts/test.sh"]
fn lab_rolling_deploy_over_two_app_hosts() {
    assert!(is_root(), "the lab tests run as root (they create namespaces and systemd hosts): run scripts/test.sh");
    let _serial = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab_dir();
    let _ = microctl(&["lab", "down"]);
    timed("lab up --app2", || ok(&["lab", "up", "--app2"]));
    let _down = DownOnPanic;
    let inv = lab.join("inventory.toml");
    let inv = inv.to_str().unwrap();
    timed("converge with app2", || ok(&["-i", inv, "converge"]));
    let site = as_root(inv, "web", "cat /etc/nginx/sites-available/microblog").stdout;
    assert!(site.contains("server 198.18.1.20:5000 ") && site.contains("server 198.18.1.21:5000 "), "{site}");

    let tmp = tempfile::tempdir().unwrap();
    let repo = versions_repo(tmp.path());
    let vi = versions_inventory(&lab, tmp.path(), &repo, "app,app2");
    let vi = vi.to_str().unwrap();

    // HTTPS with the team's own certificate, from secrets.
    let (ca, chain, key) = site_certificate("microctl lab team CA", SITE);
    std::fs::write(tmp.path().join("team-ca.pem"), &ca).unwrap();
    set_secret(vi, "tls_certificate", &chain);
    set_secret(vi, "tls_key", &key);
    let text = std::fs::read_to_string(vi).unwrap();
    let web = "[groups.web]\nroles = [\"nginx\", \"deploy_login\"]\n";
    assert!(text.contains(web), "{text}");
    let text = text.replace(
        web,
        &format!(
            "{web}vars = {{ tls = \"files\", server_name = \"{SITE}\", tls_certificate = {{ secret = \"tls_certificate\" }}, \
             tls_key = {{ secret = \"tls_key\" }} }}\n"
        ),
    ) + "health_ca_file = \"team-ca.pem\"\n";
    std::fs::write(vi, text).unwrap();
    timed("converge web to tls = \"files\"", || ok(&["-i", vi, "converge", "web"]));
    let site = as_root(inv, "web", "cat /etc/nginx/sites-available/microblog").stdout;
    assert!(site.contains("ssl_certificate /etc/nginx/microctl-tls/site.pem;"), "{site}");
    let pem = as_root(inv, "web", "stat -c '%U %a' /etc/nginx/microctl-tls/site.pem").stdout;
    assert!(pem.contains("| root 600"), "{pem}");
    let team_ca = tls_client(&ca);

    timed("deploy v1 to app and app2", || ok(&["-i", vi, "deploy", "app", "--ref", "v1"]));
    // The certificate served is the one from secrets: verified against the team CA alone.
    assert_eq!(page_version_https(&team_ca), "1.0.0");
    let (status, _) = get("198.18.0.11:80", "/").unwrap();
    assert_eq!(status, 301, "http:// redirects to https://");

    let load = Load::start_https(4, SITE, team_ca.clone());
    let rolled = timed("rolling deploy of v2 under HTTPS load", || ok(&["-i", vi, "deploy", "app", "--ref", "v2"]));
    let (sent, failed) = load.stop();
    eprintln!(
        "lab e2e: HTTPS requests during the rolling v2 deploy: {sent} sent, {failed} failed (4 clients, two app hosts)"
    );
    assert_eq!(
        rolled.stdout.matches("healthy: HTTP 200 through nginx on web").count(),
        2,
        "each host checked through nginx over HTTPS:\n{}",
        rolled.stdout
    );
    for host in ["app ", "app2"] {
        for line in ["| out of nginx's rotation on web (drained) until healthy", "| back in nginx's rotation on web"] {
            assert!(rolled.stdout.contains(&format!("{host} {line}")), "{host}{line}:\n{}", rolled.stdout);
        }
    }
    // app2 is drained only after app is back: one host at a time.
    let order: Vec<usize> =
        ["app  | back in", "app2 | out of"].iter().map(|l| rolled.stdout.find(l).unwrap()).collect();
    assert!(order[0] < order[1], "{}", rolled.stdout);
    assert!(sent > 100, "the load did not run: {sent} requests");
    assert_eq!(failed, 0, "HTTPS requests failed during a rolling deploy over two app hosts: {failed} of {sent}");
    assert_eq!(page_version_https(&team_ca), "2.0.0");
    let site_after = as_root(inv, "web", "cat /etc/nginx/sites-available/microblog").stdout;
    assert_eq!(site_after, site, "every host back in rotation");
    for addr in ["198.18.1.20", "198.18.1.21"] {
        let page = as_root(inv, "web", &format!("curl -s http://{addr}:5000/")).stdout;
        assert!(page.contains("microblog-lite 2.0.0"), "{addr}: {page}");
    }
    timed("lab down", || ok(&["lab", "down"]));
}

#[test]
#[ignore = "needs root, takes down any running lab: run by scripts/test.sh"]
fn lab_converge_deploy_and_teardown() {
    assert!(is_root(), "the lab tests run as root (they create namespaces and systemd hosts): run scripts/test.sh");
    let _serial = LAB.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab_dir();
    let _ = microctl(&["lab", "down"]); // a lab left running by someone else

    // The hosts keep their disks between runs (lab up reuses them), so the release ledger
    // holds earlier runs' releases too: only what this run deployed is asserted on.
    let since = utc_now();
    timed("lab up", || ok(&["lab", "up"]));
    let _down = DownOnPanic;
    let inv = lab.join("inventory.toml");
    let inv = inv.to_str().unwrap();

    // First boot: app's dpkg lock is held (as unattended-upgrades holds it on a fresh VM) for
    // 25 s from before the converge; app has a package to install (sqlite3, removed if an
    // earlier run left it: it has no service), so its converge must wait, say so, and succeed.
    // The facts first (app's roles read them): a host gathers them in a second session only
    // after the first round of every host, so with none cached app's package step could come
    // after the holder let go.
    as_root(inv, "app", "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q sqlite3 >/dev/null");
    ok(&["-i", inv, "facts"]);
    let holder = hold_dpkg_lock(inv, "app");
    let secret = format!("secret_key={SECRET}");
    let first =
        timed("first converge (app's dpkg lock held 25 s)", || ok(&["-i", inv, "converge", "--json", "-e", &secret]));
    let summary = json_lines(&first.stdout).pop().unwrap();
    assert_eq!(summary["failed"], 0, "{}", first.stdout);
    let waited = format!("waiting for the dpkg lock (held by {holder} perl)");
    assert!(
        json_lines(&first.stdout).iter().any(|e| e["host"] == "app" && e["phase"].as_str() == Some(&waited)),
        "app's converge did not say it waits for the dpkg lock (`{waited}`):\n{}",
        first.stdout
    );

    timed("deploy (checkout)", || ok(&["-i", inv, "deploy", "app"]));
    let (status, body) = get("198.18.0.11:80", "/").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("<h1>microblog-lite</h1>"), "{body}");

    // The env file is data: gunicorn (through systemd's EnvironmentFile=) sees the secret as
    // written, and nothing in it ran, neither at converge nor during the deploy.
    let environ = as_root(
        inv,
        "app",
        "tr '\\0' '\\n' < /proc/$(systemctl show -p MainPID --value gunicorn)/environ | grep ^SECRET_KEY=; \
         for f in /tmp/x /tmp/y; do test ! -e $f || echo RAN $f; done",
    );
    assert!(environ.stdout.contains(&format!("SECRET_KEY={SECRET}\n")), "{}", environ.stdout);
    assert!(!environ.stdout.contains("RAN"), "something in the env file ran: {}", environ.stdout);

    // Prometheus scrapes node_exporter on app and jenkins.
    timed("prometheus targets up", || {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let text = get("198.18.0.12:9090", "/api/v1/targets").map(|(_, b)| b).unwrap_or_default();
            let up = |job: &str, target: &str| {
                serde_json::from_str::<serde_json::Value>(&text).ok().is_some_and(|v| {
                    v["data"]["activeTargets"].as_array().into_iter().flatten().any(|t| {
                        t["labels"]["job"] == job
                            && t["scrapeUrl"].as_str().unwrap_or("").contains(target)
                            && t["health"] == "up"
                    })
                })
            };
            if up("app", "198.18.1.20:9100") && up("ci", "198.18.0.10:9100") {
                break;
            }
            assert!(Instant::now() < deadline, "targets not up: {text}");
            std::thread::sleep(Duration::from_secs(2));
        }
    });

    timed("env files read like systemd reads them", || envfile_reads_like_systemd(&lab, inv));

    let second = timed("second converge", || ok(&["-i", inv, "converge", "--json", "-e", &secret]));
    for h in json_lines(&second.stdout).iter().filter(|h| h["type"] == "host") {
        assert_eq!(h["changed"], 0, "{h}");
        assert_eq!(h["channels_opened"], 1, "{h}");
    }

    // Deploys of tagged versions, with a request load running through nginx meanwhile.
    let tmp = tempfile::tempdir().unwrap();
    let repo = versions_repo(tmp.path());
    let versions_inv = versions_inventory(&lab, tmp.path(), &repo, "app");
    let vi = versions_inv.to_str().unwrap();

    // G1: v1, built from scratch (no cached venv), timed.
    as_root(vi, "app", "rm -rf /srv/microblog/shared/cache");
    let t = Instant::now();
    let g1 = ok(&["-i", vi, "deploy", "app", "--ref", "v1"]);
    let fresh = t.elapsed();
    assert!(g1.stdout.contains("cache: building environment"), "{}", g1.stdout);
    assert_eq!(page_version(), "1.0.0");
    // G1 again (a new release, same requirements): the venv is reused. Timed without load, as
    // the fresh one was.
    let t = Instant::now();
    let again = ok(&["-i", vi, "deploy", "app", "--ref", "v1"]);
    let reused = t.elapsed();
    assert!(again.stdout.contains("reused (inputs unchanged)"), "{}", again.stdout);
    eprintln!(
        "lab e2e: deploy with a fresh venv {:.1}s, redeploy with unchanged requirements {:.1}s ({:.0}%)",
        fresh.as_secs_f64(),
        reused.as_secs_f64(),
        100.0 * reused.as_secs_f64() / fresh.as_secs_f64()
    );
    assert!(reused <= fresh / 2, "redeploy {reused:?} is more than half of a fresh deploy {fresh:?}");

    // B: unhealthy, rolled back by the controller.
    let sick = microctl(&["-i", vi, "deploy", "app", "--ref", "sick"]);
    assert_eq!(sick.code, 1, "{}{}", sick.stdout, sick.stderr);
    assert!(sick.stdout.contains("health check failed on app; rolled back to"), "{}", sick.stdout);
    assert!(sick.stdout.contains("HTTP 500"), "{}", sick.stdout);
    assert_eq!(page_version(), "1.0.0");

    // G2: v2. One app host, four clients through nginx: gunicorn restarts behind systemd's
    // socket, so connections wait in the backlog and not one request fails.
    let load = Load::start(4);
    timed("deploy v2 under load", || ok(&["-i", vi, "deploy", "app", "--ref", "v2"]));
    let (sent, failed) = load.stop();
    eprintln!("lab e2e: requests during the v2 deploy: {sent} sent, {failed} failed (4 clients, one app host)");
    assert!(sent > 100, "the load did not run: {sent} requests");
    assert_eq!(failed, 0, "requests failed during a redeploy on one app host: {failed} of {sent}");
    assert_eq!(page_version(), "2.0.0");

    let live_before = live(vi);
    let broken = microctl(&["-i", vi, "deploy", "app", "--ref", "broken"]);
    assert_eq!(broken.code, 1);
    assert!(broken.stdout.contains("current was not touched"), "{}", broken.stdout);
    assert_eq!(live(vi), live_before);
    assert_eq!(page_version(), "2.0.0");

    // The ledger: G1 (twice) healthy, B failed, G2 healthy and live, the broken build failed
    // (removed).
    let statuses: Vec<_> =
        ledger(vi).into_iter().filter(|e| e["started"].as_str().is_some_and(|t| t >= since.as_str())).collect();
    let status_of = |rev: &str| -> Vec<&str> {
        statuses
            .iter()
            .filter(|e| e["revision"].as_str().unwrap_or("").ends_with(&format!("({rev})")))
            .map(|e| e["status"].as_str().unwrap())
            .collect()
    };
    assert_eq!(status_of("v1"), ["healthy", "healthy"], "{statuses:?}");
    assert_eq!(status_of("sick"), ["failed"], "{statuses:?}");
    assert_eq!(status_of("v2"), ["healthy"], "{statuses:?}");
    assert_eq!(status_of("broken"), ["failed"], "{statuses:?}");
    let text = ok(&["-i", vi, "deploy", "app", "--list"]).stdout;
    assert!(text.contains("failed (removed)") && text.contains("healthy"), "{text}");

    // --rollback from G2 passes over B (newer than G1, failed) and lands on G1 (the second).
    ok(&["-i", vi, "deploy", "app", "--rollback"]);
    assert_eq!(page_version(), "1.0.0");
    let g1_release = live(vi);

    // The controller killed (SIGKILL) or stalled (SIGSTOP, its TCP connection up) at any point:
    // the host ends on the previous release (G1) within the confirm timeout, the site up.
    let confirm = Duration::from_secs(CONFIRM_TIMEOUT);
    for (what, version, at, how) in [
        ("during the build", "v2", "| build: ", Stop::Kill),
        ("right after the switch", "v2", "| current -> ", Stop::Kill),
        ("during the health check", "sick", "| restarted; checking health", Stop::Kill),
        ("stalled during the health check", "sick", "| restarted; checking health", Stop::Stall),
    ] {
        let stopped = timed(&format!("controller stopped {what}"), || stop_deploy_at(vi, version, at, how));
        let t = Instant::now();
        let deadline = confirm + Duration::from_secs(5);
        while live(vi) != g1_release && t.elapsed() < deadline {
            std::thread::sleep(Duration::from_millis(250));
        }
        assert_eq!(live(vi), g1_release, "controller stopped {what}: not back on G1 after {:?}", t.elapsed());
        assert_eq!(page_version(), "1.0.0", "{what}");
        if let Some(resumed) = stopped {
            // The stalled controller resumes: its verdict is too late, and it says so.
            assert_eq!(resumed.code, 1, "{}{}", resumed.stdout, resumed.stderr);
            assert!(resumed.stdout.contains("rolled back to"), "{}", resumed.stdout);
        }
        eprintln!("lab e2e: controller stopped {what}: back on G1 {:.1}s later", t.elapsed().as_secs_f64());
        if what == "during the build" {
            let killed = ledger(vi).into_iter().filter(|e| e["status"] == "incomplete" && e["present"] == true).count();
            assert_eq!(killed, 1, "the killed build's release is marked incomplete: {:?}", ledger(vi));
        }
    }
    let statuses = ledger(vi);
    assert!(statuses.iter().all(|e| e["status"] != "incomplete" || e["present"] == false), "{statuses:?}");

    // Jenkins: the shipped Jenkinsfile's deploy step, on the jenkins host, deploys the build's
    // commit (a SHA) of the workspace; the inventory's own `source` does not exist there.
    let v2_sha = String::from_utf8(
        Command::new("git").arg("-C").arg(&repo).args(["rev-parse", "v2^{commit}"]).output().unwrap().stdout,
    )
    .unwrap();
    let started = utc_now();
    let epoch = String::from_utf8(Command::new("date").arg("+%s").output().unwrap().stdout).unwrap();
    let jenkins = timed("Jenkinsfile deploy on jenkins", || jenkins_deploys_as_shipped(&lab, &repo, v2_sha.trim()));
    assert_eq!(jenkins.code, 0, "{}{}", jenkins.stdout, jenkins.stderr);
    assert!(jenkins.stdout.contains(&v2_sha.trim()[..10]), "the release names the commit: {}", jenkins.stdout);
    assert!(!jenkins.stdout.contains("recorded"), "the agent recorded a host key: {}", jenkins.stdout);
    assert_eq!(page_version(), "2.0.0");
    let new: Vec<_> = ledger(vi)
        .into_iter()
        .filter(|e| e["started"].as_str().is_some_and(|t| t >= started.as_str()))
        .filter(|e| e["revision"].as_str().is_some_and(|r| r.contains(&v2_sha.trim()[..10])))
        .collect();
    assert!(new.iter().any(|e| e["status"] == "healthy"), "no new healthy release of the build's commit: {new:?}");
    // The chain: the agent's key logged in on web from jenkins, and on app from web's private
    // address; the key works from nowhere else (from= on both).
    let fpr = deploy_key_fingerprint(inv);
    let on_web = accepted_logins(inv, "web", epoch.trim());
    assert!(on_web.contains("for ubuntu from 198.18.0.10 ") && on_web.contains(&fpr), "{fpr}:\n{on_web}");
    let on_app = accepted_logins(inv, "app", epoch.trim());
    assert!(on_app.contains("for ubuntu from 198.18.1.11 ") && on_app.contains(&fpr), "{fpr}:\n{on_app}");
    let key = tmp.path().join("deploy_key");
    std::fs::copy(lab.join("hosts/jenkins/root/etc/microctl/deploy_key"), &key).unwrap();
    let from_here = Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", lab.join("known_hosts").display()))
        .arg("-i")
        .arg(&key)
        .args(["ubuntu@198.18.0.11", "true"])
        .output()
        .unwrap();
    assert!(!from_here.status.success(), "web accepts the agent's key from this machine (198.18.0.1)");

    timed("the app cannot start: maintenance page, then a deploy heals", || cannot_start_then_deploy(inv, vi));

    timed("HTTPS from the lab's ACME CA", || https_from_the_lab_acme_ca(&lab, inv, tmp.path(), vi));

    // Last before lab down: the firewalls stay on (nothing later needs another path).
    timed("the firewall from the topology", || firewall_from_the_topology(&lab, &secret));

    timed("lab down", || ok(&["lab", "down"]));
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&netns.stdout).contains("lab-"), "netns left behind");
    assert!(
        !Command::new("ip").args(["link", "show", "labbr-pub"]).output().unwrap().status.success(),
        "bridge left behind"
    );
    let routes = Command::new("ip").args(["route", "show", "198.18.0.0/15"]).output().unwrap();
    assert!(String::from_utf8_lossy(&routes.stdout).trim().is_empty(), "route left behind");
    let rules = Command::new("ip").args(["rule", "show", "pref", "1918"]).output().unwrap();
    assert!(String::from_utf8_lossy(&rules.stdout).trim().is_empty(), "ip rule left behind");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    assert!(!mounts.contains(lab.to_str().unwrap()), "mount left behind");
    for host in ["jenkins", "web", "monitoring", "app", "app2"] {
        for pidfile in ["nspawn.pid", "supervisor.pid"] {
            assert!(!lab.join("hosts").join(host).join(pidfile).exists(), "{host}/{pidfile} left behind");
        }
    }
    assert!(
        !Path::new("/sys/fs/cgroup/unified/lab/web").exists() && !Path::new("/sys/fs/cgroup/systemd/lab/web").exists()
    );
    ok(&["lab", "down"]); // twice is fine
}

/// The site's name in the lab's HTTPS phase (in /etc/hosts on web and on monitoring).
const SITE: &str = "blog.lab.test";

/// HTTPS with a certificate from an ACME CA inside the lab: Debian's pebble on monitoring
/// (its ACME listener's certificate from a "minica" root this test makes, trusted by web's
/// system store, which certbot reads; the issuing root fetched from pebble's management
/// endpoint, trusted by this test and by the deploy's `health_ca_file`). Real HTTP-01: pebble
/// fetches the challenge from web's :80 by the name. web converges to `tls = "acme"`: the site
/// answers over HTTPS with a certificate the lab CA issued for the name, HTTP answers 301 to
/// HTTPS (the ACME path excepted), a redeploy under HTTPS load fails no request (its health
/// check through nginx over HTTPS), and a second converge changes nothing (no certbot call).
fn https_from_the_lab_acme_ca(lab: &Path, inv: &str, dir: &Path, vi: &str) {
    // The minica root and pebble's listener certificate, for the name web uses: "pebble".
    let (minica, cert, key) = site_certificate("microctl lab minica root", "pebble");
    let put = |host: &str, dest: &str, data: &str| {
        let p = lab.join("hosts").join(host).join("root").join(dest.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
    };
    put("monitoring", "/etc/lab-pebble/cert.pem", &cert);
    put("monitoring", "/etc/lab-pebble/key.pem", &key);
    put(
        "monitoring",
        "/etc/lab-pebble/config.json",
        r#"{"pebble": {"listenAddress": "0.0.0.0:14000", "managementListenAddress": "0.0.0.0:15000",
            "certificate": "/etc/lab-pebble/cert.pem", "privateKey": "/etc/lab-pebble/key.pem",
            "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": false}}"#,
    );
    put("web", "/usr/local/share/ca-certificates/microctl-lab-minica.crt", &minica);
    // No random sleep before a validation, no nonce refused on purpose: real HTTP-01 still.
    as_root(
        inv,
        "monitoring",
        &format!(
            "apt-get install -y -q pebble >/dev/null && chmod 600 /etc/lab-pebble/key.pem \
             && {{ grep -q ' {SITE}$' /etc/hosts || echo '198.18.0.11 {SITE}' >> /etc/hosts; }} \
             && {{ systemctl stop lab-pebble 2>/dev/null; systemctl reset-failed lab-pebble 2>/dev/null; true; }} \
             && systemd-run --quiet --unit=lab-pebble -E PEBBLE_VA_NOSLEEP=1 -E PEBBLE_WFE_NONCEREJECT=0 \
             /usr/bin/pebble -config /etc/lab-pebble/config.json"
        ),
    );
    // web as a host that never had a certificate (hosts keep their disks between lab runs,
    // and pebble's roots are new each start), with nginx stopped: the converge's service step
    // (before its ACME command) must start it although no certificate exists yet.
    let stopped = as_root(
        inv,
        "web",
        "{ grep -q ' pebble$' /etc/hosts || echo '198.18.0.12 pebble' >> /etc/hosts; } && update-ca-certificates >/dev/null \
         && rm -rf /etc/letsencrypt /var/log/letsencrypt /etc/nginx/microctl-tls && systemctl stop nginx \
         && echo \"nginx $(systemctl is-active nginx)\"",
    );
    assert!(stopped.stdout.contains("| nginx inactive"), "{}", stopped.stdout);
    // The issuing root, from the management endpoint, over TLS verified with the minica root.
    let minica_client = tls_client(&minica);
    let deadline = Instant::now() + Duration::from_secs(30);
    let root = loop {
        match get_https("198.18.0.12:15000", "pebble", &minica_client, "/roots/0") {
            Ok((200, _, body)) if body.contains("BEGIN CERTIFICATE") => break body,
            other => assert!(Instant::now() < deadline, "pebble's management endpoint: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    std::fs::write(dir.join("lab-acme-root.pem"), &root).unwrap();
    let lab_ca = tls_client(&root);

    // web with tls = "acme" for the name, from pebble; the deploy trusts the lab CA's root.
    let text = std::fs::read_to_string(vi).unwrap();
    let web = "[groups.web]\nroles = [\"nginx\", \"deploy_login\"]\n";
    assert!(text.contains(web), "{text}");
    let text = text.replace(
        web,
        &format!("{web}vars = {{ tls = \"acme\", server_name = \"{SITE}\", acme_directory = \"https://pebble:14000/dir\" }}\n"),
    ) + "health_ca_file = \"lab-acme-root.pem\"\n";
    let https_inv = dir.join("inventory-https.toml");
    std::fs::write(&https_inv, text).unwrap();
    let hi = https_inv.to_str().unwrap();

    let first = ok(&["-i", hi, "converge", "web", "--json"]);
    let web_line = json_lines(&first.stdout).into_iter().find(|h| h["type"] == "host").unwrap();
    assert_ne!(web_line["changed"], 0, "{}", first.stdout);

    // https:// through nginx, the certificate issued by the lab CA for the name (verified
    // against the lab CA's root only), the app behind it.
    let (status, head, body) = get_https("198.18.0.11:443", SITE, &lab_ca, "/").unwrap();
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(body.contains("<h1>microblog-lite</h1>"), "{body}");
    assert!(head.contains("Strict-Transport-Security: max-age=63072000"), "{head}");
    // Not the stand-in: certbot's lineage, issued by pebble, for the name.
    let issued = as_root(
        inv,
        "web",
        "readlink /etc/nginx/microctl-tls/fullchain.pem; openssl x509 -in /etc/nginx/microctl-tls/fullchain.pem -noout -issuer -ext subjectAltName; \
         grep -x 'renew_hook = systemctl reload nginx' /etc/letsencrypt/renewal/microblog.conf; systemctl is-enabled certbot.timer",
    )
    .stdout;
    for line in [
        "| /etc/letsencrypt/live/microblog/fullchain.pem",
        "| issuer=CN = Pebble Intermediate CA",
        &format!("DNS:{SITE}"),
        "| renew_hook = systemctl reload nginx",
        "| enabled",
    ] {
        assert!(issued.contains(line), "{line}: {issued}");
    }
    // http:// answers 301 to https://, except the ACME challenges.
    let plain = |path: &str| {
        let mut s = TcpStream::connect_timeout(&"198.18.0.11:80".parse().unwrap(), Duration::from_secs(3)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: {SITE}\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text
    };
    let redirect = plain("/some/page?x=1");
    assert!(redirect.starts_with("HTTP/1.1 301 "), "{redirect}");
    assert!(redirect.contains(&format!("\r\nLocation: https://{SITE}/some/page?x=1\r\n")), "{redirect}");
    let challenge = plain("/.well-known/acme-challenge/none");
    assert!(challenge.starts_with("HTTP/1.1 404 "), "{challenge}");

    // A redeploy under HTTPS load: its check through nginx goes over HTTPS, and no request fails.
    let load = Load::start_https(4, SITE, lab_ca.clone());
    let deployed = timed("deploy v1 under HTTPS load", || ok(&["-i", hi, "deploy", "app", "--ref", "v1"]));
    let (sent, failed) = load.stop();
    eprintln!("lab e2e: requests during the deploy over HTTPS: {sent} sent, {failed} failed (4 clients)");
    assert!(deployed.stdout.contains("healthy: HTTP 200 through nginx on web"), "{}", deployed.stdout);
    assert!(sent > 50, "the load did not run: {sent} requests");
    assert_eq!(failed, 0, "HTTPS requests failed during a redeploy: {failed} of {sent}");

    // A second converge: nothing to do (the certificate is valid for the name: no certbot).
    let second = ok(&["-i", hi, "converge", "web", "--json"]);
    let web_line = json_lines(&second.stdout).into_iter().find(|h| h["type"] == "host").unwrap();
    assert_eq!(web_line["changed"], 0, "{}", second.stdout);
    let log = as_root(inv, "web", "grep -c 'Requesting a certificate' /var/log/letsencrypt/letsencrypt.log* | awk -F: '{s+=$NF} END {print \"requests=\" s}'").stdout;
    assert!(log.contains("| requests=1"), "certbot asked for one certificate: {log}");
    as_root(inv, "monitoring", "systemctl stop lab-pebble");
}
