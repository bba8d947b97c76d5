//! What a CI agent's copy of microctl needs from the controller, as template functions (the
//! `microctl_agent` role uses them; README.md, "Deploying from Jenkins"):
//!
//! - `known_host_keys()` / `known_host_keys(["web", "app"])`: known_hosts lines for the named
//!   hosts (default: every host but the one rendered), from the keys the controller already
//!   trusts for them (each host's `known_hosts` and global files), so the agent never trusts a
//!   key on first use. A host with no known key is an error naming it and how to record it.
//! - `agent_inventory(identity=PATH, known_hosts=PATH)`: the controller's inventory as the
//!   agent (the host rendered) must read it: `identity` and `known_hosts` are the agent's; a
//!   host reached `via` the agent is reached directly; every host's vars are its merged vars
//!   (its roles' defaults < `[defaults].vars` < its groups' < its own, as written: a secret stays
//!   a `{ secret = "NAME" }` reference), and groups keep no roles, so the agent reads no roles
//!   folder; `[deploy.*]` and every other setting are kept as written.
//! - `inventory_file("secrets.toml")`: a file next to the inventory (a plain name), as text.
//!
//! The data they read ([`InventoryView`]) is set by `Renderer::new` only when a template of
//! the run names one of them.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use minijinja::value::Kwargs;
use minijinja::{Error as JinjaError, ErrorKind as JinjaKind, State, Value};

use crate::inventory::{Inventory, Vars};
use crate::transport::known_hosts;

/// The names of the functions below, for `Renderer::new` to know whether to build the view.
pub const FUNCTIONS: [&str; 3] = ["known_host_keys", "agent_inventory", "inventory_file"];

/// What the functions read of the run's inventory.
pub struct InventoryView {
    pub path: PathBuf,
    pub hosts: Vec<ViewHost>,
    /// `check` renders before first contact: a host with no trusted key yet is left out of
    /// `known_host_keys()` and named in `missing` (a warning), not an error.
    pub offline: std::sync::atomic::AtomicBool,
    pub missing: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

pub struct ViewHost {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub groups: Vec<String>,
    pub files: known_hosts::Files,
    /// The defaults of its roles, merged in role order.
    pub role_defaults: Vars,
}

impl InventoryView {
    /// The view of `inv`; `role_defaults(i)` gives the merged role defaults of host `i`.
    pub fn new(inv: &Inventory, role_defaults: impl Fn(usize) -> Vars) -> InventoryView {
        let hosts = inv
            .hosts
            .iter()
            .enumerate()
            .map(|(i, h)| ViewHost {
                name: h.name.clone(),
                address: h.address.clone(),
                port: h.port,
                groups: h.groups.clone(),
                files: known_hosts::Files { user: h.known_hosts.clone(), global: h.global_known_hosts.clone() },
                role_defaults: role_defaults(i),
            })
            .collect();
        InventoryView { path: inv.path.clone(), hosts, offline: Default::default(), missing: Default::default() }
    }
}

/// Where the functions find the view (one per run, set once the inventory is known).
pub type Slot = Arc<RwLock<Option<Arc<InventoryView>>>>;

fn fail(message: impl Into<String>) -> JinjaError {
    JinjaError::new(JinjaKind::InvalidOperation, message.into())
}

fn view(slot: &Slot) -> Result<Arc<InventoryView>, JinjaError> {
    slot.read().expect("inventory view lock").clone().ok_or_else(|| fail("no inventory in this run"))
}

/// The name of the host being rendered (`host.name`).
fn this_host(state: &State) -> Result<String, JinjaError> {
    state
        .lookup("host")
        .and_then(|h| h.get_attr("name").ok())
        .and_then(|n| n.as_str().map(str::to_string))
        .ok_or_else(|| fail("no `host` in this render"))
}

/// Registers the functions on `env`, reading `slot`.
pub fn register(env: &mut minijinja::Environment<'static>, slot: &Slot) {
    let s = slot.clone();
    env.add_function("known_host_keys", move |state: &State, names: Option<Value>| -> Result<String, JinjaError> {
        let view = view(&s)?;
        let me = this_host(state)?;
        let names: Vec<String> = match names {
            None => view.hosts.iter().map(|h| h.name.clone()).filter(|n| *n != me).collect(),
            Some(v) if v.as_str().is_some() => vec![v.as_str().unwrap_or_default().to_string()],
            Some(v) => v
                .try_iter()
                .map_err(|_| fail("known_host_keys takes a list of host names"))?
                .map(|n| n.as_str().map(str::to_string).ok_or_else(|| fail("known_host_keys: a host name is a string")))
                .collect::<Result<_, _>>()?,
        };
        known_host_lines(&view, &names).map_err(fail)
    });
    let s = slot.clone();
    env.add_function("agent_inventory", move |state: &State, kwargs: Kwargs| -> Result<String, JinjaError> {
        let identity: String = kwargs.get("identity")?;
        let known: String = kwargs.get("known_hosts")?;
        kwargs.assert_all_used()?;
        agent_inventory(view(&s)?.as_ref(), &this_host(state)?, &identity, &known).map_err(fail)
    });
    let s = slot.clone();
    env.add_function("inventory_file", move |name: String| -> Result<String, JinjaError> {
        inventory_file(view(&s)?.as_ref(), &name).map_err(fail)
    });
}

/// known_hosts lines (`NAME TYPE BASE64`, unhashed) for the hosts `names`, every key the
/// controller trusts for each; a name that is no host, or a host with no trusted key, fails.
pub fn known_host_lines(view: &InventoryView, names: &[String]) -> Result<String, String> {
    let mut out = String::new();
    let mut missing = Vec::new();
    for name in names {
        let h =
            view.hosts.iter().find(|h| h.name == *name).ok_or_else(|| format!("no host `{name}` in the inventory"))?;
        let entries = known_hosts::entries(&h.files, &h.address, h.port).map_err(|e| e.to_string())?;
        let mut lines: Vec<String> = Vec::new();
        for e in entries.iter().filter(|e| !e.revoked) {
            let line = known_hosts::line(&h.address, h.port, &e.key).map_err(|e| e.to_string())?;
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
        if lines.is_empty() {
            missing.push(format!(
                "{name} ({}, in {})",
                known_hosts::lookup_name(&h.address, h.port),
                h.files.user.display()
            ));
        }
        out.extend(lines);
    }
    if !missing.is_empty() && view.offline.load(std::sync::atomic::Ordering::Relaxed) {
        view.missing.lock().expect("missing keys lock").extend(missing);
    } else if !missing.is_empty() {
        return Err(format!(
            "known_host_keys: no trusted host key for {}: record it on this controller first, after checking its fingerprint (`microctl exec HOST --accept-new -- true`)",
            missing.join(", ")
        ));
    }
    Ok(out)
}

/// The text of `name`, a plain file name in the inventory's folder.
pub fn inventory_file(view: &InventoryView, name: &str) -> Result<String, String> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !plain {
        return Err(format!("inventory_file: `{name}` is not a plain file name (letters, digits, . _ -)"));
    }
    let path = view.path.parent().unwrap_or(std::path::Path::new(".")).join(name);
    std::fs::read_to_string(&path).map_err(|e| format!("inventory_file: cannot read {}: {e}", path.display()))
}

/// The inventory as `agent` reads it (see the module doc).
pub fn agent_inventory(view: &InventoryView, agent: &str, identity: &str, known: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(&view.path).map_err(|e| format!("cannot read {}: {e}", view.path.display()))?;
    let mut doc: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: {e}", view.path.display()))?;
    let table = |v: Option<&toml::Value>| v.and_then(toml::Value::as_table).cloned().unwrap_or_default();
    let mut defaults = table(doc.get("defaults"));
    let defaults_vars = table(defaults.get("vars"));
    defaults.remove("vars");
    defaults.insert("identity".into(), identity.into());
    defaults.insert("known_hosts".into(), known.into());
    let mut groups = table(doc.get("groups"));
    let group_vars: Vars = groups.iter().map(|(n, g)| (n.clone(), toml::Value::Table(table(g.get("vars"))))).collect();
    for (_, g) in groups.iter_mut() {
        if let Some(g) = g.as_table_mut() {
            g.remove("vars");
            g.insert("roles".into(), toml::Value::Array(vec![]));
        }
    }
    let mut hosts = table(doc.get("hosts"));
    for (name, h) in hosts.iter_mut() {
        let Some(h) = h.as_table_mut() else { continue };
        let Some(v) = view.hosts.iter().find(|v| v.name == *name) else { continue };
        h.remove("identity");
        h.remove("known_hosts");
        if h.get("via").and_then(toml::Value::as_str) == Some(agent) {
            h.remove("via");
        }
        let mut vars = v.role_defaults.clone();
        let layers = [&defaults_vars].into_iter().chain(v.groups.iter().filter_map(|g| group_vars.get(g)?.as_table()));
        for layer in layers.chain([&table(h.get("vars"))]) {
            for (k, val) in layer {
                vars.insert(k.clone(), val.clone());
            }
        }
        h.remove("vars");
        if !vars.is_empty() {
            h.insert("vars".into(), toml::Value::Table(vars));
        }
    }
    doc.insert("defaults".into(), toml::Value::Table(defaults));
    doc.insert("hosts".into(), toml::Value::Table(hosts));
    if !groups.is_empty() {
        doc.insert("groups".into(), toml::Value::Table(groups));
    }
    let body = toml::to_string(&doc).map_err(|e| e.to_string())?;
    Ok(format!(
        "# Written by microctl converge from {} for the CI agent on {agent}: its key and known_hosts,\n\
         # hosts reached via {agent} reached directly, each host's vars merged (its roles' defaults\n\
         # included: no roles folder is read here). Edit the controller's inventory, not this file.\n{body}",
        view.path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const INVENTORY: &str = r#"
[defaults]
user = "ubuntu"
identity = "~/.ssh/admin"
known_hosts = "known_hosts"
vars = { env = "prod", app_port = 4000 }

[hosts.jenkins]
address = "203.0.113.10"
groups = ["ci"]

[hosts.web]
address = "10.0.1.10"
via = "jenkins"
identity = "~/.ssh/other"
groups = ["web"]

[hosts.app]
address = "10.0.2.20"
via = "web"
groups = ["app"]
vars = { workers = 3 }

[groups.ci]
roles = ["microctl_agent"]

[groups.web]
roles = ["nginx"]

[groups.app]
roles = ["app"]
vars = { app_port = 5000, secret_key = { secret = "secret_key" } }

[deploy.app]
hosts = "app"
source = "examples/microblog-lite"
"#;

    fn view(dir: &Path) -> InventoryView {
        std::fs::write(dir.join("inventory.toml"), INVENTORY).unwrap();
        let inv = Inventory::load(&dir.join("inventory.toml")).unwrap();
        InventoryView::new(&inv, |i| {
            let mut d = Vars::new();
            if inv.hosts[i].name == "app" {
                d.insert("app_port".into(), 8000.into());
                d.insert("app_root".into(), "/srv/microblog".into());
            }
            d
        })
    }

    #[test]
    fn the_agent_inventory_keeps_references_reaches_its_hops_directly_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let v = view(dir.path());
        let text = agent_inventory(&v, "jenkins", "/etc/microctl/deploy_key", "/etc/microctl/known_hosts").unwrap();
        std::fs::write(dir.path().join("agent.toml"), &text).unwrap();
        let agent = Inventory::load(&dir.path().join("agent.toml")).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let web = agent.host("web").unwrap();
        assert_eq!(web.via, None, "{text}");
        assert_eq!(web.identity.as_deref(), Some(Path::new("/etc/microctl/deploy_key")));
        assert_eq!(web.known_hosts, Path::new("/etc/microctl/known_hosts"));
        assert_eq!(agent.chain_text(agent.host("app").unwrap()), "control -> web -> app");
        let app = agent.host("app").unwrap();
        // Role default < [defaults].vars < group < host; the secret stays a reference.
        assert_eq!(app.vars.get("app_port").and_then(toml::Value::as_integer), Some(5000));
        assert_eq!(app.vars.get("app_root").and_then(toml::Value::as_str), Some("/srv/microblog"));
        assert_eq!(app.vars.get("workers").and_then(toml::Value::as_integer), Some(3));
        assert_eq!(app.vars.get("env").and_then(toml::Value::as_str), Some("prod"));
        assert!(text.contains("secret = \"secret_key\""), "{text}");
        assert!(agent.groups.values().all(|g| g.roles.is_empty()), "{text}");
        assert!(agent.deploy.contains_key("app"));
        assert!(!text.contains("~/.ssh"), "{text}");
    }

    #[test]
    fn known_host_keys_come_from_the_controllers_files_or_fail_naming_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        std::fs::write(dir.path().join("known_hosts"), format!("10.0.1.10 {key}\n")).unwrap();
        let v = view(dir.path());
        assert_eq!(known_host_lines(&v, &["web".into()]).unwrap(), format!("10.0.1.10 {key}\n"));
        let err = known_host_lines(&v, &["web".into(), "app".into()]).unwrap_err();
        assert!(err.contains("no trusted host key for app (10.0.2.20"), "{err}");
        assert!(known_host_lines(&v, &["nope".into()]).unwrap_err().contains("no host `nope`"));
    }

    #[test]
    fn inventory_file_reads_plain_names_next_to_the_inventory_only() {
        let dir = tempfile::tempdir().unwrap();
        let v = view(dir.path());
        std::fs::write(dir.path().join("secrets.toml"), "recipients = []\n").unwrap();
        assert_eq!(inventory_file(&v, "secrets.toml").unwrap(), "recipients = []\n");
        for bad in ["../x", "/etc/passwd", ".hidden", "", "a/b"] {
            assert!(inventory_file(&v, bad).is_err(), "{bad}");
        }
    }
}
