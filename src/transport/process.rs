//! Remote processes on a session channel: start a command, feed stdin, read stdout/stderr and
//! the exit status. Every channel is drained and closed on every path (an undrained channel
//! freezes the whole russh connection, and an unclosed one holds one of sshd's MaxSessions).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use super::connection::{Connection, SessionPermit};
use crate::error::{Error, ErrorKind, Result};

/// A piece of output as it arrives.
#[derive(Debug, Clone, Copy)]
pub enum Output<'a> {
    Stdout(&'a [u8]),
    Stderr(&'a [u8]),
}

/// Everything a finished command produced.
#[derive(Debug, Default, Clone)]
pub struct ExecOutput {
    /// `None` when the process was killed by a signal (see `signal`).
    pub exit_code: Option<u32>,
    pub signal: Option<String>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// A command running on a host.
pub struct RemoteProcess {
    conn: Arc<Connection>,
    read: Option<ChannelReadHalf>,
    write: Arc<ChannelWriteHalf<Msg>>,
    permit: Option<SessionPermit>,
    exit_code: Option<u32>,
    signal: Option<String>,
    closed: bool,
}

impl Connection {
    /// Starts `command` (run by the remote user's login shell, as OpenSSH does).
    pub async fn start(self: &Arc<Self>, command: &str) -> Result<RemoteProcess> {
        let session = self.open_session().await?;
        let (read, write) = session.channel.split();
        let process = RemoteProcess {
            conn: self.clone(),
            read: Some(read),
            write: Arc::new(write),
            permit: Some(session.permit),
            exit_code: None,
            signal: None,
            closed: false,
        };
        // A channel that opened but would not start the command: still no session.
        process
            .write
            .exec(true, command)
            .await
            .map_err(|e| process.lost(e).unreached(super::Unreached::SessionRefused))?;
        self.stats.bytes_sent.fetch_add(command.len() as u64, Ordering::Relaxed);
        Ok(process)
    }

    /// Runs `command` with `stdin`, streaming output to `sink`, and returns all of it.
    pub async fn exec(
        self: &Arc<Self>,
        command: &str,
        stdin: &[u8],
        sink: impl FnMut(Output<'_>),
    ) -> Result<ExecOutput> {
        let mut process = self.start(command).await?;
        let write = process.write.clone();
        let feed = until_closed(self, async {
            if !stdin.is_empty() {
                write.data(stdin).await?;
            }
            write.eof().await
        });
        let (fed, out) = tokio::join!(feed, process.finish(sink));
        let out = out?;
        fed.map_err(|e| process.lost(e))?;
        self.stats.bytes_sent.fetch_add(stdin.len() as u64, Ordering::Relaxed);
        Ok(out)
    }
}

impl RemoteProcess {
    /// Sends bytes to the command's stdin, as a future that does not borrow the process (so output can be read
    /// while it waits for the channel's window).
    pub fn send_owned(&self, data: Vec<u8>) -> impl Future<Output = Result<()>> + Send + 'static {
        let (conn, write) = (self.conn.clone(), self.write.clone());
        async move {
            until_closed(&conn, write.data(&data[..])).await.map_err(|e| {
                Error::new(ErrorKind::Ssh, format!("the connection to {} failed", conn.host))
                    .host(&conn.host)
                    .caused_by(e)
            })?;
            conn.stats.bytes_sent.fetch_add(data.len() as u64, Ordering::Relaxed);
            Ok(())
        }
    }

    /// Closes the command's stdin (EOF).
    pub async fn close_stdin(&self) -> Result<()> {
        until_closed(&self.conn, self.write.eof()).await.map_err(|e| self.lost(e))
    }

    /// Reads to the end, streaming to `sink`, and returns the collected output and status.
    pub async fn finish(&mut self, mut sink: impl FnMut(Output<'_>)) -> Result<ExecOutput> {
        let mut out = ExecOutput::default();
        while let Some(chunk) = self.next_message().await {
            sink(chunk.as_output());
            match chunk {
                Chunk::Stdout(d) => out.stdout.extend_from_slice(&d),
                Chunk::Stderr(d) => out.stderr.extend_from_slice(&d),
            }
        }
        out.exit_code = self.exit_code;
        out.signal = self.signal.clone();
        if out.exit_code.is_none() && out.signal.is_none() {
            return Err(Error::new(ErrorKind::Ssh, format!("the connection to {} was lost", self.conn.host))
                .host(&self.conn.host)
                .detail(String::from_utf8_lossy(&out.stderr).into_owned())
                .hint("the command may or may not have finished on the host; check it, then run again"));
        }
        Ok(out)
    }

    /// The next piece of output, or `None` once the channel is closed (then see `status`).
    pub async fn next_chunk(&mut self) -> Option<Chunk> {
        self.next_message().await
    }

    /// The exit status and signal received so far (both `None`: not ended, or connection lost).
    pub fn status(&self) -> (Option<u32>, Option<String>) {
        (self.exit_code, self.signal.clone())
    }

    /// The next piece of output, or `None` once the channel is closed.
    async fn next_message(&mut self) -> Option<Chunk> {
        let read = self.read.as_mut()?;
        loop {
            match read.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    self.conn.stats.bytes_received.fetch_add(data.len() as u64, Ordering::Relaxed);
                    return Some(Chunk::Stdout(data.to_vec()));
                }
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    self.conn.stats.bytes_received.fetch_add(data.len() as u64, Ordering::Relaxed);
                    return Some(Chunk::Stderr(data.to_vec()));
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => self.exit_code = Some(exit_status),
                Some(ChannelMsg::ExitSignal { signal_name, .. }) => self.signal = Some(format!("{signal_name:?}")),
                Some(ChannelMsg::Close) | None => {
                    self.closed = true;
                    self.permit = None;
                    return None;
                }
                Some(_) => {}
            }
        }
    }

    #[allow(dead_code)]
    fn exit_text(&self) -> String {
        match (&self.exit_code, &self.signal) {
            (Some(c), _) => c.to_string(),
            (None, Some(s)) => format!("signal {s}"),
            (None, None) => "unknown: connection lost".to_string(),
        }
    }

    fn lost(&self, e: russh::Error) -> Error {
        Error::new(ErrorKind::Ssh, format!("the connection to {} failed", self.conn.host))
            .host(&self.conn.host)
            .caused_by(e)
    }
}

/// Owned output, as read from the channel.
pub enum Chunk {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

impl Chunk {
    fn as_output(&self) -> Output<'_> {
        match self {
            Chunk::Stdout(d) => Output::Stdout(d),
            Chunk::Stderr(d) => Output::Stderr(d),
        }
    }
}

impl Drop for RemoteProcess {
    /// A process dropped before its channel closed (error, timeout, cancellation): send EOF and
    /// close, and drain what is left in the background, so the session slot is freed and the
    /// connection never stalls on an unread channel.
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let (Some(mut read), write, permit) = (self.read.take(), self.write.clone(), self.permit.take()) else {
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = write.eof().await;
                let _ = write.close().await;
                while read.wait().await.is_some() {}
                drop(permit);
            });
        }
    }
}

/// Runs a channel write, giving up when the connection dies: russh does not wake a writer
/// that waits for window space once its session has ended.
async fn until_closed<T>(
    conn: &Connection,
    write: impl Future<Output = std::result::Result<T, russh::Error>>,
) -> std::result::Result<T, russh::Error> {
    tokio::pin!(write);
    loop {
        tokio::select! {
            result = &mut write => return result,
            _ = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                if conn.is_closed() {
                    return Err(russh::Error::Disconnect);
                }
            }
        }
    }
}
