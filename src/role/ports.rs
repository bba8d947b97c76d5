//! Inbound firewall rules from the roles' declared ports: what each host's security group must
//! allow, so the firewall matches the roles. SSH is allowed from the jump host only, for hosts
//! reached `via` one; from the host's `ssh_from` var otherwise (default anywhere). These rules
//! are both what `inventory --ports` prints and what `crate::firewall` renders into the host's
//! nftables table: one list, two renderings.

use super::load::RoleSet;
use super::render::role_names_for;
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::{Host, Inventory};

/// `inventory --ports --json`: one line per host, its inbound rules.
#[derive(Debug, serde::Serialize)]
pub struct HostRules<'a> {
    pub host: &'a str,
    /// The host's `firewall` var: these rules are enforced by its nftables table.
    pub firewall: bool,
    pub inbound: Vec<Rule>,
}

/// One inbound rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    pub port: u16,
    pub proto: String,
    /// Source addresses (`0.0.0.0/0` for anyone).
    pub from: Vec<String>,
    /// Which role (or `ssh`) asked for it, and why.
    pub reason: String,
}

/// The address other hosts reach `h` on: its private address when it has one.
fn reach_address(h: &Host) -> String {
    match h.vars.get("private_address").and_then(|v| v.as_str()) {
        Some(a) => a.to_string(),
        None => h.address.clone(),
    }
}

/// Anyone, in [`Rule::from`].
pub const ANYONE: &str = "0.0.0.0/0";

/// The host's `ssh_from` var: who may open SSH to a host reached directly (not through a jump
/// host). A string or a list of strings, each an address, a CIDR or `any`; unset: anyone.
pub fn ssh_from(host: &Host) -> Result<Vec<String>> {
    let bad = || {
        Error::new(
            ErrorKind::Inventory,
            format!("host {}: var `ssh_from` must be an address, a CIDR or `any`, or a list of them", host.name),
        )
        .host(&host.name)
        .field("ssh_from")
        .hint("e.g. `ssh_from = [\"198.51.100.7\", \"10.0.0.0/8\"]` in the host's, a group's or [defaults] vars")
    };
    let values: Vec<&toml::Value> = match host.vars.get("ssh_from") {
        None => return Ok(vec![ANYONE.into()]),
        Some(toml::Value::Array(a)) if !a.is_empty() => a.iter().collect(),
        Some(v @ toml::Value::String(_)) => vec![v],
        Some(_) => return Err(bad()),
    };
    values
        .into_iter()
        .map(|v| match v.as_str() {
            Some("any") => Ok(ANYONE.to_string()),
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            _ => Err(bad()),
        })
        .collect()
}

/// Whether `s` is an IPv4 (`Some(4)`) or IPv6 (`Some(6)`) address or CIDR; `None` otherwise
/// (a host name: nftables needs addresses).
pub fn source_family(s: &str) -> Option<u8> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (s, None),
    };
    match addr.parse::<std::net::IpAddr>().ok()? {
        std::net::IpAddr::V4(_) if len.is_none_or(|l| l <= 32) => Some(4),
        std::net::IpAddr::V6(_) if len.is_none_or(|l| l <= 128) => Some(6),
        _ => None,
    }
}

/// The rules `host` needs.
pub fn rules(inv: &Inventory, roles: &RoleSet, host: &Host) -> Result<Vec<Rule>> {
    let mut out = vec![match inv.jump(host) {
        Some(jump) => Rule {
            port: host.port,
            proto: "tcp".into(),
            from: vec![reach_address(jump)],
            reason: format!("ssh from jump host {}", jump.name),
        },
        None => Rule { port: host.port, proto: "tcp".into(), from: ssh_from(host)?, reason: "ssh".into() },
    }];
    for role in roles.expand(&role_names_for(inv, host)) {
        for p in &role.spec.ports {
            let from = match p.from.as_str() {
                "any" => vec![ANYONE.to_string()],
                "self" => continue, // local only: no inbound rule
                group => match inv.groups.get(group) {
                    Some(g) => inv.members(g).map(|h| reach_address(h)).collect(),
                    // An address or a CIDR, as written.
                    None if source_family(group).is_some() => vec![group.to_string()],
                    None => continue, // the group is not in this inventory: nobody to allow
                },
            };
            let what = p.description.clone().unwrap_or_default();
            out.push(Rule {
                port: p.port,
                proto: p.proto.clone(),
                from,
                reason: format!("role {}: {what}", role.name),
            });
        }
    }
    Ok(out)
}
