//! The deploy host script, run as root in a host session (`crate::remote`: lock, framing,
//! markers) over one exec channel: unpack (or clone) a new release, build it as the app user,
//! switch `current` atomically, restart, then WAIT for the controller's verdict on stdin after
//! its health check: `ok` prunes old releases; anything else, or the controller vanishing,
//! switches back and restarts.
//!
//! The fixed shell is in `functions.sh`, `upload.sh`, `clone.sh`, `previous.sh`, `switch.sh`
//! and `verdict.sh`; this file only prepends the values as quoted assignments and adds one
//! line per build step. Markers: `previous`, `release`, `step`, `switched`, `restarted`,
//! `fail WHAT` + `out` lines, `rolled-back`, `pruned`.

use crate::shell::quote;

/// Exit status after a rollback that the controller asked for (health check failed; `verdict.sh`).
pub const ROLLED_BACK_EXIT: u32 = 3;

/// Per-host settings, already rendered.
#[derive(Debug, Clone)]
pub struct Settings {
    pub root: String,
    pub user: String,
    pub env_file: Option<String>,
    pub build: Vec<String>,
    pub restart: String,
    pub keep: usize,
}

/// What the run does.
#[derive(Debug, Clone)]
pub enum Target {
    /// A release uploaded as a tar payload right after the script.
    Upload { name: String },
    /// A release cloned on the host.
    Clone { url: String, git_ref: String },
    /// Back to the newest release older than the live one.
    Previous,
}

const FUNCTIONS_SH: &str = include_str!("functions.sh");
const UPLOAD_SH: &str = include_str!("upload.sh");
const CLONE_SH: &str = include_str!("clone.sh");
const PREVIOUS_SH: &str = include_str!("previous.sh");
const SWITCH_SH: &str = include_str!("switch.sh");
const VERDICT_SH: &str = include_str!("verdict.sh");

/// The session body for `target` (runs after `crate::remote`'s session part).
pub fn build(s: &Settings, target: &Target) -> String {
    let mut out = format!(
        "ROOT={}\nRESTART={}\nAPP_USER={}\nKEEP={}\n{FUNCTIONS_SH}",
        quote(&s.root),
        quote(&s.restart),
        quote(&s.user),
        s.keep
    );
    if let Some(env) = &s.env_file {
        out.push_str(&format!("if [ -f {e} ]; then set -a; . {e}; set +a; fi\n", e = quote(env)));
    }
    match target {
        Target::Upload { name } => {
            out.push_str(&format!("NAME={}\n{UPLOAD_SH}", quote(name)));
            out.push_str(&build_steps(s));
        }
        Target::Clone { url, git_ref } => {
            out.push_str(&format!("GIT_URL={}\nGIT_REF={}\n{CLONE_SH}", quote(url), quote(git_ref)));
            out.push_str(&build_steps(s));
        }
        Target::Previous => out.push_str(PREVIOUS_SH),
    }
    out.push_str(SWITCH_SH);
    out.push_str(VERDICT_SH);
    out
}

/// The release's owner, its name, then one line per build step (as the app user, in the
/// release folder, output kept for the report; a failure removes the half-built release).
fn build_steps(s: &Settings) -> String {
    let mut out =
        String::from("[ \"$APP_USER\" = root ] || chown -R -- \"$APP_USER\" \"$REL\"\nmark release \"$NAME\"\n");
    for step in &s.build {
        out.push_str(&build_step(step, s.user == "root"));
    }
    out
}

/// One build step.
fn build_step(step: &str, as_root: bool) -> String {
    let run_as = if as_root {
        format!("sh -c {}", quote(step))
    } else {
        format!("runuser -u \"$APP_USER\" -- sh -c {}", quote(step))
    };
    format!(
        "mark step {q}\nout=$( cd \"$REL\" && {run_as} 2>&1 </dev/null 9>&- ) || {{ rm -rf -- \"$REL\"; fail {what} \"$out\"; }}\n",
        q = quote(step),
        what = quote(&format!("build step `{step}`")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn settings(root: &str, build: &[&str]) -> Settings {
        Settings {
            root: root.into(),
            user: "root".into(),
            env_file: None,
            build: build.iter().map(|s| s.to_string()).collect(),
            restart: "echo restarted >> \"$ROOT/restarts\"".into(),
            keep: 2,
        }
    }

    /// Runs the body (after the marker functions) with `shell`, feeding `stdin`; returns
    /// (exit code, stdout).
    fn run(shell: &str, body: &str, stdin: &[u8]) -> (i32, String) {
        let script = format!("NONCE=n\n{}{body}", crate::remote::MARK_SH);
        let mut child =
            Command::new(shell).arg("-c").arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
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

    fn deploy(shell: &str, root: &str, name: &str, steps: &[&str], verdict: &str) -> (i32, String) {
        let script = build(&settings(root, steps), &Target::Upload { name: name.into() });
        let tar = payload("VERSION", name);
        let mut stdin = format!("{}\n", tar.len()).into_bytes();
        stdin.extend_from_slice(&tar);
        stdin.extend_from_slice(verdict.as_bytes());
        run(shell, &script, &stdin)
    }

    #[test]
    fn release_switch_verdict_rollback_and_prune() {
        for shell in ["sh", "dash"] {
            release_cycle(shell);
        }
    }

    fn release_cycle(shell: &str) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let current = || std::fs::read_link(dir.path().join("current")).unwrap();

        let (code, out) = deploy(shell, root, "r1", &["test -f VERSION"], "ok\n");
        assert_eq!(code, 0, "{shell}: {out}");
        assert!(out.contains("n switched\tr1\nn restarted\nn pruned\n"), "{shell}: {out}");
        assert_eq!(current(), std::path::Path::new("releases/r1"));

        // A failing build leaves current alone and removes the half-built release.
        let (code, out) = deploy(shell, root, "r2", &["echo broke; false"], "ok\n");
        assert_eq!(code, 1);
        assert!(out.contains("n fail\tbuild step `echo broke; false`\nn out\tbroke\n"), "{shell}: {out}");
        assert!(!dir.path().join("releases/r2").exists());
        assert_eq!(current(), std::path::Path::new("releases/r1"));

        // A negative verdict (or none at all) switches back.
        let (code, out) = deploy(shell, root, "r3", &[], "");
        assert_eq!(code, ROLLED_BACK_EXIT as i32);
        assert!(out.contains("n rolled-back\treleases/r1"), "{shell}: {out}");
        assert_eq!(current(), std::path::Path::new("releases/r1"));

        // keep = 2: r1 (previous) and r5 (new) stay; r3, r4 go.
        deploy(shell, root, "r4", &[], "ok\n");
        deploy(shell, root, "r5", &[], "ok\n");
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("releases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["r4", "r5"]);

        // --rollback goes to the newest release older than the live one.
        let script = super::build(&settings(root, &[]), &Target::Previous);
        let (code, out) = run(shell, &script, b"ok\n");
        assert_eq!(code, 0, "{shell}: {out}");
        assert_eq!(current(), std::path::Path::new("releases/r4"));
        assert_eq!(std::fs::read_to_string(dir.path().join("restarts")).unwrap().lines().count(), 6);
    }

    /// Every deploy target's generated script, after the session part, passes shellcheck.
    #[test]
    fn generated_scripts_pass_shellcheck() {
        let mut s = settings("/srv/my app", &["pip install -r req.txt", "echo \"$HOME\" > 'x y'"]);
        s.user = "app".into();
        s.env_file = Some("/etc/app env".into());
        let spec = crate::remote::test_spec("/var/lib/microctl", &crate::remote::nonce(), 60);
        for target in [
            Target::Upload { name: "20261130T000000Z-abc".into() },
            Target::Clone { url: "https://example.invalid/x.git".into(), git_ref: "main".into() },
            Target::Previous,
        ] {
            let script = crate::remote::script(&spec, &build(&s, &target));
            assert_eq!(crate::remote::shellcheck(&script), None, "{target:?}:\n{script}");
        }
    }

    #[test]
    fn build_step_is_exact() {
        assert_eq!(
            build_step("pip install -r req.txt", false),
            "mark step 'pip install -r req.txt'\nout=$( cd \"$REL\" && runuser -u \"$APP_USER\" -- sh -c 'pip install -r req.txt' 2>&1 </dev/null 9>&- ) || { rm -rf -- \"$REL\"; fail 'build step `pip install -r req.txt`' \"$out\"; }\n"
        );
    }
}
