//! Host keys: unknown refused (with fingerprint and the way to accept), changed refused before
//! any credential is sent (naming file and line), `--accept-new` records and then trusts; a
//! table of known_hosts cases (in the user file, and in the global file) run through the real
//! `ssh -o StrictHostKeyChecking=accept-new` and through microctl, directly, on a host named in
//! capitals, and on the second hop of a chain, which must agree; and concurrent `--accept-new`
//! runs that must leave one clean line per host.

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
    let first = ws.microctl(&["--accept-new", "exec", "a", "--", "true"]);
    first.assert_code(0);
    // Recording says so on stderr: host, fingerprint, file.
    assert!(
        first.stderr.contains(&format!(
            "microctl: recorded the host key of a ([127.0.0.1]:{}): ssh-ed25519 {} in {}",
            a.port,
            fingerprint(&a),
            ws.path("known_hosts").display()
        )),
        "{}",
        first.stderr
    );
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

/// What a client did with one known_hosts case: connected or refused, and the files after.
#[derive(Debug, PartialEq)]
struct Outcome {
    connected: bool,
    known_hosts: Vec<u8>,
    global: Vec<u8>,
}

/// One row: a name, the lines for the target (given its lookup name, the pattern matching
/// it by wildcard, and the keys), and what OpenSSH 9.2 does (true = connects).
struct Case {
    name: &'static str,
    lines: fn(&Keys) -> Vec<u8>,
    openssh_connects: bool,
}

/// The keys a table is built from: the server's, another of its type, one of another type,
/// a CA key; `name` is the target's lookup name, `bare` that without the port, `pattern` a
/// wildcard for it alone.
struct Keys {
    name: String,
    bare: String,
    pattern: String,
    server: String,
    same_type: String,
    other_type: String,
    ca: String,
}

fn line(name: &str, key: &str) -> String {
    format!("{name} {key}\n")
}

fn hashed(name: &str, key: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("kh");
    std::fs::write(&f, line(name, key)).unwrap();
    sh(&format!("ssh-keygen -q -H -f {} >/dev/null", f.display()));
    let out = std::fs::read_to_string(&f).unwrap();
    assert!(out.starts_with("|1|"), "{out}");
    out
}

const CASES: &[Case] = &[
    Case {
        name: "no entry for the host",
        lines: |k| format!("# other hosts only\nother.example {}\n", k.other_type).into_bytes(),
        openssh_connects: true,
    },
    Case { name: "same key", lines: |k| line(&k.name, &k.server).into_bytes(), openssh_connects: true },
    Case {
        name: "same key under the bare name (no port)",
        lines: |k| line(&k.bare, &k.server).into_bytes(),
        openssh_connects: true,
    },
    Case {
        name: "other key of the same type",
        lines: |k| line(&k.name, &k.same_type).into_bytes(),
        openssh_connects: false,
    },
    Case {
        name: "key of another type only",
        lines: |k| line(&k.name, &k.other_type).into_bytes(),
        openssh_connects: false,
    },
    Case {
        name: "another type and the same key",
        lines: |k| format!("{}{}", line(&k.name, &k.other_type), line(&k.name, &k.server)).into_bytes(),
        openssh_connects: true,
    },
    Case { name: "hashed, same key", lines: |k| hashed(&k.name, &k.server).into_bytes(), openssh_connects: true },
    Case {
        name: "hashed, another type",
        lines: |k| hashed(&k.name, &k.other_type).into_bytes(),
        openssh_connects: false,
    },
    Case {
        name: "wildcard, another type",
        lines: |k| line(&k.pattern, &k.other_type).into_bytes(),
        openssh_connects: false,
    },
    Case {
        name: "wildcard with the host negated",
        lines: |k| line(&format!("{},!{}", k.pattern, k.name), &k.other_type).into_bytes(),
        openssh_connects: true,
    },
    Case {
        name: "@revoked same key (and recorded)",
        lines: |k| format!("@revoked {}{}", line(&k.name, &k.server), line(&k.name, &k.server)).into_bytes(),
        openssh_connects: false,
    },
    Case {
        name: "@revoked other key only",
        lines: |k| format!("@revoked {}", line(&k.name, &k.same_type)).into_bytes(),
        openssh_connects: true,
    },
    Case {
        name: "@cert-authority only",
        lines: |k| format!("@cert-authority {}", line(&k.name, &k.ca)).into_bytes(),
        openssh_connects: true,
    },
    Case {
        name: "@cert-authority and another type",
        lines: |k| format!("@cert-authority {}{}", line(&k.name, &k.ca), line(&k.name, &k.other_type)).into_bytes(),
        openssh_connects: false,
    },
    Case {
        name: "only lines OpenSSH skips (bad base64, unknown type, type mismatch, Latin-1)",
        lines: |k| {
            let mut v = format!("{n} ssh-ed25519 AAAA!!\n{n} ssh-foo AAAAC3Nz\n", n = k.name).into_bytes();
            let mismatched = k.other_type.split_whitespace().nth(1).unwrap();
            v.extend_from_slice(format!("{} ssh-dss {mismatched}\n# caf", k.name).as_bytes());
            v.extend_from_slice(b"\xe9 \xff\xfe\n");
            v
        },
        openssh_connects: true,
    },
    Case {
        name: "same key after a Latin-1 line",
        lines: |k| {
            let mut v = b"# caf\xe9\n".to_vec();
            v.extend_from_slice(line(&k.name, &k.server).as_bytes());
            v
        },
        openssh_connects: true,
    },
];

/// A row whose `global` lines are in the global file (OpenSSH's `GlobalKnownHostsFile`,
/// microctl's `global_known_hosts`), with the case's `lines` in the user file.
struct GlobalCase {
    case: Case,
    global: fn(&Keys) -> Vec<u8>,
}

fn nothing(_: &Keys) -> Vec<u8> {
    Vec::new()
}

const GLOBAL_CASES: &[GlobalCase] = &[
    GlobalCase {
        case: Case { name: "global file: same key", lines: nothing, openssh_connects: true },
        global: |k| line(&k.name, &k.server).into_bytes(),
    },
    GlobalCase {
        case: Case { name: "global file: other key of the same type", lines: nothing, openssh_connects: false },
        global: |k| line(&k.name, &k.same_type).into_bytes(),
    },
    GlobalCase {
        case: Case { name: "global file: hashed, another type", lines: nothing, openssh_connects: false },
        global: |k| hashed(&k.name, &k.other_type).into_bytes(),
    },
    GlobalCase {
        case: Case {
            name: "global file: another key; user file: same key",
            lines: |k| line(&k.name, &k.server).into_bytes(),
            openssh_connects: true,
        },
        global: |k| line(&k.name, &k.same_type).into_bytes(),
    },
    GlobalCase {
        case: Case {
            name: "global file: @revoked same key; user file: same key",
            lines: |k| line(&k.name, &k.server).into_bytes(),
            openssh_connects: false,
        },
        global: |k| format!("@revoked {}", line(&k.name, &k.server)).into_bytes(),
    },
];

/// Writes the inventory (see [`Workspace::inventory`]) with `global_known_hosts` set to the
/// workspace's global file, never the machine's.
fn inventory(ws: &Workspace, hosts: &str) {
    let path = ws.inventory(hosts);
    let text = std::fs::read_to_string(&path).unwrap();
    let global = format!("[defaults]\nglobal_known_hosts = [\"{}\"]\n", ws.path("global_known_hosts").display());
    std::fs::write(&path, text.replacen("[defaults]\n", &global, 1)).unwrap();
}

/// `ssh-keygen`s a public key line of `kind`.
fn fresh_key(dir: &std::path::Path, kind: &str, name: &str) -> String {
    let key = Key::generate(dir, name, kind, "");
    key.public_line.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// Runs every case with the real `ssh` and with `microctl --accept-new` against `target`,
/// named `address` (as in the inventory; through `jump` if given), from the same known_hosts
/// files, and asserts they agree with each other and with the table, byte for byte in the
/// files (the global one never written), and that microctl offered no credential to a server
/// whose key it refused. The lines name the target as OpenSSH looks it up: in lowercase.
fn compare_with_openssh(ws: &Workspace, target: &Sshd, address: &str, jump: Option<&Sshd>, other_kind: &str) {
    let kind = if target.host_key.starts_with("ssh-rsa") { "rsa" } else { "ed25519" };
    let lower = address.to_ascii_lowercase();
    let name = if target.port == 22 { lower.clone() } else { format!("[{lower}]:{}", target.port) };
    let keys = Keys {
        pattern: name.replacen(&lower, &format!("{}?", &lower[..lower.len() - 1]), 1),
        name,
        bare: lower.clone(),
        server: target.host_key.clone(),
        same_type: fresh_key(ws.dir.path(), kind, "same_type"),
        other_type: fresh_key(ws.dir.path(), other_kind, "other_type"),
        ca: fresh_key(ws.dir.path(), "ed25519", "ca"),
    };
    let base = jump.map(|j| j.known_hosts_line() + "\n").unwrap_or_default();
    let kh = ws.path("known_hosts");
    let global = ws.path("global_known_hosts");
    let opts = format!(
        "-F /dev/null -o UserKnownHostsFile={} -o GlobalKnownHostsFile={} -o BatchMode=yes -o IdentitiesOnly=yes -i {}",
        kh.display(),
        global.display(),
        ws.key.private.display()
    );
    let proxy = jump
        .map(|j| {
            format!(
                "-o ProxyCommand='ssh {opts} -o StrictHostKeyChecking=yes -W %h:%p -p {} root@{}'",
                j.port, j.address
            )
        })
        .unwrap_or_default();
    let ssh_cmd = format!(
        "HOME={} ssh {opts} {proxy} -o StrictHostKeyChecking=accept-new -p {} root@{address} true",
        ws.path("home").display(),
        target.port,
    );
    let mut failures = Vec::new();
    let rows = CASES.iter().map(|c| (c, nothing as fn(&Keys) -> Vec<u8>));
    for (case, global_lines) in rows.chain(GLOBAL_CASES.iter().map(|g| (&g.case, g.global))) {
        let mut start = base.clone().into_bytes();
        start.extend((case.lines)(&keys));
        let pinned = global_lines(&keys);
        let outcome = |connected: bool| Outcome {
            connected,
            known_hosts: std::fs::read(&kh).unwrap(),
            global: std::fs::read(&global).unwrap(),
        };

        std::fs::write(&kh, &start).unwrap();
        std::fs::write(&global, &pinned).unwrap();
        let status = std::process::Command::new("sh").arg("-c").arg(&ssh_cmd).output().unwrap();
        let openssh = outcome(status.status.success());

        std::fs::write(&kh, &start).unwrap();
        std::fs::write(&global, &pinned).unwrap();
        let log_before = target.log().len();
        let run = ws.microctl(&["--accept-new", "exec", "target", "--", "true"]);
        let microctl = outcome(run.code == 0);
        let offered = target.log()[log_before..].contains("publickey");

        let row = format!(
            "{:<75} openssh: {:<9} microctl: {:<9}",
            case.name,
            if openssh.connected { "connects" } else { "refuses" },
            if microctl.connected { "connects" } else { "refuses" }
        );
        eprintln!("{row}");
        if openssh.connected != case.openssh_connects {
            failures.push(format!(
                "{row}: the table says OpenSSH {}: {}",
                case.openssh_connects,
                String::from_utf8_lossy(&status.stderr)
            ));
        }
        if openssh != microctl {
            failures.push(format!(
                "{row}\n  openssh file:\n{}\n  microctl file:\n{}\n  microctl: {}{}",
                String::from_utf8_lossy(&openssh.known_hosts),
                String::from_utf8_lossy(&microctl.known_hosts),
                run.stdout,
                run.stderr
            ));
        }
        if microctl.global != pinned {
            failures.push(format!("{row}: microctl wrote the global file"));
        }
        if !microctl.connected && offered {
            failures.push(format!("{row}: microctl offered a credential to a refused server: {}", target.log()));
        }
        if !microctl.connected && !run.stdout.contains("no credentials were sent") {
            failures.push(format!("{row}: the refusal does not say no credentials were sent: {}", run.stdout));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The table against a host on loopback, named `address` in the inventory, whose sshd
/// offers `host_key_types`.
fn compare_direct(host_key_types: Vec<&'static str>, address: &str, other_kind: &str) {
    let ws = Workspace::new();
    let target = ws.sshd(SshdOptions { host_key_types, ..Default::default() });
    inventory(&ws, &format!("[hosts.target]\naddress = \"{address}\"\nport = {}\n", target.port));
    compare_with_openssh(&ws, &target, address, None, other_kind);
}

#[test]
fn accept_new_agrees_with_openssh_on_a_direct_host_offering_only_rsa() {
    compare_direct(vec!["rsa"], "127.0.0.1", "ed25519");
}

#[test]
fn accept_new_agrees_with_openssh_on_a_direct_host_offering_only_ed25519() {
    compare_direct(vec!["ed25519"], "127.0.0.1", "ecdsa");
}

/// OpenSSH lowercases the host name before it looks it up, hashes it or records it: with
/// `address = "LocalHost"`, the hashed line Debian's `HashKnownHosts` wrote for `localhost`
/// (another key: a MITM's) is CHANGED, and a new key is recorded as `[localhost]:port`.
#[test]
fn accept_new_agrees_with_openssh_on_a_host_named_in_capitals() {
    compare_direct(vec!["ed25519"], "LocalHost", "ecdsa");
}

#[test]
fn accept_new_agrees_with_openssh_on_the_second_hop_of_a_chain() {
    let net = PrivateNet::create();
    let ws = Workspace::new();
    let jump =
        ws.sshd(SshdOptions { netns: Some((net.jump_ns.clone(), net.jump_address.clone())), ..Default::default() });
    let target = ws.sshd(SshdOptions {
        netns: Some((net.target_ns.clone(), net.target_address.clone())),
        host_key_types: vec!["rsa"],
        ..Default::default()
    });
    inventory(
        &ws,
        &format!(
            "[hosts.jump]\naddress = \"{}\"\n[hosts.target]\naddress = \"{}\"\nvia = \"jump\"\n",
            net.jump_address, net.target_address
        ),
    );
    compare_with_openssh(&ws, &target, &net.target_address, Some(&jump), "ed25519");
}

#[test]
fn concurrent_accept_new_runs_leave_one_clean_line_per_host() {
    let ws = Workspace::new();
    let servers: Vec<Sshd> = (0..3).map(|_| ws.sshd(SshdOptions { max_sessions: 50, ..Default::default() })).collect();
    let hosts: String = servers
        .iter()
        .enumerate()
        .map(|(i, s)| format!("[hosts.h{i}]\naddress = \"127.0.0.1\"\nport = {}\n", s.port))
        .collect();
    ws.inventory(&hosts);
    let mut want: Vec<String> = servers.iter().map(|s| s.known_hosts_line()).collect();
    want.sort();
    let kh = ws.path("known_hosts");
    for round in 0..20 {
        let _ = std::fs::remove_file(&kh);
        let runs: Vec<Run> = std::thread::scope(|s| {
            let handles: Vec<_> =
                (0..6).map(|_| s.spawn(|| ws.microctl(&["--accept-new", "exec", "all", "--", "true"]))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for run in &runs {
            run.assert_code(0);
        }
        let text = std::fs::read_to_string(&kh).unwrap();
        assert!(text.ends_with('\n'), "round {round}: {text:?}");
        let mut got: Vec<String> = text.lines().map(str::to_string).collect();
        got.sort();
        assert_eq!(got, want, "round {round}: {text}");
        // Each host was recorded (and announced) by exactly one of the six runs.
        let notes: usize = runs.iter().map(|r| r.stderr.matches("recorded the host key of").count()).sum();
        assert_eq!(notes, servers.len(), "round {round}");
    }
}

#[test]
fn accept_new_creates_a_missing_ssh_folder_0700() {
    use std::os::unix::fs::PermissionsExt;
    let ws = Workspace::new();
    let a = ws.sshd(SshdOptions::default());
    let kh = ws.path("home/.ssh/known_hosts");
    std::fs::write(
        ws.path("inventory.toml"),
        format!(
            "[hosts.a]\naddress = \"127.0.0.1\"\nport = {}\nuser = \"root\"\nidentity = \"{}\"\nknown_hosts = \"~/.ssh/known_hosts\"\n",
            a.port,
            ws.key.private.display()
        ),
    )
    .unwrap();
    ws.microctl(&["--accept-new", "exec", "a", "--", "true"]).assert_code(0);
    let mode = std::fs::metadata(ws.path("home/.ssh")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    assert_eq!(std::fs::read_to_string(kh).unwrap(), format!("{}\n", a.known_hosts_line()));
}
