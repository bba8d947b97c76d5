//! What `lab up` writes for users: the lab inventory (app reached via web, strict host keys),
//! known_hosts with the hosts' real keys (the ssh_config is `microctl ssh-config` of it). Pure text.

/// One lab host: name, public address (if on the public net), private address (if on it).
pub struct LabHost {
    pub name: &'static str,
    pub public: Option<&'static str>,
    pub private: Option<&'static str>,
    pub group: &'static str,
}

/// Every lab host: the four of the original setup, then `app2`, run only by `lab up --app2`.
pub const HOSTS: [LabHost; 5] = [
    LabHost { name: "jenkins", public: Some("198.18.0.10"), private: None, group: "ci" },
    LabHost { name: "web", public: Some("198.18.0.11"), private: Some("198.18.1.11"), group: "web" },
    LabHost { name: "monitoring", public: Some("198.18.0.12"), private: Some("198.18.1.12"), group: "monitoring" },
    LabHost { name: "app", public: None, private: Some("198.18.1.20"), group: "app" },
    LabHost { name: "app2", public: None, private: Some("198.18.1.21"), group: "app" },
];

/// The hosts a lab runs: the first four, or all five with the second app host.
pub fn hosts(app2: bool) -> &'static [LabHost] {
    if app2 { &HOSTS } else { &HOSTS[..4] }
}

impl LabHost {
    /// Where microctl connects: the public address, else the private one (through web).
    pub fn address(&self) -> &'static str {
        self.public.or(self.private).expect("every lab host has an address")
    }
}

/// The lab inventory. With `vendor_roles` false, the roles whose apt repositories the lab
/// cannot reach (jenkins, grafana) are left out; with true (`inventory-full.toml`), they are in,
/// for `converge --check`, which renders and plans them against the real hosts. Secrets are
/// references into LAB/secrets.toml ([`SECRETS`]), never values. With `app2`, the second app
/// host too.
pub fn inventory(lab_dir: &str, vendor_roles: bool, app2: bool) -> String {
    let mut s = format!(
        "# Written by `microctl lab up`: the four microblog hosts on this machine.\n\
         [defaults]\nuser = \"ubuntu\"\nidentity = \"{lab_dir}/id_ed25519\"\nknown_hosts = \"{lab_dir}/known_hosts\"\n\
         connect_timeout = 15\nvars = {{ deploy_key = {{ secret = \"deploy_key\" }} }}\n\n"
    );
    for h in hosts(app2) {
        s.push_str(&format!("[hosts.{}]\naddress = \"{}\"\n", h.name, h.address()));
        if h.public.is_none() {
            s.push_str("via = \"web\"\n");
        }
        s.push_str(&format!(
            "groups = [\"{}\"]\nvars = {{ private_address = \"{}\" }}\n\n",
            h.group,
            h.private.or(h.public).expect("an address")
        ));
    }
    let (ci, monitoring) = if vendor_roles {
        (
            "roles = [\"jenkins\", \"microctl_agent\", \"node_exporter\"]\nvars = { jenkins_key_fingerprint = \"SET-ME-FROM-PKG.JENKINS.IO\" }",
            "roles = [\"prometheus\", \"grafana\"]\nvars = { grafana_admin_password = { secret = \"grafana_admin_password\" } }",
        )
    } else {
        ("roles = [\"microctl_agent\", \"node_exporter\"]", "roles = [\"prometheus\"]")
    };
    s.push_str(&format!(
        "[groups.ci]\n{ci}\n\n[groups.web]\nroles = [\"nginx\", \"deploy_login\"]\n\n\
         [groups.app]\nroles = [\"app\", \"node_exporter\", \"deploy_login\"]\nvars = {{ app_port = 5000, secret_key = {{ secret = \"secret_key\" }} }}\n\n\
         [groups.monitoring]\n{monitoring}\n"
    ));
    s
}

/// The secrets the lab inventories refer to (in LAB/secrets.toml, encrypted to LAB/id_ed25519).
pub const SECRETS: [&str; 2] = ["secret_key", "grafana_admin_password"];

/// The jenkins agent's key pair (`secrets keygen`), a recipient of LAB/secrets.toml too.
pub const DEPLOY_KEY: &str = "deploy_key";

/// `[deploy.app]`: the example app from `source`, health-checked on app and through nginx.
pub fn deploy_section(source: &str) -> String {
    format!(
        "\n[deploy.app]\nhosts = \"app\"\nsource = \"{source}\"\nhealth_path = \"/healthz\"\nhealth_via = \"web\"\n"
    )
}

/// known_hosts lines for every address of every host, from each host's public key lines.
pub fn known_hosts(keys: &[(&LabHost, Vec<String>)]) -> String {
    let mut s = String::new();
    for (h, lines) in keys {
        for addr in h.public.iter().chain(h.private.iter()) {
            for key in lines {
                let key: Vec<&str> = key.split_whitespace().take(2).collect();
                s.push_str(&format!("{addr} {}\n", key.join(" ")));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn inventory_reaches_app_through_web_and_loads() {
        let text = inventory("/lab", false, false);
        let full = inventory("/lab", true, false);
        for secret in SECRETS {
            assert!(full.contains(&format!("{secret} = {{ secret = \"{secret}\" }}")), "{full}");
        }
        let full = crate::inventory::Inventory::parse(Path::new("/lab/inventory-full.toml"), &full).unwrap();
        assert_eq!(full.groups["monitoring"].roles, ["prometheus", "grafana"]);
        let inv = crate::inventory::Inventory::parse(Path::new("/lab/inventory.toml"), &text).unwrap();
        let app = inv.host("app").unwrap();
        assert_eq!(inv.chain_text(app), "control -> web -> app");
        assert_eq!(app.address, "198.18.1.20");
        assert_eq!(inv.host("web").unwrap().vars["private_address"].as_str(), Some("198.18.1.11"));
        assert_eq!(inv.groups["app"].roles, ["app", "node_exporter", "deploy_login"]);
        assert_eq!(inv.groups["web"].roles, ["nginx", "deploy_login"]);
        assert_eq!(inv.groups["ci"].roles, ["microctl_agent", "node_exporter"]);
        assert!(text.contains("vars = { deploy_key = { secret = \"deploy_key\" } }"), "{text}");
        assert!(inv.host("app2").is_none());
        let two = inventory("/lab", false, true);
        let two = crate::inventory::Inventory::parse(Path::new("/lab/inventory.toml"), &two).unwrap();
        assert_eq!(two.chain_text(two.host("app2").unwrap()), "control -> web -> app2");
        assert_eq!(two.groups["app"].hosts, ["app", "app2"]);
        // The lab's ssh_config is `microctl ssh-config` of this inventory: app goes through web.
        let cfg = crate::login::config::render(&two, &two.hosts).unwrap();
        for (name, addr) in [("app", "198.18.1.20"), ("app2", "198.18.1.21")] {
            let entry = cfg.split("\n\n").find(|e| e.starts_with(&format!("Host {name}\n"))).expect("entry");
            let entry = format!("{entry}\n");
            assert!(entry.contains(&format!("  HostName {addr}\n")) && entry.contains("  ProxyJump web\n"), "{entry}");
            assert!(entry.contains("  UserKnownHostsFile /lab/known_hosts\n"), "{entry}");
        }
    }

    /// The lab inventory with the repo's roles: jenkins gets the agent's files (its
    /// known_hosts from the lab's, its inventory read as jenkins reads it), web and app the
    /// deploy key, each from the address the agent comes from.
    #[test]
    fn the_agent_and_its_logins_render_for_the_lab() {
        let dir = tempfile::tempdir().unwrap();
        let lab = dir.path().display().to_string();
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl root@h";
        let keys: Vec<_> = hosts(false).iter().map(|h| (h, vec![key.to_string()])).collect();
        std::fs::write(dir.path().join("known_hosts"), known_hosts(&keys)).unwrap();
        std::fs::write(dir.path().join("secrets.toml"), "recipients = []\n").unwrap();
        let path = dir.path().join("inventory.toml");
        std::fs::write(&path, inventory(&lab, false, false) + &deploy_section("/src/app")).unwrap();
        let inv = crate::inventory::Inventory::load(&path).unwrap();
        let wanted: Vec<(String, crate::error::Error)> =
            ["microctl_agent", "node_exporter", "nginx", "deploy_login", "app", "prometheus"]
                .iter()
                .map(|r| (r.to_string(), crate::error::Error::usage("")))
                .collect();
        let roles = crate::role::RoleSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("roles"), &wanted)
            .unwrap_or_else(|e| panic!("{}", e[0]));
        let mut extra = crate::inventory::Vars::new();
        extra.insert("deploy_key".into(), "[secret deploy_key]".into());
        let renderer = crate::role::Renderer::new(&inv, &roles, &extra);
        for h in &inv.hosts {
            renderer.set_facts(h, &crate::facts::Facts::default(), "");
        }
        let render = |name: &str| renderer.render(inv.host(name).unwrap(), None).unwrap_or_else(|e| panic!("{e}"));
        let jenkins = render("jenkins");
        let file = |dest: &str| {
            let f = jenkins.files.iter().find(|f| f.dest == dest).unwrap_or_else(|| panic!("no {dest}"));
            (String::from_utf8_lossy(&f.content).into_owned(), f.meta.owner.clone(), f.meta.mode)
        };
        let (known, _, _) = file("/etc/microctl/known_hosts");
        for addr in ["198.18.0.11 ", "198.18.0.12 ", "198.18.1.20 "] {
            assert!(known.contains(addr), "{known}");
        }
        assert!(!known.contains("198.18.0.10 "), "its own key: {known}");
        let (agent_inv, _, _) = file("/etc/microctl/inventory.toml");
        let agent_path = dir.path().join("agent.toml");
        std::fs::write(&agent_path, &agent_inv).unwrap();
        let agent = crate::inventory::Inventory::load(&agent_path).unwrap();
        assert_eq!(agent.host("app").unwrap().identity.as_deref(), Some(Path::new("/etc/microctl/deploy_key")));
        assert_eq!(agent.chain_text(agent.host("app").unwrap()), "control -> web -> app");
        assert!(agent_inv.lines().all(|l| l.starts_with('#') || !l.contains(&lab)), "{agent_inv}");
        let (secret, owner, mode) = file("/etc/microctl/deploy_key");
        assert_eq!((secret.as_str(), owner.as_deref(), mode), ("[secret deploy_key]", Some("jenkins"), Some(0o600)));
        let binary = jenkins.files.iter().find(|f| f.dest == "/usr/local/bin/microctl").unwrap();
        assert_eq!(*binary.content, std::fs::read(std::env::current_exe().unwrap()).unwrap());
        assert!(jenkins.users.iter().any(|u| u.name == "jenkins"));
        for (host, from) in [("web", "198.18.0.10"), ("app", "198.18.1.11")] {
            let d = render(host);
            let k = d.authorized_keys.iter().find(|k| k.user == "ubuntu").unwrap_or_else(|| panic!("{host}: no key"));
            assert!(k.line.starts_with(&format!("from=\"{from}\" ssh-ed25519 ")), "{host}: {}", k.line);
        }
    }

    #[test]
    fn known_hosts_cover_every_address() {
        let keys = vec![(&HOSTS[1], vec!["ssh-ed25519 AAAAkey root@web".to_string()])];
        assert_eq!(known_hosts(&keys), "198.18.0.11 ssh-ed25519 AAAAkey\n198.18.1.11 ssh-ed25519 AAAAkey\n");
    }
}
