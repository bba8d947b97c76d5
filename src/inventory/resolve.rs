//! Raw inventory -> resolved [`Inventory`]: inherit `[defaults]`, merge vars, check every name,
//! address, port and `via` chain, and report each problem at its file, line and column.
//!
//! Values that reach OpenSSH's config (`microctl ssh-config`, which users `Include`) or a
//! command line are checked here, at load, so a teammate's inventory cannot smuggle a line into
//! either: `user` must be a POSIX user name as `useradd` takes it, and the paths (`identity`,
//! `known_hosts`, `global_known_hosts`) may hold no control character (a newline starts a new
//! config line, e.g. `ProxyCommand`), no quote or backslash (ssh_config's quoting and escapes)
//! and no `${` (ssh_config expands environment variables in paths).

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::input;
use super::raw::{RawGroup, RawHost, RawInventory};
use super::{DEFAULT_APT_LOCK_TIMEOUT, DeploySection, Group, Host, HostVars, Inventory, Vars};
use crate::error::{Error, ErrorKind, LineIndex, Result};

const DEFAULT_PORT: u16 = 22;
const DEFAULT_CONNECT_TIMEOUT: f64 = 10.0;
const DEFAULT_MAX_SESSIONS: i64 = 8;
const DEFAULT_STATE_DIR: &str = "/var/lib/microctl";
/// OpenSSH's default `GlobalKnownHostsFile`.
const DEFAULT_GLOBAL_KNOWN_HOSTS: [&str; 2] = ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"];

/// Reports errors against one inventory file.
struct Reporter<'a> {
    path: &'a Path,
    lines: LineIndex,
}

impl Reporter<'_> {
    fn at(&self, span: Range<usize>, message: impl Into<String>) -> Error {
        let (line, col) = self.lines.line_col(span.start);
        Error::new(ErrorKind::Inventory, message).at_file(self.path).at_line(line, col)
    }

    fn line(&self, span: &Range<usize>) -> usize {
        self.lines.line_col(span.start).0
    }
}

pub fn resolve(path: &Path, text: &str) -> Result<Inventory> {
    let rep = Reporter { path, lines: LineIndex::new(text) };
    let raw: RawInventory = toml::from_str(text)
        .map_err(|e| input::toml_error(path, text, &rep.lines, &e, ErrorKind::Inventory, "inventory", "README.md"))?;
    let base_dir = path.parent().unwrap_or(Path::new("."));

    let defaults = match &raw.defaults {
        Some(d) => {
            let span = d.span();
            let d = d.get_ref();
            for (field, set) in
                [("address", d.address.is_some()), ("via", d.via.is_some()), ("groups", d.groups.is_some())]
            {
                if set {
                    return Err(rep
                        .at(span, format!("`{field}` cannot be set in [defaults]"))
                        .field(format!("defaults.{field}"))
                        .hint(format!("set `{field}` on each [hosts.NAME] table instead")));
                }
            }
            check_login_values(&rep, d, "defaults")?;
            d.clone()
        }
        None => RawHost::default(),
    };

    let names: HashSet<&str> = raw.hosts.keys().map(|k| k.get_ref().as_str()).collect();
    let mut hosts = Vec::new();
    for (name, host) in &raw.hosts {
        hosts.push(resolve_host(&rep, base_dir, name, host, &defaults, &names)?);
    }
    check_via_cycles(&rep, &raw, &hosts)?;

    let groups = resolve_groups(&rep, &raw, &mut hosts)?;
    let defaults_vars = Arc::new(dated(defaults.vars.clone()));

    let deploy = raw
        .deploy
        .iter()
        .map(|(name, table)| {
            let mut section =
                DeploySection { table: toml::Table::new(), line: rep.line(&table.span()), fields: BTreeMap::new() };
            for (key, value) in table.get_ref() {
                section.fields.insert(key.get_ref().clone(), rep.lines.line_col(value.span().start));
                section.table.insert(key.get_ref().clone(), value.get_ref().clone());
            }
            (name.get_ref().clone(), section)
        })
        .collect();

    let mut inv = Inventory::new(path.to_path_buf(), hosts, groups, deploy, defaults_vars);
    inv.relink_vars();
    Ok(inv)
}

fn resolve_host(
    rep: &Reporter,
    base_dir: &Path,
    name: &Spanned<String>,
    host: &Spanned<RawHost>,
    defaults: &RawHost,
    names: &HashSet<&str>,
) -> Result<Host> {
    let n = name.get_ref();
    let h = host.get_ref();
    check_name(rep, name, "host")?;
    let address = h.address.as_ref().ok_or_else(|| {
        rep.at(host.span(), format!("host `{n}` has no `address`"))
            .field(format!("hosts.{n}.address"))
            .hint("add `address = \"IP or DNS name\"` to the host")
    })?;
    check_address(rep, address, n)?;
    check_login_values(rep, h, &format!("hosts.{n}"))?;

    let port = pick(&h.port, &defaults.port);
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => u16::try_from(*p.get_ref()).ok().filter(|p| *p > 0).ok_or_else(|| {
            rep.at(p.span(), format!("port {} is out of range", p.get_ref()))
                .field(format!("hosts.{n}.port"))
                .hint("use a TCP port from 1 to 65535")
        })?,
    };

    if let Some(via) = &h.via {
        if !names.contains(via.get_ref().as_str()) {
            return Err(rep
                .at(via.span(), format!("host `{n}` goes via unknown host `{}`", via.get_ref()))
                .field(format!("hosts.{n}.via"))
                .hint(format!("define [hosts.{}] or set `via` to one of: {}", via.get_ref(), sorted(names))));
        }
        if via.get_ref() == n {
            return Err(rep
                .at(via.span(), format!("`via` cycle: {n} -> {n}"))
                .field(format!("hosts.{n}.via"))
                .hint("a host cannot be its own jump host; remove `via` or name another host"));
        }
    }

    let max_sessions = pick(&h.max_sessions, &defaults.max_sessions)
        .map(|m| (*m.get_ref(), m.span()))
        .unwrap_or((DEFAULT_MAX_SESSIONS, 0..0));
    if !(1..=1000).contains(&max_sessions.0) {
        return Err(rep
            .at(max_sessions.1, format!("max_sessions {} is out of range", max_sessions.0))
            .field(format!("hosts.{n}.max_sessions"))
            .hint("use a number from 1 to 1000, below the server's MaxSessions (OpenSSH default 10)"));
    }

    let timeout = pick(&h.connect_timeout, &defaults.connect_timeout)
        .map(|t| (*t.get_ref(), t.span()))
        .unwrap_or((DEFAULT_CONNECT_TIMEOUT, 0..0));
    if !(timeout.0 > 0.0 && timeout.0 <= 3600.0) {
        return Err(rep
            .at(timeout.1, format!("connect_timeout {} is out of range", timeout.0))
            .field(format!("hosts.{n}.connect_timeout"))
            .hint("use seconds, more than 0 and at most 3600"));
    }

    let session_timeout = pick(&h.timeout, &defaults.timeout)
        .map(|t| (*t.get_ref(), t.span()))
        .unwrap_or((super::DEFAULT_TIMEOUT.as_secs_f64(), 0..0));
    if !(session_timeout.0 >= 1.0 && session_timeout.0 <= 86400.0) {
        return Err(rep
            .at(session_timeout.1, format!("timeout {} is out of range", session_timeout.0))
            .field(format!("hosts.{n}.timeout"))
            .hint("use seconds, at least 1 and at most 86400"));
    }

    let apt_lock = pick(&h.apt_lock_timeout, &defaults.apt_lock_timeout)
        .map(|t| (*t.get_ref(), t.span()))
        .unwrap_or((DEFAULT_APT_LOCK_TIMEOUT as f64, 0..0));
    if !(0.0..=86400.0).contains(&apt_lock.0) || apt_lock.0.fract() != 0.0 {
        return Err(rep
            .at(apt_lock.1, format!("apt_lock_timeout {} is out of range", apt_lock.0))
            .field(format!("hosts.{n}.apt_lock_timeout"))
            .hint("use whole seconds, from 0 (do not wait) to 86400"));
    }

    let user = pick(&h.user, &defaults.user).map(|u| u.get_ref().clone()).unwrap_or_else(local_user);
    let identity = pick(&h.identity, &defaults.identity).map(|p| expand_path(base_dir, p.get_ref()));
    let known_hosts = pick(&h.known_hosts, &defaults.known_hosts)
        .map(|p| expand_path(base_dir, p.get_ref()))
        .unwrap_or_else(|| expand_path(base_dir, "~/.ssh/known_hosts"));
    let global_known_hosts = match pick(&h.global_known_hosts, &defaults.global_known_hosts) {
        Some(paths) => paths.iter().map(|p| expand_path(base_dir, p.get_ref())).collect(),
        None => DEFAULT_GLOBAL_KNOWN_HOSTS.iter().map(PathBuf::from).collect(),
    };
    let state_dir = pick(&h.state_dir, &defaults.state_dir)
        .map(|s| s.get_ref().clone())
        .unwrap_or_else(|| DEFAULT_STATE_DIR.to_string());
    let groups = h
        .groups
        .iter()
        .flatten()
        .map(|g| check_name(rep, g, "group").map(|_| g.get_ref().clone()))
        .collect::<Result<Vec<_>>>()?;

    Ok(Host {
        name: n.clone(),
        address: address.get_ref().clone(),
        port,
        user,
        identity,
        known_hosts,
        global_known_hosts,
        via: h.via.as_ref().map(|v| v.get_ref().clone()),
        groups,
        // The inherited layers (defaults, groups) are linked in once groups are known.
        vars: HostVars::new(vec![], dated(h.vars.clone())),
        connect_timeout: Duration::from_secs_f64(timeout.0),
        timeout: Duration::from_secs_f64(session_timeout.0),
        max_sessions: max_sessions.0 as usize,
        apt_lock_timeout: apt_lock.0 as u64,
        become_root: h.become_root.or(defaults.become_root).unwrap_or(true),
        state_dir,
        line: rep.line(&name.span()),
    })
}

fn pick<'a, T>(own: &'a Option<T>, default: &'a Option<T>) -> Option<&'a T> {
    own.as_ref().or(default.as_ref())
}

fn check_name(rep: &Reporter, name: &Spanned<String>, what: &str) -> Result<()> {
    let n = name.get_ref();
    // Not `-` first: a host name reaches OpenSSH's command line as a jump host (`ProxyJump`).
    let ok = !n.is_empty()
        && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !n.starts_with('-')
        && n != "all";
    if ok {
        Ok(())
    } else {
        Err(rep
            .at(name.span(), format!("invalid {what} name `{n}`"))
            .hint("names use letters, digits, `-` (not first), `_` and `.`; `all` is reserved"))
    }
}

fn check_address(rep: &Reporter, address: &Spanned<String>, host: &str) -> Result<()> {
    let a = address.get_ref();
    let valid_dns = !a.is_empty()
        && a.len() <= 253
        && a.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if a.parse::<IpAddr>().is_ok() || valid_dns {
        Ok(())
    } else {
        Err(rep
            .at(address.span(), format!("invalid address `{a}` for host `{host}`"))
            .field(format!("hosts.{host}.address"))
            .hint("use an IPv4/IPv6 address or a DNS name, without user or port (set `user` and `port` instead)"))
    }
}

/// Checks the values of one `[hosts.NAME]` or `[defaults]` table (`table`) that reach OpenSSH's
/// config or a command line (see the module doc).
fn check_login_values(rep: &Reporter, h: &RawHost, table: &str) -> Result<()> {
    if let Some(user) = &h.user
        && let Some(why) = user_name_problem(user.get_ref())
    {
        return Err(rep
            .at(user.span(), format!("{table}.user: {:?} is not a valid user name: {why}", user.get_ref()))
            .field(format!("{table}.user"))
            .hint("write the login name as it is on the host: letters, digits, `.`, `_` and `-` (not first), at most 32 characters, as `useradd` takes it"));
    }
    let paths = [("identity", &h.identity), ("known_hosts", &h.known_hosts)];
    let single = paths.into_iter().filter_map(|(field, p)| p.as_ref().map(|p| (field.to_string(), p)));
    let listed =
        h.global_known_hosts.iter().flatten().enumerate().map(|(i, p)| (format!("global_known_hosts[{i}]"), p));
    for (field, path) in single.chain(listed) {
        if let Some(why) = path_problem(path.get_ref()) {
            return Err(rep
                .at(path.span(), format!("{table}.{field}: the path {:?} {why}", path.get_ref()))
                .field(format!("{table}.{field}"))
                .hint("paths reach OpenSSH's config (`microctl ssh-config`): use a path without control characters, quotes, backslashes or `${` (rename or link the file)"));
        }
    }
    Ok(())
}

/// Why `user` is not a user name as `useradd` takes it (POSIX's portable names: the portable
/// filename characters, `-` not first, not all digits, not `.` or `..`), or `None`. Such a
/// name needs no quoting in ssh_config or on a command line.
pub fn user_name_problem(user: &str) -> Option<&'static str> {
    if user.is_empty() {
        return Some("it is empty");
    }
    if let Some(c) = user.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Some(if c.is_control() {
            "it has a control character"
        } else if c == '"' || c == '\'' {
            "it has a quote"
        } else if c.is_whitespace() {
            "it has a space"
        } else {
            "it has a character other than letters, digits, `.`, `_` and `-`"
        });
    }
    if user.starts_with('-') {
        return Some("it starts with `-`");
    }
    if user.bytes().all(|b| b.is_ascii_digit()) {
        return Some("it is all digits (a user id, not a name)");
    }
    if user == "." || user == ".." {
        return Some("it is `.` or `..`");
    }
    if user.len() > 32 {
        return Some("it is longer than 32 characters");
    }
    None
}

/// Why `path` cannot reach OpenSSH's config or a command line as written, or `None`.
fn path_problem(path: &str) -> Option<&'static str> {
    if path.contains('\'') { Some("has a quote") } else { unquotable(path) }
}

/// Why no ssh_config quoting carries `value` as one plain value, or `None`: it is empty, or
/// has a control character (a newline starts a line of its own), a double quote or backslash
/// (ssh_config's quoting and escapes) or `${` (which OpenSSH expands as an environment
/// variable). `microctl ssh-config` checks every value it writes with this, again.
pub fn unquotable(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("is empty")
    } else if value.chars().any(char::is_control) {
        Some("has a control character")
    } else if value.contains('"') {
        Some("has a quote")
    } else if value.contains('\\') {
        Some("has a backslash")
    } else if value.contains("${") {
        Some("has `${` (OpenSSH would expand it as an environment variable)")
    } else {
        None
    }
}

/// Follows every `via` chain; a chain that comes back to a host it passed is a cycle.
fn check_via_cycles(rep: &Reporter, raw: &RawInventory, hosts: &[Host]) -> Result<()> {
    let via: BTreeMap<&str, &str> =
        hosts.iter().filter_map(|h| h.via.as_deref().map(|v| (h.name.as_str(), v))).collect();
    for start in hosts {
        let mut path = vec![start.name.as_str()];
        let mut cur = start.name.as_str();
        while let Some(&next) = via.get(cur) {
            if let Some(pos) = path.iter().position(|p| *p == next) {
                let cycle = path[pos..].iter().chain([&next]).copied().collect::<Vec<_>>().join(" -> ");
                let first = path[pos];
                let span = raw
                    .hosts
                    .iter()
                    .find(|(k, _)| k.get_ref() == first)
                    .and_then(|(_, h)| h.get_ref().via.as_ref().map(|v| v.span()))
                    .unwrap_or(0..0);
                return Err(rep
                    .at(span, format!("`via` cycle: {cycle}"))
                    .field(format!("hosts.{first}.via"))
                    .hint("jump chains must end at a host reached directly; remove `via` from one host of the cycle"));
            }
            path.push(next);
            cur = next;
        }
    }
    Ok(())
}

fn resolve_groups(rep: &Reporter, raw: &RawInventory, hosts: &mut [Host]) -> Result<BTreeMap<String, Group>> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for host in hosts.iter() {
        for g in &host.groups {
            let group = groups.entry(g.clone()).or_insert_with(|| Group {
                name: g.clone(),
                hosts: vec![],
                roles: vec![],
                vars: Arc::new(Vars::new()),
                line: 0,
            });
            group.hosts.push(host.name.clone());
        }
    }
    for (name, table) in &raw.groups {
        check_name(rep, name, "group")?;
        let n = name.get_ref();
        let RawGroup { roles, vars } = table.get_ref();
        let Some(group) = groups.get_mut(n) else {
            return Err(rep
                .at(name.span(), format!("group `{n}` has no hosts"))
                .field(format!("groups.{n}"))
                .hint(format!("add \"{n}\" to the `groups` list of at least one host, or remove [groups.{n}]")));
        };
        group.roles = roles.iter().map(|r| r.get_ref().clone()).collect();
        group.line = rep.line(&table.span());
        group.vars = Arc::new(dated(vars.clone()));
    }
    Ok(groups)
}

/// Vars as written, date-times as their text.
fn dated(vars: Option<Vars>) -> Vars {
    let mut vars = vars.unwrap_or_default();
    super::table_dates_as_text(&mut vars);
    vars
}

fn sorted(names: &HashSet<&str>) -> String {
    let mut v: Vec<_> = names.iter().copied().collect();
    v.sort();
    v.join(", ")
}

fn local_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "root".to_string())
}

/// Expands `~/` to $HOME; relative paths are relative to the inventory's folder. The result
/// is absolute (the current folder joined where the inventory's path was relative): paths
/// travel on, into `ssh-config`'s output, which plain `ssh` reads from any folder.
pub fn expand_path(base_dir: &Path, p: &str) -> PathBuf {
    let path = if let Some(rest) = p.strip_prefix("~/") {
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root")).join(rest)
    } else if Path::new(p).is_absolute() {
        PathBuf::from(p)
    } else {
        base_dir.join(p)
    };
    std::path::absolute(&path).unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Inventory> {
        resolve(Path::new("inv.toml"), text)
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    const SAMPLE: &str = r#"
[defaults]
user = "ubuntu"
identity = "/keys/id"
vars = { env = "prod", app_port = 1 }

[hosts.jenkins]
address = "203.0.113.10"
groups = ["ci"]

[hosts.web]
address = "10.0.1.10"
via = "jenkins"
groups = ["web"]

[hosts.app]
address = "10.0.2.20"
via = "web"
user = "deploy"
port = 2222
groups = ["app", "extra"]
vars = { gunicorn_workers = 3 }

[groups.app]
roles = ["app", "node_exporter"]
vars = { app_port = 5000, tier = "app" }

[groups.extra]
vars = { tier = "extra" }
"#;

    #[test]
    fn resolves_settings_chains_and_vars() {
        let inv = parse(SAMPLE).unwrap();
        let app = inv.host("app").unwrap();
        assert_eq!(app.user, "deploy");
        assert_eq!(app.port, 2222);
        assert_eq!(app.identity.as_deref(), Some(Path::new("/keys/id")));
        assert_eq!(inv.host("web").unwrap().user, "ubuntu");
        assert_eq!(inv.chain_text(app), "control -> jenkins -> web -> app");
        // defaults < groups in order < host
        assert_eq!(app.vars["env"].as_str(), Some("prod"));
        assert_eq!(app.vars["app_port"].as_integer(), Some(5000));
        assert_eq!(app.vars["tier"].as_str(), Some("extra"));
        assert_eq!(app.vars["gunicorn_workers"].as_integer(), Some(3));
        assert_eq!(inv.host("web").unwrap().vars["app_port"].as_integer(), Some(1));
        assert_eq!(inv.groups["app"].roles, vec!["app", "node_exporter"]);
        assert_eq!(inv.groups["ci"].hosts, vec!["jenkins"]);
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let e = err("[hosts.web]\naddress = \"10.0.0.1\"\nadress = \"x\"\n");
        assert!(e.starts_with("inv.toml:3:1: hosts.web: unknown field `adress`, expected one of `address`,"), "{e}");
        assert!(e.contains("\n  field: hosts.web.adress\n"), "{e}");
    }

    /// Inherited vars are one table shared by every host, not a copy per host: a list of all
    /// hosts in `[defaults].vars` keeps the inventory linear in size.
    #[test]
    fn inherited_vars_are_shared_not_copied() {
        let text = "[defaults]\nvars = { all = [\"a\", \"b\", \"c\"] }\n[hosts.a]\naddress = \"a\"\ngroups = [\"g\"]\n\
                    [hosts.b]\naddress = \"b\"\ngroups = [\"g\"]\n[hosts.c]\naddress = \"c\"\n[groups.g]\nvars = { t = 1 }\n";
        let inv = Inventory::parse(Path::new("i.toml"), text).unwrap();
        assert_eq!(Arc::strong_count(&inv.defaults_vars), 4, "the inventory's and one per host");
        assert_eq!(Arc::strong_count(&inv.groups["g"].vars), 3, "the group's and one per member");
        assert_eq!(inv.host("c").unwrap().vars["all"].as_array().unwrap().len(), 3);
        assert_eq!(inv.host("b").unwrap().vars["t"].as_integer(), Some(1));
        assert!(inv.host("c").unwrap().vars.get("t").is_none());
    }

    #[test]
    fn dates_in_vars_are_their_text() {
        let inv = parse(
            "[defaults]\nvars = { since = 1979-05-27 }\n[hosts.a]\naddress = \"a\"\ngroups = [\"g\"]\nvars = { at = 1979-05-27T07:32:00Z, l = [07:32:00] }\n[groups.g]\nvars = { t = { d = 2026-01-02 } }\n",
        )
        .unwrap();
        let vars = &inv.host("a").unwrap().vars;
        assert_eq!(vars["since"].as_str(), Some("1979-05-27"));
        assert_eq!(vars["at"].as_str(), Some("1979-05-27T07:32:00Z"));
        assert_eq!(vars["l"][0].as_str(), Some("07:32:00"));
        assert_eq!(vars["t"]["d"].as_str(), Some("2026-01-02"));
    }

    #[test]
    fn via_cycle_is_printed() {
        let e = err("[hosts.a]\naddress = \"a\"\nvia = \"b\"\n[hosts.b]\naddress = \"b\"\nvia = \"a\"\n");
        assert!(e.starts_with("inv.toml:3:7: `via` cycle: a -> b -> a"), "{e}");
    }

    #[test]
    fn self_via_is_a_cycle() {
        let e = err("[hosts.a]\naddress = \"a\"\nvia = \"a\"\n");
        assert!(e.starts_with("inv.toml:3:7: `via` cycle: a -> a"), "{e}");
    }

    #[test]
    fn unknown_via_lists_hosts() {
        let e = err("[hosts.app]\naddress = \"10.0.0.2\"\nvia = \"webb\"\n[hosts.web]\naddress = \"10.0.0.1\"\n");
        assert!(e.starts_with("inv.toml:3:7: host `app` goes via unknown host `webb`"), "{e}");
        assert!(e.contains("hint: define [hosts.webb] or set `via` to one of: app, web"), "{e}");
    }

    #[test]
    fn duplicate_host_is_reported() {
        let e = err("[hosts.web]\naddress = \"a\"\n[hosts.web]\naddress = \"b\"\n");
        assert!(e.starts_with("inv.toml:3:"), "{e}");
        assert!(e.contains("duplicate"), "{e}");
    }

    #[test]
    fn empty_group_bad_address_bad_port() {
        let e = err("[hosts.a]\naddress = \"a\"\n[groups.db]\nroles = []\n");
        assert!(e.starts_with("inv.toml:3:9: group `db` has no hosts"), "{e}");
        let e = err("[hosts.a]\naddress = \"10.0.0.1:22\"\n");
        assert!(e.starts_with("inv.toml:2:11: invalid address `10.0.0.1:22` for host `a`"), "{e}");
        let e = err("[hosts.a]\naddress = \"a\"\nport = 70000\n");
        assert!(e.starts_with("inv.toml:3:8: port 70000 is out of range"), "{e}");
        let e = err("[defaults]\naddress = \"x\"\n");
        assert!(e.contains("`address` cannot be set in [defaults]"), "{e}");
    }

    #[test]
    fn apt_lock_timeout_from_defaults_host_or_default() {
        let inv = parse("[defaults]\napt_lock_timeout = 60\n[hosts.a]\naddress = \"a\"\n[hosts.b]\naddress = \"b\"\napt_lock_timeout = 0\n")
            .unwrap();
        assert_eq!(inv.host("a").unwrap().apt_lock_timeout, 60);
        assert_eq!(inv.host("b").unwrap().apt_lock_timeout, 0);
        let inv = parse("[hosts.a]\naddress = \"a\"\n").unwrap();
        assert_eq!(inv.host("a").unwrap().apt_lock_timeout, 300);
        let e = err("[hosts.a]\naddress = \"a\"\napt_lock_timeout = 1.5\n");
        assert!(e.starts_with("inv.toml:3:20: apt_lock_timeout 1.5 is out of range"), "{e}");
        assert!(e.contains("hosts.a.apt_lock_timeout"), "{e}");
    }

    #[test]
    fn session_timeout_from_defaults_host_or_default() {
        let inv =
            parse("[defaults]\ntimeout = 90\n[hosts.a]\naddress = \"a\"\n[hosts.b]\naddress = \"b\"\ntimeout = 5\n")
                .unwrap();
        assert_eq!(inv.host("a").unwrap().timeout, Duration::from_secs(90));
        assert_eq!(inv.host("b").unwrap().timeout, Duration::from_secs(5));
        let inv = parse("[hosts.a]\naddress = \"a\"\n").unwrap();
        assert_eq!(inv.host("a").unwrap().timeout, crate::inventory::DEFAULT_TIMEOUT);
        let e = err("[hosts.a]\naddress = \"a\"\ntimeout = 0\n");
        assert!(e.starts_with("inv.toml:3:11: timeout 0 is out of range"), "{e}");
        assert!(e.contains("hosts.a.timeout"), "{e}");
    }

    /// A quote and a newline in `user` would add a `ProxyCommand` line to `microctl ssh-config`:
    /// values that reach OpenSSH's config are refused at load, at their line and column.
    #[test]
    fn login_values_that_reach_openssh_config_are_checked_at_load() {
        let e = err("[hosts.a]\naddress = \"a\"\nuser = \"root\\\"\\nProxyCommand touch /tmp/x\"\n");
        assert!(
            e.starts_with(
                "inv.toml:3:8: hosts.a.user: \"root\\\"\\nProxyCommand touch /tmp/x\" is not a valid user name: it has a quote\n  field: hosts.a.user\n"
            ),
            "{e}"
        );
        let e = err("[defaults]\nuser = \"-oProxyCommand=x\"\n[hosts.a]\naddress = \"a\"\n");
        assert!(e.starts_with("inv.toml:2:8: defaults.user: \"-oProxyCommand=x\" is not a valid user name: it"), "{e}");
        let long = "a".repeat(33);
        for bad in ["", "1000", ".", "..", "a b", "j\u{f6}rg", "a$", "-a", "a\\tb", long.as_str()] {
            assert!(user_name_problem(bad).is_some(), "{bad:?}");
        }
        let longest = "a".repeat(32);
        for good in ["root", "ubuntu", "www-data", "_apt", "a.b", "svc1", "Deploy", "0a", longest.as_str()] {
            assert_eq!(user_name_problem(good), None, "{good:?}");
            parse(&format!("[hosts.a]\naddress = \"a\"\nuser = \"{good}\"\n")).unwrap();
        }
        let e = err("[hosts.a]\naddress = \"a\"\nidentity = \"/k/id\\nProxyCommand x\"\n");
        assert!(
            e.starts_with("inv.toml:3:12: hosts.a.identity: the path \"/k/id\\nProxyCommand x\" has a control character\n  field: hosts.a.identity\n"),
            "{e}"
        );
        let e = err("[defaults]\nknown_hosts = \"/k/a\\\" b\"\n[hosts.a]\naddress = \"a\"\n");
        assert!(e.starts_with("inv.toml:2:15: defaults.known_hosts: the path \"/k/a\\\" b\" has a quote"), "{e}");
        let e = err("[hosts.a]\naddress = \"a\"\nglobal_known_hosts = [\"/etc/ok\", \"${HOME}/kh\"]\n");
        assert!(e.starts_with("inv.toml:3:34: hosts.a.global_known_hosts[1]: the path \"${HOME}/kh\" has `${`"), "{e}");
        assert!(e.contains("\n  field: hosts.a.global_known_hosts[1]\n"), "{e}");
        let e = err("[hosts.a]\naddress = \"a\"\nidentity = 'C:\\k'\n");
        assert!(e.contains("has a backslash"), "{e}");
        let e = err("[hosts.-Fevil]\naddress = \"a\"\n");
        assert!(e.starts_with("inv.toml:1:8: invalid host name `-Fevil`"), "{e}");
        // Spaces, `#` and `%` are fine: ssh-config quotes them.
        parse("[hosts.a]\naddress = \"a\"\nidentity = \"/k/my key #1 %h\"\n").unwrap();
    }

    #[test]
    fn global_known_hosts_default_to_openssh_and_are_set_like_known_hosts() {
        let inv = parse("[hosts.a]\naddress = \"a\"\n").unwrap();
        let want: Vec<PathBuf> = DEFAULT_GLOBAL_KNOWN_HOSTS.iter().map(PathBuf::from).collect();
        assert_eq!(inv.host("a").unwrap().global_known_hosts, want);
        assert_eq!(want, [Path::new("/etc/ssh/ssh_known_hosts"), Path::new("/etc/ssh/ssh_known_hosts2")]);
        let inv = Inventory::parse(
            Path::new("/srv/inv.toml"),
            "[defaults]\nglobal_known_hosts = [\"pins\", \"/etc/pins\"]\n[hosts.a]\naddress = \"a\"\n\
             [hosts.b]\naddress = \"b\"\nglobal_known_hosts = []\n",
        )
        .unwrap();
        assert_eq!(inv.host("a").unwrap().global_known_hosts, [Path::new("/srv/pins"), Path::new("/etc/pins")]);
        assert!(inv.host("b").unwrap().global_known_hosts.is_empty());
    }
}
