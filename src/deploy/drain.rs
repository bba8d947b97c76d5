//! Draining: while a host of a rolling deploy is switched and checked, nginx on the
//! `health_via` hosts sends it nothing: its `server ADDRESS:PORT` line in the upstream gets
//! `down` (`drain.sh`, a graceful reload), and loses it again once the host is healthy. Only
//! when other hosts of the deploy stay in rotation (more hosts than `batch`).

use crate::shell::quote;

const DRAIN_SH: &str = include_str!("drain.sh");

/// The command `privilege`-wrapped by the caller: mark `server` (`address:port`) in `file`
/// down (`down`) or up, then run `reload`.
pub fn script(file: &str, server: &str, down: bool, reload: &str) -> String {
    format!(
        "FILE={}\nSERVER={}\nSTATE={}\nRELOAD={}\n{DRAIN_SH}",
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
    use std::process::Command;

    const SITE: &str = "upstream microblog {\n    server 10.0.2.20:5000 max_fails=1 fail_timeout=5s;\n    server 10.0.2.2:5000 max_fails=1 fail_timeout=5s;\n}\nserver { listen 80; }\n";

    fn run(shell: &str, file: &std::path::Path, server: &str, down: bool, reload: &str) -> (bool, String) {
        let out =
            Command::new(shell).arg("-c").arg(script(file.to_str().unwrap(), server, down, reload)).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    }

    #[test]
    fn pattern_is_exact() {
        assert_eq!(sed_pattern("10.0.2.20:5000"), "10\\.0\\.2\\.20:5000");
        assert_eq!(sed_pattern("[::1]:80"), "\\[::1\\]:80");
    }

    #[test]
    fn drains_one_server_and_puts_it_back_under_sh_and_dash() {
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let site = dir.path().join("microblog");
            std::fs::write(&site, SITE).unwrap();
            let (ok, out) = run(shell, &site, "10.0.2.2:5000", true, "true");
            assert!(ok, "{out}");
            let drained = std::fs::read_to_string(&site).unwrap();
            assert_eq!(
                drained,
                SITE.replace(
                    "10.0.2.2:5000 max_fails=1 fail_timeout=5s;",
                    "10.0.2.2:5000 max_fails=1 fail_timeout=5s down;"
                )
            );
            // Twice is the same; 10.0.2.20 (a longer address with the same start) untouched.
            assert!(run(shell, &site, "10.0.2.2:5000", true, "false").0, "no change, no reload");
            assert_eq!(std::fs::read_to_string(&site).unwrap(), drained);
            assert!(run(shell, &site, "10.0.2.2:5000", false, "true").0);
            assert_eq!(std::fs::read_to_string(&site).unwrap(), SITE);
            // nginx refusing the change: the old site is back.
            let (ok, out) = run(shell, &site, "10.0.2.20:5000", true, "echo bad config; false");
            assert!(!ok);
            assert!(out.contains("nginx refused the drained site: bad config"), "{out}");
            assert_eq!(std::fs::read_to_string(&site).unwrap(), SITE);
            let (ok, out) = run(shell, &site, "10.9.9.9:5000", true, "true");
            assert!(!ok && out.contains("no upstream server"), "{out}");
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temporary files left");
        }
    }

    #[test]
    fn drain_sh_passes_shellcheck() {
        assert_eq!(
            crate::remote::shellcheck(&format!(
                "#!/bin/sh\n{}",
                script("/etc/nginx/x", "1.2.3.4:5", true, "nginx -t -q && systemctl reload nginx")
            )),
            None
        );
    }
}
