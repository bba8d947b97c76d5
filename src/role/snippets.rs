//! The roles' shell snippets (a command's `run` and `unless`, a file's `validate`, a handler's
//! `run`) checked offline with `sh -n`, so a snippet that would break every host's probe or
//! apply script (an unclosed quote, a stray `fi`) is caught before any SSH: literal ones when
//! the role loads (`resolve`, every command), templated ones once rendered (`microctl check`).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use crate::error::{Error, ErrorKind};
use crate::plan::desired::{Desired, Origin};

/// Every snippet of `desired`: where it was declared, its field, its text.
pub fn snippets(desired: &Desired) -> Vec<(&Origin, &'static str, &str)> {
    let mut out = Vec::new();
    for c in &desired.commands {
        out.push((&c.origin, "command.run", c.run.as_str()));
        if let Some(u) = &c.unless {
            out.push((&c.origin, "command.unless", u.as_str()));
        }
    }
    for f in &desired.files {
        if let Some(v) = &f.validate {
            out.push((&f.origin, "file.validate", v.as_str()));
        }
    }
    for h in &desired.handlers {
        out.push((&h.origin, "handler.run", h.run.as_str()));
    }
    out
}

/// The syntax errors of `desired`'s snippets, as role errors (exit 2) naming role.toml's line.
/// Literal snippets were parsed when the role loaded; this catches templated ones once
/// rendered. `parsed` remembers each text's verdict, so every distinct text is parsed once.
pub fn check(desired: &Desired, roles_dir: &Path, parsed: &mut HashMap<String, Option<String>>) -> Vec<Error> {
    let mut errors = Vec::new();
    for (origin, field, text) in snippets(desired) {
        let verdict = match parsed.get(text) {
            Some(v) => v.clone(),
            None => {
                let v = syntax_error(text);
                parsed.insert(text.to_string(), v.clone());
                v
            }
        };
        let Some(problem) = verdict else { continue };
        let at = Error::new(ErrorKind::Role, "")
            .at_file(roles_dir.join(&origin.role).join("role.toml"))
            .at_line(origin.line, 1)
            .field(field)
            .host(&desired.host);
        errors.push(error(at, field, &problem));
    }
    errors
}

/// `problem` (what `sh -n` said) as the error of a snippet in `field`, located by `at`.
pub fn error(at: Error, field: &str, problem: &str) -> Error {
    let mut e = at;
    e.message = format!("`{field}` is not valid sh: {problem}");
    e.hint("fix the shell syntax (it runs under /bin/sh on the host: POSIX sh, e.g. dash)")
}

/// What `sh -n` says about `text`, `None` when it parses.
pub fn syntax_error(text: &str) -> Option<String> {
    let out = Command::new("sh").arg("-n").arg("-c").arg(text).output().ok()?;
    if out.status.success() {
        return None;
    }
    let msg = String::from_utf8_lossy(&out.stderr);
    Some(msg.trim().trim_start_matches("sh: ").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sh_n_finds_syntax_errors_and_accepts_trailing_comments() {
        assert_eq!(syntax_error("test -e /x # done already"), None);
        assert_eq!(syntax_error("echo \"$HOME\" > /tmp/x; exit 3"), None);
        assert!(syntax_error("if true; then echo").is_some());
        assert!(syntax_error("echo 'unclosed").is_some());
    }
}
