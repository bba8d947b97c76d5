//! Names and paths a role writes to, validated before anything reaches a host: an apt
//! repository's `name` becomes a file name in /etc/apt/sources.list.d and /etc/apt/keyrings,
//! so it must be a plain file name; every managed path must be absolute and normalised, so
//! `/etc/nginx/../cron.d/x` cannot pass for a path under /etc/nginx. Literal values are
//! checked when the role loads, templated ones again after rendering. Pure functions.

/// Why a value was refused, and the hint to show.
pub struct Refused {
    pub message: String,
    pub hint: &'static str,
}

/// A name used as a file name: letters, digits, `_`, `-`, `.` (what apt reads in
/// sources.list.d), not starting with a dot.
pub fn plain_file_name(field: &str, name: &str) -> Result<(), Refused> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        return Ok(());
    }
    Err(Refused {
        message: format!("`{field}` must be a plain file name (letters, digits, `_`, `-`, `.`), got `{name}`"),
        hint: "it names /etc/apt/sources.list.d/NAME.list and /etc/apt/keyrings/NAME.*: write e.g. name = \"grafana\"",
    })
}

/// `path` if it is absolute and normalised: no `.`, `..` or empty segments, no control
/// characters; trailing slashes are dropped (`/srv/` is `/srv`).
pub fn absolute_path(field: &str, path: &str) -> Result<String, Refused> {
    if !path.starts_with('/') {
        return Err(Refused {
            message: format!("`{field}` must be an absolute path, got `{path}`"),
            hint: "write the full path, e.g. /etc/nginx/sites-available/microblog",
        });
    }
    let trimmed = path.trim_end_matches('/');
    let bad_segment = trimmed.split('/').skip(1).any(|s| s.is_empty() || s == "." || s == "..");
    if bad_segment || path.chars().any(char::is_control) {
        return Err(Refused {
            message: format!(
                "`{field}` must be a normalised absolute path (no `.`, `..` or empty segments, no control characters), got `{}`",
                path.escape_debug()
            ),
            hint: "write the path as it is, without `..` or `//`, e.g. /etc/cron.d/backup",
        });
    }
    Ok(if trimmed.is_empty() { "/".to_string() } else { trimmed.to_string() })
}

/// A file named relative to the top-level `files/` folder (`file.src`, `apt_repository.key`):
/// no leading `/`, no `.`/`..`/empty segments, so it cannot read outside `files/`.
pub fn files_name(field: &str, name: &str) -> Result<(), Refused> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.chars().any(char::is_control)
        || name.split('/').any(|s| s.is_empty() || s == "." || s == "..");
    if !bad {
        return Ok(());
    }
    Err(Refused {
        message: format!(
            "`{field}` must name a file inside files/ (a relative path without `..`), got `{}`",
            name.escape_debug()
        ),
        hint: "put the file in the top-level files/ folder and name it relative to it, e.g. src = \"grafana/node-dashboard.json\"",
    })
}

/// A file's or folder's owner or group: a user or group name as `useradd` takes it (letters,
/// digits, `_`, `-`, `.`, not starting with `-`, at most 32 characters, an optional final
/// `$`) or a numeric id. Anything else (`root:root`, a space, `-R`) would be misread by the
/// host's `chown`/`install`.
pub fn account_name(field: &str, name: &str) -> Result<(), Refused> {
    let body = name.strip_suffix('$').unwrap_or(name);
    let ok = !body.is_empty()
        && name.len() <= 32
        && !body.starts_with('-')
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        return Ok(());
    }
    Err(Refused {
        message: format!("`{field}` must be a user or group name or a numeric id, got `{}`", name.escape_debug()),
        hint: "write one name, e.g. owner = \"www-data\" and group = \"www-data\" (not \"user:group\")",
    })
}

/// A user a role creates or gives keys to: what `useradd` takes on Debian and Ubuntu
/// (a letter or `_` first, then letters, digits, `_`, `-`, `.`; at most 32 characters). Never
/// numeric (`getent passwd 0` would find root) nor starting with `-` (an option).
pub fn user_name(field: &str, name: &str) -> Result<(), Refused> {
    let ok = name.len() <= 32
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        return Ok(());
    }
    Err(Refused {
        message: format!(
            "`{field}` must be a user name (a letter or `_`, then letters, digits, `_`, `-`, `.`; at most 32), got `{}`",
            name.escape_debug()
        ),
        hint: "write the account's name, e.g. name = \"deploy\"",
    })
}

/// Whether a field holds template syntax (then it can only be checked once rendered).
pub fn is_templated(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_repository_names_are_plain_file_names() {
        for ok in ["grafana", "jenkins-lts", "a_b.c", "x1"] {
            assert!(plain_file_name("apt_repository.name", ok).is_ok(), "{ok}");
        }
        for bad in ["../../cron.d/evil", "a/b", "", ".hidden", "sp ace", "x\n", "..", "é"] {
            assert!(plain_file_name("apt_repository.name", bad).is_err(), "{bad:?}");
        }
        let e = plain_file_name("apt_repository.name", "../../cron.d/evil").err().unwrap();
        assert_eq!(
            e.message,
            "`apt_repository.name` must be a plain file name (letters, digits, `_`, `-`, `.`), got `../../cron.d/evil`"
        );
    }

    #[test]
    fn owners_are_account_names() {
        for ok in ["root", "www-data", "grafana", "_apt", "node_exporter", "1000", "a.b", "machine$"] {
            assert!(account_name("file.owner", ok).is_ok(), "{ok}");
        }
        for bad in ["", "root:root", "-R", "a b", "x\n", "é", "$", "a$b", &"x".repeat(33)] {
            assert!(account_name("file.owner", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            account_name("file.owner", "root:root").err().unwrap().message,
            "`file.owner` must be a user or group name or a numeric id, got `root:root`"
        );
    }

    #[test]
    fn user_names_are_what_useradd_takes() {
        for ok in ["deploy", "_apt", "www-data", "a.b", "jenkins2"] {
            assert!(user_name("user.name", ok).is_ok(), "{ok}");
        }
        for bad in ["", "0", "1000", "-r", "a b", "a:b", "x\n", "é", "a$", &"x".repeat(33)] {
            assert!(user_name("user.name", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn files_names_stay_inside_files() {
        for ok in ["a.gpg", "grafana/node-dashboard.json"] {
            assert!(files_name("file.src", ok).is_ok(), "{ok}");
        }
        for bad in ["../../etc/shadow", "/etc/shadow", "a/../b", "", "a//b", "./a"] {
            assert!(files_name("file.src", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_are_absolute_and_normalised() {
        for (path, want) in [("/etc/x", "/etc/x"), ("/srv/", "/srv"), ("/", "/"), ("/a.b/..c/c..", "/a.b/..c/c..")] {
            assert_eq!(absolute_path("f", path).ok().as_deref(), Some(want), "{path}");
        }
        for bad in ["etc/x", "", "/etc/../cron.d/x", "/etc/..", "/./etc", "/etc//x", "/etc/x\n", "/etc/\tx", "../x"] {
            assert!(absolute_path("f", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            absolute_path("file.dest", "etc/x").err().unwrap().message,
            "`file.dest` must be an absolute path, got `etc/x`"
        );
    }
}
