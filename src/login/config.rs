//! `microctl ssh-config`: the inventory as an OpenSSH client config, so plain `ssh`, `scp` and
//! `rsync -e ssh` reach every host the way microctl does: same address, port, user, key,
//! known_hosts file, strict host-key checking, and the jump chain as `ProxyJump` to the jump
//! host's own entry (OpenSSH passes `-F FILE` on to the jump, so chains of any depth work).
//!
//! OpenSSH closes inherited descriptors at start, so `ssh -F <(microctl ssh-config)` cannot
//! work; write the config to a file (`-F FILE`, or `Include FILE` in ~/.ssh/config).
//!
//! A config line is a command waiting to happen (`ProxyCommand`, `LocalCommand`), so every
//! value is written only if it can be quoted safely: the inventory checks its values at load
//! (see `inventory::resolve`), and this module refuses, again, a value with a control character
//! (a newline would start a line of its own), a double quote or backslash (ssh_config's quoting
//! and escapes), `${` (environment expansion) or a leading `-` (a `ProxyJump` host reaches the
//! command line of the ssh OpenSSH runs for the jump), and a `User` that is not a POSIX user
//! name (the default, `$USER`, is not from the inventory).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::inventory::{Host, Inventory, unquotable, user_name_problem};

/// The config text for `hosts` of `inv` (with every jump host they need, in file order), or an
/// error naming the host and field of a value that cannot be written safely.
pub fn render(inv: &Inventory, hosts: &[Arc<Host>]) -> Result<String> {
    let wanted: HashSet<&str> = hosts.iter().flat_map(|h| inv.chain(h)).map(|h| h.name.as_str()).collect();
    let mut out = format!(
        "# Written by `microctl ssh-config` from {}.\n# Use: ssh -F THIS_FILE HOST, or `Include THIS_FILE` in ~/.ssh/config.\n",
        inv.path.display()
    );
    for host in inv.hosts.iter().filter(|h| wanted.contains(h.name.as_str())) {
        out.push('\n');
        entry(&mut out, host)?;
    }
    Ok(out)
}

fn entry(out: &mut String, h: &Host) -> Result<()> {
    let v = |field: &str, s: &str| value(h, field, s);
    let _ = writeln!(out, "Host {}", v("name", &h.name)?);
    let _ = writeln!(out, "  HostName {}", v("address", &h.address)?);
    let _ = writeln!(out, "  Port {}", h.port);
    if let Some(why) = user_name_problem(&h.user) {
        return Err(refused(h, "user", &h.user, &format!("is not a valid user name: {why}")));
    }
    let _ = writeln!(out, "  User {}", v("user", &h.user)?);
    if let Some(id) = &h.identity {
        let _ = writeln!(out, "  IdentityFile {}", path(h, "identity", id)?);
    }
    let _ = writeln!(out, "  UserKnownHostsFile {}", path(h, "known_hosts", &h.known_hosts)?);
    let global = match h.global_known_hosts.as_slice() {
        [] => "none".to_string(),
        files => files.iter().map(|f| path(h, "global_known_hosts", f)).collect::<Result<Vec<_>>>()?.join(" "),
    };
    let _ = writeln!(out, "  GlobalKnownHostsFile {global}");
    let _ = writeln!(out, "  StrictHostKeyChecking yes");
    let _ = writeln!(out, "  ConnectTimeout {}", h.connect_timeout.as_secs_f64().ceil() as u64);
    if let Some(via) = &h.via {
        let _ = writeln!(out, "  ProxyJump {}", v("via", via)?);
    }
    Ok(())
}

/// A path for a config line: `%` doubled (OpenSSH expands `%` tokens in these paths).
fn path(h: &Host, field: &str, p: &Path) -> Result<String> {
    value(h, field, &p.display().to_string().replace('%', "%%"))
}

/// A config value, double-quoted when it has a space, `#` or `'` (inside double quotes these
/// are plain characters); refused when no quoting can carry it as one plain value.
fn value(h: &Host, field: &str, s: &str) -> Result<String> {
    if let Some(why) = unquotable(s) {
        return Err(refused(h, field, s, why));
    }
    // OpenSSH puts a `ProxyJump` host on the command line of the ssh it runs for the jump.
    if s.starts_with('-') {
        return Err(refused(h, field, s, "starts with `-` (OpenSSH would read it as an option)"));
    }
    Ok(if s.chars().any(|c| c.is_whitespace() || c == '#' || c == '\'') { format!("\"{s}\"") } else { s.to_string() })
}

fn refused(h: &Host, field: &str, s: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::Inventory,
        format!("cannot write the {field} of host `{}` into an OpenSSH config: {s:?} {why}", h.name),
    )
    .host(&h.name)
    .field(format!("hosts.{}.{field}", h.name))
    .hint("no ssh-config was written; fix the value in the inventory (or set `user` there when it comes from $USER)")
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
            render(&inv, std::slice::from_ref(app)).unwrap(),
            "# Written by `microctl ssh-config` from /srv/inv.toml.\n\
             # Use: ssh -F THIS_FILE HOST, or `Include THIS_FILE` in ~/.ssh/config.\n\
             \n\
             Host jenkins\n  HostName 203.0.113.10\n  Port 22\n  User ubuntu\n  IdentityFile /srv/keys/ci\n\
             \x20 UserKnownHostsFile \"/k/known hosts%%1\"\n  GlobalKnownHostsFile /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2\n  StrictHostKeyChecking yes\n  ConnectTimeout 3\n\
             \n\
             Host web\n  HostName 10.0.1.10\n  Port 22\n  User ubuntu\n\
             \x20 UserKnownHostsFile \"/k/known hosts%%1\"\n  GlobalKnownHostsFile /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2\n  StrictHostKeyChecking yes\n  ConnectTimeout 3\n  ProxyJump jenkins\n\
             \n\
             Host app\n  HostName 10.0.2.20\n  Port 2222\n  User deploy\n\
             \x20 UserKnownHostsFile \"/k/known hosts%%1\"\n  GlobalKnownHostsFile /etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2\n  StrictHostKeyChecking yes\n  ConnectTimeout 3\n  ProxyJump web\n"
        );
        assert_eq!(render(&inv, &inv.hosts).unwrap().matches("\nHost ").count(), 4);
    }

    /// Belt and braces: a value that got past the inventory's checks (the user from $USER, a
    /// host built in code) is refused, never written as a line of its own.
    #[test]
    fn a_value_that_cannot_be_quoted_is_refused_not_written() {
        let inv =
            Inventory::parse(Path::new("/srv/inv.toml"), "[hosts.a]\naddress = \"10.0.0.1\"\nuser = \"u\"\n").unwrap();
        let hostile = [
            ("user", "root\"\nProxyCommand touch /tmp/pwned"),
            ("user", "x\nLocalCommand id"),
            ("identity", "/k/id\nProxyCommand touch /tmp/pwned"),
            ("identity", "/k/id\" ProxyCommand=touch"),
            ("known_hosts", "/k/kh\\\" x"),
            ("known_hosts", "${HOME}/kh"),
            ("global_known_hosts", "/g\rProxyCommand x"),
            ("name", "-Fevil.conf"),
        ];
        for (field, bad) in hostile {
            let mut host = Host::clone(inv.host("a").unwrap());
            match field {
                "user" => host.user = bad.into(),
                "identity" => host.identity = Some(bad.into()),
                "known_hosts" => host.known_hosts = bad.into(),
                "name" => host.name = bad.into(),
                _ => host.global_known_hosts = vec!["/etc/ok".into(), bad.into()],
            }
            let mut one = inv.clone();
            one.hosts = vec![Arc::new(host)];
            let e = render(&one, &one.hosts).unwrap_err();
            assert_eq!(e.field, Some(format!("hosts.{}.{field}", one.hosts[0].name)), "{e}");
            assert!(e.message.starts_with(&format!("cannot write the {field} of host `{}`", one.hosts[0].name)), "{e}");
        }
        // What can be quoted is, and reads back as one value.
        let mut host = Host::clone(inv.host("a").unwrap());
        host.identity = Some("/k/it's #1".into());
        host.global_known_hosts = vec![];
        let mut one = inv.clone();
        one.hosts = vec![Arc::new(host)];
        let text = render(&one, &one.hosts).unwrap();
        assert!(text.contains("\n  IdentityFile \"/k/it's #1\"\n  UserKnownHostsFile "), "{text}");
        assert!(text.contains("\n  GlobalKnownHostsFile none\n"), "{text}");
    }
}
