//! Masking for a command that resolves no secrets (`exec`): the values the selected hosts'
//! vars refer to are registered with the redactor when they can be read without asking: an
//! `env` value that is set, a secret one of your keys decrypts without a prompt (an encrypted
//! key opens only with `MICROCTL_KEY_PASSPHRASE`). Nothing fails and nothing is asked: a value
//! that cannot be read is not masked (README's redaction table says so).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use super::refs::{Reference, reference};
use super::{Identities, SecretsFile, redact};
use crate::inventory::{Host, Inventory, Vars};

/// Registers every readable value the vars of `hosts` (all their layers) refer to.
pub fn register_readable(inv: &Inventory, hosts: &[Arc<Host>]) {
    let mut found = BTreeSet::new();
    for host in hosts {
        for layer in host.vars.layers() {
            collect(layer, &mut found);
        }
    }
    let mut secrets: Option<Option<(SecretsFile, Identities)>> = None;
    for r in &found {
        let value = match r {
            Reference::Env(name) => std::env::var(name).ok(),
            Reference::Secret(name) => secrets
                .get_or_insert_with(|| open(inv, hosts))
                .as_ref()
                .and_then(|(file, ids)| file.get(name, ids).ok()),
        };
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            redact::register(r.name(), &v);
        }
    }
}

/// The secrets file and the keys that need no prompt, if both are there.
fn open(inv: &Inventory, hosts: &[Arc<Host>]) -> Option<(SecretsFile, Identities)> {
    let file = SecretsFile::load(&SecretsFile::path_for(&inv.path)).ok()??;
    let identities: Vec<PathBuf> = hosts.iter().filter_map(|h| h.identity.clone()).collect();
    Some((file, Identities::find_without_prompt(&identities).ok()?))
}

fn collect(vars: &Vars, found: &mut BTreeSet<Reference>) {
    fn walk(value: &toml::Value, found: &mut BTreeSet<Reference>) {
        if let Some(r) = reference(value) {
            found.insert(r);
            return;
        }
        match value {
            toml::Value::Table(t) => t.values().for_each(|v| walk(v, found)),
            toml::Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    vars.values().for_each(|v| walk(v, found));
}
