//! Dynamic completion of names from the inventory (clap_complete's `CompleteEnv` protocol):
//! host patterns complete to host and group names, `deploy` to the `[deploy.NAME]` tables.
//! The inventory is the one the command line being completed names (`-i FILE`), else
//! `MICROCTL_INVENTORY`, else `inventory.toml`; an inventory that does not load offers nothing.

use std::ffi::OsString;
use std::path::PathBuf;

use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};

use crate::inventory::Inventory;

/// Host and group names (and `all`), for every host pattern.
pub fn hosts() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let Some(inv) = inventory() else { return Vec::new() };
        let mut out = vec![CompletionCandidate::new("all").help(Some("every host".into()))];
        out.extend(
            inv.groups.keys().filter(|g| *g != "all").map(|g| CompletionCandidate::new(g).help(Some("group".into()))),
        );
        out.extend(inv.hosts.iter().map(|h| CompletionCandidate::new(&h.name).help(Some("host".into()))));
        out
    })
}

/// Host names only (`ssh HOST`).
pub fn host_names() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        inventory().map(|inv| inv.hosts.iter().map(|h| CompletionCandidate::new(&h.name)).collect()).unwrap_or_default()
    })
}

/// The `[deploy.NAME]` tables (`deploy NAME`).
pub fn deploys() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        inventory().map(|inv| inv.deploy.keys().map(CompletionCandidate::new).collect()).unwrap_or_default()
    })
}

/// The inventory of the command line being completed (the words after `--`).
fn inventory() -> Option<Inventory> {
    Inventory::load(&inventory_path(std::env::args_os().collect())).ok()
}

fn inventory_path(args: Vec<OsString>) -> PathBuf {
    let words: Vec<String> = args.into_iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let line = words.iter().position(|w| w == "--").map(|i| &words[i + 1..]).unwrap_or(&words[..]);
    let mut found = None;
    for (i, w) in line.iter().enumerate() {
        if w == "--" {
            break; // a remote command follows
        }
        if let Some(v) = w.strip_prefix("--inventory=") {
            found = Some(v.to_string());
        } else if w == "-i" || w == "--inventory" {
            found = line.get(i + 1).cloned();
        } else if let Some(v) = w.strip_prefix("-i").filter(|v| !v.is_empty() && !w.starts_with("--")) {
            found = Some(v.to_string());
        }
    }
    found
        .or_else(|| std::env::var("MICROCTL_INVENTORY").ok())
        .unwrap_or_else(|| crate::inventory::DEFAULT_PATH.into())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(line: &[&str]) -> PathBuf {
        inventory_path(line.iter().map(OsString::from).collect())
    }

    #[test]
    fn the_inventory_is_the_one_the_line_names() {
        assert_eq!(path(&["microctl", "--", "microctl", "-i", "a.toml", "converge", "w"]), PathBuf::from("a.toml"));
        assert_eq!(
            path(&["microctl", "--", "microctl", "converge", "--inventory=b.toml", "w"]),
            PathBuf::from("b.toml")
        );
        assert_eq!(path(&["microctl", "--", "microctl", "-ic.toml", "exec", "w"]), PathBuf::from("c.toml"));
    }
}
