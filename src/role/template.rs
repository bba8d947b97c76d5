//! Templates: the one minijinja environment of a run. Strict undefined (a missing variable is
//! an error, never an empty string), `trim_blocks` and kept trailing newlines as Ansible users
//! expect. An undefined-variable error is reported with the variable's name. Filters of our
//! own: `systemd_env` quotes a value for a systemd `EnvironmentFile=`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior, Value};

use crate::error::{Error, ErrorKind, Result};

/// A failed render, before it is placed (role, file, host) by the caller.
#[derive(Debug)]
pub struct RenderError {
    pub line: Option<usize>,
    pub message: String,
}

pub struct Templates {
    env: Environment<'static>,
    /// Templates compiled so far (files and fields at load, `render_str` on each call).
    compiled: std::sync::atomic::AtomicUsize,
    /// Template name (`role/file.j2`) -> its file.
    files: HashMap<String, PathBuf>,
}

impl Templates {
    pub fn new() -> Templates {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_syntax(
            SyntaxConfig::builder().trim_blocks(true).keep_trailing_newline(true).build().expect("valid syntax config"),
        );
        env.add_filter("systemd_env", systemd_env_filter);
        env.add_filter("ssh_public_key", |v: Value| {
            crate::secrets::keypair::public_line(v.as_str().unwrap_or_default())
                .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e))
        });
        Templates { env, compiled: Default::default(), files: HashMap::new() }
    }

    /// Adds every file under `roles/NAME/templates/` as `NAME/relative/path`.
    pub fn load_role(&mut self, role: &str, role_dir: &Path) -> Result<()> {
        let dir = role_dir.join("templates");
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let rel = path.strip_prefix(&dir).expect("under templates").to_string_lossy().into_owned();
                let source = super::load::read_text(&path, ErrorKind::Template)?;
                let name = format!("{role}/{rel}");
                self.env.add_template_owned(name.clone(), source).map_err(|e| {
                    let mut err = Error::new(ErrorKind::Template, format!("template syntax error: {}", describe(&e)))
                        .at_file(&path);
                    if let Some(line) = e.line() {
                        err = err.at_line(line, 1);
                    }
                    err
                })?;
                self.count_compile();
                self.files.insert(name, path);
            }
        }
        Ok(())
    }

    fn count_compile(&self) {
        self.compiled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many templates were compiled so far: a run compiles each role's once, at load.
    #[cfg(test)]
    pub fn compiled(&self) -> usize {
        self.compiled.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether any template compiled so far reads the top-level variable `name`.
    pub fn name_used(&self, name: &str) -> bool {
        self.env.templates().any(|(_, t)| t.undeclared_variables(false).contains(name))
    }

    /// Whether a template or templated field of role `role` reads the top-level variable `name`.
    pub fn role_uses(&self, role: &str, name: &str) -> bool {
        let prefix = format!("{role}/");
        self.env.templates().any(|(n, t)| n.starts_with(&prefix) && t.undeclared_variables(false).contains(name))
    }

    /// Whether a template or role field may read the variable `name` (for `-e NAME` typos):
    /// at top level (`name`, `name.x`), as `host.vars.name` / `hosts.X.vars.name`, or through a
    /// whole vars map it cannot see into (`host.vars`, `for h in hosts`), which counts as read.
    pub fn var_may_be_read(&self, name: &str) -> bool {
        self.env.templates().any(|(_, t)| reads_var(&t.undeclared_variables(true), name))
    }

    /// The top-level variables the templates read (for a "did you mean").
    pub fn names_read(&self) -> std::collections::BTreeSet<String> {
        self.env.templates().flat_map(|(_, t)| t.undeclared_variables(false)).collect()
    }

    /// The file behind template `role/name`, if it exists.
    pub fn file(&self, role: &str, name: &str) -> Option<&Path> {
        self.files.get(&format!("{role}/{name}")).map(PathBuf::as_path)
    }

    /// Renders template file `role/name`.
    pub fn render_template(&self, name: &str, ctx: &Value) -> std::result::Result<String, RenderError> {
        let tmpl = self.env.get_template(name).map_err(|e| RenderError { line: None, message: describe(&e) })?;
        tmpl.render(ctx.clone()).map_err(|e| RenderError {
            line: e.line(),
            message: explain(&e, &tmpl.undeclared_variables(true), ctx, tmpl.source()),
        })
    }

    /// Compiles a role's string field once, as template `name` (`ROLE/role.toml:LINE:FIELD#N`).
    pub fn add_field(&mut self, name: String, source: &str) -> std::result::Result<(), String> {
        self.count_compile();
        self.env.add_template_owned(name, source.to_string()).map_err(|e| describe(&e))
    }

    /// Renders a field compiled by [`Templates::add_field`].
    pub fn render_field(&self, name: &str, ctx: &Value) -> std::result::Result<String, RenderError> {
        let tmpl = self.env.get_template(name).map_err(|e| RenderError { line: None, message: describe(&e) })?;
        tmpl.render(ctx).map_err(|e| RenderError {
            line: e.line(),
            message: explain(&e, &tmpl.undeclared_variables(true), ctx, tmpl.source()),
        })
    }

    /// Renders a string (the inventory's deploy settings), compiled on each call. Plain
    /// strings are returned as is.
    pub fn render_str(&self, text: &str, ctx: &Value) -> std::result::Result<String, RenderError> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok(text.to_string());
        }
        self.count_compile();
        self.env.render_str(text, ctx.clone()).map_err(|e| {
            // Only on failure: parse again to learn which variables the string uses.
            let scratch = Environment::new();
            let used = scratch.template_from_str(text).map(|t| t.undeclared_variables(true)).unwrap_or_default();
            RenderError { line: e.line(), message: explain(&e, &used, ctx, text) }
        })
    }
}

/// Whether template text `text` (a deploy field) may read the variable `name`, by the rule of
/// [`Templates::var_may_be_read`]; a text that does not parse counts as reading it.
pub fn text_may_read_var(text: &str, name: &str) -> bool {
    Environment::new().template_from_str(text).map_or(true, |t| reads_var(&t.undeclared_variables(true), name))
}

/// The top-level variables template text `text` reads (for a "did you mean").
pub fn names_read_by_text(text: &str) -> std::collections::HashSet<String> {
    Environment::new().template_from_str(text).map(|t| t.undeclared_variables(false)).unwrap_or_default()
}

/// Whether a template that reads the variable paths `paths` may read the variable `name`.
fn reads_var(paths: &std::collections::HashSet<String>, name: &str) -> bool {
    let deep = format!(".vars.{name}");
    paths.iter().any(|path| {
        let top = path.split('.').next().unwrap_or(path);
        top == name
            || path.ends_with(&deep)
            || path.contains(&format!("{deep}."))
            || path.ends_with(".vars")
            || matches!(path.as_str(), "host" | "hosts" | "groups")
            || (matches!(top, "hosts" | "groups") && path.matches('.').count() == 1)
    })
}

/// `{{ value | systemd_env }}`: see [`systemd_env`].
fn systemd_env_filter(value: Value) -> std::result::Result<String, minijinja::Error> {
    let text = match value.as_str() {
        Some(s) => s.to_string(),
        None if value.is_undefined() || value.is_none() => {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::UndefinedError,
                "systemd_env of an undefined value",
            ));
        }
        None => value.to_string(),
    };
    systemd_env(&text).ok_or_else(|| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, "a systemd environment value cannot contain NUL")
    })
}

/// `value` as one double-quoted value of a systemd `EnvironmentFile=` line (`KEY={{ v | systemd_env }}`):
/// systemd's rules for double quotes (systemd.exec(5), env-file.c) take `\"`, `\\`, `\``
/// and `\$` as escapes and everything else, newlines included, literally, so `$`, quotes,
/// spaces, backticks and backslashes survive as written. NUL cannot be represented: `None`.
pub fn systemd_env(value: &str) -> Option<String> {
    if value.contains('\0') {
        return None;
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '`' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

/// Names the undefined variable: of the variables the template uses that the context lacks,
/// the first on the failing line (else the first by name).
fn explain(e: &minijinja::Error, used: &std::collections::HashSet<String>, ctx: &Value, source: &str) -> String {
    if e.kind() != minijinja::ErrorKind::UndefinedError {
        return describe(e);
    }
    let mut missing: Vec<&String> = used.iter().filter(|path| !resolves(ctx, path)).collect();
    missing.sort();
    let line = e.line().and_then(|l| source.lines().nth(l.saturating_sub(1))).unwrap_or("");
    let position = |var: &&String| line.find(var.as_str()).unwrap_or(usize::MAX);
    missing.sort_by_key(position);
    match missing.first() {
        Some(var) => format!("undefined variable `{var}`"),
        None => describe(e),
    }
}

/// Does a dotted path like `host.vars.app_port` resolve in `ctx`?
fn resolves(ctx: &Value, path: &str) -> bool {
    let mut cur = ctx.clone();
    for part in path.split('.') {
        match cur.get_attr(part) {
            Ok(v) if !v.is_undefined() => cur = v,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_env_escapes_exactly_what_systemd_unescapes() {
        assert_eq!(systemd_env("plain").unwrap(), r#""plain""#);
        assert_eq!(systemd_env("").unwrap(), r#""""#);
        assert_eq!(systemd_env("abc$(touch /tmp/x)def").unwrap(), r#""abc\$(touch /tmp/x)def""#);
        assert_eq!(systemd_env("pa$word").unwrap(), r#""pa\$word""#);
        assert_eq!(systemd_env("\"abc def\"").unwrap(), r#""\"abc def\"""#);
        assert_eq!(systemd_env("it's `id` \\n").unwrap(), r#""it's \`id\` \\n""#);
        assert_eq!(systemd_env(" lead and trail ").unwrap(), "\" lead and trail \"");
        assert_eq!(systemd_env("two\nlines").unwrap(), "\"two\nlines\"");
        assert_eq!(systemd_env("a\0b"), None);
    }

    #[test]
    fn systemd_env_filter_in_a_template() {
        let t = Templates::new();
        let ctx = minijinja::context! { secret => "a$b \"c\"", port => 5000 };
        assert_eq!(
            t.render_str("K={{ secret | systemd_env }} P={{ port | systemd_env }}", &ctx).unwrap(),
            r#"K="a\$b \"c\"" P="5000""#
        );
        assert!(t.render_str("K={{ nope | systemd_env }}", &ctx).is_err());
    }
}
