//! Building remote shell command strings: pure functions, tested by exact string.

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
