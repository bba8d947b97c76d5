//! Host-side time bounds (issue 12 leftovers, item 1), against real sshd: a role snippet that
//! hangs (`unless` in the probe, `run` in the apply) or a deploy build step that hangs fails
//! the run at the client's `--timeout` naming the host and the phase, AND is killed on the
//! host itself shortly after (found by a unique argument, then watched by pid), AND the host
//! lock is free again: the next run does not wait for it.

use std::time::{Duration, Instant};

use crate::converge::Fleet;
use crate::support::*;

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

/// Runs `run` while watching for processes with argument `token`: its result, and their pids.
fn watching(token: &str, run: impl FnOnce() -> Run) -> (Run, Vec<u32>) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (done, token) = (done.clone(), token.to_string());
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
    let out = run();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    (out, watcher.join().unwrap())
}

/// The sleepers ran on the host, and are killed there (TERM at the host's bound, KILL 5 s
/// later at the latest) within 10 s, not left running as root.
fn assert_killed_soon(sleepers: &[u32], token: &str, started: Instant) {
    assert!(!sleepers.is_empty(), "the hung command never ran");
    let until = Instant::now() + Duration::from_secs(10);
    while sleepers.iter().any(|p| has_arg(*p, token)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    let alive: Vec<u32> = sleepers.iter().copied().filter(|p| has_arg(*p, token)).collect();
    for p in &alive {
        let _ = std::process::Command::new("kill").args(["-KILL", &p.to_string()]).status();
    }
    assert!(alive.is_empty(), "still running on the host {:?} after the run failed: {alive:?}", started.elapsed());
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
    let roles = fleet.ws.path("roles");
    let args = ["--roles-dir", roles.to_str().unwrap(), "converge", "--json", "--timeout", "3"];
    let started = Instant::now();
    let (run, sleepers) = watching(&token, || fleet.ws.microctl_within(&args, Duration::from_secs(30)));
    let took = started.elapsed();

    run.assert_code(1);
    assert!(took < Duration::from_secs(20), "the run took {took:?}");
    let err = &run.host("h0")["error"];
    assert_eq!(err["class"], "timeout", "{err}");
    assert!(err["task"].as_str().unwrap().starts_with(phase), "{err}");
    assert!(err["message"].as_str().unwrap().starts_with(&format!("h0 stopped answering during {phase}")), "{err}");

    assert_killed_soon(&sleepers, &token, started);

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

/// A deploy build step that hangs: the deploy fails at `--timeout` naming the step, the step
/// is killed on the host, and `deploy --list` (a host session too) gets the lock at once.
#[test]
fn a_hung_build_step_is_killed_on_the_host_and_frees_the_lock() {
    let token = unique_token();
    let ws = Workspace::new();
    let sshd = ws.sshd(SshdOptions::default());
    ws.known_hosts(&[&sshd]);
    let src = ws.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("VERSION"), "1\n").unwrap();
    ws.inventory(&format!(
        "[hosts.h0]\naddress = \"127.0.0.1\"\nport = {}\ngroups = [\"app\"]\nstate_dir = \"{r}/state\"\n\
         vars = {{ root = \"{r}\", app_port = 1 }}\n\
         [deploy.app]\nsource = \"{}\"\nroot = \"{{{{ root }}}}/srv\"\nuser = \"root\"\nenv_file = \"\"\n\
         build = [\"sleep 1000 {token}\"]\nrestart = \"true\"\n",
        sshd.port,
        src.display(),
        r = ws.path("h0").display()
    ));
    let started = Instant::now();
    let (run, sleepers) = watching(&token, || {
        ws.microctl_within(&["deploy", "app", "--json", "--timeout", "3"], Duration::from_secs(30))
    });
    run.assert_code(1);
    let err = &run.host("h0")["error"];
    assert_eq!(err["class"], "timeout", "{err}");
    assert!(err["task"].as_str().unwrap().starts_with("build step `sleep 1000"), "{err}");
    assert_killed_soon(&sleepers, &token, started);
    let list =
        ws.microctl_within(&["deploy", "app", "--list", "--json", "--lock-timeout", "1"], Duration::from_secs(30));
    list.assert_code(0);
    assert!(list.host("h0")["error"].is_null(), "{}", list.stdout);
}
