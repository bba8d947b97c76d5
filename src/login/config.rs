//! `microctl ssh-config`: the inventory as an OpenSSH client config, so plain `ssh`, `scp` and
//! `rsync -e ssh` reach every host the way microctl does: same address, port, user, key,
//! known_hosts file, strict host-key checking, and the jump chain as `ProxyJump` to the jump
//! host's own entry (OpenSSH passes `-F FILE` on to the jump, so chains of any depth work).
//!
//! OpenSSH closes inherited descriptors at start, so `ssh -F <(microctl ssh-config)` cannot
//! work; write the config to a file (`-F FILE`, or `Include FILE` in ~/.ssh/config).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use crate::inventory::{Host, Inventory};

/// The config text for `hosts` of `inv` (with every jump host they need, in file order).
pub fn render(inv: &Inventory, hosts: &[&Host]) -> String {
    let wanted: HashSet<&str> = hosts.iter().flat_map(|h| inv.chain(h)).map(|h| h.name.as_str()).collect();
    let mut out = format!(
        "# Written by `microctl ssh-config` from {}.\n# Use: ssh -F THIS_FILE HOST, or `Include THIS_FILE` in ~/.ssh/config.\n",
        inv.path.display()
    );
    for host in inv.hosts.iter().filter(|h| wanted.contains(h.name.as_str())) {
        out.push('\n');
        entry(&mut out, host);
    }
    out
}

fn entry(out: &mut String, h: &Host) {
    let _ = writeln!(out, "Host {}", h.name);
    let _ = writeln!(out, "  HostName {}", h.address);
    let _ = writeln!(out, "  Port {}", h.port);
    let _ = writeln!(out, "  User {}", value(&h.user));
    if let Some(id) = &h.identity {
        let _ = writeln!(out, "  IdentityFile {}", path(id));
    }
    let _ = writeln!(out, "  UserKnownHostsFile {}", path(&h.known_hosts));
    let _ = writeln!(out, "  StrictHostKeyChecking yes");
    let _ = writeln!(out, "  ConnectTimeout {}", h.connect_timeout.as_secs_f64().ceil() as u64);
    if let Some(via) = &h.via {
        let _ = writeln!(out, "  ProxyJump {via}");
    }
}

/// A path for a config line: `%` doubled (OpenSSH expands `%` tokens in these paths).
fn path(p: &Path) -> String {
    value(&p.display().to_string().replace('%', "%%"))
}

/// A config value, double-quoted when it has spaces (ssh_config's only quoting).
fn value(s: &str) -> String {
    if s.chars().any(|c| c.is_whitespace() || c == '#') { format!("\"{s}\"") } else { s.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_become_proxy_jumps_to_each_hops_own_entry() {
        let inv = Inventory::parse(
            Path::new("/srv/inv.toml"),
            "[defaults]\nuser = \"ubuntu\"\nknown_hosts = \"/k/known hosts%1\"\nconnect_timeout = 2.5\n\
             [hosts.jenkins]\naddress = \"203.0.113.10\"\nidentity = \"keys/ci\"\n\
             [hosts.web]\naddress = \"10.0.1.10\"\nvia = \"jenkins\"\n\
             [hosts.app]\naddress = \"10.0.2.20\"\nport = 2222\nuser = \"deploy\"\nvia = \"web\"\n\
             [hosts.other]\naddress = \"other.example\"\n",
        )
        .unwrap();
        let app = inv.host("app").unwrap();
        assert_eq!(
            render(&inv, &[app]),
            "# Written by `microctl ssh-config` from /srv/inv.toml.\n\
             # Use: ssh -F THIS_FILE HOST, or `Include THIS_FILE` in ~/.ssh/config.\n\
             \n\
             Host jenkins\n  HostName 203.0.113.10\n  Port 22\n  User ubuntu\n  IdentityFile /srv/keys/ci\n\
             \x20 UserKnownHostsFile \"/k/known hosts%%1\"\n  StrictHostKeyChecking yes\n  ConnectTimeout 3\n\
             \n\
             Host web\n  HostName 10.0.1.10\n  Port 22\n  User ubuntu\n\
             \x20 UserKnownHostsFile \"/k/known hosts%%1\"\n  StrictHostKeyChecking yes\n  ConnectTimeout 3\n  ProxyJump jenkins\n\
             \n\
             Host app\n  HostName 10.0.2.20\n  Port 2222\n  User deploy\n\
             \x20 UserKnownHostsFile \"/k/known hosts%%1\"\n  StrictHostKeyChecking yes\n  ConnectTimeout 3\n  ProxyJump web\n"
        );
        let all: Vec<&Host> = inv.hosts.iter().collect();
        assert_eq!(render(&inv, &all).matches("\nHost ").count(), 4);
    }
}
