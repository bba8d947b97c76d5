//! `--wait SECS`: a host that does not accept connections yet (a fresh VM still booting) is
//! dialed again until it answers or SECS pass, saying what it waits for; without `--wait` it
//! fails at once, as before; a host key that changed meanwhile is refused, not waited out.
//! The sshd is (re)started when microctl says it is waiting, not after a sleep.

use std::time::{Duration, Instant};

use crate::converge::{Fleet, ROLE};
use crate::support::*;

const WAITING: &str = "waiting for h0: it does not accept connections yet";

fn converge_args(fleet: &Fleet, extra: &[&str]) -> Vec<String> {
    let roles = fleet.ws.path("roles");
    let mut args = vec!["--roles-dir".to_string(), roles.display().to_string(), "converge".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

#[test]
fn converge_wait_reaches_a_host_whose_sshd_starts_ten_seconds_later() {
    let mut fleet = Fleet::new(1, ROLE);
    fleet._sshd[0].stop();

    // Without --wait: unreachable at once, as before.
    let t0 = Instant::now();
    let args = converge_args(&fleet, &[]);
    let run = fleet.ws.microctl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    run.assert_code(1);
    assert!(run.stdout.contains("cannot connect to h0"), "{}", run.stdout);
    assert!(!run.stderr.contains("waiting for"), "{}", run.stderr);
    assert!(t0.elapsed() < Duration::from_secs(10), "failed at once, not after {:?}", t0.elapsed());

    // With --wait 60: it says it waits; sshd comes up 10 s after the start; converge succeeds.
    let args = converge_args(&fleet, &["--wait", "60"]);
    let started = Instant::now();
    let mut child = fleet.ws.spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut lines = Lines::of(child.stderr.take().unwrap());
    let line = lines.wait_for(WAITING, Duration::from_secs(30));
    assert!(line.contains("up to 60s more") || line.contains("up to 59s more"), "{line}");
    // The scenario: the VM's sshd starts ten seconds after the converge did.
    std::thread::sleep(Duration::from_secs(10).saturating_sub(started.elapsed()));
    fleet._sshd[0].restart();
    let status = child.wait().unwrap();
    let stderr = lines.rest();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.matches(WAITING).count(), 1, "said once, not on every retry: {stderr}");
    assert!(started.elapsed() >= Duration::from_secs(10));
    assert_eq!(std::fs::read_to_string(fleet.root(0).join("etc/site/version.txt")).unwrap(), "version 1\n");
}

#[test]
fn a_host_key_that_changes_while_waiting_is_refused_not_waited_out() {
    let mut fleet = Fleet::new(1, ROLE);
    fleet._sshd[0].stop();
    // The same address and port come back with another host key.
    let dir = fleet._sshd[0].dir.path().to_path_buf();
    sh(&format!(
        "rm -f {d}/host_ed25519 {d}/host_ed25519.pub && ssh-keygen -q -t ed25519 -N '' -f {d}/host_ed25519",
        d = dir.display()
    ));

    let args = converge_args(&fleet, &["--wait", "120"]);
    let started = Instant::now();
    let mut child = fleet.ws.spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut lines = Lines::of(child.stderr.take().unwrap());
    lines.wait_for(WAITING, Duration::from_secs(30));
    fleet._sshd[0].restart();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = lines.rest();
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("HOST KEY CHANGED for h0"), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(60), "refused when it answered, not after the wait: {stderr}");
}

#[test]
fn exec_waits_too_and_deploy_takes_the_option() {
    let mut fleet = Fleet::new(1, ROLE);
    fleet._sshd[0].stop();
    let mut child = fleet.ws.spawn(&["exec", "h0", "--wait", "60", "--", "echo", "up"]);
    let mut lines = Lines::of(child.stderr.take().unwrap());
    lines.wait_for(WAITING, Duration::from_secs(30));
    fleet._sshd[0].restart();
    let out = child.wait_with_output().unwrap();
    let stderr = lines.rest();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("h0 | up"), "{stderr}");

    let run = fleet.ws.microctl(&["deploy", "app", "--wait", "0"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--wait"), "{}", run.stderr);
}
