//! The JSON document of `inventory --json` (`inventory --ports --json` lines are
//! `role::ports::HostRules`): `Serialize` types, so its shape is written down in one place,
//! like the events of the multi-host commands (`event`).

use serde::Serialize;

use crate::inventory::{HostVars, Vars};

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
