// Issue #21 (green means checked): every deploy host script, as the real paths assemble it,
// writes NOTHING to stderr under sh and dash on a realistic host. Included by the tests of
// `deploy_script.rs` (its helpers: `settings`, `upload`, `upload_stdin`, `nobody_root`...).

/// Runs `script` (a whole host script: `remote::script`'s session, or a script of its own)
/// under `shell`, feeding `stdin`; asserts its stderr is empty and returns (exit, stdout).
fn quiet(shell: &str, what: &str, script: &str, stdin: &[u8]) -> (i32, String) {
    let mut child = Command::new(shell)
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A script that exits early leaves the rest of stdin unread.
    let _ = input.write_all(stdin);
    drop(input);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{shell} {what}: the host script wrote to stderr; stdout:\n{stdout}");
    (out.status.code().unwrap_or(-1), stdout)
}

/// The deploy session (`mark.sh`, `session.sh` with the host's own state check, the deploy
/// body: `envfile.sh`, `release.sh`, `ledger.sh`, `functions.sh`, `cache.sh`, `upload.sh`,
/// `clone.sh`, `previous.sh`, `switch.sh`, `verdict.sh`), the confirm watchdog's script
/// (`watchdog.sh`), the ledger listing (`deploy --list`) and the drain (`drain.sh`): a root
/// with releases, an env file, a cached environment and build steps run as the app user
/// `nobody`; uploads kept and pruned, a failed health check rolled back, `--rollback` with
/// and without a release, a clone at a commit, and an unconfirmed switch the watchdog undoes.
#[test]
#[ignore = "needs root: run by scripts/test.sh"]
fn deploy_host_scripts_write_nothing_to_stderr_under_sh_and_dash() {
    need_root();
    let repo = nobody_root();
    let git = |args: &str| {
        let out = Command::new("sh").arg("-c").arg(format!("cd {} && {args}", repo.path().display())).output().unwrap();
        assert!(out.status.success(), "{args}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    git("git init -q && git config user.email t@example.invalid && git config user.name t && echo 1 > VERSION && echo flask > requirements.txt && git add . && git commit -qm 1");
    let sha = git("git rev-parse HEAD").trim().to_string();
    for shell in ["sh", "dash"] {
        let dir = nobody_root();
        let root = dir.path().join("app");
        let state = dir.path().join("state");
        let env = dir.path().join("app.env");
        std::fs::write(&env, "# the app's settings\nSECRET=\"a b\"\nDEBUG=0\n").unwrap();
        let mut s = settings(root.to_str().unwrap(), &["test -f VERSION", "echo building; ls > /dev/null"]);
        s.user = "nobody".into();
        s.env_file = Some(env.to_str().unwrap().into());
        s.cache = Some(Cache {
            dir: "venv".into(),
            build: vec!["mkdir -p venv && echo built > venv/ok".into()],
            key: vec!["VERSION".into(), "requirements*.txt".into()],
            key_command: "echo 3.11".into(),
        });
        // (The lock wait: the last run's watchdog holds the lock until it sees the verdict.)
        let spec = crate::remote::test_spec(state.to_str().unwrap(), "n", 10);
        let session = |target: &Target| crate::remote::script(&spec, &build(&s, target));
        let tar = |name: &str| {
            let mut b = tar::Builder::new(Vec::new());
            for (file, text) in [("VERSION", name), ("requirements.txt", "flask\n")] {
                let mut h = tar::Header::new_gnu();
                h.set_size(text.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                b.append_data(&mut h, file, text.as_bytes()).unwrap();
            }
            let tar = b.into_inner().unwrap();
            [format!("{}\n", tar.len()).into_bytes(), tar].concat()
        };
        let deploy = |name: &str, verdict: &str, want: i32| {
            let stdin = [tar(name), verdict.as_bytes().to_vec()].concat();
            let (code, out) = quiet(shell, &format!("upload {name}"), &session(&upload(name)), &stdin);
            assert_eq!(code, want, "{shell} upload {name}: {out}");
        };
        deploy("r1", "ok\n", 0);
        deploy("r2", "ok\n", 0);
        deploy("r3", "ok\n", 0);
        deploy("r4", "unhealthy\n", ROLLED_BACK_EXIT as i32);
        let run = |what: &str, target: Target, stdin: &[u8]| {
            let (code, out) = quiet(shell, what, &session(&target), stdin);
            assert_eq!(code, 0, "{shell} {what}: {out}");
        };
        run("rollback", Target::Previous { release: None }, b"ok\n");
        run("rollback to r3", Target::Previous { release: Some("r3".into()) }, b"ok\n");
        let url = format!("file://{}", repo.path().display());
        run("clone", Target::Clone { url, git_ref: sha.clone() }, b"ok\n");
        assert!(current(root.to_str().unwrap()).to_str().unwrap().ends_with(&sha[..10]), "{shell}");
        let (code, out) = quiet(shell, "list", &crate::deploy::ledger::list_script(&s.root), b"");
        assert_eq!((code, crate::deploy::ledger::parse_list(&out).len()), (0, 3), "{shell}: kept 2 and the failed one: {out}");

        // An unconfirmed switch to r3 (as switch.sh leaves it), the watchdog's deadline now.
        let live = current(&s.root);
        std::fs::write(root.join(".ledger/.pending"), format!("r3\n{}\n", live.display())).unwrap();
        let _ = std::fs::remove_dir(root.join(".ledger/.decided.r3"));
        std::fs::remove_file(root.join("current")).unwrap();
        std::os::unix::fs::symlink("releases/r3", root.join("current")).unwrap();
        let watchdog = format!(
            "ROOT={} NAME=r3 PREV={} RESTART={} CONFIRM_TIMEOUT=0 TIMEOUT=60 STATE={} LOCK_OWNER=x; \
             export ROOT NAME PREV RESTART CONFIRM_TIMEOUT TIMEOUT STATE LOCK_OWNER; exec {shell} -c {}",
            quote(&s.root),
            quote(live.to_str().unwrap()),
            quote(&s.restart),
            quote(state.to_str().unwrap()),
            quote(&watchdog())
        );
        assert_eq!(quiet(shell, "watchdog", &watchdog, b"").0, 0, "{shell}");
        assert_eq!(current(&s.root), live, "{shell}: the watchdog rolled back");

        let site = dir.path().join("site");
        std::fs::write(&site, "upstream app {\n    server 127.0.0.1:5000;\n    server 127.0.0.2:5000;\n}\n").unwrap();
        for down in [true, false] {
            let body = crate::deploy::drain::body(site.to_str().unwrap(), "127.0.0.1:5000", down, "true");
            let (code, out) = quiet(shell, &format!("drain (down: {down})"), &crate::remote::script(&spec, &body), b"");
            assert_eq!(code, 0, "{shell} drain: {out}");
        }
    }
}
