//! The deploy host script, run as root in a host session (`crate::remote`: lock, framing,
//! markers) over one exec channel: clean up what dead runs left (an undecided switch, the
//! incomplete releases of killed builds), unpack (or clone) a new release, record it in the
//! host's ledger, build it as the app user (reusing the cached environment when its inputs
//! did not change), arm the confirm watchdog, switch `current` atomically, restart, then WAIT
//! for the controller's verdict on stdin after its health check: `ok` marks the release
//! healthy and prunes; anything else, or the controller vanishing, switches back and
//! restarts; no verdict within `confirm_timeout` and the watchdog rolls back on its own.
//!
//! The fixed shell is in `envfile.sh` (the env file read as data), `release.sh`, `ledger.sh`,
//! `functions.sh`, `cache.sh`, `upload.sh`, `clone.sh`, `previous.sh`, `switch.sh`,
//! `watchdog.sh` and `verdict.sh`; this file only prepends the values as quoted assignments and
//! adds one line per build step. Markers: `previous`, `recovered`, `cleaned`, `release`,
//! `cache`, `step`, `armed`, `switched`, `restarted`, `fail WHAT` + `out` lines,
//! `rolled-back`, `pruned`.

use super::config::Cache;
use super::envfile::ENVFILE_SH;
use super::ledger::LEDGER_SH;
use crate::remote::Shipped;
use crate::shell::quote;

/// Exit status after a rollback that the controller asked for (health check failed; `verdict.sh`).
#[cfg(test)]
pub const ROLLED_BACK_EXIT: u32 = 3;

/// Per-host settings, already rendered.
#[derive(Debug, Clone)]
pub struct HostSettings {
    pub root: String,
    pub user: String,
    pub env_file: Option<String>,
    pub build: Vec<String>,
    pub cache: Option<Cache>,
    pub restart: String,
    pub keep: usize,
    /// Seconds a switched release may stay live unconfirmed (the watchdog's deadline).
    pub confirm_timeout: u64,
    /// Who deploys (the ledger's `by`).
    pub deployed_by: String,
}

/// What the run does.
#[derive(Debug, Clone)]
pub enum Target {
    /// A release uploaded as a tar payload right after the script, from `revision`.
    Upload { name: String, revision: String },
    /// A release cloned on the host.
    Clone { url: String, git_ref: String },
    /// Back to `release`, or by default to the newest healthy release older than the live one.
    Previous { release: Option<String> },
}

static RELEASE_SH: Shipped = Shipped::new(include_str!("release.sh"));
static FUNCTIONS_SH: Shipped = Shipped::new(include_str!("functions.sh"));
static CACHE_SH: Shipped = Shipped::new(include_str!("cache.sh"));
static UPLOAD_SH: Shipped = Shipped::new(include_str!("upload.sh"));
static CLONE_SH: Shipped = Shipped::new(include_str!("clone.sh"));
static PREVIOUS_SH: Shipped = Shipped::new(include_str!("previous.sh"));
static SWITCH_SH: Shipped = Shipped::new(include_str!("switch.sh"));
static WATCHDOG_SH: Shipped = Shipped::new(include_str!("watchdog.sh"));
static VERDICT_SH: Shipped = Shipped::new(include_str!("verdict.sh"));

/// The confirm watchdog's whole script (it runs detached, in a shell of its own).
pub fn watchdog() -> String {
    format!("{RELEASE_SH}{LEDGER_SH}{WATCHDOG_SH}")
}

/// The session body for `target` (runs after `crate::remote`'s session part).
pub fn build(s: &HostSettings, target: &Target) -> String {
    let mut out = format!(
        "ROOT={}\nRESTART={}\nAPP_USER={}\nKEEP={}\nENV_FILE={}\nCONFIRM_TIMEOUT={}\nWATCHDOG_SH={}\n",
        quote(&s.root),
        quote(&s.restart),
        quote(&s.user),
        s.keep,
        quote(s.env_file.as_deref().unwrap_or("")),
        s.confirm_timeout,
        quote(&watchdog()),
    );
    let builds = !matches!(target, Target::Previous { .. });
    if builds {
        out.push_str(&format!("DEPLOYED_BY={}\n", quote(&s.deployed_by)));
    }
    let ok_result =
        if matches!(target, Target::Previous { .. }) { "live again (deploy --rollback)" } else { "healthy" };
    out.push_str(&format!("OK_RESULT={}\n", quote(ok_result)));
    out.push_str(&format!("{ENVFILE_SH}{RELEASE_SH}{LEDGER_SH}{FUNCTIONS_SH}"));
    if let (Some(c), true) = (&s.cache, builds) {
        out.push_str(&format!(
            "CACHE_DIR={}\nCACHE_KEY={}\nCACHE_KEY_COMMAND={}\nCACHE_STEPS={}\n{CACHE_SH}",
            quote(&c.dir),
            quote(&c.key.join("\n")),
            quote(&c.key_command),
            quote(&c.build.join("\n")),
        ));
    }
    match target {
        Target::Upload { name, revision } => {
            out.push_str(&format!("NAME={}\nREVISION={}\n{UPLOAD_SH}", quote(name), quote(revision)));
            out.push_str(&build_steps(s));
        }
        Target::Clone { url, git_ref } => {
            out.push_str(&format!("GIT_URL={}\nGIT_REF={}\n{CLONE_SH}", quote(url), quote(git_ref)));
            out.push_str(&build_steps(s));
        }
        Target::Previous { release } => {
            out.push_str(&format!("TARGET={}\n{PREVIOUS_SH}", quote(release.as_deref().unwrap_or(""))));
        }
    }
    out.push_str(&SWITCH_SH);
    out.push_str(&VERDICT_SH);
    out
}

/// The release's owner, its name, the cached environment, then one line per build step (as the
/// app user, in the release folder, output kept for the report; a failure removes the
/// half-built release and records it as failed).
fn build_steps(s: &HostSettings) -> String {
    let mut out = String::from("mark release \"$NAME\"\n");
    if s.cache.is_some() {
        out.push_str("cache_link\n");
    }
    for step in &s.build {
        out.push_str(&build_step(step));
    }
    out
}

/// One build step.
fn build_step(step: &str) -> String {
    format!(
        "STEP={q}\nmark step \"$STEP\"\nout=$(run_step \"$REL\" 2>&1) || build_failed {what} \"$out\"\n",
        q = quote(step),
        what = quote(&format!("build step `{step}`")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    /// The script against a hostile app user (issue #20).
    mod hostile {
        use super::*;
        include!("hostile_tests.rs");
    }

    /// Every deploy host script writes nothing to stderr (issue #21).
    mod quiet {
        use super::*;
        include!("quiet_tests.rs");
    }

    fn settings(root: &str, build: &[&str]) -> HostSettings {
        HostSettings {
            root: root.into(),
            user: "root".into(),
            env_file: None,
            build: build.iter().map(|s| s.to_string()).collect(),
            cache: None,
            restart: "echo restarted >> \"$ROOT/restarts\"".into(),
            keep: 2,
            confirm_timeout: 30,
            deployed_by: "ann@ci".into(),
        }
    }

    fn script(shell_body: &str) -> String {
        format!("NONCE=n\nTIMEOUT=60\n{}{shell_body}", crate::remote::MARK_SH)
    }

    fn spawn(shell: &str, body: &str) -> Child {
        Command::new(shell).arg("-c").arg(script(body)).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap()
    }

    /// Runs the body (after the marker functions) with `shell`, feeding `stdin`; returns
    /// (exit code, stdout).
    fn run(shell: &str, body: &str, stdin: &[u8]) -> (i32, String) {
        let mut child = spawn(shell, body);
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn payload(file: &str, text: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(text.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, file, text.as_bytes()).unwrap();
        b.into_inner().unwrap()
    }

    /// The stdin of an upload: the payload frame, then `verdict`.
    fn upload_stdin(name: &str, verdict: &str) -> Vec<u8> {
        let tar = payload("VERSION", name);
        let mut stdin = format!("{}\n", tar.len()).into_bytes();
        stdin.extend_from_slice(&tar);
        stdin.extend_from_slice(verdict.as_bytes());
        stdin
    }

    fn upload(name: &str) -> Target {
        Target::Upload { name: name.into(), revision: format!("rev-{name}") }
    }

    fn deploy_with(shell: &str, s: &HostSettings, name: &str, verdict: &str) -> (i32, String) {
        run(shell, &build(s, &upload(name)), &upload_stdin(name, verdict))
    }

    fn deploy(shell: &str, root: &str, name: &str, steps: &[&str], verdict: &str) -> (i32, String) {
        deploy_with(shell, &settings(root, steps), name, verdict)
    }

    /// The entries of `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    fn current(root: &str) -> PathBuf {
        std::fs::read_link(Path::new(root).join("current")).unwrap()
    }

    /// (release, status, present) of every ledger entry.
    fn ledger(shell: &str, root: &str) -> Vec<(String, String, bool)> {
        let out = Command::new(shell).arg("-c").arg(crate::deploy::ledger::list_script(root)).output().unwrap();
        crate::deploy::ledger::parse_list(&String::from_utf8_lossy(&out.stdout))
            .into_iter()
            .map(|e| (e.release, e.status, e.present))
            .collect()
    }

    fn entries(list: &[(&str, &str, bool)]) -> Vec<(String, String, bool)> {
        list.iter().map(|(r, s, p)| (r.to_string(), s.to_string(), *p)).collect()
    }

    /// A root with r1 healthy and live; settings with a 1 s confirm timeout.
    fn live_on_r1(shell: &str) -> (tempfile::TempDir, HostSettings) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(dir.path().to_str().unwrap(), &[]);
        assert_eq!(deploy_with(shell, &s, "r1", "ok\n").0, 0);
        s.confirm_timeout = 1;
        (dir, s)
    }

    /// Waits until `f` holds, for at most `secs`.
    fn within(secs: u64, mut f: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        f()
    }

    #[test]
    fn release_switch_verdict_rollback_and_prune() {
        for shell in ["sh", "dash"] {
            release_cycle(shell);
        }
    }

    /// A build step that hangs is killed on the host at the session's TIMEOUT, with what it
    /// started: the deploy fails naming the step, the half-built release goes, nothing runs on.
    #[test]
    fn a_hung_build_step_is_killed_at_the_timeout_under_sh_and_dash() {
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_str().unwrap();
            let step = "sleep 100 & echo $! > \"$ROOT/sleeper\"; wait";
            let body = format!("TIMEOUT=1\n{}", build(&settings(root, &[step]), &upload("r1")));
            let t = Instant::now();
            let (code, out) = run(shell, &body, &upload_stdin("r1", "ok\n"));
            assert_eq!(code, 1, "{shell}: {out}");
            assert!(t.elapsed() < Duration::from_secs(5), "{shell}: {:?}", t.elapsed());
            assert!(out.contains(&format!("n fail\tbuild step `{step}`\n")), "{shell}: {out}");
            assert!(!dir.path().join("releases/r1").exists(), "{shell}");
            let pid = std::fs::read_to_string(dir.path().join("sleeper")).unwrap();
            assert!(crate::remote::gone_within(&pid, 2), "{shell}: the step's child lives on");
        }
    }

    #[test]
    fn a_hung_restart_is_killed_at_the_timeout_and_rolled_back_under_sh_and_dash() {
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_str().unwrap();
            let mut s = settings(root, &[]);
            s.restart = "sleep 100 & echo $! >> \"$ROOT/sleepers\"; wait".into();
            let body = format!("TIMEOUT=1\n{}", build(&s, &upload("r1")));
            let t = Instant::now();
            let (code, out) = run(shell, &body, &upload_stdin("r1", "ok\n"));
            assert_eq!(code, 1, "{shell}: {out}");
            // The restart and the rollback's restart: each killed after 1 s.
            assert!(t.elapsed() < Duration::from_secs(6), "{shell}: {:?}", t.elapsed());
            assert!(out.contains("n fail\trestart\n"), "{shell}: {out}");
            assert!(!dir.path().join("current").exists(), "{shell}: rolled back to no release");
            for pid in std::fs::read_to_string(dir.path().join("sleepers")).unwrap().lines() {
                assert!(crate::remote::gone_within(pid, 2), "{shell}: the restart's child lives on");
            }
        }
    }

    fn release_cycle(shell: &str) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();

        let (code, out) = deploy(shell, root, "r1", &["test -f VERSION"], "ok\n");
        assert_eq!(code, 0, "{shell}: {out}");
        assert!(out.contains("n armed\t30\nn switched\tr1\nn restarted\nn pruned\n"), "{shell}: {out}");
        assert_eq!(current(root), Path::new("releases/r1"));

        // A failing build leaves current alone and removes the half-built release.
        let (code, out) = deploy(shell, root, "r2", &["echo broke; false"], "ok\n");
        assert_eq!(code, 1);
        assert!(out.contains("n fail\tbuild step `echo broke; false`\nn out\tbroke\n"), "{shell}: {out}");
        assert!(!dir.path().join("releases/r2").exists());
        assert_eq!(current(root), Path::new("releases/r1"));

        // A negative verdict (or none at all) switches back.
        let (code, out) = deploy(shell, root, "r3", &[], "");
        assert_eq!(code, ROLLED_BACK_EXIT as i32);
        assert!(out.contains("n rolled-back\treleases/r1"), "{shell}: {out}");
        assert_eq!(current(root), Path::new("releases/r1"));

        // keep = 2: r1 (previous) and r5 (new) stay; r3, r4 go.
        deploy(shell, root, "r4", &[], "ok\n");
        deploy(shell, root, "r5", &[], "ok\n");
        assert_eq!(names(&dir.path().join("releases")), ["r4", "r5"]);
        assert_eq!(std::fs::read_to_string(dir.path().join("restarts")).unwrap().lines().count(), 5);
    }

    /// G1 healthy, B failed its health check (rolled back), G2 healthy: `--rollback` lands on
    /// G1, never B; `--rollback B` picks B on request; the ledger shows every status.
    #[test]
    fn rollback_picks_the_newest_healthy_release() {
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_str().unwrap();
            let mut s = settings(root, &[]);
            s.keep = 5;
            assert_eq!(deploy_with(shell, &s, "1-g1", "ok\n").0, 0);
            assert_eq!(deploy_with(shell, &s, "2-b", "rollback\n").0, ROLLED_BACK_EXIT as i32);
            assert_eq!(deploy_with(shell, &s, "3-g2", "ok\n").0, 0);
            assert_eq!(
                ledger(shell, root),
                entries(&[("1-g1", "healthy", true), ("2-b", "failed", true), ("3-g2", "healthy", true)])
            );
            let (code, out) = run(shell, &build(&s, &Target::Previous { release: None }), b"ok\n");
            assert_eq!(code, 0, "{shell}: {out}");
            assert!(out.contains("n release\t1-g1\n"), "{shell}: {out}");
            assert_eq!(current(root), Path::new("releases/1-g1"));
            // Nothing healthy older than G1.
            let (code, out) = run(shell, &build(&s, &Target::Previous { release: None }), b"ok\n");
            assert_eq!(code, 1);
            assert!(out.contains("n fail\trollback\nn out\tno healthy release older than 1-g1\n"), "{shell}: {out}");
            // Named: B, on request (health-checked again: a negative verdict marks it failed).
            let (code, _) = run(shell, &build(&s, &Target::Previous { release: Some("2-b".into()) }), b"rollback\n");
            assert_eq!(code, ROLLED_BACK_EXIT as i32);
            assert_eq!(current(root), Path::new("releases/1-g1"));
            let (code, out) = run(shell, &build(&s, &Target::Previous { release: Some("9-no".into()) }), b"ok\n");
            assert_eq!(code, 1);
            assert!(out.contains("no release 9-no on this host"), "{out}");
            let list = crate::deploy::ledger::parse_list(&String::from_utf8_lossy(
                &Command::new(shell).arg("-c").arg(crate::deploy::ledger::list_script(root)).output().unwrap().stdout,
            ));
            let g1 = list.iter().find(|e| e.release == "1-g1").unwrap();
            assert!(g1.live && g1.by == "ann@ci" && g1.revision == "rev-1-g1", "{g1:?}");
            assert_eq!(g1.result, "live again (deploy --rollback)");
            let b = list.iter().find(|e| e.release == "2-b").unwrap();
            assert_eq!(b.result, "health check failed; rolled back to 1-g1");
        }
    }

    /// A controller that stalls after the switch (its connection up, no verdict): the watchdog
    /// switches back within confirm_timeout; the late `ok` is refused.
    #[test]
    fn watchdog_rolls_back_an_unconfirmed_release() {
        for shell in ["sh", "dash"] {
            let (dir, s) = live_on_r1(shell);
            let root = s.root.clone();
            let root = root.as_str();
            let mut child = spawn(shell, &build(&s, &upload("r2")));
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(&upload_stdin("r2", "")).unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let started = Instant::now();
            assert!(lines.by_ref().map_while(|l| l.ok()).any(|l| l == "n restarted"));
            assert_eq!(current(root), Path::new("releases/r2"));
            assert!(within(3, || current(root) == Path::new("releases/r1")), "{shell}: still on r2");
            assert!(started.elapsed() >= Duration::from_millis(900), "rolled back before the deadline");
            // The ledger is written after the restart back.
            assert!(within(3, || ledger(shell, root)[1].1 == "failed"), "{:?}", ledger(shell, root));
            // The session ends by itself (releasing the host lock), though the controller,
            // stalled, still holds the connection (stdin open) and never said a word.
            assert!(within(3, || child.try_wait().unwrap().is_some()), "{shell}: the session still waits");
            assert_eq!(child.wait().unwrap().code(), Some(1));
            let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
            assert_eq!(rest[..2], ["n rolled-back\treleases/r1", "n fail\tconfirm"], "{shell}: {rest:?}");
            // The controller's late `ok` finds nobody listening.
            let _ = stdin.write_all(b"ok\n");
            assert_eq!(current(root), Path::new("releases/r1"));
            assert_eq!(std::fs::read_to_string(dir.path().join("restarts")).unwrap().lines().count(), 3);
        }
    }

    /// The session SIGKILLed right after the switch (the controller's connection cut): the
    /// detached watchdog still rolls back. SIGKILLed during the build: the release stays
    /// incomplete, and the next run removes it.
    /// The controller's session dies after the switch: the watchdog, still holding the host
    /// lock until it decides, names itself in lock.owner (which the session's EXIT trap
    /// emptied) for whoever waits, and empties it again when it ends.
    #[test]
    fn watchdog_names_itself_as_the_lock_holder_after_the_session() {
        for shell in ["sh", "dash"] {
            let (dir, mut s) = live_on_r1(shell);
            s.confirm_timeout = 3;
            let state = dir.path().join("state");
            let spec = crate::remote::test_spec(state.to_str().unwrap(), "n", 0);
            let body = crate::remote::script(&spec, &build(&s, &upload("r2")));
            let mut child =
                Command::new(shell).arg("-c").arg(body).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(&upload_stdin("r2", "")).unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            assert!(lines.by_ref().map_while(|l| l.ok()).any(|l| l == "n restarted"), "{shell}");
            let owner = || std::fs::read_to_string(state.join("lock.owner")).unwrap();
            assert!(owner().starts_with("me@here (microctl test), host pid "), "{shell}: {}", owner());
            // The session is killed (its EXIT trap runs); the watchdog carries on.
            assert!(Command::new("kill").arg(child.id().to_string()).status().unwrap().success());
            child.wait().unwrap();
            assert!(
                within(2, || owner().starts_with("microctl confirm watchdog (of me@here (microctl test); host pid ")),
                "{shell}: {:?}",
                owner()
            );
            assert!(owner().contains(" rolls back at "), "{shell}: {}", owner());
            assert!(within(5, || current(&s.root) == Path::new("releases/r1")), "{shell}: still on r2");
            assert!(within(3, || owner().is_empty()), "{shell}: {:?}", owner());
            drop(stdin);
        }
    }

    #[test]
    fn killed_sessions_leave_nothing_unconfirmed_or_half_built() {
        for shell in ["sh", "dash"] {
            let (dir, mut s) = live_on_r1(shell);
            let root = s.root.clone();
            let root = root.as_str();
            let mut child = spawn(shell, &build(&s, &upload("r2")));
            child.stdin.take().unwrap().write_all(&upload_stdin("r2", "")).unwrap_or(());
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            assert!(lines.by_ref().map_while(|l| l.ok()).any(|l| l == "n switched\tr2"));
            child.kill().unwrap();
            child.wait().unwrap();
            assert!(within(3, || current(root) == Path::new("releases/r1")), "{shell}: still on r2");

            s.build = vec!["touch building; sleep 30".into()];
            let mut child = spawn(shell, &build(&s, &upload("r3")));
            child.stdin.take().unwrap().write_all(&upload_stdin("r3", "")).unwrap();
            assert!(within(5, || dir.path().join("releases/r3/building").exists()));
            child.kill().unwrap();
            child.wait().unwrap();
            let _ = Command::new("pkill").args(["-f", "touch building; sleep 30"]).status();
            assert_eq!(ledger(shell, root)[2], ("r3".to_string(), "incomplete".to_string(), true));
            s.build = vec![];
            let (code, out) = deploy_with(shell, &s, "r4", "ok\n");
            assert_eq!(code, 0, "{out}");
            assert!(out.contains("n cleaned\tr3\n"), "{shell}: {out}");
            assert!(!dir.path().join("releases/r3").exists());
            assert_eq!(ledger(shell, root)[2], ("r3".to_string(), "incomplete".to_string(), false));
        }
    }

    /// A switched release whose watchdog died before deciding (`.pending` left, no verdict):
    /// the next run rolls it back before anything else.
    #[test]
    fn next_run_rolls_back_an_orphaned_switch() {
        for shell in ["sh", "dash"] {
            let (dir, s) = live_on_r1(shell);
            let root = s.root.as_str();
            std::fs::create_dir_all(dir.path().join("releases/r2")).unwrap();
            std::fs::write(dir.path().join(".ledger/r2"), "seq\t2\nstatus\tincomplete\n").unwrap();
            std::fs::write(dir.path().join(".ledger/.pending"), "r2\nreleases/r1\n").unwrap();
            std::fs::remove_file(dir.path().join("current")).unwrap();
            std::os::unix::fs::symlink("releases/r2", dir.path().join("current")).unwrap();
            let (code, out) = deploy_with(shell, &s, "r3", "ok\n");
            assert_eq!(code, 0, "{shell}: {out}");
            assert!(out.contains("n recovered\tr2\nn previous\treleases/r1\n"), "{shell}: {out}");
            assert_eq!(current(root), Path::new("releases/r3"));
            let list = ledger(shell, root);
            assert_eq!(list[1], ("r2".to_string(), "failed".to_string(), true), "{list:?}");
            assert!(!dir.path().join(".ledger/.pending").exists());
        }
    }

    /// The env file is data: build steps see its values literally, and nothing in it runs. The
    /// restart (root's) never sees them: systemd gives EnvironmentFile= to the service only.
    #[test]
    fn env_file_values_reach_steps_literally_and_never_the_restart() {
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("app");
            let flag = dir.path().join("x");
            let env = dir.path().join("app.env");
            let secret = format!("abc$(touch {f})def `touch {f}` pa$word \"q\" 's'  sp", f = flag.display());
            std::fs::write(&env, format!("SECRET={}\n", crate::role::systemd_env(&secret).unwrap())).unwrap();
            let mut s = settings(root.to_str().unwrap(), &["printf '%s' \"$SECRET\" > step.out"]);
            s.env_file = Some(env.to_str().unwrap().into());
            s.restart = "printf '%s' \"${SECRET-unset}\" > \"$ROOT/restart.out\"".into();
            let (code, out) = deploy_with(shell, &s, "r1", "ok\n");
            assert_eq!(code, 0, "{out}");
            assert_eq!(std::fs::read_to_string(root.join("releases/r1/step.out")).unwrap(), secret);
            assert_eq!(std::fs::read_to_string(root.join("restart.out")).unwrap(), "unset");
            assert!(!flag.exists(), "{shell} ran a command from the env file");
        }
    }

    /// A root folder the app user `nobody` can reach (tempdirs are root's alone).
    fn nobody_root() -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    /// These tests play the app user (and the attacker) as `nobody`: they need root and
    /// runuser (util-linux), and fail, not skip, without them.
    fn need_root() {
        assert!(
            Command::new("runuser").args(["-u", "nobody", "--", "true"]).status().is_ok_and(|s| s.success()),
            "this test runs as root and needs runuser (Debian package util-linux): run it through scripts/test.sh"
        );
    }

    /// The env file's values travel in the environment, never on a command line: while a
    /// build step runs as the app user, no process's /proc/PID/cmdline (world-readable)
    /// holds the secret, and the step still sees it literally.
    #[test]
    #[ignore = "needs root: run by scripts/test.sh"]
    fn env_file_values_stay_off_command_lines() {
        need_root();
        for shell in ["sh", "dash"] {
            let dir = nobody_root();
            let root = dir.path().join("app");
            let env = dir.path().join("app.env");
            let secret = format!("hunter2-off-cmdlines-{shell} 'q' $x");
            std::fs::write(&env, format!("SECRET={}\n", crate::role::systemd_env(&secret).unwrap())).unwrap();
            // The step's own text is as secret as the env file (a rendered password in it).
            let mark = format!("hunter3-{}-{shell}", std::process::id());
            let step = format!(
                "for p in /proc/[0-9]*; do tr '\\000\\n' '  ' < \"$p/cmdline\"; echo; done > cmdlines 2> /dev/null; \
                 printf '%s' \"$SECRET\" > step.out; : {mark}"
            );
            let mut s = settings(root.to_str().unwrap(), &[&step]);
            s.user = "nobody".into();
            s.env_file = Some(env.to_str().unwrap().into());
            let (code, out) = deploy_with(shell, &s, "r1", "ok\n");
            assert_eq!(code, 0, "{shell}: {out}");
            let rel = root.join("releases/r1");
            assert_eq!(std::fs::read_to_string(rel.join("step.out")).unwrap(), secret, "{shell}");
            let cmdlines = std::fs::read_to_string(rel.join("cmdlines")).unwrap();
            assert!(cmdlines.contains("runuser"), "{shell}: {cmdlines}");
            assert!(!cmdlines.contains("hunter2"), "{shell}: the secret is on a command line:\n{cmdlines}");
            // (This harness passes the whole script on its own command line: the host gets it
            // on stdin, src/remote/; that one line is not the step's.)
            let harness = format!("{shell} -c NONCE=");
            let leaked: Vec<&str> =
                cmdlines.lines().filter(|l| l.contains(&mark) && !l.starts_with(&harness)).collect();
            assert!(leaked.is_empty(), "{shell}: the step is on a command line: {leaked:?}");
        }
    }

    /// Root writes nothing into the app-owned cache folder: a build step (the app user) that
    /// plants `.complete` -> a root file does not get root to truncate it.
    #[test]
    #[ignore = "needs root: run by scripts/test.sh"]
    fn cache_bookkeeping_follows_no_planted_link() {
        need_root();
        for shell in ["sh", "dash"] {
            let dir = nobody_root();
            let root = dir.path().join("app");
            let target = dir.path().join("precious");
            std::fs::write(&target, "root's\n").unwrap();
            let mut s = settings(root.to_str().unwrap(), &[]);
            s.user = "nobody".into();
            s.cache = Some(Cache {
                dir: "venv".into(),
                build: vec![format!("mkdir venv && ln -s {} .complete", target.display())],
                key: vec!["VERSION".into()],
                key_command: "echo v1".into(),
            });
            let (_, out) = deploy_with(shell, &s, "r1", "ok\n");
            assert!(out.contains("n cache\tbuilding\t"), "{shell}: {out}");
            assert_eq!(std::fs::read_to_string(&target).unwrap(), "root's\n", "{shell}: {out}");
        }
    }

    /// The cached environment is built once per set of inputs, linked from each release, and
    /// pruned with the last release that uses it.
    #[test]
    fn cache_is_reused_while_its_inputs_do_not_change() {
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_str().unwrap();
            let mut s = settings(root, &["test -f venv/ok"]);
            s.keep = 2;
            s.cache = Some(Cache {
                dir: "venv".into(),
                build: vec!["mkdir venv".into(), "echo ok > venv/ok; echo built >> ../../../builds".into()],
                key: vec!["VERSION".into()],
                key_command: "echo v1".into(),
            });
            let (code, out) = deploy_with(shell, &s, "a", "ok\n");
            assert_eq!(code, 0, "{out}");
            assert!(out.contains("n cache\tbuilding\t"), "{out}");
            // VERSION differs per release: key on a file whose content does not change instead.
            s.cache.as_mut().unwrap().key = vec!["requirements.txt".into()];
            let (_, out1) = deploy_with(shell, &s, "b", "ok\n");
            let (code, out2) = deploy_with(shell, &s, "c", "ok\n");
            assert_eq!(code, 0, "{out2}");
            assert!(out1.contains("n cache\tbuilding\t") && out2.contains("n cache\treused\t"), "{out1}\n{out2}");
            assert!(!out2.contains("n step\tmkdir venv"), "{out2}");
            assert_eq!(std::fs::read_to_string(dir.path().join("builds")).unwrap().lines().count(), 2);
            let link = std::fs::read_link(dir.path().join("releases/c/venv")).unwrap();
            assert!(link.starts_with(dir.path().join("shared/cache")), "{link:?}");
            assert_eq!(std::fs::read_link(dir.path().join("releases/b/venv")).unwrap(), link);
            // keep = 2: release a went, and with it the only environment it used.
            assert!(!dir.path().join("releases/a").exists());
            assert_eq!(std::fs::read_dir(dir.path().join("shared/cache")).unwrap().count(), 1);
        }
    }

    /// `cache_key` takes folders (every file below them: a vendored wheelhouse) and globs: the
    /// environment is reused while none of what they match changes, rebuilt when a file in
    /// the folder does, and holds the matched files.
    #[test]
    fn cache_key_takes_folders_and_globs() {
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_str().unwrap();
            let mut s = settings(root, &[]);
            s.cache = Some(Cache {
                dir: "venv".into(),
                build: vec!["mkdir venv".into()],
                key: vec!["requirements*.txt".into(), "wheels/".into()],
                key_command: "echo v1".into(),
            });
            let release = |name: &str, wheel: &str| {
                let mut b = tar::Builder::new(Vec::new());
                for (path, text) in
                    [("VERSION", name), ("requirements-dev.txt", "pytest\n"), ("wheels/sub/x.whl", wheel)]
                {
                    let mut h = tar::Header::new_gnu();
                    h.set_size(text.len() as u64);
                    h.set_mode(0o644);
                    h.set_cksum();
                    b.append_data(&mut h, path, text.as_bytes()).unwrap();
                }
                let tar = b.into_inner().unwrap();
                let mut stdin = format!("{}\n", tar.len()).into_bytes();
                stdin.extend_from_slice(&tar);
                stdin.extend_from_slice(b"ok\n");
                run(shell, &build(&s, &upload(name)), &stdin)
            };
            let (code, out) = release("a", "wheel 1");
            assert_eq!(code, 0, "{shell}: {out}");
            assert!(out.contains("n cache\tbuilding\t"), "{shell}: {out}");
            let (_, out) = release("b", "wheel 1");
            assert!(out.contains("n cache\treused\t"), "{shell}: nothing changed, yet: {out}");
            let (_, out) = release("c", "wheel 2");
            assert!(out.contains("n cache\tbuilding\t"), "{shell}: a wheel changed, yet: {out}");
            let env = std::fs::read_link(dir.path().join("releases/c/venv")).unwrap();
            let env = env.parent().unwrap();
            assert_eq!(std::fs::read_to_string(env.join("wheels/sub/x.whl")).unwrap(), "wheel 2", "{shell}");
            assert_eq!(std::fs::read_to_string(env.join("requirements-dev.txt")).unwrap(), "pytest\n", "{shell}");
        }
    }

    /// A git URL at a commit SHA (which `git clone --branch` refuses).
    #[test]
    fn clone_takes_a_commit_sha() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let git = |args: &str| {
            let out = Command::new("sh").arg("-c").arg(format!("cd {} && {args}", repo.display())).output().unwrap();
            assert!(out.status.success(), "{args}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        };
        std::fs::create_dir_all(&repo).unwrap();
        git(
            "git init -q && git config user.email t@example.invalid && git config user.name t && echo 1 > V && git add V && git commit -qm 1",
        );
        let sha = git("git rev-parse HEAD").trim().to_string();
        git("echo 2 > V && git commit -qam 2");
        for shell in ["sh", "dash"] {
            let root = dir.path().join(format!("root-{shell}"));
            let s = settings(root.to_str().unwrap(), &["test \"$(cat V)\" = 1"]);
            let target = Target::Clone { url: format!("file://{}", repo.display()), git_ref: sha.clone() };
            let (code, out) = run(shell, &build(&s, &target), b"ok\n");
            assert_eq!(code, 0, "{shell}: {out}");
            let live = current(root.to_str().unwrap());
            assert!(live.to_str().unwrap().ends_with(&sha[..10]), "{live:?}");
        }
    }

    /// Every deploy target's generated script, after the session part, and the watchdog's,
    /// pass shellcheck; none ships the comment lines of the .sh files.
    #[test]
    fn generated_scripts_pass_shellcheck() {
        let mut s = settings("/srv/my app", &["pip install -r req.txt", "echo \"$HOME\" > 'x y'"]);
        s.user = "app".into();
        s.env_file = Some("/etc/app env".into());
        s.cache = Some(Cache {
            dir: "venv".into(),
            build: vec!["python3 -m venv venv".into()],
            key: vec!["requirements.txt".into()],
            key_command: "python3 --version".into(),
        });
        let spec = crate::remote::test_spec("/var/lib/microctl", &crate::remote::nonce(), 60);
        for target in [
            upload("20261130T000000Z-abc"),
            Target::Clone { url: "https://example.invalid/x.git".into(), git_ref: "main".into() },
            Target::Previous { release: None },
        ] {
            let script = crate::remote::script(&spec, &build(&s, &target));
            assert_eq!(crate::remote::shellcheck(&script), None, "{target:?}:\n{script}");
            // The host gets no comment line of the .sh files (`remote::Shipped`): only the
            // directive `remote::script` ends with.
            let comments = script.lines().filter(|l| l.trim_start().starts_with('#')).count();
            let with_comments = crate::shell::with_comments(&script).len();
            eprintln!("{target:?}: {} bytes ({with_comments} with comments)", script.len());
            assert_eq!(comments, 1, "{target:?}:\n{script}");
        }
        assert_eq!(crate::remote::shellcheck(&format!("#!/bin/sh\n{}", watchdog())), None);
    }

    #[test]
    fn build_step_is_exact() {
        assert_eq!(
            build_step("pip install -r req.txt"),
            "STEP='pip install -r req.txt'\nmark step \"$STEP\"\nout=$(run_step \"$REL\" 2>&1) || build_failed 'build step `pip install -r req.txt`' \"$out\"\n"
        );
    }
}
