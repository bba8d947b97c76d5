//! What `-vv` says about each host script microctl sends: a readable summary of its steps, in
//! the order the script takes them, built from the same settings the script is built from.
//! Not the script's text (hundreds of lines of fixed shell per host, the same every run: it is
//! in `src/remote/`, `src/apply/` and `src/deploy/`), and never a payload (a file's content, a
//! release tar, the env file). Commands from the inventory and roles are shown as written
//! there after rendering; the printer redacts secrets from them like from everything else.

use crate::deploy::config::Cache;
use crate::deploy::script::{Settings, Target};
use crate::plan::desired::Desired;

/// The session's first step on every host: the host lock.
pub fn lock(state_dir: &str, lock_wait_secs: u64) -> String {
    format!("take the host lock {state_dir} (if another run holds it: wait up to {lock_wait_secs}s)")
}

/// A converge session: lock, one probe of every resource, then the apply of what differs.
pub fn converge(desired: &Desired, state_dir: &str, lock_wait_secs: u64, diff: bool, check: bool) -> Vec<String> {
    let mut steps = vec![lock(state_dir, lock_wait_secs)];
    let mut kinds: Vec<String> = Vec::new();
    let mut kind = |what: &str, names: Vec<&str>| {
        if !names.is_empty() {
            kinds.push(format!("{} ({})", super::count(names.len(), what), names.join(", ")));
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
        format!("probe {} in one pass: {}", super::count(desired.len(), "resource"), kinds.join("; "))
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

/// A deploy session: recovery, the release, its build, the switch, the verdict.
pub fn deploy(s: &Settings, target: &Target, state_dir: &str, lock_wait_secs: u64) -> Vec<String> {
    let mut steps = vec![
        lock(state_dir, lock_wait_secs),
        "recover what killed runs left: roll back an unconfirmed switch, remove incomplete releases".into(),
    ];
    if let Some(env) = &s.env_file {
        steps.push(format!("read {env} as data (systemd EnvironmentFile= rules), not shown"));
    }
    let releases = format!("{}/releases", s.root);
    match target {
        Target::Upload { name, revision } => steps.push(format!(
            "unpack release {name} (revision {revision}) into {releases}/{name} (payload: the release tar, not shown)"
        )),
        Target::Clone { url, git_ref } => {
            steps.push(format!("clone {url} at {} into a new release in {releases}", one_line(git_ref)))
        }
        Target::Previous { release: Some(r) } => steps.push(format!("go back to release {r}")),
        Target::Previous { release: None } => {
            steps.push("go back to the newest healthy release older than the live one".into())
        }
    }
    if !matches!(target, Target::Previous { .. }) {
        if let Some(c) = &s.cache {
            steps.push(cache(c, &s.user, &s.root));
        }
        for b in &s.build {
            steps.push(format!("build as {}: `{}`", s.user, one_line(b)));
        }
    }
    steps.push(format!("arm the confirm watchdog: it rolls back unless confirmed within {}s", s.confirm_timeout));
    steps.push(format!("switch {}/current to the release, then restart: `{}`", s.root, one_line(&s.restart)));
    steps.push(format!(
        "wait for the verdict on stdin: `ok` keeps the release and prunes to the newest {}; anything else rolls back",
        s.keep
    ));
    steps
}

/// Draining a host out of nginx's upstream on a `health_via` host, and back.
pub fn drain(server: &str, via: &str, file: &str, reload: &str) -> Vec<String> {
    vec![
        format!("on {via}: mark {server} down in {file}, then `{}`", one_line(reload)),
        format!("on {via}, once healthy (or whatever happened): put {server} back, then `{}`", one_line(reload)),
    ]
}

fn cache(c: &Cache, user: &str, root: &str) -> String {
    let mut inputs = c.key.join(", ");
    if !c.key_command.is_empty() {
        inputs.push_str(&format!(" and `{}`", one_line(&c.key_command)));
    }
    let build: Vec<String> = c.build.iter().map(|b| format!("`{}`", one_line(b))).collect();
    format!(
        "link {} to {root}/shared/cache/KEY/{} (KEY hashes {inputs}); when new, build it as {user}: {}",
        c.dir,
        c.dir,
        build.join(", ")
    )
}

/// `text` on one line: a newline shows as `\n`, so a summary line stays one line.
fn one_line(text: &str) -> String {
    text.replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::desired::{FileSpec, HandlerSpec, PackageSpec};

    fn settings() -> Settings {
        Settings {
            root: "/srv/app".into(),
            user: "www-data".into(),
            env_file: Some("/etc/app.env".into()),
            build: vec!["venv/bin/flask db upgrade".into(), "echo a\necho b".into()],
            cache: Some(Cache {
                dir: "venv".into(),
                build: vec!["python3 -m venv venv".into()],
                key: vec!["requirements.txt".into()],
                key_command: "python3 --version".into(),
            }),
            restart: "systemctl restart gunicorn".into(),
            keep: 5,
            confirm_timeout: 90,
            deployed_by: "alice".into(),
        }
    }

    #[test]
    fn deploy_steps_in_script_order() {
        let target = Target::Upload { name: "20261130-abc1234".into(), revision: "abc1234".into() };
        assert_eq!(
            deploy(&settings(), &target, "/var/lib/microctl", 60),
            vec![
                "take the host lock /var/lib/microctl (if another run holds it: wait up to 60s)",
                "recover what killed runs left: roll back an unconfirmed switch, remove incomplete releases",
                "read /etc/app.env as data (systemd EnvironmentFile= rules), not shown",
                "unpack release 20261130-abc1234 (revision abc1234) into /srv/app/releases/20261130-abc1234 (payload: the release tar, not shown)",
                "link venv to /srv/app/shared/cache/KEY/venv (KEY hashes requirements.txt and `python3 --version`); when new, build it as www-data: `python3 -m venv venv`",
                "build as www-data: `venv/bin/flask db upgrade`",
                "build as www-data: `echo a\\necho b`",
                "arm the confirm watchdog: it rolls back unless confirmed within 90s",
                "switch /srv/app/current to the release, then restart: `systemctl restart gunicorn`",
                "wait for the verdict on stdin: `ok` keeps the release and prunes to the newest 5; anything else rolls back",
            ]
        );
        let back = deploy(&settings(), &Target::Previous { release: None }, "/s", 0);
        assert_eq!(back[3], "go back to the newest healthy release older than the live one");
        assert!(!back.iter().any(|s| s.starts_with("build") || s.starts_with("link")), "{back:?}");
    }

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

    #[test]
    fn drain_steps() {
        assert_eq!(
            drain("10.0.2.10:5000", "web", "/etc/nginx/sites-available/app", "nginx -t -q && systemctl reload nginx"),
            vec![
                "on web: mark 10.0.2.10:5000 down in /etc/nginx/sites-available/app, then `nginx -t -q && systemctl reload nginx`",
                "on web, once healthy (or whatever happened): put 10.0.2.10:5000 back, then `nginx -t -q && systemctl reload nginx`",
            ]
        );
    }
}
