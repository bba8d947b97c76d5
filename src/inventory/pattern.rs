//! Host patterns, as every command takes them: `all`, a host, a group, comma lists, globs
//! (`web*`, matched against host and group names) and `!term` exclusions.

use globset::Glob;

use std::sync::Arc;

use super::{Host, Inventory};
use crate::error::{Error, ErrorKind, Result};

/// Selects hosts matching `pattern`, in inventory order. Every term must match something.
pub fn select(inv: &Inventory, pattern: &str) -> Result<Vec<Arc<Host>>> {
    inv.require_hosts()?;
    let mut included = vec![false; inv.hosts.len()];
    let mut excluded = vec![false; inv.hosts.len()];
    let mut any_positive = false;
    for raw_term in pattern.split(',') {
        let term = raw_term.trim();
        let (negate, name) = match term.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, term),
        };
        if name.is_empty() {
            return Err(Error::usage(format!("empty term in host pattern `{pattern}`"))
                .hint("separate names with commas, e.g. `web,app` or `all,!jenkins`"));
        }
        let matched = matching(inv, name)?;
        if !matched.iter().any(|m| *m) {
            return Err(Error::new(ErrorKind::Usage, format!("host pattern `{name}` matches no host or group"))
                .hint(format!("known hosts: {}; groups: {}", host_names(inv), group_names(inv))));
        }
        let target = if negate { &mut excluded } else { &mut included };
        for (t, m) in target.iter_mut().zip(matched) {
            *t |= m;
        }
        any_positive |= !negate;
    }
    if !any_positive {
        // Only exclusions, like `!jenkins`: exclude from all.
        included.iter_mut().for_each(|i| *i = true);
    }
    let hosts: Vec<Arc<Host>> =
        inv.hosts.iter().enumerate().filter(|(i, _)| included[*i] && !excluded[*i]).map(|(_, h)| h.clone()).collect();
    if hosts.is_empty() {
        return Err(Error::usage(format!("host pattern `{pattern}` selects no host"))
            .hint("the exclusions remove every host the pattern includes"));
    }
    Ok(hosts)
}

/// Which hosts (by index) a single term names: `all`, a host, a group, or a glob over both.
fn matching(inv: &Inventory, name: &str) -> Result<Vec<bool>> {
    if name == "all" || name == "*" {
        return Ok(vec![true; inv.hosts.len()]);
    }
    let is_glob = name.contains(['*', '?', '[']);
    let matcher = if is_glob {
        Some(
            Glob::new(name)
                .map_err(|e| Error::usage(format!("invalid glob `{name}` in host pattern")).caused_by(e))?
                .compile_matcher(),
        )
    } else {
        None
    };
    let name_matches = |n: &str| match &matcher {
        Some(m) => m.is_match(n),
        None => n == name,
    };
    Ok(inv.hosts.iter().map(|h| name_matches(&h.name) || h.groups.iter().any(|g| name_matches(g))).collect())
}

fn host_names(inv: &Inventory) -> String {
    inv.hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ")
}

fn group_names(inv: &Inventory) -> String {
    inv.groups.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn inv() -> Inventory {
        Inventory::parse(
            Path::new("inv.toml"),
            r#"
[hosts.jenkins]
address = "10.0.0.1"
groups = ["ci"]
[hosts.web1]
address = "10.0.0.2"
groups = ["web"]
[hosts.web2]
address = "10.0.0.3"
groups = ["web"]
[hosts.app]
address = "10.0.0.4"
groups = ["app", "backend"]
"#,
        )
        .unwrap()
    }

    fn names(pattern: &str) -> Vec<String> {
        select(&inv(), pattern).unwrap().iter().map(|h| h.name.clone()).collect()
    }

    #[test]
    fn selects_all_hosts_groups_globs_and_exclusions() {
        assert_eq!(names("all"), ["jenkins", "web1", "web2", "app"]);
        assert_eq!(names("app"), ["app"]);
        assert_eq!(names("web"), ["web1", "web2"]);
        assert_eq!(names("web*"), ["web1", "web2"]);
        assert_eq!(names("app,jenkins"), ["jenkins", "app"]);
        assert_eq!(names("all,!web2"), ["jenkins", "web1", "app"]);
        assert_eq!(names("!web"), ["jenkins", "app"]);
        assert_eq!(names("back*"), ["app"]);
    }

    #[test]
    fn nothing_matched_is_an_error() {
        let e = select(&inv(), "db").unwrap_err().to_string();
        assert!(e.starts_with("host pattern `db` matches no host or group"), "{e}");
        assert!(e.contains("known hosts: jenkins, web1, web2, app; groups: app, backend, ci, web"), "{e}");
        let e = select(&inv(), "app,!app").unwrap_err().to_string();
        assert!(e.starts_with("host pattern `app,!app` selects no host"), "{e}");
        assert!(select(&inv(), "web,,app").is_err());
    }
}
