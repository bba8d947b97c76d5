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

/// A host's addresses: its `private_address` var first (when set), then its `address`.
fn addresses(h: &Host) -> Vec<&str> {
    let mut out: Vec<&str> = h.vars.get("private_address").and_then(|v| v.as_str()).into_iter().collect();
    if !out.contains(&h.address.as_str()) {
        out.push(&h.address);
    }
    out
}

/// The address `to` sees `from` connect from: of `from`'s addresses, the one on `to`'s
/// network, judged by the longest common prefix with one of `to`'s addresses (web's private
/// address for app, monitoring's public one for jenkins); the private one on a tie or when
/// they are not IP addresses.
fn seen_from(to: &Host, from: &Host) -> String {
    let bits = |a: &str| -> Option<u128> {
        match a.parse::<std::net::IpAddr>().ok()? {
            std::net::IpAddr::V4(v4) => Some(u128::from(u32::from(v4)) << 96),
            std::net::IpAddr::V6(v6) => Some(u128::from(v6)),
        }
    };
    let ours = addresses(to);
    let score = |a: &str| -> u32 {
        let Some(x) = bits(a) else { return 0 };
        ours.iter().filter_map(|o| bits(o)).map(|o| (x ^ o).leading_zeros()).max().unwrap_or(0)
    };
    let theirs = addresses(from);
    let best = theirs.iter().map(|a| score(a)).max().unwrap_or(0);
    theirs.iter().find(|a| score(a) == best).map_or_else(|| from.address.clone(), |a| a.to_string())
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
            from: vec![seen_from(host, jump)],
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
                    Some(g) => inv.members(g).map(|h| seen_from(host, h)).collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The lab's topology: control and jenkins on the public net only, web and monitoring on
    /// both, app on the private net only.
    fn lab() -> Inventory {
        let text = "[hosts.jenkins]\naddress = \"198.18.0.10\"\nvars = { private_address = \"198.18.0.10\" }\n\
                    [hosts.web]\naddress = \"198.18.0.11\"\nvars = { private_address = \"198.18.1.11\" }\n\
                    [hosts.monitoring]\naddress = \"198.18.0.12\"\nvars = { private_address = \"198.18.1.12\" }\n\
                    [hosts.app]\naddress = \"198.18.1.20\"\nvia = \"web\"\nvars = { private_address = \"198.18.1.20\" }\n";
        Inventory::parse(std::path::Path::new("/i.toml"), text).unwrap()
    }

    #[test]
    fn a_host_is_seen_by_the_address_on_the_network_it_shares() {
        let inv = lab();
        let h = |n: &str| inv.host(n).unwrap();
        assert_eq!(seen_from(h("app"), h("web")), "198.18.1.11");
        assert_eq!(seen_from(h("app"), h("monitoring")), "198.18.1.12");
        assert_eq!(seen_from(h("jenkins"), h("monitoring")), "198.18.0.12");
        // On both networks: the private address.
        assert_eq!(seen_from(h("web"), h("monitoring")), "198.18.1.12");
    }

    #[test]
    fn ssh_from_takes_an_address_a_list_or_any_and_refuses_the_rest() {
        let parse = |vars: &str| {
            let text = format!("[hosts.h]\naddress = \"198.18.0.2\"\nvars = {{ {vars} }}\n");
            let inv = Inventory::parse(std::path::Path::new("/i.toml"), &text).unwrap();
            ssh_from(inv.host("h").unwrap())
        };
        assert_eq!(parse("x = 1").unwrap(), [ANYONE]);
        assert_eq!(parse("ssh_from = \"any\"").unwrap(), [ANYONE]);
        assert_eq!(parse("ssh_from = [\"198.18.0.1\", \"10.0.0.0/8\"]").unwrap(), ["198.18.0.1", "10.0.0.0/8"]);
        let e = parse("ssh_from = 5").unwrap_err();
        assert_eq!(e.message, "host h: var `ssh_from` must be an address, a CIDR or `any`, or a list of them");
        assert!(parse("ssh_from = []").is_err());
    }
}
