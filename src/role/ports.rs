//! Inbound firewall rules from the roles' declared ports: what each host's security group must
//! allow, so the firewall matches the roles. SSH is allowed from the jump host only, for hosts
//! reached `via` one; from anywhere otherwise.

use super::load::RoleSet;
use super::render::role_names_for;
use crate::inventory::{Host, Inventory};

/// `inventory --ports --json`: one line per host, its inbound rules.
#[derive(Debug, serde::Serialize)]
pub struct HostRules<'a> {
    pub host: &'a str,
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

/// The rules `host` needs.
pub fn rules(inv: &Inventory, roles: &RoleSet, host: &Host) -> Vec<Rule> {
    let mut out = vec![match inv.jump(host) {
        Some(jump) => Rule {
            port: host.port,
            proto: "tcp".into(),
            from: vec![reach_address(jump)],
            reason: format!("ssh from jump host {}", jump.name),
        },
        None => Rule { port: host.port, proto: "tcp".into(), from: vec!["0.0.0.0/0".into()], reason: "ssh".into() },
    }];
    for role in roles.expand(&role_names_for(inv, host)) {
        for p in &role.spec.ports {
            let from = match p.from.as_str() {
                "any" => vec!["0.0.0.0/0".to_string()],
                "self" => continue, // local only: no inbound rule
                group => match inv.groups.get(group) {
                    Some(g) => inv.members(g).map(|h| reach_address(h)).collect(),
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
    out
}
