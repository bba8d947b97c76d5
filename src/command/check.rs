//! `microctl check`: validate the inventory, roles and templates offline by rendering every
//! resource for every host, and reading every `[deploy.NAME]` as `deploy` would (a mistake
//! there exits 2 naming file, line, column and field). No SSH. Roles are resolved once at load
//! (a role error is printed once and exits 2 before any host is rendered); what depends on a
//! host's values (an undefined variable, a templated path or snippet) is reported through the
//! printer, each distinct error once with the hosts it hit. Problems that only matter when connecting (a
//! missing or unprotected identity file), secrets not set yet (rendered as `[secret NAME]`
//! stand-ins; nothing is decrypted), files that hold a secret and have no `mode` (written
//! 0600) and placeholder values left in vars (`change-me`, `SET-ME`) are warnings.

use std::collections::HashMap;
use std::time::Instant;

use super::{extra_vars, load_inventory_with_secrets, load_roles, unread_extra_warnings};
use crate::cli::{CheckArgs, GlobalArgs};
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::Inventory;
use crate::report::event::{HostDone, Status};
use crate::report::{self, Printer};
use crate::role::Renderer;

/// `check`'s own fields of a host's JSON `host` object: what the host's roles rendered to.
#[derive(Debug, serde::Serialize)]
struct CheckHost {
    /// Resources rendered (0 when rendering failed).
    resources: usize,
}

pub fn run(global: &GlobalArgs, args: CheckArgs) -> Result<i32> {
    let (inv, secret_warnings) = load_inventory_with_secrets(global, crate::secrets::Mode::StandIns)?;
    inv.require_hosts()?;
    // Every deploy table, typed and its host patterns matched, as `deploy` would read it.
    crate::deploy::config::DeployConfig::load_all(&inv)?;
    let roles = load_roles(global, &inv)?;
    let extra = extra_vars(&args.extra_vars)?;
    let renderer = Renderer::new(&inv, &roles, &extra);
    roles.templates.host_keys_offline();
    let names: Vec<String> = inv.hosts.iter().map(|h| h.name.clone()).collect();
    let printer = Printer::new(&global.output, "check", &names, args.json);
    if let Some(note) = crate::facts::for_check(&renderer, &inv.hosts, args.facts.as_deref())? {
        printer.message(&note);
    }

    let mut results: Vec<(&str, Result<usize>, std::time::Duration)> = Vec::with_capacity(inv.hosts.len());
    // A templated snippet renders to few distinct texts: `sh -n` each once.
    let mut parsed: HashMap<String, Option<String>> = HashMap::new();
    // Firewall tables (hosts with `firewall = true`) are checked with `nft -c` where it runs.
    let nft = inv.hosts.iter().any(|h| crate::firewall::enabled(h).unwrap_or(true)) && crate::firewall::nft_available();
    for host in &inv.hosts {
        let started = Instant::now();
        let result = renderer.render(host, None).and_then(|desired| {
            let errors = crate::role::snippets::check(&desired, &roles.roles_dir, &mut parsed);
            let n = errors.into_iter().next().map_or(Ok(desired.len()), Err)?;
            Ok(n + crate::firewall::check(&inv, &roles, host, nft)?)
        });
        results.push((&host.name, result, started.elapsed()));
    }
    let failures = results.iter().filter_map(|(h, r, _)| r.as_ref().err().map(|e| (*h, e)));
    for (error, hosts) in report::group_errors(failures) {
        printer.shared_error(error, &hosts);
    }
    let mut resources = 0;
    for (host, result, took) in &results {
        let (status, error, count) = match result {
            Ok(n) => (Status::Ok, None, *n),
            Err(e) => (Status::Failed, Some(e), 0),
        };
        resources += count;
        let detail = format!("{count} resources");
        let mut done = HostDone::new(host, status, *took, error, detail, CheckHost { resources: count });
        done.error_text = None; // printed above, once for all the hosts it hit
        printer.host_done(&done);
    }
    let failed = results.iter().any(|(_, r, _)| r.is_err());

    let placeholders = placeholder_warnings(&inv, &renderer);
    let file = crate::secrets::file_warnings(&inv)?;
    let rendered = renderer.warnings();
    let all = secret_warnings.iter().chain(&file).chain(&rendered);
    let groups = group_typo_warnings(&inv);
    let unread = unread_extra_warnings(&extra, &roles);
    let keys = missing_key_warning(&roles.templates.missing_host_keys());
    for warning in all.chain(&identity_warnings(&inv)).chain(&placeholders).chain(&groups).chain(&unread).chain(&keys) {
        printer.warning(warning);
    }
    if !failed {
        printer.message(&format!(
            "check: {} rendered from {} ({})",
            crate::report::count(resources, "resource"),
            roles.roles_dir.display(),
            inv.path.display()
        ));
    }
    // A host whose roles do not render is an input error: 2; every host rendered: 0.
    let code = if failed { 2 } else { 0 };
    printer.finish(0, false, code);
    // The process ends here: freeing a 20,000-host inventory piece by piece would cost more
    // than the rendering did (BENCHMARKS.md); the OS takes the memory back at once.
    std::mem::forget(renderer);
    std::mem::forget(results);
    std::mem::forget(inv);
    Ok(code)
}

/// `known_host_keys()` rendered without the hosts this controller has no trusted key for yet
/// (before first contact): converge would fail on them.
fn missing_key_warning(missing: &[String]) -> Option<Error> {
    (!missing.is_empty()).then(|| {
        Error::new(
            ErrorKind::Usage,
            format!("known_host_keys(): no trusted host key yet for {}; a converge would fail there", missing.join(", ")),
        )
        .hint("record them once, after checking their fingerprints: `microctl facts --accept-new` (or `exec HOST --accept-new -- true`)")
    })
}

/// One warning per identity file that cannot be used, naming every host that uses it. Each
/// file is looked at once, however many hosts use it.
/// A group hosts name in `groups = [...]` that has no `[groups.X]` table and no roles, spelled
/// almost like one that has (`wbe` and `web`): most likely a typo that silently gives those
/// hosts none of the group's roles and vars.
fn group_typo_warnings(inv: &Inventory) -> Vec<Error> {
    let tables: Vec<&str> = inv.groups.values().filter(|g| g.line > 0).map(|g| g.name.as_str()).collect();
    inv.groups
        .values()
        .filter(|g| g.line == 0 && g.roles.is_empty())
        .filter_map(|g| {
            let limit = crate::inventory::near::typo_limit(&g.name);
            let near = tables.iter().find(|t| crate::inventory::near::edit_distance(t, &g.name) <= limit)?;
            Some(
                Error::new(
                    ErrorKind::Inventory,
                    format!("group `{}` has no [groups.{}] table and no roles: did you mean `{near}`?", g.name, g.name),
                )
                .at_file(&inv.path)
                .host(crate::report::host_list(&g.hosts))
                .hint(format!("fix the name in the hosts' `groups`, or add [groups.{}] if it is meant", g.name)),
            )
        })
        .collect()
}

fn identity_warnings(inv: &Inventory) -> Vec<Error> {
    let mut verdicts: HashMap<&std::path::Path, Option<usize>> = HashMap::new();
    let mut by_path: Vec<(Error, Vec<&str>)> = Vec::new();
    for host in &inv.hosts {
        let Some(path) = host.identity.as_deref() else { continue };
        let verdict = *verdicts.entry(path).or_insert_with(|| {
            let e = crate::transport::check_identity(host).err()?;
            match by_path.iter().position(|(first, _)| first.message == e.message) {
                Some(i) => Some(i),
                None => {
                    by_path.push((e, vec![]));
                    Some(by_path.len() - 1)
                }
            }
        });
        if let Some(i) = verdict {
            by_path[i].1.push(&host.name);
        }
    }
    by_path
        .into_iter()
        .map(|(mut e, hosts)| {
            e.host = Some(hosts.join(", "));
            e.at_file(&inv.path)
        })
        .collect()
}

/// One warning per var whose value looks like a placeholder, naming the hosts that use it.
fn placeholder_warnings(inv: &Inventory, renderer: &Renderer) -> Vec<Error> {
    let mut found: Vec<(String, String, Vec<&str>)> = Vec::new();
    for host in &inv.hosts {
        // Each layer of the host's vars, a hit counting only where no later layer overrides it.
        let layers = renderer.var_layers(host);
        let layers = &layers;
        let hits = layers.iter().enumerate().flat_map(|(i, layer)| {
            crate::secrets::refs::placeholders(layer)
                .into_iter()
                .filter(move |(var, _)| layers[i + 1..].iter().all(|later| !later.contains_key(var)))
        });
        for (var, value) in hits {
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
