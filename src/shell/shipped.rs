//! Host shell as it goes over the wire: a `.sh` file of the repo (`include_str!`) without its
//! comment lines and blank lines. Every session sends its scripts to every host, where sshd
//! decrypts them and the shell reads and parses them, so the long explanations atop each file
//! (half its bytes) are paid per host and run. The repo's files keep their comments; a
//! [`Shipped`] strips them once per process, at first use, and is what the builders
//! concatenate (it is `Display` and derefs to `str`).
//!
//! Stripped: lines whose first non-blank character is `#` (comments and `# shellcheck`
//! directives) and blank lines; nothing else. That never changes what the shell does as long
//! as no such line can be inside a here-document or a quoted string spanning lines, or follow
//! a backslash-newline: the tests below refuse any shipped file where one could be
//! (`unsafe_line`), and run the stripped text through `sh -n` and `dash -n`.

use std::fmt;
#[cfg(test)]
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A host-side script of the repo, shipped without comment and blank lines.
pub struct Shipped {
    raw: &'static str,
    text: OnceLock<String>,
}

impl Shipped {
    /// `raw`: the file as written (`include_str!`).
    pub const fn new(raw: &'static str) -> Shipped {
        Shipped { raw, text: OnceLock::new() }
    }

    /// What is sent: [`strip`]ped, computed once.
    pub fn text(&self) -> &str {
        self.text.get_or_init(|| strip(self.raw))
    }

    /// The file as written in the repo.
    pub fn raw(&self) -> &'static str {
        self.raw
    }
}

impl std::ops::Deref for Shipped {
    type Target = str;
    fn deref(&self) -> &str {
        self.text()
    }
}

impl fmt::Display for Shipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

/// `script` without its full-line comments and blank lines (every kept line ends in `\n`).
pub fn strip(script: &str) -> String {
    let mut out = String::with_capacity(script.len());
    for line in script.lines().filter(|l| !stripped(l)) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Whether [`strip`] drops `line`.
fn stripped(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// For the tests: the first line of `script` whose stripping could change its meaning, with
/// why; `None` when stripping is safe. Lines are followed by a small lexer of POSIX shell
/// words (quotes, backslashes, `#` comments at the start of a word), whose state carries
/// from line to line. Unsafe: a here-document (`<<`: its body is data, which the lexer does
/// not follow), and a comment or blank line inside a quoted string spanning lines (it is the
/// string's) or after a backslash-newline (it continues that line).
#[cfg(test)]
pub(crate) fn unsafe_line(script: &str) -> Option<(usize, &'static str)> {
    let mut state = Lexed::Plain;
    for (i, line) in script.lines().enumerate() {
        if stripped(line) {
            match state {
                Lexed::Plain | Lexed::HereDoc => continue,
                Lexed::Quoted(_) => return Some((i + 1, "a stripped line is inside a quoted string")),
                Lexed::Continued => {
                    return Some((i + 1, "a stripped line continues the one before (backslash-newline)"));
                }
            }
        }
        state = lex(line, state);
        if state == Lexed::HereDoc {
            return Some((i + 1, "a here-document (`<<`): its body's lines are data"));
        }
    }
    None
}

/// Where the lexer stands at the end of a line.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq)]
enum Lexed {
    /// Between commands or words: the next line is read afresh.
    Plain,
    /// Inside a `'` or `"` string.
    Quoted(char),
    /// After an unquoted backslash-newline.
    Continued,
    /// A `<<` was seen.
    HereDoc,
}

/// The lexer's state after `line`, starting in `state` (`Plain` or `Quoted`).
#[cfg(test)]
fn lex(line: &str, state: Lexed) -> Lexed {
    let mut quote = match state {
        Lexed::Quoted(q) => Some(q),
        _ => None,
    };
    let mut chars = line.chars().peekable();
    let mut prev: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') => quote = None,
            (Some('\''), _) => {}
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\\') => {
                if chars.next().is_none() {
                    return Lexed::Continued;
                }
            }
            (None, '\'' | '"') => quote = Some(c),
            (None, '#') if prev.is_none_or(|p| p.is_whitespace() || ";&|()".contains(p)) => break,
            (None, '<') if chars.peek() == Some(&'<') => return Lexed::HereDoc,
            (None, _) => {}
        }
        prev = Some(c);
    }
    quote.map_or(Lexed::Plain, Lexed::Quoted)
}

/// For the tests: every `.sh` under `src/` that a host session ships (the lab's run on this
/// machine).
#[cfg(test)]
pub(crate) fn shipped_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if !p.ends_with("lab") {
                    walk(&p, out);
                }
            } else if p.extension().is_some_and(|x| x == "sh") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out.sort();
    assert!(out.len() >= 15, "{out:?}");
    out
}

/// For the tests of generated scripts: `script` with each shipped file put back as written,
/// so that shellcheck sees their `# shellcheck` directives (stripping changes nothing else).
#[cfg(test)]
pub(crate) fn with_comments(script: &str) -> String {
    let mut files: Vec<(String, String)> = shipped_files()
        .iter()
        .map(|p| {
            let raw = std::fs::read_to_string(p).unwrap();
            (strip(&raw), raw)
        })
        .collect();
    files.sort_by_key(|(text, _)| std::cmp::Reverse(text.len()));
    let mut out = script.to_string();
    for (text, raw) in files {
        out = out.replace(&text, &raw);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_drops_comment_and_blank_lines_only() {
        let s = "# shellcheck shell=sh\n# about\nset -u\n\n  # indented\n\tx=1 # kept: not a full line\n  y='#x'\necho \"$#\"";
        assert_eq!(strip(s), "set -u\n\tx=1 # kept: not a full line\n  y='#x'\necho \"$#\"\n");
        let sh = Shipped::new("# c\necho a\n");
        assert_eq!((sh.text(), sh.raw(), format!("{sh}")), ("echo a\n", "# c\necho a\n", "echo a\n".into()));
    }

    /// The lexer finds each case where stripping would change a script.
    #[test]
    fn unsafe_lines_are_found() {
        assert_eq!(unsafe_line("cat << EOF\n# data\nEOF\n").map(|u| u.0), Some(1));
        assert_eq!(unsafe_line("x='a\n\n# data\n'\n").map(|u| u.0), Some(2));
        assert_eq!(unsafe_line("x='a\nb\n  # data\n'\n").map(|u| u.0), Some(3));
        assert_eq!(unsafe_line("x=\"a \\\" \n# data\n\"\n").map(|u| u.0), Some(2));
        assert_eq!(unsafe_line("echo a \\\n# data\n").map(|u| u.0), Some(2));
        assert_eq!(unsafe_line("echo a \\\n\n").map(|u| u.0), Some(2));
        // Safe: quotes closed on their line or spanning lines none of which is stripped, `#`
        // inside words and quotes, apostrophes in comments, an escaped backslash at the end,
        // a `<<` in quotes or in a comment.
        let safe = "x='it''s' # don't\necho \"$#\" ${#x} a#b '<<' \\\\\n# it's\ny=\"$(cd \"$x\" && pwd)\" # <<\n\
                    awk '\n  /#/ { print \"#\" }\n' f\n# done\n";
        assert_eq!(unsafe_line(safe), None);
    }

    /// Issue #21 (green means checked): every shipped script is run, as the real path
    /// assembles it, under sh and dash with `set -u` by a test that asserts its stderr is
    /// EMPTY. This table names that test per file; a new `.sh` fails here until it has one.
    #[test]
    fn every_shipped_script_has_an_empty_stderr_test() {
        const CONVERGE: &str = "apply::host::tests::converge_session_writes_nothing_to_stderr_under_sh_and_dash";
        const DEPLOY: &str =
            "deploy::deploy_script::tests::quiet::deploy_host_scripts_write_nothing_to_stderr_under_sh_and_dash";
        const KEY: &str = "role::apt_key::tests::every_key_in_the_file_must_be_pinned";
        const KEYS_EDIT: &str = "apply::users::tests::keys_edit_under_sh_and_dash";
        const KEYS_READ: &str = "plan::users::tests::reader_output_parses_under_sh_and_dash";
        const APT: &str = "apply::apply_script::tests::apt::apt_wait_names_the_holder_once_and_goes_on_when_it_lets_go";
        const FACTS: &str = "facts::gather::tests::gather_under_sh_and_dash";
        const FIREWALL: &str = "firewall::apply::tests::host_script_writes_nothing_to_stderr_under_sh_and_dash";
        const STOP: &str =
            "transport::stop::tests::the_stop_ends_the_connections_sessions_and_keeps_a_detached_one_under_sh_and_dash";
        let covered = [
            ("apply/apply.sh", CONVERGE),
            ("apply/apt.sh", APT),
            ("apply/host.sh", CONVERGE),
            ("apply/keys_edit.sh", KEYS_EDIT),
            ("plan/hashes/list.sh", CONVERGE),
            ("plan/hashes/write.sh", CONVERGE),
            ("plan/keys_read.sh", KEYS_READ),
            ("shell/mark.sh", CONVERGE),
            ("remote/session.sh", CONVERGE),
            ("facts/fingerprint.sh", FACTS),
            ("facts/gather.sh", FACTS),
            ("deploy/cache.sh", DEPLOY),
            ("deploy/clone.sh", DEPLOY),
            ("deploy/drain.sh", DEPLOY),
            ("deploy/envfile.sh", DEPLOY),
            ("deploy/functions.sh", DEPLOY),
            ("deploy/ledger.sh", DEPLOY),
            ("deploy/previous.sh", DEPLOY),
            ("deploy/release.sh", DEPLOY),
            ("deploy/switch.sh", DEPLOY),
            ("deploy/upload.sh", DEPLOY),
            ("deploy/verdict.sh", DEPLOY),
            ("deploy/watchdog.sh", DEPLOY),
            ("role/fetch_key.sh", KEY),
            ("firewall/firewall.sh", FIREWALL),
            ("firewall/watchdog.sh", FIREWALL),
            ("transport/stop.sh", STOP),
        ];
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut shipped: Vec<String> =
            shipped_files().iter().map(|p| p.strip_prefix(&src).unwrap().to_string_lossy().into_owned()).collect();
        shipped.sort();
        let mut listed: Vec<String> = covered.iter().map(|(f, _)| f.to_string()).collect();
        listed.sort();
        assert_eq!(shipped, listed, "each shipped .sh needs a test asserting its empty stderr, listed here");
        // The tests named exist (by their `fn`, in the file their path names).
        for (_, test) in covered {
            let parts: Vec<&str> = test.split("::").collect();
            let module = parts.iter().take_while(|p| **p != "tests").copied().collect::<Vec<_>>().join("/");
            let name = parts.last().unwrap();
            let dir = src.join(module.rsplit_once('/').map_or("", |(d, _)| d));
            let texts: String = std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
                .collect();
            assert!(texts.contains(&format!("fn {name}()")), "{test}: no such test in {}", dir.display());
        }
    }

    /// The tools the host-shell tests run (each test runs its scripts under sh AND dash, plays
    /// user nobody with runuser, counts processes with strace...): a missing one fails here,
    /// naming its Debian package, besides failing the tests that use it.
    #[test]
    fn the_tools_the_host_script_tests_need_are_installed() {
        let missing: Vec<String> = [
            ("dash", "dash"),
            ("strace", "strace"),
            ("runuser", "util-linux"),
            ("flock", "util-linux"),
            ("setsid", "util-linux"),
            ("shellcheck", "shellcheck"),
            ("inotifywait", "inotify-tools"),
            ("gpg", "gnupg"),
            ("git", "git"),
            ("timeout", "coreutils"),
        ]
        .iter()
        .filter(|(tool, _)| {
            !std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {tool}"))
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(|(tool, package)| format!("{tool} (Debian package {package})"))
        .collect();
        assert!(missing.is_empty(), "missing: {}; scripts/test.sh installs them", missing.join(", "));
    }

    /// Every shipped script: nothing stripped could be inside a here-document or a multi-line
    /// string, or continue a line; the stripped text still parses under sh and dash; and it
    /// is smaller (the whole point).
    #[test]
    fn every_shipped_script_strips_safely() {
        let mut refused = Vec::new();
        for path in shipped_files() {
            let raw = std::fs::read_to_string(&path).unwrap();
            if let Some((line, why)) = unsafe_line(&raw) {
                refused.push(format!("{}:{line}: {why}", path.display()));
                continue;
            }
            let text = strip(&raw);
            assert!(text.len() < raw.len(), "{}", path.display());
            for shell in ["sh", "dash"] {
                let out = std::process::Command::new(shell).arg("-n").arg("-c").arg(&text).output().unwrap();
                assert!(
                    out.status.success(),
                    "{shell} -n {}: {}",
                    path.display(),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        assert!(refused.is_empty(), "stripping their comments is not safe:\n{}", refused.join("\n"));
    }
}
