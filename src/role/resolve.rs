//! Raw role -> resolved role, once per role and run (as `inventory::raw` -> `resolve`): every
//! check that does not depend on a host is made here, so each role error is reported once,
//! with role.toml's file:line:col and field, whatever the number of hosts using the role.
//! Checked here: which of `template`/`src`/`content` a file has and that its template exists,
//! modes, service states, command guards, handler actions and shapes, literal names and paths,
//! static files and keyrings (read once), apt key fingerprints, port protocols, and the
//! `sh -n` syntax of literal shell snippets. Every string field with template syntax is
//! compiled here, once (a syntax error is a role error); `render` then only fills in a host's
//! values and checks what those values decide (a templated path, mode or snippet).

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::names::{absolute_path, files_name, is_templated, plain_file_name};
use super::raw::{RawMode, RawPort};
use super::template::Templates;
use crate::error::{Error, ErrorKind, LineIndex};
use crate::inventory::Vars;
use crate::plan::desired::Blob;

/// A string field: as written, or compiled once as a template (named in [`Templates`]).
#[derive(Debug, Clone)]
pub enum Text {
    Plain(String),
    Template { name: String, source: String },
}

impl Text {
    /// The field as written in role.toml.
    pub fn source(&self) -> &str {
        match self {
            Text::Plain(s) => s,
            Text::Template { source, .. } => source,
        }
    }

    /// The value when it needs no host (no template syntax).
    pub fn plain(&self) -> Option<&str> {
        match self {
            Text::Plain(s) => Some(s),
            Text::Template { .. } => None,
        }
    }
}

/// Owner, group and mode as written (a literal mode already parsed).
#[derive(Debug, Clone, Default)]
pub struct MetaSpec {
    pub owner: Option<Text>,
    pub group: Option<Text>,
    pub mode: ModeSpec,
}

#[derive(Debug, Clone, Default)]
pub enum ModeSpec {
    #[default]
    Unmanaged,
    Fixed(u32),
    /// A templated mode, parsed once rendered.
    Template(Text),
}

/// Where a resource is declared in role.toml: the line and column of its table.
#[derive(Debug, Clone)]
pub struct At {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone)]
pub enum AptKey {
    /// A keyring from files/, read (and hashed) at load; `ext` is `asc` or `gpg`.
    File {
        content: Arc<Blob>,
        ext: &'static str,
    },
    Url {
        url: Text,
        fingerprint: Text,
    },
}

#[derive(Debug, Clone)]
pub struct AptRepositoryDecl {
    pub at: At,
    pub name: String,
    pub url: Text,
    pub suite: Text,
    pub components: Vec<String>,
    pub key: AptKey,
}

#[derive(Debug, Clone)]
pub struct PackagesDecl {
    pub at: At,
    pub names: Vec<Text>,
}

#[derive(Debug, Clone)]
pub struct DirectoryDecl {
    pub at: At,
    pub path: Text,
    pub meta: MetaSpec,
    pub notify: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum ContentSpec {
    /// A template file of the role (`ROLE/NAME` in [`Templates`]), compiled at load.
    Template {
        name: String,
        path: std::path::PathBuf,
    },
    /// A static file from files/, read and hashed at load.
    Static(Arc<Blob>),
    /// A static file whose name is templated: read once rendered.
    StaticTemplated(Text),
    Inline(Text),
    /// The microctl binary running this converge, read (and hashed) once, at render.
    MicroctlBinary,
}

#[derive(Debug, Clone)]
pub struct FileDecl {
    pub at: At,
    pub dest: Text,
    pub content: ContentSpec,
    pub meta: MetaSpec,
    pub validate: Option<Text>,
    pub sensitive: bool,
    pub notify: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LinkDecl {
    pub at: At,
    pub path: Text,
    pub target: Text,
    pub notify: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct AbsentDecl {
    pub at: At,
    pub path: Text,
    pub notify: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ServiceDecl {
    pub at: At,
    pub name: Text,
    pub enabled: Option<bool>,
    pub running: Option<bool>,
    pub notify: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct CommandDecl {
    pub at: At,
    pub name: String,
    pub run: Text,
    pub creates: Option<Text>,
    pub unless: Option<Text>,
    pub notify: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum HandlerRun {
    /// `systemctl ACTION SERVICE`.
    Service {
        action: &'static str,
        service: Text,
    },
    Run(Text),
}

#[derive(Debug, Clone)]
pub struct HandlerDecl {
    pub at: At,
    pub name: String,
    pub run: HandlerRun,
}

#[derive(Debug, Clone)]
pub struct UserDecl {
    pub at: At,
    pub name: Text,
    pub system: bool,
    pub shell: Option<Text>,
    pub home: Option<Text>,
    pub groups: Vec<String>,
    pub exclusive_groups: bool,
    pub present: bool,
}

#[derive(Debug, Clone)]
pub struct AuthorizedKeyDecl {
    pub at: At,
    pub user: Text,
    pub key: Text,
    pub options: Option<Text>,
    /// The marker's NAME (`microctl:ROLE/NAME`); `None`: the user's name.
    pub name: Option<String>,
    pub exclusive: bool,
    pub present: bool,
}

/// One role, resolved: each resource as declared (`...Decl`), validated, its templated
/// fields compiled; what `render` needs, nothing it must check again unless a host's values
/// decide it.
#[derive(Debug, Clone, Default)]
pub struct RoleSpec {
    pub description: Option<String>,
    pub depends: Vec<(String, At)>,
    /// `[defaults]`, TOML dates already as their text.
    pub defaults: Vars,
    pub ports: Vec<RawPort>,
    pub apt_repositories: Vec<AptRepositoryDecl>,
    pub packages: Vec<PackagesDecl>,
    pub directories: Vec<DirectoryDecl>,
    pub files: Vec<FileDecl>,
    pub links: Vec<LinkDecl>,
    pub absent: Vec<AbsentDecl>,
    pub services: Vec<ServiceDecl>,
    pub commands: Vec<CommandDecl>,
    pub handlers: Vec<HandlerDecl>,
    pub users: Vec<UserDecl>,
    pub authorized_keys: Vec<AuthorizedKeyDecl>,
}

/// The handler actions systemctl takes.
pub const HANDLER_ACTIONS: [&str; 6] = ["restart", "reload", "reload-or-restart", "try-restart", "start", "stop"];

/// Resolves one parsed role. Every error found is returned (not only the first), each once.
pub struct Resolver<'a> {
    role: &'a str,
    toml_path: &'a Path,
    dir: &'a Path,
    files_dir: &'a Path,
    lines: LineIndex,
    templates: &'a mut Templates,
    static_files: &'a dyn Fn(&str) -> std::io::Result<Arc<Blob>>,
    /// Every error found so far, in the order found.
    pub errors: Vec<Error>,
    /// Templated fields compiled so far (their names' serial).
    fields: usize,
}

impl<'a> Resolver<'a> {
    pub fn new(
        role: &'a str,
        (toml_path, dir, files_dir): (&'a Path, &'a Path, &'a Path),
        text: &str,
        templates: &'a mut Templates,
        static_files: &'a dyn Fn(&str) -> std::io::Result<Arc<Blob>>,
    ) -> Resolver<'a> {
        Resolver {
            role,
            toml_path,
            dir,
            files_dir,
            lines: LineIndex::new(text),
            templates,
            static_files,
            errors: Vec::new(),
            fields: 0,
        }
    }

    fn at(&self, span: &Range<usize>) -> At {
        let (line, column) = self.lines.line_col(span.start);
        At { line, column }
    }

    /// An error at `at` in role.toml, for `field`.
    pub fn error(&self, at: &At, field: &str, message: impl Into<String>) -> Error {
        let e = Error::new(ErrorKind::Role, message).at_file(self.toml_path).at_line(at.line, at.column);
        if field.is_empty() { e } else { e.field(field) }
    }

    fn push(&mut self, e: Error) {
        self.errors.push(e);
    }

    /// A string field: plain, or compiled once.
    fn text(&mut self, at: &At, field: &str, source: &str) -> Text {
        if !is_templated(source) {
            return Text::Plain(source.to_string());
        }
        self.fields += 1;
        let name = format!("{}/role.toml:{}:{field}#{}", self.role, at.line, self.fields);
        if let Err(problem) = self.templates.add_field(name.clone(), source) {
            let e = self
                .error(at, field, format!("`{field}` is not a valid template: {problem}"))
                .hint("fix the {{ }} / {% %} syntax (minijinja, Jinja2 syntax)");
            self.push(e);
            return Text::Plain(source.to_string());
        }
        Text::Template { name, source: source.to_string() }
    }

    /// A managed path: literal ones must be absolute and normalised now.
    fn path(&mut self, at: &At, field: &str, source: &str) -> Text {
        let text = self.text(at, field, source);
        if let Some(p) = text.plain() {
            match absolute_path(field, p) {
                Ok(normal) => return Text::Plain(normal),
                Err(r) => {
                    let e = self.error(at, field, r.message).hint(r.hint);
                    self.push(e);
                }
            }
        }
        text
    }

    /// An owner or group: a literal one must be an account name now.
    fn account(&mut self, at: &At, field: &str, source: &str) -> Text {
        let text = self.text(at, field, source);
        if let Some(Err(r)) = text.plain().map(|name| super::names::account_name(field, name)) {
            let e = self.error(at, field, r.message).hint(r.hint);
            self.push(e);
        }
        text
    }

    /// A shell snippet: literal ones are parsed with `sh -n` now.
    fn snippet(&mut self, at: &At, field: &str, source: &str) -> Text {
        let text = self.text(at, field, source);
        if let Some(problem) = text.plain().and_then(super::snippets::syntax_error) {
            let e = super::snippets::error(self.error(at, field, ""), field, &problem);
            self.push(e);
        }
        text
    }

    fn meta(
        &mut self,
        at: &At,
        kind: &str,
        owner: &Option<String>,
        group: &Option<String>,
        mode: &Option<RawMode>,
    ) -> MetaSpec {
        let owner = owner.as_ref().map(|o| self.account(at, &format!("{kind}.owner"), o));
        let group = group.as_ref().map(|g| self.account(at, &format!("{kind}.group"), g));
        let field = format!("{kind}.mode");
        let mode = match mode {
            None => ModeSpec::Unmanaged,
            Some(RawMode::Number(n)) => {
                // `mode = 644` is the decimal 644 (0o1204, `--w----r-T`): Ansible's classic
                // pitfall. No integer is taken; the hint guesses the string that was meant.
                let e =
                    self.error(at, &field, integer_mode(*n)).hint(format!("write it as a string: {}", meant_mode(*n)));
                self.push(e);
                ModeSpec::Unmanaged
            }
            Some(RawMode::Text(t)) => match self.text(at, &field, t) {
                Text::Plain(p) => match parse_mode(&p) {
                    Ok(m) => ModeSpec::Fixed(m),
                    Err(message) => {
                        let e = self.error(at, &field, message).hint(MODE_HINT);
                        self.push(e);
                        ModeSpec::Unmanaged
                    }
                },
                templated => ModeSpec::Template(templated),
            },
        };
        MetaSpec { owner, group, mode }
    }

    /// Every resource of `raw`, checked.
    pub fn resolve(&mut self, raw: &super::raw::RawRole) -> RoleSpec {
        let mut spec = RoleSpec { description: raw.description.clone(), ..RoleSpec::default() };
        for d in &raw.depends {
            spec.depends.push((d.get_ref().clone(), self.at(&d.span())));
        }
        for (k, val) in &raw.defaults {
            let mut val = val.clone();
            crate::inventory::dates_as_text(&mut val);
            spec.defaults.insert(k.clone(), val);
        }
        for p in &raw.ports {
            let at = self.at(&p.span());
            let port = p.get_ref();
            if !["tcp", "udp"].contains(&port.proto.as_str()) {
                let e = self
                    .error(&at, "ports.proto", format!("unknown protocol `{}` for port {}", port.proto, port.port))
                    .hint("use proto = \"tcp\" (the default) or \"udp\"");
                self.push(e);
            }
            spec.ports.push(port.clone());
        }
        for r in &raw.apt_repository {
            let at = self.at(&r.span());
            if let Some(repo) = self.apt_repository(&at, r.get_ref()) {
                spec.apt_repositories.push(repo);
            }
        }
        for p in &raw.package {
            let at = self.at(&p.span());
            let names = p.get_ref().names.iter().map(|n| self.text(&at, "package.names", n)).collect();
            spec.packages.push(PackagesDecl { at, names });
        }
        for d in &raw.directory {
            let (at, r) = (self.at(&d.span()), d.get_ref());
            let path = self.path(&at, "directory.path", &r.path);
            let meta = self.meta(&at, "directory", &r.owner, &r.group, &r.mode);
            spec.directories.push(DirectoryDecl { at, path, meta, notify: r.notify.clone() });
        }
        for f in &raw.file {
            let at = self.at(&f.span());
            if let Some(file) = self.file(&at, f.get_ref()) {
                spec.files.push(file);
            }
        }
        for l in &raw.link {
            let (at, r) = (self.at(&l.span()), l.get_ref());
            let path = self.path(&at, "link.path", &r.path);
            let target = self.text(&at, "link.target", &r.target);
            spec.links.push(LinkDecl { at, path, target, notify: r.notify.clone() });
        }
        for a in &raw.absent {
            let (at, r) = (self.at(&a.span()), a.get_ref());
            let path = self.path(&at, "absent.path", &r.path);
            spec.absent.push(AbsentDecl { at, path, notify: r.notify.clone() });
        }
        for s in &raw.service {
            let (at, r) = (self.at(&s.span()), s.get_ref());
            let running = match r.state.as_deref() {
                None => None,
                Some("started") => Some(true),
                Some("stopped") => Some(false),
                Some(other) => {
                    let e = self
                        .error(&at, "service.state", format!("unknown service state `{other}`"))
                        .hint("use \"started\" or \"stopped\"; restarts belong in handlers");
                    self.push(e);
                    None
                }
            };
            let name = self.text(&at, "service.name", &r.name);
            spec.services.push(ServiceDecl { at, name, enabled: r.enabled, running, notify: r.notify.clone() });
        }
        for c in &raw.command {
            let (at, r) = (self.at(&c.span()), c.get_ref());
            if r.creates.is_none() && r.unless.is_none() {
                let e = self
                    .error(&at, "command", format!("command `{}` has no guard", r.name))
                    .hint("add `creates = \"/path\"` or `unless = \"test ...\"` so it runs only when needed, or make it a [[handler]] that runs when notified");
                self.push(e);
            }
            let run = self.snippet(&at, "command.run", &r.run);
            let creates = r.creates.as_ref().map(|p| self.path(&at, "command.creates", p));
            let unless = r.unless.as_ref().map(|u| self.snippet(&at, "command.unless", u));
            spec.commands.push(CommandDecl {
                at,
                name: r.name.clone(),
                run,
                creates,
                unless,
                notify: r.notify.clone(),
            });
        }
        for h in &raw.handler {
            let (at, r) = (self.at(&h.span()), h.get_ref());
            let run = match (&r.service, &r.action, &r.run) {
                (Some(service), action, None) => {
                    let action = action.as_deref().unwrap_or("restart");
                    // An unknown action is reported once; the handler still counts as defined,
                    // so the resources that notify it get no second, false "unknown handler".
                    let action = match HANDLER_ACTIONS.iter().find(|a| **a == action) {
                        Some(action) => action,
                        None => {
                            let e = self
                                .error(
                                    &at,
                                    "handler.action",
                                    format!("handler `{}`: unknown action `{action}`", r.name),
                                )
                                .hint("use restart, reload, reload-or-restart, try-restart, start or stop");
                            self.push(e);
                            "restart"
                        }
                    };
                    HandlerRun::Service { action, service: self.text(&at, "handler.service", service) }
                }
                (None, None, Some(run)) => HandlerRun::Run(self.snippet(&at, "handler.run", run)),
                _ => {
                    let e = self.error(
                        &at,
                        "handler",
                        format!("handler `{}` needs either `service` (with `action`) or `run`", r.name),
                    );
                    self.push(e);
                    continue;
                }
            };
            if let Some(first) = spec.handlers.iter().find(|x| x.name == r.name) {
                let e = self
                    .error(
                        &at,
                        "handler.name",
                        format!("handler `{}` is defined twice (first at line {})", r.name, first.at.line),
                    )
                    .hint("give one of them another name");
                self.push(e);
                continue;
            }
            spec.handlers.push(HandlerDecl { at, name: r.name.clone(), run });
        }
        self.users(raw, &mut spec);
        spec
    }

    /// `present` (the default) or `absent`.
    fn state(&mut self, at: &At, field: &str, state: &Option<String>) -> bool {
        match state.as_deref() {
            None | Some("present") => true,
            Some("absent") => false,
            Some(other) => {
                let e = self.error(at, field, format!("unknown state `{other}`")).hint("use \"present\" or \"absent\"");
                self.push(e);
                true
            }
        }
    }

    /// A user name: a literal one must be one `useradd` takes now.
    fn user_name(&mut self, at: &At, field: &str, source: &str) -> Text {
        let text = self.text(at, field, source);
        if let Some(Err(r)) = text.plain().map(|name| super::names::user_name(field, name)) {
            let e = self.error(at, field, r.message).hint(r.hint);
            self.push(e);
        }
        text
    }

    /// `[[user]]` and `[[authorized_key]]`.
    fn users(&mut self, raw: &super::raw::RawRole, spec: &mut RoleSpec) {
        for u in &raw.user {
            let (at, r) = (self.at(&u.span()), u.get_ref());
            let name = self.user_name(&at, "user.name", &r.name);
            for g in &r.groups {
                if let Err(refused) = super::names::user_name("user.groups", g) {
                    let e = self
                        .error(&at, "user.groups", refused.message)
                        .hint("write group names, e.g. groups = [\"adm\", \"www-data\"]");
                    self.push(e);
                }
            }
            let shell = r.shell.as_ref().map(|s| self.path(&at, "user.shell", s));
            let home = r.home.as_ref().map(|h| self.path(&at, "user.home", h));
            let present = self.state(&at, "user.state", &r.state);
            if let Some(first) = spec.users.iter().find(|x| x.name.plain().is_some_and(|n| Some(n) == name.plain())) {
                let e = self
                    .error(
                        &at,
                        "user.name",
                        format!("user `{}` is declared twice (first at line {})", r.name, first.at.line),
                    )
                    .hint("declare each user once");
                self.push(e);
            }
            spec.users.push(UserDecl {
                at,
                name,
                system: r.system,
                shell,
                home,
                groups: r.groups.clone(),
                exclusive_groups: r.exclusive_groups,
                present,
            });
        }
        for k in &raw.authorized_key {
            let (at, r) = (self.at(&k.span()), k.get_ref());
            let user = self.user_name(&at, "authorized_key.user", &r.user);
            let key = self.text(&at, "authorized_key.key", &r.key);
            if let Some(problem) = key.plain().and_then(|k| super::render::key_problem(k).err()) {
                let e = self.error(&at, "authorized_key.key", problem).hint(KEY_HINT);
                self.push(e);
            }
            let options = r.options.as_ref().map(|o| self.text(&at, "authorized_key.options", o));
            if let Some(problem) = options.as_ref().and_then(|o| o.plain()).and_then(super::render::options_problem) {
                let e = self.error(&at, "authorized_key.options", problem).hint(OPTIONS_HINT);
                self.push(e);
            }
            if let Some(n) = &r.name
                && plain_file_name("authorized_key.name", n).is_err()
            {
                let e = self
                    .error(
                        &at,
                        "authorized_key.name",
                        format!(
                            "`authorized_key.name` must be letters, digits, `_`, `-`, `.`, got `{}`",
                            n.escape_debug()
                        ),
                    )
                    .hint("it names the line in the file (`microctl:ROLE/NAME`), e.g. name = \"deploy\"");
                self.push(e);
            }
            let present = self.state(&at, "authorized_key.state", &r.state);
            let marker = |d: &AuthorizedKeyDecl| d.name.clone().or_else(|| d.user.plain().map(String::from));
            let mine = r.name.clone().or_else(|| user.plain().map(String::from));
            if let Some(first) = spec.authorized_keys.iter().find(|x| mine.is_some() && marker(x) == mine) {
                let e = self
                    .error(
                        &at,
                        "authorized_key.name",
                        format!(
                            "two authorized keys of this role are named `{}` (first at line {})",
                            mine.clone().unwrap_or_default(),
                            first.at.line
                        ),
                    )
                    .hint("give each key of a user its own `name` (it marks the key's line: microctl:ROLE/NAME)");
                self.push(e);
            }
            spec.authorized_keys.push(AuthorizedKeyDecl {
                at,
                user,
                key,
                options,
                name: r.name.clone(),
                exclusive: r.exclusive,
                present,
            });
        }
    }

    fn apt_repository(&mut self, at: &At, r: &super::raw::RawAptRepository) -> Option<AptRepositoryDecl> {
        let field = "apt_repository.name";
        if let Err(refused) = plain_file_name(field, &r.name) {
            let e = self.error(at, field, refused.message).hint(refused.hint);
            self.push(e);
            return None;
        }
        let key = match (&r.key, &r.key_url, &r.key_fingerprint) {
            (Some(key), None, None) => {
                let field = "apt_repository.key";
                if let Err(refused) = files_name(field, key) {
                    let e = self.error(at, field, refused.message).hint(refused.hint);
                    self.push(e);
                    return None;
                }
                let content = match (self.static_files)(key) {
                    Ok(c) => c,
                    Err(io) => {
                        let e = self
                            .error(at, field, format!("cannot read keyring {}", self.files_dir.join(key).display()))
                            .caused_by(io);
                        self.push(e);
                        return None;
                    }
                };
                AptKey::File { content, ext: if key.ends_with(".asc") { "asc" } else { "gpg" } }
            }
            (None, Some(url), Some(fingerprint)) => {
                let fingerprint = self.text(at, "apt_repository.key_fingerprint", fingerprint);
                if let Some(problem) = fingerprint.plain().and_then(fingerprint_problem) {
                    let e = self.error(at, "apt_repository.key_fingerprint", problem).hint(FINGERPRINT_HINT);
                    self.push(e);
                }
                AptKey::Url { url: self.text(at, "apt_repository.key_url", url), fingerprint }
            }
            _ => {
                let e = self
                    .error(at, "apt_repository", format!("apt repository `{}` needs `key`, or `key_url` with `key_fingerprint`", r.name))
                    .hint("key = \"name.gpg\" (in files/), or key_url = \"https://...\" and key_fingerprint = \"FULL FINGERPRINT\"");
                self.push(e);
                return None;
            }
        };
        Some(AptRepositoryDecl {
            at: at.clone(),
            name: r.name.clone(),
            url: self.text(at, "apt_repository.url", &r.url),
            suite: self.text(at, "apt_repository.suite", &r.suite),
            components: r.components.clone(),
            key,
        })
    }

    fn file(&mut self, at: &At, r: &super::raw::RawFile) -> Option<FileDecl> {
        let dest = self.path(at, "file.dest", &r.dest);
        let meta = self.meta(at, "file", &r.owner, &r.group, &r.mode);
        let validate = r.validate.as_ref().map(|v| self.validate(at, v));
        let content = match (&r.template, &r.src, &r.content) {
            (None, None, None) if r.microctl_binary => ContentSpec::MicroctlBinary,
            _ if r.microctl_binary => {
                let e = self.error(
                    at,
                    "file.microctl_binary",
                    format!(
                        "file {}: `microctl_binary = true` is the content: drop `template`, `src` and `content`",
                        r.dest
                    ),
                );
                self.push(e);
                return None;
            }
            (Some(t), None, None) => {
                let Some(path) = self.templates.file(self.role, t).map(Path::to_path_buf) else {
                    let e = self
                        .error(at, "file.template", format!("template `{t}` not found"))
                        .hint(format!("create {}", self.dir.join("templates").join(t).display()));
                    self.push(e);
                    return None;
                };
                ContentSpec::Template { name: format!("{}/{t}", self.role), path }
            }
            (None, Some(src), None) => match self.text(at, "file.src", src) {
                Text::Plain(src) => {
                    if let Err(refused) = files_name("file.src", &src) {
                        let e = self.error(at, "file.src", refused.message).hint(refused.hint);
                        self.push(e);
                        return None;
                    }
                    match (self.static_files)(&src) {
                        Ok(data) => ContentSpec::Static(data),
                        Err(io) => {
                            let e = self
                                .error(
                                    at,
                                    "file.src",
                                    format!("cannot read static file {}", self.files_dir.join(&src).display()),
                                )
                                .caused_by(io);
                            self.push(e);
                            return None;
                        }
                    }
                }
                templated => ContentSpec::StaticTemplated(templated),
            },
            (None, None, Some(content)) => ContentSpec::Inline(self.text(at, "file.content", content)),
            _ => {
                let e = self.error(
                    at,
                    "file",
                    format!(
                        "file {} needs exactly one of `template`, `src`, `content` or `microctl_binary = true`",
                        r.dest
                    ),
                );
                self.push(e);
                return None;
            }
        };
        Some(FileDecl {
            at: at.clone(),
            dest,
            content,
            meta,
            validate,
            sensitive: r.sensitive,
            notify: r.notify.clone(),
        })
    }
}

impl Resolver<'_> {
    /// A file's `validate`: a literal one must contain `%s` and parse with `sh -n`.
    fn validate(&mut self, at: &At, v: &str) -> Text {
        let text = self.text(at, "file.validate", v);
        let Some(v) = text.plain() else { return text };
        match crate::shell::fill_placeholder(v, "F") {
            None => {
                let e = validate_without_placeholder(self.error(at, "file.validate", ""), v);
                self.push(e);
            }
            Some(_) if crate::shell::placeholder_in_single_quotes(v) => {
                let e = validate_quoted_placeholder(self.error(at, "file.validate", ""), v);
                self.push(e);
            }
            Some(filled) => {
                if let Some(problem) = super::snippets::syntax_error(&filled) {
                    let e = super::snippets::error(self.error(at, "file.validate", ""), "file.validate", &problem);
                    self.push(e);
                }
            }
        }
        text
    }
}

pub const KEY_HINT: &str = "write one public key line, `TYPE BASE64 [COMMENT]` (a .pub file's content), options in `options`; or {{ NAME | ssh_public_key }} for a key pair made by `microctl secrets keygen NAME`";

pub const OPTIONS_HINT: &str = "write sshd's authorized_keys options, comma-separated, no blanks outside quotes, e.g. options = 'from=\"198.18.0.10\",no-pty'";

pub const MODE_HINT: &str = "write an octal mode as a string, e.g. mode = \"0644\"";

const FINGERPRINT_HINT: &str = "write the key's full fingerprint as the vendor publishes it (40 hex digits, spaces allowed; several: comma-separated)";

/// A mode written as a string: octal, at most 0o7777.
pub fn parse_mode(text: &str) -> Result<u32, String> {
    match u32::from_str_radix(text, 8) {
        Ok(m) if m <= 0o7777 && !text.is_empty() => Ok(m),
        _ => Err(format!("invalid mode `{text}`")),
    }
}

/// What an integer `mode` is refused with.
fn integer_mode(n: u32) -> String {
    format!("`mode` is the TOML integer {n}, i.e. octal {n:o}: a mode must be a string of octal digits")
}

/// The string an integer mode most likely meant: its digits read as octal (`644` -> `"0644"`)
/// when they are octal digits; its value in octal when it was written `0o644` (TOML gives
/// 420, and the literal is gone by then: both are offered when both are modes).
fn meant_mode(n: u32) -> String {
    let digits = n.to_string();
    let as_octal = (n <= 0o7777).then(|| format!("{n:04o}"));
    if n <= 7777 && digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        let first = format!("mode = \"{digits:0>4}\"");
        match as_octal {
            Some(o) if o != format!("{digits:0>4}") => {
                format!("{first} (or mode = \"{o}\" if you wrote 0o{})", o.trim_start_matches('0'))
            }
            _ => first,
        }
    } else {
        format!("mode = \"{}\"", as_octal.unwrap_or_else(|| "0644".into()))
    }
}

/// Why a `key_fingerprint` cannot pin a key: empty, or not full fingerprints (40 or 64 hex
/// digits: a short key id could be forged).
pub fn fingerprint_problem(text: &str) -> Option<String> {
    let pinned = super::apt_key::pinned(text);
    if pinned.is_empty() {
        return Some("`key_fingerprint` is empty".into());
    }
    let bad = pinned.iter().find(|f| !matches!(f.len(), 40 | 64) || !f.bytes().all(|b| b.is_ascii_hexdigit()))?;
    Some(format!("`key_fingerprint` must be full fingerprints (40 or 64 hex digits), got `{bad}`"))
}

/// A `validate` whose `%s` stands inside single quotes (the shell would not expand it).
pub fn validate_quoted_placeholder(base: Error, v: &str) -> Error {
    let mut e = base;
    e.message = format!("`validate` has %s inside single quotes, where it is never replaced by the staged file: `{v}`");
    e.hint("write %s outside single quotes (it is passed quoted), e.g. validate = \"nginx -t -c %s\"")
}

/// A `validate` without `%s`.
pub fn validate_without_placeholder(base: Error, v: &str) -> Error {
    let mut e = base;
    e.message = format!("`validate` must contain %s (the staged file), got `{v}`");
    e.hint("write %s where the command takes the file; a literal % is written %%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0644"), Ok(0o644));
        assert_eq!(parse_mode("4755"), Ok(0o4755));
        assert_eq!(parse_mode("0888"), Err("invalid mode `0888`".into()));
        assert_eq!(parse_mode(""), Err("invalid mode ``".into()));
        assert_eq!(parse_mode("17777"), Err("invalid mode `17777`".into()));
        assert_eq!(meant_mode(644), "mode = \"0644\" (or mode = \"1204\" if you wrote 0o1204)");
        assert_eq!(meant_mode(0o644), "mode = \"0420\" (or mode = \"0644\" if you wrote 0o644)");
        assert_eq!(meant_mode(0o4755), "mode = \"2541\" (or mode = \"4755\" if you wrote 0o4755)");
        assert_eq!(meant_mode(4755), "mode = \"4755\"");
        assert_eq!(meant_mode(800), "mode = \"1440\"");
        assert_eq!(meant_mode(99999), "mode = \"0644\"");
        assert_eq!(
            integer_mode(644),
            "`mode` is the TOML integer 644, i.e. octal 1204: a mode must be a string of octal digits"
        );
    }

    #[test]
    fn fingerprints_must_be_full() {
        assert_eq!(fingerprint_problem("B53AE77BADB630A683046005963FA27710458545"), None);
        assert_eq!(
            fingerprint_problem(
                "b53a e77b adb6 30a6 8304 6005 963f a277 1045 8545, B53AE77BADB630A683046005963FA27710458545"
            ),
            None
        );
        assert_eq!(fingerprint_problem(" , "), Some("`key_fingerprint` is empty".into()));
        assert_eq!(
            fingerprint_problem("963FA27710458545"),
            Some("`key_fingerprint` must be full fingerprints (40 or 64 hex digits), got `963FA27710458545`".into())
        );
        assert!(fingerprint_problem("Z53AE77BADB630A683046005963FA27710458545").is_some());
    }
}
