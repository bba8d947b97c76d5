//! The deploy host script, run as root over one exec channel while holding the host lock:
//! unpack (or clone) a new release, build it as the app user, switch `current` atomically,
//! restart, then WAIT for the controller's verdict on stdin after its health check: `ok`
//! prunes old releases; anything else, or the controller vanishing, switches back and restarts.
//!
//! Markers on stdout: `@@previous P`, `@@release NAME`, `@@step TEXT`, `@@switched NAME`,
//! `@@restarted`, `@@fail WHAT` + `@@out` lines, `@@rolled-back P`, `@@pruned`.

use crate::shell::quote;

/// Exit status after a rollback that the controller asked for (health check failed).
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

const FUNCTIONS: &str = r#"fail() { printf '@@fail\t%s\n' "$1"; printf '%s\n' "$2" | sed 's/^/@@out\t/'; exit 1; }
switch_to() { ln -sfn -- "$1" "$ROOT/.current.new" && mv -fT -- "$ROOT/.current.new" "$ROOT/current"; }
restart() { ( cd / && eval "$RESTART" ) 2>&1 </dev/null 9>&-; }
rollback() {
  if [ -n "$PREV" ]; then switch_to "$PREV"; else rm -f -- "$ROOT/current"; fi
  out=$(restart) || printf '%s\n' "$out" | sed 's/^/@@out\t/'
  printf '@@rolled-back\t%s\n' "$PREV"
}
"#;

/// The script (after `prelude`, the shared lock section).
pub fn build(prelude: &str, s: &Settings, target: &Target) -> String {
    let mut out = String::from(prelude);
    out.push_str(&format!(
        "ROOT={root}\nRESTART={restart}\nAPP_USER={user}\n{FUNCTIONS}",
        root = quote(&s.root),
        restart = quote(&s.restart),
        user = quote(&s.user),
    ));
    out.push_str(
        "mkdir -p -- \"$ROOT/releases\" \"$ROOT/shared\" || fail setup \"cannot create $ROOT\"\n\
         [ \"$APP_USER\" = root ] || chown -- \"$APP_USER\" \"$ROOT/shared\" || fail setup \"no user $APP_USER\"\n\
         PREV=$(readlink -- \"$ROOT/current\" 2>/dev/null || true)\n\
         printf '@@previous\\t%s\\n' \"$PREV\"\n",
    );
    if let Some(env) = &s.env_file {
        out.push_str(&format!("if [ -f {e} ]; then set -a; . {e}; set +a; fi\n", e = quote(env)));
    }
    match target {
        Target::Upload { name } => {
            out.push_str(&format!(
                "NAME={name}\nREL=\"$ROOT/releases/$NAME\"\n\
                 IFS= read -r n || fail upload 'no payload'\n\
                 mkdir -- \"$REL\" || fail upload \"release $NAME exists\"\n\
                 head -c \"$n\" | tar -x -C \"$REL\" -f - || {{ rm -rf -- \"$REL\"; fail upload 'cannot unpack the release'; }}\n",
                name = quote(name)
            ));
            out.push_str(&build_steps(s));
            out.push_str(SWITCH);
        }
        Target::Clone { url, git_ref } => {
            out.push_str(&format!(
                "T=\"$ROOT/releases/.clone.$$\"\n\
                 out=$(git clone --quiet --depth 1 --branch {r} -- {u} \"$T\" 2>&1) || {{ rm -rf -- \"$T\"; fail clone \"$out\"; }}\n\
                 NAME=\"$(date -u +%Y%m%dT%H%M%SZ)-$(git -C \"$T\" rev-parse --short=10 HEAD)\"\n\
                 REL=\"$ROOT/releases/$NAME\"\nmv -- \"$T\" \"$REL\" || fail clone 'cannot place the release'\n",
                r = quote(git_ref),
                u = quote(url)
            ));
            out.push_str(&build_steps(s));
            out.push_str(SWITCH);
        }
        Target::Previous => {
            out.push_str(
                "[ -n \"$PREV\" ] || fail rollback 'no live release'\n\
                 CUR=${PREV##*/}\n\
                 NAME=$(ls -1 -- \"$ROOT/releases\" | grep -v '^\\.' | sort | awk -v c=\"$CUR\" '$0 < c' | tail -n 1)\n\
                 [ -n \"$NAME\" ] || fail rollback \"no release older than $CUR\"\n\
                 printf '@@release\\t%s\\n' \"$NAME\"\n",
            );
            out.push_str(SWITCH);
        }
    }
    out.push_str(&format!(
        "IFS= read -r verdict || verdict=rollback\n\
         if [ \"$verdict\" = ok ]; then\n\
         \x20 ls -1 -- \"$ROOT/releases\" | grep -v '^\\.' | sort -r | tail -n +{keep_after} | while IFS= read -r r; do\n\
         \x20   [ \"releases/$r\" = \"$PREV\" ] || [ \"$r\" = \"$NAME\" ] || rm -rf -- \"$ROOT/releases/$r\"\n\
         \x20 done\n\
         \x20 printf '@@pruned\\n'\n\
         \x20 exit 0\n\
         fi\n\
         rollback\n\
         exit {ROLLED_BACK_EXIT}\n",
        keep_after = s.keep + 1,
    ));
    out
}

/// Switch `current` to the new release and restart; a failed restart rolls back at once.
const SWITCH: &str = "switch_to \"releases/$NAME\" || fail switch 'cannot switch current'\n\
printf '@@switched\\t%s\\n' \"$NAME\"\n\
if ! out=$(restart); then rollback; fail restart \"$out\"; fi\n\
printf '@@restarted\\n'\n";

fn build_steps(s: &Settings) -> String {
    let mut out = String::from(
        "[ \"$APP_USER\" = root ] || chown -R -- \"$APP_USER\" \"$REL\"\nprintf '@@release\\t%s\\n' \"$NAME\"\n",
    );
    for step in &s.build {
        let run_as = if s.user == "root" {
            format!("sh -c {}", quote(step))
        } else {
            format!("runuser -u \"$APP_USER\" -- sh -c {}", quote(step))
        };
        out.push_str(&format!(
            "printf '@@step\\t%s\\n' {q}\nout=$( cd \"$REL\" && {run_as} 2>&1 </dev/null 9>&- ) || {{ rm -rf -- \"$REL\"; fail {what} \"$out\"; }}\n",
            q = quote(step),
            what = quote(&format!("build step `{step}`")),
        ));
    }
    out
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

    /// Runs the script with `sh`, feeding `stdin`; returns (exit code, stdout).
    fn run(script: &str, stdin: &[u8]) -> (i32, String) {
        let mut child =
            Command::new("sh").arg("-c").arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
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

    fn deploy(root: &str, name: &str, steps: &[&str], verdict: &str) -> (i32, String) {
        let script = build("", &settings(root, steps), &Target::Upload { name: name.into() });
        let tar = payload("VERSION", name);
        let mut stdin = format!("{}\n", tar.len()).into_bytes();
        stdin.extend_from_slice(&tar);
        stdin.extend_from_slice(verdict.as_bytes());
        run(&script, &stdin)
    }

    #[test]
    fn release_switch_verdict_rollback_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let current = || std::fs::read_link(dir.path().join("current")).unwrap();

        let (code, out) = deploy(root, "r1", &["test -f VERSION"], "ok\n");
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("@@switched\tr1\n@@restarted\n@@pruned\n"), "{out}");
        assert_eq!(current(), std::path::Path::new("releases/r1"));

        // A failing build leaves current alone and removes the half-built release.
        let (code, out) = deploy(root, "r2", &["false"], "ok\n");
        assert_eq!(code, 1);
        assert!(out.contains("@@fail\tbuild step `false`"), "{out}");
        assert!(!dir.path().join("releases/r2").exists());
        assert_eq!(current(), std::path::Path::new("releases/r1"));

        // A negative verdict (or none at all) switches back.
        let (code, out) = deploy(root, "r3", &[], "");
        assert_eq!(code, ROLLED_BACK_EXIT as i32);
        assert!(out.contains("@@rolled-back\treleases/r1"), "{out}");
        assert_eq!(current(), std::path::Path::new("releases/r1"));

        // keep = 2: r1 (previous) and r5 (new) stay; r3, r4 go.
        deploy(root, "r4", &[], "ok\n");
        deploy(root, "r5", &[], "ok\n");
        let mut left: Vec<String> = std::fs::read_dir(dir.path().join("releases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["r4", "r5"]);

        // --rollback goes to the newest release older than the live one.
        let script = super::build("", &settings(root, &[]), &Target::Previous);
        let (code, out) = run(&script, b"ok\n");
        assert_eq!(code, 0, "{out}");
        assert_eq!(current(), std::path::Path::new("releases/r4"));
        assert_eq!(std::fs::read_to_string(dir.path().join("restarts")).unwrap().lines().count(), 6);
    }
}
