//! Rendering one host's roles into its [`Desired`] state: vars merged (role defaults <
//! inventory defaults < group < host < `-e`), every string field and template rendered with
//! the context `host`, `hosts`, `groups` plus the host's vars, contents hashed, notify targets
//! checked. A file whose content read a secret (`secrets::access`) is sensitive, and 0600
//! when its role sets no `mode` ([`Renderer::warnings`] says so). Nothing here touches the
//! network.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use minijinja::Value;

use super::load::{Role, RoleSet};
use super::resolve::{
    AptKey, AptRepositoryDecl, At, ContentSpec, FileDecl, HandlerRun, MODE_HINT, MetaSpec, ModeSpec, Text, parse_mode,
    validate_quoted_placeholder, validate_without_placeholder,
};
use super::template::RenderError;
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::{Host, Inventory, Vars};
use crate::plan::desired::*;

/// The running microctl's own binary (`/proc/self/exe`), read and hashed once per run.
fn microctl_binary() -> std::io::Result<Arc<Blob>> {
    static BINARY: OnceLock<std::result::Result<Arc<Blob>, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let path = std::env::current_exe().map_err(|e| e.to_string())?;
            std::fs::read(&path).map(|b| Arc::new(Blob::new(b))).map_err(|e| format!("{}: {e}", path.display()))
        })
        .clone()
        .map_err(std::io::Error::other)
}

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

/// What hosts with the same groups share.
struct Kind<'a> {
    roles: Vec<&'a Role>,
    defaults: Vars,
    value: Value,
    /// A template or field of these roles reads `facts`.
    uses_facts: bool,
}

/// Renders hosts of one inventory with one role set. Per host, nothing is copied up front:
/// a host's vars stay in layers (its roles' defaults, shared by every host with the same
/// groups; its inventory vars: the defaults' and each group's, shared too, and its own;
/// `-e`), each shared layer made a template value once, and its template value is built the
/// first time a template asks for it. `hosts` and `groups` (every host's value) are built once, and only
/// when a template of the run names them or a caller asks for the full context.
pub struct Renderer<'a> {
    inv: &'a Inventory,
    roles: &'a RoleSet,
    extra: Vars,
    extra_value: Value,
    /// Per host (inventory order): which entry of `kinds` it is.
    kind_of: Vec<usize>,
    /// What hosts with the same groups share: their roles (dependencies first) and those
    /// roles' defaults (merged in role order), as vars and as a template value.
    kinds: Vec<Kind<'a>>,
    /// The template value of each inventory vars layer hosts share (defaults, a group's),
    /// by the layer's address (see `inventory::HostVars`: they are `Arc`s).
    shared_values: HashMap<usize, Value>,
    /// Per host: its `host` value, built on first use.
    host_values: Vec<OnceLock<Value>>,
    /// `hosts` and `groups`, built on first use.
    everyone: OnceLock<(Value, Value)>,
    /// Whether any template of the run names `hosts` or `groups`.
    templates_see_everyone: bool,
    /// Warnings of the renders so far, each once with its hosts ([`Renderer::warnings`]).
    warnings: Mutex<Vec<(Error, Vec<String>)>>,
    /// Per host (inventory order): its `facts` value and the fingerprint they go with
    /// (`crate::facts`), once set; only hosts whose roles read `facts` get them.
    facts: Mutex<HashMap<usize, (Value, String)>>,
}

impl<'a> Renderer<'a> {
    pub fn new(inv: &'a Inventory, roles: &'a RoleSet, extra: &Vars) -> Renderer<'a> {
        let mut by_groups: HashMap<&[String], usize> = HashMap::new();
        let mut kinds: Vec<Kind> = Vec::new();
        let kind_of: Vec<usize> = inv
            .hosts
            .iter()
            .map(|host| {
                *by_groups.entry(host.groups.as_slice()).or_insert_with(|| {
                    let mut defaults = Vars::new();
                    let host_roles = roles.expand(&role_names_for(inv, host));
                    for role in &host_roles {
                        for (k, val) in &role.spec.defaults {
                            defaults.insert(k.clone(), val.clone());
                        }
                    }
                    let value = vars_value(&defaults);
                    let uses_facts = host_roles.iter().any(|r| roles.templates.role_uses(&r.name, "facts"));
                    kinds.push(Kind { roles: host_roles, defaults, value, uses_facts });
                    kinds.len() - 1
                })
            })
            .collect();
        if super::agent::FUNCTIONS.iter().any(|f| roles.templates.name_used(f)) {
            let view = super::agent::InventoryView::new(inv, |i| kinds[kind_of[i]].defaults.clone());
            roles.templates.set_inventory_view(view);
        }
        let mut shared_values = HashMap::new();
        for host in &inv.hosts {
            let layers: Vec<&Vars> = host.vars.layers().collect();
            for layer in layers.split_last().map_or(&[][..], |(_, shared)| shared) {
                shared_values.entry(std::ptr::from_ref(*layer).addr()).or_insert_with(|| vars_value(layer));
            }
        }
        Renderer {
            inv,
            roles,
            shared_values,
            extra: extra.clone(),
            extra_value: vars_value(extra),
            kind_of,
            kinds,
            host_values: inv.hosts.iter().map(|_| OnceLock::new()).collect(),
            everyone: OnceLock::new(),
            templates_see_everyone: ["hosts", "groups"].iter().any(|n| roles.templates.name_used(n)),
            warnings: Mutex::default(),
            facts: Mutex::default(),
        }
    }

    /// Whether a role of `host` (or one it depends on) reads `facts`.
    pub fn uses_facts(&self, host: &Host) -> bool {
        self.kinds[self.kind_of[self.index(host)]].uses_facts
    }

    /// The facts `host` is rendered with from now on, and the fingerprint they were gathered
    /// under (its probe checks it; `""` for facts not gathered: never matches).
    pub fn set_facts(&self, host: &Host, facts: &crate::facts::Facts, fingerprint: &str) {
        let entry = (facts.value(), fingerprint.to_string());
        self.facts.lock().expect("facts lock").insert(self.index(host), entry);
    }

    /// What the renders so far warn about (a file that holds a secret and has no `mode`),
    /// each once, naming the hosts it concerns; for `check` and converge to print.
    pub fn warnings(&self) -> Vec<Error> {
        let found = std::mem::take(&mut *self.warnings.lock().expect("warnings lock"));
        found.into_iter().map(|(e, hosts)| e.host(crate::report::host_list(&hosts))).collect()
    }

    /// `host`'s vars, lowest precedence first: its roles' defaults, its inventory vars
    /// (defaults < groups < host, merged by the inventory), `-e`.
    pub fn var_layers<'s>(&'s self, host: &'s Host) -> Vec<&'s Vars> {
        let mut layers = vec![&self.kinds[self.kind_of[self.index(host)]].defaults];
        layers.extend(host.vars.layers());
        layers.push(&self.extra);
        layers
    }

    fn index(&self, host: &Host) -> usize {
        self.inv.position(host)
    }

    /// The `host` value of the host at `i` (`host.name`, `hosts.web.vars.x`).
    fn host_value(&self, i: usize) -> &Value {
        self.host_values[i].get_or_init(|| {
            let h = &self.inv.hosts[i];
            // Lowest precedence first (`merge_maps`: the last layer that has a key wins), as
            // in `var_layers`; the inventory's shared layers were made values once.
            let inventory: Vec<&Vars> = h.vars.layers().collect();
            let (own, shared) = inventory.split_last().expect("a host's own layer");
            let own = vars_value(own);
            let mut layers = vec![&self.kinds[self.kind_of[i]].value];
            layers.extend(shared.iter().map(|l| &self.shared_values[&std::ptr::from_ref(*l).addr()]));
            layers.extend([&own, &self.extra_value]);
            let layers: Vec<Value> = layers.into_iter().filter(|v| v.len() != Some(0)).cloned().collect();
            let vars = if layers.is_empty() { own } else { minijinja::value::merge_maps(layers) };
            minijinja::context! {
                name => h.name.as_str(), address => h.address.as_str(), port => h.port, user => h.user.as_str(),
                via => h.via.as_deref(), groups => to_value(&h.groups), vars => vars
            }
        })
    }

    /// `hosts` (every host by name) and `groups` (each group's hosts).
    fn everyone(&self) -> &(Value, Value) {
        self.everyone.get_or_init(|| {
            let hosts: BTreeMap<&str, Value> =
                self.inv.hosts.iter().enumerate().map(|(i, h)| (h.name.as_str(), self.host_value(i).clone())).collect();
            let groups: BTreeMap<&str, Value> = self
                .inv
                .groups
                .values()
                .map(|g| {
                    let members: Vec<Value> =
                        self.inv.members(g).map(|h| self.host_value(self.index(h)).clone()).collect();
                    (g.name.as_str(), Value::from(members))
                })
                .collect();
            let (hosts, groups) = (Value::from(hosts), Value::from(groups));
            (hosts, groups)
        })
    }

    /// The template context for `host`: its vars at top level, plus `host`, `hosts`, `groups`
    /// (which win over vars of those names).
    pub fn context(&self, host: &Host) -> Value {
        self.context_with(host, true)
    }

    /// The context, with `hosts` and `groups` only when `everyone`.
    fn context_with(&self, host: &Host, everyone: bool) -> Value {
        let host_value = self.host_value(self.index(host)).clone();
        let vars = host_value.get_attr("vars").unwrap_or_default();
        let own = if everyone {
            let (hosts, groups) = self.everyone().clone();
            minijinja::context! { host => host_value, hosts => hosts, groups => groups }
        } else {
            minijinja::context! { host => host_value }
        };
        match self.facts.lock().expect("facts lock").get(&self.index(host)) {
            Some((facts, _)) => minijinja::value::merge_maps([vars, own, minijinja::context! { facts => facts }]),
            None => minijinja::value::merge_maps([vars, own]),
        }
    }

    /// Renders `host`'s desired state; `only` limits resources to those roles.
    pub fn render(&self, host: &Host, only: Option<&[String]>) -> Result<Desired> {
        let ctx = self.context_with(host, self.templates_see_everyone);
        let mut desired =
            Desired { host: host.name.clone(), apt_lock_timeout: host.apt_lock_timeout, ..Default::default() };
        if self.uses_facts(host) {
            let facts = self.facts.lock().expect("facts lock");
            desired.facts_fingerprint = Some(facts.get(&self.index(host)).map(|(_, f)| f.clone()).unwrap_or_default());
        }
        let roles = &self.kinds[self.kind_of[self.index(host)]].roles;
        for role in roles {
            self.add_handlers(role, host, &ctx, &mut desired)?;
        }
        for role in roles {
            if only.is_some_and(|names| !names.contains(&role.name)) {
                continue;
            }
            RoleRenderer { set: self.roles, role, host, ctx: &ctx, warnings: &self.warnings }.render(&mut desired)?;
        }
        check_unique_paths(&desired)?;
        Ok(desired)
    }

    fn add_handlers(&self, role: &Role, host: &Host, ctx: &Value, desired: &mut Desired) -> Result<()> {
        let r = RoleRenderer { set: self.roles, role, host, ctx, warnings: &self.warnings };
        for h in &role.spec.handlers {
            let run = match &h.run {
                HandlerRun::Service { action, service } => {
                    format!("systemctl {action} {}", crate::shell::quote(&r.text(service, &h.at, "handler.service")?))
                }
                HandlerRun::Run(run) => r.snippet(run, &h.at, "handler.run")?,
            };
            match desired.handlers.iter().find(|x| x.name == h.name) {
                Some(existing) if existing.run != run => {
                    return Err(role
                        .error(
                            &h.at,
                            format!(
                                "handler `{}` is also defined by role `{}` with another action",
                                h.name, existing.origin.role
                            ),
                        )
                        .field("handler.name")
                        .host(&host.name)
                        .hint("give one of them another name"));
                }
                Some(_) => {}
                None => desired.handlers.push(HandlerSpec { origin: r.origin(&h.at), name: h.name.clone(), run }),
            }
        }
        Ok(())
    }
}

/// The mode of a file that holds a secret and whose role does not set `mode`.
pub const SECRET_MODE: u32 = 0o600;

/// Any serializable value as a template value.
fn to_value(v: &impl serde::Serialize) -> Value {
    Value::from(minijinja::value::Serde(v))
}

/// A vars layer as a template value: reading a secret in it is recorded (`secrets::access`).
fn vars_value(vars: &Vars) -> Value {
    crate::secrets::access::vars_value(vars)
}

/// Renders one role's resources for one host.
struct RoleRenderer<'r> {
    set: &'r RoleSet,
    role: &'r Role,
    host: &'r Host,
    ctx: &'r Value,
    warnings: &'r Mutex<Vec<(Error, Vec<String>)>>,
}

impl RoleRenderer<'_> {
    fn origin(&self, at: &At) -> Origin {
        Origin { role: self.role.name.clone(), line: at.line }
    }

    fn error(&self, at: &At, field: &str, message: impl Into<String>) -> Error {
        self.role.error(at, message).field(field).host(&self.host.name)
    }

    /// Renders a string field of a resource (compiled at load).
    fn text(&self, text: &Text, at: &At, field: &str) -> Result<String> {
        let name = match text {
            Text::Plain(s) => return Ok(s.clone()),
            Text::Template { name, .. } => name,
        };
        self.set.templates.render_field(name, self.ctx).map_err(|RenderError { message, .. }| {
            let mut e = self.error(at, field, format!("cannot render `{field}`: {message}"));
            e.kind = ErrorKind::Template;
            e.hint("define the variable in the inventory (host, group or defaults vars), in the role's [defaults], or with -e")
        })
    }

    /// A managed path; a templated one is checked once rendered.
    fn path(&self, text: &Text, at: &At, field: &str) -> Result<String> {
        if let Text::Plain(p) = text {
            return Ok(p.clone()); // checked and normalised at load
        }
        let p = self.text(text, at, field)?;
        super::names::absolute_path(field, &p).map_err(|r| self.error(at, field, r.message).hint(r.hint))
    }

    /// An owner or group; a templated one is checked once rendered.
    fn account(&self, text: &Text, at: &At, field: &str) -> Result<String> {
        let name = self.text(text, at, field)?;
        if text.plain().is_none() {
            super::names::account_name(field, &name).map_err(|r| self.error(at, field, r.message).hint(r.hint))?;
        }
        Ok(name)
    }

    /// A shell snippet (literal ones were parsed with `sh -n` at load).
    fn snippet(&self, text: &Text, at: &At, field: &str) -> Result<String> {
        self.text(text, at, field)
    }

    fn meta(&self, m: &MetaSpec, at: &At, kind: &str) -> Result<Meta> {
        let owner = m.owner.as_ref().map(|o| self.account(o, at, &format!("{kind}.owner"))).transpose()?;
        let group = m.group.as_ref().map(|g| self.account(g, at, &format!("{kind}.group"))).transpose()?;
        let mode = match &m.mode {
            ModeSpec::Unmanaged => None,
            ModeSpec::Fixed(m) => Some(*m),
            ModeSpec::Template(t) => {
                let field = format!("{kind}.mode");
                let t = self.text(t, at, &field)?;
                Some(parse_mode(&t).map_err(|message| self.error(at, &field, message).hint(MODE_HINT))?)
            }
        };
        Ok(Meta { owner, group, mode })
    }

    fn render(&self, d: &mut Desired) -> Result<()> {
        let spec = &self.role.spec;
        for repo in &spec.apt_repositories {
            self.apt_repository(repo, d)?;
        }
        for p in &spec.packages {
            for name in &p.names {
                let name = self.text(name, &p.at, "package.names")?;
                if !d.packages.iter().any(|x| x.name == name) {
                    d.packages.push(PackageSpec { origin: self.origin(&p.at), name });
                }
            }
        }
        for r in &spec.directories {
            d.dirs.push(DirSpec {
                origin: self.origin(&r.at),
                path: self.path(&r.path, &r.at, "directory.path")?,
                meta: self.meta(&r.meta, &r.at, "directory")?,
                notify: r.notify.clone(),
            });
        }
        for f in &spec.files {
            d.files.push(self.file(f)?);
        }
        for r in &spec.links {
            d.links.push(LinkSpec {
                origin: self.origin(&r.at),
                path: self.path(&r.path, &r.at, "link.path")?,
                target: self.text(&r.target, &r.at, "link.target")?,
                notify: r.notify.clone(),
            });
        }
        for r in &spec.absent {
            d.absent.push(AbsentSpec {
                origin: self.origin(&r.at),
                path: self.path(&r.path, &r.at, "absent.path")?,
                notify: r.notify.clone(),
            });
        }
        for r in &spec.services {
            d.services.push(ServiceSpec {
                origin: self.origin(&r.at),
                name: self.text(&r.name, &r.at, "service.name")?,
                enabled: r.enabled,
                running: r.running,
                notify: r.notify.clone(),
            });
        }
        for r in &spec.commands {
            d.commands.push(CommandSpec {
                origin: self.origin(&r.at),
                name: r.name.clone(),
                run: self.snippet(&r.run, &r.at, "command.run")?,
                creates: r.creates.as_ref().map(|p| self.path(p, &r.at, "command.creates")).transpose()?,
                unless: r.unless.as_ref().map(|u| self.snippet(u, &r.at, "command.unless")).transpose()?,
                notify: r.notify.clone(),
                early: false,
            });
        }
        self.users(d)
    }

    /// `[[user]]` and `[[authorized_key]]`: names checked once rendered, key lines parsed,
    /// each line given its marker `microctl:ROLE/NAME`.
    fn users(&self, d: &mut Desired) -> Result<()> {
        use crate::plan::users::{AuthorizedKeySpec, UserSpec};
        let spec = &self.role.spec;
        for r in &spec.users {
            d.users.push(UserSpec {
                origin: self.origin(&r.at),
                name: self.user_name(&r.name, &r.at, "user.name")?,
                system: r.system,
                shell: r.shell.as_ref().map(|s| self.path(s, &r.at, "user.shell")).transpose()?,
                home: r.home.as_ref().map(|h| self.path(h, &r.at, "user.home")).transpose()?,
                groups: r.groups.clone(),
                exclusive_groups: r.exclusive_groups,
                present: r.present,
            });
        }
        for r in &spec.authorized_keys {
            let at = &r.at;
            let user = self.user_name(&r.user, at, "authorized_key.user")?;
            let key = self.text(&r.key, at, "authorized_key.key")?;
            let key_id = key_problem(&key)
                .map_err(|p| self.error(at, "authorized_key.key", p).hint(super::resolve::KEY_HINT))?;
            let options = r.options.as_ref().map(|o| self.text(o, at, "authorized_key.options")).transpose()?;
            if let Some(p) = options.as_deref().and_then(options_problem) {
                return Err(self.error(at, "authorized_key.options", p).hint(super::resolve::OPTIONS_HINT));
            }
            let marker = format!("microctl:{}/{}", self.role.name, r.name.as_deref().unwrap_or(&user));
            let line = match &options {
                Some(o) => format!("{o} {} {marker}", key.trim()),
                None => format!("{} {marker}", key.trim()),
            };
            d.authorized_keys.push(AuthorizedKeySpec {
                origin: self.origin(at),
                user,
                line,
                key: key_id,
                marker,
                exclusive: r.exclusive,
                present: r.present,
            });
        }
        Ok(())
    }

    /// A user name; a templated one is checked once rendered.
    fn user_name(&self, text: &Text, at: &At, field: &str) -> Result<String> {
        let name = self.text(text, at, field)?;
        if text.plain().is_none() {
            super::names::user_name(field, &name).map_err(|r| self.error(at, field, r.message).hint(r.hint))?;
        }
        Ok(name)
    }

    fn file(&self, r: &FileDecl) -> Result<FileSpec> {
        let at = &r.at;
        let dest = self.path(&r.dest, at, "file.dest")?;
        // Whether the content read a secret (`secrets::access`), whatever filters it went through.
        let (content, secret) = crate::secrets::access::reading(|| self.content(r));
        let (content, sha256) = content?;
        let validate = match &r.validate {
            None => None,
            Some(v @ Text::Plain(_)) => Some(self.text(v, at, "file.validate")?),
            Some(v) => {
                let v = self.text(v, at, "file.validate")?;
                if crate::shell::fill_placeholder(&v, "F").is_none() {
                    return Err(validate_without_placeholder(self.error(at, "file.validate", ""), &v));
                }
                if crate::shell::placeholder_in_single_quotes(&v) {
                    return Err(validate_quoted_placeholder(self.error(at, "file.validate", ""), &v));
                }
                Some(v)
            }
        };
        let mut meta = self.meta(&r.meta, at, "file")?;
        // A file that holds a secret is sensitive whatever the role says, and owner-only
        // unless the role says otherwise (a live file with another mode is made 0600 too).
        if secret && meta.mode.is_none() {
            meta.mode = Some(SECRET_MODE);
            self.secret_without_mode(r);
        }
        Ok(FileSpec {
            origin: self.origin(at),
            sha256,
            content,
            dest,
            meta,
            validate,
            sensitive: r.sensitive || secret,
            notify: r.notify.clone(),
            apt_source: false,
        })
    }

    /// A file's content and its digest.
    fn content(&self, r: &FileDecl) -> Result<(Arc<Vec<u8>>, String)> {
        let at = &r.at;
        // Static files were hashed once, at load; rendered content is hashed here.
        let hashed = |bytes: Vec<u8>| {
            let sha256 = sha256_hex(&bytes);
            (Arc::new(bytes), sha256)
        };
        Ok(match &r.content {
            ContentSpec::Template { name, path } => {
                let text = self.set.templates.render_template(name, self.ctx).map_err(|e| {
                    let mut err = Error::new(ErrorKind::Template, e.message)
                        .at_file(path)
                        .host(&self.host.name)
                        // The dest as written: the same on every host, so the error groups.
                        .task(format!("role {}: file {}", self.role.name, r.dest.source()))
                        .hint("define the variable in the inventory (host, group or defaults vars), in the role's [defaults], or with -e");
                    if let Some(line) = e.line {
                        err = err.at_line(line, 1);
                    }
                    err
                })?;
                hashed(text.into_bytes())
            }
            ContentSpec::Static(blob) => (blob.bytes.clone(), blob.sha256.clone()),
            ContentSpec::StaticTemplated(src) => {
                let src = self.text(src, at, "file.src")?;
                super::names::files_name("file.src", &src)
                    .map_err(|r| self.error(at, "file.src", r.message).hint(r.hint))?;
                let blob = self.set.static_file(&src).map_err(|e| {
                    self.error(
                        at,
                        "file.src",
                        format!("cannot read static file {}", self.set.files_dir.join(&src).display()),
                    )
                    .caused_by(e)
                })?;
                (blob.bytes.clone(), blob.sha256.clone())
            }
            ContentSpec::Inline(content) => hashed(self.text(content, at, "file.content")?.into_bytes()),
            ContentSpec::MicroctlBinary => {
                let blob = microctl_binary().map_err(|e| {
                    self.error(at, "file.microctl_binary", "cannot read this microctl's own binary").caused_by(e)
                })?;
                (blob.bytes.clone(), blob.sha256.clone())
            }
        })
    }

    /// Warns, once per role file whatever the number of hosts, that file `r` holds a secret
    /// and has no `mode`.
    fn secret_without_mode(&self, r: &FileDecl) {
        let e = self
            .role
            .error(
                &r.at,
                format!(
                    "role `{}`: file {} holds a secret and has no `mode`: it is written {SECRET_MODE:04o} (owner only)",
                    self.role.name,
                    r.dest.source()
                ),
            )
            .field("file.mode")
            .hint("set `mode` for it in role.toml (with `owner`/`group` if a service reads it: e.g. mode = \"0640\" and group = \"www-data\"); until then a live file with another mode is made 0600");
        let mut found = self.warnings.lock().expect("warnings lock");
        match found.iter_mut().find(|(w, _)| w.message == e.message && w.line == e.line && w.file == e.file) {
            Some((_, hosts)) => hosts.push(self.host.name.clone()),
            None => found.push((e, vec![self.host.name.clone()])),
        }
    }

    fn apt_repository(&self, r: &AptRepositoryDecl, d: &mut Desired) -> Result<()> {
        let at = &r.at;
        let field = |f: &str| format!("apt_repository.{f}");
        let root = Meta { owner: Some("root".into()), group: Some("root".into()), mode: Some(0o644) };
        let keyring = match &r.key {
            AptKey::File { content, ext } => {
                let keyring = format!("/etc/apt/keyrings/{}.{ext}", r.name);
                d.files.push(FileSpec {
                    origin: self.origin(at),
                    sha256: content.sha256.clone(),
                    content: content.bytes.clone(),
                    dest: keyring.clone(),
                    meta: root.clone(),
                    validate: None,
                    sensitive: false,
                    notify: vec![],
                    apt_source: true,
                });
                keyring
            }
            AptKey::Url { url, fingerprint } => {
                let url = self.text(url, at, &field("key_url"))?;
                // A templated fingerprint is not judged here (it may be a placeholder `check`
                // warns about); the host installs the key only if it matches.
                let fingerprints = super::apt_key::pinned(&self.text(fingerprint, at, &field("key_fingerprint"))?);
                let keyring = format!("/etc/apt/keyrings/{}.asc", r.name);
                d.commands.push(CommandSpec {
                    origin: self.origin(at),
                    name: format!("fetch apt key {}", r.name),
                    run: super::apt_key::fetch_script(&url, &fingerprints, &keyring),
                    creates: Some(keyring.clone()),
                    unless: None,
                    notify: vec![],
                    early: true,
                });
                keyring
            }
        };
        let line = format!(
            "# managed by microctl (role {})\ndeb [signed-by={keyring}] {} {} {}\n",
            self.role.name,
            self.text(&r.url, at, &field("url"))?,
            self.text(&r.suite, at, &field("suite"))?,
            r.components.join(" ")
        );
        let content = Arc::new(line.into_bytes());
        d.files.push(FileSpec {
            origin: self.origin(at),
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

/// An `authorized_key.key`: one public key line (`TYPE BASE64 [COMMENT]`) OpenSSH reads;
/// its `TYPE BASE64` (what identifies the key in any line of the file).
pub(super) fn key_problem(key: &str) -> std::result::Result<String, String> {
    let key = key.trim();
    if key.contains(['\n', '\r']) {
        return Err("`authorized_key.key` must be one line".into());
    }
    russh::keys::PublicKey::from_openssh(key)
        .map_err(|e| format!("`authorized_key.key` is not a public key line ({e}): `{}`", key.escape_debug()))?;
    let mut words = key.split_whitespace();
    Ok(format!("{} {}", words.next().unwrap_or_default(), words.next().unwrap_or_default()))
}

/// Why `authorized_key.options` cannot go before a key: a line break or a blank outside
/// double quotes (sshd would read the rest as the key).
pub(super) fn options_problem(options: &str) -> Option<String> {
    if options.contains(['\n', '\r']) || options.trim().is_empty() {
        return Some("`authorized_key.options` must be one non-empty line".into());
    }
    (crate::plan::users::words(options).len() != 1)
        .then(|| format!("`authorized_key.options` has a blank outside double quotes: `{options}`"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Loads `role` (as role `web`, template `t.j2`) for `n` hosts of group web.
    fn setup(n: usize, role: &str, template: &str) -> (tempfile::TempDir, Inventory, RoleSet) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("roles/web/templates")).unwrap();
        std::fs::write(dir.path().join("roles/web/role.toml"), role).unwrap();
        std::fs::write(dir.path().join("roles/web/templates/t.j2"), template).unwrap();
        let hosts: String = (0..n)
            .map(|i| {
                format!("[hosts.w{i}]\naddress = \"198.18.0.{}\"\ngroups = [\"web\"]\nvars = {{ n = {i} }}\n", i % 250)
            })
            .collect();
        let inv = dir.path().join("inventory.toml");
        std::fs::write(&inv, format!("{hosts}[groups.web]\nroles = [\"web\"]\n")).unwrap();
        let inv = Inventory::load(&inv).unwrap();
        let asked = crate::error::Error::usage("");
        let roles =
            RoleSet::load(&dir.path().join("roles"), &[("web".into(), asked)]).unwrap_or_else(|e| panic!("{e:?}"));
        (dir, inv, roles)
    }

    const ROLE: &str = "[defaults]\nowner = \"root\"\n\n[[directory]]\npath = \"/srv/{{ n }}\"\nowner = \"{{ owner }}\"\nmode = \"0750\"\n\n\
        [[file]]\ndest = \"/srv/{{ n }}/t\"\ntemplate = \"t.j2\"\nnotify = [\"h\"]\n\n\
        [[command]]\nname = \"c\"\nrun = \"echo {{ n }}\"\nunless = \"test -e /srv/{{ n }}/done\"\n\n\
        [[handler]]\nname = \"h\"\nrun = \"echo {{ host.name }}\"\n";

    #[test]
    fn templates_are_compiled_once_per_role_never_per_host() {
        let (_dir, inv, roles) = setup(50, ROLE, "host {{ host.name }} n={{ n }} peers={{ groups.web | length }}\n");
        // The template file, and the 6 templated fields (path, owner, dest, run, unless, handler run).
        assert_eq!(roles.templates.compiled(), 7);
        let renderer = Renderer::new(&inv, &roles, &Vars::new());
        for host in &inv.hosts {
            let d = renderer.render(host, None).unwrap();
            let n = &host.name[1..];
            assert_eq!(d.dirs[0].path, format!("/srv/{n}"));
            assert_eq!(d.dirs[0].meta, Meta { owner: Some("root".into()), group: None, mode: Some(0o750) });
            assert_eq!(*d.files[0].content, format!("host {} n={n} peers=50\n", host.name).into_bytes());
            assert_eq!(d.commands[0].unless.as_deref(), Some(format!("test -e /srv/{n}/done").as_str()));
            assert_eq!(d.handlers[0].run, format!("echo {}", host.name));
        }
        assert_eq!(roles.templates.compiled(), 7, "rendering 50 hosts compiled nothing");
    }

    #[test]
    fn vars_named_like_the_context_lose_to_it_and_host_vars_win_over_defaults() {
        let role = "[defaults]\nn = 99\nx = \"default\"\n\n[[file]]\ndest = \"/t\"\ntemplate = \"t.j2\"\n";
        let (_dir, inv, roles) = setup(2, role, "{{ n }} {{ x }} {{ host.name }}\n");
        let mut extra = Vars::new();
        extra.insert("host".into(), toml::Value::String("not the host".into()));
        extra.insert("x".into(), toml::Value::String("extra".into()));
        let renderer = Renderer::new(&inv, &roles, &extra);
        let d = renderer.render(&inv.hosts[1], None).unwrap();
        assert_eq!(*d.files[0].content, b"1 extra w1\n".to_vec());
    }

    /// The inventory's layers (defaults < group < host), shared ones made values once per
    /// run, keep their precedence, at top level and in `host.vars`.
    #[test]
    fn inventory_layers_keep_their_precedence() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("roles/web/templates")).unwrap();
        std::fs::write(dir.path().join("roles/web/role.toml"), "[[file]]\ndest = \"/t\"\ntemplate = \"t.j2\"\n")
            .unwrap();
        std::fs::write(
            dir.path().join("roles/web/templates/t.j2"),
            "{{ x }}{{ y }}{{ z }} {{ host.vars.y }}{{ host.vars.z }}",
        )
        .unwrap();
        let inv = "[defaults]\nvars = { x = \"d\", y = \"d\", z = \"d\" }\n\
                   [hosts.a]\naddress = \"198.18.0.1\"\ngroups = [\"web\"]\nvars = { z = \"h\" }\n\
                   [hosts.b]\naddress = \"198.18.0.2\"\ngroups = [\"web\"]\n\
                   [groups.web]\nroles = [\"web\"]\nvars = { y = \"g\", z = \"g\" }\n";
        std::fs::write(dir.path().join("inventory.toml"), inv).unwrap();
        let inv = Inventory::load(&dir.path().join("inventory.toml")).unwrap();
        let roles =
            RoleSet::load(&dir.path().join("roles"), &[("web".into(), crate::error::Error::usage(""))]).unwrap();
        let renderer = Renderer::new(&inv, &roles, &Vars::new());
        let text = |i: usize| {
            String::from_utf8(renderer.render(&inv.hosts[i], None).unwrap().files[0].content.to_vec()).unwrap()
        };
        assert_eq!((text(0), text(1)), ("dgh gh".to_string(), "dgg gg".to_string()));
    }

    #[test]
    fn a_templated_owner_is_checked_once_rendered_for_its_host() {
        let role = "[[directory]]\npath = \"/srv\"\nowner = \"{{ who }}\"\n";
        let (_dir, inv, roles) = setup(1, role, "");
        let mut extra = Vars::new();
        extra.insert("who".into(), toml::Value::String("www-data".into()));
        let d = Renderer::new(&inv, &roles, &extra).render(&inv.hosts[0], None).unwrap();
        assert_eq!(d.dirs[0].meta.owner.as_deref(), Some("www-data"));
        extra.insert("who".into(), toml::Value::String("www-data:www-data".into()));
        let e = Renderer::new(&inv, &roles, &extra).render(&inv.hosts[0], None).unwrap_err();
        assert_eq!(
            e.one_line().rsplit_once(": ").unwrap().1,
            "`directory.owner` must be a user or group name or a numeric id, got `www-data:www-data`"
        );
        assert_eq!((e.host.as_deref(), e.line), (Some("w0"), Some(1)));
    }

    #[test]
    fn an_undefined_var_names_the_host_the_field_and_role_toml_line() {
        let role = "[[file]]\ndest = \"/t\"\ncontent = \"x\"\n\n[[link]]\npath = \"/l\"\ntarget = \"{{ nowhere }}\"\n";
        let (dir, inv, roles) = setup(1, role, "");
        let renderer = Renderer::new(&inv, &roles, &Vars::new());
        let e = renderer.render(&inv.hosts[0], None).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}:5:1: cannot render `link.target`: undefined variable `nowhere`\n  host: w0\n  field: link.target\n  \
                 hint: define the variable in the inventory (host, group or defaults vars), in the role's [defaults], or with -e",
                dir.path().join("roles/web/role.toml").display()
            )
        );
    }

    /// A static file (`src =`) is hashed once, at load, whatever the number of hosts; each
    /// host's file shares its bytes and has its digest.
    #[test]
    fn a_static_file_is_hashed_once_not_per_host() {
        let role = "[[file]]\ndest = \"/srv/{{ n }}/static.bin\"\nsrc = \"static.bin\"\n";
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("roles/web/templates")).unwrap();
        std::fs::create_dir_all(dir.path().join("files")).unwrap();
        let data: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 + 3) as u8).collect();
        std::fs::write(dir.path().join("files/static.bin"), &data).unwrap();
        std::fs::write(dir.path().join("roles/web/role.toml"), role).unwrap();
        let hosts: String = (0..20)
            .map(|i| format!("[hosts.w{i}]\naddress = \"198.18.0.{i}\"\ngroups = [\"web\"]\nvars = {{ n = {i} }}\n"))
            .collect();
        std::fs::write(dir.path().join("inventory.toml"), format!("{hosts}[groups.web]\nroles = [\"web\"]\n")).unwrap();
        let inv = Inventory::load(&dir.path().join("inventory.toml")).unwrap();
        let hashed = || HASHED.with(|n| n.get());
        let before = hashed();
        let asked = crate::error::Error::usage("");
        let roles = RoleSet::load(&dir.path().join("roles"), &[("web".into(), asked)]).unwrap();
        assert_eq!(hashed() - before, data.len(), "hashed at load");
        let renderer = Renderer::new(&inv, &roles, &Vars::new());
        let all: Vec<Desired> = inv.hosts.iter().map(|h| renderer.render(h, None).unwrap()).collect();
        assert_eq!(hashed() - before, data.len(), "no host hashed it again");
        for d in &all {
            assert_eq!((*d.files[0].content == data, &d.files[0].sha256), (true, &sha256_hex(&data)));
            assert!(Arc::ptr_eq(&d.files[0].content, &all[0].files[0].content));
        }
    }

    /// The render phase of `bash bench/converge.sh` (its role, a 64 KiB static file, an
    /// inventory like its own with 100 and 1000 hosts): prints the time to render every
    /// host, as converge does before it contacts any. A benchmark, not a check:
    /// `cargo test --release --lib render_bench -- --ignored --nocapture`.
    #[test]
    #[ignore = "a benchmark, not a check: run it by hand (above)"]
    fn render_bench() {
        let dir = tempfile::tempdir().unwrap();
        let bench = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/microctl/roles/bench");
        let role = dir.path().join("roles/bench");
        std::fs::create_dir_all(role.join("templates")).unwrap();
        std::fs::create_dir_all(dir.path().join("files")).unwrap();
        std::fs::copy(bench.join("role.toml"), role.join("role.toml")).unwrap();
        for t in std::fs::read_dir(bench.join("templates")).unwrap() {
            let t = t.unwrap();
            std::fs::copy(t.path(), role.join("templates").join(t.file_name())).unwrap();
        }
        let data: Vec<u8> = (0..64 * 1024).map(|i| ((i * 7 + 3) % 251) as u8).collect();
        std::fs::write(dir.path().join("files/static.bin"), data).unwrap();
        for n in [100, 1000] {
            let private = |i: usize| format!("198.18.{}.{}", 2 + i / 250, i % 250 + 1);
            let all: Vec<String> = (0..n).map(|i| format!("\"{}\"", private(i))).collect();
            let mut inv = format!(
                "[defaults]\nuser = \"root\"\nvars = {{ workers = 2, upstream_port = 5000, all_hosts = [{}] }}\n\n",
                all.join(", ")
            );
            for i in 0..n {
                inv.push_str(&format!(
                    "[hosts.h{i}]\naddress = \"127.0.0.1\"\nport = {}\ngroups = [\"bench\"]\nvars = {{ root = \"/srv/h{i}\", inventory_name = \"h{i}\", private_address = \"{}\" }}\n",
                    22001 + i,
                    private(i)
                ));
            }
            inv.push_str("[groups.bench]\nroles = [\"bench\"]\n");
            let path = dir.path().join(format!("inventory-{n}.toml"));
            std::fs::write(&path, inv).unwrap();
            let inv = Inventory::load(&path).unwrap();
            let asked = crate::error::Error::usage("");
            let roles = RoleSet::load(&dir.path().join("roles"), &[("bench".into(), asked)]).unwrap();
            let mut extra = Vars::new();
            extra.insert("upstream_port".into(), toml::Value::Integer(5000));
            let mut times = Vec::new();
            for _ in 0..5 {
                let start = std::time::Instant::now();
                let renderer = Renderer::new(&inv, &roles, &extra);
                // The bench role reads `facts` (converge sets them before rendering).
                for h in &inv.hosts {
                    renderer.set_facts(h, &crate::facts::Facts::default(), "");
                }
                let all: Vec<Desired> = inv.hosts.iter().map(|h| renderer.render(h, None).unwrap()).collect();
                times.push(start.elapsed());
                assert_eq!(all.len(), n);
            }
            times.sort();
            eprintln!(
                "render {n} hosts: median {:.1} ms (min {:.1} ms)",
                times[2].as_secs_f64() * 1e3,
                times[0].as_secs_f64() * 1e3
            );
        }
    }
}
