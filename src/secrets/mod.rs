//! Secrets: values that never sit in plain text in the inventory or on a command line.
//!
//! Vars refer to them: `secret_key = { secret = "secret_key" }` takes the value from the
//! age-encrypted secrets file next to the inventory (`store`), `token = { env = "TOKEN" }`
//! from the environment (CI credentials bindings). [`resolve`] replaces the references
//! before rendering and registers every value with the redactor (`redact`), through which
//! `report` prints everything, and records where each value sits in the vars (`access`):
//! a file whose template read one is sensitive (and 0600 unless the role sets `mode`).
//! `check` resolves offline: secret names are checked against the file, their values are
//! stand-ins; `env` values are read (and registered) as in converge.

pub mod access;
pub mod keypair;
pub mod known;
pub mod redact;
pub mod refs;
pub mod store;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{Error, ErrorKind, Result};
use crate::inventory::Inventory;
use refs::Reference;
pub use store::{Identities, SecretsFile};

/// How references are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Decrypt secrets and read the environment (converge, deploy).
    Values,
    /// Offline (`check`): each reference becomes `[secret NAME]`; a name missing from the
    /// secrets file or an unset variable is a warning.
    StandIns,
}

/// Resolves every reference in the inventory's host and group vars. Returns the warnings
/// (`StandIns` mode; in `Values` mode only what decrypting said, e.g. about a key). With `only` (the hosts a command renders), the vars of other hosts
/// and of groups none of them is in get stand-ins (`[secret NAME]`, `[env NAME]`) without
/// decrypting or reading anything: `converge web` does not need app's secrets or environment.
pub fn resolve(inv: &mut Inventory, mode: Mode, only: Option<&[String]>) -> Result<Vec<Error>> {
    let wanted = |host: &str| only.is_none_or(|o| o.iter().any(|h| h == host));
    let file_path = SecretsFile::path_for(&inv.path);
    let mut file: Option<Option<SecretsFile>> = None;
    let mut ids: Option<Identities> = None;
    let mut cache: BTreeMap<Reference, String> = BTreeMap::new();
    let mut warnings = Vec::new();
    let identities: Vec<PathBuf> = inv.hosts.iter().filter_map(|h| h.identity.clone()).collect();
    let inv_path = inv.path.clone();

    let mut lookup = |owner: &str, var: &str, r: &Reference| -> Result<String> {
        if let Some(v) = cache.get(r) {
            access::record(var, v);
            return Ok(v.clone());
        }
        let located = |e: Error| e.at_file(&inv_path).field(format!("{owner} vars.{var}"));
        // Secrets are stand-ins in `StandIns` mode, and so is an unset environment variable.
        let mut stand_in = matches!((r, mode), (Reference::Secret(_), Mode::StandIns));
        let value = match (r, mode) {
            (Reference::Env(name), _) => match std::env::var(name) {
                Ok(v) => {
                    if mode == Mode::StandIns && !v.is_empty() && v.chars().count() < redact::MIN_SECRET {
                        warnings.push(located(Error::new(
                            ErrorKind::Inventory,
                            format!(
                                "environment variable `{name}` (var `{var}`) is {} characters long: output masks a value shorter than {} only where it stands as a word of its own",
                                v.chars().count(),
                                redact::MIN_SECRET
                            ),
                        )));
                    }
                    v
                }
                Err(_) if mode == Mode::StandIns => {
                    stand_in = true;
                    warnings.push(located(Error::new(
                        ErrorKind::Inventory,
                        format!("environment variable `{name}` is not set (var `{var}` refers to it)"),
                    )));
                    format!("[env {name}]")
                }
                Err(_) => {
                    return Err(located(Error::new(
                        ErrorKind::Inventory,
                        format!("var `{var}` refers to environment variable `{name}`, which is not set"),
                    ))
                    .hint(format!("export {name}=... (in Jenkins: a credentials binding with that variable name)")));
                }
            },
            (Reference::Secret(name), _) => {
                let file = match &mut file {
                    Some(f) => f,
                    None => file.insert(SecretsFile::load(&file_path)?),
                };
                let missing = match file {
                    None => Some(format!("there is no secrets file {}", file_path.display())),
                    Some(f) if !f.secrets.contains_key(name) => {
                        Some(format!("{} has no secret `{name}`", file_path.display()))
                    }
                    Some(_) => None,
                };
                match (missing, mode) {
                    (Some(why), Mode::StandIns) => {
                        warnings.push(
                            located(Error::new(
                                ErrorKind::Inventory,
                                format!("var `{var}` refers to secret `{name}`, but {why}"),
                            ))
                            .hint(format!("microctl secrets set {name} (reads the value from stdin)")),
                        );
                        format!("[secret {name}]")
                    }
                    (Some(why), Mode::Values) => {
                        return Err(located(Error::new(
                            ErrorKind::Inventory,
                            format!("var `{var}` refers to secret `{name}`, but {why}"),
                        ))
                        .hint(format!("microctl secrets set {name} (reads the value from stdin)")));
                    }
                    (None, Mode::StandIns) => format!("[secret {name}]"),
                    (None, Mode::Values) => {
                        let ids = match &ids {
                            Some(i) => i,
                            None => ids.insert(Identities::find(&identities)?),
                        };
                        file.as_ref().expect("checked").get(name, ids)?
                    }
                }
            }
        };
        // An `env` value is read in both modes (`check` too): only stand-ins are not registered.
        if !stand_in {
            redact::register(r.name(), &value);
        }
        // Stand-ins too: `check` tells which files read a secret as converge does.
        access::record(var, &value);
        cache.insert(r.clone(), value.clone());
        Ok(value)
    };

    // Each vars layer once (hosts share the defaults' and groups' layers), then relinked.
    let mut unneeded = |_: &str, r: &Reference| Ok(format!("[{} {}]", r.kind(), r.name()));
    refs::resolve(std::sync::Arc::make_mut(&mut inv.defaults_vars), &mut |var, r| lookup("defaults", var, r))?;
    for host in &mut inv.hosts {
        let host = std::sync::Arc::make_mut(host);
        let owner = format!("hosts.{}", host.name);
        if wanted(&host.name) {
            refs::resolve(host.vars.own_mut(), &mut |var, r| lookup(&owner, var, r))?;
        } else {
            refs::resolve(host.vars.own_mut(), &mut unneeded)?;
        }
    }
    for group in inv.groups.values_mut() {
        let owner = format!("groups.{}", group.name);
        let vars = std::sync::Arc::make_mut(&mut group.vars);
        if group.hosts.iter().any(|h| wanted(h)) {
            refs::resolve(vars, &mut |var, r| lookup(&owner, var, r))?;
        } else {
            refs::resolve(vars, &mut unneeded)?;
        }
    }
    inv.relink_vars();
    // What decrypting said (age, unlocking a key): returned like the warnings, for the caller
    // to print.
    if let Some(ids) = &ids {
        warnings.extend(ids.take_notes().into_iter().map(|n| Error::new(ErrorKind::Inventory, n)));
    }
    // One warning per reference, not per host using it.
    warnings.dedup_by(|a, b| a.message == b.message);
    Ok(warnings)
}

/// Offline warnings about the secrets file itself (for `check`): values not encrypted to
/// exactly the current recipients, because one was added or removed without a rekey.
pub fn file_warnings(inv: &Inventory) -> Result<Vec<Error>> {
    let Some(file) = SecretsFile::load(&SecretsFile::path_for(&inv.path))? else { return Ok(vec![]) };
    let stale = file.stale();
    if stale.is_empty() {
        return Ok(vec![]);
    }
    Ok(vec![
        Error::new(
            ErrorKind::Inventory,
            format!("secrets not encrypted to exactly the current recipients: {}", stale.join(", ")),
        )
        .at_file(&file.path)
        .field("recipients")
        .hint("a recipient was added (who cannot read them yet) or removed (who still can): run `microctl secrets rekey`, and rotate values a removed member knew"),
    ])
}
