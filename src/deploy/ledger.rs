//! The release ledger each host keeps under `ROOT/.ledger/` (`ledger.sh`): per release its
//! status (`incomplete` until a verdict, then `healthy` or `failed`), who deployed it, when,
//! from which revision, and the result. `--rollback` picks the newest healthy release older
//! than the live one; `--list` prints the ledger; a run cleans up the incomplete releases of
//! runs that died. This file parses `ledger_list` output and builds the `--list` session body.

use serde::Serialize;

use crate::remote::Shipped;
use crate::shell::quote;

/// `ledger_set`, `ledger_get`, `ledger_list`, `ledger_now` (after `ROOT=`).
pub static LEDGER_SH: Shipped = Shipped::new(include_str!("ledger.sh"));

/// `deploy --list`, one host: its releases, the live one, and its release ledger (the
/// command's own fields of the host's JSON `host` object).
#[derive(Debug, Default, Serialize)]
pub struct Listing {
    pub live: String,
    pub releases: Vec<String>,
    pub ledger: Vec<Entry>,
}

impl Listing {
    /// A host's listing from its ledger's entries: the releases still present, the live one.
    pub fn of(ledger: Vec<Entry>) -> Listing {
        let live = ledger.iter().find(|e| e.live).map(|e| e.release.clone()).unwrap_or_default();
        let releases = ledger.iter().filter(|e| e.present).map(|e| e.release.clone()).collect();
        Listing { live, releases, ledger }
    }

    /// The recap's detail: `3 releases, live R`.
    pub fn detail(&self) -> String {
        format!("{}, live {}", crate::report::count(self.releases.len(), "release"), self.live)
    }

    /// The table's header, and one row per ledger entry of `host` (the live one starred).
    pub const COLUMNS: [&'static str; 8] = ["host", "release", "status", "live", "by", "started", "revision", "result"];

    pub fn rows(&self, host: &str) -> Vec<Vec<String>> {
        self.ledger
            .iter()
            .map(|e| {
                let status = if e.present { e.status.clone() } else { format!("{} (removed)", e.status) };
                vec![
                    host.to_string(),
                    e.release.clone(),
                    status,
                    if e.live { "*".into() } else { String::new() },
                    e.by.clone(),
                    e.started.clone(),
                    e.revision.clone(),
                    e.result.clone(),
                ]
            })
            .collect()
    }
}

/// One release as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub release: String,
    /// `incomplete`, `healthy`, `failed`, or `unknown` (a release made before the ledger).
    pub status: String,
    pub by: String,
    pub started: String,
    pub finished: String,
    pub revision: String,
    pub result: String,
    /// Whether its folder still exists (failed builds and cleaned-up releases have none).
    pub present: bool,
    /// Whether `current` points at it.
    pub live: bool,
}

/// The `--list` session body (run by `super::list` in a host session): the live release, then
/// one `ledger_list` line per release, each with whether its folder exists.
pub fn list_script(root: &str) -> String {
    format!(
        "ROOT={}\n{LEDGER_SH}printf '%s\\n' \"$(readlink -- \"$ROOT/current\" 2>/dev/null)\"\n\
         ledger_list | while IFS= read -r l; do p=0; [ -d \"$ROOT/releases/${{l%%\t*}}\" ] && p=1; printf '%s\\t%s\\n' \"$p\" \"$l\"; done\n",
        quote(root)
    )
}

/// Parses what [`list_script`] printed.
pub fn parse_list(text: &str) -> Vec<Entry> {
    let mut lines = text.lines();
    let live = lines.next().unwrap_or("").trim().trim_start_matches("releases/").to_string();
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() < 8 {
                return None;
            }
            Some(Entry {
                release: f[1].to_string(),
                status: f[2].to_string(),
                by: f[3].to_string(),
                started: f[4].to_string(),
                finished: f[5].to_string(),
                revision: f[6].to_string(),
                result: f[7..].join(" "),
                present: f[0] == "1",
                live: !live.is_empty() && f[1] == live,
            })
        })
        .collect()
}

/// Whether `name` is a release name microctl can make and act on (`name_ok` in `ledger.sh`,
/// which the host applies to every name it reads): letters, digits, `.`, `_`, `-`, not
/// starting with a dot. `--rollback NAME` is checked with it before anything connects.
pub fn release_name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Who deploys: `user@machine` of this controller (SUDO_USER first), for the ledger's `by`.
pub fn deployer() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let machine = machine.trim();
    let who = if machine.is_empty() { user } else { format!("{user}@{machine}") };
    who.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(shell: &str, root: &std::path::Path, body: &str) -> String {
        let script = format!("ROOT={}\n{LEDGER_SH}{body}", quote(root.to_str().unwrap()));
        let out = Command::new(shell).arg("-c").arg(&script).output().unwrap();
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn set_get_and_list_under_sh_and_dash() {
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("releases/r1")).unwrap();
            std::fs::create_dir_all(dir.path().join("releases/r0")).unwrap();
            sh(shell, dir.path(), "ledger_set r1 status incomplete by 'ann@ci' revision abc123");
            sh(
                shell,
                dir.path(),
                "ledger_set r1 status healthy result \"tab\there
newline\"",
            );
            sh(shell, dir.path(), "ledger_set r2 status failed result 'build step `false` failed'");
            assert_eq!(sh(shell, dir.path(), "ledger_get r1 status"), "healthy\n");
            assert_eq!(sh(shell, dir.path(), "ledger_get r9 status"), "");
            std::os::unix::fs::symlink("releases/r1", dir.path().join("current")).unwrap();
            let script = list_script(dir.path().to_str().unwrap());
            let out = Command::new(shell).arg("-c").arg(&script).output().unwrap();
            let list = parse_list(&String::from_utf8(out.stdout).unwrap());
            let got: Vec<(&str, &str, bool, bool)> =
                list.iter().map(|e| (e.release.as_str(), e.status.as_str(), e.present, e.live)).collect();
            assert_eq!(
                got,
                [("r0", "unknown", true, false), ("r1", "healthy", true, true), ("r2", "failed", false, false)]
            );
            assert_eq!(list[1].by, "ann@ci");
            assert_eq!(list[1].revision, "abc123");
            assert_eq!(list[1].result, "tab here newline");
            assert_eq!(list[2].result, "build step `false` failed");
        }
    }

    /// The host's `name_ok` and [`release_name_ok`] agree, under sh and dash.
    #[test]
    fn release_names_are_matched_exactly_on_both_sides() {
        let names = [
            "20261130T000000Z-abc1234567",
            "r1",
            "1-g1",
            "a.b_c-d",
            "-rf",
            "",
            ".",
            "..",
            ".hidden",
            "zz\n",
            "a b",
            "x\thealthy",
            "a/b",
            "*",
            "é",
            "a$b",
            "a'b",
            "a\\b",
        ];
        for shell in ["sh", "dash"] {
            for name in names {
                let dir = tempfile::tempdir().unwrap();
                let script = format!("ROOT={}\n{LEDGER_SH}name_ok \"$1\"", quote(dir.path().to_str().unwrap()));
                let ok = Command::new(shell).arg("-c").arg(&script).arg("sh").arg(name).status().unwrap().success();
                assert_eq!(ok, release_name_ok(name), "{shell}: {name:?}");
            }
        }
    }

    #[test]
    fn deployer_is_one_line() {
        let who = deployer();
        assert!(!who.is_empty() && !who.contains('\n') && !who.contains('\t'), "{who}");
    }
}
