//! Users and authorized keys: their desired state (`[[user]]`, `[[authorized_key]]` rendered),
//! the probe's part for them (in the same pass as every other resource: one `getent passwd`
//! for every named user, one `getent group`, and for each user with keys one bounded
//! `runuser` that reads `~/.ssh/authorized_keys` AS THAT USER, `keys_read.sh`), the parser of
//! those records, and the planner. The home folder is the user database's (`getent passwd`,
//! the line's name matched exactly), never a guess.
//!
//! A key line microctl writes ends with a marker word `microctl:ROLE/NAME` (after the key's
//! own comment: sshd ignores it), so a changed key of the same resource (a rotated
//! `secrets keygen --force`) replaces its old line in one run; a line with the same key is
//! the resource's too (its options change in place). Every other line is kept unless the
//! user's keys are `exclusive`. The edit itself runs as the user (`apply::users`): root
//! never acts by path inside the home folder, which the user writes.

use std::collections::HashMap;

use super::desired::{Desired, Origin};
use super::{Action, Plan};
use crate::shell::quote;

/// A `[[user]]`, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub origin: Origin,
    pub name: String,
    pub system: bool,
    pub shell: Option<String>,
    pub home: Option<String>,
    /// Supplementary groups: added to, never removed from unless `exclusive_groups`.
    pub groups: Vec<String>,
    pub exclusive_groups: bool,
    pub present: bool,
}

/// An `[[authorized_key]]`, rendered: `line` is what is written (options, the key, its
/// comment, the marker); `key` its `TYPE BASE64` (what identifies it in any line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedKeySpec {
    pub origin: Origin,
    pub user: String,
    pub line: String,
    pub key: String,
    /// `microctl:ROLE/NAME`.
    pub marker: String,
    pub exclusive: bool,
    pub present: bool,
}

/// An account as the user database has it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// What the probe saw of a user's `~/.ssh` (as that user).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyFile {
    /// `ok`, `home-missing`, `ssh-missing`, `ssh-link`, `ssh-other`, `keys-link`.
    pub state: String,
    /// `.ssh`'s and the file's `find` type, owner id and mode, when they exist.
    pub dir: Option<(String, u32, u32)>,
    pub file: Option<(String, u32, u32)>,
    pub lines: Vec<String>,
}

/// Everything the probe saw of users, groups and key files.
#[derive(Debug, Clone, Default)]
pub struct ObservedUsers {
    pub accounts: HashMap<String, Account>,
    /// Group name -> (gid, members).
    pub groups: HashMap<String, (u32, Vec<String>)>,
    pub key_files: HashMap<String, KeyFile>,
}

/// The file the as-user reader is (run with `sh -c`).
pub static KEYS_READ_SH: crate::remote::Shipped = crate::remote::Shipped::new(include_str!("keys_read.sh"));

/// The users named by `[[user]]` and `[[authorized_key]]`, sorted, once each.
fn named(d: &Desired) -> Vec<&str> {
    let mut names: Vec<&str> =
        d.users.iter().map(|u| u.name.as_str()).chain(d.authorized_keys.iter().map(|k| k.user.as_str())).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The probe's part for users and keys (empty when the roles have none): `W` + a passwd
/// line per named user, `G` + a group line (every group when a user's groups are
/// exclusive, else only the named ones), `A` + user + a line of `keys_read.sh`'s output
/// for each user with keys (bounded: a FIFO the user put there cannot hang the probe).
pub fn probe_script(d: &Desired) -> String {
    let names = named(d);
    if names.is_empty() {
        return String::new();
    }
    let list: Vec<String> = names.iter().map(|n| quote(n)).collect();
    let mut s =
        format!("getent passwd {} 2>/dev/null | while IFS= read -r l; do printf 'W\\t%s\\n' \"$l\"", list.join(" "));
    let mut key_users: Vec<String> = d.authorized_keys.iter().map(|k| quote(&k.user)).collect();
    key_users.sort_unstable();
    key_users.dedup();
    if !key_users.is_empty() {
        s.push_str(&format!(
            "; n=${{l%%:*}}; case $n in {}) ;; *) continue ;; esac; h=${{l#*:*:*:*:*:}}; h=${{h%%:*}}; \
             case $h in /*) ;; *) continue ;; esac; \
             timeout -k 5 \"$TIMEOUT\" runuser -u \"$n\" -- /bin/sh -c {} sh \"$h\" </dev/null 2>/dev/null 9>&- \
             | while IFS= read -r k; do printf 'A\\t%s\\t%s\\n' \"$n\" \"$k\"; done",
            key_users.join("|"),
            quote(&KEYS_READ_SH)
        ));
    }
    s.push_str("; done\n");
    let mut groups: Vec<String> = d.users.iter().flat_map(|u| u.groups.iter().map(|g| quote(g))).collect();
    groups.sort_unstable();
    groups.dedup();
    let all = d.users.iter().any(|u| u.exclusive_groups);
    if all || !groups.is_empty() {
        let which = if all { String::new() } else { format!(" {}", groups.join(" ")) };
        s.push_str(&format!(
            "getent group{which} 2>/dev/null | while IFS= read -r l; do printf 'G\\t%s\\n' \"$l\"; done\n"
        ));
    }
    s
}

/// Reads one of the probe's `W`, `G` or `A` records (`fields`: after the tag and its tab).
/// `Ok(false)`: not one of these tags.
pub fn parse_record(obs: &mut ObservedUsers, tag: &str, fields: &str) -> Result<bool, String> {
    let bad = || format!("unexpected {tag} line `{}`", fields.escape_debug());
    match tag {
        "W" => {
            let f: Vec<&str> = fields.split(':').collect();
            let [name, _, uid, gid, _, home, shell] = f.as_slice() else { return Err(bad()) };
            let account = Account {
                uid: uid.parse().map_err(|_| bad())?,
                gid: gid.parse().map_err(|_| bad())?,
                home: home.to_string(),
                shell: shell.to_string(),
            };
            obs.accounts.insert(name.to_string(), account);
        }
        "G" => {
            let f: Vec<&str> = fields.split(':').collect();
            let [name, _, gid, members] = f.as_slice() else { return Err(bad()) };
            let members = members.split(',').filter(|m| !m.is_empty()).map(String::from).collect();
            obs.groups.insert(name.to_string(), (gid.parse().map_err(|_| bad())?, members));
        }
        "A" => {
            let (user, rest) = fields.split_once('\t').ok_or_else(bad)?;
            let file = obs.key_files.entry(user.to_string()).or_default();
            if let Some(line) = rest.strip_prefix("line ") {
                file.lines.push(line.to_string());
            } else if let Some(stat) = rest.strip_prefix("stat ") {
                let v: Vec<&str> = stat.split(' ').collect();
                let [kind, uid, mode] = v.as_slice() else { return Err(bad()) };
                let entry = (
                    kind.to_string(),
                    uid.parse().map_err(|_| bad())?,
                    u32::from_str_radix(mode, 8).map_err(|_| bad())?,
                );
                if file.dir.is_none() { file.dir = Some(entry) } else { file.file = Some(entry) }
            } else if ["ok", "home-missing", "ssh-missing", "ssh-link", "ssh-other", "keys-link"].contains(&rest) {
                file.state = rest.to_string();
            } else {
                return Err(bad());
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// A line's key (`TYPE BASE64`) and its microctl marker, if it has them: the first word
/// that names a key type, followed by one more (options before it may hold quoted spaces).
pub fn key_of(line: &str) -> Option<(String, Option<String>)> {
    let words = words(line);
    if words.first().is_none_or(|w| w.starts_with('#')) {
        return None;
    }
    let is_type = |w: &str| ["ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-"].iter().any(|p| w.starts_with(p));
    let i = words.iter().position(|w| is_type(w))?;
    let blob = words.get(i + 1)?;
    let marker = words.last().filter(|w| words.len() > i + 2 && w.starts_with("microctl:")).map(|w| w.to_string());
    Some((format!("{} {blob}", words[i]), marker))
}

/// `line` split at blanks outside double quotes (a `\` escapes the next character in them).
pub(crate) fn words(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (None, false, false);
    for (i, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ' ' | '\t' if !quoted => {
                if let Some(s) = start.take() {
                    out.push(&line[s..i]);
                }
                continue;
            }
            _ => {}
        }
        start.get_or_insert(i);
    }
    if let Some(s) = start {
        out.push(&line[s..]);
    }
    out
}

/// One planned user change: the action and why.
type Change = (Action, String, String, String);

/// The users' and keys' changes, in `desired` order (users first: a key's user may be
/// created by this run); keys that cannot be written safely (a symlinked `.ssh`, no such
/// user) go to `plan.refused`.
pub fn plan(d: &Desired, obs: &ObservedUsers, plan: &mut Plan) -> Vec<Change> {
    let mut out = Vec::new();
    for (i, u) in d.users.iter().enumerate() {
        let resource = format!("user {}", u.name);
        match (obs.accounts.get(&u.name), u.present) {
            (None, false) => plan.ok += 1,
            (Some(_), false) => out.push((
                Action::User(i, crate::apply::users::userdel(u)),
                resource,
                u.origin.role.clone(),
                "removed".into(),
            )),
            (None, true) => out.push((
                Action::User(i, crate::apply::users::useradd(u)),
                resource,
                u.origin.role.clone(),
                "created".into(),
            )),
            (Some(a), true) => match user_diff(u, a, obs) {
                None => plan.ok += 1,
                Some((mods, reason)) => out.push((
                    Action::User(i, crate::apply::users::usermod(u, &mods)),
                    resource,
                    u.origin.role.clone(),
                    reason,
                )),
            },
        }
    }
    let mut users: Vec<&str> = d.authorized_keys.iter().map(|k| k.user.as_str()).collect();
    users.dedup();
    let mut seen: Vec<&str> = Vec::new();
    for user in users {
        if seen.contains(&user) {
            continue;
        }
        seen.push(user);
        let keys: Vec<usize> = (0..d.authorized_keys.len()).filter(|&i| d.authorized_keys[i].user == user).collect();
        match plan_keys(d, obs, user, &keys) {
            Ok(None) => plan.ok += keys.len(),
            Ok(Some((edit, reason))) => {
                plan.ok += keys.len() - 1;
                let first = &d.authorized_keys[keys[0]];
                let cmd = crate::apply::users::keys_command(user, &edit);
                out.push((
                    Action::AuthorizedKeys(keys[0], cmd),
                    format!("authorized_keys of {user}"),
                    first.origin.role.clone(),
                    reason,
                ));
            }
            Err(why) => plan.refused.push(format!("authorized_key for user {user}: {why}")),
        }
    }
    out
}

/// What `usermod` must change for an existing user (its words), and the reason shown.
fn user_diff(u: &UserSpec, a: &Account, obs: &ObservedUsers) -> Option<(crate::apply::users::UserMod, String)> {
    let mut m = crate::apply::users::UserMod::default();
    let mut reasons = Vec::new();
    if let Some(shell) = u.shell.as_ref().filter(|s| **s != a.shell) {
        reasons.push(format!("shell {} -> {shell}", a.shell));
        m.shell = Some(shell.clone());
    }
    if let Some(home) = u.home.as_ref().filter(|h| **h != a.home) {
        reasons.push(format!("home {} -> {home}", a.home));
        m.home = Some(home.clone());
    }
    let member = |g: &str| obs.groups.get(g).is_some_and(|(gid, members)| *gid == a.gid || members.contains(&u.name));
    let missing: Vec<&String> = u.groups.iter().filter(|g| !member(g)).collect();
    let mut extra: Vec<&String> = Vec::new();
    if u.exclusive_groups {
        extra = obs
            .groups
            .iter()
            .filter(|(g, (gid, members))| *gid != a.gid && members.contains(&u.name) && !u.groups.contains(g))
            .map(|(g, _)| g)
            .collect();
        extra.sort();
    }
    if !missing.is_empty() {
        reasons.push(format!("groups +{}", missing.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(" +")));
    }
    if !extra.is_empty() {
        reasons.push(format!("groups -{}", extra.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(" -")));
    }
    if !extra.is_empty() {
        m.groups = Some((u.groups.clone(), true));
    } else if !missing.is_empty() {
        m.groups = Some((missing.into_iter().cloned().collect(), false));
    }
    if reasons.is_empty() { None } else { Some((m, reasons.join(", "))) }
}

/// The edit of one user's `authorized_keys` the apply script makes (as that user).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeysEdit {
    pub exclusive: bool,
    /// Lines of the live file to drop (exact), then lines to append.
    pub drop: Vec<String>,
    pub add: Vec<String>,
}

/// The edit `user`'s key file needs for the resources `keys` (indexes), `None` when it is
/// as they say; `Err` when it must not be written.
fn plan_keys(
    d: &Desired,
    obs: &ObservedUsers,
    user: &str,
    keys: &[usize],
) -> Result<Option<(KeysEdit, String)>, String> {
    let specs: Vec<&AuthorizedKeySpec> = keys.iter().map(|&i| &d.authorized_keys[i]).collect();
    let exclusive = specs.iter().any(|k| k.exclusive);
    let want: Vec<String> = specs.iter().filter(|k| k.present).map(|k| k.line.clone()).collect();
    let created_now = d.users.iter().any(|u| u.name == user && u.present);
    if d.users.iter().any(|u| u.name == user && !u.present) && (!want.is_empty() || exclusive) {
        return Err("a [[user]] of this host removes that user (state = \"absent\")".into());
    }
    let Some(account) = obs.accounts.get(user) else {
        if created_now && !want.is_empty() {
            let edit = KeysEdit { exclusive, drop: vec![], add: want };
            return Ok(Some((edit, "created".into())));
        }
        if want.is_empty() && !exclusive {
            return Ok(None);
        }
        return Err("there is no such user on the host: add a [[user]] for it, or create it first".into());
    };
    let home = &account.home;
    let empty = KeyFile::default();
    let file = obs.key_files.get(user).unwrap_or(&empty);
    let lines = match file.state.as_str() {
        "ok" => &file.lines,
        "ssh-missing" => &empty.lines,
        "ssh-link" => return Err(format!("{home}/.ssh is a symlink: microctl does not write through it")),
        "keys-link" => {
            return Err(format!("{home}/.ssh/authorized_keys is a symlink: microctl does not write through it"));
        }
        "ssh-other" => return Err(format!("{home}/.ssh is not a folder")),
        "home-missing" => return Err(format!("its home folder {home} (from the user database) does not exist")),
        _ => return Err(format!("its key file could not be read as {user} (home {home})")),
    };
    let ours = |l: &str| {
        key_of(l).is_some_and(|(key, marker)| {
            specs.iter().any(|k| k.key == key || marker.as_deref() == Some(k.marker.as_str()))
        })
    };
    let (drop, add): (Vec<String>, Vec<String>) = if exclusive {
        (
            lines.iter().filter(|l| !want.contains(l)).cloned().collect(),
            want.iter().filter(|w| !lines.contains(w)).cloned().collect(),
        )
    } else {
        (
            lines.iter().filter(|l| !want.contains(l) && ours(l)).cloned().collect(),
            want.iter().filter(|w| !lines.contains(w)).cloned().collect(),
        )
    };
    let rewrite = if exclusive { *lines != want } else { !drop.is_empty() || !add.is_empty() };
    let mut reasons = Vec::new();
    if !add.is_empty() {
        reasons.push(format!("+{} key line(s)", add.len()));
    }
    if !drop.is_empty() {
        reasons.push(format!("-{} key line(s)", drop.len()));
    }
    if rewrite && reasons.is_empty() {
        reasons.push("order".into());
    }
    let will_have_file = !want.is_empty() || file.file.is_some();
    let own = |s: &Option<(String, u32, u32)>, kind: &str, mode: u32| {
        s.as_ref().is_some_and(|(k, uid, m)| k == kind && *uid == account.uid && *m == mode)
    };
    if will_have_file && (!own(&file.dir, "d", 0o700) || (file.file.is_some() && !own(&file.file, "f", 0o600))) {
        reasons.push("owner/mode".into());
    }
    if reasons.is_empty() {
        return Ok(None);
    }
    let add = if exclusive { want } else { add };
    Ok(Some((KeysEdit { exclusive, drop, add }, reasons.join(", "))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lines_are_recognised_past_quoted_options() {
        assert_eq!(
            key_of(r#"from="a b",command="ssh-x \" y" ssh-ed25519 AAAA c@d microctl:r/n"#),
            Some(("ssh-ed25519 AAAA".into(), Some("microctl:r/n".into())))
        );
        assert_eq!(key_of("ssh-rsa BBB"), Some(("ssh-rsa BBB".into(), None)));
        assert_eq!(key_of("ssh-rsa BBB microctl:r/n"), Some(("ssh-rsa BBB".into(), Some("microctl:r/n".into()))));
        assert_eq!(key_of("# ssh-rsa BBB"), None);
        assert_eq!(key_of(""), None);
        assert_eq!(key_of("ssh-rsa"), None);
    }

    /// The as-user reader under sh and dash (here as root, in a scratch home), its output
    /// tagged as the probe tags it, parsed: the state, `.ssh`'s and the file's type, owner
    /// and mode, every line as it is; a symlinked `.ssh` or file is named, not followed.
    #[test]
    fn reader_output_parses_under_sh_and_dash() {
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let home = dir.path().to_str().unwrap();
            let read = || {
                let out = std::process::Command::new(shell).args(["-c", &KEYS_READ_SH, "sh", home]).output().unwrap();
                assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{shell}: nothing on stderr");
                let mut obs = ObservedUsers::default();
                for line in String::from_utf8(out.stdout).unwrap().lines() {
                    assert!(parse_record(&mut obs, "A", &format!("u\t{line}")).unwrap(), "{shell}: {line}");
                }
                obs.key_files.remove("u").unwrap_or_default()
            };
            assert_eq!(read().state, "ssh-missing", "{shell}");
            std::fs::create_dir(dir.path().join(".ssh")).unwrap();
            std::fs::write(dir.path().join(".ssh/authorized_keys"), "a b\n\tx\\y  \nlast").unwrap();
            let f = read();
            assert_eq!(f.state, "ok", "{shell}");
            assert_eq!(f.dir.map(|d| (d.0, d.1)), Some(("d".to_string(), 0)), "{shell}");
            assert_eq!(f.file.map(|d| d.0), Some("f".to_string()), "{shell}");
            assert_eq!(f.lines, ["a b", "\tx\\y  ", "last"], "{shell}");
            std::fs::rename(dir.path().join(".ssh/authorized_keys"), dir.path().join("k")).unwrap();
            std::os::unix::fs::symlink(dir.path().join("k"), dir.path().join(".ssh/authorized_keys")).unwrap();
            assert_eq!(read(), KeyFile { state: "keys-link".into(), ..Default::default() }, "{shell}");
            std::fs::rename(dir.path().join(".ssh"), dir.path().join("real")).unwrap();
            std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join(".ssh")).unwrap();
            assert_eq!(read().state, "ssh-link", "{shell}");
        }
    }

    fn key(user: &str, blob: &str, name: &str, present: bool) -> AuthorizedKeySpec {
        AuthorizedKeySpec {
            origin: Origin::default(),
            user: user.into(),
            line: format!("ssh-ed25519 {blob} c microctl:r/{name}"),
            key: format!("ssh-ed25519 {blob}"),
            marker: format!("microctl:r/{name}"),
            exclusive: false,
            present,
        }
    }

    /// The planned edits: a rotated key's old line (same marker) and a hand-written line
    /// of a managed key are dropped, the new line added, other lines kept; absent drops;
    /// exclusive writes the wanted lines alone; owner or mode off rewrites; a symlink or a
    /// missing user is refused.
    #[test]
    fn key_edits_are_planned_exactly() {
        let mut obs = ObservedUsers::default();
        obs.accounts
            .insert("u".into(), Account { uid: 1000, gid: 1000, home: "/home/u".into(), shell: "/bin/sh".into() });
        let good = KeyFile {
            state: "ok".into(),
            dir: Some(("d".into(), 1000, 0o700)),
            file: Some(("f".into(), 1000, 0o600)),
            lines: vec![
                "other AAA teammate".into(),
                "ssh-ed25519 OLD c microctl:r/deploy".into(),
                "from=\"x y\" ssh-ed25519 TWO by-hand".into(),
            ],
        };
        obs.key_files.insert("u".into(), good.clone());
        let mut d = Desired {
            authorized_keys: vec![key("u", "NEW", "deploy", true), key("u", "TWO", "two", false)],
            ..Default::default()
        };
        let edit = |d: &Desired, obs: &ObservedUsers| plan_keys(d, obs, "u", &[0, 1]);
        let (e, why) = edit(&d, &obs).unwrap().unwrap();
        assert_eq!(e.drop, ["ssh-ed25519 OLD c microctl:r/deploy", "from=\"x y\" ssh-ed25519 TWO by-hand"]);
        assert_eq!(e.add, ["ssh-ed25519 NEW c microctl:r/deploy"]);
        assert_eq!(why, "+1 key line(s), -2 key line(s)");
        // Once done: nothing to do.
        obs.key_files.get_mut("u").unwrap().lines =
            vec!["other AAA teammate".into(), "ssh-ed25519 NEW c microctl:r/deploy".into()];
        assert_eq!(edit(&d, &obs).unwrap(), None);
        // Mode off: rewritten as it is.
        obs.key_files.get_mut("u").unwrap().file = Some(("f".into(), 1000, 0o644));
        assert_eq!(edit(&d, &obs).unwrap().unwrap().1, "owner/mode");
        obs.key_files.get_mut("u").unwrap().file = Some(("f".into(), 1000, 0o600));
        d.authorized_keys[0].exclusive = true;
        let (e, _) = edit(&d, &obs).unwrap().unwrap();
        assert_eq!((e.exclusive, e.add.as_slice()), (true, &["ssh-ed25519 NEW c microctl:r/deploy".to_string()][..]));
        for state in ["ssh-link", "keys-link"] {
            obs.key_files.get_mut("u").unwrap().state = state.into();
            assert!(edit(&d, &obs).unwrap_err().contains("is a symlink"), "{state}");
        }
        obs.accounts.clear();
        assert!(edit(&d, &obs).unwrap_err().contains("no such user"));
    }

    /// The probe's part for users, run for real under sh and dash (as root, on `root`, whose
    /// entry every host has): the passwd line, the named group and the key file's state come
    /// back parsed; a user the database does not have prints nothing.
    #[test]
    fn probe_part_runs_under_sh_and_dash() {
        let root = UserSpec {
            origin: Origin::default(),
            name: "root".into(),
            system: false,
            shell: None,
            home: None,
            groups: vec!["root".into()],
            exclusive_groups: false,
            present: true,
        };
        let ghost = UserSpec { name: "mct-no-such-user".into(), groups: vec![], ..root.clone() };
        let d = Desired {
            users: vec![root, ghost],
            authorized_keys: vec![key("root", "X", "r", true)],
            ..Default::default()
        };
        for shell in ["sh", "dash"] {
            let script = format!("TIMEOUT=60\n{}", probe_script(&d));
            let out = std::process::Command::new(shell).args(["-c", &script]).output().unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            let obs = super::super::probe::parse(&text).unwrap_or_else(|e| panic!("{shell}: {e}: {text}"));
            let u = &obs.users;
            assert_eq!((u.accounts["root"].uid, u.accounts["root"].home.as_str()), (0, "/root"), "{shell}");
            assert!(!u.accounts.contains_key("mct-no-such-user"), "{shell}");
            assert_eq!(u.groups["root"].0, 0, "{shell}");
            assert!(["ok", "ssh-missing"].contains(&u.key_files["root"].state.as_str()), "{shell}: {text}");
        }
    }
}
