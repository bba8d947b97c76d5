//! Applying a host's firewall table so it can never lock the team out: one session (on the
//! pooled connection) checks the new table with `nft -c`, saves the live one, arms the host's
//! confirm watchdog (`watchdog.sh`: detached, it restores the saved table unless confirmed
//! within `firewall_confirm_timeout`) and replaces the table in one `nft -f` transaction.
//! Then the controller opens a NEW connection through the same jump chain and confirms over
//! it. If that connection cannot be made (the new rules cut our path), the controller waits,
//! over the old connection (established flows stay accepted), for the watchdog's restore and
//! fails the host with "the new firewall cut our SSH path; the previous rules are back".
//! A controller killed at any point after the apply leaves the decision to the watchdog.
//!
//! The host side is `firewall.sh` (three actions: apply, confirm, wait) after the usual
//! session part (`crate::remote`: state folder, lock).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Table;
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::Host;
use crate::remote::{self, Session, Shipped};
use crate::shell::quote;
use crate::transport::{Connection, Pool};

static FIREWALL_SH: Shipped = Shipped::new(include_str!("firewall.sh"));
static WATCHDOG_SH: Shipped = Shipped::new(include_str!("watchdog.sh"));

/// The message of a rule set that cut the controller's own path (and was undone).
pub const CUT: &str = "the new firewall cut our SSH path; the previous rules are back";

/// The session body for `action` (`apply`, `confirm`, `wait`) of change `token`.
pub fn body(action: &str, token: &str, table: &Table) -> String {
    let mut out = format!("FW_ACTION={action}\nFW_TOKEN={token}\nFW_TIMEOUT={}\n", table.confirm_timeout.as_secs());
    if action == "apply" {
        out.push_str(&format!("FW_RULES={}\nFW_WATCHDOG_SH={}\n", quote(&table.text), quote(&WATCHDOG_SH.to_string())));
    }
    out.push_str(&FIREWALL_SH.to_string());
    out
}

/// Applies `table` on `host` under the watchdog and confirms it over a new connection.
/// `lock_wait`/`timeout` as converge's. `Ok` once confirmed.
pub async fn apply(
    pool: &Pool,
    host: &Host,
    table: &Table,
    lock_wait: Duration,
    timeout: Option<Duration>,
) -> Result<()> {
    let token = remote::nonce();
    let conn = pool.connect(host).await?;
    let spec = || remote::Spec::for_host(host, "converge (firewall)", lock_wait, timeout);
    let said = run(&conn, spec(), &body("apply", &token, table)).await?;
    let applied = Instant::now();
    if said != "fw-applied" {
        return Err(host_said(host, &said));
    }
    // The watchdog decides at `confirm_timeout` by its own clock (whole seconds): confirm
    // well before, so a slow handshake cannot race it.
    let budget = table.confirm_timeout.saturating_sub(Duration::from_secs(2)).max(Duration::from_secs(1));
    let fresh = tokio::time::timeout(budget, pool.dial_fresh(host)).await;
    if let Ok(Ok(fresh)) = fresh {
        let fresh = Arc::new(fresh);
        let confirmed = run(&fresh, spec(), &body("confirm", &token, table)).await;
        fresh.disconnect().await;
        match confirmed.as_deref() {
            Ok("fw-confirmed") => return Ok(()),
            Ok("fw-late") => {}
            Ok(other) => return Err(host_said(host, other)),
            Err(_) => {}
        }
    }
    // Cut off (or too late): the watchdog restores the old table; wait for it over the old
    // connection, which the new rules still accept (established).
    let left = table.confirm_timeout.saturating_sub(applied.elapsed());
    let wait_spec = remote::Spec { timeout: spec().timeout.max(left + Duration::from_secs(10)), ..spec() };
    let waited = run(&conn, wait_spec, &body("wait", &token, table)).await;
    let error = match waited.as_deref() {
        Ok("fw-reverted") => Error::new(ErrorKind::Remote, CUT),
        _ => Error::new(
            ErrorKind::Remote,
            format!(
                "the new firewall cut our SSH path; the host's watchdog restores the previous rules {}s after the change",
                table.confirm_timeout.as_secs()
            ),
        ),
    };
    Err(error
        .host(&host.name)
        .task("firewall")
        .hint("check `ssh_from` and the jump hosts' addresses (`microctl inventory --ports` shows the rules); the controller must be allowed by them"))
}

/// Runs one firewall session and returns its one line of output.
async fn run(conn: &Arc<Connection>, spec: remote::Spec, body: &str) -> Result<String> {
    let mut session = Session::start(conn, spec, body, |_| {}).await?;
    session.phase("firewall");
    let (code, out) = session.output().await?;
    let said = out.trim_end().to_string();
    if code != 0 && !said.starts_with("fw-") {
        return Err(session.classify(Some(code)));
    }
    Ok(said)
}

/// The host script's own failure (`fw-invalid`, `fw-failed`, `fw-no-nft`...).
fn host_said(host: &Host, said: &str) -> Error {
    let (what, detail) = said.split_once('\t').unwrap_or((said, ""));
    let (message, hint) = match what {
        "fw-no-nft" => {
            ("nft is missing", "install the Debian package nftables (converge adds it to the host's packages)")
        }
        "fw-invalid" => ("the new firewall table does not pass `nft -c`; nothing changed", "run `microctl check`"),
        "fw-failed" => ("`nft -f` refused the new firewall table; nothing changed", "run `microctl check`"),
        _ => ("the firewall step said something unexpected", "run again; if it recurs, report it"),
    };
    Error::new(ErrorKind::Remote, format!("{message} on {}", host.name))
        .host(&host.name)
        .task("firewall")
        .detail(detail.trim().to_string())
        .hint(hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A network namespace of the test's own (deleted on drop): the rules go there, never into
    /// the test machine's.
    struct Netns(String);

    impl Netns {
        fn new(tag: &str) -> Netns {
            let name = format!("mfw-{tag}-{}", std::process::id());
            let _ = Command::new("ip").args(["netns", "del", &name]).stderr(std::process::Stdio::null()).status();
            let ok = Command::new("ip").args(["netns", "add", &name]).status().expect("`ip` (Debian package iproute2)");
            assert!(ok.success(), "ip netns add {name}");
            Netns(name)
        }

        /// Runs `script` under `shell` with `set -u` in the namespace: stdout, stderr.
        fn run(&self, shell: &str, script: &str) -> (String, String) {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.0, shell, "-uc", script])
                .output()
                .expect("run the host script");
            (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
        }

        fn table(&self) -> String {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.0, "nft", "list", "table", "inet", "microctl"])
                .output()
                .expect("nft (Debian package nftables)");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }

    fn table(port: u16, secs: u64) -> Table {
        let rule = crate::role::ports::Rule {
            port,
            proto: "tcp".into(),
            from: vec!["198.18.0.1".into()],
            reason: "ssh".into(),
        };
        let (text, sha256) = super::super::render("h", &[rule]).unwrap();
        Table { text, sha256, confirm_timeout: Duration::from_secs(secs) }
    }

    /// The host script as the real path assembles it (after the session part), under sh and
    /// dash with `set -u`: an apply confirmed in time stays; a second apply left unconfirmed
    /// is undone by the watchdog (the first table back, the revert marked); stderr stays
    /// empty throughout. Another table in the namespace is never touched.
    #[test]
    #[ignore = "needs root: run by scripts/test.sh"]
    fn host_script_writes_nothing_to_stderr_under_sh_and_dash() {
        assert!(crate::firewall::nft_available(), "nft -c must work here: install the Debian package nftables");
        for shell in ["sh", "dash"] {
            let ns = Netns::new(shell);
            let state = tempfile::tempdir().unwrap();
            let st = format!("STATE={}\n", quote(&state.path().to_string_lossy()));
            let (_, err) = ns.run(
                shell,
                "nft add table ip other; nft add chain ip other input '{ type filter hook input priority 0; }'",
            );
            assert_eq!(err, "");
            let other = || ns.run(shell, "nft list table ip other").0;
            let before = other();
            let first = table(22, 3);
            let (out, err) = ns.run(shell, &format!("{st}{}", body("apply", "t1", &first)));
            assert_eq!((out.as_str(), err.as_str()), ("fw-applied\n", ""), "{shell}");
            assert!(ns.table().contains(&first.sha256), "{shell}: {}", ns.table());
            let (out, err) = ns.run(shell, &format!("{st}{}", body("confirm", "t1", &first)));
            assert_eq!((out.as_str(), err.as_str()), ("fw-confirmed\n", ""), "{shell}");
            // A second change, never confirmed: the watchdog restores the first.
            let second = table(2222, 2);
            let (out, err) = ns.run(shell, &format!("{st}{}", body("apply", "t2", &second)));
            assert_eq!((out.as_str(), err.as_str()), ("fw-applied\n", ""), "{shell}");
            assert!(ns.table().contains(&second.sha256), "{shell}");
            let (out, err) = ns.run(shell, &format!("{st}{}", body("wait", "t2", &second)));
            assert_eq!((out.as_str(), err.as_str()), ("fw-reverted\n", ""), "{shell}");
            assert!(ns.table().contains(&first.sha256), "{shell}: the first table is back: {}", ns.table());
            // Too late to confirm now.
            let (out, _) = ns.run(shell, &format!("{st}{}", body("confirm", "t2", &second)));
            assert_eq!(out, "fw-late\n");
            assert_eq!(other(), before, "{shell}: another table is never touched");
            // A table nft refuses changes nothing.
            let bad = Table { text: "table inet microctl { chain input { nonsense } }\n".into(), ..first.clone() };
            let (out, err) = ns.run(shell, &format!("{st}{}", body("apply", "t3", &bad)));
            assert!(out.starts_with("fw-invalid\t"), "{shell}: {out}");
            assert_eq!(err, "");
            assert!(ns.table().contains(&first.sha256), "{shell}");
        }
    }
}
