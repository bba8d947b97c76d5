//! The way in: `microctl ssh HOST [-- CMD]` opens a shell (or runs one command) on a host
//! through the inventory's jump chain, over the same pool, connection and host-key checks as
//! every other command (no second dialer); `microctl ssh-config` writes the same chains as an
//! OpenSSH config so plain ssh, scp and rsync follow them (`config`).
//!
//! The session: a PTY with the local window size when stdin is a terminal (and, for a
//! command, stdout too; resized on SIGWINCH, local terminal in raw mode), stdin/stdout/stderr relayed, and the remote exit
//! status returned (a signal gives 128 + its number, as a shell reports it; no status, 255,
//! as OpenSSH does).

pub mod config;
mod terminal;

use russh::ChannelMsg;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, ErrorKind, Result};
use crate::inventory::Host;
use crate::transport::Pool;

/// Runs an interactive session (or `command`) on `host` and returns its exit status.
pub async fn session(pool: &Pool, host: &Host, command: Option<&str>) -> Result<i32> {
    let conn = pool.connect(host).await?;
    let host = host.name.as_str();
    let session = conn.open_session().await?;
    let mut channel = session.channel;
    let lost =
        |e: russh::Error| Error::new(ErrorKind::Ssh, format!("the session on {host} broke")).host(host).caused_by(e);
    // A PTY for a person at a terminal; never when a command's output goes to a file or pipe,
    // which must get the bytes as sent (no CR/LF translation).
    let tty = terminal::stdin_is_terminal() && (command.is_none() || terminal::stdout_is_terminal());
    if tty {
        let (cols, rows) = terminal::size();
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".to_string());
        channel.request_pty(false, &term, cols, rows, 0, 0, &[]).await.map_err(lost)?;
    }
    match command {
        Some(c) => channel.exec(true, c).await.map_err(lost)?,
        None => channel.request_shell(true).await.map_err(lost)?,
    }
    let _raw = if tty { terminal::RawMode::enter() } else { None };

    let mut stdin = tokio::io::stdin();
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    let mut buf = vec![0u8; 16 * 1024];
    let mut stdin_open = true;
    let mut status = None;
    loop {
        tokio::select! {
            msg = channel.wait() => match msg {
                Some(ChannelMsg::Data { data }) => {
                    stdout.write_all(&data).await.ok();
                    stdout.flush().await.ok();
                }
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    stderr.write_all(&data).await.ok();
                    stderr.flush().await.ok();
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => status = Some(exit_status as i32),
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => status = Some(128 + signal_number(&signal_name)),
                Some(ChannelMsg::Failure) => {
                    return Err(Error::new(ErrorKind::Remote, format!("{host} refused to start the session"))
                        .host(host)
                        .hint("the server's sshd may forbid shells or commands for this user (ForceCommand, Match)"));
                }
                Some(_) => {}
                None => break,
            },
            read = stdin.read(&mut buf), if stdin_open => match read {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    channel.eof().await.ok();
                }
                Ok(n) => channel.data(&buf[..n]).await.map_err(lost)?,
            },
            Some(()) = async { winch.as_mut()?.recv().await }, if tty => {
                let (cols, rows) = terminal::size();
                channel.window_change(cols, rows, 0, 0).await.ok();
            }
        }
    }
    drop(session.permit);
    Ok(status.unwrap_or(255))
}

/// The number of a signal named by SSH (`TERM`, `KILL`, ...), as `kill -l` lists them.
fn signal_number(sig: &russh::Sig) -> i32 {
    use russh::Sig;
    match sig {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        _ => 0,
    }
}
