//! What `-vv` says about a converge session on a host (`report::steps` tells why): its
//! steps in the order the session takes them, built from the host's rendered resources.

use crate::plan::desired::Desired;
use crate::report::count;
use crate::report::steps::{lock, one_line};

/// A converge session: lock, one probe of every resource, then the apply of what differs.
pub fn converge(desired: &Desired, state_dir: &str, lock_wait_secs: u64, diff: bool, check: bool) -> Vec<String> {
    let mut steps = vec![lock(state_dir, lock_wait_secs)];
    let mut kinds: Vec<String> = Vec::new();
    let mut kind = |what: &str, names: Vec<&str>| {
        if !names.is_empty() {
            kinds.push(format!("{} ({})", count(names.len(), what), names.join(", ")));
        }
    };
    kind("package", desired.packages.iter().map(|p| p.name.as_str()).collect());
    kind("folder", desired.dirs.iter().map(|d| d.path.as_str()).collect());
    kind("file", desired.files.iter().map(|f| f.dest.as_str()).collect());
    kind("link", desired.links.iter().map(|l| l.path.as_str()).collect());
    kind("absent path", desired.absent.iter().map(|a| a.path.as_str()).collect());
    kind("service", desired.services.iter().map(|s| s.name.as_str()).collect());
    kind("command", desired.commands.iter().map(|c| c.name.as_str()).collect());
    steps.push(if kinds.is_empty() {
        "probe: nothing to look at".to_string()
    } else {
        format!("probe {} in one pass: {}", count(desired.len(), "resource"), kinds.join("; "))
    });
    if !desired.files.is_empty() {
        steps.push("hash only the files the state folder's hash record cannot vouch for".into());
    }
    if diff {
        steps.push("read the current content of changed text files for --diff (never through a symlink)".into());
    }
    if check {
        steps.push("--check: change nothing".into());
        return steps;
    }
    steps.push(
        "apply only what differs, one step per change (payload: the apply script and the changed files, not shown)"
            .into(),
    );
    for h in &desired.handlers {
        steps.push(format!("handler {} when notified: `{}`", h.name, one_line(&h.run)));
    }
    if !desired.files.is_empty() {
        steps.push("record the files' hashes in the state folder (after an apply, or if any was read)".into());
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::desired::{FileSpec, HandlerSpec, PackageSpec};

    #[test]
    fn converge_steps_name_what_is_probed() {
        let origin = crate::plan::desired::Origin::default();
        let desired = Desired {
            host: "web".into(),
            packages: vec![PackageSpec { origin: origin.clone(), name: "nginx".into() }],
            files: vec![FileSpec {
                origin: origin.clone(),
                dest: "/etc/nginx/nginx.conf".into(),
                content: std::sync::Arc::new(b"secret content".to_vec()),
                sha256: String::new(),
                meta: Default::default(),
                validate: None,
                sensitive: false,
                notify: vec![],
                apt_source: false,
            }],
            handlers: vec![HandlerSpec { origin, name: "reload nginx".into(), run: "systemctl reload nginx".into() }],
            ..Default::default()
        };
        let steps = converge(&desired, "/var/lib/microctl", 0, true, false);
        assert_eq!(
            steps,
            vec![
                "take the host lock /var/lib/microctl (if another run holds it: wait up to 0s)",
                "probe 2 resources in one pass: 1 package (nginx); 1 file (/etc/nginx/nginx.conf)",
                "hash only the files the state folder's hash record cannot vouch for",
                "read the current content of changed text files for --diff (never through a symlink)",
                "apply only what differs, one step per change (payload: the apply script and the changed files, not shown)",
                "handler reload nginx when notified: `systemctl reload nginx`",
                "record the files' hashes in the state folder (after an apply, or if any was read)",
            ]
        );
        assert!(!steps.concat().contains("secret content"), "a file's content is never shown");
        let check = converge(&desired, "/s", 0, false, true);
        assert_eq!(check.last().unwrap(), "--check: change nothing");
    }
}
