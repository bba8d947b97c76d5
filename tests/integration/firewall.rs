//! The host firewall (issue #23) against real sshd, each "host" in a network namespace of its
//! own (`PrivateNet`: `gate` reached over a veth pair in 198.19.0.0/16, `inner` only through
//! `gate`), so the rules land there and can never cut this machine. Rules applied and a
//! second converge changes nothing; a port answers only the address its role names; a wrong
//! `ssh_from` is undone by the host within the confirm timeout, the host reachable again and
//! nothing else changed; a controller killed after the apply leaves the revert to the host.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{PrivateNet, Sshd, SshdOptions, Workspace, sh};

fn in_ns(ns: &str, addr: &str) -> SshdOptions {
    SshdOptions { netns: Some((ns.to_string(), addr.to_string())), ..Default::default() }
}

/// `198.19.27.1` for `198.19.27.2`: the other end of a test veth.
fn first_of_subnet(addr: &str) -> String {
    format!("{}.1", addr.rsplit_once('.').expect("an IPv4 address").0)
}

struct Lab {
    net: PrivateNet,
    ws: Workspace,
    _gate: Sshd,
    _inner: Sshd,
}

impl Lab {
    fn new() -> Lab {
        assert!(
            Command::new("nft").arg("--version").output().is_ok_and(|o| o.status.success()),
            "nft is missing: install the Debian package nftables (scripts/test.sh does)"
        );
        let net = PrivateNet::create();
        let ws = Workspace::new();
        let gate = ws.sshd(in_ns(&net.jump_ns, &net.jump_address));
        let inner = ws.sshd(in_ns(&net.target_ns, &net.target_address));
        ws.known_hosts(&[&gate, &inner]);
        std::fs::create_dir_all(ws.path("roles/probe")).unwrap();
        Lab { net, ws, _gate: gate, _inner: inner }
    }

    /// This machine's address as `gate` sees it.
    fn controller(&self) -> String {
        first_of_subnet(&self.net.jump_address)
    }

    /// The inventory: `gate` with `ssh_from` and the probe role (port 8080 open to this
    /// machine's address only), `inner` behind it; both with the firewall on (`inner_on`).
    fn inventory(&self, ssh_from: &str, confirm: u64, inner_on: bool) {
        let role =
            format!("ports = [{{ port = 8080, from = \"{}/32\", description = \"probe port\" }}]\n", self.controller());
        std::fs::write(self.ws.path("roles/probe/role.toml"), role).unwrap();
        self.ws.inventory(&format!(
            "[hosts.gate]\naddress = \"{}\"\ngroups = [\"probe\"]\nstate_dir = \"{}\"\n\
             vars = {{ firewall = true, ssh_from = {ssh_from}, firewall_confirm_timeout = {confirm}, private_address = \"{}\" }}\n\
             [hosts.inner]\naddress = \"{}\"\nvia = \"gate\"\nstate_dir = \"{}\"\n\
             vars = {{ firewall = {inner_on}, firewall_confirm_timeout = {confirm} }}\n\
             [groups.probe]\nroles = [\"probe\"]\n",
            self.net.jump_address,
            self.state("gate").display(),
            first_of_subnet(&self.net.target_address),
            self.net.target_address,
            self.state("inner").display(),
        ));
    }

    fn state(&self, host: &str) -> PathBuf {
        self.ws.path(&format!("state-{host}"))
    }

    fn converge_args(&self) -> Vec<String> {
        let roles = self.ws.path("roles");
        vec!["--roles-dir".into(), roles.to_string_lossy().into_owned(), "converge".into(), "--json".into()]
    }

    fn converge(&self) -> crate::support::Run {
        let args = self.converge_args();
        self.ws.microctl(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `nft list ruleset` (or one table) in `ns`.
    fn nft(ns: &str, what: &str) -> String {
        sh(&format!("ip netns exec {ns} nft list {what} 2>/dev/null || true"))
    }

    fn gate_table(&self) -> String {
        Lab::nft(&self.net.jump_ns, "table inet microctl")
    }
}

/// Whether a TCP connection from `source` to `addr:port` is accepted within 2 s.
fn connects(source: &str, addr: &str, port: u16) -> bool {
    let code = format!(
        "import socket,sys\ntry:\n    socket.create_connection(('{addr}', {port}), timeout=2, source_address=('{source}', 0)).close()\nexcept OSError:\n    sys.exit(1)\n"
    );
    Command::new("python3").args(["-c", &code]).status().expect("python3 (Debian package python3)").success()
}

/// A TCP listener in `ns` on `addr:8080`, killed by pid on drop.
struct Listener(Child);

impl Listener {
    fn start(ns: &str, addr: &str) -> Listener {
        let code = format!(
            "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('{addr}', 8080))\ns.listen(50)\nprint('listening', flush=True)\nwhile True:\n    s.accept()[0].close()\n"
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "python3", "-c", &code])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 in the namespace");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line, "listening\n");
        Listener(child)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A second address on this machine's end of `gate`'s veth: a source the rules do not name.
fn second_source(lab: &Lab) -> String {
    let ctl = lab.controller();
    let line = sh(&format!("ip -o -4 addr show | grep ' {ctl}/24 '"));
    let dev = line.split_whitespace().nth(1).expect("the veth's name").to_string();
    let other = format!("{}.3", ctl.rsplit_once('.').unwrap().0);
    sh(&format!("ip addr add {other}/24 dev {dev}"));
    other
}

fn poll(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < until, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rules_applied_second_converge_changes_nothing_and_a_port_answers_only_its_address() {
    let lab = Lab::new();
    let ctl = lab.controller();
    lab.inventory(&format!("\"{ctl}\""), 10, true);
    let _listener = Listener::start(&lab.net.jump_ns, &lab.net.jump_address);
    let other = second_source(&lab);
    // Before: anyone may connect.
    assert!(connects(&other, &lab.net.jump_address, 8080), "the port answers every address before the firewall");

    let first = lab.converge();
    first.assert_code(0);
    let gate = lab.gate_table();
    assert!(gate.contains(&format!("ip saddr {ctl} tcp dport 22 accept")), "{gate}");
    assert!(gate.contains(&format!("ip saddr {ctl} tcp dport 8080 accept")), "{gate}");
    assert!(gate.contains("policy drop;"), "{gate}");
    let inner = Lab::nft(&lab.net.target_ns, "table inet microctl");
    let gate_private = first_of_subnet(&lab.net.target_address);
    assert!(inner.contains(&format!("ip saddr {gate_private} tcp dport 22 accept")), "{inner}");
    for h in ["gate", "inner"] {
        let changes = first.host(h)["changes"].to_string();
        assert!(changes.contains("firewall table inet microctl"), "{h}: {changes}");
    }
    // The port answers the address its role names, and no other.
    assert!(connects(&ctl, &lab.net.jump_address, 8080));
    assert!(!connects(&other, &lab.net.jump_address, 8080), "8080 must not answer {other}");
    // `inventory --ports` shows exactly what was applied: each of its rules is in the live
    // table, and the table accepts nothing else.
    let roles = lab.ws.path("roles");
    let ports = lab.ws.microctl(&["--roles-dir", roles.to_str().unwrap(), "inventory", "--ports", "--json"]);
    ports.assert_code(0);
    for (host, table) in [("gate", &gate), ("inner", &inner)] {
        let listed = ports.json().into_iter().find(|h| h["host"] == host).unwrap();
        assert_eq!(listed["firewall"], true, "{listed}");
        let rules = listed["inbound"].as_array().unwrap();
        for r in rules {
            let from = r["from"].as_array().unwrap();
            assert_eq!(from.len(), 1, "{r}");
            let from = from[0].as_str().unwrap().trim_end_matches("/32");
            let line = format!("ip saddr {from} tcp dport {} accept", r["port"]);
            assert!(table.contains(&line), "{host}: `{line}` not in\n{table}");
        }
        assert_eq!(table.matches(" dport ").count(), rules.len(), "{host}: {table}");
    }
    let text = lab.ws.microctl(&["--roles-dir", roles.to_str().unwrap(), "inventory", "--ports"]);
    assert!(
        text.stdout.contains(&format!("8080/tcp  {ctl}/32")) && text.stdout.contains("enforced"),
        "{}",
        text.stdout
    );

    let second = lab.converge();
    second.assert_code(0);
    for h in ["gate", "inner"] {
        let host = second.host(h);
        assert_eq!(host["changed"], 0, "{h}: {host}");
        assert_eq!(host["channels_opened"], 1, "an unchanged rule set costs no round trip: {host}");
    }
    assert_eq!(lab.gate_table(), gate);
}

#[test]
fn a_wrong_ssh_from_is_reverted_within_the_confirm_timeout_and_nothing_else_changes() {
    let lab = Lab::new();
    let ctl = lab.controller();
    lab.inventory(&format!("\"{ctl}\""), 4, true);
    lab.converge().assert_code(0);
    sh(&format!(
        "ip netns exec {} nft add table ip other && ip netns exec {} nft add chain ip other input '{{ type filter hook input priority 0; }}'",
        lab.net.jump_ns, lab.net.jump_ns
    ));
    let tables = |ns: &str| [Lab::nft(ns, "table inet microctl"), Lab::nft(ns, "table ip other")];
    let before = tables(&lab.net.jump_ns);
    assert!(before[1].contains("chain input"), "{before:?}");
    let inner_before = Lab::nft(&lab.net.target_ns, "ruleset");

    // SSH to gate only from an address that is not ours: the new rules cut our path.
    lab.inventory("\"198.19.250.1\"", 4, true);
    let started = Instant::now();
    let run = lab.converge();
    let took = started.elapsed();
    run.assert_code(1);
    let gate = run.host("gate");
    assert_eq!(gate["error"]["message"], "the new firewall cut our SSH path; the previous rules are back", "{gate}");
    assert!(took < Duration::from_secs(4 + 12), "took {took:?}");
    // The jump host's firewall failed: nothing behind it was touched.
    let inner = run.host("inner");
    assert_eq!(inner["error"]["message"], "inner left alone: the firewall of its jump host gate failed", "{inner}");
    assert_eq!(tables(&lab.net.jump_ns), before, "the previous rules are back, the other table untouched");
    assert_eq!(Lab::nft(&lab.net.target_ns, "ruleset"), inner_before);
    // Reachable again, by a new connection.
    lab.ws.microctl(&["exec", "gate", "--", "true"]).assert_code(0);
}

#[test]
fn a_controller_killed_after_the_apply_leaves_the_revert_to_the_host() {
    let lab = Lab::new();
    let ctl = lab.controller();
    lab.inventory(&format!("\"{ctl}\""), 3, false);
    lab.converge().assert_code(0);
    let old = lab.gate_table();
    // A valid change (one more SSH source), whose controller never gets to confirm.
    lab.inventory(&format!("[\"{ctl}\", \"198.19.250.1\"]"), 3, false);
    let state = lab.state("gate");
    let mut watch = Command::new("inotifywait")
        .args(["-m", "-e", "close_write", "--format", "%f"])
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("inotifywait (Debian package inotify-tools)");
    let mut ready = String::new();
    let mut said = BufReader::new(watch.stderr.take().unwrap());
    while !ready.contains("Watches established") {
        assert_ne!(said.read_line(&mut ready).unwrap(), 0, "inotifywait: {ready}");
    }
    let args = lab.converge_args();
    let mut controller = lab.ws.spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // The host saved the live table (the step right before the watchdog and the apply):
    // freeze the controller there, so it cannot confirm, then kill it once the new table is live.
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    loop {
        let line = lines.next().expect("inotifywait ended").unwrap();
        if line == "firewall.old" {
            break;
        }
    }
    sh(&format!("kill -STOP {}", controller.id()));
    let _ = watch.kill();
    let _ = watch.wait();
    poll("the new table goes live", Duration::from_secs(5), || lab.gate_table().contains("198.19.250.1"));
    let applied = Instant::now();
    controller.kill().unwrap();
    controller.wait().unwrap();
    poll("the host restores the previous table by itself", Duration::from_secs(3 + 3), || lab.gate_table() == old);
    assert!(applied.elapsed() < Duration::from_secs(3 + 2), "restored within the confirm timeout");
    let marks: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("firewall.reverted."))
        .collect();
    assert_eq!(marks.len(), 1, "the watchdog marked its revert: {marks:?}");
    lab.ws.microctl(&["exec", "gate", "--", "true"]).assert_code(0);
}

/// `check` renders every firewalled host's table and validates it with `nft -c`; a source
/// nftables cannot match (a host name in `ssh_from`) fails the host, naming it and the rule.
#[test]
fn check_renders_and_validates_each_firewalled_host() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.path("roles/probe")).unwrap();
    std::fs::write(ws.path("roles/probe/role.toml"), "ports = [{ port = 8080, from = \"10.0.0.0/8\" }]\n").unwrap();
    let roles = ws.path("roles");
    let check_with = |ssh_from: &str, env: &[(&str, &str)]| {
        ws.inventory(&format!(
            "[hosts.a]\naddress = \"198.19.0.2\"\ngroups = [\"probe\"]\nvars = {{ firewall = true, ssh_from = {ssh_from} }}\n\
             [hosts.b]\naddress = \"198.19.0.3\"\ngroups = [\"probe\"]\n[groups.probe]\nroles = [\"probe\"]\n"
        ));
        ws.microctl_env(&["--roles-dir", roles.to_str().unwrap(), "check", "--json"], env)
    };
    let check = |ssh_from: &str| check_with(ssh_from, &[]);
    let good = check("[\"198.19.0.1\", \"2001:db8::/32\"]");
    good.assert_code(0);
    // The table is one more resource of a firewalled host.
    assert_eq!(good.host("a")["resources"], good.host("b")["resources"].as_u64().unwrap() + 1, "{}", good.stdout);
    // The rendered table goes to `nft -c`: an nft that refuses every rule fails the host.
    let stub = ws.path("stub");
    std::fs::create_dir_all(&stub).unwrap();
    std::fs::write(
        stub.join("nft"),
        "#!/bin/sh\ncase $(cat) in *dport*) echo 'Error: refused by the stub' >&2; exit 1 ;; esac\n",
    )
    .unwrap();
    sh(&format!("chmod 0755 {}/nft", stub.display()));
    let path = format!("{}:{}", stub.display(), std::env::var("PATH").unwrap());
    let refused = check_with("\"198.19.0.1\"", &[("PATH", &path)]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    let all = format!("{}{}", refused.stdout, refused.stderr);
    assert!(
        all.contains("the firewall table of a does not pass `nft -c`") && all.contains("refused by the stub"),
        "{all}"
    );
    let bad = check("\"bastion.example\"");
    assert_ne!(bad.code, 0, "{}", bad.stdout);
    let all = format!("{}{}", bad.stdout, bad.stderr);
    assert!(
        all.contains("the firewall of a: rule `ssh` (port 22): `bastion.example` is not an IP address or CIDR"),
        "{all}"
    );
}
