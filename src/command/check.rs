//! `microctl check`: validate the inventory, roles and templates offline by rendering every
//! resource for every host. No SSH. Reports every problem, not just the first.

use std::collections::HashMap;

use super::{extra_vars, load_inventory, load_roles};
use crate::cli::{CheckArgs, GlobalArgs};
use crate::error::{Error, Result};
use crate::report;
use crate::role::Renderer;

pub fn run(global: &GlobalArgs, args: CheckArgs) -> Result<i32> {
    let inv = load_inventory(global)?;
    inv.require_hosts()?;
    let roles = load_roles(global, &inv)?;
    let extra = extra_vars(&args.extra_vars)?;
    let renderer = Renderer::new(&inv, &roles, &extra);
    let mut failures = 0;
    let mut resources = 0;
    // The same error on many hosts (a role's mistake, not a host's) is shown once, naming them.
    let mut errors: Vec<(Error, Vec<String>)> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for host in &inv.hosts {
        match renderer.render(host, None) {
            Ok(desired) => resources += desired.len(),
            Err(e) => {
                failures += 1;
                let mut key = e.duplicate();
                key.host = None;
                let key = key.to_string();
                match seen.get(&key) {
                    Some(&i) => errors[i].1.push(host.name.clone()),
                    None => {
                        seen.insert(key, errors.len());
                        errors.push((e, vec![host.name.clone()]));
                    }
                }
            }
        }
    }
    for (mut e, hosts) in errors {
        if hosts.len() > 1 {
            e.host = Some(host_list(&hosts));
        }
        report::print_error(&e);
    }
    if failures > 0 {
        eprintln!("check: {failures} of {} hosts failed to render", inv.hosts.len());
        return Ok(2);
    }
    println!(
        "check: ok: {} hosts, {resources} resources rendered from {} ({})",
        inv.hosts.len(),
        roles.roles_dir.display(),
        inv.path.display()
    );
    Ok(0)
}

/// `a, b, c (3 hosts)`, at most 10 names.
fn host_list(hosts: &[String]) -> String {
    let shown: Vec<&str> = hosts.iter().take(10).map(String::as_str).collect();
    let more = if hosts.len() > shown.len() { ", ..." } else { "" };
    format!("{}{more} ({} hosts)", shown.join(", "), hosts.len())
}
