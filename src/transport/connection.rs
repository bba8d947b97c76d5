//! One authenticated SSH connection to one host: dialing it (directly, or through a
//! `direct-tcpip` channel of its jump host's connection), verifying its host key, and handing
//! out session channels within a budget below the server's `MaxSessions`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle, Msg};
use russh::keys::PublicKeyOrCertificate;
use russh::{Channel, ChannelOpenFailure, Preferred};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::auth::{self, Keys};
use super::known_hosts::{self, Verdict};
use super::unreached::Unreached;
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::Host;

/// Per-run options that affect every connection.
#[derive(Clone, Default)]
pub struct ConnectOptions {
    /// Record unknown host keys instead of refusing them.
    pub accept_new: bool,
    /// `--wait`: how long to keep dialing a host that does not answer yet (a VM still booting).
    pub wait: Option<Duration>,
    /// Told each time a dial is retried under `wait`: the host's name and what it waits for.
    pub on_wait: Option<WaitNote>,
}

/// See [`ConnectOptions::on_wait`].
pub type WaitNote = Arc<dyn Fn(&str, &str) + Send + Sync>;

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions").field("accept_new", &self.accept_new).field("wait", &self.wait).finish()
    }
}

/// What the host-key check decided, kept so a refused connection can say why.
#[derive(Debug, Clone)]
enum HostKeyOutcome {
    Known,
    Accepted,
    Unknown { fingerprint: String, algorithm: String },
    Changed { fingerprint: String, algorithm: String, recorded: String, file: PathBuf, line: usize },
    Revoked { file: PathBuf, line: usize },
    Failed(String),
}

/// The russh handler: verifies the server's host key against known_hosts.
pub struct ClientHandler {
    name: String,
    address: String,
    port: u16,
    known_hosts: known_hosts::Files,
    accept_new: bool,
    outcome: Arc<Mutex<Option<HostKeyOutcome>>>,
    /// Notes for the user (a host key just recorded): returned, never printed here.
    notes: Arc<Mutex<Vec<String>>>,
}

impl ClientHandler {
    /// The verdict on `key`, recording it first when the host is new and `--accept-new` is on
    /// (the file is judged again under its lock, so a key another run recorded meanwhile wins).
    async fn judge(&self, key: &russh::keys::PublicKey) -> HostKeyOutcome {
        let files = self.known_hosts.clone();
        let verdict = match known_hosts::verdict(&files, &self.address, self.port, key) {
            Ok(Verdict::Unknown) if self.accept_new => {
                let (address, port, k) = (self.address.clone(), self.port, key.clone());
                let recorded =
                    tokio::task::spawn_blocking(move || known_hosts::record(&files, &address, port, &k)).await;
                match recorded {
                    Ok(Ok(Verdict::Unknown)) => {
                        self.notes.lock().expect("notes lock").push(format!(
                            "recorded the host key of {} ({}): {} {} in {}",
                            self.name,
                            known_hosts::lookup_name(&self.address, self.port),
                            key.algorithm().as_str(),
                            known_hosts::fingerprint(key),
                            self.known_hosts.user.display()
                        ));
                        return HostKeyOutcome::Accepted;
                    }
                    Ok(r) => r,
                    Err(e) => Err(std::io::Error::other(e)),
                }
                .map_err(|e| format!("cannot record the host key in {}: {e}", self.known_hosts.user.display()))
            }
            // The error names the file (the user's or a global one).
            v => v.map_err(|e| e.to_string()),
        };
        let fingerprint = known_hosts::fingerprint(key);
        let algorithm = key.algorithm().as_str().to_string();
        match verdict {
            Ok(Verdict::Known) => HostKeyOutcome::Known,
            Ok(Verdict::Unknown) => HostKeyOutcome::Unknown { fingerprint, algorithm },
            Ok(Verdict::Changed { file, line, recorded }) => {
                HostKeyOutcome::Changed { fingerprint, algorithm, recorded, file, line }
            }
            Ok(Verdict::Revoked { file, line }) => HostKeyOutcome::Revoked { file, line },
            Err(why) => HostKeyOutcome::Failed(why),
        }
    }
}

impl client::Handler for ClientHandler {
    type Error = russh::Error;

    /// Runs before any credential is offered: refusing here ends the handshake.
    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        let outcome = self.judge(&key.public_key()).await;
        let accept = matches!(outcome, HostKeyOutcome::Known | HostKeyOutcome::Accepted);
        *self.outcome.lock().expect("outcome lock") = Some(outcome);
        Ok(accept)
    }
}

/// Counters reported per host (`--json` summaries).
#[derive(Debug, Default)]
pub struct Stats {
    pub channels_opened: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
}

/// An authenticated connection, shared by all work on its host.
pub struct Connection {
    pub host: String,
    /// The login user is root (no `sudo` needed to act on every process).
    pub(super) root_login: bool,
    /// What runs here must not be stopped when the run is interrupted ([`Connection::keep_on_interrupt`]).
    pub(super) keep: std::sync::atomic::AtomicBool,
    handle: Handle<ClientHandler>,
    budget: Arc<Semaphore>,
    in_use: Arc<AtomicUsize>,
    pub stats: Stats,
    /// Keeps the jump host's connection alive (and says which it is) as long as this one lives.
    _via: Option<Arc<Connection>>,
}

/// A session channel and the budget slot it occupies.
pub struct SessionChannel {
    pub channel: Channel<Msg>,
    pub permit: SessionPermit,
}

/// Holds one of the connection's session slots until dropped.
pub struct SessionPermit {
    _permit: OwnedSemaphorePermit,
    in_use: Arc<AtomicUsize>,
}

impl Drop for SessionPermit {
    fn drop(&mut self) {
        self.in_use.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How often, and after what pause, a channel refused while none of ours is open is retried
/// (at most 1 s in all: sshd frees a closed session within milliseconds).
const ALONE_RETRIES: u32 = 20;
const ALONE_RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

impl Connection {
    /// Opens a session channel, waiting for a free slot. If the server refuses because its
    /// `MaxSessions` is lower than our budget, the budget shrinks to what the server allows
    /// and the request waits for the next free slot instead of failing.
    pub async fn open_session(&self) -> Result<SessionChannel> {
        // Refusals while no other channel of ours is open: sshd may still count a session we
        // just closed (its teardown lags our close), so such a refusal is retried a few times.
        let mut alone_refusals = 0u32;
        loop {
            let permit = self.budget.clone().acquire_owned().await.expect("budget never closed");
            let in_use = self.in_use.fetch_add(1, Ordering::SeqCst) + 1;
            let permit = SessionPermit { _permit: permit, in_use: self.in_use.clone() };
            match self.handle.channel_open_session().await {
                Ok(channel) => {
                    self.stats.channels_opened.fetch_add(1, Ordering::Relaxed);
                    return Ok(SessionChannel { channel, permit });
                }
                Err(russh::Error::ChannelOpenFailure(
                    ChannelOpenFailure::ConnectFailed
                    | ChannelOpenFailure::AdministrativelyProhibited
                    | ChannelOpenFailure::ResourceShortage,
                )) if in_use > 1 => {
                    // The server is full with in_use - 1 of ours open: never ask for more again.
                    drop(permit);
                    self.budget.forget_permits(1);
                    // Let a held channel finish before retrying.
                    tokio::task::yield_now().await;
                }
                Err(russh::Error::ChannelOpenFailure(
                    ChannelOpenFailure::ConnectFailed | ChannelOpenFailure::ResourceShortage,
                )) if alone_refusals < ALONE_RETRIES => {
                    alone_refusals += 1;
                    drop(permit);
                    tokio::time::sleep(ALONE_RETRY_PAUSE).await;
                }
                Err(e) => {
                    return Err(Error::new(ErrorKind::Ssh, format!("cannot open a session channel on {}", self.host))
                        .host(&self.host)
                        .unreached(Unreached::SessionRefused)
                        .caused_by(e));
                }
            }
        }
    }

    /// Opens a TCP tunnel from this host to `address:port` (used for jump chains and health checks).
    pub async fn tunnel(&self, address: &str, port: u16) -> std::result::Result<Channel<Msg>, russh::Error> {
        self.handle.channel_open_direct_tcpip(address, port as u32, "127.0.0.1", 0).await
    }

    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Session channels of ours open now.
    pub(super) fn sessions_open(&self) -> usize {
        self.in_use.load(Ordering::SeqCst)
    }

    /// A session channel outside the budget (the budget stays below the server's
    /// `MaxSessions`): for stopping the others when they fill it.
    pub(super) async fn open_spare(&self) -> std::result::Result<Channel<Msg>, russh::Error> {
        self.handle.channel_open_session().await
    }

    /// Politely ends the connection.
    pub async fn disconnect(&self) {
        let _ = self.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
}

/// Dials `host`, directly or through `via`, verifies its key and authenticates. Notes for the
/// user (a host key recorded with `--accept-new`) go to `on_note`, to be printed by the caller.
pub async fn dial(
    host: &Host,
    via: Option<Arc<Connection>>,
    keys: &Keys,
    options: &ConnectOptions,
    on_note: impl FnOnce(Vec<String>),
) -> Result<Connection> {
    auth::check_identity(host)?;
    let files = known_hosts::Files { user: host.known_hosts.clone(), global: host.global_known_hosts.clone() };
    let recorded = known_hosts::entries(&files, &host.address, host.port).unwrap_or_default();
    let preferred = Preferred {
        key: known_hosts::preferred_algorithms(&recorded, &Preferred::DEFAULT.key).into(),
        ..Preferred::DEFAULT
    };
    let config = Arc::new(client::Config {
        preferred,
        nodelay: true,
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        inactivity_timeout: None,
        ..Default::default()
    });
    let outcome = Arc::new(Mutex::new(None));
    let notes = Arc::new(Mutex::new(Vec::new()));
    let handler = ClientHandler {
        name: host.name.clone(),
        address: host.address.clone(),
        port: host.port,
        known_hosts: files,
        accept_new: options.accept_new,
        outcome: outcome.clone(),
        notes: notes.clone(),
    };

    let timeout = host.connect_timeout;
    let target = format!("{} ({}:{})", host.name, host.address, host.port);
    let handshake = async {
        let result = match &via {
            None => {
                let tcp = tokio::net::TcpStream::connect((host.address.as_str(), host.port)).await.map_err(|e| {
                    Error::new(ErrorKind::Unreachable, format!("cannot connect to {target}"))
                        .host(&host.name)
                        .unreached(Unreached::of_connect(&e))
                        .caused_by(e)
                        .hint("check the address and port, and that sshd is running there")
                })?;
                tcp.set_nodelay(true).ok();
                client::connect_stream(config, tcp, handler).await
            }
            Some(jump) => {
                // The hop that failed is this host; its jump host worked (it carried the request).
                let channel = jump.tunnel(&host.address, host.port).await.map_err(|e| {
                    Error::new(ErrorKind::Unreachable, format!("{} cannot reach {target}", jump.host))
                        .host(&host.name)
                        .hop(&host.name)
                        .unreached(Unreached::Tunnel)
                        .caused_by(e)
                        .hint(format!(
                            "check that {} can reach {}:{} and that its sshd allows TCP forwarding",
                            jump.host, host.address, host.port
                        ))
                })?;
                client::connect_stream(config, channel.into_stream(), handler).await
            }
        };
        result.map_err(|e| handshake_error(host, via.as_deref(), &outcome, e))
    };
    let handshake = tokio::time::timeout(timeout, handshake).await;
    // A key recorded before the dial failed stays recorded: the note goes out either way.
    on_note(std::mem::take(&mut *notes.lock().expect("notes lock")));
    let mut handle = match handshake {
        Ok(r) => r?,
        Err(_) => {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!("connecting to {} ({}:{}) took longer than {timeout:?}", host.name, host.address, host.port),
            )
            .host(&host.name)
            .unreached(Unreached::Timeout)
            .hint("check that the host is up and reachable, or raise `connect_timeout`"));
        }
    };
    auth::authenticate(&mut handle, host, keys).await?;
    Ok(Connection {
        host: host.name.clone(),
        root_login: host.user == "root",
        keep: Default::default(),
        handle,
        budget: Arc::new(Semaphore::new(host.max_sessions)),
        in_use: Arc::new(AtomicUsize::new(0)),
        stats: Stats::default(),
        _via: via,
    })
}

fn handshake_error(
    host: &Host,
    via: Option<&Connection>,
    outcome: &Mutex<Option<HostKeyOutcome>>,
    err: russh::Error,
) -> Error {
    let target = format!("{} ({}:{})", host.name, host.address, host.port);
    let fix_known_hosts = host.known_hosts.display();
    let outcome = outcome.lock().expect("outcome lock").clone();
    let e = match outcome {
        Some(HostKeyOutcome::Unknown { fingerprint, algorithm }) => Error::new(
            ErrorKind::HostKeyUnknown,
            format!("host key of {target} is not known: {algorithm} {fingerprint}"),
        )
        .host(&host.name)
        .unreached(Unreached::HostKeyUnknown)
        .hint(format!("if that fingerprint is right, run again with --accept-new to record it in {fix_known_hosts}")),
        Some(HostKeyOutcome::Changed { fingerprint, algorithm, recorded, file, line }) => Error::new(
            ErrorKind::HostKeyChanged,
            format!(
                "HOST KEY CHANGED for {target}: the server now presents {algorithm} {fingerprint}, known_hosts records a different key for it ({recorded}); no credentials were sent"
            ),
        )
        .host(&host.name)
        .unreached(Unreached::HostKeyChanged)
        .at_file(file)
        .at_line(line, 1)
        .hint("someone may be intercepting the connection, or the host was rebuilt; if you know it was rebuilt, delete that line and connect with --accept-new"),
        Some(HostKeyOutcome::Revoked { file, line }) => Error::new(
            ErrorKind::HostKeyChanged,
            format!("host key of {target} is marked @revoked; no credentials were sent"),
        )
        .host(&host.name)
        .unreached(Unreached::HostKeyRevoked)
        .at_file(file)
        .at_line(line, 1),
        Some(HostKeyOutcome::Failed(why)) => {
            Error::new(ErrorKind::HostKeyUnknown, why).host(&host.name).unreached(Unreached::HostKeyUnknown)
        }
        Some(HostKeyOutcome::Known | HostKeyOutcome::Accepted) | None => {
            Error::new(ErrorKind::Ssh, format!("SSH handshake with {target} failed"))
                .host(&host.name)
                .unreached(Unreached::Handshake)
                .caused_by(err)
                .hint("check that an SSH server (not another service) listens there")
        }
    };
    // Behind a jump host, the failing hop is this host itself (not the jump host that
    // carried the connection): hosts behind it report it as the hop.
    match via {
        Some(_) => e.hop(&host.name),
        None => e,
    }
}
