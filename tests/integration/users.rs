//! `[[user]]`, `[[authorized_key]]` and `secrets keygen` against real sshd: a user is created,
//! left alone on a second run (0 changed), its groups added to (others kept unless
//! `exclusive_groups`), removed; a key line is added with the file's other lines kept, made
//! `absent`, owned whole with `exclusive`; a symlinked `.ssh` or `authorized_keys` is refused
//! with nothing written; a key pair made by `secrets keygen` logs in over real sshd, and
//! `keygen --force` + one converge swaps it: the old key is gone from the file and refused,
//! the new one logs in.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// A user name no other test uses (removed, with its home, when dropped).
struct TestUser(String);

impl TestUser {
    fn new(tag: &str) -> TestUser {
        assert!(euid() == 0, "this test creates users: run it as root (scripts/test.sh)");
        let mut b = [0u8; 4];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut b).unwrap();
        let name = format!("mct{tag}{:08x}", u32::from_le_bytes(b));
        TestUser(name)
    }

    fn home(&self) -> PathBuf {
        PathBuf::from(format!("/home/{}", self.0))
    }

    /// `getent passwd NAME`'s line, if any.
    fn passwd(&self) -> Option<String> {
        let out = Command::new("getent").args(["passwd", &self.0]).output().expect("getent (libc-bin)");
        out.status.success().then(|| String::from_utf8(out.stdout).unwrap().trim().to_string())
    }

    fn groups(&self) -> Vec<String> {
        let out = Command::new("id").args(["-nG", &self.0]).output().unwrap();
        String::from_utf8(out.stdout).unwrap().split_whitespace().map(String::from).collect()
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").args(["-r", "-f", &self.0]).output();
        let _ = std::fs::remove_dir_all(self.home());
    }
}

fn euid() -> u32 {
    std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX)
}

/// One host (real sshd, also trusting users' own `~/.ssh/authorized_keys`) with role `acct`.
struct Host {
    ws: Workspace,
    sshd: Sshd,
}

impl Host {
    fn new(vars: &str) -> Host {
        let ws = Workspace::new();
        let sshd = ws.sshd(SshdOptions { home_keys: true, ..Default::default() });
        ws.known_hosts(&[&sshd]);
        let root = ws.path("h0");
        ws.inventory(&format!(
            "[hosts.h0]\naddress = \"127.0.0.1\"\nport = {}\ngroups = [\"acct\"]\nstate_dir = \"{r}/state\"\n\
             vars = {{ root = \"{r}\"{vars} }}\n[groups.acct]\nroles = [\"acct\"]\n",
            sshd.port,
            r = root.display()
        ));
        std::fs::create_dir_all(ws.path("roles/acct")).unwrap();
        Host { ws, sshd }
    }

    /// Writes the role and converges; returns the run and its host object.
    fn converge(&self, role: &str) -> (Run, serde_json::Value) {
        std::fs::write(self.ws.path("roles/acct/role.toml"), role).unwrap();
        let roles = self.ws.path("roles");
        let run = self.ws.microctl(&["--roles-dir", roles.to_str().unwrap(), "converge", "--json"]);
        let h = run.host("h0");
        (run, h)
    }

    /// `ssh -i KEY USER@host true` with the real OpenSSH client: whether it logged in.
    fn logs_in(&self, user: &str, key: &Path) -> bool {
        let out = Command::new("ssh")
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "StrictHostKeyChecking=yes",
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.ws.path("known_hosts").display()))
            .arg("-i")
            .arg(key)
            .args(["-p", &self.sshd.port.to_string(), &format!("{user}@127.0.0.1"), "echo logged-in"])
            .output()
            .expect("ssh (Debian package openssh-client)");
        let ok = String::from_utf8_lossy(&out.stdout).trim() == "logged-in";
        assert_eq!(ok, out.status.success(), "{out:?}");
        ok
    }
}

fn sh_ok(cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(out.status.success(), "{cmd}: {out:?}");
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// A public key line of a new ed25519 key (ssh-keygen), commented `comment`.
fn public_key(dir: &Path, name: &str) -> String {
    Key::generate(dir, name, "ed25519", "").public_line
}

#[test]
fn user_is_created_left_alone_given_groups_and_removed() {
    let host = Host::new("");
    let u = TestUser::new("u");
    let role = |extra: &str| format!("[[user]]\nname = \"{}\"\nshell = \"/bin/sh\"\ngroups = [\"adm\"]\n{extra}", u.0);
    let (run, h) = host.converge(&role(""));
    run.assert_code(0);
    assert_eq!(h["changed"], 1, "{h}");
    assert_eq!(h["changes"][0]["reason"], "created", "{h}");
    let line = u.passwd().expect("the user exists");
    assert!(line.ends_with(&format!(":{}:/bin/sh", u.home().display())), "{line}");
    assert!(u.home().is_dir(), "home folder created");
    assert!(u.groups().contains(&"adm".to_string()), "{:?}", u.groups());

    let (run, h) = host.converge(&role(""));
    run.assert_code(0);
    assert_eq!((h["changed"].as_u64(), h["ok"].as_u64()), (Some(0), Some(1)), "second run: {h}");

    // A group added by hand stays; a changed shell is fixed.
    sh_ok(&format!("usermod -a -G users {}", u.0));
    let (run, h) = host.converge(&role("").replace("/bin/sh", "/bin/bash"));
    run.assert_code(0);
    assert_eq!(h["changes"][0]["reason"], "shell /bin/sh -> /bin/bash", "{h}");
    assert!(u.passwd().unwrap().ends_with(":/bin/bash"));
    assert!(u.groups().contains(&"users".to_string()), "{:?}", u.groups());
    // exclusive_groups removes it (and then changes nothing).
    let (run, h) = host.converge(&role("exclusive_groups = true\n"));
    run.assert_code(0);
    assert_eq!(h["changes"][0]["reason"], "shell /bin/bash -> /bin/sh, groups -users", "{h}");
    assert!(!u.groups().contains(&"users".to_string()) && u.groups().contains(&"adm".to_string()), "{:?}", u.groups());
    let (_, h) = host.converge(&role("exclusive_groups = true\n"));
    assert_eq!(h["changed"], 0, "{h}");

    let (run, h) = host.converge(&role("state = \"absent\"\n"));
    run.assert_code(0);
    assert_eq!(h["changes"][0]["reason"], "removed", "{h}");
    assert_eq!(u.passwd(), None);
    let (_, h) = host.converge(&role("state = \"absent\"\n"));
    assert_eq!(h["changed"], 0, "{h}");
}

#[test]
fn authorized_key_keeps_other_lines_goes_absent_and_exclusive_owns_the_file() {
    let host = Host::new("");
    let u = TestUser::new("k");
    sh_ok(&format!("useradd -m -s /bin/sh {0} && usermod -p '*' {0}", u.0));
    let ssh = u.home().join(".ssh");
    let file = ssh.join("authorized_keys");
    let keys = host.ws.path("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let teammate = public_key(&keys, "teammate");
    let ours = public_key(&keys, "ours");
    // A teammate's line, put there by hand (as the user).
    sh_ok(&format!(
        "runuser -u {} -- sh -c 'mkdir -m 0755 {s} && printf \"%s\\n\" \"$1\" > {f} && chmod 0644 {f}' sh '{teammate}'",
        u.0,
        s = ssh.display(),
        f = file.display()
    ));
    let role = |extra: &str| {
        format!("[[authorized_key]]\nuser = \"{}\"\nkey = \"{ours}\"\noptions = 'from=\"127.0.0.1\"'\n{extra}", u.0)
    };
    let (run, h) = host.converge(&role(""));
    run.assert_code(0);
    assert_eq!(h["changed"], 1, "{h}");
    let ours_line = format!("from=\"127.0.0.1\" {ours} microctl:acct/{}", u.0);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{teammate}\n{ours_line}\n"));
    let uid = std::fs::metadata(u.home()).unwrap().uid();
    for (p, m) in [(&ssh, 0o700), (&file, 0o600)] {
        assert_eq!((mode(p), std::fs::symlink_metadata(p).unwrap().uid()), (m, uid), "{}", p.display());
    }
    // The new line logs in over sshd (restricted to 127.0.0.1, where the test connects from).
    assert!(host.logs_in(&u.0, &keys.join("ours")));
    let (run, h) = host.converge(&role(""));
    run.assert_code(0);
    assert_eq!(h["changed"], 0, "second run: {h}");

    let (run, h) = host.converge(&role("state = \"absent\"\n"));
    run.assert_code(0);
    assert_eq!(h["changed"], 1, "{h}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{teammate}\n"));
    assert!(!host.logs_in(&u.0, &keys.join("ours")));
    let (_, h) = host.converge(&role("state = \"absent\"\n"));
    assert_eq!(h["changed"], 0, "{h}");

    let (run, h) = host.converge(&role("exclusive = true\n"));
    run.assert_code(0);
    assert_eq!(h["changed"], 1, "{h}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{ours_line}\n"));
    let (_, h) = host.converge(&role("exclusive = true\n"));
    assert_eq!(h["changed"], 0, "{h}");
}

/// A `.ssh` that is a symlink (to a folder the user chose) and an `authorized_keys` that is
/// a symlink to a root-owned file: the host is refused before anything is written, and
/// neither target changes.
#[test]
fn symlinked_ssh_folder_or_key_file_is_refused() {
    let host = Host::new("");
    let u = TestUser::new("s");
    sh_ok(&format!("useradd -m -s /bin/sh {}", u.0));
    let keys = host.ws.path("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key = public_key(&keys, "k");
    let role = format!("[[authorized_key]]\nuser = \"{}\"\nkey = \"{key}\"\n", u.0);
    // `.ssh` -> a folder of the user's elsewhere.
    let elsewhere = u.home().join("elsewhere");
    sh_ok(&format!(
        "runuser -u {} -- sh -c 'mkdir {e} && ln -s {e} {h}/.ssh'",
        u.0,
        e = elsewhere.display(),
        h = u.home().display()
    ));
    let (run, h) = host.converge(&role);
    run.assert_code(1);
    let err = h["error"].to_string();
    assert!(err.contains(".ssh is a symlink"), "{err}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing written through the link");

    // `authorized_keys` -> a root-owned file.
    let victim = host.ws.path("victim");
    std::fs::write(&victim, "root's\n").unwrap();
    sh_ok(&format!(
        "rm {h}/.ssh && runuser -u {} -- sh -c 'mkdir -m 0700 {h}/.ssh && ln -s {v} {h}/.ssh/authorized_keys'",
        u.0,
        h = u.home().display(),
        v = victim.display()
    ));
    let (run, h) = host.converge(&role);
    run.assert_code(1);
    let err = h["error"].to_string();
    assert!(err.contains("authorized_keys is a symlink"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root's\n");
    assert_eq!(mode(&victim), 0o644);
}

/// `secrets keygen`: the public half authorized through a template filter logs in over real
/// sshd; `keygen` again refuses without `--force`; with it, one converge swaps the line: the
/// old key is gone from the file and refused by sshd, the new one logs in.
#[test]
fn keygen_key_logs_in_and_rotation_swaps_it_in_one_run() {
    let host = Host::new(", deploy_key = { secret = \"deploy_key\" }");
    let u = TestUser::new("r");
    let keygen = |force: bool| {
        let mut args = vec!["secrets", "keygen", "deploy_key"];
        if force {
            args.push("--force");
        }
        host.ws.microctl(&args)
    };
    let first = keygen(false);
    first.assert_code(0);
    assert!(
        first.stdout.starts_with("ssh-ed25519 ") && first.stdout.trim().ends_with(" deploy_key"),
        "{}",
        first.stdout
    );
    let secrets = std::fs::read_to_string(host.ws.path("secrets.toml")).unwrap();
    assert!(!secrets.contains("OPENSSH PRIVATE KEY"), "the private key is encrypted: {secrets}");
    let private = |name: &str| {
        let show = host.ws.microctl(&["secrets", "show", "deploy_key"]);
        show.assert_code(0);
        let p = host.ws.path(name);
        std::fs::write(&p, &show.stdout).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    };
    let old = private("old_key");
    let role = format!(
        "[[user]]\nname = \"{0}\"\nshell = \"/bin/sh\"\n\n[[authorized_key]]\nuser = \"{0}\"\nkey = \"{{{{ deploy_key | ssh_public_key }}}}\"\n",
        u.0
    );
    std::fs::write(host.ws.path("roles/acct/role.toml"), &role).unwrap();
    let roles = host.ws.path("roles");
    let check = host.ws.microctl(&["--roles-dir", roles.to_str().unwrap(), "check"]);
    check.assert_code(0);
    let (run, h) = host.converge(&role);
    run.assert_code(0);
    assert_eq!(h["changed"], 2, "user and key: {h}");
    assert!(!run.stdout.contains("OPENSSH PRIVATE KEY") && !run.stderr.contains("OPENSSH PRIVATE KEY"));
    // useradd locks the password ("!"), which sshd without PAM reads as a locked account.
    sh_ok(&format!("usermod -p '*' {}", u.0));
    assert!(host.logs_in(&u.0, &old), "the key pair logs in");

    let again = keygen(false);
    again.assert_code(2);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    keygen(true).assert_code(0);
    let new = private("new_key");
    let (run, h) = host.converge(&role);
    run.assert_code(0);
    assert_eq!(h["changed"], 1, "one run swaps the key: {h}");
    let text = std::fs::read_to_string(u.home().join(".ssh/authorized_keys")).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let old_public = Command::new("ssh-keygen").arg("-y").arg("-f").arg(&old).output().unwrap().stdout;
    let old_blob = String::from_utf8(old_public).unwrap().split_whitespace().nth(1).unwrap().to_string();
    assert!(!text.contains(&old_blob), "the old key is gone: {text}");
    assert!(host.logs_in(&u.0, &new), "the new key logs in");
    assert!(!host.logs_in(&u.0, &old), "the old key is refused");
    let (_, h) = host.converge(&role);
    assert_eq!(h["changed"], 0, "{h}");
}

/// Bad `[[user]]` and `[[authorized_key]]` fields are role errors at load, each naming
/// role.toml's line, column and field; a templated key that renders to no key line names the
/// host too.
#[test]
fn bad_user_and_key_fields_name_role_toml_line_and_field() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.path("roles/acct")).unwrap();
    std::fs::write(
        ws.path("inventory.toml"),
        "[hosts.w1]\naddress = \"198.18.0.11\"\ngroups = [\"acct\"]\nvars = { k = \"not a key\" }\n\n[groups.acct]\nroles = [\"acct\"]\n",
    )
    .unwrap();
    let toml = ws.path("roles/acct/role.toml");
    let roles = ws.path("roles");
    let check = |role: &str| {
        std::fs::write(&toml, role).unwrap();
        let run = ws.microctl(&["--roles-dir", roles.to_str().unwrap(), "check"]);
        run.assert_code(2);
        format!("{}{}", run.stdout, run.stderr)
    };
    let out = check("[[user]]\nname = \"1000\"\n\n[[user]]\nname = \"ok\"\nstate = \"gone\"\n");
    assert!(out.contains(&format!("{}:1:1: `user.name` must be a user name", toml.display())), "{out}");
    assert!(out.contains(&format!("{}:4:1: unknown state `gone`", toml.display())), "{out}");
    let out =
        check("[[authorized_key]]\nuser = \"deploy\"\nkey = \"ssh-ed25519 nope\"\noptions = 'from=\"a\" no-pty'\n");
    assert!(out.contains(&format!("{}:1:1: `authorized_key.key` is not a public key line", toml.display())), "{out}");
    assert!(out.contains("`authorized_key.options` has a blank outside double quotes"), "{out}");
    let out = check("[[authorized_key]]\nuser = \"deploy\"\nkey = \"{{ k }}\"\n");
    assert!(out.contains(&format!("{}:1:1: `authorized_key.key` is not a public key line", toml.display())), "{out}");
    assert!(out.contains("host: w1"), "{out}");
}

/// The race: the user (a real attacker process running as that user, woken by
/// `inotifywait` when the probe opens its `authorized_keys`) swaps `~/.ssh` for a symlink to
/// a root-owned folder between the probe and the apply. The apply, editing as the user,
/// refuses the symlink and could not write there anyway: the root-owned folder stays empty
/// and keeps its mode, the host fails, and the attacker's marker shows the swap ran.
#[test]
fn ssh_folder_swapped_for_a_symlink_after_the_probe_writes_nothing_of_roots() {
    let host = Host::new("");
    let u = TestUser::new("a");
    sh_ok(&format!("useradd -m -s /bin/sh {}", u.0));
    let keys = host.ws.path("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let key = public_key(&keys, "k");
    let home = u.home();
    // A long file (3000 lines, which the probe's reader reads a line at a time) keeps the
    // probe busy after the open that wakes the attacker: the swap lands before the apply.
    let teammates: String = (0..3000).map(|i| format!("ssh-ed25519 AAAA{i:0>80} teammate{i}\n")).collect();
    sh_ok(&format!("runuser -u {} -- sh -c 'mkdir -m 0700 {h}/.ssh'", u.0, h = home.display()));
    std::fs::write(home.join(".ssh/authorized_keys"), &teammates).unwrap();
    sh_ok(&format!("chown {0}: {1}/.ssh/authorized_keys", u.0, home.display()));
    // Root's folder, which the user can reach but not write.
    let victim = tempfile::Builder::new().prefix("mct-victim").tempdir_in("/tmp").unwrap();
    std::fs::set_permissions(victim.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (marker, watching) = (home.join("swapped"), home.join("watching"));
    let attack = format!(
        "cd {h} && inotifywait -e open .ssh/authorized_keys > /dev/null 2> {w} && mv .ssh .ssh.real && ln -s {v} .ssh && touch {m}",
        h = home.display(),
        v = victim.path().display(),
        w = watching.display(),
        m = marker.display()
    );
    let mut attacker = Command::new("runuser")
        .args(["-u", &u.0, "--", "sh", "-c", &attack])
        .spawn()
        .expect("runuser (util-linux) and inotifywait (inotify-tools)");
    // The watch is set once inotifywait says so (polled with a deadline).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&watching).unwrap_or_default().contains("Watches established") {
        assert!(std::time::Instant::now() < deadline, "the attacker did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (run, h) = host.converge(&format!("[[authorized_key]]\nuser = \"{}\"\nkey = \"{key}\"\n", u.0));
    let _ = attacker.wait();
    assert!(marker.exists(), "the attacker's swap ran: {}", run.stdout);
    assert_eq!(std::fs::read_dir(victim.path()).unwrap().count(), 0, "nothing written in root's folder: {h}");
    assert_eq!(std::fs::metadata(victim.path()).unwrap().permissions().mode() & 0o7777, 0o755, "nor chmodded: {h}");
    // The swap lands before the apply's check (refused: "is a symlink") or, on a loaded
    // machine, during the edit (which, as the user, fails on root's folder): the step fails.
    run.assert_code(1);
    let err = h["error"].to_string();
    assert!(err.contains(".ssh is a symlink") || err.contains(&format!("authorized_keys of {}", u.0)), "{h}");
    assert_eq!(std::fs::read_to_string(home.join(".ssh.real/authorized_keys")).unwrap(), teammates);
}
