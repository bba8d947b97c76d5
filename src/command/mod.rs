//! One module per subcommand. Each takes the parsed CLI arguments, does its work through the
//! library modules, reports through `report`, and returns the process exit code.

mod exec;
mod inventory;

use std::sync::Arc;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::Inventory;

pub fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Exec(args) => exec::run(&cli.global, args),
        Command::Inventory(args) => inventory::run(&cli.global, args),
    }
}

/// Loads the inventory named by `-i`/`MICROCTL_INVENTORY`.
fn load_inventory(global: &GlobalArgs) -> Result<Arc<Inventory>> {
    Inventory::load(&global.inventory).map(Arc::new)
}

/// A multi-threaded runtime for the network-bound commands.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(ErrorKind::Io, "cannot start the async runtime").caused_by(e))
}
