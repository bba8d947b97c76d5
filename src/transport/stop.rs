//! Stopping what a connection runs on its host, when the run is interrupted (Ctrl-C): one
//! more short exec on the same connection runs `stop.sh`, which TERMs (then KILLs) every
//! other session that connection's sshd process started, with all they started, so the host
//! lock is free at once instead of when the step's own timeout ends.
//!
//! Why not the SSH `signal` channel request: OpenSSH 9.2's sshd refuses it for a root login
//! ("session signalling requires privilege separation": a root session runs in the monitor
//! process), which is how most hosts are reached, and through `sudo` it would signal as the
//! login user; and it reaches only the session's first process group, not what `timeout` put
//! in groups of its own. Closing the channel (or the connection) kills nothing: sshd keeps a
//! session without a pty running until its process exits. The sessions are found by
//! parentage: sshd forks each session's process (a session leader) from the one process
//! serving the connection, the stop's login shell's `$PPID`; nothing has to be recorded
//! when they start, and no other run's processes can match.
//!
//! Deploy: once its session has armed the confirm watchdog, the host must decide alone, as
//! when the controller is killed (stopping the session mid-rollback would leave half of
//! one). The client then skips the stop ([`Connection::keep_on_interrupt`]); and `stop.sh`
//! itself leaves alone any session with a detached child (the watchdog), for the moment
//! between the host arming it and the client hearing so.

use std::sync::Arc;
use std::time::Duration;

use russh::ChannelMsg;

use super::connection::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::shell::{Shipped, quote};

static STOP_SH: Shipped = Shipped::new(include_str!("stop.sh"));

/// How long the stop may take (3 s of grace on the host, then KILL).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What the stop did on a host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stopped {
    /// Sessions stopped (their processes gone).
    pub stopped: usize,
    /// Sessions left to the host: they had started a detached process (deploy's confirm
    /// watchdog), which decides on its own as when the controller is killed.
    pub kept: usize,
}

/// The command that stops the other sessions of its connection: as root, through `sudo -n`
/// where the login is not root and may use it (else as the login user, who can stop its own).
pub fn stop_command(root_login: bool) -> String {
    let run = format!("sh -c {} microctl-stop \"$PPID\"", quote(&STOP_SH));
    if root_login { format!("exec {run}") } else { format!("sudo -n {run} 2>/dev/null || exec {run}") }
}

impl Connection {
    /// Stops every session this connection runs on the host but the stop's own (`stop.sh`);
    /// bounded by [`STOP_TIMEOUT`].
    pub async fn stop_sessions(self: &Arc<Self>) -> Result<Stopped> {
        let failed = |why: String| {
            Error::new(ErrorKind::Ssh, format!("could not stop the remote step on {}: {why}", self.host))
                .host(&self.host)
        };
        let run = async {
            let mut channel = self.open_spare().await.map_err(|e| failed(e.to_string()))?;
            channel.exec(true, stop_command(self.root_login)).await.map_err(|e| failed(e.to_string()))?;
            let _ = channel.eof().await;
            let (mut out, mut code) = (Vec::new(), None);
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Data { data } => out.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => code = Some(exit_status),
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            let _ = channel.close().await;
            match (code, parse(&String::from_utf8_lossy(&out))) {
                (Some(0), Some(stopped)) => Ok(stopped),
                (code, _) => Err(failed(match code {
                    Some(c) => format!("the stop exited with {c}"),
                    None => "the connection was lost".into(),
                })),
            }
        };
        tokio::time::timeout(STOP_TIMEOUT, run)
            .await
            .unwrap_or_else(|_| Err(failed(format!("no answer within {}s", STOP_TIMEOUT.as_secs()))))
    }

    /// Whether a session of ours is open on this connection (only then is there anything to stop).
    pub fn runs_something(&self) -> bool {
        self.sessions_open() > 0
    }

    /// From now on, an interruption leaves what runs here to the host instead of stopping it
    /// (deploy, once its confirm watchdog is armed: the host decides alone, as when the
    /// controller is killed; stopping its session mid-rollback could leave half a rollback).
    pub fn keep_on_interrupt(&self) {
        self.keep.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stops what runs here ([`Connection::stop_sessions`]) unless it is to be kept.
    pub async fn stop_unless_kept(self: &Arc<Self>) -> Result<Stopped> {
        if self.keep.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(Stopped { stopped: 0, kept: 1 });
        }
        self.stop_sessions().await
    }
}

/// `stopped N\nkept M\n`.
fn parse(out: &str) -> Option<Stopped> {
    let mut lines = out.lines();
    let stopped = lines.next()?.strip_prefix("stopped ")?.parse().ok()?;
    let kept = lines.next()?.strip_prefix("kept ")?.parse().ok()?;
    Some(Stopped { stopped, kept })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn the_stop_reports_parse() {
        assert_eq!(parse("stopped 2\nkept 1\n"), Some(Stopped { stopped: 2, kept: 1 }));
        assert_eq!(parse("stopped x\nkept 1\n"), None);
        assert_eq!(parse(""), None);
        assert!(stop_command(true).starts_with("exec sh -c '"));
        assert!(stop_command(true).ends_with("' microctl-stop \"$PPID\""));
        assert!(stop_command(false).starts_with("sudo -n sh -c '"));
    }

    /// `stop.sh` under sh and dash, against a fake connection: a parent process whose
    /// children are session leaders (as sshd's are). A session with a child and a TERM-deaf
    /// process is stopped whole (the deaf one KILLed after the grace); a session with a
    /// detached child (its own session, as deploy's confirm watchdog) is left alone, and so
    /// is the detached child; a process of another parent is never touched; stderr is empty.
    #[test]
    fn the_stop_ends_the_connections_sessions_and_keeps_a_detached_one_under_sh_and_dash() {
        for shell in ["sh", "dash"] {
            // The fake sshd: starts the sessions, names their pids, waits for stdin to close.
            let fake = r#"
                setsid sh -c 'sleep 200 & sh -c "trap \"\" TERM; exec sleep 204" & echo "stopped $$"; exec sleep 201' &
                setsid sh -c 'setsid sleep 202 & echo "detached $!"; echo "kept $$"; exec sleep 203' &
                read -r _
            "#;
            let mut conn = Command::new("sh")
                .arg("-c")
                .arg(fake)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("sh");
            let parent = conn.id().to_string();
            let mut stranger = Command::new("setsid").args(["sleep", "205"]).spawn().expect("setsid (util-linux)");
            let mut lines = std::io::BufRead::lines(std::io::BufReader::new(conn.stdout.take().unwrap()));
            let mut named = std::collections::HashMap::new();
            for _ in 0..3 {
                let line = lines.next().unwrap().unwrap();
                let (what, pid) = line.split_once(' ').unwrap();
                named.insert(what.to_string(), pid.to_string());
            }
            let (stopped_leader, kept_leader, detached) = (&named["stopped"], &named["kept"], &named["detached"]);
            // The children of a process (not zombies).
            let of = |pid: &str| -> Vec<String> {
                let mut out = Vec::new();
                for e in std::fs::read_dir("/proc").unwrap().flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{name}/stat"))
                        && let Some((_, rest)) = stat.rsplit_once(") ")
                        && rest.split(' ').nth(1) == Some(pid)
                        && !rest.starts_with('Z')
                    {
                        out.push(name);
                    }
                }
                out
            };
            // Wait until every process of the fake connection runs.
            let end = std::time::Instant::now() + Duration::from_secs(5);
            while of(stopped_leader).len() != 2 || of(kept_leader).len() != 1 {
                assert!(std::time::Instant::now() < end, "{shell}: the fake sessions did not start");
                std::thread::sleep(Duration::from_millis(20));
            }
            let stopped_children = of(stopped_leader);
            let t = std::time::Instant::now();
            let out = Command::new("setsid")
                .args([shell, "-c", &STOP_SH, "microctl-stop", parent.as_str()])
                .output()
                .unwrap();
            let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert_eq!(
                (out.status.code(), stdout.as_ref(), stderr.as_ref()),
                (Some(0), "stopped 1\nkept 1\n", ""),
                "{shell}"
            );
            assert!(t.elapsed() >= Duration::from_secs(3), "{shell}: the deaf one went without KILL?");
            for pid in std::iter::once(stopped_leader).chain(&stopped_children) {
                assert!(crate::remote::gone_within(pid, 2), "{shell}: {pid} of the stopped session runs on");
            }
            let stranger_pid = stranger.id().to_string();
            for pid in [kept_leader, detached, &stranger_pid] {
                assert!(crate::remote::is_running(pid), "{shell}: {pid} (kept or a stranger) was stopped");
                let _ = Command::new("kill").arg(pid).status();
            }
            stranger.wait().unwrap();
            drop(conn.stdin.take());
            let _ = conn.wait();
        }
    }
}
