//! `microctl deploy` against real sshd: two app hosts serving a real HTTP app from a git
//! checkout. Releases switch atomically, a failing health check rolls back and stops the
//! batch, a failing build never touches `current`, `--list` and `--rollback` work; h1's login
//! prints a banner and runs commands under dash. A locked host reads the same in deploy,
//! deploy --list and converge. Two drains on one via host take turns and both land.

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
pub const RESTART: &str = "p={{ root }}/app.pid; if [ -f $p ]; then o=$(cat $p); kill $o 2>/dev/null; \
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
    setup_with(2, |_| (String::new(), None))
}

/// `n` app hosts (h0, h1, ...); `extra` may start one more sshd (known to the workspace too)
/// and returns what to append to the inventory right after the `[deploy.app]` table's keys
/// (more of its keys, then more tables).
pub fn setup_with(n: usize, extra: impl Fn(&Workspace) -> (String, Option<Sshd>)) -> App {
    let ws = Workspace::new();
    // h1's login prints a banner without a newline and runs commands under dash.
    let mut sshd: Vec<Sshd> = (0..n)
        .map(|i| {
            let key_options = (i == 1).then(|| crate::remote_session::BANNER_DASH.to_string());
            ws.sshd(SshdOptions { key_options, ..Default::default() })
        })
        .collect();
    let (extra, more) = extra(&ws);
    sshd.extend(more);
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

    let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let mut hosts = String::new();
    for (i, s) in sshd.iter().take(n).enumerate() {
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
    hosts.push_str(&extra);
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
    let mut holder = hold_lock(&state);
    std::fs::write(state.join("lock.owner"), "ann@ops (microctl deploy, client pid 1), host pid 2\n").unwrap();
    std::fs::create_dir_all(app.ws.path("roles")).unwrap();
    let deploy = app.ws.microctl(&["deploy", "app", "--json", "--lock-timeout", "1"]);
    let roles = app.ws.path("roles");
    let converge =
        app.ws.microctl(&["--roles-dir", roles.to_str().unwrap(), "converge", "h0", "--json", "--lock-timeout", "1"]);
    // --list is a host session like the others: it waits for the lock too.
    let list = app.ws.microctl(&["deploy", "app", "--list", "--json", "--lock-timeout", "1"]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    deploy.assert_code(1);
    converge.assert_code(1);
    list.assert_code(1);
    let (d, c, l) = (&deploy.host("h0")["error"], &converge.host("h0")["error"], &list.host("h0")["error"]);
    assert_eq!(d["class"], "locked", "{d}");
    // (What the host knows of "host pid 2" follows: not the holder here.)
    let message = d["message"].as_str().unwrap();
    assert!(message.starts_with("host h0 is locked by ann@ops (microctl deploy, client pid 1), host pid 2"), "{d}");
    assert_eq!(d["message"], c["message"]);
    assert_eq!(d["hint"], c["hint"]);
    assert_eq!((&l["class"], &l["message"], &l["hint"]), (&d["class"], &d["message"], &d["hint"]), "{l}");
    // h1 was not locked: listed.
    assert!(list.host("h1")["error"].is_null(), "{}", list.stdout);
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

/// A rolling deploy with `batch = 2` over three app hosts drains the two hosts of a batch on
/// one via host at the same time: each drain is a host session there, so they take turns (no
/// reload overlaps another) and both edits land (a snapshot, taken by the reload, shows both
/// `down`); afterwards the site is as before and no stage or backup is left beside it.
#[test]
fn concurrent_drains_on_one_via_host_both_land_and_leave_nothing_behind() {
    let ws_via = Workspace::new();
    let via = ws_via.path("web");
    std::fs::create_dir_all(via.join("www")).unwrap();
    std::fs::write(via.join("www/healthz"), "ok\n").unwrap();
    let via_port = free_port();
    let mut nginx = std::process::Command::new("python3")
        .args(["-m", "http.server", "--bind", "127.0.0.1", &via_port.to_string()])
        .current_dir(via.join("www"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let site = via.join("microblog");
    let snapshots = via.join("snapshots");
    // The reload records the site it sees, slowly, and whether another drain's reload was
    // running meanwhile: drains that do not take turns overlap there, and can lose an edit
    // (the second renames its copy of the old file over the first's) or a backup.
    let busy = via.join("reloading");
    let overlaps = via.join("overlaps");
    let reload = format!(
        "mkdir {busy} 2>/dev/null || echo overlap >> {overlaps}; cat {s} >> {snap} && echo ---- >> {snap}; sleep 0.5; rm -rf {busy}",
        busy = busy.display(),
        overlaps = overlaps.display(),
        s = site.display(),
        snap = snapshots.display()
    );
    let app = setup_with(3, |ws| {
        let web = ws.sshd(SshdOptions::default());
        let extra = format!(
            "batch = 2\nhealth_via = \"web\"\nhealth_via_port = {via_port}\ndrain_file = \"{}\"\ndrain_reload = \"{reload}\"\n\
             [hosts.web]\naddress = \"127.0.0.1\"\nport = {}\nstate_dir = \"{}/state\"\n",
            site.display(),
            web.port,
            via.display()
        );
        (extra, Some(web))
    });
    let upstream: String = app.ports.iter().map(|p| format!("    server 127.0.0.1:{p} max_fails=1;\n")).collect();
    let original = format!("upstream microblog {{\n{upstream}}}\n");
    std::fs::write(&site, &original).unwrap();

    let run = app.ws.microctl_within(&["deploy", "app", "--ref", "v1", "--json"], std::time::Duration::from_secs(120));
    let _ = nginx.kill();
    let _ = nginx.wait();
    run.assert_code(0);
    for h in ["h0", "h1", "h2"] {
        assert!(run.host(h)["error"].is_null(), "{}", run.stdout);
    }
    assert!(!overlaps.exists(), "two drains ran at once on web");
    let down = |p: u16| format!("server 127.0.0.1:{p} max_fails=1 down;");
    let seen = std::fs::read_to_string(&snapshots).unwrap();
    assert!(
        seen.split("----\n").any(|snap| snap.contains(&down(app.ports[0])) && snap.contains(&down(app.ports[1]))),
        "the first batch's two drains never stood together:\n{seen}"
    );
    assert_eq!(std::fs::read_to_string(&site).unwrap(), original, "every host back in rotation");
    let left: Vec<String> = std::fs::read_dir(&via)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("microctl"))
        .collect();
    assert!(left.is_empty(), "left beside the site: {left:?}");
}

#[test]
fn a_host_in_its_own_health_via_is_refused_before_any_host() {
    // Its drain would wait for the lock its own deploy holds: a clear error up front instead.
    let app = setup_with(2, |_| ("health_via = \"h0\"\n".into(), None));
    let run = app.ws.microctl(&["deploy", "app", "--ref", "v1"]);
    run.assert_code(2);
    assert!(
        run.stderr.contains(
            "deploy.app: h0 is one of its own health_via hosts, so it cannot be drained while it is deployed"
        ),
        "{}",
        run.stderr
    );
    assert!(!app.ws.path("h0/srv").exists() && !app.ws.path("h1/srv").exists(), "nothing deployed");
}

/// `--rollback NAME` takes only a name microctl could have made (the host matches every name
/// it reads against the same rule): anything else is refused before any host is contacted.
#[test]
fn a_rollback_to_an_odd_release_name_is_refused_before_any_host() {
    let app = setup_with(1, |_| (String::new(), None));
    for name in ["../../etc", "x\ny", ".hidden", "a b"] {
        let run = app.ws.microctl(&["deploy", "app", "--rollback", name]);
        run.assert_code(2);
        assert!(run.stderr.contains("is not a release name"), "{name:?}: {}", run.stderr);
        assert!(run.stderr.contains("letters, digits, `.`, `_` and `-`"), "{}", run.stderr);
    }
    assert!(!app.ws.path("h0/srv").exists(), "a host was contacted");
}

/// `deploy NAME PATTERN` (or `-l PATTERN`) deploys to those of the deploy's hosts only (a
/// canary, or the host that failed), like `kamal deploy --hosts`; a pattern that matches none
/// of them is refused before any host.
#[test]
fn deploy_to_a_subset_of_its_hosts() {
    // `other` is in the inventory, not in the deploy's hosts.
    let app = setup_with(2, |_| ("\n[hosts.other]\naddress = \"127.0.0.1\"\nport = 1\n".into(), None));
    app.ws.microctl(&["deploy", "app", "h1", "--ref", "v1"]).assert_code(0);
    assert_eq!(served(app.ports[1]), "version 1");
    assert!(!app.ws.path("h0/srv").exists(), "h0 was deployed to");
    app.ws.microctl(&["deploy", "app", "-l", "h0", "--ref", "v1"]).assert_code(0);
    assert_eq!(served(app.ports[0]), "version 1");
    let run = app.ws.microctl(&["deploy", "app", "other", "--ref", "v2"]);
    run.assert_code(2);
    assert!(run.stderr.contains("`other` matches none of deploy.app's hosts (h0, h1)"), "{}", run.stderr);
}
