//! `[deploy.NAME]` in the inventory: where the app comes from, how it is built, restarted and
//! health-checked, and on which hosts. String fields are templates, rendered per host.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result};
use crate::inventory::Inventory;

/// Every default of `[deploy.NAME]`, in one table (mirrored in README.md, Deploy: "Defaults").
/// They describe the microblog layout the repo's inventory and the lab deploy: a Flask app in a
/// venv under `/srv/microblog`, run by gunicorn as `www-data`, behind nginx. Any other app sets
/// the fields that differ.
#[derive(Debug)]
pub struct Defaults {
    pub root: &'static str,
    pub user: &'static str,
    pub env_file: &'static str,
    /// Run in the new release folder every time (the rest of the original `start_app.sh`), when
    /// neither `build` nor `cache_build` is set.
    pub build: [&'static str; 2],
    /// Makes the venv, in `ROOT/shared/cache/KEY/`, only when its inputs changed (see [`Cache`]);
    /// used with [`Defaults::build`] when neither is set.
    pub cache_build: [&'static str; 2],
    pub cache_dir: &'static str,
    pub cache_key: &'static str,
    pub cache_key_command: &'static str,
    pub restart: &'static str,
    pub health_path: &'static str,
    pub health_port: &'static str,
    pub health_address: &'static str,
    /// Seconds.
    pub health_timeout: u64,
    pub drain: bool,
    pub drain_file: &'static str,
    pub drain_reload: &'static str,
    /// 0: any 2xx.
    pub health_status: u16,
    /// nginx's port for an HTTP site; an HTTPS one is checked on 443.
    pub health_via_port: u16,
    pub keep: usize,
    pub batch: usize,
}

/// The defaults (see [`Defaults`]); `hosts` defaults to the deploy's name, `confirm_timeout` to
/// 2 x `health_timeout` + 30.
pub const DEFAULTS: Defaults = Defaults {
    root: "/srv/microblog",
    user: "www-data",
    env_file: "/etc/microblog.env",
    build: [
        "if [ -d app/translations ] || [ -d translations ]; then venv/bin/flask translate compile; fi",
        "venv/bin/flask db upgrade",
    ],
    cache_build: ["python3 -m venv venv", "venv/bin/pip install --quiet -r requirements.txt"],
    cache_dir: "venv",
    cache_key: "requirements.txt",
    cache_key_command: "python3 --version",
    // reset-failed: a gunicorn that hit its start limit (the app role) refuses a plain start.
    restart: "systemctl reset-failed gunicorn.socket gunicorn.service; systemctl restart gunicorn",
    health_path: "/healthz",
    health_port: "{{ app_port }}",
    health_address: "{{ host.vars.private_address | default(host.address) }}",
    health_timeout: 30,
    drain: true,
    drain_file: "/etc/nginx/sites-available/microblog",
    drain_reload: "nginx -t -q && systemctl reload nginx",
    health_status: 0,
    health_via_port: 80,
    keep: 5,
    batch: 1,
};

/// A built environment reused across releases while its inputs are unchanged: `dir` (in the
/// release, a link to `ROOT/shared/cache/KEY/dir`) is built by `build` in that folder, which
/// holds only the `key` files; KEY hashes the key files, the steps and `key_command`'s output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    pub dir: String,
    pub build: Vec<String>,
    pub key: Vec<String>,
    pub key_command: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeploy {
    hosts: Option<String>,
    source: String,
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    root: Option<String>,
    user: Option<String>,
    env_file: Option<String>,
    build: Option<Vec<String>>,
    cache_dir: Option<String>,
    cache_build: Option<Vec<String>>,
    cache_key: Option<Vec<String>>,
    cache_key_command: Option<String>,
    confirm_timeout: Option<f64>,
    drain: Option<bool>,
    drain_file: Option<String>,
    drain_reload: Option<String>,
    restart: Option<String>,
    health_path: Option<String>,
    health_port: Option<toml::Value>,
    health_address: Option<String>,
    health_timeout: Option<f64>,
    health_status: Option<u16>,
    health_via: Option<String>,
    health_via_port: Option<u16>,
    health_via_https: Option<bool>,
    health_via_name: Option<String>,
    health_ca_file: Option<String>,
    keep: Option<usize>,
    batch: Option<usize>,
}

/// The longest health check wait accepted, in seconds (an hour).
pub const MAX_HEALTH_TIMEOUT: f64 = 3600.0;

/// Where the code comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A folder on this machine (a git checkout or not), packed and uploaded.
    Path(PathBuf),
    /// A git URL cloned on each host.
    Git(String),
}

impl Source {
    /// A git URL (`scheme://`, `git@host:`, `*.git`), else a folder relative to `base`.
    pub fn parse(text: &str, base: &Path) -> Source {
        if text.contains("://") || text.starts_with("git@") || text.ends_with(".git") {
            Source::Git(text.to_string())
        } else {
            Source::Path(crate::inventory::expand_path(base, text))
        }
    }
}

/// Why `root` cannot hold releases, if it cannot: it must be an absolute folder other than `/`,
/// without `.` or `..` parts. A template is checked once rendered (see [`check_root`]).
fn bad_root(root: &str) -> Option<&'static str> {
    if root.contains("{{") || root.contains("{%") {
        return None;
    }
    check_root(root)
}

/// The check of [`bad_root`] on a rendered `root`.
pub fn check_root(root: &str) -> Option<&'static str> {
    if root.trim().is_empty() {
        return Some("is empty");
    }
    if !root.starts_with('/') {
        return Some("must be an absolute path");
    }
    let parts: Vec<&str> = root.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Some("must not be `/`");
    }
    if parts.iter().any(|p| *p == "." || *p == "..") {
        return Some("must not contain `.` or `..`");
    }
    if root.chars().any(|c| c.is_control()) {
        return Some("must not contain control characters");
    }
    None
}

/// The first field of `table` that does not deserialize on its own (for a typed error's position).
fn bad_field(table: &toml::Table) -> Option<String> {
    if let Some(k) = table.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Some(k.clone());
    }
    table.iter().find_map(|(k, v)| {
        let mut one = toml::Table::new();
        one.insert("source".into(), toml::Value::String("x".into()));
        one.insert(k.clone(), v.clone());
        toml::Value::Table(one).try_into::<RawDeploy>().is_err().then(|| k.clone())
    })
}

/// Every field of `[deploy.NAME]`.
const FIELDS: [&str; 28] = [
    "hosts",
    "source",
    "ref",
    "root",
    "user",
    "env_file",
    "build",
    "cache_dir",
    "cache_build",
    "cache_key",
    "cache_key_command",
    "restart",
    "confirm_timeout",
    "drain",
    "drain_file",
    "drain_reload",
    "health_path",
    "health_port",
    "health_address",
    "health_timeout",
    "health_status",
    "health_via",
    "health_via_port",
    "health_via_https",
    "health_via_name",
    "health_ca_file",
    "keep",
    "batch",
];

/// One deploy section, not yet rendered for a host.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    pub name: String,
    pub hosts: String,
    pub source: Source,
    pub git_ref: Option<String>,
    pub root: String,
    pub user: String,
    pub env_file: Option<String>,
    pub build: Vec<String>,
    /// The reused environment, if any (the default build has one: the venv).
    pub cache: Option<Cache>,
    pub restart: String,
    pub health_path: String,
    pub health_port: String,
    pub health_address: String,
    pub health_timeout: Duration,
    /// How long a switched release may stay live unconfirmed before the host rolls it back on
    /// its own (whole seconds).
    pub confirm_timeout: u64,
    /// Rolling deploys: take each host out of nginx's upstream on the `health_via` hosts (its
    /// `server` line in `drain_file` marked `down`, then `drain_reload`) until it is healthy.
    pub drain: bool,
    pub drain_file: String,
    pub drain_reload: String,
    /// Expected HTTP status; 0 means any 2xx.
    pub health_status: u16,
    pub health_via: Option<String>,
    /// The port nginx answers on; none: 443 for an HTTPS site, else 80.
    pub health_via_port: Option<u16>,
    /// Whether the site is checked over HTTPS; none: when the via host's `tls` (the nginx
    /// role's) is "acme" or "files".
    pub health_via_https: Option<bool>,
    /// The site's name (`Host:` and TLS server name), a template rendered for the via host;
    /// none: the first of its `server_name`s, else its address.
    pub health_via_name: Option<String>,
    /// A PEM file of CAs HTTPS trusts instead of the system's roots (relative to the inventory).
    pub health_ca_file: Option<PathBuf>,
    pub keep: usize,
    pub batch: usize,
}

impl DeployConfig {
    /// Every `[deploy.NAME]` of the inventory, each checked as [`DeployConfig::load`] does
    /// (what `microctl check` runs): the first mistake is the error.
    pub fn load_all(inv: &Inventory) -> Result<Vec<DeployConfig>> {
        inv.deploy.keys().map(|name| DeployConfig::load(inv, name)).collect()
    }

    /// Reads `[deploy.NAME]` from the inventory: every field typed and checked, its host
    /// patterns matched against the inventory's hosts.
    pub fn load(inv: &Inventory, name: &str) -> Result<DeployConfig> {
        let Some(section) = inv.deploy.get(name) else {
            let known: Vec<&str> = inv.deploy.keys().map(String::as_str).collect();
            return Err(Error::usage(format!("no [deploy.{name}] in {}", inv.path.display())).hint(
                if known.is_empty() {
                    format!("add a [deploy.{name}] table to the inventory (see README.md, Deploy)")
                } else {
                    format!("deploys defined: {}", known.join(", "))
                },
            ));
        };
        let at = |field: &str, message: String| {
            let (line, column) = section.fields.get(field).copied().unwrap_or((section.line, 1));
            let err = Error::new(ErrorKind::Inventory, message).at_file(&inv.path).at_line(line, column);
            if field.is_empty() {
                err.field(format!("deploy.{name}"))
            } else {
                err.field(format!("deploy.{name}.{field}"))
            }
        };
        let raw: RawDeploy = toml::Value::Table(section.table.clone()).try_into().map_err(|e: toml::de::Error| {
            let field = bad_field(&section.table).unwrap_or_default();
            if !field.is_empty() && !FIELDS.contains(&field.as_str()) {
                let hint = match crate::inventory::near::closest(&field, FIELDS) {
                    Some(near) => format!("did you mean `{near}`?"),
                    None => format!("the fields are: {}", FIELDS.join(", ")),
                };
                return at(&field, format!("unknown field `{field}` in [deploy.{name}]")).hint(hint);
            }
            at(&field, format!("invalid [deploy.{name}]: {}", e.message().trim()))
                .hint("see README.md, Deploy, for each setting's type")
        })?;
        let base = inv.path.parent().unwrap_or(Path::new("."));
        let source = Source::parse(&raw.source, base);
        if raw.source.trim().is_empty() {
            return Err(at("source", "`source` is empty".into())
                .hint("a folder (relative to the inventory) or a git URL; --source PATH overrides it"));
        }
        if matches!(source, Source::Git(_)) && raw.git_ref.is_none() {
            return Err(at("source", format!("[deploy.{name}] with a git URL needs `ref`")).hint("e.g. ref = \"main\""));
        }
        let health_port = match raw.health_port {
            None => DEFAULTS.health_port.to_string(),
            Some(toml::Value::Integer(p)) if (1..=65535).contains(&p) => p.to_string(),
            Some(toml::Value::String(s)) => s,
            Some(other) => {
                return Err(at(
                    "health_port",
                    format!("`health_port` must be a port (1-65535) or a template, got {other}"),
                ));
            }
        };
        let health_timeout = match raw.health_timeout {
            None => Duration::from_secs(DEFAULTS.health_timeout),
            Some(t) if t.is_finite() && t > 0.0 && t <= MAX_HEALTH_TIMEOUT => Duration::from_secs_f64(t),
            Some(t) => {
                return Err(at(
                    "health_timeout",
                    format!("`health_timeout` must be seconds between 0 and {MAX_HEALTH_TIMEOUT}, got {t}"),
                )
                .hint("e.g. health_timeout = 30"));
            }
        };
        let confirm_timeout = match raw.confirm_timeout {
            None => (2.0 * health_timeout.as_secs_f64() + 30.0).ceil() as u64,
            Some(t) if t.is_finite() && t > health_timeout.as_secs_f64() && t <= MAX_HEALTH_TIMEOUT => t.ceil() as u64,
            Some(t) => {
                return Err(at(
                    "confirm_timeout",
                    format!(
                        "`confirm_timeout` must be seconds above health_timeout ({}) and at most {MAX_HEALTH_TIMEOUT}, got {t}",
                        health_timeout.as_secs_f64()
                    ),
                )
                .hint("the host rolls back a release nobody confirmed after this long; e.g. confirm_timeout = 90"));
            }
        };
        let (build, cache) = match (raw.build, raw.cache_build) {
            (None, None) => (
                DEFAULTS.build.iter().map(|s| s.to_string()).collect(),
                Some(DEFAULTS.cache_build.iter().map(|s| s.to_string()).collect()),
            ),
            (build, cache_build) => (build.unwrap_or_default(), cache_build.filter(|c: &Vec<String>| !c.is_empty())),
        };
        let cache = cache.map(|build| Cache {
            dir: raw.cache_dir.clone().unwrap_or_else(|| DEFAULTS.cache_dir.into()),
            build,
            key: raw.cache_key.clone().unwrap_or_else(|| vec![DEFAULTS.cache_key.into()]),
            key_command: raw.cache_key_command.clone().unwrap_or_else(|| DEFAULTS.cache_key_command.into()),
        });
        if let Some(c) = &cache {
            let plain = |p: &str| {
                !p.is_empty()
                    && !p.starts_with('/')
                    && !p.split('/').any(|part| part == ".." || part == ".")
                    && !p.contains(['\n', '\t'])
            };
            if !plain(&c.dir) || c.dir.contains('/') {
                return Err(at(
                    "cache_dir",
                    format!("`cache_dir` must be a folder name in the release, got {:?}", c.dir),
                ));
            }
            if let Some(bad) = c.key.iter().find(|k| !plain(k)) {
                return Err(at(
                    "cache_key",
                    format!("`cache_key` lists files of the release (relative paths), got {bad:?}"),
                ));
            }
            if c.build.iter().any(|b| b.contains('\n')) {
                return Err(at("cache_build", "a `cache_build` step cannot contain a newline".into()));
            }
        }
        let root = raw.root.unwrap_or_else(|| DEFAULTS.root.into());
        if let Some(why) = bad_root(&root) {
            return Err(at("root", format!("`root` {why}, got {root:?}"))
                .hint("an absolute folder of its own, e.g. root = \"/srv/microblog\""));
        }
        if let Some(e) =
            raw.env_file.as_deref().filter(|e| !e.is_empty() && !e.starts_with('/') && !e.starts_with("{{"))
        {
            return Err(at("env_file", format!("`env_file` must be an absolute path (or \"\" for none), got {e:?}")));
        }
        let health_path = raw.health_path.unwrap_or_else(|| DEFAULTS.health_path.into());
        if !health_path.starts_with('/') {
            return Err(at("health_path", format!("`health_path` must start with `/`, got {health_path:?}")));
        }
        let keep = raw.keep.unwrap_or(DEFAULTS.keep);
        if keep < 2 {
            return Err(at("keep", "`keep` must be at least 2 (the live release and the one to roll back to)".into()));
        }
        let batch = raw.batch.unwrap_or(DEFAULTS.batch);
        if batch == 0 {
            return Err(at("batch", "`batch` must be at least 1 (hosts deployed at once)".into()));
        }
        if let Some(f) = raw.health_ca_file.as_deref() {
            match std::fs::metadata(base.join(f)) {
                Ok(m) if m.is_file() => {}
                Ok(_) => return Err(at("health_ca_file", format!("`health_ca_file` {f:?} is not a file"))),
                Err(e) => {
                    return Err(at("health_ca_file", format!("cannot read `health_ca_file` {f:?}: {e}")).hint(
                        "a PEM file (relative to the inventory) holding the CA that issued the site's certificate",
                    ));
                }
            }
        }
        if raw.health_via_port == Some(0) {
            return Err(at("health_via_port", "`health_via_port` must be a port (1-65535), got 0".into()));
        }
        // The host patterns: each must match a host now, not when the deploy runs.
        let hosts = raw.hosts.unwrap_or_else(|| name.to_string());
        for (field, pattern) in [("hosts", Some(&hosts)), ("health_via", raw.health_via.as_ref())] {
            let Some(pattern) = pattern else { continue };
            if let Err(e) = crate::inventory::select(inv, pattern) {
                let why = if section.fields.contains_key(field) {
                    format!("`{field}`: {}", e.message)
                } else {
                    format!("`{field}` is not set, so it is the deploy's name `{name}`: {}", e.message)
                };
                let mut err = at(field, why);
                err.hint = e.hint.clone();
                return Err(err);
            }
        }
        Ok(DeployConfig {
            name: name.to_string(),
            hosts,
            source,
            git_ref: raw.git_ref,
            root,
            user: raw.user.unwrap_or_else(|| DEFAULTS.user.into()),
            env_file: raw.env_file.or_else(|| Some(DEFAULTS.env_file.into())).filter(|e| !e.is_empty()),
            build,
            cache,
            restart: raw.restart.unwrap_or_else(|| DEFAULTS.restart.into()),
            health_path,
            health_port,
            health_address: raw.health_address.unwrap_or_else(|| DEFAULTS.health_address.into()),
            health_timeout,
            confirm_timeout,
            drain: raw.drain.unwrap_or(DEFAULTS.drain),
            drain_file: raw.drain_file.unwrap_or_else(|| DEFAULTS.drain_file.into()),
            drain_reload: raw.drain_reload.unwrap_or_else(|| DEFAULTS.drain_reload.into()),
            health_status: raw.health_status.unwrap_or(DEFAULTS.health_status),
            health_via: raw.health_via,
            health_via_port: raw.health_via_port,
            health_via_https: raw.health_via_https,
            health_via_name: raw.health_via_name,
            health_ca_file: raw.health_ca_file.map(|f| base.join(f)),
            keep,
            batch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(deploy: &str) -> Result<DeployConfig> {
        let text = format!("[hosts.app]\naddress = \"10.0.0.1\"\n\n[deploy.app]\nsource = \"app\"\n{deploy}");
        let inv = Inventory::parse(Path::new("/inv/inventory.toml"), &text).unwrap();
        DeployConfig::load(&inv, "app")
    }

    /// (setting, file:line:column it is reported at, field, message start)
    fn refused(deploy: &str) -> (String, String) {
        let e = load(deploy).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        (
            format!("{}:{}:{}", e.file.clone().unwrap().display(), e.line.unwrap(), e.column.unwrap()),
            e.field.clone().unwrap(),
        )
    }

    #[test]
    fn health_timeout_must_be_a_sane_number_of_seconds() {
        for bad in ["-1", "inf", "-inf", "nan", "1e30", "0", "3601"] {
            let (at, field) = refused(&format!("health_timeout = {bad}\n"));
            assert_eq!(
                (at.as_str(), field.as_str()),
                ("/inv/inventory.toml:6:18", "deploy.app.health_timeout"),
                "{bad}"
            );
            let msg = load(&format!("health_timeout = {bad}\n")).unwrap_err().message.clone();
            assert!(msg.starts_with("`health_timeout` must be seconds between 0 and 3600, got"), "{msg}");
        }
        let (at, field) = refused("health_timeout = \"10\"\n");
        assert_eq!((at.as_str(), field.as_str()), ("/inv/inventory.toml:6:18", "deploy.app.health_timeout"));
        assert_eq!(load("health_timeout = 2.5\n").unwrap().health_timeout, Duration::from_millis(2500));
        assert_eq!(load("health_timeout = 10\n").unwrap().health_timeout, Duration::from_secs(10));
        assert_eq!(load("health_timeout = 10\n").unwrap().confirm_timeout, 50);
        assert_eq!(load("health_timeout = 10\nconfirm_timeout = 20.5\n").unwrap().confirm_timeout, 21);
        for bad in ["10", "5", "-1", "nan", "inf", "1e30"] {
            let e = load(&format!("health_timeout = 10\nconfirm_timeout = {bad}\n")).unwrap_err();
            assert_eq!((e.line, e.column, e.field.as_deref()), (Some(7), Some(19), Some("deploy.app.confirm_timeout")));
        }
    }

    #[test]
    fn the_default_build_reuses_the_venv_and_a_custom_one_reuses_nothing() {
        let d = load("").unwrap();
        assert_eq!(d.build, DEFAULTS.build);
        let c = d.cache.unwrap();
        assert_eq!(
            (c.dir.as_str(), c.build.as_slice(), c.key.as_slice()),
            ("venv", &DEFAULTS.cache_build.map(String::from)[..], &["requirements.txt".to_string()][..])
        );
        let custom = load("build = [\"make\"]\n").unwrap();
        assert_eq!((custom.build, custom.cache), (vec!["make".to_string()], None));
        let both = load("build = [\"make\"]\ncache_build = [\"npm ci\"]\ncache_dir = \"node_modules\"\ncache_key = [\"package-lock.json\"]\n").unwrap();
        assert_eq!(both.cache.unwrap().dir, "node_modules");
        for (bad, field) in [
            ("cache_dir = \"../x\"", "cache_dir"),
            ("cache_dir = \"a/b\"", "cache_dir"),
            ("cache_key = [\"/etc/passwd\"]", "cache_key"),
        ] {
            let e = load(&format!("{bad}\n")).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(format!("deploy.app.{field}").as_str()), "{bad}");
        }
    }

    /// README's table of defaults says what the code does.
    #[test]
    fn the_defaults_are_the_ones_readme_lists() {
        let readme = include_str!("../../README.md");
        let table = &readme[readme.find("| field | default |").expect("README's Deploy defaults table")..];
        let table = &table[..table.find("\n\n").unwrap()];
        let d = &DEFAULTS;
        let texts = [d.root, d.user, d.env_file, d.cache_dir, d.cache_key, d.cache_key_command, d.restart];
        let more = [d.health_path, d.health_port, d.health_address, d.drain_file, d.drain_reload];
        for text in texts.iter().chain(&more).chain(&d.build).chain(&d.cache_build) {
            assert!(table.contains(&format!("`{}`", text.replace('|', "\\|"))), "README lacks `{text}`");
        }
        for (field, values) in [
            ("`health_timeout`, `confirm_timeout`", format!("{}, 2 x", d.health_timeout)),
            ("`keep`, `batch`", format!("{}, {}", d.keep, d.batch)),
            ("`health_via`, `health_via_port`", format!("none, {}", d.health_via_port)),
            ("`drain`, `drain_file`", format!("{}, ", d.drain)),
            ("`health_path`, `health_port`, `health_status`", format!(", {} (any 2xx)", d.health_status)),
        ] {
            let row = table.lines().find(|l| l.starts_with(&format!("| {field} |"))).expect(field);
            assert!(row.contains(&values), "{row}: {values}");
        }
    }

    #[test]
    fn host_patterns_must_match_a_host_where_they_are_written() {
        for (text, field, col) in [("hosts = \"ap\"\n", "hosts", 9), ("health_via = \"web,nginx\"\n", "health_via", 14)]
        {
            let e = load(text).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{text}");
            assert_eq!((e.line, e.column), (Some(6), Some(col)), "{text}: {e}");
            assert_eq!(e.field.as_deref(), Some(format!("deploy.app.{field}").as_str()), "{text}");
            assert!(e.message.starts_with(&format!("`{field}`: host pattern `")), "{text}: {e}");
            assert!(e.hint.as_deref().unwrap().starts_with("known hosts: app"), "{text}: {e}");
        }
        // Not written: the deploy's name, reported at its table.
        let text = "[hosts.a]\naddress = \"10.0.0.1\"\n\n[deploy.site]\nsource = \"app\"\n";
        let inv = Inventory::parse(Path::new("/inv/inventory.toml"), text).unwrap();
        let e = DeployConfig::load_all(&inv).unwrap_err();
        assert_eq!((e.line, e.column, e.field.as_deref()), (Some(4), Some(1), Some("deploy.site.hosts")));
        assert!(e.message.starts_with("`hosts` is not set, so it is the deploy's name `site`: "), "{e}");
        assert_eq!(load("hosts = \"all,!app\"\n").unwrap_err().field.as_deref(), Some("deploy.app.hosts"));
        assert_eq!(load("hosts = \"app\"\nhealth_via = \"app\"\n").unwrap().hosts, "app");
    }

    #[test]
    fn root_must_be_an_absolute_folder_of_its_own() {
        for (bad, why) in [
            ("\"\"", "is empty"),
            ("\"srv/app\"", "must be an absolute path"),
            ("\"./app\"", "must be an absolute path"),
            ("\"/\"", "must not be `/`"),
            ("\"//\"", "must not be `/`"),
            ("\"/srv/../etc\"", "must not contain `.` or `..`"),
        ] {
            let e = load(&format!("root = {bad}\n")).unwrap_err();
            assert_eq!((e.line, e.column, e.field.as_deref()), (Some(6), Some(8), Some("deploy.app.root")), "{bad}");
            assert!(e.message.starts_with(&format!("`root` {why}")), "{bad}: {}", e.message);
        }
        assert_eq!(load("root = \"/srv/app/\"\n").unwrap().root, "/srv/app/");
        assert_eq!(load("root = \"{{ app_root }}\"\n").unwrap().root, "{{ app_root }}");
        assert_eq!(check_root("relative"), Some("must be an absolute path"));
    }

    #[test]
    fn other_settings_are_checked_where_they_are_written() {
        for (text, field, col) in [
            ("keep = 1\n", "keep", 8),
            ("keep = -3\n", "keep", 8),
            ("batch = 0\n", "batch", 9),
            ("health_port = 70000\n", "health_port", 15),
            ("health_path = \"healthz\"\n", "health_path", 15),
            ("env_file = \"microblog.env\"\n", "env_file", 12),
            ("health_via_port = 0\n", "health_via_port", 19),
            ("helth_path = \"/\"\n", "helth_path", 14),
            ("confirm_timeout = \"x\"\n", "confirm_timeout", 19),
            ("cache_key = \"req.txt\"\n", "cache_key", 13),
            ("drain = \"yes\"\n", "drain", 9),
        ] {
            let e = load(text).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert_eq!((e.line, e.column), (Some(6), Some(col)), "{text}: {e}");
            assert_eq!(e.field.as_deref(), Some(format!("deploy.app.{field}").as_str()), "{text}");
        }
        let e = load("health_pth = \"/x\"\n").unwrap_err();
        assert_eq!(e.message, "unknown field `health_pth` in [deploy.app]");
        assert_eq!(e.hint.as_deref(), Some("did you mean `health_path`?"));
        let e = load("colour = 1\n").unwrap_err();
        assert!(e.hint.as_deref().unwrap().starts_with("the fields are: hosts, source, ref,"), "{e}");
        let e = load("keep = \"3\"\n").unwrap_err();
        assert_eq!((e.line, e.column, e.field.as_deref()), (Some(6), Some(8), Some("deploy.app.keep")));
        assert!(e.message.contains("invalid type: string \"3\""), "{}", e.message);
        let e = load("ref = \"main\"\n").map(|c| c.source).unwrap();
        assert_eq!(e, Source::Path("/inv/app".into()));
    }
}
