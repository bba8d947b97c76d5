//! Converge under stress: the host lock serialises concurrent runs and names its holder, and
//! killing sshd at random moments mid-apply never leaves a managed file half-written; a rerun
//! converges and fires the handlers the interrupted runs left pending.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::converge::Fleet;
use crate::support::*;

const SLOW_ROLE: &str = r#"
[[command]]
name = "slow step"
run = "echo start >> {{ root }}/lock.log; sleep {{ pause }}; echo end >> {{ root }}/lock.log"
unless = "false"
"#;

pub fn spawn_converge(fleet: &Fleet, extra: &[&str]) -> std::process::Child {
    let roles = fleet.ws.path("roles");
    let inventory = fleet.ws.path("inventory.toml");
    Command::new(env!("CARGO_BIN_EXE_microctl"))
        .args(["-i", inventory.to_str().unwrap(), "--roles-dir", roles.to_str().unwrap(), "converge", "--json"])
        .args(extra)
        .env("HOME", fleet.ws.path("home"))
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn concurrent_converges_are_serialised_by_the_host_lock() {
    let fleet = Fleet::new(1, SLOW_ROLE);
    let a = spawn_converge(&fleet, &["-e", "pause=1"]);
    std::thread::sleep(Duration::from_millis(200));
    let b = spawn_converge(&fleet, &["-e", "pause=1"]);
    let (a, b) = (Run::from(a.wait_with_output().unwrap()), Run::from(b.wait_with_output().unwrap()));
    a.assert_code(0);
    b.assert_code(0);
    let log = std::fs::read_to_string(fleet.root(0).join("lock.log")).unwrap();
    assert_eq!(log, "start\nend\nstart\nend\n", "runs interleaved");

    // A run that cannot get the lock in time fails and says who holds it.
    let holder = spawn_converge(&fleet, &["-e", "pause=4"]);
    std::thread::sleep(Duration::from_millis(700));
    let waiter = fleet.converge(&["-e", "pause=0", "--lock-timeout", "1"]);
    waiter.assert_code(1);
    let err = &waiter.host("h0")["error"];
    assert_eq!(err["class"], "locked");
    let msg = err["message"].as_str().unwrap();
    assert!(msg.starts_with("host h0 is locked by "), "{msg}");
    assert!(msg.contains(&format!("(microctl converge, client pid {}, started ", holder.id())), "{msg}");
    assert!(msg.contains("host pid "), "{msg}");
    Run::from(holder.wait_with_output().unwrap()).assert_code(0);
}

const BIG_FILES: [&str; 5] = ["a", "b", "c", "d", "e"];

/// Five ~1.6 MB files whose every line carries the version, and a slow handler.
fn big_role() -> String {
    let mut role: String = BIG_FILES
        .iter()
        .map(|name| {
            format!(
                "[[file]]\ndest = \"{{{{ root }}}}/data/{name}.txt\"\n\
                 content = \"{{% for i in range(100000) %}}v{{{{ version }}}} {{{{ i }}}}\\n{{% endfor %}}\"\nnotify = [\"reload\"]\n\n"
            )
        })
        .collect();
    role.push_str("[[handler]]\nname = \"reload\"\nrun = \"sleep 0.3; echo reload >> {{ root }}/handler.log\"\n");
    role
}

fn expected(version: u32) -> String {
    (0..100000).map(|i| format!("v{version} {i}\n")).collect()
}

/// Every managed file holds one complete version: returns the versions found.
fn check_whole(fleet: &Fleet, expected_of: &mut std::collections::HashMap<u32, String>) -> Vec<u32> {
    let mut versions = Vec::new();
    for name in BIG_FILES {
        let path = fleet.root(0).join(format!("data/{name}.txt"));
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let version: u32 = text[1..text.find(' ').expect("a version line")].parse().expect("version number");
        let want = expected_of.entry(version).or_insert_with(|| expected(version));
        assert!(text == *want, "{} is not entirely version {version} ({} bytes)", path.display(), text.len());
        versions.push(version);
    }
    versions
}

/// The inode and change time of `path` (None when absent): a rename over it changes them.
fn identity(path: &std::path::Path) -> Option<(u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| (m.ino(), m.ctime(), m.ctime_nsec()))
}

#[test]
fn killing_sshd_mid_apply_never_leaves_a_half_written_file() {
    let mut fleet = Fleet::new(1, &big_role());
    let mut expected_of = std::collections::HashMap::new();
    // Time a full run and a --check run (render, connect, probe): kills aim between the two.
    let t = Instant::now();
    fleet.converge(&["-e", "version=0"]).assert_code(0);
    let full = t.elapsed().as_millis() as u64 + 200;
    let t = Instant::now();
    fleet.converge(&["-e", "version=0", "--check"]).assert_code(0);
    let before_apply = t.elapsed().as_millis() as u64 * 3 / 4;
    let mut seed: u64 = std::process::id() as u64 ^ 0x9E37_79B9_7F4A_7C15;
    let (mut interrupted, mut mixed, mut pending_seen) = (0, 0, 0);
    let pending = fleet.root(0).join("state/pending-handlers");
    for version in 1..=20u32 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let before = identity(&pending);
        let mut child = spawn_converge(&fleet, &["-e", &format!("version={version}")]);
        if version % 2 == 0 {
            // Aimed by the clock: anywhere between the end of the probe and the end of a run.
            std::thread::sleep(Duration::from_millis(before_apply + (seed >> 33) % (full - before_apply).max(1)));
        } else {
            // Aimed by the host: once the run has recorded its pending handlers (the first
            // step of its apply), within the time the rest of a full run takes. Load cannot
            // move these kills out of the apply.
            let deadline = Instant::now() + Duration::from_secs(60);
            while identity(&pending) == before && child.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis((seed >> 33) % (full - before_apply).max(1) / 4));
        }
        fleet._sshd[0].crash();
        let run = Run::from(child.wait_with_output().unwrap());
        if run.code != 0 {
            interrupted += 1;
        }
        let mut versions = check_whole(&fleet, &mut expected_of);
        versions.dedup();
        if versions.len() > 1 {
            mixed += 1;
        }
        if fleet.root(0).join("state/pending-handlers").exists() {
            pending_seen += 1;
        }
        fleet._sshd[0].restart();
    }
    // Scripts of killed connections may still be finishing on the host: wait until the host
    // lock is free, so what is pending now is what the rerun must fire.
    sh(&format!("flock {} true", fleet.root(0).join("state").display()));
    let pending_before = std::fs::read_to_string(fleet.root(0).join("state/pending-handlers")).unwrap_or_default();
    let run = fleet.converge(&["-e", "version=21", "--lock-timeout", "30"]);
    run.assert_code(0);
    assert_eq!(check_whole(&fleet, &mut expected_of), vec![21; 5]);
    let h = run.host("h0");
    assert_eq!(h["handlers"], serde_json::json!(["reload"]), "{h}");
    if !pending_before.is_empty() {
        assert_eq!(h["pending_handlers"], serde_json::json!(["reload"]), "{h}");
    }
    assert!(!fleet.root(0).join("state/pending-handlers").exists());
    let leftovers: Vec<_> = std::fs::read_dir(fleet.root(0).join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(".microctl"))
        .collect();
    eprintln!(
        "kill test: {interrupted}/20 runs interrupted, {mixed} left files of two versions, {pending_seen} left \
         handlers pending; 10 kills aimed at the apply, 10 by the clock between {before_apply} and {full} ms; stray temp files: {}",
        leftovers.len()
    );
    assert!(interrupted >= 5, "the kills should interrupt most runs ({interrupted}/20)");
    assert!(mixed + pending_seen >= 1, "no kill landed mid-apply; the test proved nothing");
}
