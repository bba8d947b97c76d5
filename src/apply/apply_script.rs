//! The apply script: a plan turned into one privileged POSIX shell script, shipped in the
//! payload with the changed files. Every step prints the markers `begin ID`, then `passed ID` or
//! `fail ID RC` followed by its output as `out` lines (see `crate::remote::Marker`), so the
//! client can report per step. The fixed part is `apply.sh`; only small builders live here.
//!
//! Safety rules it follows: notified handlers are recorded on the host *before* anything
//! changes (so an interrupted run fires them next time); every file is staged in a staging
//! folder inside its destination folder with owner and mode set (one `install` per folder and
//! owner/mode), fsynced (one `sync`), validated, then renamed over the live one (one `mv -t`
//! per folder), so a managed file is always either entirely old or entirely new; owner/mode
//! fixes refuse a path that became a symlink. Per-file work is builtins: the processes a run
//! starts grow with folders and owner/mode combinations, not with files.
//!
//! Root never acts by path inside a folder a user other than root can write (`plan::trust`):
//! a file bound for such a folder (`Plan::guarded`) is staged in a root-only 0700 folder made
//! beside it, in its parent (which only root can write), given content, owner, group and mode
//! there (all from the plan: nothing is read from the live file's path), and renamed in with
//! `mv -fT` (rename(2) replaces whatever the user put at the name, a symlink too, never
//! following it); an owner/mode fix there is such a write of the content the file has. The
//! planner refuses any other change there, so nothing else here needs to know.

use std::fmt::Write;

use crate::plan::desired::{Desired, Meta};
use crate::plan::{Action, Plan, hashes};
use crate::remote::{MARK_SH, bounded};
use crate::shell::quote;

/// The step id of a handler in the markers (`h0`, `h1`...).
pub fn handler_step(i: usize) -> String {
    format!("h{i}")
}

/// Payload path (inside `stage.NONCE/`) of changed file `i`: its own folder holding it under
/// its destination's name, so that one `install -t` stages many files of one folder under
/// their own names and one `mv -t` renames them all into place.
pub fn payload_name(desired: &Desired, i: usize) -> String {
    format!("f/{i}/{}", base(&desired.files[i].dest))
}

/// The staging folder of `dir`'s files, as shell words: `DIR/.microctl.$NONCE`; for a folder
/// others can write (`guarded`, see [`Guarded`]) a root-only one beside it, in its parent.
fn stage_dir(dir: &str, guarded: &Guarded) -> String {
    match guarded.dirs.iter().position(|d| *d == dir) {
        Some(k) => format!("{}/.microctl.\"$NONCE\".g{k}", quote(parent(dir).trim_end_matches('/'))),
        None => format!("{}/.microctl.\"$NONCE\"", quote(dir.trim_end_matches('/'))),
    }
}

/// The staged path of file `dest`, as shell words.
fn staged_path(dest: &str, guarded: &Guarded) -> String {
    format!("{}/{}", stage_dir(parent(dest), guarded), quote(base(dest)))
}

/// The files of a plan written in folders a user other than root can write
/// (`plan::trust::Place::Guarded`): staged in a root-only 0700 folder made in the folder's
/// own (closed) parent, given their whole owner, group and mode there (nothing copied by
/// path: the plan has them), and renamed in one by one with `mv -fT` (rename(2): never
/// follows the last component).
struct Guarded<'a> {
    files: &'a [(usize, Meta)],
    /// Their folders, in order (stage folder `g{index}`).
    dirs: Vec<&'a str>,
}

impl<'a> Guarded<'a> {
    fn new(desired: &'a Desired, plan: &'a Plan) -> Guarded<'a> {
        let mut dirs: Vec<&str> = Vec::new();
        for (i, _) in &plan.guarded {
            let d = parent(&desired.files[*i].dest);
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
        Guarded { files: &plan.guarded, dirs }
    }

    fn meta(&self, i: usize) -> Option<&'a Meta> {
        self.files.iter().find(|(j, _)| *j == i).map(|(_, m)| m)
    }
}

fn base(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, b)| b)
}

fn parent(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((d, _)) => d,
    }
}

/// The fixed prelude of every apply script (`fail`, `stage`, traps, `$APT`).
pub static APPLY_SH: crate::remote::Shipped = crate::remote::Shipped::new(include_str!("apply.sh"));

/// The dpkg/apt lock wait before package steps (`apt_wait`).
pub static APT_SH: crate::remote::Shipped = crate::remote::Shipped::new(include_str!("apt.sh"));

/// Builds the apply script for `plan` (which must come from `desired`).
pub fn build(desired: &Desired, plan: &Plan) -> String {
    let mut s = format!("{MARK_SH}{APPLY_SH}{APT_SH}{}", hashes::WRITE_SH);
    if !plan.handlers.is_empty() {
        // Recorded (and fsynced) before anything changes: a run cut short fires them next time.
        step(&mut s, "pending", &pending_handlers(&plan.handlers));
    }
    // apt sources first: the package step may need them.
    let is_apt_write =
        |a: &Action| matches!(a, Action::WriteFile(i) | Action::FixFileMeta(i) if desired.files[*i].apt_source);
    let order = plan
        .changes
        .iter()
        .enumerate()
        .filter(|(_, c)| is_apt_write(&c.action))
        .chain(plan.changes.iter().enumerate().filter(|(_, c)| !is_apt_write(&c.action)));
    let mut reloaded = false;
    let guarded = Guarded::new(desired, plan);
    let mut staged = [false, false];
    for (id, change) in order {
        if let Action::WriteFile(i) = change.action {
            // All files of a batch (apt sources, then the rest) are written at the first one.
            let apt = desired.files[i].apt_source;
            if !staged[usize::from(apt)] {
                staged[usize::from(apt)] = true;
                let batch: Vec<(usize, usize)> = plan
                    .changes
                    .iter()
                    .enumerate()
                    .filter_map(|(id, c)| match c.action {
                        Action::WriteFile(j) if desired.files[j].apt_source == apt => Some((id, j)),
                        _ => None,
                    })
                    .collect();
                write_files(&mut s, desired, &guarded, &batch, if apt { "-apt" } else { "" });
            }
            continue;
        }
        let id = id.to_string();
        match &change.action {
            Action::Install(names) => {
                let list: Vec<String> = names.iter().map(|n| quote(n)).collect();
                let list = list.join(" ");
                let update_first = if plan.apt_update {
                    "apt_update".to_string()
                } else {
                    "ls /var/lib/apt/lists/ 2>/dev/null | grep -q _Packages || apt_update".to_string()
                };
                // Before the step: its markers reach the client (the step's output is a file).
                let _ = writeln!(s, "apt_wait {id} {} || fail {id} $?", desired.apt_lock_timeout, id = quote(&id));
                step(
                    &mut s,
                    &id,
                    &format!(
                        "{update_first} && {{ $APT install {list} || {{ apt_update && $APT install {list}; }}; }}"
                    ),
                );
            }
            Action::MakeDir(i) => {
                let dir = &desired.dirs[*i];
                let mode = dir.meta.mode.unwrap_or(0o755);
                let mut cmd = format!("install -d -m {mode:04o}");
                if let Some(o) = &dir.meta.owner {
                    cmd.push_str(&format!(" -o {}", quote(o)));
                }
                if let Some(g) = &dir.meta.group {
                    cmd.push_str(&format!(" -g {}", quote(g)));
                }
                // Something that is not a folder may be in the way (a file, a dangling link).
                let p = quote(&dir.path);
                step(&mut s, &id, &format!("{{ [ ! -e {p} ] && [ ! -L {p} ]; }} || rm -f -- {p}; {cmd} -- {p}"));
            }
            Action::FixDirMeta(i) => {
                let dir = &desired.dirs[*i];
                let p = quote(&dir.path);
                step(&mut s, &id, &format!("plain {p} && {}", set_meta(&dir.meta, &p)));
            }
            Action::WriteFile(_) => unreachable!("written by batch above"),
            Action::Firewall => unreachable!("applied after the run, by crate::firewall::apply"),
            Action::FixFileMeta(i) => {
                let f = &desired.files[*i];
                let p = quote(&f.dest);
                step(&mut s, &id, &format!("plain {p} && {}", set_meta(&f.meta, &p)));
            }
            Action::Link(i) => {
                let l = &desired.links[*i];
                step(
                    &mut s,
                    &id,
                    &format!(
                        "stage {p} L{i} && ln -s -- {target} \"$t\" && mv -fT -- \"$t\" {p}",
                        p = quote(&l.path),
                        target = quote(&l.target)
                    ),
                );
            }
            Action::Remove(i) => step(&mut s, &id, &format!("rm -rf -- {}", quote(&desired.absent[*i].path))),
            Action::Service { index, enable, start } => {
                if plan.daemon_reload && !reloaded {
                    step(&mut s, "daemon-reload", "systemctl daemon-reload");
                    reloaded = true;
                }
                let name = quote(&desired.services[*index].name);
                let mut cmds = Vec::new();
                if let Some(e) = enable {
                    cmds.push(format!("systemctl {} {name}", if *e { "enable" } else { "disable" }));
                }
                if let Some(r) = start {
                    cmds.push(format!("systemctl {} {name}", if *r { "start" } else { "stop" }));
                }
                step(&mut s, &id, &cmds.join(" && "));
            }
            Action::Run(i) => step(&mut s, &id, &bounded(&desired.commands[*i].run)),
            Action::User(_, cmd) | Action::AuthorizedKeys(_, cmd) => step(&mut s, &id, cmd),
        }
    }
    if plan.daemon_reload && !reloaded {
        step(&mut s, "daemon-reload", "systemctl daemon-reload");
    }
    for (i, name) in plan.handlers.iter().enumerate() {
        let handler = desired.handlers.iter().find(|h| &h.name == name).expect("planned handler is defined");
        let left = &plan.handlers[i + 1..];
        let done =
            if left.is_empty() { "rm -f -- \"$STATE/pending-handlers\"".to_string() } else { pending_handlers(left) };
        step(&mut s, &handler_step(i), &format!("{} && {{ {done}; }}", bounded(&handler.run)));
    }
    // The host's hash record, last (`plan::hashes`).
    s.push_str(&hashes::write_steps(desired, plan));
    s
}

/// Replaces the host's list of pending handlers with `names` (fsynced, renamed: never half
/// written). Builtins but `sync` and `mv`.
fn pending_handlers(names: &[String]) -> String {
    let list: String = names.iter().map(|h| format!("{h}\n")).collect();
    format!(
        "printf %s {} > \"$STATE/pending-handlers.new\" && sync -- \"$STATE/pending-handlers.new\" && mv -f -- \"$STATE/pending-handlers.new\" \"$STATE/pending-handlers\"",
        quote(&list)
    )
}

/// One step: markers around `body`, its output kept for the report, the run stopped at the
/// first failure. The body runs in the script's shell (no fork) without the lock's fd 9.
fn step(s: &mut String, id: &str, body: &str) {
    check(s, id, body);
    let _ = writeln!(s, "mark passed {}", quote(id));
}

/// A step without its `passed` marker (it comes later, see [`write_files`]).
fn check(s: &mut String, id: &str, body: &str) {
    let _ = writeln!(
        s,
        "mark begin {id}\n{{ {body}\n}} > \"$W/step.out\" 2>&1 </dev/null 9>&- || fail {id} $?",
        id = quote(id)
    );
}

/// Writes files `batch` (change id, file index): one step stages them all (see
/// [`stage_files`]); then, in order, each `validate` runs on its staged file (its own step id:
/// a failure names the file) once every file before it is in place (a validator may use one
/// of them), and the files between validates are renamed into place together, one `mv -t`
/// per folder (each rename atomic); each file's change is reported once it is in place.
fn write_files(s: &mut String, desired: &Desired, guarded: &Guarded, batch: &[(usize, usize)], suffix: &str) {
    let files: Vec<usize> = batch.iter().map(|(_, i)| *i).collect();
    step(s, &format!("stage{suffix}"), &stage_files(desired, guarded, &files));
    let mut waiting: Vec<(usize, usize)> = Vec::new();
    for &(id, i) in batch {
        let f = &desired.files[i];
        if let Some(v) = &f.validate {
            rename(s, desired, guarded, &waiting, suffix);
            waiting.clear();
            // Its own bounded `sh -c` (it may `exit`, end in a comment, hang), given the staged
            // file as `$1` (its path holds `$NONCE`, which that shell does not have).
            let v = crate::shell::fill_placeholder(v, "\"$1\"").expect("render checked that validate has %s");
            check(s, &id.to_string(), &format!("{} sh {}", bounded(&v), staged_path(&f.dest, guarded)));
        }
        waiting.push((id, i));
    }
    rename(s, desired, guarded, &waiting, suffix);
}

/// Renames staged files `batch` into place, one `mv -t` per folder (one `mv -fT` per file in
/// a folder others can write), and reports them.
fn rename(s: &mut String, desired: &Desired, guarded: &Guarded, batch: &[(usize, usize)], suffix: &str) {
    if batch.is_empty() {
        return;
    }
    let mut dirs: Vec<(&str, Vec<String>)> = Vec::new();
    let mut one_by_one = Vec::new();
    for (_, i) in batch {
        let dest = &desired.files[*i].dest;
        let staged = staged_path(dest, guarded);
        if guarded.meta(*i).is_some() {
            one_by_one.push(format!("mv -fT -- {staged} {}", quote(dest)));
            continue;
        }
        match dirs.iter_mut().find(|(d, _)| *d == parent(dest)) {
            Some((_, v)) => v.push(staged),
            None => dirs.push((parent(dest), vec![staged])),
        }
    }
    let mut renames: Vec<String> =
        dirs.iter().map(|(d, staged)| format!("mv -f -t {} -- {}", quote(d), staged.join(" "))).collect();
    renames.extend(one_by_one);
    check(s, &format!("rename{suffix}"), &renames.join(" && "));
    for (id, _) in batch {
        let _ = writeln!(s, "mark passed {id}");
    }
}

/// Stages files `batch` in their folders' staging folders: one `install` per folder and
/// owner/mode (content, owner and mode in one process; `-D` makes missing folders), the live
/// file's owner/mode copied where the role does not manage them (never from behind a
/// symlink), then one `sync` for all of them.
fn stage_files(desired: &Desired, guarded: &Guarded, batch: &[usize]) -> String {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    let mut dirs: Vec<&str> = Vec::new();
    let mut private: Vec<String> = Vec::new();
    let mut fixups = Vec::new();
    for &i in batch {
        let f = &desired.files[i];
        let meta = guarded.meta(i).unwrap_or(&f.meta);
        let mut flags = format!("-m {:04o}", meta.mode.unwrap_or(0o644));
        if let (Some(o), Some(g)) = (&meta.owner, &meta.group) {
            flags.push_str(&format!(" -o {} -g {}", quote(o), quote(g)));
        }
        let stage = stage_dir(parent(&f.dest), guarded);
        if guarded.meta(i).is_some() {
            if !private.contains(&stage) {
                private.push(stage.clone());
            }
        } else if !dirs.contains(&parent(&f.dest)) {
            dirs.push(parent(&f.dest));
        }
        let key = format!("{flags} -t {stage}");
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(i),
            None => groups.push((key, vec![i])),
        }
        if guarded.meta(i).is_some() {
            // Owner, group and mode all given: nothing is read from the live file's path.
            continue;
        }
        let (dest, t) = (quote(&f.dest), staged_path(&f.dest, guarded));
        let live = format!("[ -f {dest} ] && [ ! -L {dest} ]");
        if f.meta.owner.is_none() || f.meta.group.is_none() {
            fixups.push(format!("{{ ! {{ {live}; }} || chown --reference={dest} -- {t}; }}"));
            let managed = set_meta(&Meta { mode: None, ..f.meta.clone() }, &t);
            if managed != "true" {
                fixups.push(managed);
            }
        }
        if f.meta.mode.is_none() {
            fixups.push(format!("{{ ! {{ {live}; }} || chmod --reference={dest} -- {t}; }}"));
        }
    }
    let list: Vec<String> = dirs.iter().map(|d| quote(d)).collect();
    let mut cmds = Vec::new();
    if !list.is_empty() {
        cmds.push(format!("staged {}", list.join(" ")));
    }
    if !private.is_empty() {
        cmds.push(format!("private {}", private.join(" ")));
    }
    for (key, files) in &groups {
        let sources: Vec<String> =
            files.iter().map(|&i| format!("\"$W\"/f/{i}/{}", quote(base(&desired.files[i].dest)))).collect();
        cmds.push(format!("install -D {key} -- {}", sources.join(" ")));
    }
    cmds.extend(fixups);
    let all: Vec<String> = batch.iter().map(|&i| staged_path(&desired.files[i].dest, guarded)).collect();
    cmds.push(format!("sync -- {}", all.join(" ")));
    cmds.join(" && ")
}

/// `chown -h`/`chmod` for the managed fields of `meta` on `target` (already quoted; callers
/// check with `plain` that it is no symlink, `chmod` has no `-h`).
fn set_meta(meta: &Meta, target: &str) -> String {
    let mut cmds = Vec::new();
    match (&meta.owner, &meta.group) {
        (Some(o), Some(g)) => cmds.push(format!("chown -h -- {}:{} {target}", quote(o), quote(g))),
        (Some(o), None) => cmds.push(format!("chown -h -- {} {target}", quote(o))),
        (None, Some(g)) => cmds.push(format!("chgrp -h -- {} {target}", quote(g))),
        (None, None) => {}
    }
    if let Some(m) = meta.mode {
        cmds.push(format!("chmod {m:04o} {target}"));
    }
    if cmds.is_empty() { "true".to_string() } else { cmds.join(" && ") }
}

#[cfg(test)]
mod tests {
    /// `apt_wait` and `apt_update` (apt.sh) under sh and dash.
    mod apt {
        include!("apt_tests.rs");
    }

    use super::*;
    use crate::plan::desired::*;
    use crate::plan::probe::{self, Observed};
    use crate::remote::{self, Privilege, Spec};
    use std::sync::Arc;

    /// One of every resource, values with `$`, quotes and spaces, all missing on the host.
    fn representative() -> Desired {
        let o = || Origin { role: "r".into(), line: 1 };
        let meta = Meta { owner: Some("www-data".into()), group: Some("adm".into()), mode: Some(0o640) };
        let content = Arc::new(b"a = '$HOME'\n".to_vec());
        Desired {
            host: "h".into(),
            apt_lock_timeout: 300,
            facts_fingerprint: None,
            firewall: None,
            packages: vec![PackageSpec { origin: o(), name: "nginx".into() }],
            dirs: vec![DirSpec { origin: o(), path: "/srv/my site".into(), meta: meta.clone(), notify: vec![] }],
            files: vec![
                FileSpec {
                    origin: o(),
                    dest: "/srv/my site/it's $x.conf".into(),
                    sha256: sha256_hex(&content),
                    content: content.clone(),
                    meta: meta.clone(),
                    validate: Some("grep -q a %s".into()),
                    sensitive: false,
                    notify: vec!["reload web".into()],
                    apt_source: false,
                },
                FileSpec {
                    origin: o(),
                    dest: "/etc/apt/sources.list.d/x.list".into(),
                    sha256: sha256_hex(&content),
                    content,
                    meta: Meta::default(),
                    validate: None,
                    sensitive: true,
                    notify: vec![],
                    apt_source: true,
                },
            ],
            links: vec![LinkSpec {
                origin: o(),
                path: "/srv/cur".into(),
                target: "/srv/my site".into(),
                notify: vec![],
            }],
            absent: vec![AbsentSpec { origin: o(), path: "/etc/old \"x\"".into(), notify: vec![] }],
            services: vec![ServiceSpec {
                origin: o(),
                name: "nginx".into(),
                enabled: Some(true),
                running: Some(true),
                notify: vec![],
            }],
            commands: vec![CommandSpec {
                origin: o(),
                name: "init".into(),
                run: "echo \"$PATH\" > /tmp/x".into(),
                creates: None,
                unless: Some("test -e /srv/done".into()),
                notify: vec![],
                early: false,
            }],
            handlers: vec![HandlerSpec {
                origin: o(),
                name: "reload web".into(),
                run: "systemctl reload nginx".into(),
            }],
            users: vec![crate::plan::users::UserSpec {
                origin: o(),
                name: "deploy".into(),
                system: false,
                shell: Some("/bin/sh".into()),
                home: None,
                groups: vec!["adm".into()],
                exclusive_groups: false,
                present: true,
            }],
            authorized_keys: vec![crate::plan::users::AuthorizedKeySpec {
                origin: o(),
                user: "deploy".into(),
                line: "from=\"127.0.0.1\" ssh-ed25519 AAAA it's microctl:r/deploy".into(),
                key: "ssh-ed25519 AAAA".into(),
                marker: "microctl:r/deploy".into(),
                exclusive: false,
                present: true,
            }],
        }
    }

    #[test]
    fn step_is_exact() {
        let mut s = String::new();
        step(&mut s, "3", "rm -rf -- /x");
        assert_eq!(
            s,
            "mark begin 3\n{ rm -rf -- /x\n} > \"$W/step.out\" 2>&1 </dev/null 9>&- || fail 3 $?\nmark passed 3\n"
        );
        assert_eq!(
            set_meta(&Meta { owner: Some("a b".into()), group: Some("g".into()), mode: Some(0o2750) }, "\"$t\""),
            "chown -h -- 'a b':g \"$t\" && chmod 2750 \"$t\""
        );
        let d = representative();
        let none = Guarded { files: &[], dirs: vec![] };
        // Managed owner, group and mode: one install; unmanaged: the live file's, unless a symlink.
        assert_eq!(
            stage_files(&d, &none, &[0, 1]),
            "staged '/srv/my site' /etc/apt/sources.list.d && \
             install -D -m 0640 -o www-data -g adm -t '/srv/my site'/.microctl.\"$NONCE\" -- \"$W\"/f/0/'it'\\''s $x.conf' && \
             install -D -m 0644 -t /etc/apt/sources.list.d/.microctl.\"$NONCE\" -- \"$W\"/f/1/x.list && \
             { ! { [ -f /etc/apt/sources.list.d/x.list ] && [ ! -L /etc/apt/sources.list.d/x.list ]; } || chown --reference=/etc/apt/sources.list.d/x.list -- /etc/apt/sources.list.d/.microctl.\"$NONCE\"/x.list; } && \
             { ! { [ -f /etc/apt/sources.list.d/x.list ] && [ ! -L /etc/apt/sources.list.d/x.list ]; } || chmod --reference=/etc/apt/sources.list.d/x.list -- /etc/apt/sources.list.d/.microctl.\"$NONCE\"/x.list; } && \
             sync -- '/srv/my site'/.microctl.\"$NONCE\"/'it'\\''s $x.conf' /etc/apt/sources.list.d/.microctl.\"$NONCE\"/x.list"
        );
        let mut s = String::new();
        write_files(&mut s, &d, &none, &[(4, 0)], "");
        assert_eq!(
            s,
            format!(
                "mark begin stage\n{{ {}\n}} > \"$W/step.out\" 2>&1 </dev/null 9>&- || fail stage $?\nmark passed stage\n\
                 mark begin 4\n{{ MICROCTL_SNIPPET='grep -q a \"$1\"' timeout -k 5 \"$TIMEOUT\" /bin/sh -c 'eval \"unset MICROCTL_SNIPPET; $MICROCTL_SNIPPET\"' sh '/srv/my site'/.microctl.\"$NONCE\"/'it'\\''s $x.conf'\n}} > \"$W/step.out\" 2>&1 </dev/null 9>&- || fail 4 $?\n\
                 mark begin rename\n{{ mv -f -t '/srv/my site' -- '/srv/my site'/.microctl.\"$NONCE\"/'it'\\''s $x.conf'\n}} > \"$W/step.out\" 2>&1 </dev/null 9>&- || fail rename $?\n\
                 mark passed 4\n",
                stage_files(&d, &none, &[0])
            )
        );
        // A command's `run` and a handler run bounded on the host too (crate::remote::bounded).
        let plan = crate::plan::plan(&d, &Observed::default());
        let script = build(&d, &plan);
        assert!(script.contains("{ MICROCTL_SNIPPET='echo \"$PATH\" > /tmp/x' timeout -k 5 \"$TIMEOUT\" /bin/sh -c 'eval \"unset MICROCTL_SNIPPET; $MICROCTL_SNIPPET\"'\n}"), "{script}");
        assert!(
            script.contains("{ MICROCTL_SNIPPET='systemctl reload nginx' timeout -k 5 \"$TIMEOUT\" /bin/sh -c 'eval \"unset MICROCTL_SNIPPET; $MICROCTL_SNIPPET\"' && { rm -f"),
            "{script}"
        );
        assert_eq!(
            pending_handlers(&["a b".into(), "c".into()]),
            "printf %s 'a b\nc\n' > \"$STATE/pending-handlers.new\" && sync -- \"$STATE/pending-handlers.new\" && mv -f -- \"$STATE/pending-handlers.new\" \"$STATE/pending-handlers\""
        );
    }

    /// The generated host session (with --diff probe) and apply script of a plan that
    /// touches every kind of resource pass `shellcheck -s sh`.
    #[test]
    fn generated_scripts_pass_shellcheck() {
        let desired = representative();
        let plan = crate::plan::plan(&desired, &Observed::default());
        assert!(plan.changes.len() >= 8, "{:?}", plan.changes);
        let apply = build(&desired, &plan);
        assert_eq!(remote::shellcheck(&apply), None, "apply script:\n{apply}");
        // A file in a folder others can write: a private stage beside it, `mv -fT` into it.
        let mut guarded = plan.clone();
        let meta = Meta { owner: Some("33".into()), group: Some("0".into()), mode: Some(0o640) };
        guarded.guarded = vec![(0, meta)];
        let apply = build(&desired, &guarded);
        assert_eq!(remote::shellcheck(&apply), None, "apply script:\n{apply}");
        for part in [
            "private /srv/.microctl.\"$NONCE\".g0 && install -D -m 0640 -o 33 -g 0 -t /srv/.microctl.\"$NONCE\".g0 -- ",
            "mv -fT -- /srv/.microctl.\"$NONCE\".g0/'it'\\''s $x.conf' '/srv/my site/it'\\''s $x.conf'",
        ] {
            assert!(apply.contains(part), "{part}\n{apply}");
        }
        assert!(!apply.contains("--reference='/srv/my site"), "{apply}");
        let spec = Spec { privilege: Privilege::Sudo, ..remote::test_spec("/var/lib/microctl", &remote::nonce(), 60) };
        let session =
            remote::script(&spec, &crate::apply::host::body(&probe::script(&desired, "/var/lib/microctl", true)));
        assert_eq!(remote::shellcheck(&session), None, "host script:\n{session}");
    }
}
