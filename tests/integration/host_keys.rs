//! Host keys: unknown refused (with fingerprint and the way to accept), changed refused before
//! any credential is sent (naming file and line), `--accept-new` records and then trusts.

use crate::support::*;

fn one_host(ws: &Workspace, sshd: &Sshd) {
    ws.inventory(&format!("[hosts.a]\naddress = \"127.0.0.1\"\nport = {}\n", sshd.port));
}

fn fingerprint(sshd: &Sshd) -> String {
    let out = sh(&format!("ssh-keygen -lf {}/host_ed25519.pub", sshd.dir.path().display()));
    out.split_whitespace().nth(1).unwrap().to_string()
}

#[test]
fn unknown_host_key_is_refused_with_fingerprint_and_hint() {
    let ws = Workspace::new();
    let a = ws.sshd(SshdOptions::default());
    ws.known_hosts(&[]);
    one_host(&ws, &a);
    let run = ws.microctl(&["exec", "a", "--json", "--", "true"]);
    run.assert_code(1);
    let err = &run.host("a")["error"];
    assert_eq!(err["class"], "host_key_unknown");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!("host key of a (127.0.0.1:{}) is not known: ssh-ed25519 {}", a.port, fingerprint(&a))),
        "{msg}"
    );
    assert!(err["hint"].as_str().unwrap().contains("--accept-new"), "{err}");
    assert_eq!(a.accepted(), 0);
    assert!(!a.log().contains("publickey"), "no credential may be offered: {}", a.log());
}

#[test]
fn changed_host_key_is_refused_naming_file_and_line_and_sends_no_credentials() {
    let ws = Workspace::new();
    let a = ws.sshd(SshdOptions::default());
    let impostor = ws.sshd(SshdOptions::default());
    // known_hosts has a's key under impostor's port, after two comment lines.
    let line = format!("[127.0.0.1]:{} {}", impostor.port, a.host_key);
    std::fs::write(ws.path("known_hosts"), format!("# one\n# two\n{line}\n")).unwrap();
    one_host(&ws, &impostor);
    let run = ws.microctl(&["exec", "a", "--", "true"]);
    run.assert_code(1);
    let kh = ws.path("known_hosts");
    assert!(
        run.stdout.contains(&format!(
            "a | error: {}:3:1: HOST KEY CHANGED for a (127.0.0.1:{})",
            kh.display(),
            impostor.port
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("no credentials were sent"), "{}", run.stdout);
    assert!(!impostor.log().contains("publickey"), "no credential may be offered: {}", impostor.log());
    let json = ws.microctl(&["exec", "a", "--json", "--", "true"]);
    assert_eq!(json.host("a")["error"]["class"], "host_key_changed");
    // --accept-new never overrides a changed key.
    let again = ws.microctl(&["--accept-new", "exec", "a", "--json", "--", "true"]);
    assert_eq!(again.host("a")["error"]["class"], "host_key_changed");
}

#[test]
fn accept_new_records_the_key_then_strict_checking_passes() {
    let ws = Workspace::new();
    let a = ws.sshd(SshdOptions::default());
    ws.known_hosts(&[]);
    one_host(&ws, &a);
    ws.microctl(&["--accept-new", "exec", "a", "--", "true"]).assert_code(0);
    let recorded = std::fs::read_to_string(ws.path("known_hosts")).unwrap();
    assert_eq!(recorded, format!("{}\n", a.known_hosts_line()));
    ws.microctl(&["exec", "a", "--", "true"]).assert_code(0);
    // OpenSSH itself accepts the line we wrote.
    sh(&format!(
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={} -i {} -p {} root@127.0.0.1 true",
        ws.path("known_hosts").display(),
        ws.key.private.display(),
        a.port
    ));
}
