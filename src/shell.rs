//! Building remote shell command strings: pure functions, tested by exact string.

/// Quotes `s` for a POSIX shell (single quotes; embedded quotes escaped).
pub fn quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b)) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `command` run as root through `sudo -n sh -c`, or as is when `sudo_prefix` is empty.
pub fn privileged(sudo_prefix: &str, command: &str) -> String {
    if sudo_prefix.is_empty() { command.to_string() } else { format!("{sudo_prefix}sh -c {}", quote(command)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote("abc/def.txt"), "abc/def.txt");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn privileged_wraps_in_sudo() {
        assert_eq!(privileged("sudo -n ", "id -u && echo 'x'"), r"sudo -n sh -c 'id -u && echo '\''x'\'''");
        assert_eq!(privileged("", "id -u"), "id -u");
    }
}
