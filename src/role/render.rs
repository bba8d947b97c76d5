//! Rendering one host's roles into its [`Desired`] state: vars merged (role defaults <
//! inventory defaults < group < host < `-e`), every string field and template rendered with
//! the context `host`, `hosts`, `groups` plus the host's vars, contents hashed, notify targets
//! checked. Nothing here touches the network.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;

use minijinja::Value;

use super::load::{Role, RoleSet};
use super::raw::{RawFile, RawMode};
use super::template::RenderError;
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::{Host, Inventory, Vars};
use crate::plan::desired::*;

/// The roles a host's groups give it, in group order, each once (dependencies not expanded).
pub fn role_names_for(inv: &Inventory, host: &Host) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for g in &host.groups {
        for r in &inv.groups[g].roles {
            if !names.contains(r) {
                names.push(r.clone());
            }
        }
    }
    names
}

/// Renders hosts of one inventory with one role set.
pub struct Renderer<'a> {
    inv: &'a Inventory,
    roles: &'a RoleSet,
    vars: HashMap<String, Vars>,
    /// Each host's `host` value, built once (cheap to clone: shared).
    host_values: HashMap<String, Value>,
    hosts_value: Value,
    groups_value: Value,
}

impl<'a> Renderer<'a> {
    /// Computes every host's final vars (needed up front: templates may read other hosts').
    pub fn new(inv: &'a Inventory, roles: &'a RoleSet, extra: &Vars) -> Renderer<'a> {
        let mut vars = HashMap::new();
        for host in &inv.hosts {
            let mut v = Vars::new();
            for role in roles.expand(&role_names_for(inv, host)) {
                for (k, val) in &role.raw.defaults {
                    let mut val = val.clone();
                    crate::inventory::dates_as_text(&mut val);
                    v.insert(k.clone(), val);
                }
            }
            for (k, val) in host.vars.iter().chain(extra.iter()) {
                v.insert(k.clone(), val.clone());
            }
            vars.insert(host.name.clone(), v);
        }
        let host_values: HashMap<String, Value> =
            inv.hosts.iter().map(|h| (h.name.clone(), host_value(h, &vars[&h.name]))).collect();
        let sorted: BTreeMap<&String, &Value> = host_values.iter().collect();
        let groups: BTreeMap<String, Vec<Value>> = inv
            .groups
            .values()
            .map(|g| (g.name.clone(), g.hosts.iter().map(|h| host_values[h].clone()).collect()))
            .collect();
        let (hosts_value, groups_value) = (to_value(&sorted), to_value(&groups));
        Renderer { inv, roles, vars, host_values, hosts_value, groups_value }
    }

    pub fn vars(&self, host: &str) -> &Vars {
        &self.vars[host]
    }

    /// The template context for `host`: its vars at top level, plus `host`, `hosts`, `groups`.
    pub fn context(&self, host: &Host) -> Value {
        let vars = &self.vars[&host.name];
        let mut ctx: BTreeMap<String, Value> = vars.iter().map(|(k, v)| (k.clone(), to_value(v))).collect();
        ctx.insert("host".into(), self.host_values[&host.name].clone());
        ctx.insert("hosts".into(), self.hosts_value.clone());
        ctx.insert("groups".into(), self.groups_value.clone());
        to_value(&ctx)
    }

    /// Renders `host`'s desired state; `only` limits resources to those roles.
    pub fn render(&self, host: &Host, only: Option<&[String]>) -> Result<Desired> {
        let ctx = self.context(host);
        let mut desired = Desired { host: host.name.clone(), ..Default::default() };
        let roles = self.roles.expand(&role_names_for(self.inv, host));
        for role in &roles {
            self.add_handlers(role, host, &ctx, &mut desired)?;
        }
        for role in roles {
            if only.is_some_and(|names| !names.contains(&role.name)) {
                continue;
            }
            RoleRenderer { set: self.roles, role, host, ctx: &ctx }.render(&mut desired)?;
        }
        check_unique_paths(&desired)?;
        check_notify(&desired, self.roles)?;
        Ok(desired)
    }

    fn add_handlers(&self, role: &Role, host: &Host, ctx: &Value, desired: &mut Desired) -> Result<()> {
        let r = RoleRenderer { set: self.roles, role, host, ctx };
        for h in &role.raw.handler {
            let span = h.span();
            let h = h.get_ref();
            let run = match (&h.service, &h.action, &h.run) {
                (Some(service), action, None) => {
                    let action = action.as_deref().unwrap_or("restart");
                    if !["restart", "reload", "reload-or-restart", "try-restart", "start", "stop"].contains(&action) {
                        return Err(role
                            .error(&span, format!("handler `{}`: unknown action `{action}`", h.name))
                            .field("handler.action")
                            .hint("use restart, reload, reload-or-restart, try-restart, start or stop"));
                    }
                    format!("systemctl {action} {}", crate::shell::quote(&r.text(service, &span, "handler.service")?))
                }
                (None, None, Some(run)) => r.text(run, &span, "handler.run")?,
                _ => {
                    return Err(role
                        .error(&span, format!("handler `{}` needs either `service` (with `action`) or `run`", h.name))
                        .field("handler"));
                }
            };
            match desired.handlers.iter().find(|x| x.name == h.name) {
                Some(existing) if existing.run != run => {
                    return Err(role
                        .error(
                            &span,
                            format!(
                                "handler `{}` is also defined by role `{}` with another action",
                                h.name, existing.origin.role
                            ),
                        )
                        .hint("give one of them another name"));
                }
                Some(_) => {}
                None => desired.handlers.push(HandlerSpec { origin: r.origin(&span), name: h.name.clone(), run }),
            }
        }
        Ok(())
    }
}

/// Any serializable value as a template value.
fn to_value(v: &impl serde::Serialize) -> Value {
    Value::from(minijinja::value::Serde(v))
}

/// A host as templates see it (`host.name`, `hosts["web"].vars.x`).
#[derive(serde::Serialize)]
struct HostView<'a> {
    name: &'a str,
    address: &'a str,
    port: u16,
    user: &'a str,
    groups: &'a [String],
    vars: &'a Vars,
}

fn host_value(h: &Host, vars: &Vars) -> Value {
    to_value(&HostView { name: &h.name, address: &h.address, port: h.port, user: &h.user, groups: &h.groups, vars })
}

/// Renders one role's resources for one host.
struct RoleRenderer<'r> {
    set: &'r RoleSet,
    role: &'r Role,
    host: &'r Host,
    ctx: &'r Value,
}

impl RoleRenderer<'_> {
    fn origin(&self, span: &Range<usize>) -> Origin {
        Origin { role: self.role.name.clone(), line: self.role.line(span) }
    }

    fn error(&self, span: &Range<usize>, field: &str, message: impl Into<String>) -> Error {
        self.role.error(span, message).field(field).host(&self.host.name)
    }

    /// Renders a string field of a resource.
    fn text(&self, text: &str, span: &Range<usize>, field: &str) -> Result<String> {
        self.set.templates.render_str(text, self.ctx).map_err(|RenderError { message, .. }| {
            let mut e = self.error(span, field, format!("cannot render `{field}`: {message}"));
            e.kind = ErrorKind::Template;
            e.hint("define the variable in the inventory (host, group or defaults vars), in the role's [defaults], or with -e")
        })
    }

    fn path(&self, text: &str, span: &Range<usize>, field: &str) -> Result<String> {
        let p = self.text(text, span, field)?;
        super::names::absolute_path(field, &p).map_err(|r| self.error(span, field, r.message).hint(r.hint))
    }

    fn meta(
        &self,
        owner: &Option<String>,
        group: &Option<String>,
        mode: &Option<RawMode>,
        span: &Range<usize>,
        kind: &str,
    ) -> Result<Meta> {
        let owner = owner.as_ref().map(|o| self.text(o, span, &format!("{kind}.owner"))).transpose()?;
        let group = group.as_ref().map(|g| self.text(g, span, &format!("{kind}.group"))).transpose()?;
        let mode = match mode {
            None => None,
            Some(RawMode::Number(n)) if *n <= 0o7777 => Some(*n),
            Some(RawMode::Text(t)) => {
                let t = self.text(t, span, &format!("{kind}.mode"))?;
                match u32::from_str_radix(&t, 8) {
                    Ok(m) if m <= 0o7777 && !t.is_empty() => Some(m),
                    _ => {
                        return Err(self
                            .error(span, &format!("{kind}.mode"), format!("invalid mode `{t}`"))
                            .hint("write an octal mode as a string, e.g. mode = \"0644\""));
                    }
                }
            }
            Some(RawMode::Number(n)) => {
                return Err(self
                    .error(span, &format!("{kind}.mode"), format!("invalid mode {n}"))
                    .hint("write an octal mode as a string, e.g. mode = \"0644\""));
            }
        };
        Ok(Meta { owner, group, mode })
    }

    fn render(&self, d: &mut Desired) -> Result<()> {
        let raw = &self.role.raw;
        for repo in &raw.apt_repository {
            self.apt_repository(repo.get_ref(), &repo.span(), d)?;
        }
        for p in &raw.package {
            for name in &p.get_ref().names {
                let name = self.text(name, &p.span(), "package.names")?;
                if !d.packages.iter().any(|x| x.name == name) {
                    d.packages.push(PackageSpec { origin: self.origin(&p.span()), name });
                }
            }
        }
        for dir in &raw.directory {
            let (span, r) = (dir.span(), dir.get_ref());
            d.dirs.push(DirSpec {
                origin: self.origin(&span),
                path: self.path(&r.path, &span, "directory.path")?,
                meta: self.meta(&r.owner, &r.group, &r.mode, &span, "directory")?,
                notify: r.notify.clone(),
            });
        }
        for f in &raw.file {
            d.files.push(self.file(f.get_ref(), &f.span())?);
        }
        for l in &raw.link {
            let (span, r) = (l.span(), l.get_ref());
            d.links.push(LinkSpec {
                origin: self.origin(&span),
                path: self.path(&r.path, &span, "link.path")?,
                target: self.text(&r.target, &span, "link.target")?,
                notify: r.notify.clone(),
            });
        }
        for a in &raw.absent {
            let (span, r) = (a.span(), a.get_ref());
            d.absent.push(AbsentSpec {
                origin: self.origin(&span),
                path: self.path(&r.path, &span, "absent.path")?,
                notify: r.notify.clone(),
            });
        }
        for s in &raw.service {
            let (span, r) = (s.span(), s.get_ref());
            let running = match r.state.as_deref() {
                None => None,
                Some("started") => Some(true),
                Some("stopped") => Some(false),
                Some(other) => {
                    return Err(self
                        .error(&span, "service.state", format!("unknown service state `{other}`"))
                        .hint("use \"started\" or \"stopped\"; restarts belong in handlers"));
                }
            };
            d.services.push(ServiceSpec {
                origin: self.origin(&span),
                name: self.text(&r.name, &span, "service.name")?,
                enabled: r.enabled,
                running,
                notify: r.notify.clone(),
            });
        }
        for c in &raw.command {
            let (span, r) = (c.span(), c.get_ref());
            if r.creates.is_none() && r.unless.is_none() {
                return Err(self
                    .error(&span, "command", format!("command `{}` has no guard", r.name))
                    .hint("add `creates = \"/path\"` or `unless = \"test ...\"` so it runs only when needed, or make it a [[handler]] that runs when notified"));
            }
            d.commands.push(CommandSpec {
                origin: self.origin(&span),
                name: r.name.clone(),
                run: self.text(&r.run, &span, "command.run")?,
                creates: r.creates.as_ref().map(|p| self.path(p, &span, "command.creates")).transpose()?,
                unless: r.unless.as_ref().map(|u| self.text(u, &span, "command.unless")).transpose()?,
                notify: r.notify.clone(),
                early: false,
            });
        }
        Ok(())
    }

    fn file(&self, r: &RawFile, span: &Range<usize>) -> Result<FileSpec> {
        let dest = self.path(&r.dest, span, "file.dest")?;
        let content: Arc<Vec<u8>> = match (&r.template, &r.src, &r.content) {
            (Some(t), None, None) => {
                if self.set.templates.file(&self.role.name, t).is_none() {
                    return Err(self
                        .error(span, "file.template", format!("template `{t}` not found"))
                        .hint(format!("create {}", self.role.dir.join("templates").join(t).display())));
                }
                let text = self.set.templates.render_file(&self.role.name, t, self.ctx).map_err(|e| {
                    let path = self.set.templates.file(&self.role.name, t).expect("checked").to_path_buf();
                    let mut err = Error::new(ErrorKind::Template, e.message)
                        .at_file(path)
                        .host(&self.host.name)
                        .task(format!("role {}: file {dest}", self.role.name))
                        .hint("define the variable in the inventory (host, group or defaults vars), in the role's [defaults], or with -e");
                    if let Some(line) = e.line {
                        err = err.at_line(line, 1);
                    }
                    err
                })?;
                Arc::new(text.into_bytes())
            }
            (None, Some(src), None) => {
                let src = self.text(src, span, "file.src")?;
                super::names::files_name("file.src", &src)
                    .map_err(|r| self.error(span, "file.src", r.message).hint(r.hint))?;
                self.set.static_file(&src).map_err(|e| {
                    self.error(
                        span,
                        "file.src",
                        format!("cannot read static file {}", self.set.files_dir.join(&src).display()),
                    )
                    .caused_by(e)
                })?
            }
            (None, None, Some(content)) => Arc::new(self.text(content, span, "file.content")?.into_bytes()),
            _ => {
                return Err(self.error(
                    span,
                    "file",
                    format!("file {dest} needs exactly one of `template`, `src` or `content`"),
                ));
            }
        };
        let validate = r.validate.as_ref().map(|v| self.text(v, span, "file.validate")).transpose()?;
        if let Some(v) = &validate
            && crate::shell::fill_placeholder(v, "F").is_none()
        {
            return Err(self
                .error(span, "file.validate", format!("`validate` must contain %s (the staged file), got `{v}`"))
                .hint("write %s where the command takes the file; a literal % is written %%"));
        }
        // A file rendered from a secret is sensitive whatever the role says.
        let sensitive = r.sensitive || crate::secrets::redact::contains_secret(&content);
        Ok(FileSpec {
            origin: self.origin(span),
            sha256: sha256_hex(&content),
            content,
            dest,
            meta: self.meta(&r.owner, &r.group, &r.mode, span, "file")?,
            validate,
            sensitive,
            notify: r.notify.clone(),
            apt_source: false,
        })
    }

    fn apt_repository(&self, r: &super::raw::RawAptRepository, span: &Range<usize>, d: &mut Desired) -> Result<()> {
        let field = |f: &str| format!("apt_repository.{f}");
        let root = Meta { owner: Some("root".into()), group: Some("root".into()), mode: Some(0o644) };
        let keyring = match (&r.key, &r.key_url, &r.key_fingerprint) {
            (Some(key), None, None) => {
                let content = self.set.static_file(key).map_err(|e| {
                    self.error(
                        span,
                        &field("key"),
                        format!("cannot read keyring {}", self.set.files_dir.join(key).display()),
                    )
                    .caused_by(e)
                })?;
                let ext = if key.ends_with(".asc") { "asc" } else { "gpg" };
                let keyring = format!("/etc/apt/keyrings/{}.{ext}", r.name);
                d.files.push(FileSpec {
                    origin: self.origin(span),
                    sha256: sha256_hex(&content),
                    content,
                    dest: keyring.clone(),
                    meta: root.clone(),
                    validate: None,
                    sensitive: false,
                    notify: vec![],
                    apt_source: true,
                });
                keyring
            }
            (None, Some(url), Some(fingerprint)) => {
                let url = self.text(url, span, &field("key_url"))?;
                let fingerprints = super::apt_key::pinned(&self.text(fingerprint, span, &field("key_fingerprint"))?);
                let keyring = format!("/etc/apt/keyrings/{}.asc", r.name);
                d.commands.push(CommandSpec {
                    origin: self.origin(span),
                    name: format!("fetch apt key {}", r.name),
                    run: super::apt_key::fetch_script(&url, &fingerprints, &keyring),
                    creates: Some(keyring.clone()),
                    unless: None,
                    notify: vec![],
                    early: true,
                });
                keyring
            }
            _ => {
                return Err(self
                    .error(span, "apt_repository", format!("apt repository `{}` needs `key`, or `key_url` with `key_fingerprint`", r.name))
                    .hint("key = \"name.gpg\" (in files/), or key_url = \"https://...\" and key_fingerprint = \"FULL FINGERPRINT\""));
            }
        };
        let line = format!(
            "# managed by microctl (role {})\ndeb [signed-by={keyring}] {} {} {}\n",
            self.role.name,
            self.text(&r.url, span, &field("url"))?,
            self.text(&r.suite, span, &field("suite"))?,
            r.components.join(" ")
        );
        let content = Arc::new(line.into_bytes());
        d.files.push(FileSpec {
            origin: self.origin(span),
            sha256: sha256_hex(&content),
            content,
            dest: format!("/etc/apt/sources.list.d/{}.list", r.name),
            meta: root,
            validate: None,
            sensitive: false,
            notify: vec![],
            apt_source: true,
        });
        Ok(())
    }
}

/// Two resources managing one path would fight on every run.
fn check_unique_paths(d: &Desired) -> Result<()> {
    let mut seen: HashMap<&str, &Origin> = HashMap::new();
    let all = d
        .files
        .iter()
        .map(|f| (f.dest.as_str(), &f.origin))
        .chain(d.dirs.iter().map(|x| (x.path.as_str(), &x.origin)))
        .chain(d.links.iter().map(|x| (x.path.as_str(), &x.origin)))
        .chain(d.absent.iter().map(|x| (x.path.as_str(), &x.origin)));
    for (path, origin) in all {
        if let Some(first) = seen.insert(path, origin) {
            return Err(Error::new(
                ErrorKind::Role,
                format!(
                    "{path} is managed twice on host {}: by role `{}` (line {}) and role `{}` (line {})",
                    d.host, first.role, first.line, origin.role, origin.line
                ),
            )
            .host(&d.host)
            .hint("manage each path in one resource only"));
        }
    }
    Ok(())
}

/// Every `notify` must name a handler of the host's roles.
fn check_notify(d: &Desired, roles: &RoleSet) -> Result<()> {
    let notifies = d
        .files
        .iter()
        .map(|f| (&f.notify, &f.origin))
        .chain(d.dirs.iter().map(|x| (&x.notify, &x.origin)))
        .chain(d.links.iter().map(|x| (&x.notify, &x.origin)))
        .chain(d.absent.iter().map(|x| (&x.notify, &x.origin)))
        .chain(d.services.iter().map(|x| (&x.notify, &x.origin)))
        .chain(d.commands.iter().map(|x| (&x.notify, &x.origin)));
    for (names, origin) in notifies {
        for name in names {
            if !d.handlers.iter().any(|h| &h.name == name) {
                let role = roles.get(&origin.role);
                let known: Vec<&str> = d.handlers.iter().map(|h| h.name.as_str()).collect();
                return Err(Error::new(ErrorKind::Role, format!("`notify` names unknown handler `{name}`"))
                    .at_file(&role.toml_path)
                    .at_line(origin.line, 1)
                    .host(&d.host)
                    .field("notify")
                    .hint(if known.is_empty() {
                        "define it as a [[handler]] in this role or a role it depends on".to_string()
                    } else {
                        format!("handlers on this host: {}", known.join(", "))
                    }));
            }
        }
    }
    Ok(())
}
