//! `[deploy.NAME]` in the inventory: where the app comes from, how it is built, restarted and
//! health-checked, and on which hosts. String fields are templates, rendered per host.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::inventory::Inventory;

/// The build steps of the original `start_app.sh`, run in the new release folder.
pub const DEFAULT_BUILD: [&str; 4] = [
    "python3 -m venv venv",
    "venv/bin/pip install --quiet -r requirements.txt",
    "if [ -d app/translations ] || [ -d translations ]; then venv/bin/flask translate compile; fi",
    "venv/bin/flask db upgrade",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeploy {
    hosts: Option<String>,
    source: String,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    root: Option<String>,
    user: Option<String>,
    env_file: Option<String>,
    build: Option<Vec<String>>,
    restart: Option<String>,
    health_path: Option<String>,
    health_port: Option<toml::Value>,
    health_address: Option<String>,
    health_timeout: Option<f64>,
    health_status: Option<u16>,
    health_via: Option<String>,
    health_via_port: Option<u16>,
    keep: Option<usize>,
    batch: Option<usize>,
}

/// Where the code comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A folder on this machine (a git checkout or not), packed and uploaded.
    Path(PathBuf),
    /// A git URL cloned on each host.
    Git(String),
}

/// One deploy section, not yet rendered for a host.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    pub name: String,
    pub hosts: String,
    pub source: Source,
    pub git_ref: Option<String>,
    pub root: String,
    pub user: String,
    pub env_file: Option<String>,
    pub build: Vec<String>,
    pub restart: String,
    pub health_path: String,
    pub health_port: String,
    pub health_address: String,
    pub health_timeout: Duration,
    /// Expected HTTP status; 0 means any 2xx.
    pub health_status: u16,
    pub health_via: Option<String>,
    pub health_via_port: u16,
    pub keep: usize,
    pub batch: usize,
}

impl DeployConfig {
    /// Reads `[deploy.NAME]` from the inventory.
    pub fn load(inv: &Inventory, name: &str) -> Result<DeployConfig> {
        let Some(section) = inv.deploy.get(name) else {
            let known: Vec<&str> = inv.deploy.keys().map(String::as_str).collect();
            return Err(Error::usage(format!("no [deploy.{name}] in {}", inv.path.display())).hint(
                if known.is_empty() {
                    format!("add a [deploy.{name}] table to the inventory (see README.md, Deploy)")
                } else {
                    format!("deploys defined: {}", known.join(", "))
                },
            ));
        };
        let at = |message: String| {
            Error::new(ErrorKind::Inventory, message)
                .at_file(&inv.path)
                .at_line(section.line, 1)
                .field(format!("deploy.{name}"))
        };
        let raw: RawDeploy = toml::Value::Table(section.table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| at(format!("invalid [deploy.{name}]: {}", e.message().trim())))?;
        let base = inv.path.parent().unwrap_or(Path::new("."));
        let source = if raw.source.contains("://") || raw.source.starts_with("git@") || raw.source.ends_with(".git") {
            Source::Git(raw.source.clone())
        } else {
            Source::Path(crate::inventory::expand_path(base, &raw.source))
        };
        if matches!(source, Source::Git(_)) && raw.git_ref.is_none() {
            return Err(at(format!("[deploy.{name}] with a git URL needs `ref`")).hint("e.g. ref = \"main\""));
        }
        let health_port = match raw.health_port {
            None => "{{ app_port }}".to_string(),
            Some(toml::Value::Integer(p)) => p.to_string(),
            Some(toml::Value::String(s)) => s,
            Some(other) => return Err(at(format!("`health_port` must be a number or a template, got {other}"))),
        };
        let keep = raw.keep.unwrap_or(5);
        if keep < 2 {
            return Err(at("`keep` must be at least 2 (the live release and the one to roll back to)".into()));
        }
        Ok(DeployConfig {
            name: name.to_string(),
            hosts: raw.hosts.unwrap_or_else(|| name.to_string()),
            source,
            git_ref: raw.git_ref,
            root: raw.root.unwrap_or_else(|| "/srv/microblog".into()),
            user: raw.user.unwrap_or_else(|| "www-data".into()),
            env_file: raw.env_file.or_else(|| Some("/etc/microblog.env".into())).filter(|e| !e.is_empty()),
            build: raw.build.unwrap_or_else(|| DEFAULT_BUILD.iter().map(|s| s.to_string()).collect()),
            restart: raw.restart.unwrap_or_else(|| "systemctl restart gunicorn".into()),
            health_path: raw.health_path.unwrap_or_else(|| "/healthz".into()),
            health_port,
            health_address: raw
                .health_address
                .unwrap_or_else(|| "{{ host.vars.private_address | default(host.address) }}".into()),
            health_timeout: Duration::from_secs_f64(raw.health_timeout.unwrap_or(30.0)),
            health_status: raw.health_status.unwrap_or(0),
            health_via: raw.health_via,
            health_via_port: raw.health_via_port.unwrap_or(80),
            keep,
            batch: raw.batch.unwrap_or(1).max(1),
        })
    }
}
