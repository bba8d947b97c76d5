//! `microctl check`: validate the inventory, roles and templates offline by rendering every
//! resource for every host. No SSH. Reports every problem, not just the first. Problems that
//! only matter when connecting (a missing or unprotected identity file) are warnings.

use super::{extra_vars, load_inventory, load_roles};
use crate::cli::{CheckArgs, GlobalArgs};
use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::report;
use crate::role::Renderer;

pub fn run(global: &GlobalArgs, args: CheckArgs) -> Result<i32> {
    let inv = load_inventory(global)?;
    let roles = load_roles(global, &inv)?;
    let extra = extra_vars(&args.extra_vars)?;
    let renderer = Renderer::new(&inv, &roles, &extra);
    let mut failures = 0;
    let mut resources = 0;
    for host in &inv.hosts {
        match renderer.render(host, None) {
            Ok(desired) => resources += desired.len(),
            Err(e) => {
                failures += 1;
                report::print_error(&e);
            }
        }
    }
    for warning in identity_warnings(&inv) {
        report::print_warning(&warning);
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

/// One warning per identity file that cannot be used, naming every host that uses it.
fn identity_warnings(inv: &Inventory) -> Vec<Error> {
    let mut by_path: Vec<(Error, Vec<&str>)> = Vec::new();
    for host in &inv.hosts {
        let Err(e) = crate::transport::check_identity(host) else { continue };
        match by_path.iter_mut().find(|(first, _)| first.message == e.message) {
            Some((_, hosts)) => hosts.push(&host.name),
            None => by_path.push((e, vec![&host.name])),
        }
    }
    by_path.into_iter().map(|(e, hosts)| e.host(hosts.join(", ")).at_file(&inv.path)).collect()
}
