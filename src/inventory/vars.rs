//! A host's vars as layers shared between hosts: `[defaults].vars`, then each group's vars in
//! the order of the host's `groups` list, then the host's own; a later layer's key wins.
//!
//! The shared layers are `Arc`s, so a host costs its own vars and one pointer per layer, not a
//! copy of everything it inherits: an inventory whose `[defaults]` hold a list of every host
//! (e.g. `all_hosts` for Prometheus) stays linear in the number of hosts, not quadratic. The
//! merged view (`get`, `iter`, `Index`, `Serialize`) is what every reader sees, exactly as a
//! merged table would be (keys in first-seen order).

use std::sync::Arc;

use indexmap::IndexMap;
use serde::Serialize;

use super::Vars;

/// The merged vars of one host, kept as shared layers plus the host's own.
#[derive(Debug, Clone, Default)]
pub struct HostVars {
    /// Defaults, then the host's groups in order.
    shared: Vec<Arc<Vars>>,
    own: Vars,
}

impl HostVars {
    pub fn new(shared: Vec<Arc<Vars>>, own: Vars) -> HostVars {
        HostVars { shared, own }
    }

    /// The value `key` has for this host (the last layer that sets it).
    pub fn get(&self, key: &str) -> Option<&toml::Value> {
        self.own.get(key).or_else(|| self.shared.iter().rev().find_map(|l| l.get(key)))
    }

    /// Every var and its winning value, keys in the order they were first set.
    pub fn iter(&self) -> std::vec::IntoIter<(&String, &toml::Value)> {
        let mut merged: IndexMap<&str, (&String, &toml::Value)> = IndexMap::new();
        for layer in self.shared.iter().map(|l| &**l).chain([&self.own]) {
            for (k, v) in layer {
                merged.insert(k.as_str(), (k, v));
            }
        }
        merged.into_values().collect::<Vec<_>>().into_iter()
    }

    pub fn is_empty(&self) -> bool {
        self.own.is_empty() && self.shared.iter().all(|l| l.is_empty())
    }

    /// The host's own vars (`[hosts.NAME].vars`), e.g. to resolve secret references in them.
    pub fn own_mut(&mut self) -> &mut Vars {
        &mut self.own
    }

    /// Replaces the shared layers (after they were changed in the inventory).
    pub fn relink(&mut self, shared: Vec<Arc<Vars>>) {
        self.shared = shared;
    }
}

impl std::ops::Index<&str> for HostVars {
    type Output = toml::Value;

    /// Like `toml::Table`'s: panics when the host has no such var.
    fn index(&self, key: &str) -> &toml::Value {
        self.get(key).unwrap_or_else(|| panic!("no var `{key}`"))
    }
}

impl Serialize for HostVars {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Vars {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn later_layers_win_and_keys_keep_their_first_place() {
        let defaults = Arc::new(table("env = \"prod\"\nport = 1\nall = [\"a\", \"b\"]"));
        let group = Arc::new(table("port = 2\ntier = \"web\""));
        let vars = HostVars::new(vec![defaults.clone(), group], table("tier = \"edge\"\nown = true"));
        let merged: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(merged, ["env=\"prod\"", "port=2", "all=[\"a\", \"b\"]", "tier=\"edge\"", "own=true"]);
        assert_eq!(vars["port"].as_integer(), Some(2));
        assert_eq!(vars.get("missing"), None);
        assert_eq!(
            serde_json::to_string(&vars).unwrap(),
            r#"{"env":"prod","port":2,"all":["a","b"],"tier":"edge","own":true}"#
        );
        assert!(!vars.is_empty() && HostVars::default().is_empty());
    }

    #[test]
    fn hosts_share_inherited_layers() {
        let defaults = Arc::new(table("all = [\"a\", \"b\"]"));
        let hosts: Vec<HostVars> = (0..3).map(|_| HostVars::new(vec![defaults.clone()], Vars::new())).collect();
        assert_eq!(Arc::strong_count(&defaults), 4, "one table, shared, not copied per host");
        assert!(hosts.iter().all(|h| h["all"].as_array().unwrap().len() == 2));
    }
}
