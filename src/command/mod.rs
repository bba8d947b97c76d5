//! One module per subcommand. Each takes the parsed CLI arguments, does its work through the
//! library modules, reports through `report`, and returns the process exit code.

mod check;
mod converge;
mod deploy;
mod exec;
mod facts;
mod inventory;
mod lab;
mod meta;
mod secrets;
mod ssh;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::{Inventory, Vars};
use crate::role::{RoleSet, role_names_for};

pub fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Exec(args) => exec::run(&cli.global, args),
        Command::Inventory(args) => inventory::run(&cli.global, args),
        Command::Converge(args) => converge::run(&cli.global, args),
        Command::Check(args) => check::run(&cli.global, args),
        Command::Facts(args) => facts::run(&cli.global, args),
        Command::Deploy(args) => deploy::run(&cli.global, args),
        Command::Ssh(args) => ssh::run(&cli.global.inventory, cli.global.accept_new, args),
        Command::SshConfig(args) => ssh::config(&cli.global, args),
        Command::Completions(args) => meta::completions(args),
        Command::Man(args) => meta::man(args),
        Command::Lab(cmd) => lab::run(&cli.global, cmd),
        Command::Secrets(cmd) => secrets::run(&cli.global, cmd),
    }
}

/// How this run connects: `--accept-new`, and `--wait` with its notes shown as the host's phase
/// (a slow one: announced without a terminal, kept alive by the heartbeat).
fn connect_options(
    global: &GlobalArgs,
    wait: &crate::cli::Wait,
    printer: &crate::report::Printer,
) -> crate::transport::ConnectOptions {
    let printer = printer.clone();
    crate::transport::ConnectOptions {
        accept_new: global.accept_new,
        wait: wait.secs.map(std::time::Duration::from_secs),
        on_wait: Some(Arc::new(move |host: &str, text: &str| printer.phase(host, text, true))),
    }
}

/// Loads the inventory named by `-i`/`MICROCTL_INVENTORY`.
fn load_inventory(global: &GlobalArgs) -> Result<Arc<Inventory>> {
    Inventory::load(&global.inventory).map(Arc::new)
}

/// Loads the inventory and resolves its `{ secret }` / `{ env }` references (for commands
/// that render): the values in `Values` mode, stand-ins offline; returns the warnings.
fn load_inventory_with_secrets(
    global: &GlobalArgs,
    mode: crate::secrets::Mode,
) -> Result<(Arc<Inventory>, Vec<Error>)> {
    let mut inv = Inventory::load(&global.inventory)?;
    let warnings = crate::secrets::resolve(&mut inv, mode, None)?;
    Ok((Arc::new(inv), warnings))
}

/// The inventory with the secret and environment values of the hosts `pattern` selects (and
/// of their groups and the defaults) resolved, the others' left as stand-ins, and the
/// selected hosts' names in inventory order.
fn load_inventory_for(global: &GlobalArgs, pattern: &str) -> Result<(Arc<Inventory>, Vec<String>)> {
    let mut inv = Inventory::load(&global.inventory)?;
    let selected: Vec<String> = crate::inventory::select(&inv, pattern)?.iter().map(|h| h.name.clone()).collect();
    // Before any host: no printer draws yet. What decrypting said is printed here.
    for note in crate::secrets::resolve(&mut inv, crate::secrets::Mode::Values, Some(&selected))? {
        crate::report::notice(&note.message);
    }
    Ok((Arc::new(inv), selected))
}

/// A multi-threaded runtime for the network-bound commands.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::new(ErrorKind::Io, "cannot start the async runtime").caused_by(e))
}

/// The roles folder: `--roles-dir`, else `MICROCTL_ROLES` (clap reads both into `roles_dir`),
/// else `roles/` next to the inventory, else `./roles`. The inventory's own folder wins, so a
/// stray `roles/` in the current folder (a CI workspace, an old Ansible repo) is never picked
/// over the inventory's. When neither exists, the inventory's is named in errors.
fn roles_dir(global: &GlobalArgs, inv: &Inventory) -> PathBuf {
    if let Some(dir) = &global.roles_dir {
        return dir.clone();
    }
    let beside = inv.path.parent().unwrap_or(Path::new(".")).join("roles");
    let here = PathBuf::from("roles");
    if !beside.is_dir() && here.is_dir() { here } else { beside }
}

/// For commands that use roles only for their defaults (deploy): the roles when a roles
/// folder exists, else none.
fn load_roles_if_any(global: &GlobalArgs, inv: &Inventory) -> Result<RoleSet> {
    let dir = roles_dir(global, inv);
    if dir.is_dir() { load_roles(global, inv) } else { RoleSet::load(&dir, &[]).map_err(|e| report_all(global, e)) }
}

/// Loads every role any host of the inventory uses (templates may read any host's vars).
fn load_roles(global: &GlobalArgs, inv: &Inventory) -> Result<RoleSet> {
    let mut wanted = Vec::new();
    for host in &inv.hosts {
        for name in role_names_for(inv, host) {
            if wanted.iter().any(|(n, _)| *n == name) {
                continue;
            }
            let group = host.groups.iter().map(|g| &inv.groups[g]).find(|g| g.roles.contains(&name));
            let mut at = Error::new(ErrorKind::Role, "").at_file(&inv.path);
            if let Some(g) = group {
                at = at.at_line(g.line, 1).field(format!("groups.{}.roles", g.name));
            }
            wanted.push((name, at));
        }
    }
    RoleSet::load(&roles_dir(global, inv), &wanted).map_err(|e| report_all(global, e))
}

/// Several input errors found at once (a role set's): all but the last are printed here, the
/// last is returned to be printed like any error (each exactly once, on stderr, exit 2).
fn report_all(global: &GlobalArgs, mut errors: Vec<Error>) -> Error {
    let last = errors.pop().expect("at least one error");
    errors.iter().for_each(|e| crate::report::print_error(&global.output, e));
    last
}

/// `-e` arguments (see `inventory::extra_vars` for the rule).
fn extra_vars(pairs: &[String]) -> Result<Vars> {
    crate::inventory::extra_vars(pairs)
}

/// One warning per `-e NAME` that no template or role field reads: it changes nothing, most
/// likely a typo (with the nearest name read, when one is near).
fn unread_extra_warnings(extra: &Vars, roles: &RoleSet) -> Vec<Error> {
    let read = roles.templates.names_read();
    let unread = |name: &str| !roles.templates.var_may_be_read(name);
    unread_extra(extra, unread, &read, "template or role field", "the roles' templates")
}

/// One warning per `-e NAME` for which `unread(NAME)`: nothing that `what` names reads it (with
/// the nearest of `read`, when one is near).
fn unread_extra(
    extra: &Vars,
    unread: impl Fn(&str) -> bool,
    read: &std::collections::BTreeSet<String>,
    what: &str,
    whose: &str,
) -> Vec<Error> {
    extra
        .keys()
        .filter(|name| unread(name))
        .map(|name| {
            let near = crate::inventory::near::closest(name, read.iter().map(String::as_str));
            Error::usage(format!("-e {name}: no {what} reads `{name}`, so it changes nothing")).hint(match near {
                Some(n) => format!("did you mean `-e {n}=...`?"),
                None => format!("check the name against the variables {whose} use"),
            })
        })
        .collect()
}

/// `deploy`'s warnings for `-e NAME` that no field of `[deploy.APP]` reads: `texts` are the
/// fields' templates as rendered (the deploy renders no role).
fn unread_extra_deploy_warnings(extra: &Vars, app: &str, texts: &std::collections::BTreeSet<String>) -> Vec<Error> {
    use crate::role::template::{names_read_by_text, text_may_read_var};
    let read = texts.iter().flat_map(|t| names_read_by_text(t)).collect();
    let unread = |name: &str| !texts.iter().any(|t| text_may_read_var(t, name));
    unread_extra(extra, unread, &read, &format!("field of [deploy.{app}]"), &format!("[deploy.{app}]'s fields"))
}
