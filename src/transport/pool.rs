//! The connection pool: at most one connection per host for the whole run, dialed on first
//! use. Concurrent requests for the same host (including jump hosts shared by many targets)
//! wait for the same dial instead of opening a second connection; a failed dial is remembered
//! so every host behind it fails fast, naming the hop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::sync::OnceCell;

use super::auth::Keys;
use super::connection::{self, Connection, Options};
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::Inventory;

type Cell = Arc<OnceCell<std::result::Result<Arc<Connection>, Arc<Error>>>>;

pub struct Pool {
    inventory: Arc<Inventory>,
    options: Options,
    keys: Keys,
    cells: Mutex<HashMap<String, Cell>>,
    /// Notes for the user from dials (a host key recorded), until the caller takes them.
    notes: Mutex<Vec<String>>,
}

impl Pool {
    pub fn new(inventory: Arc<Inventory>, options: Options) -> Arc<Pool> {
        Arc::new(Pool { inventory, options, keys: Keys::default(), cells: Mutex::default(), notes: Mutex::default() })
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// The connection to host `name`, dialing it (and its jump hosts) if needed.
    pub fn connect<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<Connection>>> {
        Box::pin(async move {
            let cell = self.cells.lock().expect("pool lock").entry(name.to_string()).or_default().clone();
            let result = cell.get_or_init(|| self.dial(name)).await;
            match result {
                Ok(conn) if !conn.is_closed() => Ok(conn.clone()),
                Ok(_) => Err(Error::new(ErrorKind::Ssh, format!("the connection to {name} was lost"))
                    .host(name)
                    .hint("run again; if it recurs, check the host's sshd and network")),
                Err(e) => Err(e.duplicate()),
            }
        })
    }

    async fn dial(&self, name: &str) -> std::result::Result<Arc<Connection>, Arc<Error>> {
        let host = self
            .inventory
            .host(name)
            .ok_or_else(|| Arc::new(Error::new(ErrorKind::Inventory, format!("unknown host `{name}`"))))?;
        let via = match &host.via {
            None => None,
            Some(jump) => match self.connect(jump).await {
                Ok(conn) => Some(conn),
                Err(e) => {
                    // The hop that failed, and how it was reached: `jump host b (via a) failed`.
                    let hop = e.hop.clone().unwrap_or_else(|| jump.clone());
                    let reached = match self.inventory.host(&hop).and_then(|h| h.via.as_deref()) {
                        Some(via) => format!(" (via {via})"),
                        None => String::new(),
                    };
                    let mut err = Error::new(
                        ErrorKind::JumpFailed,
                        format!("cannot reach {name}: jump host {hop}{reached} failed"),
                    )
                    .host(name)
                    .hop(hop);
                    err.hint = e.hint.clone();
                    return Err(Arc::new(err.caused_by(e)));
                }
            },
        };
        let on_note = |notes: Vec<String>| self.notes.lock().expect("notes lock").extend(notes);
        connection::dial(host, via, &self.keys, &self.options, on_note).await.map(Arc::new).map_err(Arc::new)
    }

    /// The notes for the user the dials so far left (a host key recorded with
    /// `--accept-new`), each once: the caller prints them (`Printer::notice`), so nothing here
    /// draws over the spinners.
    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock().expect("notes lock"))
    }

    /// Disconnects every open connection, targets before their jump hosts.
    pub async fn close_all(&self) {
        let cells: Vec<(String, Cell)> =
            self.cells.lock().expect("pool lock").iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let depth = |name: &str| self.inventory.host(name).map_or(0, |h| self.inventory.chain(h).len());
        let mut conns: Vec<(usize, Arc<Connection>)> = cells
            .iter()
            .filter_map(|(name, cell)| cell.get().and_then(|r| r.as_ref().ok()).map(|c| (depth(name), c.clone())))
            .collect();
        conns.sort_by_key(|(d, _)| std::cmp::Reverse(*d));
        for (_, conn) in conns {
            conn.disconnect().await;
        }
    }
}
