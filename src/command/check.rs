//! `microctl check`: validate the inventory, roles and templates offline by rendering every
//! resource for every host. No SSH. Reports every problem, not just the first. Problems that
//! only matter when connecting (a missing or unprotected identity file), secrets not set yet
//! (rendered as `[secret NAME]` stand-ins; nothing is decrypted) and placeholder values left
//! in vars (`change-me`, `SET-ME`) are warnings.

use std::collections::HashMap;

use super::{extra_vars, load_inventory_with_secrets, load_roles};
use crate::cli::{CheckArgs, GlobalArgs};
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::Inventory;
use crate::report;
use crate::role::Renderer;

pub fn run(global: &GlobalArgs, args: CheckArgs) -> Result<i32> {
    let (inv, secret_warnings) = load_inventory_with_secrets(global, crate::secrets::Mode::StandIns)?;
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
            Ok(desired) => {
                resources += desired.len();
                let errors = crate::role::snippets::check(&desired, &roles.roles_dir);
                failures += usize::from(!errors.is_empty());
                errors.iter().for_each(report::print_error);
            }
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
    let placeholders = placeholder_warnings(&inv, &renderer);
    let file = crate::secrets::file_warnings(&inv)?;
    for warning in secret_warnings.iter().chain(&file).chain(&identity_warnings(&inv)).chain(&placeholders) {
        report::print_warning(warning);
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

/// One warning per var whose value looks like a placeholder, naming the hosts that use it.
fn placeholder_warnings(inv: &Inventory, renderer: &Renderer) -> Vec<Error> {
    let mut found: Vec<(String, String, Vec<&str>)> = Vec::new();
    for host in &inv.hosts {
        for (var, value) in crate::secrets::refs::placeholders(renderer.vars(&host.name)) {
            match found.iter_mut().find(|(v, x, _)| *v == var && *x == value) {
                Some((_, _, hosts)) => hosts.push(&host.name),
                None => found.push((var, value, vec![&host.name])),
            }
        }
    }
    found
        .into_iter()
        .map(|(var, value, hosts)| {
            Error::new(ErrorKind::Inventory, format!("var `{var}` is a placeholder: `{value}`"))
                .at_file(&inv.path)
                .host(hosts.join(", "))
                .hint(format!(
                    "set the real value; for a secret, `microctl secrets set {var}` and `{var} = {{ secret = \"{var}\" }}`"
                ))
        })
        .collect()
}

/// `a, b, c (3 hosts)`, at most 10 names.
fn host_list(hosts: &[String]) -> String {
    let shown: Vec<&str> = hosts.iter().take(10).map(String::as_str).collect();
    let more = if hosts.len() > shown.len() { ", ..." } else { "" };
    format!("{}{more} ({} hosts)", shown.join(", "), hosts.len())
}
