//! Authentication: refused keys, RSA (rsa-sha2), ECDSA, encrypted keys, ssh-agent.

use crate::support::*;

fn inventory_with_key(ws: &Workspace, sshd: &Sshd, key: &std::path::Path) {
    let text = format!(
        "[defaults]\nuser = \"root\"\nknown_hosts = \"{}\"\n[hosts.a]\naddress = \"127.0.0.1\"\nport = {}\nidentity = \"{}\"\n",
        ws.path("known_hosts").display(),
        sshd.port,
        key.display()
    );
    std::fs::write(ws.path("inventory.toml"), text).unwrap();
}

#[test]
fn key_not_authorized_is_auth_refused() {
    let ws = Workspace::new();
    let a = Sshd::start(SshdOptions::default()); // trusts no key
    ws.known_hosts(&[&a]);
    ws.inventory(&format!("[hosts.a]\naddress = \"127.0.0.1\"\nport = {}\n", a.port));
    let run = ws.microctl(&["exec", "a", "--json", "--", "true"]);
    run.assert_code(1);
    let err = &run.host("a")["error"];
    assert_eq!(err["class"], "auth_refused");
    let msg = err["message"].as_str().unwrap();
    assert!(msg.starts_with("root@a refused authentication; offered: "), "{msg}");
    assert!(msg.contains("ssh-ed25519"), "{msg}");
}

#[test]
fn rsa_ecdsa_and_encrypted_keys_authenticate() {
    let ws = Workspace::new();
    let rsa = Key::generate(ws.dir.path(), "id_rsa", "rsa", "");
    let ecdsa = Key::generate(ws.dir.path(), "id_ecdsa", "ecdsa", "");
    let locked = Key::generate(ws.dir.path(), "id_locked", "ed25519", "s3cret pass");
    let a = Sshd::start(SshdOptions {
        authorized: vec![rsa.public_line.clone(), ecdsa.public_line.clone(), locked.public_line.clone()],
        ..Default::default()
    });
    ws.known_hosts(&[&a]);
    for key in [&rsa, &ecdsa] {
        inventory_with_key(&ws, &a, &key.private);
        ws.microctl(&["exec", "a", "--", "true"]).assert_code(0);
    }
    inventory_with_key(&ws, &a, &locked.private);
    let run = ws.microctl(&["exec", "a", "--json", "--", "true"]);
    run.assert_code(1);
    assert!(run.host("a")["error"]["message"].as_str().unwrap().contains("MICROCTL_KEY_PASSPHRASE"), "{}", run.stdout);
    let run = ws.microctl_env(&["exec", "a", "--json", "--", "true"], &[("MICROCTL_KEY_PASSPHRASE", "wrong")]);
    assert!(run.host("a")["error"]["message"].as_str().unwrap().contains("wrong passphrase"), "{}", run.stdout);
    ws.microctl_env(&["exec", "a", "--", "true"], &[("MICROCTL_KEY_PASSPHRASE", "s3cret pass")]).assert_code(0);
}

#[test]
fn ssh_agent_is_used_when_no_identity_is_set() {
    let ws = Workspace::new();
    let agent_key = Key::generate(ws.dir.path(), "agent_rsa", "rsa", "");
    let a = Sshd::start(SshdOptions { authorized: vec![agent_key.public_line.clone()], ..Default::default() });
    ws.known_hosts(&[&a]);
    std::fs::write(
        ws.path("inventory.toml"),
        format!(
            "[hosts.a]\naddress = \"127.0.0.1\"\nport = {}\nuser = \"root\"\nknown_hosts = \"{}\"\n",
            a.port,
            ws.path("known_hosts").display()
        ),
    )
    .unwrap();
    let sock = ws.path("agent.sock");
    let out = sh(&format!("ssh-agent -a {} -s", sock.display()));
    let pid: String = out.split("SSH_AGENT_PID=").nth(1).unwrap().split(';').next().unwrap().to_string();
    struct KillAgent(String);
    impl Drop for KillAgent {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill").arg(&self.0).status();
        }
    }
    let _agent = KillAgent(pid);
    sh(&format!("SSH_AUTH_SOCK={} ssh-add -q {}", sock.display(), agent_key.private.display()));
    ws.microctl_env(&["exec", "a", "--", "true"], &[("SSH_AUTH_SOCK", sock.to_str().unwrap())]).assert_code(0);
    // Without the agent there is nothing to offer.
    ws.microctl(&["exec", "a", "--", "true"]).assert_code(1);
}

#[test]
fn missing_or_unreadable_identity_is_named_as_such_before_connecting_and_by_check() {
    let ws = Workspace::new();
    let a = ws.sshd(SshdOptions::default());
    ws.known_hosts(&[&a]);
    for (path, want) in
        [(ws.path("no_such_key"), "does not exist"), (ws.path("home"), "cannot be read: not a regular file")]
    {
        inventory_with_key(&ws, &a, &path);
        let run = ws.microctl(&["exec", "a", "--json", "--", "true"]);
        run.assert_code(1);
        let err = &run.host("a")["error"];
        assert_eq!(err["class"], "identity", "{err}");
        let msg = err["message"].as_str().unwrap();
        assert!(msg.contains(&format!("identity file {} {want}", path.display())), "{msg}");
        assert!(!msg.contains("refused authentication"), "{msg}");
        // Offline: `check` warns about it and still passes (nothing to render is wrong).
        let check = ws.microctl(&["check"]);
        check.assert_code(0);
        assert!(
            check.stderr.contains(&format!(
                "warning: {}: identity file {}",
                ws.path("inventory.toml").display(),
                path.display()
            )),
            "{}",
            check.stderr
        );
        assert!(check.stderr.contains("host: a"), "{}", check.stderr);
    }
    // Checked before dialing: the server never saw a connection.
    assert!(!a.log().contains("Connection from"), "{}", a.log());
}

#[test]
fn identity_readable_by_others_is_refused_with_openssh_reason() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    let a = ws.sshd(SshdOptions::default());
    ws.known_hosts(&[&a]);
    inventory_with_key(&ws, &a, &ws.key.private);
    std::fs::set_permissions(&ws.key.private, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = ws.microctl(&["exec", "a", "--json", "--", "true"]);
    run.assert_code(1);
    let err = &run.host("a")["error"];
    assert_eq!(err["class"], "identity", "{err}");
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains("UNPROTECTED PRIVATE KEY FILE: permissions 0644 for"), "{msg}");
    assert!(err["hint"].as_str().unwrap().starts_with("chmod 600 "), "{err}");
    assert!(!a.log().contains("publickey"), "{}", a.log());
    // OpenSSH agrees: it ignores the key (and so cannot log in).
    let ssh = std::process::Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", ws.path("known_hosts").display()))
        .arg("-i")
        .arg(&ws.key.private)
        .args(["-p", &a.port.to_string(), "root@127.0.0.1", "true"])
        .env("HOME", ws.path("home"))
        .output()
        .unwrap();
    assert!(!ssh.status.success());
    assert!(String::from_utf8_lossy(&ssh.stderr).contains("UNPROTECTED PRIVATE KEY FILE"));
    std::fs::set_permissions(&ws.key.private, std::fs::Permissions::from_mode(0o600)).unwrap();
    ws.microctl(&["exec", "a", "--", "true"]).assert_code(0);
}
