//! `microctl inventory`: hosts, groups, vars and each host's resolved jump chain.

use std::fmt::Write as _;
use std::io::Write as _;

use std::sync::Arc;

use super::{load_inventory, load_roles};
use crate::cli::{GlobalArgs, InventoryArgs};
use crate::error::Result;
use crate::inventory::{self, Host};
use crate::report::listing::{GroupJson, HostJson, InventoryJson};
use crate::report::{self, Table};
use crate::role::ports;

pub fn run(global: &GlobalArgs, args: InventoryArgs) -> Result<i32> {
    let inv = load_inventory(global)?;
    let hosts: Vec<Arc<Host>> = match &args.pattern {
        Some(p) => inventory::select(&inv, p)?,
        None => inv.hosts.clone(),
    };
    if args.ports {
        let roles = load_roles(global, &inv)?;
        // The same rules `crate::firewall` renders into a host's table (when its firewall is on).
        let mut all = Vec::with_capacity(hosts.len());
        for h in &hosts {
            all.push((h, ports::rules(&inv, &roles, h)?, crate::firewall::enabled(h)?));
        }
        if args.json {
            for (h, inbound, firewall) in all {
                report::json_line(&ports::HostRules { host: &h.name, firewall, inbound });
            }
            return Ok(0);
        }
        let mut table = Table::new(&["host", "port", "from", "why", "firewall"]);
        for (h, rules, firewall) in all {
            for r in rules {
                let enforced = if firewall { "enforced" } else { "off" };
                table.row(vec![
                    h.name.clone(),
                    format!("{}/{}", r.port, r.proto),
                    r.from.join(","),
                    r.reason,
                    enforced.into(),
                ]);
            }
        }
        print!("{}", table.render());
        return Ok(0);
    }
    if args.json {
        let hosts = hosts
            .iter()
            .map(|h| HostJson {
                name: &h.name,
                address: &h.address,
                port: h.port,
                user: &h.user,
                via: h.via.as_deref(),
                groups: &h.groups,
                chain: inv.chain(h).iter().map(|c| c.name.clone()).collect(),
                vars: &h.vars,
            })
            .collect();
        let groups = inv
            .groups
            .values()
            .map(|g| (g.name.as_str(), GroupJson { hosts: &g.hosts, roles: &g.roles, vars: &g.vars }))
            .collect();
        report::json_line(&InventoryJson { hosts, groups });
        return Ok(0);
    }
    if inv.hosts.is_empty() {
        println!("{}: no hosts (add [hosts.NAME] tables, see README.md)", inv.path.display());
        return Ok(0);
    }
    let mut table = Table::new(&["host", "target", "groups", "chain"]);
    for h in &hosts {
        table.row(vec![
            h.name.clone(),
            format!("{}@{}:{}", h.user, h.address, h.port),
            h.groups.join(","),
            inv.chain_text(h),
        ]);
    }
    // Built whole, written once: a line per host through `println!` is a write per line.
    let mut out = table.render();
    out.push('\n');
    let mut groups = Table::new(&["group", "hosts", "roles"]);
    for g in inv.groups.values() {
        groups.row(vec![g.name.clone(), g.hosts.join(","), g.roles.join(",")]);
    }
    out.push_str(&groups.render());
    out.push('\n');
    for h in &hosts {
        out.push_str(&h.name);
        out.push_str(" vars:");
        if h.vars.is_empty() {
            out.push_str(" -");
        }
        for (k, v) in h.vars.iter() {
            let _ = write!(out, " {k}={v}");
        }
        out.push('\n');
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(0)
}
