//! The apply script's steps for users and authorized keys (planned by `plan::users`): one
//! `useradd`, `usermod` or `userdel` (passwd, on every Debian and Ubuntu) per changed user;
//! for a user's `authorized_keys`, the home folder read from the user database (`getent
//! passwd`, its name matched exactly) and the edit made AS THE USER (`runuser`, util-linux):
//! `keys_edit.sh` under `/bin/sh`. Root never opens, creates or renames anything in the home
//! folder, which the user can write. Names were validated when the role loaded (no leading
//! `-`, no `:`), and are quoted anyway.

use crate::plan::users::{KeysEdit, UserSpec};
use crate::shell::quote;

/// What `usermod` changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserMod {
    pub shell: Option<String>,
    pub home: Option<String>,
    /// Groups, and whether they replace the supplementary list (`-G`) or are added (`-a -G`).
    pub groups: Option<(Vec<String>, bool)>,
}

/// The edit script run as the user.
pub static KEYS_EDIT_SH: crate::remote::Shipped = crate::remote::Shipped::new(include_str!("keys_edit.sh"));

/// Creates `u` (its home folder too: `-m`).
pub fn useradd(u: &UserSpec) -> String {
    let mut cmd = String::from("useradd -m");
    if u.system {
        cmd.push_str(" --system");
    }
    if let Some(h) = &u.home {
        cmd.push_str(&format!(" -d {}", quote(h)));
    }
    if let Some(s) = &u.shell {
        cmd.push_str(&format!(" -s {}", quote(s)));
    }
    if !u.groups.is_empty() {
        cmd.push_str(&format!(" -G {}", quote(&u.groups.join(","))));
    }
    format!("{cmd} -- {}", quote(&u.name))
}

/// Changes what differs of an existing `u` (a new `home` is where it lives from now on:
/// nothing is moved).
pub fn usermod(u: &UserSpec, m: &UserMod) -> String {
    let mut cmd = String::from("usermod");
    if let Some(s) = &m.shell {
        cmd.push_str(&format!(" -s {}", quote(s)));
    }
    if let Some(h) = &m.home {
        cmd.push_str(&format!(" -d {}", quote(h)));
    }
    if let Some((groups, replace)) = &m.groups {
        cmd.push_str(if *replace { " -G " } else { " -a -G " });
        cmd.push_str(&quote(&groups.join(",")));
    }
    format!("{cmd} -- {}", quote(&u.name))
}

/// Removes `u` (its home folder stays).
pub fn userdel(u: &UserSpec) -> String {
    format!("userdel -- {}", quote(&u.name))
}

/// Edits `user`'s `authorized_keys` as `edit` says: the home folder from `getent passwd`
/// (one line, its first field exactly `user`, an absolute path), then `keys_edit.sh` as the
/// user.
pub fn keys_command(user: &str, edit: &KeysEdit) -> String {
    let u = quote(user);
    let mut args = vec![
        "\"$h\"".to_string(),
        "\"$NONCE\"".to_string(),
        if edit.exclusive { "1" } else { "0" }.to_string(),
        edit.drop.len().to_string(),
    ];
    args.extend(edit.drop.iter().chain(&edit.add).map(|l| quote(l)));
    format!(
        "l=$(getent passwd {u}) || {{ echo \"no user {user} in the user database\"; false; }} && \
         case $l in {u}:*) ;; *) echo \"the user database has no exact entry for {user}\"; false ;; esac && \
         h=${{l#*:*:*:*:*:}} && h=${{h%%:*}} && \
         case $h in /*) ;; *) echo \"{user} has no absolute home folder\"; false ;; esac && \
         runuser -u {u} -- /bin/sh -c {} sh {}",
        quote(&KEYS_EDIT_SH),
        args.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::desired::Origin;

    fn user() -> UserSpec {
        UserSpec {
            origin: Origin::default(),
            name: "deploy".into(),
            system: true,
            shell: Some("/bin/bash".into()),
            home: Some("/srv/deploy".into()),
            groups: vec!["adm".into(), "www-data".into()],
            exclusive_groups: false,
            present: true,
        }
    }

    #[test]
    fn user_commands_are_exact() {
        assert_eq!(useradd(&user()), "useradd -m --system -d /srv/deploy -s /bin/bash -G adm,www-data -- deploy");
        let plain = UserSpec { system: false, shell: None, home: None, groups: vec![], ..user() };
        assert_eq!(useradd(&plain), "useradd -m -- deploy");
        let m = UserMod { shell: Some("/bin/sh".into()), home: None, groups: Some((vec!["adm".into()], false)) };
        assert_eq!(usermod(&user(), &m), "usermod -s /bin/sh -a -G adm -- deploy");
        let m = UserMod { groups: Some((vec!["adm".into(), "b".into()], true)), ..Default::default() };
        assert_eq!(usermod(&user(), &m), "usermod -G adm,b -- deploy");
        assert_eq!(userdel(&user()), "userdel -- deploy");
    }

    #[test]
    fn keys_command_is_exact() {
        let edit = KeysEdit {
            exclusive: false,
            drop: vec!["ssh-ed25519 OLD x".into()],
            add: vec!["ssh-ed25519 NEW 'y'".into()],
        };
        let cmd = keys_command("deploy", &edit);
        assert_eq!(
            cmd,
            format!(
                "l=$(getent passwd deploy) || {{ echo \"no user deploy in the user database\"; false; }} && \
                 case $l in deploy:*) ;; *) echo \"the user database has no exact entry for deploy\"; false ;; esac && \
                 h=${{l#*:*:*:*:*:}} && h=${{h%%:*}} && \
                 case $h in /*) ;; *) echo \"deploy has no absolute home folder\"; false ;; esac && \
                 runuser -u deploy -- /bin/sh -c {} sh \"$h\" \"$NONCE\" 0 1 'ssh-ed25519 OLD x' 'ssh-ed25519 NEW '\\''y'\\'''",
                quote(&KEYS_EDIT_SH)
            )
        );
    }

    /// `keys_edit.sh` under sh and dash (in a scratch home; the apply runs it as the user):
    /// keeps the other lines and drops exactly the planned ones, appends the new, leaves
    /// `.ssh` 0700 and the file 0600 with no staged file behind; `exclusive` writes the new
    /// lines alone; a `.ssh` or file that became a symlink since the probe is refused, its
    /// target untouched.
    #[test]
    fn keys_edit_under_sh_and_dash() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let home = dir.path().join("home");
            let file = home.join(".ssh/authorized_keys");
            std::fs::create_dir_all(home.join(".ssh")).unwrap();
            std::fs::write(&file, "a\nssh-ed25519 OLD x microctl:r/u\n  b 'q' \\n").unwrap();
            let run = |args: &[&str]| {
                std::process::Command::new(shell)
                    .args(["-c", &KEYS_EDIT_SH, "sh", home.to_str().unwrap(), "n0"])
                    .args(args)
                    .output()
                    .unwrap()
            };
            let out = run(&["0", "1", "ssh-ed25519 OLD x microctl:r/u", "ssh-ed25519 NEW x microctl:r/u"]);
            assert!(out.status.success(), "{shell}: {out:?}");
            assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{shell}: nothing on stderr");
            assert_eq!(
                std::fs::read_to_string(&file).unwrap(),
                "a\n  b 'q' \\n\nssh-ed25519 NEW x microctl:r/u\n",
                "{shell}"
            );
            assert_eq!((mode(&home.join(".ssh")), mode(&file)), (0o700, 0o600), "{shell}");
            assert_eq!(std::fs::read_dir(home.join(".ssh")).unwrap().count(), 1, "{shell}: nothing staged is left");
            let out = run(&["1", "1", "a", "only"]);
            assert!(out.status.success(), "{shell}: {out:?}");
            assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{shell}: nothing on stderr");
            assert_eq!(std::fs::read_to_string(&file).unwrap(), "only\n", "{shell}");
            // The file, then the folder, made symlinks after the probe.
            let victim = dir.path().join("victim");
            std::fs::write(&victim, "root's\n").unwrap();
            std::fs::remove_file(&file).unwrap();
            std::os::unix::fs::symlink(&victim, &file).unwrap();
            let out = run(&["0", "0", "k"]);
            assert!(
                !out.status.success() && String::from_utf8_lossy(&out.stdout).contains("is a symlink"),
                "{shell}: {out:?}"
            );
            std::fs::remove_dir_all(home.join(".ssh")).unwrap();
            let elsewhere = dir.path().join("elsewhere");
            std::fs::create_dir(&elsewhere).unwrap();
            std::os::unix::fs::symlink(&elsewhere, home.join(".ssh")).unwrap();
            let out = run(&["0", "0", "k"]);
            assert!(
                !out.status.success() && String::from_utf8_lossy(&out.stdout).contains("is a symlink"),
                "{shell}: {out:?}"
            );
            assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root's\n", "{shell}");
            assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "{shell}");
        }
    }
}
