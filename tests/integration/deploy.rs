//! `microctl deploy` against real sshd: two app hosts serving a real HTTP app from a git
//! checkout. Releases switch atomically, a failing health check rolls back and stops the
//! batch, a failing build never touches `current`, `--list` and `--rollback` work; h1's login
//! prints a banner and runs commands under dash. A locked host reads the same in deploy and
//! converge.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::support::*;

const SERVER: &str = r#"import http.server, os, sys
port = int(sys.argv[1])
here = os.path.dirname(os.path.abspath(__file__))
version = open(os.path.join(here, "VERSION")).read().strip()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        sick = self.path == "/healthz" and os.path.exists(os.path.join(here, "UNHEALTHY"))
        body = ("version %s\n" % version).encode()
        self.send_response(500 if sick else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

/// Restart: stop the old server by its pid file, start the live release's.
const RESTART: &str = "p={{ root }}/app.pid; if [ -f $p ]; then o=$(cat $p); kill $o 2>/dev/null; \
    while kill -0 $o 2>/dev/null; do sleep 0.05; done; fi; cd {{ root }}/srv/current && \
    setsid python3 serve.py {{ app_port }} >/dev/null 2>&1 </dev/null & echo $! > {{ root }}/app.pid";

pub struct App {
    pub ws: Workspace,
    _sshd: Vec<Sshd>,
    pub ports: Vec<u16>,
}

impl Drop for App {
    fn drop(&mut self) {
        for i in 0..self.ports.len() {
            if let Ok(pid) = std::fs::read_to_string(self.ws.path(&format!("h{i}/app.pid"))) {
                let _ = std::process::Command::new("kill").arg(pid.trim()).status();
            }
        }
    }
}

fn git(repo: &std::path::Path, cmd: &str) {
    sh(&format!("cd {} && {cmd}", repo.display()));
}

pub fn setup() -> App {
    let ws = Workspace::new();
    // h1's login prints a banner without a newline and runs commands under dash.
    let sshd: Vec<Sshd> = (0..2)
        .map(|i| {
            let key_options = (i == 1).then(|| crate::remote_session::BANNER_DASH.to_string());
            ws.sshd(SshdOptions { key_options, ..Default::default() })
        })
        .collect();
    ws.known_hosts(&sshd.iter().collect::<Vec<_>>());
    let repo = ws.path("src/app");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("serve.py"), SERVER).unwrap();
    std::fs::write(repo.join("VERSION"), "1\n").unwrap();
    git(
        ws.path("src").as_path(),
        "git init -q && git config user.email t@example.invalid && git config user.name t && git add -A && git commit -qm v1 && git tag v1",
    );
    let src = ws.path("src");
    std::fs::write(repo.join("VERSION"), "2\n").unwrap();
    git(&src, "git commit -qam v2 && git tag v2");
    std::fs::write(repo.join("UNHEALTHY"), "").unwrap();
    git(&src, "git add -A && git commit -qm sick && git tag sick && git rm -q app/UNHEALTHY && git commit -qm healed");
    std::fs::write(repo.join("BUILD_FAILS"), "").unwrap();
    git(&src, "git add -A && git commit -qm broken && git tag broken && git reset -q --hard v2");

    let ports = vec![free_port(), free_port()];
    let mut hosts = String::new();
    for (i, s) in sshd.iter().enumerate() {
        hosts.push_str(&format!(
            "[hosts.h{i}]\naddress = \"127.0.0.1\"\nport = {}\ngroups = [\"app\"]\nstate_dir = \"{r}/state\"\nvars = {{ root = \"{r}\", app_port = {} }}\n",
            s.port,
            ports[i],
            r = ws.path(&format!("h{i}")).display()
        ));
    }
    hosts.push_str(&format!(
        "[deploy.app]\nsource = \"{}\"\nroot = \"{{{{ root }}}}/srv\"\nuser = \"root\"\nenv_file = \"\"\n\
         build = [\"python3 -c 'import ast; ast.parse(open(\\\"serve.py\\\").read())'\", \"test ! -f BUILD_FAILS\"]\n\
         restart = \"{RESTART}\"\nhealth_address = \"127.0.0.1\"\nhealth_timeout = 2\nkeep = 3\n",
        repo.display()
    ));
    ws.inventory(&hosts);
    App { ws, _sshd: sshd, ports }
}

pub fn served(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.rsplit("\r\n\r\n").next().unwrap().trim().to_string()
}

#[test]
fn deploy_health_check_rollback_and_failed_build() {
    let app = setup();
    let deploy = |extra: &[&str]| {
        let mut args = vec!["deploy", "app", "--json"];
        args.extend_from_slice(extra);
        app.ws.microctl(&args)
    };

    let v1 = deploy(&["--ref", "v1"]);
    v1.assert_code(0);
    assert_eq!(served(app.ports[0]), "version 1");
    assert_eq!(served(app.ports[1]), "version 1");
    let v1_release = v1.host("h0")["release"].as_str().unwrap().to_string();
    assert!(v1.host("h0")["health"][0].as_str().unwrap().starts_with("healthy: HTTP 200"), "{}", v1.stdout);

    std::thread::sleep(std::time::Duration::from_millis(1100)); // release names carry the second
    let v2 = deploy(&["--ref", "v2"]);
    v2.assert_code(0);
    assert_eq!(served(app.ports[0]), "version 2");
    assert_eq!(v2.host("h1")["previous"], v1_release.as_str());
    let v2_release = v2.host("h0")["release"].as_str().unwrap().to_string();

    let list = deploy(&["--list"]);
    list.assert_code(0);
    assert_eq!(list.host("h0")["releases"], serde_json::json!([v1_release, v2_release]));
    assert_eq!(list.host("h0")["live"], v2_release.as_str());
    // h1's banner does not shift what --list reads.
    assert_eq!(list.host("h1")["releases"].as_array().unwrap().len(), 2, "{}", list.stdout);
    assert_eq!(list.host("h1")["live"], v2.host("h1")["release"], "{}", list.stdout);

    // Unhealthy: h0 rolls back to v2, h1 is never touched, exit 1 with the reason.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let sick = deploy(&["--ref", "sick"]);
    sick.assert_code(1);
    let h0 = sick.host("h0");
    assert_eq!(h0["rolled_back"], true);
    let msg = h0["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with(&format!("health check failed on h0; rolled back to {v2_release}")), "{msg}");
    assert_eq!(sick.host("h1")["skipped"], true);
    assert_eq!(h0["health"], serde_json::json!(["after rollback: healthy, HTTP 200"]));
    assert_eq!(served(app.ports[0]), "version 2");
    assert_eq!(served(app.ports[1]), "version 2");
    let text = app.ws.microctl(&["deploy", "app", "--ref", "sick"]);
    assert!(text.stdout.contains("HTTP 500 from http://127.0.0.1:"), "{}", text.stdout);

    // A failing build never touches current.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let broken = deploy(&["--ref", "broken"]);
    broken.assert_code(1);
    let msg = broken.host("h0")["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.starts_with("build step `test ! -f BUILD_FAILS` failed on h0; current was not touched"), "{msg}");
    assert_eq!(served(app.ports[0]), "version 2");
    let current = std::fs::read_link(app.ws.path("h0/srv/current")).unwrap();
    assert_eq!(current, std::path::Path::new(&format!("releases/{v2_release}")));

    // --rollback returns to version 1 everywhere.
    let back = deploy(&["--rollback"]);
    back.assert_code(0);
    assert_eq!(served(app.ports[0]), "version 1");
    assert_eq!(served(app.ports[1]), "version 1");
    assert_eq!(back.host("h1")["release"], v1_release.as_str());
}

#[test]
fn locked_host_reads_the_same_in_deploy_and_converge() {
    let app = setup();
    let state = app.ws.path("h0/state");
    std::fs::create_dir_all(&state).unwrap();
    // The host session refuses a state folder that is not root's with mode 0700.
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let mut holder = std::process::Command::new("flock").arg("-F").arg(&state).args(["sleep", "60"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    std::fs::write(state.join("lock.owner"), "ann@ops (microctl deploy, client pid 1), host pid 2\n").unwrap();
    std::fs::create_dir_all(app.ws.path("roles")).unwrap();
    let deploy = app.ws.microctl(&["deploy", "app", "--json", "--lock-timeout", "1"]);
    let roles = app.ws.path("roles");
    let converge =
        app.ws.microctl(&["--roles-dir", roles.to_str().unwrap(), "converge", "h0", "--json", "--lock-timeout", "1"]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    deploy.assert_code(1);
    converge.assert_code(1);
    let (d, c) = (&deploy.host("h0")["error"], &converge.host("h0")["error"]);
    assert_eq!(d["class"], "locked", "{d}");
    assert_eq!(d["message"], "host h0 is locked by ann@ops (microctl deploy, client pid 1), host pid 2", "{d}");
    assert_eq!(d["message"], c["message"]);
    assert_eq!(d["hint"], c["hint"]);
}

/// The host script stops before reading the release (`fail setup`: the app user does not
/// exist) while a large payload is still being sent: the run ends at once with the host's
/// own reason (it used to wait out the timeout on a send the host would never read).
#[test]
fn a_setup_failure_during_the_upload_is_reported_as_the_hosts_reason() {
    let ws = Workspace::new();
    let sshd = ws.sshd(SshdOptions::default());
    ws.known_hosts(&[&sshd]);
    let src = ws.path("src");
    std::fs::create_dir_all(&src).unwrap();
    sh(&format!("head -c 16000000 /dev/urandom > {}/blob", src.display()));
    let root = ws.path("h0");
    ws.inventory(&format!(
        "[hosts.h0]\naddress = \"127.0.0.1\"\nport = {}\ngroups = [\"app\"]\nstate_dir = \"{r}/state\"\n\
         vars = {{ root = \"{r}\", app_port = 1 }}\n\
         [deploy.app]\nsource = \"{}\"\nroot = \"{{{{ root }}}}/srv\"\nuser = \"no-such-user-microctl\"\nenv_file = \"\"\n\
         restart = \"true\"\n",
        sshd.port,
        src.display(),
        r = root.display()
    ));
    let run = ws.microctl_within(&["deploy", "app", "--json"], std::time::Duration::from_secs(60));
    run.assert_code(1);
    let text = run.host("h0")["error"].to_string();
    assert!(text.contains("no user no-such-user-microctl"), "{text}\n{}", run.stderr);
    assert!(!text.contains("stopped answering") && !text.contains("connection to h0 failed"), "{text}");
}
