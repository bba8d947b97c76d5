//! Jump chains: a target in a private network namespace reachable only through its jump host,
//! chains of three hops, one shared connection per jump host, and failures naming the hop.

use crate::support::*;

fn in_ns(ns: &str, addr: &str) -> SshdOptions {
    SshdOptions { netns: Some((ns.to_string(), addr.to_string())), ..Default::default() }
}

/// `198.19.27.1` for `198.19.27.2`: the other end of a test veth (only the last octet changes).
fn first_of_subnet(addr: &str) -> String {
    let (net, _) = addr.rsplit_once('.').expect("an IPv4 address");
    format!("{net}.1")
}

#[test]
fn two_hop_chain_reaches_a_host_this_machine_cannot() {
    let net = PrivateNet::create();
    let ws = Workspace::new();
    let web = ws.sshd(in_ns(&net.jump_ns, &net.jump_address));
    let app = ws.sshd(in_ns(&net.target_ns, &net.target_address));
    ws.known_hosts(&[&web, &app]);

    // Directly, app is unreachable from here: the route to the private subnet is `unreachable`.
    ws.inventory(&format!("[hosts.app]\naddress = \"{}\"\n", net.target_address));
    let direct = ws.microctl(&["exec", "app", "--json", "--", "true"]);
    direct.assert_code(1);
    assert_eq!(direct.host("app")["error"]["class"], "unreachable");

    ws.inventory(&format!(
        "[hosts.web]\naddress = \"{}\"\n[hosts.app]\naddress = \"{}\"\nvia = \"web\"\n",
        net.jump_address, net.target_address
    ));
    let run = ws.microctl(&["exec", "app", "--", "echo ${SSH_CONNECTION%% *}"]);
    run.assert_code(0);
    // app saw the connection come from web's private side.
    let web_private = first_of_subnet(&net.target_address);
    assert!(run.stdout.contains(&format!("app | {web_private}\n")), "{}", run.stdout);
    let inv = ws.microctl(&["inventory"]);
    assert!(inv.stdout.contains("control -> web -> app"), "{}", inv.stdout);
}

#[test]
fn three_hop_chain_shares_one_connection_per_jump_host() {
    let net = PrivateNet::create();
    let ws = Workspace::new();
    let jenkins = ws.sshd(SshdOptions::default());
    let web = ws.sshd(in_ns(&net.jump_ns, &net.jump_address));
    let app1 = ws.sshd(in_ns(&net.target_ns, &net.target_address));
    let app2 = ws.sshd(SshdOptions { netns_port: Some(2222), ..in_ns(&net.target_ns, &net.target_address) });
    ws.known_hosts(&[&jenkins, &web, &app1, &app2]);
    ws.inventory(&format!(
        "[hosts.jenkins]\naddress = \"127.0.0.1\"\nport = {}\n\
         [hosts.web]\naddress = \"{}\"\nvia = \"jenkins\"\n\
         [hosts.app1]\naddress = \"{t}\"\nvia = \"web\"\ngroups = [\"app\"]\n\
         [hosts.app2]\naddress = \"{t}\"\nport = 2222\nvia = \"web\"\ngroups = [\"app\"]\n",
        jenkins.port,
        net.jump_address,
        t = net.target_address
    ));
    let run = ws.microctl(&["exec", "app", "--", "echo ${SSH_CONNECTION##* }"]);
    run.assert_code(0);
    assert!(run.stdout.contains("app1 | 22\n") && run.stdout.contains("app2 | 2222\n"), "{}", run.stdout);
    // Both targets were dialed at once; each jump host was still connected to exactly once.
    assert_eq!(jenkins.accepted(), 1, "{}", jenkins.log());
    assert_eq!(web.accepted(), 1, "{}", web.log());
    // web was reached from jenkins (this machine's end of the veth), not directly.
    let jump_side = first_of_subnet(&net.jump_address);
    assert!(web.log().contains(&format!("from {jump_side}")), "{}", web.log());
    let inv = ws.microctl(&["inventory"]);
    assert!(inv.stdout.contains("control -> jenkins -> web -> app2"), "{}", inv.stdout);
}

#[test]
fn a_failed_jump_host_fails_its_targets_naming_the_hop() {
    let ws = Workspace::new();
    let mut web = ws.sshd(SshdOptions::default());
    let app = ws.sshd(SshdOptions::default());
    let other = ws.sshd(SshdOptions::default());
    ws.known_hosts(&[&web, &app, &other]);
    ws.inventory(&format!(
        "[hosts.web]\naddress = \"127.0.0.1\"\nport = {}\n[hosts.app]\naddress = \"127.0.0.1\"\nport = {}\nvia = \"web\"\n\
         [hosts.other]\naddress = \"127.0.0.1\"\nport = {}\n",
        web.port, app.port, other.port
    ));
    ws.microctl(&["exec", "app", "--", "true"]).assert_code(0);
    web.stop();
    let run = ws.microctl(&["exec", "all", "--json", "--", "true"]);
    run.assert_code(1);
    assert_eq!(run.host("other")["exit_code"], 0);
    assert_eq!(run.host("web")["error"]["class"], "unreachable");
    let err = &run.host("app")["error"];
    assert_eq!(err["class"], "jump_failed");
    assert_eq!(err["hop"], "web");
    assert!(
        err["message"].as_str().unwrap().starts_with("cannot reach app: jump host web failed: cannot connect to web"),
        "{err}"
    );
}

#[test]
fn a_refused_second_hop_is_named_as_the_hop_not_the_first() {
    let ws = Workspace::new();
    let a = ws.sshd(SshdOptions::default());
    let b = ws.sshd(SshdOptions::default());
    let target = ws.sshd(SshdOptions::default());
    let impostor = ws.sshd(SshdOptions::default());
    // known_hosts holds someone else's key for b: b's own key is "changed".
    let wrong_b = format!("[127.0.0.1]:{} {}", b.port, impostor.host_key);
    std::fs::write(
        ws.path("known_hosts"),
        format!("{}\n{wrong_b}\n{}\n", a.known_hosts_line(), target.known_hosts_line()),
    )
    .unwrap();
    ws.inventory(&format!(
        "[hosts.a]\naddress = \"127.0.0.1\"\nport = {}\n[hosts.b]\naddress = \"127.0.0.1\"\nport = {}\nvia = \"a\"\n\
         [hosts.target]\naddress = \"127.0.0.1\"\nport = {}\nvia = \"b\"\n",
        a.port, b.port, target.port
    ));
    let run = ws.microctl(&["exec", "target", "--json", "--", "true"]);
    run.assert_code(1);
    let err = &run.host("target")["error"];
    assert_eq!(err["class"], "jump_failed");
    assert_eq!(err["hop"], "b", "{err}");
    let msg = err["message"].as_str().unwrap();
    assert!(msg.starts_with("cannot reach target: jump host b (via a) failed: "), "{msg}");
    assert!(msg.contains(&format!("HOST KEY CHANGED for b (127.0.0.1:{})", b.port)), "{msg}");
    let text = ws.microctl(&["exec", "target", "--", "true"]);
    assert!(text.stdout.contains("jump host b (via a) failed"), "{}", text.stdout);
    // b itself, when targeted, names itself as the failing hop.
    let b_run = ws.microctl(&["exec", "b", "--json", "--", "true"]);
    assert_eq!(b_run.host("b")["error"]["class"], "host_key_changed");
    assert_eq!(b_run.host("b")["error"]["hop"], "b");
    assert!(!b.log().contains("publickey"), "{}", b.log());
    assert_eq!(target.accepted(), 0);
}

/// a -> b -> target where a is up but cannot reach b (nothing listens at b's address): the
/// failing hop is b, reached via a, not a (which worked).
#[test]
fn a_second_hop_its_jump_host_cannot_reach_is_named_as_the_hop_with_its_jump_host() {
    let ws = Workspace::new();
    let a = ws.sshd(SshdOptions::default());
    let target = ws.sshd(SshdOptions::default());
    ws.known_hosts(&[&a, &target]);
    // Nothing listens on b's port: a's sshd is refused when it opens the tunnel.
    let b_port = free_port();
    ws.inventory(&format!(
        "[hosts.a]\naddress = \"127.0.0.1\"\nport = {}\n[hosts.b]\naddress = \"127.0.0.1\"\nport = {b_port}\nvia = \"a\"\n\
         [hosts.target]\naddress = \"127.0.0.1\"\nport = {}\nvia = \"b\"\n",
        a.port, target.port
    ));
    let run = ws.microctl(&["exec", "target", "--json", "--", "true"]);
    run.assert_code(1);
    let err = &run.host("target")["error"];
    assert_eq!(err["class"], "jump_failed", "{err}");
    assert_eq!(err["hop"], "b", "{err}");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "cannot reach target: jump host b (via a) failed: a cannot reach b (127.0.0.1:{b_port})"
        )),
        "{msg}"
    );
    assert!(err["hint"].as_str().unwrap().contains(&format!("check that a can reach 127.0.0.1:{b_port}")), "{err}");
    // a itself worked: microctl logged in there (to open the tunnel); target was never reached.
    assert_eq!(a.accepted(), 1, "{}", a.log());
    assert_eq!(target.accepted(), 0);
    // b targeted directly names itself as the hop, reached via a.
    let b_run = ws.microctl(&["exec", "b", "--json", "--", "true"]);
    let err = &b_run.host("b")["error"];
    assert_eq!(err["class"], "unreachable", "{err}");
    assert_eq!(err["hop"], "b", "{err}");
    assert!(err["message"].as_str().unwrap().starts_with(&format!("a cannot reach b (127.0.0.1:{b_port})")), "{err}");
    let text = ws.microctl(&["exec", "target", "--", "true"]);
    assert!(text.stdout.contains("jump host b (via a) failed"), "{}", text.stdout);
}
