//! The host firewall derived from the topology (issue #23): for a host whose `firewall` var is
//! true, the inbound rules of `role::ports` (the very list `inventory --ports` prints) rendered
//! into an nftables table of microctl's own, `table inet microctl`: inbound policy drop;
//! loopback, established/related and ICMP/ICMPv6 accepted; then one accept per rule and
//! address family. No other table is ever named (Docker's, the distribution's stay as they
//! are). The table carries a comment with the SHA-256 of its own text, which converge's probe
//! reads back (`PROBE_SH`, one `nft` process in the existing round trip): an unchanged rule set
//! costs nothing more. A changed one is applied by `apply` under a confirm-or-revert watchdog.
//!
//! Off by default, so upgrading microctl changes nobody's hosts.

pub mod apply;

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::inventory::{Host, Inventory};
use crate::plan::desired::{Desired, Origin, PackageSpec, sha256_hex};
use crate::role::RoleSet;
use crate::role::ports::{self, ANYONE, Rule};

/// The family and name of microctl's table.
pub const TABLE: &str = "inet microctl";

/// What the table comment starts with; the hash follows.
const STAMP: &str = "microctl sha256:";

/// The default of `firewall_confirm_timeout`, in seconds.
pub const DEFAULT_CONFIRM_SECS: u64 = 30;

/// One host's rendered table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The whole `table inet microctl { ... }`, as `nft -f` reads it.
    pub text: String,
    /// Hex SHA-256 of the table without its comment (the comment carries it).
    pub sha256: String,
    /// How long the host waits for our confirmation before it restores the previous rules.
    pub confirm_timeout: Duration,
}

/// The end of the probe's part: `fw_t` (the listing, or empty) to `FW<TAB>HASH`.
macro_rules! fw_line_sh {
    () => {
        "case $fw_t in *'comment \"microctl sha256:'*) fw_t=${fw_t#*'comment \"microctl sha256:'}; fw_t=${fw_t%%'\"'*} ;; *) fw_t= ;; esac\nprintf 'FW\\t%s\\n' \"$fw_t\"\n"
    };
}

/// The probe's part (converge's one round trip): prints `FW<TAB>HASH` with the hash the live
/// table's comment carries, or `FW<TAB>` when there is no such table (or no `nft`).
pub const PROBE_SH: &str = concat!("fw_t=$(nft list table inet microctl 2>/dev/null) || fw_t=\n", fw_line_sh!());

/// [`PROBE_SH`] when the `nftables` package is the firewall's own ([`owns_package`]): an `nft`
/// that lists the table is the package's evidence (`K<TAB>nftables<TAB>ii`, no process), so an
/// unchanged rule set costs the one `nft` and no `dpkg-query`; only when the listing fails (no
/// `nft`, or no table yet: a run that changes the host anyway) does `dpkg-query` say.
pub const PROBE_WITH_PACKAGE_SH: &str = concat!(
    "if fw_t=$(nft list table inet microctl 2>/dev/null); then printf 'K\\tnftables\\tii\\n'; else fw_t=; \
     dpkg-query -W -f='K\\t${Package}\\t${db:Status-Abbrev}\\n' nftables 2>/dev/null; fi\n",
    fw_line_sh!()
);

/// The origin role of the `nftables` package [`attach`] adds.
const ROLE: &str = "firewall";

/// Whether `desired` has a firewall whose `nftables` package [`attach`] added (no role of the
/// host's names it): the probe then checks it with [`PROBE_WITH_PACKAGE_SH`], not `dpkg-query`.
pub fn owns_package(desired: &Desired) -> bool {
    desired.firewall.is_some() && desired.packages.iter().any(|p| p.name == "nftables" && p.origin.role == ROLE)
}

/// Whether `host` has the firewall on (its `firewall` var; default off).
pub fn enabled(host: &Host) -> Result<bool> {
    match host.vars.get("firewall") {
        None => Ok(false),
        Some(toml::Value::Boolean(b)) => Ok(*b),
        Some(_) => Err(var_error(host, "firewall", "must be true or false")),
    }
}

/// The host's `firewall_confirm_timeout` (whole seconds, 1 to 3600; default 30).
pub fn confirm_timeout(host: &Host) -> Result<Duration> {
    match host.vars.get("firewall_confirm_timeout") {
        None => Ok(Duration::from_secs(DEFAULT_CONFIRM_SECS)),
        Some(toml::Value::Integer(n)) if (1..=3600).contains(n) => Ok(Duration::from_secs(*n as u64)),
        Some(_) => Err(var_error(host, "firewall_confirm_timeout", "must be whole seconds from 1 to 3600")),
    }
}

fn var_error(host: &Host, var: &str, what: &str) -> Error {
    Error::new(ErrorKind::Inventory, format!("host {}: var `{var}` {what}", host.name))
        .host(&host.name)
        .field(var)
        .hint("set it in the host's, a group's or [defaults] vars (README \"Host firewall\")")
}

/// The table for `host`, `None` when its firewall is off.
pub fn for_host(inv: &Inventory, roles: &RoleSet, host: &Host) -> Result<Option<Table>> {
    if !enabled(host)? {
        return Ok(None);
    }
    let rules = ports::rules(inv, roles, host)?;
    let (text, sha256) = render(&host.name, &rules)?;
    Ok(Some(Table { text, sha256, confirm_timeout: confirm_timeout(host)? }))
}

/// `desired` with the host's firewall table, and the `nftables` package it needs, when its
/// firewall is on.
pub fn attach(inv: &Inventory, roles: &RoleSet, host: &Host, mut desired: Desired) -> Result<Desired> {
    if let Some(table) = for_host(inv, roles, host)? {
        if !desired.packages.iter().any(|p| p.name == "nftables") {
            let origin = Origin { role: ROLE.into(), line: 0 };
            desired.packages.push(PackageSpec { origin, name: "nftables".into() });
        }
        desired.firewall = Some(Arc::new(table));
    }
    Ok(desired)
}

/// The resource name of the table in converge's output.
pub const RESOURCE: &str = "firewall table inet microctl";

/// Converge's firewall step for a host whose run succeeded: nothing when the probe saw this
/// table's hash (`seen`), else (not `check`) [`apply::apply`]. The outcome goes into `run`
/// (one more resource: ok, changed, pending or failed) and `on_event`.
pub async fn converge_step(
    pool: &crate::transport::Pool,
    host: &Host,
    table: &Table,
    opts: &crate::apply::ConvergeOptions,
    run: &mut crate::apply::HostRun,
    on_event: &(dyn Fn(crate::apply::Event<'_>) + Sync),
) {
    use crate::apply::{ChangeState, Event, Phase};
    let seen = run.firewall_seen.as_deref().unwrap_or("");
    if seen == table.sha256 {
        run.ok += 1;
        return;
    }
    let reason = if seen.is_empty() { "not applied" } else { "rules differ" };
    let change = crate::plan::Change {
        action: crate::plan::Action::Firewall,
        resource: RESOURCE.into(),
        role: "firewall".into(),
        reason: reason.into(),
    };
    if opts.check {
        run.plan.changes.push(change);
        run.changed += 1;
        return;
    }
    on_event(Event::Phase(Phase::Step { label: "the firewall (confirm or revert)", slow: true }));
    match apply::apply(pool, host, table, opts.lock_timeout, opts.timeout).await {
        Ok(()) => {
            on_event(Event::Change { resource: RESOURCE, state: ChangeState::Changed, reason: Some(reason) });
            run.plan.changes.push(change);
            run.changed += 1;
        }
        Err(e) => {
            on_event(Event::Change { resource: RESOURCE, state: ChangeState::Failed, reason: None });
            run.failed += 1;
            run.firewall_failed = true;
            run.error = Some(e);
        }
    }
}

/// `rules` as microctl's nftables table, and the hash its comment carries. A source that is
/// not an address or CIDR (a host name) is an error naming the host and the rule.
pub fn render(host: &str, rules: &[Rule]) -> Result<(String, String)> {
    let mut body = String::new();
    for r in rules {
        let why = comment(&r.reason);
        let proto = match r.proto.as_str() {
            p @ ("tcp" | "udp") => p,
            p => return Err(render_error(host, r, &format!("protocol `{p}` is not tcp or udp"))),
        };
        if r.from.iter().any(|f| f == ANYONE) {
            body.push_str(&format!("\t\t{proto} dport {} accept comment \"{why}\"\n", r.port));
            continue;
        }
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for f in &r.from {
            match ports::source_family(f) {
                Some(4) => v4.push(f.as_str()),
                Some(_) => v6.push(f.as_str()),
                None => {
                    return Err(render_error(
                        host,
                        r,
                        &format!("`{f}` is not an IP address or CIDR (nftables matches addresses)"),
                    ));
                }
            }
        }
        for (family, list) in [("ip", v4), ("ip6", v6)] {
            if !list.is_empty() {
                body.push_str(&format!(
                    "\t\t{family} saddr {{ {} }} {proto} dport {} accept comment \"{why}\"\n",
                    list.join(", "),
                    r.port
                ));
            }
        }
    }
    let head = "\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n\t\tiif \"lo\" accept\n\t\tct state established,related accept\n\t\tct state invalid drop\n\t\tmeta l4proto { icmp, ipv6-icmp } accept\n";
    let chain = format!("{head}{body}\t}}\n");
    let sha = sha256_hex(chain.as_bytes());
    Ok((format!("table {TABLE} {{\n\tcomment \"{STAMP}{sha}\"\n{chain}}}\n"), sha))
}

fn render_error(host: &str, rule: &Rule, what: &str) -> Error {
    Error::new(
        ErrorKind::Inventory,
        format!("the firewall of {host}: rule `{}` (port {}): {what}", rule.reason, rule.port),
    )
    .host(host)
    .hint("give the hosts involved an IP `address` or a `private_address` var, and `ssh_from` addresses or CIDRs")
}

/// A rule's reason as an nftables comment: printable ASCII without quotes or backslashes, at
/// most 100 bytes.
fn comment(reason: &str) -> String {
    reason
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .filter(|c| !matches!(c, '"' | '\\'))
        .take(100)
        .collect()
}

/// `nft -c -f` of `text` on this machine (changes nothing: a check). `None` when it passed;
/// the error when nft refused it or is missing (naming the Debian package).
pub fn validate_locally(host: &str, text: &str) -> Option<Error> {
    use std::io::Write;
    let mut child = match std::process::Command::new("nft")
        .args(["-c", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Some(
                Error::new(ErrorKind::Io, "cannot run `nft` to validate the firewall tables")
                    .caused_by(e)
                    .hint("install the Debian package nftables"),
            );
        }
    };
    let _ = child.stdin.take().map(|mut s| s.write_all(text.as_bytes()));
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => return Some(Error::new(ErrorKind::Io, "`nft -c` failed to run").caused_by(e)),
    };
    (!out.status.success()).then(|| {
        Error::new(ErrorKind::Inventory, format!("the firewall table of {host} does not pass `nft -c`"))
            .host(host)
            .detail(String::from_utf8_lossy(&out.stderr).into_owned())
            .hint("this is microctl's rendering: please report it with `microctl inventory --ports`")
    })
}

/// Whether `nft -c` can check a table here (nft installed, and allowed to ask the kernel):
/// `check` validates where it can.
pub fn nft_available() -> bool {
    validate_locally("", "table inet microctl {\n}\n").is_none()
}

/// `check`'s part: the host's table rendered and, when `nft` is `true`, validated with
/// `nft -c`. The number of resources it adds (1 when the firewall is on).
pub fn check(inv: &Inventory, roles: &RoleSet, host: &Host, nft: bool) -> Result<usize> {
    match for_host(inv, roles, host)? {
        None => Ok(0),
        Some(table) => match nft.then(|| validate_locally(&host.name, &table.text)).flatten() {
            Some(e) => Err(e),
            None => Ok(1),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(port: u16, from: &[&str], reason: &str) -> Rule {
        Rule { port, proto: "tcp".into(), from: from.iter().map(|s| s.to_string()).collect(), reason: reason.into() }
    }

    #[test]
    fn renders_each_rule_per_family_and_anyone_without_a_source() {
        let rules = [
            rule(22, &["198.18.1.11"], "ssh from jump host web"),
            rule(9100, &["198.18.1.12", "2001:db8::/32"], "role node_exporter: \"metrics\""),
            rule(80, &[ANYONE], "role nginx: http"),
            rule(5000, &[], "role app: nobody"),
        ];
        let (text, sha) = render("app", &rules).unwrap();
        assert!(text.starts_with(&format!("table inet microctl {{\n\tcomment \"microctl sha256:{sha}\"\n")), "{text}");
        assert!(text.contains("policy drop;"), "{text}");
        assert!(text.contains("\t\tip saddr { 198.18.1.11 } tcp dport 22 accept comment \"ssh from jump host web\"\n"));
        assert!(
            text.contains(
                "\t\tip saddr { 198.18.1.12 } tcp dport 9100 accept comment \"role node_exporter: metrics\"\n"
            )
        );
        assert!(text.contains("\t\tip6 saddr { 2001:db8::/32 } tcp dport 9100 accept"));
        assert!(text.contains("\t\ttcp dport 80 accept comment \"role nginx: http\"\n"));
        assert!(!text.contains("5000"), "a port nobody may reach gets no rule: {text}");
        // The hash is of the text without its comment line.
        let chain = text.split_once(&format!("{STAMP}{sha}\"\n")).unwrap().1.strip_suffix("}\n").unwrap();
        assert!(chain.starts_with("\tchain input {\n") && !chain.contains(STAMP), "{chain}");
        assert_eq!(sha256_hex(chain.as_bytes()), sha);
    }

    #[test]
    fn a_host_name_as_a_source_names_the_host_and_the_rule() {
        let e = render("app", &[rule(22, &["web.example"], "ssh from jump host web")]).unwrap_err();
        assert_eq!(
            e.message,
            "the firewall of app: rule `ssh from jump host web` (port 22): `web.example` is not an IP address or CIDR (nftables matches addresses)"
        );
    }

    /// The probe's firewall line has a tag of its own: a user's passwd line (`W`) is never
    /// taken for it, nor it for one.
    #[test]
    fn the_firewall_line_and_the_users_lines_do_not_mix() {
        let out = "W\troot:x:0:0:root:/root:/bin/sh\nFW\tabc\n";
        let obs = crate::plan::probe::parse(out).unwrap();
        assert_eq!(obs.firewall.as_deref(), Some("abc"));
        assert_eq!(obs.users.accounts["root"].uid, 0);
    }

    /// An unchanged rule set costs the probe its one `nft` and no `dpkg-query` for the
    /// firewall's own `nftables` package (issue 23's benchmark: `dpkg-query` was most of the
    /// firewall's no-op cost): the listing says the package is there. Without a listing (no
    /// nft, no table yet) `dpkg-query` still says. The whole probe, under sh and dash, with a
    /// stand-in `nft` and a `dpkg-query` that leaves a mark.
    #[test]
    fn a_live_table_is_the_nftables_packages_evidence() {
        use crate::plan::desired::{Desired, Origin, PackageSpec};
        use std::os::unix::fs::PermissionsExt;
        let (text, sha) = render("h", &[rule(22, &[ANYONE], "ssh")]).unwrap();
        let table = Table { text: text.clone(), sha256: sha.clone(), confirm_timeout: Duration::from_secs(30) };
        let origin = Origin { role: ROLE.into(), line: 0 };
        let desired = Desired {
            packages: vec![PackageSpec { origin, name: "nftables".into() }],
            firewall: Some(Arc::new(table)),
            ..Default::default()
        };
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path().display().to_string();
            let bin = dir.path().join("bin");
            std::fs::create_dir(&bin).unwrap();
            std::fs::write(dir.path().join("table"), &text).unwrap();
            for (name, body) in [
                ("nft", format!("[ ! -e {d}/no-nft ] || exit 1\ncat {d}/table\n")),
                ("dpkg-query", format!("printf '%s\\n' \"$*\" >> {d}/dpkg-ran\nprintf 'K\\tnftables\\tii\\n'\n")),
            ] {
                std::fs::write(bin.join(name), format!("#!/bin/sh\n{body}")).unwrap();
                std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            let script = format!(
                "STATE={d}/state\nTIMEOUT=60\n{}",
                crate::plan::probe::script(&desired, &format!("{d}/state"), false)
            );
            let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
            let run = || {
                let out = std::process::Command::new(shell).arg("-c").arg(&script).env("PATH", &path).output().unwrap();
                assert!(out.stderr.is_empty(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
                crate::plan::probe::parse(&String::from_utf8_lossy(&out.stdout)).unwrap()
            };
            let obs = run();
            assert_eq!((obs.firewall.as_deref(), obs.packages.get("nftables")), (Some(sha.as_str()), Some(&true)));
            assert!(!dir.path().join("dpkg-ran").exists(), "{shell}: dpkg-query ran on an unchanged rule set");
            std::fs::write(dir.path().join("no-nft"), "").unwrap();
            let obs = run();
            assert_eq!((obs.firewall.as_deref(), obs.packages.get("nftables")), (Some(""), Some(&true)), "{shell}");
            let ran = std::fs::read_to_string(dir.path().join("dpkg-ran")).unwrap();
            assert!(ran.ends_with(" nftables\n") && ran.lines().count() == 1, "{shell}: {ran}");
        }
    }

    #[test]
    fn the_probe_reads_the_hash_back_from_a_listing() {
        let (text, sha) = render("h", &[rule(22, &[ANYONE], "ssh")]).unwrap();
        // `nft list table` prints the comment as it was given; here the probe's shell parses
        // the rendered text itself.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(PROBE_SH.replace("nft list table inet microctl", "printf '%s' \"$T\""))
            .env("T", &text)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("FW\t{sha}\n"));
        let none =
            std::process::Command::new("dash").arg("-c").arg(PROBE_SH.replace("nft ", "false ")).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&none.stdout), "FW\t\n");
        assert!(none.stderr.is_empty() && out.stderr.is_empty());
    }
}
