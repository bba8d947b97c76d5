//! SSH transport: one authenticated russh connection per host, opened lazily and shared by all
//! work on that host; hosts with `via` are reached through a tunnel on their jump host's
//! connection, itself shared. Host keys are verified on every hop against known_hosts.
//!
//! `pool` owns the connections, `connection` dials one hop and budgets its channels,
//! `auth` offers credentials (`identity` checks key files first, as OpenSSH does), `known_hosts` judges host keys, `process` runs remote commands, `stop` stops them when the run is interrupted, `unreached` classes every
//! failure to get a session.

mod auth;
mod connection;
pub mod identity;
pub mod known_hosts;
mod pool;
mod process;
mod unreached;
mod stop;

pub(crate) use auth::load_key_file;
pub use auth::{PASSPHRASE_ENV, check_identity};
pub use connection::{ConnectOptions, Connection, Stats};
pub use pool::Pool;
pub use process::{Chunk, ExecOutput, Output, RemoteProcess};
pub use unreached::Unreached;
pub use stop::Stopped;
