//! The host script: what runs on a host, as root, for one converge or deploy, over ONE exec
//! channel. It takes the host lock, runs the probe, then reads a payload (a tar holding
//! `apply.sh` and the changed files) from stdin and runs it, or exits if the payload is empty.
//!
//! Wire protocol on the channel's stdin: `LEN\n` + the host script itself, then `LEN\n` + the
//! payload (`0\n` for none). The command line is a constant bootstrap, so a run with a
//! thousand files never meets the kernel's limit on one argument's length.

use crate::shell::quote;

/// Printed by the host script after the probe output.
pub const PROBE_END: &str = "@@probe-end";

/// Exit status of the host script when the lock could not be taken in time.
pub const LOCKED_EXIT: u32 = 75;

/// The constant command that reads the host script from stdin and runs it.
pub fn bootstrap(sudo_prefix: &str) -> String {
    let inner = "IFS= read -r n && s=$(mktemp) && head -c \"$n\" > \"$s\" && exec sh \"$s\"";
    format!("{sudo_prefix}sh -c {}", quote(inner))
}

/// The start of every host script: delete itself, then take the host lock (waiting up to
/// `timeout` seconds, then exiting with [`LOCKED_EXIT`] naming the holder). `$STATE` is set.
/// Every process it starts is paid once per host per run, so it starts as few as it can:
/// `rm` and `flock` when the state folder exists (the owner line is written by the shell).
pub fn lock_prelude(state_dir: &str, lock_owner: &str, timeout_secs: u64) -> String {
    format!(
        r#"rm -f -- "$0"
set -u
STATE={state}
[ -d "$STATE" ] || {{ mkdir -p -- "$STATE" && chmod 0700 -- "$STATE"; }} || {{ echo "@@error cannot create $STATE"; exit 70; }}
exec 9>>"$STATE/lock"
if ! flock -n 9; then
  printf '@@waiting\t%s\n' "$(cat "$STATE/lock.owner" 2>/dev/null)"
  if ! flock -w {timeout_secs} 9; then
    printf '@@locked\t%s\n' "$(cat "$STATE/lock.owner" 2>/dev/null)"
    exit {LOCKED_EXIT}
  fi
fi
printf '%s, host pid %s\n' {owner} "$$" > "$STATE/lock.owner"
"#,
        state = quote(state_dir),
        owner = quote(lock_owner),
    )
}

/// The converge host script: lock, probe (`probe` is the probe section), payload.
pub fn host_script(state_dir: &str, lock_owner: &str, lock_timeout_secs: u64, probe: &str) -> String {
    format!(
        r#"{prelude}{probe}echo {PROBE_END}
IFS= read -r n || n=0
case "$n" in ''|0) : > "$STATE/lock.owner"; exit 0 ;; esac
W=$(mktemp -d) || exit 70
trap 'rm -rf -- "$W"' EXIT
head -c "$n" | tar -x -C "$W" -f - || {{ echo "@@error cannot unpack the payload"; exit 70; }}
STATE="$STATE" W="$W" sh "$W/apply.sh"
rc=$?
: > "$STATE/lock.owner"
exit $rc
"#,
        prelude = lock_prelude(state_dir, lock_owner, lock_timeout_secs),
    )
}

/// `user@machine (microctl converge, client pid N, started 2026-11-25T03:45:01Z)`: who holds
/// a host lock (the host script adds its own pid).
pub fn lock_owner(what: &str) -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let machine = std::fs::read_to_string("/etc/hostname").map(|s| s.trim().to_string()).unwrap_or_default();
    format!(
        "{user}@{machine} (microctl {what}, client pid {}, started {})",
        std::process::id(),
        crate::clock::iso_stamp()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_is_constant_and_quoted() {
        assert_eq!(
            bootstrap("sudo -n "),
            r#"sudo -n sh -c 'IFS= read -r n && s=$(mktemp) && head -c "$n" > "$s" && exec sh "$s"'"#
        );
    }

    #[test]
    fn host_script_runs_locally() {
        // The real script, run by the real sh, with an empty payload.
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let script = host_script(state.to_str().unwrap(), "me@here", 1, "echo probe-line\n");
        let input = format!("{}\n{script}0\n", script.len());
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(bootstrap("").strip_prefix("sh -c ").map(|s| s.trim_matches('\'')).unwrap())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(input.as_bytes())?;
                child.wait_with_output()
            })
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout), "probe-line\n@@probe-end\n");
        assert!(state.join("lock").exists());
        // The lock is free again: its owner line is emptied (by the shell, without a process).
        assert_eq!(std::fs::read_to_string(state.join("lock.owner")).unwrap(), "");
    }
}
