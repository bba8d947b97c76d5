//! What `-vv` says about a deploy session on a host and a drain on a `health_via` host
//! (`report::steps` tells why): their steps in the order the sessions take them, built from
//! the same settings the scripts are built from.

use super::config::Cache;
use super::deploy_script::{HostSettings, Target};
use crate::report::steps::{lock, one_line};

/// A deploy session: recovery, the release, its build, the switch, the verdict.
pub fn deploy(s: &HostSettings, target: &Target, state_dir: &str, lock_wait_secs: u64) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> HostSettings {
        HostSettings {
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
