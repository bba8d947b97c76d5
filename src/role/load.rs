//! Loading roles: parse every `role.toml` a run needs (and the roles they depend on), compile
//! their templates, resolve each once (`resolve`), then check what spans roles: `depends`
//! cycles and `notify` targets. Every error names role.toml's line, column and field, and is
//! found once per run, whatever the number of hosts that use the role.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::raw::RawRole;
use super::resolve::{At, Resolver, RoleSpec};
use super::template::Templates;
use crate::error::{Error, ErrorKind, LineIndex, Result};
use crate::inventory::input;
use crate::plan::desired::Blob;

/// One role, resolved: parsed and checked once at load (see `resolve`).
#[derive(Debug)]
pub struct Role {
    pub name: String,
    pub dir: PathBuf,
    pub toml_path: PathBuf,
    pub spec: RoleSpec,
}

impl Role {
    /// An error located at `at` in this role's role.toml.
    pub fn error(&self, at: &At, message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Role, message).at_file(&self.toml_path).at_line(at.line, at.column)
    }
}

/// The roles of a run, their templates, and the static files they read.
pub struct RoleSet {
    pub roles_dir: PathBuf,
    pub files_dir: PathBuf,
    roles: BTreeMap<String, Role>,
    pub templates: Templates,
    static_files: Mutex<HashMap<PathBuf, Arc<Blob>>>,
}

impl RoleSet {
    /// Loads and resolves the roles named in `wanted` (name, and where it was asked for) and
    /// everything they depend on. Every role error found is returned, each once.
    pub fn load(roles_dir: &Path, wanted: &[(String, Error)]) -> std::result::Result<RoleSet, Vec<Error>> {
        let files_dir = roles_dir.parent().unwrap_or(Path::new(".")).join("files");
        let mut set = RoleSet {
            roles_dir: roles_dir.to_path_buf(),
            files_dir,
            roles: BTreeMap::new(),
            templates: Templates::new(),
            static_files: Mutex::default(),
        };
        let mut errors = Vec::new();
        let mut failed = Vec::new();
        for (name, asked_at) in wanted {
            set.load_one(name, &|| asked_at.duplicate(), &mut errors, &mut failed);
        }
        let names: Vec<String> = set.roles.keys().cloned().collect();
        for name in &names {
            if let Err(e) = set.check_depends_cycle(name, &mut vec![]) {
                errors.push(e);
                return Err(errors);
            }
        }
        for name in &names {
            errors.extend(set.check_notify(&set.roles[name]));
        }
        if errors.is_empty() { Ok(set) } else { Err(errors) }
    }

    /// Every role folder under `roles_dir` (for `microctl check` and tests).
    pub fn available(roles_dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(roles_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("role.toml").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    /// Loads `name` (once, also when it failed) and its dependencies; errors go to `errors`.
    fn load_one(&mut self, name: &str, unknown: &dyn Fn() -> Error, errors: &mut Vec<Error>, tried: &mut Vec<String>) {
        if self.roles.contains_key(name) || tried.iter().any(|t| t == name) {
            return;
        }
        tried.push(name.to_string());
        let dir = self.roles_dir.join(name);
        let toml_path = dir.join("role.toml");
        if !toml_path.is_file() {
            let available = RoleSet::available(&self.roles_dir);
            let mut err = unknown();
            err.message = format!("unknown role `{name}`: {} does not exist", toml_path.display());
            err.hint = Some(if available.is_empty() {
                format!("create {} (see roles/README.md), or pass --roles-dir", toml_path.display())
            } else {
                format!("roles in {}: {}", self.roles_dir.display(), available.join(", "))
            });
            errors.push(err);
            return;
        }
        let text = match read_text(&toml_path, ErrorKind::Role) {
            Ok(t) => t,
            Err(e) => return errors.push(e),
        };
        let raw: RawRole = match toml::from_str(&text) {
            Ok(raw) => raw,
            Err(e) => {
                let lines = LineIndex::new(&text);
                let e = input::toml_error(&toml_path, &text, &lines, &e, ErrorKind::Role, "role", "roles/README.md");
                return errors.push(e);
            }
        };
        if let Err(e) = self.templates.load_role(name, &dir) {
            return errors.push(e);
        }
        let (cache, files_dir) = (&self.static_files, &self.files_dir);
        let read = |file: &str| static_file(cache, files_dir, file);
        let mut resolver = Resolver::new(name, (&toml_path, &dir, files_dir), &text, &mut self.templates, &read);
        let spec = resolver.resolve(&raw);
        let mut found = std::mem::take(&mut resolver.errors);
        found.sort_by_key(|e| (e.line, e.column));
        errors.extend(found);
        // Kept even when it has errors (the run fails anyway), so what spans roles (`depends`
        // cycles, `notify` targets) is checked too and every error shows at once.
        let role = Role { name: name.to_string(), dir, toml_path, spec };
        let deps = role.spec.depends.clone();
        let path = role.toml_path.clone();
        self.roles.insert(name.to_string(), role);
        for (dep, at) in deps {
            let asked = || Error::new(ErrorKind::Role, "").at_file(&path).at_line(at.line, at.column).field("depends");
            self.load_one(&dep, &asked, errors, tried);
        }
    }

    /// Every `notify` of `role` names a handler of the role or of a role it depends on.
    fn check_notify(&self, role: &Role) -> Vec<Error> {
        let handlers: Vec<&str> = self
            .expand(std::slice::from_ref(&role.name))
            .iter()
            .flat_map(|r| r.spec.handlers.iter().map(|h| h.name.as_str()))
            .collect();
        let s = &role.spec;
        let notifies = s
            .directories
            .iter()
            .map(|x| ("directory.notify", &x.at, &x.notify))
            .chain(s.files.iter().map(|x| ("file.notify", &x.at, &x.notify)))
            .chain(s.links.iter().map(|x| ("link.notify", &x.at, &x.notify)))
            .chain(s.absent.iter().map(|x| ("absent.notify", &x.at, &x.notify)))
            .chain(s.services.iter().map(|x| ("service.notify", &x.at, &x.notify)))
            .chain(s.commands.iter().map(|x| ("command.notify", &x.at, &x.notify)));
        let mut errors = Vec::new();
        for (field, at, names) in notifies {
            for name in names.iter().filter(|n| !handlers.contains(&n.as_str())) {
                errors.push(role.error(at, format!("`notify` names unknown handler `{name}`")).field(field).hint(
                    if handlers.is_empty() {
                        "define it as a [[handler]] in this role or a role it depends on".to_string()
                    } else {
                        format!("handlers of this role and the roles it depends on: {}", handlers.join(", "))
                    },
                ));
            }
        }
        errors
    }

    fn check_depends_cycle(&self, name: &str, path: &mut Vec<String>) -> Result<()> {
        if let Some(pos) = path.iter().position(|p| p == name) {
            let cycle = path[pos..].iter().chain([&name.to_string()]).cloned().collect::<Vec<_>>().join(" -> ");
            let role = &self.roles[&path[pos]];
            let at = role.spec.depends.first().map(|d| d.1.clone()).unwrap_or(At { line: 1, column: 1 });
            return Err(role.error(&at, format!("`depends` cycle: {cycle}")).field("depends"));
        }
        path.push(name.to_string());
        let Some(role) = self.roles.get(name) else { return Ok(()) }; // unknown: reported
        for (dep, _) in &role.spec.depends {
            self.check_depends_cycle(dep, path)?;
        }
        path.pop();
        Ok(())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.roles.contains_key(name)
    }

    pub fn get(&self, name: &str) -> &Role {
        &self.roles[name]
    }

    /// `names` with their dependencies first, each once. Names not loaded are skipped (a set
    /// loaded without roles, for a command that uses only role defaults when there are any).
    pub fn expand(&self, names: &[String]) -> Vec<&Role> {
        let mut out: Vec<&Role> = Vec::new();
        fn visit<'a>(set: &'a RoleSet, name: &str, out: &mut Vec<&'a Role>) {
            if out.iter().any(|r| r.name == name) {
                return;
            }
            let Some(role) = set.roles.get(name) else { return };
            for (dep, _) in &role.spec.depends {
                visit(set, dep, out);
            }
            out.push(role);
        }
        for n in names {
            visit(self, n, &mut out);
        }
        out
    }

    /// A static file from `files/`, read once per run.
    pub fn static_file(&self, name: &str) -> std::io::Result<Arc<Blob>> {
        static_file(&self.static_files, &self.files_dir, name)
    }
}

/// `files_dir/name`, read and hashed at most once per run (`cache`).
fn static_file(cache: &Mutex<HashMap<PathBuf, Arc<Blob>>>, files_dir: &Path, name: &str) -> std::io::Result<Arc<Blob>> {
    let path = files_dir.join(name);
    if let Some(data) = cache.lock().expect("files lock").get(&path) {
        return Ok(data.clone());
    }
    let data = Arc::new(Blob::new(std::fs::read(&path)?));
    cache.lock().expect("files lock").insert(path, data.clone());
    Ok(data)
}

/// Reads a role's text file (role.toml or a template); bytes that are not UTF-8 are an
/// error of `kind` (exit 2) naming the line and column where they start.
pub fn read_text(path: &Path, kind: ErrorKind) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
    input::utf8(path, bytes, kind)
}
