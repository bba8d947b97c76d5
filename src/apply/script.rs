//! The apply script: a plan turned into one privileged POSIX shell script, shipped in the
//! payload with the changed files. Every step prints the markers `begin ID`, then `passed ID` or
//! `fail ID RC` followed by its output as `out` lines (see `crate::remote::Marker`), so the
//! client can report per step. The fixed part is `apply.sh`; only small builders live here.
//!
//! Safety rules it follows: notified handlers are recorded on the host *before* anything
//! changes (so an interrupted run fires them next time); every file is staged in its
//! destination folder, owner and mode set, validated, fsynced, then renamed over the live one,
//! so a managed file is always either entirely old or entirely new.

use std::fmt::Write;

use crate::plan::desired::{Desired, Meta};
use crate::plan::{Action, Plan};
use crate::remote::MARK_SH;
use crate::shell::quote;

/// The step id of a handler in the markers (`h0`, `h1`...).
pub fn handler_step(i: usize) -> String {
    format!("h{i}")
}

/// Payload path of changed file `i`.
pub fn payload_name(i: usize) -> String {
    format!("f/{i}")
}

/// The fixed prelude of every apply script (`fail`, `stage`, traps, `$APT`).
pub const APPLY_SH: &str = include_str!("apply.sh");

/// Builds the apply script for `plan` (which must come from `desired`).
pub fn build(desired: &Desired, plan: &Plan) -> String {
    let mut s = format!("{MARK_SH}{APPLY_SH}");
    if !plan.handlers.is_empty() {
        let names: String = plan.handlers.iter().map(|h| format!("{h}\n")).collect();
        step(
            &mut s,
            "pending",
            &format!(
                "{{ cat \"$STATE/pending-handlers\" 2>/dev/null; printf %s {}; }} | sort -u > \"$STATE/pending-handlers.new\" && sync -- \"$STATE/pending-handlers.new\" && mv -f -- \"$STATE/pending-handlers.new\" \"$STATE/pending-handlers\"",
                quote(&names)
            ),
        );
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
    for (id, change) in order {
        let id = id.to_string();
        match &change.action {
            Action::Install(names) => {
                let list: Vec<String> = names.iter().map(|n| quote(n)).collect();
                let list = list.join(" ");
                let update_first = if plan.apt_update {
                    "$APT update".to_string()
                } else {
                    "ls /var/lib/apt/lists/ 2>/dev/null | grep -q _Packages || $APT update".to_string()
                };
                step(
                    &mut s,
                    &id,
                    &format!(
                        "{update_first} && {{ $APT install {list} || {{ $APT update && $APT install {list}; }}; }}"
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
                step(&mut s, &id, &set_meta(&dir.meta, &quote(&dir.path)));
            }
            Action::WriteFile(i) => step(&mut s, &id, &write_file(desired, *i)),
            Action::FixFileMeta(i) => {
                let f = &desired.files[*i];
                step(&mut s, &id, &set_meta(&f.meta, &quote(&f.dest)));
            }
            Action::Link(i) => {
                let l = &desired.links[*i];
                let p = quote(&l.path);
                step(
                    &mut s,
                    &id,
                    &format!(
                        "stage {p} && rm -f -- \"$t\" && ln -s -- {target} \"$t\" && mv -fT -- \"$t\" {p}",
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
            Action::Run(i) => step(&mut s, &id, &format!("( {}\n)", desired.commands[*i].run)),
        }
    }
    if plan.daemon_reload && !reloaded {
        step(&mut s, "daemon-reload", "systemctl daemon-reload");
    }
    for (i, name) in plan.handlers.iter().enumerate() {
        let handler = desired.handlers.iter().find(|h| &h.name == name).expect("planned handler is defined");
        let done = format!(
            "grep -vxF -- {n} \"$STATE/pending-handlers\" > \"$STATE/pending-handlers.new\"; mv -f -- \"$STATE/pending-handlers.new\" \"$STATE/pending-handlers\"",
            n = quote(name)
        );
        step(&mut s, &handler_step(i), &format!("( {}\n) && {{ {done}; }}", handler.run));
    }
    if !plan.handlers.is_empty() {
        s.push_str("[ -s \"$STATE/pending-handlers\" ] || rm -f -- \"$STATE/pending-handlers\"\n");
    }
    s
}

/// One step: markers around `body`, its output kept for the report, the run stopped at the
/// first failure. The body runs in the script's shell (no fork) without the lock's fd 9.
fn step(s: &mut String, id: &str, body: &str) {
    let _ = writeln!(
        s,
        "mark begin {id}\n{{ {body}\n}} > \"$W/step.out\" 2>&1 </dev/null 9>&- || fail {id} $?\nmark passed {id}",
        id = quote(id)
    );
}

/// Stage, set owner/mode (keeping the live file's when not managed), validate, fsync, rename.
fn write_file(desired: &Desired, i: usize) -> String {
    let f = &desired.files[i];
    let dest = quote(&f.dest);
    let mut cmd = format!("stage {dest} && cat -- \"$W/{}\" > \"$t\"", payload_name(i));
    if f.meta.owner.is_none() || f.meta.group.is_none() {
        cmd.push_str(&format!(" && {{ [ ! -e {dest} ] || chown --reference={dest} -- \"$t\"; }}"));
    }
    if f.meta.mode.is_none() {
        cmd.push_str(&format!(
            " && {{ if [ -e {dest} ]; then chmod --reference={dest} -- \"$t\"; else chmod 0644 -- \"$t\"; fi; }}"
        ));
    }
    let meta = set_meta(&f.meta, "\"$t\"");
    if !meta.is_empty() && meta != "true" {
        cmd.push_str(&format!(" && {meta}"));
    }
    if let Some(v) = &f.validate {
        // A subshell: the user's command may `exit`.
        cmd.push_str(&format!(" && ( {}\n)", v.replace("%s", "\"$t\"")));
    }
    cmd.push_str(&format!(" && sync -- \"$t\" && mv -fT -- \"$t\" {dest}"));
    cmd
}

/// `chown`/`chmod` for the managed fields of `meta` on `target` (already quoted).
fn set_meta(meta: &Meta, target: &str) -> String {
    let mut cmds = Vec::new();
    match (&meta.owner, &meta.group) {
        (Some(o), Some(g)) => cmds.push(format!("chown -- {}:{} {target}", quote(o), quote(g))),
        (Some(o), None) => cmds.push(format!("chown -- {} {target}", quote(o))),
        (None, Some(g)) => cmds.push(format!("chgrp -- {} {target}", quote(g))),
        (None, None) => {}
    }
    if let Some(m) = meta.mode {
        cmds.push(format!("chmod {m:04o} {target}"));
    }
    if cmds.is_empty() { "true".to_string() } else { cmds.join(" && ") }
}

#[cfg(test)]
mod tests {
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
            "chown -- 'a b':g \"$t\" && chmod 2750 \"$t\""
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
        let spec = Spec { privilege: Privilege::Sudo, ..remote::test_spec("/var/lib/microctl", &remote::nonce(), 60) };
        let session = remote::script(&spec, &crate::apply::agent::body(&probe::script(&desired, true)));
        assert_eq!(remote::shellcheck(&session), None, "host script:\n{session}");
    }
}
