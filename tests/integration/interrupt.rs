//! Ctrl-C (SIGINT) on a running microctl, against real sshd: it says `interrupted`, the recap
//! of what finished and the step each unfinished host was in (text and `--json`), exits 130,
//! and stops the remote step (the session's processes) at once, so the host lock is free for
//! the next run without waiting for the step's timeout; the same for exec and a deploy's build.
//! A deploy past arming its confirm watchdog is left to the host, which rolls back. A lock
//! whose client is gone says so.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::converge::Fleet;
use crate::support::*;

/// h1's step starts a `sleep 600` (its pid in `sleep.pid`: the marker that the step runs) when
/// `slow` is set; h0's is done at once.
const ROLE: &str = r#"
[[command]]
name = "long step"
run = "{% if slow is defined and host.name == 'h1' %}sleep 600 & echo $! > {{ root }}/sleep.pid; wait{% else %}true{% endif %}"
unless = "false"
"#;

/// The real binary with `fleet`'s inventory and roles, its output collected in files.
fn spawn(ws: &Workspace, args: &[&str]) -> Child {
    let roles = ws.path("roles");
    let inventory = ws.path("inventory.toml");
    let roles: &[&str] = if args[0] == "converge" { &["--roles-dir", roles.to_str().unwrap()] } else { &[] };
    Command::new(env!("CARGO_BIN_EXE_microctl"))
        .args(["-i", inventory.to_str().unwrap()])
        .args(roles)
        .args(args)
        .env("HOME", ws.path("home"))
        .env("NO_COLOR", "1")
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(ws.path("run.stdout")).unwrap())
        .stderr(std::fs::File::create(ws.path("run.stderr")).unwrap())
        .spawn()
        .expect("run microctl")
}

/// Waits (at most 30 s) until the step wrote its marker; returns the remote `sleep`'s pid.
fn step_started(ws: &Workspace, marker: &Path, child: &mut Child) -> String {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(pid) = std::fs::read_to_string(marker)
            && pid.ends_with('\n')
        {
            return pid.trim().to_string();
        }
        if child.try_wait().unwrap().is_some() {
            let out = |name: &str| std::fs::read_to_string(ws.path(name)).unwrap_or_default();
            panic!("microctl ended before the step started: {}{}", out("run.stdout"), out("run.stderr"));
        }
        assert!(Instant::now() < until, "the step did not start within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGINT to `child`; its run, which must end within 20 s.
fn interrupt(ws: &Workspace, mut child: Child) -> Run {
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let until = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("microctl still runs 20 s after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(ws.path("run.stdout")).unwrap(),
        stderr: std::fs::read_to_string(ws.path("run.stderr")).unwrap(),
    }
}

/// Whether process `pid` is gone (or a zombie) within `secs`, polling /proc.
fn gone_within(pid: &str, secs: u64) -> bool {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let running = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')));
        if !running {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The step of h1 as converge names it while it runs.
const STEP: &str = "applying command long step (`unless` was false)";

/// Waits (at most 30 s) until the run's `file` (run.stdout, run.stderr) has a line with all of
/// `needles`.
fn printed(ws: &Workspace, file: &str, needles: &[&str]) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(ws.path(file)).unwrap();
        if text.lines().any(|l| needles.iter().all(|n| l.contains(n))) {
            return;
        }
        assert!(Instant::now() < until, "no line with {needles:?} in {file} within 30 s: {text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_on_converge_stops_the_remote_step_frees_the_lock_and_says_where_each_host_was() {
    let fleet = Fleet::new(2, ROLE);
    let mut child = spawn(&fleet.ws, &["-v", "converge", "-e", "slow=1"]);
    let sleep = step_started(&fleet.ws, &fleet.root(1).join("sleep.pid"), &mut child);
    printed(&fleet.ws, "run.stderr", &["h0 | ", "done: changed"]);
    // (The client hears of the step a little after the host started it.)
    printed(&fleet.ws, "run.stderr", &["h1 | ", STEP]);
    let run = interrupt(&fleet.ws, child);
    run.assert_code(130);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("microctl: interrupted (SIGINT)"), "{all}");
    assert!(run.stderr.contains(&format!("h1 (during {STEP})")), "{all}");
    // The recap: h0 finished, h1 was interrupted in its step.
    let row = |host: &str| run.stdout.lines().find(|l| l.starts_with(host) && !l.contains(" | ")).unwrap_or("");
    assert!(row("h0").contains("changed"), "{all}");
    assert!(row("h1").contains("interrupted") && row("h1").contains(&format!("during {STEP}")), "{all}");
    assert!(run.stdout.contains("interrupted (SIGINT): 2 hosts: 1 ok, 1 changed,"), "{all}");
    assert!(gone_within(&sleep, 5), "the remote step (sleep {sleep}) still runs: {all}");
    // The lock is free at once: a run that does not wait for it gets it.
    fleet.converge(&["--lock-timeout", "0"]).assert_code(0);
}

#[test]
fn ctrl_c_on_converge_json_has_the_interrupted_event_and_summary() {
    let fleet = Fleet::new(2, ROLE);
    let mut child = spawn(&fleet.ws, &["converge", "--json", "-e", "slow=1"]);
    let sleep = step_started(&fleet.ws, &fleet.root(1).join("sleep.pid"), &mut child);
    printed(&fleet.ws, "run.stdout", &[r#""type":"host""#, r#""host":"h0""#]);
    printed(&fleet.ws, "run.stdout", &[r#""type":"phase""#, r#""host":"h1""#, STEP]);
    let run = interrupt(&fleet.ws, child);
    run.assert_code(130);
    let lines = crate::output::check_json_lines(&run);
    let event = lines.iter().find(|v| v["type"] == "interrupted").unwrap_or_else(|| panic!("{}", run.stdout));
    assert_eq!(event["signal"], "SIGINT", "{event}");
    assert_eq!(event["hosts"], serde_json::json!([{"host": "h1", "step": STEP}]), "{event}");
    let h1 = run.host("h1");
    assert_eq!(h1["status"], "interrupted", "{h1}");
    assert_eq!(h1["error"]["class"], "interrupted", "{h1}");
    assert_eq!(h1["error"]["task"], STEP, "{h1}");
    assert_eq!(run.host("h0")["status"], "changed");
    let summary = lines.last().unwrap();
    assert_eq!((&summary["interrupted"], &summary["exit_code"]), (&"SIGINT".into(), &130.into()), "{summary}");
    assert!(gone_within(&sleep, 5), "the remote step (sleep {sleep}) still runs");
}

#[test]
fn ctrl_c_on_exec_stops_the_remote_command() {
    let fleet = Fleet::new(1, ROLE);
    let marker = fleet.root(0).join("sleep.pid");
    std::fs::create_dir_all(fleet.root(0)).unwrap();
    let cmd = format!("sleep 600 & echo $! > {}; wait", marker.display());
    let mut child = spawn(&fleet.ws, &["exec", "h0", "--", &cmd]);
    let sleep = step_started(&fleet.ws, &marker, &mut child);
    let run = interrupt(&fleet.ws, child);
    run.assert_code(130);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("microctl: interrupted (SIGINT)"), "{all}");
    assert!(run.stderr.contains("h0 (during running)"), "{all}");
    assert!(run.stdout.lines().any(|l| l.starts_with("h0") && l.contains("interrupted")), "{all}");
    assert!(gone_within(&sleep, 5), "the remote command (sleep {sleep}) still runs: {all}");
}

/// Whether process `pid` has an sshd among its ancestors.
fn under_sshd(pid: &str) -> bool {
    let mut pid = pid.to_string();
    while let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        let Some((head, rest)) = stat.rsplit_once(") ") else { return false };
        if matches!(head.split_once(" (").map(|(_, c)| c), Some("sshd" | "sshd-session")) {
            return true;
        }
        match rest.split(' ').nth(1) {
            Some(ppid) if ppid != "0" && ppid != "1" => pid = ppid.to_string(),
            _ => return false,
        }
    }
    false
}

/// A client killed outright (SIGKILL: no chance to stop anything) leaves its session running
/// on the host, holding the lock; the next run's lock message says that client is gone.
#[test]
fn a_lock_whose_client_is_gone_says_so() {
    let fleet = Fleet::new(2, ROLE);
    let mut child = spawn(&fleet.ws, &["converge", "h1", "-e", "slow=1"]);
    let sleep = step_started(&fleet.ws, &fleet.root(1).join("sleep.pid"), &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    // The session that holds the lock, as its note names it, loses its sshd (the connection).
    let note = std::fs::read_to_string(fleet.root(1).join("state/lock.owner")).unwrap();
    let session =
        note.trim().rsplit_once(", host pid ").map(|(_, p)| p.to_string()).unwrap_or_else(|| panic!("{note}"));
    let until = Instant::now() + Duration::from_secs(20);
    while under_sshd(&session) {
        assert!(Instant::now() < until, "the session {session} still has its sshd 20 s after the client died");
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = fleet.converge(&["h1", "--lock-timeout", "1"]);
    let _ = Command::new("kill").arg(&sleep).status();
    run.assert_code(1);
    let error = &run.host("h1")["error"];
    assert_eq!(error["class"], "locked", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("host h1 is locked by "), "{message}");
    assert!(
        message.ends_with(&format!(", host pid {session}: the client that took it is gone (interrupted?)")),
        "{message}"
    );
    assert!(error["hint"].as_str().unwrap().contains(&format!("(pid {session}) runs on without it")), "{error}");
}

/// Ctrl-C during a deploy's build step: the build is stopped on the host (before any switch:
/// the live release keeps serving, `current` unchanged), the lock is free at once, and the
/// run says where it was and exits 130.
#[test]
fn ctrl_c_during_a_deploy_build_stops_it_and_leaves_the_live_release() {
    let app = crate::deploy::setup_with(1, |ws| {
        let repo = ws.path("src/app");
        let slow = format!(
            "\n[deploy.slow]\nhosts = \"app\"\nsource = \"{}\"\nroot = \"{{{{ root }}}}/srv\"\nuser = \"root\"\nenv_file = \"\"\n\
             build = [\"sleep 600 & echo $! > {{{{ root }}}}/build.pid; wait\"]\nrestart = \"true\"\n\
             health_address = \"127.0.0.1\"\nhealth_timeout = 2\n",
            repo.display()
        );
        (slow, None)
    });
    app.ws.microctl(&["deploy", "app", "--ref", "v1"]).assert_code(0);
    let current = app.ws.path("h0/srv/current");
    let live = std::fs::read_link(&current).unwrap();
    let mut child = spawn(&app.ws, &["deploy", "slow", "--ref", "v2"]);
    let sleep = step_started(&app.ws, &app.ws.path("h0/build.pid"), &mut child);
    printed(&app.ws, "run.stdout", &["h0 | build: sleep 600"]);
    let run = interrupt(&app.ws, child);
    run.assert_code(130);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("microctl: interrupted (SIGINT)"), "{all}");
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("h0") && l.contains("interrupted") && l.contains("during build: sleep 600")),
        "{all}"
    );
    assert!(gone_within(&sleep, 5), "the build step (sleep {sleep}) still runs: {all}");
    assert_eq!(std::fs::read_link(&current).unwrap(), live, "the live release changed: {all}");
    assert_eq!(crate::deploy::served(app.ports[0]), "version 1");
    app.ws.microctl(&["deploy", "app", "--ref", "v2", "--lock-timeout", "0"]).assert_code(0);
    assert_eq!(crate::deploy::served(app.ports[0]), "version 2");
}

/// Ctrl-C during the build of a rolling deploy, while its host is out of nginx's rotation (its
/// upstream line `down` on the via host): the build is stopped, the live release stays, and
/// the host is put back in rotation as the deploy would have done (the site file as before);
/// the next host is skipped. Exit 130.
#[test]
fn ctrl_c_during_a_rolling_deploy_build_puts_the_drained_host_back() {
    let app = crate::deploy::setup_with(2, |ws| {
        let web = ws.sshd(SshdOptions::default());
        let repo = ws.path("src/app");
        let slow = format!(
            "\n[deploy.slow]\nhosts = \"app\"\nsource = \"{}\"\nroot = \"{{{{ root }}}}/srv\"\nuser = \"root\"\nenv_file = \"\"\n\
             build = [\"sleep 600 & echo $! > {{{{ root }}}}/build.pid; wait\"]\nrestart = \"true\"\n\
             health_address = \"127.0.0.1\"\nhealth_timeout = 2\nhealth_via = \"web\"\nhealth_via_port = {}\n\
             drain_file = \"{}\"\ndrain_reload = \"true\"\n\
             [hosts.web]\naddress = \"127.0.0.1\"\nport = {}\nstate_dir = \"{}\"\n",
            repo.display(),
            free_port(),
            ws.path("site").display(),
            web.port,
            ws.path("web-state").display()
        );
        (slow, Some(web))
    });
    app.ws.microctl(&["deploy", "app", "--ref", "v1"]).assert_code(0);
    let site = app.ws.path("site");
    let upstream: String = app.ports.iter().map(|p| format!("    server 127.0.0.1:{p} max_fails=1;\n")).collect();
    let original = format!("upstream microblog {{\n{upstream}}}\n");
    std::fs::write(&site, &original).unwrap();
    let current = app.ws.path("h0/srv/current");
    let live = std::fs::read_link(&current).unwrap();

    let mut child = spawn(&app.ws, &["deploy", "slow", "--ref", "v2"]);
    let sleep = step_started(&app.ws, &app.ws.path("h0/build.pid"), &mut child);
    // Out of rotation while it builds: the drain came first.
    let drained = std::fs::read_to_string(&site).unwrap();
    assert!(drained.contains(&format!("server 127.0.0.1:{} max_fails=1 down;", app.ports[0])), "{drained}");
    let run = interrupt(&app.ws, child);
    run.assert_code(130);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(gone_within(&sleep, 5), "the build step (sleep {sleep}) still runs: {all}");
    assert_eq!(std::fs::read_to_string(&site).unwrap(), original, "h0 is still out of rotation: {all}");
    assert!(run.stdout.contains("h0 | back in nginx's rotation on web"), "{all}");
    assert_eq!(std::fs::read_link(&current).unwrap(), live, "the live release changed: {all}");
    assert!(run.stdout.lines().any(|l| l.starts_with("h1") && l.contains("skipped")), "{all}");
    assert!(!app.ws.path("h1/build.pid").exists(), "h1 started: {all}");
}

/// Ctrl-C while a deploy waits for the health of a release already switched to (the confirm
/// watchdog armed): the session is left to the host, as when the controller is killed, and
/// the unconfirmed release is rolled back on the host; the run says so and exits 130.
#[test]
fn ctrl_c_after_a_deploy_switched_leaves_it_to_the_host_which_rolls_back() {
    let app = crate::deploy::setup_with(1, |ws| {
        let repo = ws.path("src/app");
        let patient = format!(
            "\n[deploy.patient]\nhosts = \"app\"\nsource = \"{}\"\nroot = \"{{{{ root }}}}/srv\"\nuser = \"root\"\n\
             env_file = \"\"\nbuild = [\"true\"]\nrestart = \"{}\"\nhealth_address = \"127.0.0.1\"\nhealth_timeout = 60\n",
            repo.display(),
            crate::deploy::RESTART
        );
        (patient, None)
    });
    app.ws.microctl(&["deploy", "app", "--ref", "v1"]).assert_code(0);
    let current = app.ws.path("h0/srv/current");
    let live = std::fs::read_link(&current).unwrap();
    // The sick release answers 500 to the health check: the deploy waits (up to 60 s).
    let mut child = spawn(&app.ws, &["deploy", "patient", "--ref", "sick"]);
    let until = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(app.ws.path("run.stdout")).unwrap().contains("h0 | restarted; checking health") {
        if child.try_wait().unwrap().is_some() {
            let out = |name: &str| std::fs::read_to_string(app.ws.path(name)).unwrap_or_default();
            panic!("deploy ended before its health check: {}{}", out("run.stdout"), out("run.stderr"));
        }
        assert!(Instant::now() < until, "no health check within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_ne!(std::fs::read_link(&current).unwrap(), live, "not switched");
    let run = interrupt(&app.ws, child);
    run.assert_code(130);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("h0 |   hint: left to the host"), "{all}");
    let until = Instant::now() + Duration::from_secs(20);
    let port = app.ports[0];
    let served = || std::panic::catch_unwind(|| crate::deploy::served(port)).ok();
    while std::fs::read_link(&current).unwrap() != live || served().as_deref() != Some("version 1") {
        assert!(Instant::now() < until, "the switched release was not rolled back within 20 s: {all}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
