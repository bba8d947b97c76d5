//! The connection pool: at most one connection per host for the whole run, dialed on first
//! use. Concurrent requests for the same host (including jump hosts shared by many targets)
//! wait for the same dial instead of opening a second connection; a failed dial is remembered
//! so every host behind it fails fast, naming the hop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::OnceCell;

use super::auth::Keys;
use super::connection::{self, ConnectOptions, Connection};
use super::unreached::Unreached;
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::{Host, Inventory};

type Cell = Arc<OnceCell<std::result::Result<Arc<Connection>, Arc<Error>>>>;

pub struct Pool {
    inventory: Arc<Inventory>,
    options: ConnectOptions,
    keys: Keys,
    /// Per host name: its depth in its jump chain (targets close before their jump hosts) and
    /// its dial, shared by everyone who asks.
    cells: Mutex<HashMap<String, (usize, Cell)>>,
    /// Notes for the user from dials (a host key recorded), until the caller takes them.
    notes: Mutex<Vec<String>>,
}

impl Pool {
    pub fn new(inventory: Arc<Inventory>, options: ConnectOptions) -> Arc<Pool> {
        Arc::new(Pool { inventory, options, keys: Keys::default(), cells: Mutex::default(), notes: Mutex::default() })
    }

    /// The connection to `host`, dialing it (and its jump hosts) if needed.
    pub fn connect<'a>(&'a self, host: &'a Host) -> BoxFuture<'a, Result<Arc<Connection>>> {
        Box::pin(async move {
            let name = host.name.as_str();
            let cell = self
                .cells
                .lock()
                .expect("pool lock")
                .entry(name.to_string())
                .or_insert_with(|| (self.inventory.chain(host).len(), Cell::default()))
                .1
                .clone();
            let result = cell.get_or_init(|| self.dial(host)).await;
            match result {
                Ok(conn) if !conn.is_closed() => Ok(conn.clone()),
                Ok(_) => Err(Error::new(ErrorKind::Ssh, format!("the connection to {name} was lost"))
                    .host(name)
                    .unreached(Unreached::Lost)
                    .hint("run again; if it recurs, check the host's sshd and network")),
                // Every failure to connect is one to get a session: classed, whatever made it.
                Err(e) => {
                    let mut e = e.duplicate();
                    e.unreached = e.unreached.or(Some(Unreached::Connect));
                    Err(e)
                }
            }
        })
    }

    async fn dial(&self, host: &Host) -> std::result::Result<Arc<Connection>, Arc<Error>> {
        let name = host.name.as_str();
        let via = match self.inventory.jump(host) {
            None => None,
            Some(jump) => match self.connect(jump).await {
                Ok(conn) => Some(conn),
                Err(e) => {
                    // The hop that failed, and how it was reached: `jump host b (via a) failed`.
                    let hop = e.hop.clone().unwrap_or_else(|| jump.name.clone());
                    let chain = self.inventory.chain(host);
                    let reached = match chain.iter().find(|h| h.name == hop).and_then(|h| h.via.as_deref()) {
                        Some(via) => format!(" (via {via})"),
                        None => String::new(),
                    };
                    let mut err = Error::new(
                        ErrorKind::JumpFailed,
                        format!("cannot reach {name}: jump host {hop}{reached} failed"),
                    )
                    .host(name)
                    .hop(hop)
                    .unreached(e.unreached.unwrap_or(Unreached::Connect));
                    err.hint = e.hint.clone();
                    return Err(Arc::new(err.caused_by(e)));
                }
            },
        };
        let deadline = self.options.wait.map(|w| Instant::now() + w);
        let mut pause = Duration::from_millis(500);
        let mut told = None;
        loop {
            let on_note = |notes: Vec<String>| self.notes.lock().expect("notes lock").extend(notes);
            let error = match connection::dial(host, via.clone(), &self.keys, &self.options, on_note).await {
                Ok(conn) => return Ok(Arc::new(conn)),
                Err(e) => e,
            };
            let left = deadline.map_or(Duration::ZERO, |d| d.saturating_duration_since(Instant::now()));
            let Some(waiting_for) = retried(&error).filter(|_| !left.is_zero()) else {
                return Err(Arc::new(error));
            };
            // Said once per reason (the heartbeat keeps a quiet wait alive).
            if let Some(note) = self.options.on_wait.as_ref().filter(|_| told != Some(waiting_for)) {
                note(name, &format!("waiting for {name}: {waiting_for} (up to {}s more)", left.as_secs().max(1)));
                told = Some(waiting_for);
            }
            tokio::time::sleep(pause.min(left)).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    /// A NEW connection to `host`, never pooled (the caller disconnects it): through the pooled
    /// connection of its jump host, so it takes the same path a later run would. One try,
    /// no `--wait` retries (the firewall's confirmation: can we still get in?).
    pub async fn dial_fresh(&self, host: &Host) -> Result<Connection> {
        let via = match self.inventory.jump(host) {
            Some(jump) => Some(self.connect(jump).await?),
            None => None,
        };
        let on_note = |notes: Vec<String>| self.notes.lock().expect("notes lock").extend(notes);
        connection::dial(host, via, &self.keys, &self.options, on_note).await
    }

    /// The notes for the user the dials so far left (a host key recorded with
    /// `--accept-new`), each once: the caller prints them (`Printer::notice`), so nothing here
    /// draws over the spinners.
    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock().expect("notes lock"))
    }

    /// Stops what every open connection runs on its host (the run was interrupted), all at
    /// once: per host that ran something, what the stop did.
    pub async fn stop_all(&self) -> Vec<(String, Result<super::Stopped>)> {
        let cells: Vec<Cell> = self.cells.lock().expect("pool lock").values().map(|(_, c)| c.clone()).collect();
        let conns: Vec<Arc<Connection>> = cells
            .iter()
            .filter_map(|cell| cell.get().and_then(|r| r.as_ref().ok()).cloned())
            .filter(|c| !c.is_closed() && c.runs_something())
            .collect();
        let stops = conns.iter().map(|c| async move { (c.host.clone(), c.stop_unless_kept().await) });
        futures::future::join_all(stops).await
    }

    /// Disconnects every open connection, targets before their jump hosts.
    pub async fn close_all(&self) {
        let cells: Vec<(usize, Cell)> = self.cells.lock().expect("pool lock").values().cloned().collect();
        let mut conns: Vec<(usize, Arc<Connection>)> = cells
            .iter()
            .filter_map(|(depth, cell)| cell.get().and_then(|r| r.as_ref().ok()).map(|c| (*depth, c.clone())))
            .collect();
        conns.sort_by_key(|(d, _)| std::cmp::Reverse(*d));
        for (_, conn) in conns {
            conn.disconnect().await;
        }
    }
}

/// What a failed dial waits for under `--wait`, when waiting can help: a VM still booting
/// refuses connections or does not answer, its sshd may drop the handshake while it starts,
/// and cloud-init may not have installed the login's key yet. A host key that is unknown or
/// changed is never waited out, nor a local key file problem.
fn retried(error: &Error) -> Option<&'static str> {
    match error.kind {
        ErrorKind::Unreachable => Some("it does not accept connections yet"),
        ErrorKind::Timeout => Some("it does not answer yet"),
        ErrorKind::Ssh => Some("its sshd is not ready yet"),
        ErrorKind::AuthRefused => Some("it refuses our key (cloud-init may still be adding it)"),
        _ => None,
    }
}
