//! The inventory file exactly as written: serde structs with spans, no meaning attached yet.
//!
//! Only `resolve` reads these; everything else uses the resolved [`super::Inventory`].

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

/// Top level of `inventory.toml`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawInventory {
    #[serde(default)]
    pub defaults: Option<Spanned<RawHost>>,
    #[serde(default)]
    pub hosts: IndexMap<Spanned<String>, Spanned<RawHost>>,
    #[serde(default)]
    pub groups: IndexMap<Spanned<String>, Spanned<RawGroup>>,
    /// Deploy settings per application (see `deploy`), kept raw here, with each field's span.
    #[serde(default)]
    pub deploy: IndexMap<Spanned<String>, Spanned<RawDeployTable>>,
}

/// One `[deploy.NAME]` table: its fields as written, each with its value's span.
pub type RawDeployTable = IndexMap<Spanned<String>, Spanned<toml::Value>>;

/// One `[hosts.NAME]` table; `[defaults]` has the same shape minus `address`, `via` and `groups`.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    pub address: Option<Spanned<String>>,
    pub via: Option<Spanned<String>>,
    pub groups: Option<Vec<Spanned<String>>>,
    pub user: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    pub identity: Option<Spanned<String>>,
    pub known_hosts: Option<Spanned<String>>,
    pub global_known_hosts: Option<Vec<Spanned<String>>>,
    pub connect_timeout: Option<Spanned<f64>>,
    pub timeout: Option<Spanned<f64>>,
    pub max_sessions: Option<Spanned<i64>>,
    pub apt_lock_timeout: Option<Spanned<f64>>,
    #[serde(rename = "become")]
    pub become_root: Option<bool>,
    pub state_dir: Option<Spanned<String>>,
    pub vars: Option<toml::Table>,
}

/// One `[groups.NAME]` table.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawGroup {
    #[serde(default)]
    pub roles: Vec<Spanned<String>>,
    pub vars: Option<toml::Table>,
}
