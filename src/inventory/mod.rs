//! The inventory: which hosts exist, how to reach them (user, key, jump chain), which groups
//! they are in, and their vars.
//!
//! `raw` is the file as written; `resolve` turns it into the [`Inventory`] model every other
//! module uses (settings inherited from `[defaults]`, vars merged, `via` chains checked);
//! `pattern` selects hosts by name, group, glob and exclusion.

mod extra;
pub mod input;
pub mod near;
mod pattern;
mod privilege;
mod raw;
mod resolve;
mod vars;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

pub use extra::{dates_as_text, extra_vars, table_dates_as_text};
pub use pattern::select;
pub use privilege::Privilege;
pub use resolve::{expand_path, unquotable, user_name_problem};
pub use vars::HostVars;

/// Variables: a TOML table, merged defaults < group < host (and more layers in `role`).
pub type Vars = toml::Table;

/// Default bound of each phase after connecting (apt installs can take minutes).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The default `apt_lock_timeout`, in seconds.
pub const DEFAULT_APT_LOCK_TIMEOUT: u64 = 300;

/// Where the default inventory lives when neither `-i` nor `MICROCTL_INVENTORY` is given.
pub const DEFAULT_PATH: &str = "inventory.toml";

/// The resolved inventory.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub path: PathBuf,
    /// Hosts in file order, as the handles every later stage holds (selection hands them out;
    /// nothing after it looks a host up by name again).
    pub hosts: Vec<Arc<Host>>,
    /// Groups by name, members in host file order.
    pub groups: BTreeMap<String, Group>,
    /// `[deploy.NAME]` tables, typed and checked by `deploy::config` (for `check` and `deploy`).
    pub deploy: BTreeMap<String, DeploySection>,
    /// `[defaults].vars`: every host's first vars layer (shared, see [`HostVars`]).
    pub defaults_vars: Arc<Vars>,
    /// Host name -> position in `hosts`, so lookups (every hop of every chain) are O(1).
    index: HashMap<String, usize>,
}

/// A raw `[deploy.NAME]` table with the line it starts on and, per field, the line and column
/// of its value, for error messages.
#[derive(Debug, Clone)]
pub struct DeploySection {
    pub table: toml::Table,
    pub line: usize,
    pub fields: BTreeMap<String, (usize, usize)>,
}

/// One host with every setting resolved.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Private key file; `None` means ssh-agent, then the OpenSSH default key files.
    pub identity: Option<PathBuf>,
    pub known_hosts: PathBuf,
    /// OpenSSH's `GlobalKnownHostsFile`s: read with `known_hosts`, never written.
    pub global_known_hosts: Vec<PathBuf>,
    /// The jump host this host is reached through.
    pub via: Option<String>,
    pub groups: Vec<String>,
    /// Merged: defaults < groups in list order < the host's own (layers shared between hosts).
    pub vars: HostVars,
    pub connect_timeout: Duration,
    /// Bound of each phase of a host session once connected (`--timeout` overrides it).
    pub timeout: Duration,
    /// Concurrent channels this client opens on the host's connection (below sshd's MaxSessions).
    pub max_sessions: usize,
    /// Seconds a package step waits for dpkg's and apt's locks (a fresh VM's cloud-init and
    /// unattended-upgrades hold them for minutes after boot).
    pub apt_lock_timeout: u64,
    /// Run privileged work through sudo when `user` is not root (see [`Privilege`]).
    pub become_root: bool,
    /// Where microctl keeps its lock and pending handlers on the host.
    pub state_dir: String,
    /// Line of the `[hosts.NAME]` header, for messages.
    pub line: usize,
}

impl Host {
    /// How privileged work gets root here (`become`, and whether the login is root).
    pub fn privilege(&self) -> Privilege {
        Privilege::new(self.become_root, &self.user)
    }
}

/// A group: its members and the roles it applies.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub hosts: Vec<String>,
    pub roles: Vec<String>,
    /// Shared by the group's hosts' [`HostVars`].
    pub vars: Arc<Vars>,
    /// Line of `[groups.NAME]` (0 when the group has no table), for messages.
    pub line: usize,
}

impl Inventory {
    /// Reads and resolves the inventory file.
    pub fn load(path: &Path) -> Result<Inventory> {
        let bytes = std::fs::read(path).map_err(|e| {
            Error::io("cannot read inventory", path, e)
                .kind_of(ErrorKind::Inventory)
                .hint("pass the inventory with -i PATH or MICROCTL_INVENTORY, or create inventory.toml (see README.md)")
        })?;
        let text = input::utf8(path, bytes, ErrorKind::Inventory)?;
        Inventory::parse(path, &text)
    }

    /// Resolves inventory `text`, reporting errors against `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Inventory> {
        resolve::resolve(path, text)
    }

    /// An error when the inventory has no hosts, for every command that needs some.
    pub fn require_hosts(&self) -> Result<()> {
        if !self.hosts.is_empty() {
            return Ok(());
        }
        Err(Error::new(ErrorKind::Inventory, "the inventory has no hosts")
            .at_file(&self.path)
            .hint("add a [hosts.NAME] table with an `address` (see README.md), or pass another inventory with -i"))
    }

    /// The inventory model; `hosts` in file order, names unique (resolve checks).
    fn new(
        path: PathBuf,
        hosts: Vec<Host>,
        groups: BTreeMap<String, Group>,
        deploy: BTreeMap<String, DeploySection>,
        defaults_vars: Arc<Vars>,
    ) -> Inventory {
        let index = hosts.iter().enumerate().map(|(i, h)| (h.name.clone(), i)).collect();
        let hosts = hosts.into_iter().map(Arc::new).collect();
        Inventory { path, hosts, groups, deploy, defaults_vars, index }
    }

    /// Points every host's inherited vars layers at `defaults_vars` and its groups' vars, in
    /// the order of its `groups` list (after those changed, e.g. secret references resolved).
    pub fn relink_vars(&mut self) {
        for host in &mut self.hosts {
            let host = Arc::make_mut(host);
            let mut layers = Vec::with_capacity(host.groups.len() + 1);
            layers.push(self.defaults_vars.clone());
            layers.extend(host.groups.iter().map(|g| self.groups[g].vars.clone()));
            host.vars.relink(layers);
        }
    }

    /// The host called `name`: for resolving what the user typed (patterns, `ssh HOST`) and
    /// the jump chains; later stages hold handles instead.
    pub fn host(&self, name: &str) -> Option<&Arc<Host>> {
        self.index.get(name).map(|&i| &self.hosts[i])
    }

    /// Where `host` (a handle of this inventory) is in `hosts`.
    pub fn position(&self, host: &Host) -> usize {
        let i = self.index[&host.name];
        assert!(std::ptr::eq(&*self.hosts[i], host), "host of another inventory");
        i
    }

    /// The members of `group`, as handles, in host file order.
    pub fn members<'a>(&'a self, group: &'a Group) -> impl Iterator<Item = &'a Arc<Host>> + 'a {
        group.hosts.iter().filter_map(|n| self.host(n))
    }

    /// The jump host `host` is reached through.
    pub fn jump(&self, host: &Host) -> Option<&Arc<Host>> {
        // resolve() guarantees every `via` exists.
        host.via.as_deref().map(|via| self.host(via).expect("resolved via"))
    }

    /// The hosts from the first hop to `host` itself: `[jenkins, web, app]`.
    pub fn chain<'a>(&'a self, host: &'a Host) -> Vec<&'a Host> {
        let mut chain = vec![host];
        let mut cur = host;
        // resolve() guarantees there are no cycles.
        while let Some(jump) = self.jump(cur) {
            cur = jump;
            chain.push(cur);
        }
        chain.reverse();
        chain
    }

    /// `control -> jenkins -> web -> app`.
    pub fn chain_text(&self, host: &Host) -> String {
        let mut s = String::from("control");
        for hop in self.chain(host) {
            s.push_str(" -> ");
            s.push_str(&hop.name);
        }
        s
    }
}
