//! The host session against real sshd: a login that prints a banner without a newline and
//! runs the command under dash changes nothing (converge finds its output by the run's nonce),
//! and a host that stops answering after the probe starts fails alone, in bounded time,
//! naming the host and the phase.

use std::time::{Duration, Instant};

use crate::converge::Fleet;
use crate::support::*;

/// A forced command like a hardened host's: a banner with no trailing newline, then the
/// requested command under dash.
pub const BANNER_DASH: &str = r#"command="printf 'Welcome to prod-host! '; exec dash -c \"$SSH_ORIGINAL_COMMAND\"""#;

const ROLE: &str = r#"
[[directory]]
path = "{{ root }}/etc"

[[file]]
dest = "{{ root }}/etc/app.conf"
content = "value = '$HOME' \"quoted\"\n"
notify = ["reload app"]

[[handler]]
name = "reload app"
run = "echo reload >> {{ root }}/handlers.log"
"#;

#[test]
fn banner_without_newline_and_dash_login_do_not_matter() {
    let fleet = Fleet::with(1, ROLE, |_| SshdOptions { key_options: Some(BANNER_DASH.into()), ..Default::default() });
    // The forced command is really in effect.
    let exec = fleet.ws.microctl(&["exec", "all", "--json", "--", "echo", "hi"]);
    exec.assert_code(0);
    assert!(exec.stdout.contains("Welcome to prod-host! hi"), "{}", exec.stdout);

    let first = fleet.converge(&["--timeout", "60"]);
    first.assert_code(0);
    assert_eq!(first.host("h0")["changed"], 2, "{}", first.stdout);
    assert_eq!(std::fs::read_to_string(fleet.root(0).join("etc/app.conf")).unwrap(), "value = '$HOME' \"quoted\"\n");
    assert_eq!(std::fs::read_to_string(fleet.root(0).join("handlers.log")).unwrap(), "reload\n");

    let second = fleet.converge(&[]);
    second.assert_code(0);
    let h = second.host("h0");
    assert_eq!(h["changed"], 0, "{h}");
    assert_eq!(h["handlers"], serde_json::json!([]), "{h}");
    assert_eq!(h["channels_opened"], 1, "{h}");
    assert_eq!(std::fs::read_to_string(fleet.root(0).join("handlers.log")).unwrap(), "reload\n");
}

const SLOW_PROBE: &str = r#"
[[file]]
dest = "{{ root }}/app.conf"
content = "x\n"

[[command]]
name = "init"
run = "true"
unless = "touch {{ root }}/probe-started; sleep 2; true"
"#;

/// Sends `signal` to every process below sshd `pid` (its session processes and our script).
fn signal_sessions(pid: u32, signal: &str) {
    for p in descendants(pid) {
        let _ = std::process::Command::new("kill").args([signal, &p.to_string()]).status();
    }
}

#[test]
fn a_host_that_stops_answering_fails_alone_naming_the_phase() {
    let fleet = Fleet::with(3, SLOW_PROBE, |_| SshdOptions::default());
    let marker = fleet.root(1).join("probe-started");
    let stopped_pid = fleet._sshd[1].pid();
    let watcher = std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(60);
        while !marker.exists() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        signal_sessions(stopped_pid, "-STOP");
    });
    let started = Instant::now();
    let roles = fleet.ws.path("roles");
    let args = ["--roles-dir", roles.to_str().unwrap(), "converge", "--json", "--timeout", "4"];
    let run = std::panic::catch_unwind(|| fleet.ws.microctl_within(&args, Duration::from_secs(30)));
    let took = started.elapsed();
    watcher.join().unwrap();
    signal_sessions(stopped_pid, "-CONT");
    let run = run.expect("the run ends in bounded time");

    run.assert_code(1);
    assert!(took < Duration::from_secs(30), "the run took {took:?}");
    for ok in ["h0", "h2"] {
        let h = run.host(ok);
        assert!(h["error"].is_null(), "{h}");
        assert_eq!(h["changed"], 1, "the file; the command's guard holds: {h}");
    }
    let err = &run.host("h1")["error"];
    assert_eq!(err["class"], "timeout", "{err}");
    assert_eq!(err["task"], "probe", "{err}");
    let msg = err["message"].as_str().unwrap();
    assert!(msg.starts_with("h1 stopped answering during probe"), "{msg}");
    // The stopped host was never written to.
    assert!(!fleet.root(1).join("app.conf").exists());
}
