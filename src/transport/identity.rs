//! Identity (private key) files checked before they are used, as OpenSSH checks them: a file
//! that does not exist or cannot be read is reported as such (not as a refused login), and a
//! key that others may read is refused with OpenSSH's reason. Pure file checks, no SSH, so
//! `check` runs them offline too.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Why an identity file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Missing,
    Unreadable(String),
    /// Group or other bits set (the mode is kept for the message).
    Unprotected(u32),
}

impl Problem {
    /// The message, naming the file.
    pub fn message(&self, path: &Path) -> String {
        let p = path.display();
        match self {
            Problem::Missing => format!("identity file {p} does not exist"),
            Problem::Unreadable(why) => format!("identity file {p} cannot be read: {why}"),
            // OpenSSH's words: "WARNING: UNPROTECTED PRIVATE KEY FILE! Permissions 0644 for '...'
            // are too open. It is required that your private key files are NOT accessible by others."
            Problem::Unprotected(mode) => format!(
                "UNPROTECTED PRIVATE KEY FILE: permissions {mode:04o} for '{p}' are too open; private key files must NOT be accessible by others, so this key is ignored"
            ),
        }
    }

    /// What to do about it.
    pub fn hint(&self, path: &Path) -> String {
        let p = path.display();
        match self {
            Problem::Missing => {
                format!("create it (ssh-keygen -t ed25519 -f {p}) or point `identity` in the inventory at your key")
            }
            Problem::Unreadable(_) => format!("check that {p} is a key file this user can read"),
            Problem::Unprotected(_) => format!("chmod 600 {p}"),
        }
    }
}

/// Checks that `path` is a private key file OpenSSH would use: it exists, is a readable
/// regular file, and no one but its owner may access it. (OpenSSH skips the mode check for
/// keys owned by another user; microctl refuses those too, which is safer.)
pub fn check(path: &Path) -> Result<(), Problem> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Problem::Missing),
        Err(e) => return Err(Problem::Unreadable(e.to_string())),
    };
    if !meta.is_file() {
        return Err(Problem::Unreadable("not a regular file".into()));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Problem::Unprotected(mode));
    }
    std::fs::File::open(path).map(drop).map_err(|e| Problem::Unreadable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_unreadable_and_unprotected_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id");
        assert_eq!(check(&key), Err(Problem::Missing));
        assert_eq!(check(dir.path()), Err(Problem::Unreadable("not a regular file".into())));
        std::fs::write(&key, "key").unwrap();
        for (mode, ok) in [(0o600, true), (0o400, true), (0o644, false), (0o640, false), (0o604, false)] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(check(&key).is_ok(), ok, "{mode:o}");
        }
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let msg = check(&key).unwrap_err().message(&key);
        assert_eq!(
            msg,
            format!(
                "UNPROTECTED PRIVATE KEY FILE: permissions 0644 for '{}' are too open; private key files must NOT be accessible by others, so this key is ignored",
                key.display()
            )
        );
    }
}
