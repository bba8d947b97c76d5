//! `microctl check`: validate the inventory, roles and templates offline by rendering every
//! resource for every host. No SSH. Reports every problem, not just the first.

use super::{extra_vars, load_inventory, load_roles};
use crate::cli::{CheckArgs, GlobalArgs};
use crate::error::Result;
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
            Ok(desired) => {
                resources += desired.len();
                let errors = crate::role::snippets::check(&desired, &roles.roles_dir);
                failures += usize::from(!errors.is_empty());
                errors.iter().for_each(report::print_error);
            }
            Err(e) => {
                failures += 1;
                report::print_error(&e);
            }
        }
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
