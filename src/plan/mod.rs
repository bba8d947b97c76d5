//! Planning: desired state vs observed state -> the changes to make. A pure function of its
//! inputs, unit-tested here without SSH. `desired` is the rendered model, `probe` builds the
//! script that observes a host and parses what it prints, `hashes` owns the host's hash
//! record (what lets a no-op skip reading files: its judge and its shell halves), `trust`
//! judges who can write the folders of each managed path (a change in a folder others can
//! write is made the guarded way, or refused), `diff` renders text differences.

pub mod desired;
pub mod diff;
pub mod hashes;
pub mod probe;
pub mod trust;
pub mod users;

use desired::{Desired, Meta};
use probe::{Kind, Observed, PathState};

/// What to do to one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Upload `files[i]` and install it atomically (content differs or file missing).
    WriteFile(usize),
    /// Only owner/group/mode of `files[i]` differ.
    FixFileMeta(usize),
    MakeDir(usize),
    FixDirMeta(usize),
    Link(usize),
    Remove(usize),
    /// Install these packages (names), in one `apt-get install`.
    Install(Vec<String>),
    Service {
        index: usize,
        enable: Option<bool>,
        start: Option<bool>,
    },
    Run(usize),
    /// `users[i]`: the `useradd`/`usermod`/`userdel` command (`apply::users`).
    User(usize, String),
    /// The `authorized_keys` of `authorized_keys[i]`'s user (all its keys): the command.
    AuthorizedKeys(usize, String),
    /// The host's firewall table (`crate::firewall`): applied after the run, never by the
    /// apply script; listed for `--check` and the report.
    Firewall,
}

/// One planned change, for display and for the JSON report (serialized: resource, role,
/// reason).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    #[serde(skip)]
    pub action: Action,
    /// `file /etc/nginx/sites-available/microblog` etc.
    pub resource: String,
    pub role: String,
    /// What differs: `created`, `content`, `mode 0600 -> 0644`, `started`...
    pub reason: String,
}

/// The changes for one host, in apply order, and the handlers they fire.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub changes: Vec<Change>,
    /// Handlers to run at the end, deduplicated, in definition order.
    pub handlers: Vec<String>,
    /// Of `handlers`, those left pending by an earlier, interrupted run.
    pub pending: Vec<String>,
    /// A unit file changed: `systemctl daemon-reload` before touching services.
    pub daemon_reload: bool,
    /// An apt source changed: `apt-get update` before installing.
    pub apt_update: bool,
    /// Resources already in their desired state.
    pub ok: usize,
    /// Files written in a folder a user other than root can write (`trust::Place::Guarded`),
    /// with the whole owner (uid), group (gid) and mode to give them: staged beside that
    /// folder, renamed in (an owner/mode fix there is such a write).
    pub guarded: Vec<(usize, Meta)>,
    /// Changes refused by `trust` (a folder others can write further up...), one message
    /// each: the host fails before anything is written.
    pub refused: Vec<String>,
    /// Files (indexes) not in a trusted place: never named to the hash record.
    pub untrusted: Vec<usize>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.handlers.is_empty()
    }
}

/// Compares `desired` with `observed` and lists what must change.
pub fn plan(desired: &Desired, observed: &Observed) -> Plan {
    let mut plan = Plan::default();
    let mut notified: Vec<String> = Vec::new();
    let mut change =
        |plan: &mut Plan, action: Action, resource: String, role: &str, reason: String, notify: &[String]| {
            notified.extend(notify.iter().cloned());
            plan.changes.push(Change { action, resource, role: role.to_string(), reason });
        };

    plan_commands(desired, observed, &mut plan, &mut change, true);

    let missing: Vec<String> = desired
        .packages
        .iter()
        .filter(|p| !observed.packages.get(&p.name).copied().unwrap_or(false))
        .map(|p| p.name.clone())
        .collect();
    plan.ok += desired.packages.len() - missing.len();
    if !missing.is_empty() {
        let names = missing.join(" ");
        let role = desired.packages.iter().find(|p| p.name == missing[0]).map(|p| p.origin.role.as_str()).unwrap_or("");
        change(&mut plan, Action::Install(missing), format!("packages {names}"), role, "not installed".into(), &[]);
    }

    for (action, resource, role, reason) in users::plan(desired, &observed.users, &mut plan) {
        change(&mut plan, action, resource, &role, reason, &[]);
    }

    for (i, d) in desired.dirs.iter().enumerate() {
        let state = observed.path(&d.path);
        let resource = format!("directory {}", d.path);
        match state.kind {
            Kind::Dir => match meta_diff(&d.meta, &state) {
                Some(reason) => change(&mut plan, Action::FixDirMeta(i), resource, &d.origin.role, reason, &d.notify),
                None => plan.ok += 1,
            },
            _ => change(&mut plan, Action::MakeDir(i), resource, &d.origin.role, created(&state), &d.notify),
        }
    }

    for (i, f) in desired.files.iter().enumerate() {
        let state = observed.path(&f.dest);
        let resource = format!("file {}", f.dest);
        let same_content = state.kind == Kind::File && state.sha256.as_deref() == Some(f.sha256.as_str());
        if !same_content {
            let reason = if state.kind == Kind::File { "content".to_string() } else { created(&state) };
            if f.apt_source {
                plan.apt_update = true;
            }
            if is_unit_file(&f.dest) {
                plan.daemon_reload = true;
            }
            change(&mut plan, Action::WriteFile(i), resource, &f.origin.role, reason, &f.notify);
        } else if let Some(reason) = meta_diff(&f.meta, &state) {
            change(&mut plan, Action::FixFileMeta(i), resource, &f.origin.role, reason, &f.notify);
        } else {
            plan.ok += 1;
        }
    }

    for (i, l) in desired.links.iter().enumerate() {
        let state = observed.path(&l.path);
        if state.kind == Kind::Link && state.link_target == l.target {
            plan.ok += 1;
        } else {
            let reason = if state.kind == Kind::Link {
                format!("target {} -> {}", state.link_target, l.target)
            } else {
                created(&state)
            };
            change(&mut plan, Action::Link(i), format!("link {}", l.path), &l.origin.role, reason, &l.notify);
        }
    }

    // A package installed by this run may create a path that was missing when probed (nginx
    // installs sites-enabled/default): then the removal runs anyway, after the install.
    let installing = plan.changes.iter().any(|c| matches!(c.action, Action::Install(_)));
    for (i, a) in desired.absent.iter().enumerate() {
        let resource = format!("absent {}", a.path);
        if observed.path(&a.path).kind != Kind::Missing {
            change(&mut plan, Action::Remove(i), resource, &a.origin.role, "removed".into(), &a.notify);
        } else if installing {
            let reason = "removed if the packages installed now create it".to_string();
            change(&mut plan, Action::Remove(i), resource, &a.origin.role, reason, &a.notify);
        } else {
            plan.ok += 1;
        }
    }

    for (i, s) in desired.services.iter().enumerate() {
        let unit = observed.units.get(&s.name).cloned().unwrap_or_default();
        let is_enabled = matches!(unit.enabled.as_str(), "enabled" | "enabled-runtime" | "static" | "alias");
        let is_active = matches!(unit.active.as_str(), "active" | "reloading" | "activating");
        let enable = s.enabled.filter(|want| *want != is_enabled);
        let start = s.running.filter(|want| *want != is_active);
        if enable.is_none() && start.is_none() {
            plan.ok += 1;
            continue;
        }
        let mut reasons = Vec::new();
        if let Some(e) = enable {
            reasons.push(if e { "enabled" } else { "disabled" });
        }
        if let Some(r) = start {
            reasons.push(if r { "started" } else { "stopped" });
        }
        let action = Action::Service { index: i, enable, start };
        change(&mut plan, action, format!("service {}", s.name), &s.origin.role, reasons.join(", "), &s.notify);
    }

    plan_commands(desired, observed, &mut plan, &mut change, false);
    judge_places(desired, observed, &mut plan);

    // Handlers: notified now or left pending by an interrupted run; once each, definition order.
    for h in &desired.handlers {
        let pending = observed.pending_handlers.contains(&h.name);
        if pending || notified.contains(&h.name) {
            plan.handlers.push(h.name.clone());
            if pending {
                plan.pending.push(h.name.clone());
            }
        }
    }
    plan
}

/// Where each change acts (`trust::place`): as planned in a trusted place; a file in a
/// folder others can write is written there the guarded way (with owner, group and mode
/// all given: the role's, else the live file's as the probe saw it, else root's and 0644);
/// anything else is refused.
fn judge_places(desired: &Desired, observed: &Observed, plan: &mut Plan) {
    for (i, f) in desired.files.iter().enumerate() {
        if trust::place(desired, observed, &f.dest) != trust::Place::Trusted {
            plan.untrusted.push(i);
        }
    }
    for c in plan.changes.iter_mut() {
        let (path, file) = match c.action {
            Action::WriteFile(i) | Action::FixFileMeta(i) => (&desired.files[i].dest, Some(i)),
            Action::MakeDir(i) | Action::FixDirMeta(i) => (&desired.dirs[i].path, None),
            Action::Link(i) => (&desired.links[i].path, None),
            Action::Remove(i) => (&desired.absent[i].path, None),
            _ => continue,
        };
        let r = match (trust::place(desired, observed, path), file) {
            (trust::Place::Trusted, _) => continue,
            (trust::Place::Guarded(_), Some(i)) => {
                c.action = Action::WriteFile(i);
                let live = observed.path(path);
                let live = (live.kind == Kind::File).then_some(live);
                let m = &desired.files[i].meta;
                let id = |name: &Option<String>, live: Option<u32>| match name {
                    Some(n) => n.clone(),
                    None => live.unwrap_or(0).to_string(),
                };
                let meta = Meta {
                    owner: Some(id(&m.owner, live.as_ref().map(|l| l.uid))),
                    group: Some(id(&m.group, live.as_ref().map(|l| l.gid))),
                    mode: Some(m.mode.or(live.as_ref().map(|l| l.mode)).unwrap_or(0o644)),
                };
                plan.guarded.push((i, meta));
                continue;
            }
            (trust::Place::Guarded(r), None) => trust::Refusal {
                why: format!("{}; microctl writes only files there (staged beside it, renamed in)", r.why),
                ..r
            },
            (trust::Place::Refused(r), _) => r,
        };
        plan.refused.push(format!("{}: folder {} {}", c.resource, r.folder, r.why));
    }
}

/// Commands whose guard says run; `early` ones (before packages) or the rest.
fn plan_commands(
    desired: &Desired,
    observed: &Observed,
    plan: &mut Plan,
    change: &mut impl FnMut(&mut Plan, Action, String, &str, String, &[String]),
    early: bool,
) {
    for (i, c) in desired.commands.iter().enumerate().filter(|(_, c)| c.early == early) {
        let created = c.creates.as_ref().is_some_and(|p| observed.path(p).kind != Kind::Missing);
        let guarded = observed.unless_ok.get(&i).copied().unwrap_or(false);
        if created || guarded {
            plan.ok += 1;
        } else {
            // Why it runs, worded as a reason, not a failure.
            let why = if c.creates.is_some() { "`creates` path missing" } else { "`unless` was false" };
            change(plan, Action::Run(i), format!("command {}", c.name), &c.origin.role, why.into(), &c.notify);
        }
    }
}

fn created(state: &PathState) -> String {
    match state.kind {
        Kind::Missing => "created".into(),
        Kind::File => "replaces a file".into(),
        Kind::Dir => "replaces a directory".into(),
        Kind::Link => "replaces a symlink".into(),
        Kind::Other => "replaces a special file".into(),
    }
}

/// What of owner/group/mode differs from `want`, as text; `None` when all match.
fn meta_diff(want: &Meta, state: &PathState) -> Option<String> {
    let mut diffs = Vec::new();
    if let Some(mode) = want.mode.filter(|m| *m != state.mode) {
        diffs.push(format!("mode {:04o} -> {mode:04o}", state.mode));
    }
    if let Some(owner) = want.owner.as_ref().filter(|o| **o != state.owner) {
        diffs.push(format!("owner {} -> {owner}", state.owner));
    }
    if let Some(group) = want.group.as_ref().filter(|g| **g != state.group) {
        diffs.push(format!("group {} -> {group}", state.group));
    }
    if diffs.is_empty() { None } else { Some(diffs.join(", ")) }
}

/// A systemd unit file: a change needs `daemon-reload`.
pub fn is_unit_file(path: &str) -> bool {
    let in_unit_dir = ["/etc/systemd/system/", "/lib/systemd/system/", "/usr/lib/systemd/system/"]
        .iter()
        .any(|d| path.starts_with(d));
    let unit_suffix =
        [".service", ".socket", ".timer", ".mount", ".path", ".target", ".conf"].iter().any(|s| path.ends_with(s));
    in_unit_dir && unit_suffix
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::desired::*;
    use super::probe::{UnitState, parse};
    use super::*;

    fn origin() -> Origin {
        Origin { role: "web".into(), line: 1 }
    }

    fn file(dest: &str, content: &str, notify: &[&str]) -> FileSpec {
        FileSpec {
            origin: origin(),
            dest: dest.into(),
            content: Arc::new(content.as_bytes().to_vec()),
            sha256: sha256_hex(content.as_bytes()),
            meta: Meta { owner: Some("root".into()), group: None, mode: Some(0o644) },
            validate: None,
            sensitive: false,
            notify: notify.iter().map(|s| s.to_string()).collect(),
            apt_source: false,
        }
    }

    fn desired() -> Desired {
        Desired {
            host: "web".into(),
            files: vec![
                file("/etc/nginx/site", "a\n", &["reload nginx"]),
                file("/etc/systemd/system/app.service", "[Unit]\n", &["restart app"]),
            ],
            handlers: vec![
                HandlerSpec { origin: origin(), name: "restart app".into(), run: "systemctl restart app".into() },
                HandlerSpec { origin: origin(), name: "reload nginx".into(), run: "systemctl reload nginx".into() },
            ],
            packages: vec![PackageSpec { origin: origin(), name: "nginx".into() }],
            services: vec![ServiceSpec {
                origin: origin(),
                name: "nginx".into(),
                enabled: Some(true),
                running: Some(true),
                notify: vec![],
            }],
            ..Default::default()
        }
    }

    fn parse_ok(out: &str) -> Observed {
        parse(out).unwrap()
    }

    fn converged() -> String {
        format!(
            "P\tf\x00644\x00root\x00root\x00\x001\x002\x003\x001.5\x000\x000\x00/etc/nginx/site\x00\
             f\x00644\x00root\x00root\x00\x001\x002\x003\x001.5\x000\x000\x00/etc/systemd/system/app.service\x00\
             {}  /etc/nginx/site\n{}  /etc/systemd/system/app.service\n\n\
             K\tnginx\tii \nS\tnginx\tenabled\tactive\n",
            sha256_hex(b"a\n"),
            sha256_hex(b"[Unit]\n")
        )
    }

    #[test]
    fn fresh_host_changes_everything_and_fires_handlers_in_definition_order() {
        let p = plan(&desired(), &parse_ok(""));
        let resources: Vec<&str> = p.changes.iter().map(|c| c.resource.as_str()).collect();
        assert_eq!(
            resources,
            ["packages nginx", "file /etc/nginx/site", "file /etc/systemd/system/app.service", "service nginx"]
        );
        assert_eq!(p.handlers, ["restart app", "reload nginx"]);
        assert!(p.daemon_reload);
        assert_eq!(p.ok, 0);
    }

    #[test]
    fn converged_host_has_an_empty_plan() {
        let p = plan(&desired(), &parse_ok(&converged()));
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(p.ok, 4);
        assert!(!p.daemon_reload);
    }

    #[test]
    fn one_changed_file_fires_only_its_handler() {
        let mut d = desired();
        d.files[0] = file("/etc/nginx/site", "b\n", &["reload nginx"]);
        let p = plan(&d, &parse_ok(&converged()));
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].reason, "content");
        assert_eq!(p.handlers, ["reload nginx"]);
        assert!(!p.daemon_reload);
    }

    #[test]
    fn mode_drift_is_fixed_without_upload_and_pending_handlers_run() {
        let obs = converged().replace(
            "P\tf\x00644\x00root\x00root\x00\x001\x002\x003\x001.5\x000\x000\x00/etc/nginx/site",
            "P\tf\x00600\x00root\x00root\x00\x001\x002\x003\x001.5\x000\x000\x00/etc/nginx/site",
        ) + "N\trestart app\n";
        let p = plan(&desired(), &parse_ok(&obs));
        assert_eq!(p.changes[0].action, Action::FixFileMeta(0));
        assert_eq!(p.changes[0].reason, "mode 0600 -> 0644");
        assert_eq!(p.handlers, ["restart app", "reload nginx"]);
        assert_eq!(p.pending, ["restart app"]);
    }

    #[test]
    fn absent_paths_are_rechecked_after_a_package_install() {
        let mut d = desired();
        d.absent.push(AbsentSpec { origin: origin(), path: "/etc/nginx/sites-enabled/default".into(), notify: vec![] });
        // nginx not installed yet: the default site does not exist at probe time, but will.
        let p = plan(&d, &parse_ok(""));
        assert!(p.changes.iter().any(|c| c.action == Action::Remove(0)), "{p:?}");
        // Converged: nothing to install, path missing, nothing to do.
        assert!(plan(&d, &parse_ok(&converged())).is_empty());
    }

    /// Issue #20 items 2/3: in a folder others can write (`trust`), a meta fix becomes a
    /// guarded write (owner, group and mode all given: the role's, else the live file's);
    /// a folder, a link or a removal there, or a file one folder deeper, is refused by name.
    #[test]
    fn changes_in_folders_others_can_write_are_guarded_or_refused() {
        let dir = |uid| PathState { kind: Kind::Dir, mode: 0o755, uid, ..PathState::default() };
        let mut obs = Observed::default();
        obs.paths.insert("/srv".into(), dir(0));
        obs.paths.insert("/srv/shared".into(), dir(33));
        let live = PathState {
            kind: Kind::File,
            mode: 0o600,
            owner: "www-data".into(),
            uid: 33,
            gid: 34,
            sha256: Some(sha256_hex(b"a\n")),
            ..PathState::default()
        };
        obs.paths.insert("/srv/shared/a".into(), live);
        let mut a = file("/srv/shared/a", "a\n", &[]);
        a.meta.owner = None;
        let d = Desired {
            files: vec![a, file("/srv/shared/deep/b", "b\n", &[])],
            links: vec![LinkSpec {
                origin: origin(),
                path: "/srv/shared/l".into(),
                target: "/x".into(),
                notify: vec![],
            }],
            ..Default::default()
        };
        let p = plan(&d, &obs);
        assert_eq!(p.changes[0].action, Action::WriteFile(0), "{p:?}");
        assert_eq!(p.changes[0].reason, "mode 0600 -> 0644");
        let meta = Meta { owner: Some("33".into()), group: Some("34".into()), mode: Some(0o644) };
        assert_eq!(p.guarded, [(0, meta)]);
        assert_eq!(
            p.refused,
            [
                "file /srv/shared/deep/b: folder /srv/shared is owned by uid 33: a user other than root can write in it",
                "link /srv/shared/l: folder /srv/shared is owned by uid 33: a user other than root can write in it; \
                 microctl writes only files there (staged beside it, renamed in)",
            ]
        );
        assert_eq!(p.untrusted, [0, 1]);
    }

    #[test]
    fn service_state_and_unit_files() {
        let obs = converged().replace("S\tnginx\tenabled\tactive", "S\tnginx\tdisabled\tinactive");
        let p = plan(&desired(), &parse_ok(&obs));
        assert_eq!(p.changes[0].action, Action::Service { index: 0, enable: Some(true), start: Some(true) });
        assert_eq!(p.changes[0].reason, "enabled, started");
        let mut obs = parse_ok(&converged());
        obs.units.insert("nginx".into(), UnitState { enabled: "static".into(), active: "active".into() });
        assert!(plan(&desired(), &obs).is_empty());
        assert!(is_unit_file("/etc/systemd/system/gunicorn.service"));
        assert!(!is_unit_file("/etc/nginx/nginx.conf"));
    }
}
