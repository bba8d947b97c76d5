//! Loading roles: parse every `role.toml` a run needs (and the roles they depend on), check
//! each resource's fields, and load their templates. Errors name the file, line and field.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::raw::RawRole;
use super::template::Templates;
use crate::error::{Error, ErrorKind, LineIndex, Result, line_col};
use crate::inventory::input;

/// One loaded role.
#[derive(Debug)]
pub struct Role {
    pub name: String,
    pub dir: PathBuf,
    pub toml_path: PathBuf,
    pub text: String,
    pub raw: RawRole,
}

impl Role {
    /// 1-based line of a span in role.toml.
    pub fn line(&self, span: &Range<usize>) -> usize {
        line_col(&self.text, span.start).0
    }

    /// An error located in this role's role.toml.
    pub fn error(&self, span: &Range<usize>, message: impl Into<String>) -> Error {
        let (line, col) = line_col(&self.text, span.start);
        Error::new(ErrorKind::Role, message).at_file(&self.toml_path).at_line(line, col)
    }
}

/// The roles of a run, their templates, and the static files they read.
pub struct RoleSet {
    pub roles_dir: PathBuf,
    pub files_dir: PathBuf,
    roles: BTreeMap<String, Role>,
    pub templates: Templates,
    static_files: Mutex<HashMap<PathBuf, Arc<Vec<u8>>>>,
}

impl RoleSet {
    /// Loads the roles named in `wanted` (name, and where it was asked for) and everything
    /// they depend on.
    pub fn load(roles_dir: &Path, wanted: &[(String, Error)]) -> Result<RoleSet> {
        let files_dir = roles_dir.parent().unwrap_or(Path::new(".")).join("files");
        let mut set = RoleSet {
            roles_dir: roles_dir.to_path_buf(),
            files_dir,
            roles: BTreeMap::new(),
            templates: Templates::new(),
            static_files: Mutex::default(),
        };
        for (name, asked_at) in wanted {
            set.load_one(name, &|| asked_at.duplicate())?;
        }
        let names: Vec<String> = set.roles.keys().cloned().collect();
        for name in names {
            set.check_depends_cycle(&name, &mut vec![])?;
        }
        Ok(set)
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

    fn load_one(&mut self, name: &str, unknown: &dyn Fn() -> Error) -> Result<()> {
        if self.roles.contains_key(name) {
            return Ok(());
        }
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
            return Err(err);
        }
        let text = read_text(&toml_path, ErrorKind::Role)?;
        let raw: RawRole = toml::from_str(&text).map_err(|e| {
            let lines = LineIndex::new(&text);
            input::toml_error(&toml_path, &text, &lines, &e, ErrorKind::Role, "role", "roles/README.md")
        })?;
        let role = Role { name: name.to_string(), dir: dir.clone(), toml_path, text, raw };
        check_names_and_paths(&role)?;
        self.templates.load_role(&role)?;
        let deps: Vec<(String, Range<usize>)> =
            role.raw.depends.iter().map(|d| (d.get_ref().clone(), d.span())).collect();
        let role_for_errors = (role.toml_path.clone(), role.text.clone());
        self.roles.insert(name.to_string(), role);
        for (dep, span) in deps {
            let (path, text) = &role_for_errors;
            self.load_one(&dep, &|| {
                let (line, col) = line_col(text, span.start);
                Error::new(ErrorKind::Role, "").at_file(path).at_line(line, col).field("depends")
            })?;
        }
        Ok(())
    }

    fn check_depends_cycle(&self, name: &str, path: &mut Vec<String>) -> Result<()> {
        if let Some(pos) = path.iter().position(|p| p == name) {
            let cycle = path[pos..].iter().chain([&name.to_string()]).cloned().collect::<Vec<_>>().join(" -> ");
            let role = &self.roles[&path[pos]];
            let span = role.raw.depends.first().map(|d| d.span()).unwrap_or(0..0);
            return Err(role.error(&span, format!("`depends` cycle: {cycle}")).field("depends"));
        }
        path.push(name.to_string());
        for dep in &self.roles[name].raw.depends {
            self.check_depends_cycle(dep.get_ref(), path)?;
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
            for dep in &role.raw.depends {
                visit(set, dep.get_ref(), out);
            }
            out.push(role);
        }
        for n in names {
            visit(self, n, &mut out);
        }
        out
    }

    /// A static file from `files/`, read once per run.
    pub fn static_file(&self, name: &str) -> std::io::Result<Arc<Vec<u8>>> {
        let path = self.files_dir.join(name);
        if let Some(data) = self.static_files.lock().expect("files lock").get(&path) {
            return Ok(data.clone());
        }
        let data = Arc::new(std::fs::read(&path)?);
        self.static_files.lock().expect("files lock").insert(path, data.clone());
        Ok(data)
    }
}

/// Reads a role's text file (role.toml or a template); bytes that are not UTF-8 are an
/// error of `kind` (exit 2) naming the line and column where they start.
pub fn read_text(path: &Path, kind: ErrorKind) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let valid = String::from_utf8_lossy(&e.as_bytes()[..at]).into_owned();
        let (line, col) = line_col(&valid, at);
        Error::new(kind, format!("not UTF-8 text (byte {at})"))
            .at_file(path)
            .at_line(line, col)
            .hint("save the file as UTF-8; binary content belongs in the role's files/ folder (`src = ...`)")
    })
}

/// Names and literal paths checked at load, with the resource's line: an apt repository's
/// name must be a plain file name, files read from files/ must be inside it, every managed
/// path absolute and normalised. Templated
/// paths are checked again once rendered (`render`).
fn check_names_and_paths(role: &Role) -> Result<()> {
    use super::names::{absolute_path, files_name, is_templated, plain_file_name};
    let raw = &role.raw;
    for repo in &raw.apt_repository {
        let field = "apt_repository.name";
        plain_file_name(field, &repo.get_ref().name)
            .map_err(|r| role.error(&repo.span(), r.message).field(field).hint(r.hint))?;
    }
    // Files read from files/ (shipped to hosts) must not come from anywhere else.
    let local = raw
        .apt_repository
        .iter()
        .map(|r| (r.span(), "apt_repository.key", r.get_ref().key.as_ref()))
        .chain(raw.file.iter().map(|f| (f.span(), "file.src", f.get_ref().src.as_ref())));
    for (span, field, name) in local {
        let Some(name) = name.filter(|n| !is_templated(n)) else { continue };
        files_name(field, name).map_err(|r| role.error(&span, r.message).field(field).hint(r.hint))?;
    }
    let paths = raw
        .file
        .iter()
        .map(|f| (f.span(), "file.dest", Some(&f.get_ref().dest)))
        .chain(raw.directory.iter().map(|d| (d.span(), "directory.path", Some(&d.get_ref().path))))
        .chain(raw.link.iter().map(|l| (l.span(), "link.path", Some(&l.get_ref().path))))
        .chain(raw.absent.iter().map(|a| (a.span(), "absent.path", Some(&a.get_ref().path))))
        .chain(raw.command.iter().map(|c| (c.span(), "command.creates", c.get_ref().creates.as_ref())));
    for (span, field, path) in paths {
        let Some(path) = path.filter(|p| !is_templated(p)) else { continue };
        absolute_path(field, path).map_err(|r| role.error(&span, r.message).field(field).hint(r.hint))?;
    }
    Ok(())
}
