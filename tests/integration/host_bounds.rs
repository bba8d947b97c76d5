//! Host-side time bounds (issue 12 leftovers, item 1), against real sshd: a role snippet that
//! hangs (`unless` in the probe, `run` in the apply) fails the run at the client's `--timeout`
//! naming the host and the phase, AND is killed on the host itself shortly after (found by a
//! unique argument, then watched by pid), AND the host lock is free again: the next converge
//! does not wait for it.

use std::time::{Duration, Instant};

use crate::converge::Fleet;

/// A token no other process on this machine has on its command line.
fn unique_token() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    // `sleep 1000 0.PIDNANOS`: GNU sleep adds its arguments, so this is a valid, unique one.
    format!("0.{}{nanos:09}", std::process::id())
}

/// The pids of the processes whose command line holds `token` as one argument.
fn pids_with_arg(token: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if has_arg(pid, token) {
            out.push(pid);
        }
    }
    out
}

fn has_arg(pid: u32, token: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| c.split(|b| *b == 0).any(|a| a == token.as_bytes()))
        .unwrap_or(false)
}

/// Converges a role whose snippet (`field` of a command: `unless` or `run`) sleeps "forever"
/// with `--timeout 3`; checks the error names the host and `phase`, the sleeper is gone from
/// the host within a few seconds, and a second converge (the snippet now `true`) gets the lock
/// at once.
fn hung_snippet_is_killed_on_the_host(field: &str, phase: &str) {
    let token = unique_token();
    let hung = format!("sleep 1000 {token}");
    let role = |snippet: &str| {
        let (run, unless) = if field == "unless" { ("true", snippet) } else { (snippet, "false") };
        format!("[[command]]\nname = \"hang\"\nrun = \"{run}\"\nunless = \"{unless}\"\n")
    };
    let fleet = Fleet::new(1, &role(&hung));

    // Watch for the sleeper while the run goes on: its pid is what must be gone later.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (done, token) = (done.clone(), token.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for p in pids_with_arg(&token) {
                    if !seen.contains(&p) {
                        seen.push(p);
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            seen
        })
    };
    let roles = fleet.ws.path("roles");
    let args = ["--roles-dir", roles.to_str().unwrap(), "converge", "--json", "--timeout", "3"];
    let started = Instant::now();
    let run = fleet.ws.microctl_within(&args, Duration::from_secs(30));
    let took = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let sleepers = watcher.join().unwrap();

    run.assert_code(1);
    assert!(took < Duration::from_secs(20), "the run took {took:?}");
    let err = &run.host("h0")["error"];
    assert_eq!(err["class"], "timeout", "{err}");
    assert!(err["task"].as_str().unwrap().starts_with(phase), "{err}");
    assert!(err["message"].as_str().unwrap().starts_with(&format!("h0 stopped answering during {phase}")), "{err}");

    // The sleeper ran on the host, and is killed there (TERM at the host's bound, KILL 5 s
    // later at the latest), not left running as root.
    assert!(!sleepers.is_empty(), "the hung snippet never ran");
    let until = Instant::now() + Duration::from_secs(10);
    while sleepers.iter().any(|p| has_arg(*p, &token)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    let alive: Vec<u32> = sleepers.iter().copied().filter(|p| has_arg(*p, &token)).collect();
    for p in &alive {
        let _ = std::process::Command::new("kill").args(["-KILL", &p.to_string()]).status();
    }
    assert!(alive.is_empty(), "still running on the host {:?} after the run failed: {alive:?}", started.elapsed());

    // The session ended and let go of the lock: the next run does not wait for it.
    std::fs::write(fleet.ws.path("roles/site/role.toml"), role("true")).unwrap();
    let args = ["--roles-dir", roles.to_str().unwrap(), "converge", "--json", "--timeout", "10", "--lock-timeout", "1"];
    let second = fleet.ws.microctl_within(&args, Duration::from_secs(30));
    second.assert_code(0);
    assert!(second.host("h0")["error"].is_null(), "{}", second.stdout);
}

#[test]
fn a_hung_unless_is_killed_on_the_host_and_frees_the_lock() {
    hung_snippet_is_killed_on_the_host("unless", "probe");
}

#[test]
fn a_hung_run_is_killed_on_the_host_and_frees_the_lock() {
    hung_snippet_is_killed_on_the_host("run", "apply step");
}
