//! Planning a deploy: from a loaded [`DeployConfig`] and what the command asked for to one
//! [`HostPlan`] per host and the settings they share, before any host is contacted. Functions
//! over values, no SSH and no printing: which of the deploy's hosts (`--only`), what the run
//! does (upload a packed folder, clone, roll back, list), and per host its fields rendered,
//! its health port parsed, its `health_via` hosts, whether it is drained and its rendered
//! `root` checked.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::config::{Cache, DeployConfig, Source, check_root};
use super::deploy_script::{HostSettings, Target};
use super::{HostPlan, Shared, ViaSite};
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::{self, Host, Inventory};

/// What the command line asks of the deploy.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// `deploy APP PATTERN` / `--limit`: only those of the deploy's hosts.
    pub only: Option<&'a str>,
    /// `--list`: read the ledgers, change nothing.
    pub list: bool,
    /// `--rollback [RELEASE]`: `""` for the newest healthy release older than the live one.
    pub rollback: Option<&'a str>,
    /// `--ref`: overrides the deploy's `ref`.
    pub git_ref: Option<&'a str>,
    pub lock_timeout: Duration,
    /// `--timeout`: each session phase's bound, for every host.
    pub timeout: Option<Duration>,
}

/// Renders one field's template for a host: the rendered text, or why it failed.
pub type Render<'a> = dyn Fn(&Host, &str) -> std::result::Result<String, String> + 'a;

/// What a deploy's run does, and what it uploads.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub target: Target,
    /// The release tar, for an uploaded folder.
    pub payload: Option<Arc<Vec<u8>>>,
    /// Said before the run (e.g. uncommitted changes left out of the release).
    pub warning: Option<String>,
}

/// Everything the per-host plans are made from.
pub struct Input<'a> {
    pub cfg: &'a DeployConfig,
    pub inv: &'a Inventory,
    /// The hosts deployed, from [`hosts`].
    pub hosts: Vec<Arc<Host>>,
    pub request: &'a Request<'a>,
    pub chosen: Chosen,
    /// Who deploys (the ledger's `by`).
    pub deployed_by: String,
    pub render: &'a Render<'a>,
}

/// The deploy, planned.
#[derive(Debug)]
pub struct Plan {
    pub hosts: Vec<HostPlan>,
    pub shared: Shared,
}

/// `--source PATH` (relative to `cwd`) instead of the inventory's `source`; a git URL needs a
/// ref from the command line or the inventory.
pub fn override_source(cfg: &mut DeployConfig, source: &str, git_ref: Option<&str>, cwd: &Path) -> Result<()> {
    cfg.source = Source::parse(source, cwd);
    if matches!(cfg.source, Source::Git(_)) && git_ref.is_none() && cfg.git_ref.is_none() {
        return Err(Error::usage(format!("--source {source} is a git URL: it needs --ref")).hint("e.g. --ref main"));
    }
    Ok(())
}

/// The deploy's hosts, narrowed to those `only` matches; a pattern that matches none of them
/// is an error.
pub fn hosts(inv: &Inventory, cfg: &DeployConfig, only: Option<&str>) -> Result<Vec<Arc<Host>>> {
    let mut hosts = inventory::select(inv, &cfg.hosts)?;
    if let Some(only) = only {
        let asked = inventory::select(inv, only)?;
        let all = hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ");
        hosts.retain(|h| asked.iter().any(|a| Arc::ptr_eq(a, h)));
        if hosts.is_empty() {
            return Err(Error::usage(format!("`{only}` matches none of deploy.{}'s hosts ({all})", cfg.name))
                .hint("name some of those hosts, or leave the pattern out to deploy to all of them"));
        }
    }
    Ok(hosts)
}

/// What the run does: back to a release (`--rollback`), nothing but read (`--list`), a clone
/// of a git URL, or an upload of the packed source folder (the one step here that reads files).
pub fn choose(cfg: &DeployConfig, request: &Request) -> Result<Chosen> {
    let none = |target| Ok(Chosen { target, payload: None, warning: None });
    if let Some(release) = request.rollback {
        return none(Target::Previous { release: Some(release.to_string()).filter(|r| !r.is_empty()) });
    }
    if request.list {
        return none(Target::Previous { release: None });
    }
    let git_ref = request.git_ref.or(cfg.git_ref.as_deref());
    match &cfg.source {
        Source::Git(url) => {
            let git_ref = git_ref.expect("a git source has a ref: checked at load and by override_source");
            none(Target::Clone { url: url.clone(), git_ref: git_ref.to_string() })
        }
        Source::Path(path) => {
            let packed = super::source::pack(path, git_ref)?;
            let name = format!("{}-{}", crate::clock::compact_stamp(), packed.rev);
            let revision = match git_ref {
                Some(r) if !packed.rev.starts_with(r) => format!("{} ({r})", packed.rev),
                _ => packed.rev.clone(),
            };
            Ok(Chosen {
                target: Target::Upload { name, revision },
                payload: Some(Arc::new(packed.tar)),
                warning: packed.warning,
            })
        }
    }
}

/// One [`HostPlan`] per host of `input`, in order, and what they share.
pub fn plan(input: Input) -> Result<Plan> {
    let Input { cfg, inv, ref hosts, request, chosen, ref deployed_by, render } = input;
    let via: Vec<Arc<Host>> = match &cfg.health_via {
        Some(p) => inventory::select(inv, p)?,
        None => vec![],
    };
    // Rolling (other hosts stay in rotation): each host is drained while it is deployed.
    let rolling = cfg.drain && !via.is_empty() && hosts.len() > cfg.batch;
    let mut plans = Vec::with_capacity(hosts.len());
    for host in hosts {
        let field = Field { cfg, inv, host, render };
        let health_port = field.port()?;
        let root = field.render("root", &cfg.root)?;
        if let Some(why) = check_root(&root) {
            return Err(field
                .error(format!("deploy.{}.root {why}, got {root:?}", cfg.name))
                .hint("an absolute folder of its own, e.g. root = \"/srv/microblog\""));
        }
        let health_address = field.render("health_address", &cfg.health_address)?;
        let drain = if rolling {
            // A drain is a session of its own on the via host (its lock); on the host being
            // deployed that lock is the deploy's own, so the drain would wait on itself.
            if via.iter().any(|v| Arc::ptr_eq(v, host)) {
                return Err(field
                    .error(format!(
                        "deploy.{}: {} is one of its own health_via hosts, so it cannot be drained while it is deployed",
                        cfg.name, host.name
                    ))
                    .field("health_via")
                    .hint("let health_via name only the nginx hosts that are not deployed here, or set drain = false"));
            }
            Some(format!("{health_address}:{health_port}"))
        } else {
            None
        };
        let cache = match &cfg.cache {
            Some(c) => Some(Cache { build: field.render_all("cache_build", &c.build)?, ..c.clone() }),
            None => None,
        };
        plans.push(HostPlan {
            host: host.clone(),
            settings: HostSettings {
                root,
                user: field.render("user", &cfg.user)?,
                env_file: cfg.env_file.as_ref().map(|e| field.render("env_file", e)).transpose()?,
                build: field.render_all("build", &cfg.build)?,
                restart: field.render("restart", &cfg.restart)?,
                keep: cfg.keep,
                cache,
                confirm_timeout: cfg.confirm_timeout,
                deployed_by: deployed_by.clone(),
            },
            target: chosen.target.clone(),
            health_address,
            health_port,
            drain,
            via: via.clone(),
        });
    }
    let via_sites = via.iter().map(|v| via_site(cfg, inv, v, render)).collect::<Result<Vec<_>>>()?;
    let tls = match &cfg.health_ca_file {
        _ if !via_sites.iter().any(|s| s.https) => None,
        Some(file) => Some(super::health::Tls::ca_file(file)?),
        None => Some(super::health::Tls::system()),
    };
    let shared = Shared {
        health_path: cfg.health_path.clone(),
        health_status: cfg.health_status,
        health_timeout: cfg.health_timeout,
        via_sites,
        tls,
        lock_timeout: request.lock_timeout,
        timeout: request.timeout,
        batch: cfg.batch,
        payload: chosen.payload,
        drain_file: cfg.drain_file.clone(),
        drain_reload: cfg.drain_reload.clone(),
    };
    Ok(Plan { hosts: plans, shared })
}

/// How the site is checked through nginx on `via`: over HTTPS when `health_via_https` says so,
/// else when its `tls` (the nginx role's var) is "acme" or "files"; on `health_via_port`, else
/// 443 or 80; named `health_via_name`, else its first `server_name` that is not `_`, else its
/// address.
fn via_site(cfg: &DeployConfig, inv: &Inventory, via: &Host, render: &Render<'_>) -> Result<ViaSite> {
    let field = |name: &str, text: &str| {
        render(via, text).map_err(|why| {
            Error::new(ErrorKind::Template, format!("cannot render deploy.{}.{name} for {}: {why}", cfg.name, via.name))
                .at_file(&inv.path)
                .host(&via.name)
        })
    };
    let https = match cfg.health_via_https {
        Some(h) => h,
        None => matches!(field("health_via_https", "{{ tls | default('off') }}")?.trim(), "acme" | "files"),
    };
    let port = cfg.health_via_port.unwrap_or(if https { 443 } else { super::config::DEFAULTS.health_via_port });
    let name = match &cfg.health_via_name {
        Some(t) => field("health_via_name", t)?.trim().to_string(),
        None => field("health_via_name", "{{ server_name | default('_') }}")?
            .split_whitespace()
            .find(|n| *n != "_")
            .unwrap_or(&via.address)
            .to_string(),
    };
    Ok(ViaSite { https, port, name })
}

/// The deploy's fields as one host sees them.
struct Field<'a> {
    cfg: &'a DeployConfig,
    inv: &'a Inventory,
    host: &'a Host,
    render: &'a Render<'a>,
}

impl Field<'_> {
    /// An inventory error about this host's deploy.
    fn error(&self, message: String) -> Error {
        Error::new(ErrorKind::Inventory, message).at_file(&self.inv.path).host(&self.host.name)
    }

    fn render(&self, field: &str, text: &str) -> Result<String> {
        (self.render)(self.host, text).map_err(|why| {
            Error::new(ErrorKind::Template, format!("cannot render deploy.{}.{field}: {why}", self.cfg.name))
                .at_file(&self.inv.path)
                .host(&self.host.name)
        })
    }

    fn render_all(&self, field: &str, texts: &[String]) -> Result<Vec<String>> {
        texts.iter().map(|t| self.render(field, t)).collect()
    }

    /// `health_port`, rendered, as a port.
    fn port(&self) -> Result<u16> {
        let text = self.render("health_port", &self.cfg.health_port)?;
        match text.trim().parse() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(self
                .error(format!("deploy.{}.health_port renders to `{text}`, not a port", self.cfg.name))
                .hint("set `health_port` in the deploy table, or `app_port` in the host's vars")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three app hosts and a web host; `deploy` is the rest of `[deploy.app]`.
    fn inventory(deploy: &str) -> Inventory {
        let mut text = String::new();
        for (name, group) in [("a1", "app"), ("a2", "app"), ("a3", "app"), ("w1", "web")] {
            text.push_str(&format!("[hosts.{name}]\naddress = \"10.0.0.1\"\ngroups = [\"{group}\"]\n"));
        }
        text.push_str(&format!("[deploy.app]\nsource = \"app\"\nhealth_address = \"10.0.0.9\"\n{deploy}"));
        Inventory::parse(Path::new("/inv/inventory.toml"), &text).unwrap()
    }

    /// A stand-in for the template engine: `{{ app_port }}` is 8000, `{{ host }}` the host's
    /// name, `{{ broken }}` fails.
    fn render(host: &Host, text: &str) -> std::result::Result<String, String> {
        if text.contains("{{ broken }}") {
            return Err("undefined variable `broken`".into());
        }
        Ok(text.replace("{{ app_port }}", "8000").replace("{{ host }}", &host.name))
    }

    /// Plans `[deploy.app]` for the hosts `only` leaves, as `request` asks.
    fn plan_for(deploy: &str, only: Option<&str>, request: Request) -> Result<Plan> {
        let inv = inventory(deploy);
        let cfg = DeployConfig::load(&inv, "app")?;
        let hosts = hosts(&inv, &cfg, only)?;
        let request = Request { only, ..request };
        plan(Input {
            cfg: &cfg,
            inv: &inv,
            hosts,
            request: &request,
            chosen: choose(&cfg, &request)?,
            deployed_by: "me@here".into(),
            render: &render,
        })
    }

    fn list() -> Request<'static> {
        Request { list: true, ..Default::default() }
    }

    #[test]
    fn a_health_port_that_renders_to_no_port_names_the_host_and_the_text() {
        for (port, text) in [("\"{{ host }}\"", "a1"), ("\"70000\"", "70000"), ("\"0\"", "0"), ("\"\"", "")] {
            let e = plan_for(&format!("health_port = {port}\n"), None, list()).unwrap_err();
            assert_eq!(e.message, format!("deploy.app.health_port renders to `{text}`, not a port"), "{port}");
            assert_eq!((e.host.as_deref(), e.exit_code()), (Some("a1"), 2), "{port}");
        }
        let e = plan_for("health_port = \"{{ broken }}\"\n", None, list()).unwrap_err();
        assert_eq!(e.message, "cannot render deploy.app.health_port: undefined variable `broken`");
        let plans = plan_for("health_port = \" 8001 \"\n", None, list()).unwrap().hosts;
        assert!(plans.iter().all(|p| p.health_port == 8001));
        assert_eq!(plan_for("", None, list()).unwrap().hosts[0].health_port, 8000, "the default `{{{{ app_port }}}}`");
    }

    #[test]
    fn a_root_that_renders_to_a_relative_path_is_refused_for_that_host() {
        let e = plan_for("root = \"{{ host }}/srv\"\n", None, list()).unwrap_err();
        assert_eq!(e.message, "deploy.app.root must be an absolute path, got \"a1/srv\"");
        assert_eq!((e.host.as_deref(), e.file.as_deref()), (Some("a1"), Some(Path::new("/inv/inventory.toml"))));
        let plans = plan_for("root = \"/srv/{{ host }}\"\n", None, list()).unwrap().hosts;
        let roots: Vec<&str> = plans.iter().map(|p| p.settings.root.as_str()).collect();
        assert_eq!(roots, ["/srv/a1", "/srv/a2", "/srv/a3"]);
    }

    #[test]
    fn a_host_in_its_own_health_via_cannot_be_drained() {
        let e = plan_for("health_via = \"app,web\"\n", None, list()).unwrap_err();
        assert!(
            e.message.ends_with("a1 is one of its own health_via hosts, so it cannot be drained while it is deployed")
        );
        assert_eq!((e.host.as_deref(), e.field.as_deref()), (Some("a1"), Some("health_via")));
        // Not rolling (all at once, or no drain): nothing to drain, so no conflict.
        assert!(plan_for("health_via = \"app,web\"\nbatch = 3\n", None, list()).is_ok());
        assert!(plan_for("health_via = \"app,web\"\ndrain = false\n", None, list()).is_ok());
        // Rolling through web: each host drained at its own address and port.
        let plans = plan_for("health_via = \"web\"\n", None, list()).unwrap().hosts;
        assert!(
            plans
                .iter()
                .all(|p| p.drain.as_deref() == Some("10.0.0.9:8000") && p.via.len() == 1 && p.via[0].name == "w1")
        );
        // One host of three is not rolling: it is all there is to deploy.
        let plans = plan_for("health_via = \"web\"\n", Some("a2"), list()).unwrap().hosts;
        assert_eq!(plans[0].drain, None);
    }

    #[test]
    fn only_narrows_to_the_deploys_own_hosts() {
        let names = |only| {
            plan_for("", only, list()).map(|p| p.hosts.into_iter().map(|h| h.host.name.clone()).collect::<Vec<_>>())
        };
        assert_eq!(names(None).unwrap(), ["a1", "a2", "a3"]);
        assert_eq!(names(Some("a3,a1")).unwrap(), ["a1", "a3"]);
        assert_eq!(names(Some("all,!a2")).unwrap(), ["a1", "a3"]);
        let e = names(Some("w1")).unwrap_err();
        assert_eq!(e.message, "`w1` matches none of deploy.app's hosts (a1, a2, a3)");
        assert_eq!(e.exit_code(), 2);
        assert!(names(Some("nope")).unwrap_err().message.contains("matches no host or group"));
    }

    #[test]
    fn rollback_and_list_upload_nothing() {
        let target = |request: Request| {
            let p = plan_for("", None, request).unwrap();
            assert!(p.shared.payload.is_none());
            match &p.hosts[0].target {
                Target::Previous { release } => release.clone(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(target(list()), None);
        assert_eq!(target(Request { rollback: Some(""), ..Default::default() }), None);
        let named = Request { rollback: Some("20261207T180501.123Z-abc"), ..Default::default() };
        assert_eq!(target(named).as_deref(), Some("20261207T180501.123Z-abc"));
        // --list with --rollback is a rollback: it names the release.
        let both = Request { list: true, rollback: Some("r1"), ..Default::default() };
        assert_eq!(target(both).as_deref(), Some("r1"));
    }

    #[test]
    fn a_git_source_is_cloned_at_the_ref_asked_for() {
        let inv = inventory("");
        let mut cfg = DeployConfig::load(&inv, "app").unwrap();
        let e = override_source(&mut cfg, "https://example.invalid/app.git", None, Path::new("/ci")).unwrap_err();
        assert_eq!(e.message, "--source https://example.invalid/app.git is a git URL: it needs --ref");
        override_source(&mut cfg, "https://example.invalid/app.git", Some("v2"), Path::new("/ci")).unwrap();
        let chosen = choose(&cfg, &Request { git_ref: Some("v2"), ..Default::default() }).unwrap();
        assert!(chosen.payload.is_none());
        match chosen.target {
            Target::Clone { url, git_ref } => {
                assert_eq!((url.as_str(), git_ref.as_str()), ("https://example.invalid/app.git", "v2"))
            }
            other => panic!("{other:?}"),
        }
        override_source(&mut cfg, "build/app", None, Path::new("/ci")).unwrap();
        assert_eq!(cfg.source, Source::Path("/ci/build/app".into()));
    }

    #[test]
    fn fields_are_rendered_per_host() {
        let p = plan_for(
            "user = \"u-{{ host }}\"\nbuild = [\"make {{ host }}\"]\ncache_build = [\"npm ci # {{ host }}\"]\nrestart = \"restart {{ host }}\"\nenv_file = \"/etc/{{ host }}.env\"\n",
            Some("a2"),
            list(),
        )
        .unwrap();
        let s = &p.hosts[0].settings;
        assert_eq!(
            (s.user.as_str(), s.build.as_slice(), s.restart.as_str(), s.env_file.as_deref()),
            ("u-a2", &["make a2".to_string()][..], "restart a2", Some("/etc/a2.env"))
        );
        assert_eq!(s.cache.as_ref().unwrap().build, ["npm ci # a2"]);
        assert_eq!(s.deployed_by, "me@here");
        let e = plan_for("user = \"{{ broken }}\"\n", None, list()).unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.host.as_deref()),
            ("cannot render deploy.app.user: undefined variable `broken`", Some("a1"))
        );
    }
}
