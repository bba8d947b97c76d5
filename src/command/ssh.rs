//! `microctl ssh HOST [-- CMD]` and `microctl ssh-config [PATTERN]`: the way in, through the
//! inventory's chains (see `login`). Neither reads roles.

use std::path::Path;
use std::sync::Arc;

use super::{load_inventory, runtime};
use crate::cli::{GlobalArgs, SshArgs, SshConfigArgs};
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::{self, Inventory};
use crate::login;
use crate::transport::{ConnectOptions, Pool};

pub fn run(inventory: &Path, accept_new: bool, args: SshArgs) -> Result<i32> {
    let inv = Arc::new(Inventory::load(inventory)?);
    inv.require_hosts()?;
    let Some(host) = inv.host(&args.host).cloned() else {
        let names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).take(20).collect();
        return Err(Error::new(ErrorKind::Usage, format!("no host `{}` in {}", args.host, inv.path.display()))
            .hint(format!("hosts: {}{}", names.join(", "), if inv.hosts.len() > 20 { ", ..." } else { "" })));
    };
    let command = (!args.command.is_empty()).then(|| args.command.join(" "));
    let rt = runtime()?;
    let code = rt.block_on(async {
        let pool = Pool::new(inv.clone(), ConnectOptions { accept_new, ..Default::default() });
        // Dialed first, so a host key just recorded is said before the session starts.
        let dialed = pool.connect(&host).await;
        for note in pool.take_notes() {
            crate::report::notice(&note);
        }
        let code = match dialed {
            Ok(_) => login::session(&pool, &host, command.as_deref()).await,
            Err(e) => Err(e),
        };
        pool.close_all().await;
        code
    });
    // A blocking read of stdin may still be pending: do not wait for it.
    rt.shutdown_background();
    code
}

pub fn config(global: &GlobalArgs, args: SshConfigArgs) -> Result<i32> {
    let inv = load_inventory(global)?;
    let hosts = inventory::select(&inv, &args.pattern)?;
    print!("{}", login::config::render(&inv, &hosts)?);
    Ok(0)
}
