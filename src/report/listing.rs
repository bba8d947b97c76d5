//! The JSON documents of the listing commands (`inventory --json`, `inventory --ports
//! --json`): `Serialize` types, so their shape is written down in one place, like the events
//! of the multi-host commands (`event`).

use serde::Serialize;

use crate::inventory::{HostVars, Vars};
use crate::role::ports::Rule;

/// `inventory --json`: one object, the selected hosts and every group.
#[derive(Debug, Serialize)]
pub struct InventoryJson<'a> {
    pub hosts: Vec<HostJson<'a>>,
    pub groups: std::collections::BTreeMap<&'a str, GroupJson<'a>>,
}

#[derive(Debug, Serialize)]
pub struct HostJson<'a> {
    pub name: &'a str,
    pub address: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub via: Option<&'a str>,
    pub groups: &'a [String],
    /// The jump chain, first hop first, the host last.
    pub chain: Vec<String>,
    pub vars: &'a HostVars,
}

#[derive(Debug, Serialize)]
pub struct GroupJson<'a> {
    pub hosts: &'a [String],
    pub roles: &'a [String],
    pub vars: &'a Vars,
}

/// `inventory --ports --json`: one line per host.
#[derive(Debug, Serialize)]
pub struct PortsJson<'a> {
    pub host: &'a str,
    pub inbound: Vec<Rule>,
}
