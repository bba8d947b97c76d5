//! Draining: while a host of a rolling deploy is switched and checked, nginx on the
//! `health_via` hosts sends it nothing: its `server ADDRESS:PORT` line in the upstream gets
//! `down` (`drain.sh`, a graceful reload), and loses it again once the host is healthy. Only
//! when other hosts of the deploy stay in rotation (more hosts than `batch`). `drain.sh` runs
//! in a host session on the via host (`crate::remote`: its lock, so the drains of a batch take
//! turns on the one site file; markers; privilege; the timeout); this file builds its body.

use crate::remote::Shipped;
use crate::shell::quote;

static DRAIN_SH: Shipped = Shipped::new(include_str!("drain.sh"));

/// The session body that marks `server` (`address:port`) in `file` down (`down`) or up, then
/// runs `reload`. Prints `changed` when it changed the site, else why it failed.
pub fn body(file: &str, server: &str, down: bool, reload: &str) -> String {
    format!(
        "FILE={}\nSERVER={}\nDRAIN={}\nRELOAD={}\n{DRAIN_SH}",
        quote(file),
        quote(&sed_pattern(server)),
        if down { "down" } else { "up" },
        quote(reload)
    )
}

/// `server` as a basic regular expression matching itself (dots and brackets escaped).
pub fn sed_pattern(server: &str) -> String {
    let mut out = String::new();
    for c in server.chars() {
        if matches!(c, '.' | '[' | ']' | '*' | '^' | '$' | '\\' | '/') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::{Command, Stdio};

    const SITE: &str = "upstream microblog {\n    server 10.0.2.20:5000 max_fails=1 fail_timeout=5s;\n    server 10.0.2.2:5000 max_fails=1 fail_timeout=5s;\n}\nserver { listen 80; }\n";

    /// The whole host session (lock in `state`, waiting up to `wait` s) running the drain.
    fn command(shell: &str, state: &Path, file: &Path, server: &str, down: bool, reload: &str, wait: u64) -> Command {
        let spec = crate::remote::test_spec(state.to_str().unwrap(), &crate::remote::nonce(), wait);
        let script = crate::remote::script(&spec, &body(file.to_str().unwrap(), server, down, reload));
        let mut c = Command::new(shell);
        c.arg("-c").arg(script).stdin(Stdio::null());
        c
    }

    /// (exit status, the session's data lines) of one drain.
    fn run(shell: &str, state: &Path, file: &Path, server: &str, down: bool, reload: &str) -> (i32, String) {
        let mut c = command(shell, state, file, server, down, reload, 0);
        let nonce = c.get_args().nth(1).and_then(|s| s.to_str()?.split("NONCE=").nth(1)?.split('\n').next());
        let mut reader = crate::remote::Reader::new(nonce.unwrap());
        let out = c.output().unwrap();
        reader.push(&out.stdout);
        let mut data = String::new();
        while let Some(line) = reader.line(true) {
            if let crate::remote::Line::Data(l) = line {
                data.push_str(&l);
                data.push('\n');
            }
        }
        (out.status.code().unwrap_or(-1), data)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    fn drained(site: &str, server: &str) -> String {
        let line = format!("{server} max_fails=1 fail_timeout=5s;");
        site.replace(&line, &line.replace(';', " down;"))
    }

    #[test]
    fn body_and_pattern_are_exact() {
        assert_eq!(sed_pattern("10.0.2.20:5000"), "10\\.0\\.2\\.20:5000");
        assert_eq!(sed_pattern("[::1]:80"), "\\[::1\\]:80");
        assert_eq!(
            body("/etc/nginx/it's", "10.0.2.2:5000", true, "nginx -t -q && systemctl reload nginx"),
            format!(
                "FILE='/etc/nginx/it'\\''s'\nSERVER='10\\.0\\.2\\.2:5000'\nDRAIN=down\nRELOAD='nginx -t -q && systemctl reload nginx'\n{DRAIN_SH}"
            )
        );
    }

    /// A folder holding the site file `microblog` (SITE), and a state folder path elsewhere.
    fn fixture() -> (tempfile::TempDir, tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let (dir, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let site = dir.path().join("microblog");
        std::fs::write(&site, SITE).unwrap();
        let st = state.path().join("st");
        (dir, state, st, site)
    }

    #[test]
    fn drains_one_server_and_puts_it_back_under_sh_and_dash() {
        for shell in ["sh", "dash"] {
            let (dir, _keep, state, site) = fixture();
            let (code, out) = run(shell, &state, &site, "10.0.2.2:5000", true, "true");
            assert_eq!((code, out.as_str()), (0, "changed\n"), "{shell}");
            assert_eq!(std::fs::read_to_string(&site).unwrap(), drained(SITE, "10.0.2.2:5000"));
            // Twice is the same (no reload); 10.0.2.20 (a longer address with the same start) untouched.
            assert_eq!(run(shell, &state, &site, "10.0.2.2:5000", true, "false"), (0, String::new()), "{shell}");
            assert_eq!(std::fs::read_to_string(&site).unwrap(), drained(SITE, "10.0.2.2:5000"));
            assert_eq!(run(shell, &state, &site, "10.0.2.2:5000", false, "true").0, 0);
            assert_eq!(std::fs::read_to_string(&site).unwrap(), SITE);
            // nginx refusing the change: the old site is back.
            let (code, out) = run(shell, &state, &site, "10.0.2.20:5000", true, "echo bad config; false");
            assert_eq!(code, 1);
            assert!(out.contains("nginx refused the drained site: bad config"), "{out}");
            assert_eq!(std::fs::read_to_string(&site).unwrap(), SITE);
            let (code, out) = run(shell, &state, &site, "10.9.9.9:5000", true, "true");
            assert!(code == 1 && out.contains("no upstream server"), "{out}");
            assert_eq!(names(dir.path()), ["microblog"], "{shell}: stages or backups left");
        }
    }

    /// A site that is a link (sites-enabled -> sites-available): the file it points at is
    /// edited and the link stays; stages a killed drain left beside it are removed; owner and
    /// mode are the site's.
    #[test]
    fn edits_through_a_site_link_and_removes_stale_stages() {
        use std::os::unix::fs::PermissionsExt;
        for shell in ["sh", "dash"] {
            let (dir, state) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
            let state = state.path().join("st");
            let available = dir.path().join("available");
            std::fs::create_dir(&available).unwrap();
            let site = available.join("microblog");
            std::fs::write(&site, SITE).unwrap();
            std::fs::set_permissions(&site, std::fs::Permissions::from_mode(0o640)).unwrap();
            std::fs::write(available.join(".microblog.microctl-drain.0123456789abcdef.old"), "stale").unwrap();
            let link = dir.path().join("enabled");
            std::os::unix::fs::symlink(&site, &link).unwrap();
            let (code, out) = run(shell, &state, &link, "10.0.2.20:5000", true, "true");
            assert_eq!((code, out.as_str()), (0, "changed\n"), "{shell}");
            assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "{shell}");
            assert_eq!(std::fs::read_to_string(&site).unwrap(), drained(SITE, "10.0.2.20:5000"));
            assert_eq!(std::fs::metadata(&site).unwrap().permissions().mode() & 0o7777, 0o640);
            assert_eq!(names(&available), ["microblog"], "{shell}");
        }
    }

    /// Drains take the via host's lock: one waits while another run holds it (and gives up
    /// naming the holder, site untouched); two drains of different servers started together
    /// take turns, and both edits land.
    #[test]
    fn drains_take_the_host_lock_and_take_turns_under_sh_and_dash() {
        for shell in ["sh", "dash"] {
            let (dir, _keep, state, site) = fixture();
            assert_eq!(run(shell, &state, &site, "10.0.2.2:5000", false, "true").0, 0, "creates the state folder");
            let mut holder = crate::remote::hold_lock(&state);
            let (code, _) = run(shell, &state, &site, "10.0.2.2:5000", true, "true");
            holder.kill().unwrap();
            holder.wait().unwrap();
            assert_eq!(code, crate::remote::LOCKED_EXIT as i32, "{shell}");
            assert_eq!(std::fs::read_to_string(&site).unwrap(), SITE, "{shell}");

            // The reload is slow: without the lock, the second drain's rename would undo the first's.
            let reload = "sleep 0.3";
            let children: Vec<_> = ["10.0.2.2:5000", "10.0.2.20:5000"]
                .iter()
                .map(|s| command(shell, &state, &site, s, true, reload, 10).stdout(Stdio::null()).spawn().unwrap())
                .collect();
            for mut c in children {
                assert!(c.wait().unwrap().success(), "{shell}");
            }
            assert_eq!(
                std::fs::read_to_string(&site).unwrap(),
                drained(&drained(SITE, "10.0.2.2:5000"), "10.0.2.20:5000"),
                "{shell}"
            );
            assert_eq!(names(dir.path()), ["microblog"], "{shell}: stages or backups left");
        }
    }

    #[test]
    fn drain_session_passes_shellcheck() {
        let spec = crate::remote::test_spec("/var/lib/microctl", "00ff", 60);
        let script = crate::remote::script(
            &spec,
            &body("/etc/nginx/x", "1.2.3.4:5", true, "nginx -t -q && systemctl reload nginx"),
        );
        assert_eq!(crate::remote::shellcheck(&format!("#!/bin/sh\n{script}")), None);
    }
}
