//! The ground floor of everything that writes host shell: quoting, placeholders, role
//! snippets bounded by `timeout` ([`bounded`]), the one marker emitter every host script
//! starts with ([`MARK_SH`]) and shipping `.sh` files without their comments ([`Shipped`]).
//! Pure functions, tested by exact string; this module imports nothing from the rest of the
//! crate, so every layer may use it.

mod shipped;

pub use shipped::Shipped;
#[cfg(test)]
pub(crate) use shipped::with_comments;

/// The marker emitter (`mark`, `mark_out`), for every host-side script.
pub static MARK_SH: Shipped = Shipped::new(include_str!("mark.sh"));

/// Quotes `s` for a POSIX shell (single quotes; embedded quotes escaped).
pub fn quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `validate`'s placeholders: `%s` becomes `file` (already quoted), `%%` a single `%`.
/// `None` when there is no `%s` (the command would not look at the staged file).
pub fn fill_placeholder(command: &str, file: &str) -> Option<String> {
    let mut out = String::new();
    let mut found = false;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('%', Some('s')) => {
                chars.next();
                out.push_str(file);
                found = true;
            }
            ('%', Some('%')) => {
                chars.next();
                out.push('%');
            }
            _ => out.push(c),
        }
    }
    found.then_some(out)
}

/// Whether a `%s` of `validate` stands inside single quotes, where the shell takes `"$1"` (what
/// it becomes) literally: the validator would be given the text `"$1"`, not the staged file.
pub fn placeholder_in_single_quotes(v: &str) -> bool {
    let (mut single, mut double) = (false, false);
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '\\' if !single => {
                chars.next();
            }
            '%' => match chars.next() {
                Some('s') if single => return true,
                _ => {}
            },
            _ => {}
        }
    }
    false
}

/// Grace, in seconds, between `timeout`'s TERM and its KILL of a snippet that outlives
/// `TIMEOUT`.
pub const KILL_AFTER: u64 = 5;

/// `snippet` (a role's `unless`, `run`, `validate` or handler) as one bounded command on the
/// host: `/bin/sh -c` (the shell the roles README promises; no PATH search) runs it in a
/// process of its own (it may `exit`, end in a `# comment`; words after the command are its
/// `$0 $1...`) under coreutils `timeout`, which gives it the session's `TIMEOUT` seconds,
/// then sends TERM to it and everything it started (its process group) and KILL
/// [`KILL_AFTER`] s later. Exit status: the snippet's, or 124 (timed out) / 137 (killed);
/// a syntax error is `sh`'s 2, as before.
///
/// The snippet may hold a secret, and every local user can read every process's command
/// line (`/proc/PID/cmdline`, `ps`): it is never on one. It travels in the environment of
/// that one command (`MICROCTL_SNIPPET`, in the script the host shell reads from its stdin or
/// from the 0700 stage; `/proc/PID/environ` is readable by the same user and root only), and
/// the fixed `sh -c` text evals it after removing it from the environment its children get.
pub fn bounded(snippet: &str) -> String {
    format!("MICROCTL_SNIPPET={} timeout -k {KILL_AFTER} \"$TIMEOUT\" /bin/sh -c {EVAL_SNIPPET}", quote(snippet))
}

/// The `sh -c` text of [`bounded`]: `eval` expands its argument first, so the snippet runs
/// with `MICROCTL_SNIPPET` already unset, in the same shell, with the same `$0 $1...`.
const EVAL_SNIPPET: &str = r#"'eval "unset MICROCTL_SNIPPET; $MICROCTL_SNIPPET"'"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_percent_s_and_escaped_percent() {
        assert_eq!(fill_placeholder("nginx -t -c %s", "\"$t\"").as_deref(), Some("nginx -t -c \"$t\""));
        assert_eq!(fill_placeholder("date +%%s; grep -q 100%% %s", "F").as_deref(), Some("date +%s; grep -q 100% F"));
        assert_eq!(fill_placeholder("date +%%s", "F"), None);
        assert_eq!(fill_placeholder("echo %d %s%", "F").as_deref(), Some("echo %d F%"));
        assert!(placeholder_in_single_quotes("grep -q x '%s'"));
        assert!(placeholder_in_single_quotes("sh -c 'nginx -t -c %s'"));
        assert!(!placeholder_in_single_quotes("grep -q 'x' %s"));
        assert!(!placeholder_in_single_quotes("grep -q \"'\" \"%s\""));
        assert!(!placeholder_in_single_quotes("printf '%%s' x | grep -q x %s"));
        assert!(!placeholder_in_single_quotes("echo \\' %s"));
    }

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote("abc/def.txt"), "abc/def.txt");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
