//! `microctl exec` on several hosts: streaming output, JSON Lines, exit codes, failures.

use crate::support::*;

#[test]
fn runs_on_every_host_with_prefixed_output_and_summary() {
    let ws = Workspace::new();
    let a = ws.sshd(SshdOptions::default());
    let b = ws.sshd(SshdOptions::default());
    let c = ws.sshd(SshdOptions::default());
    ws.known_hosts(&[&a, &b, &c]);
    ws.inventory(&format!(
        "[hosts.a]\naddress = \"127.0.0.1\"\nport = {}\ngroups = [\"web\"]\n\
         [hosts.b]\naddress = \"127.0.0.1\"\nport = {}\ngroups = [\"web\"]\n\
         [hosts.c]\naddress = \"127.0.0.1\"\nport = {}\n",
        a.port, b.port, c.port
    ));
    let run = ws.microctl(&["exec", "all", "--", "echo", "port", "${SSH_CONNECTION##*", "}"]);
    run.assert_code(0);
    for (name, sshd) in [("a", &a), ("b", &b), ("c", &c)] {
        assert!(run.stdout.contains(&format!("{name} | port {}\n", sshd.port)), "{}", run.stdout);
    }
    assert!(run.stdout.contains("3 hosts: 3 ok, 0 failed, 0 unreachable"), "{}", run.stdout);

    let run = ws.microctl(&["exec", "web", "--json", "--", "echo out; echo err >&2; exit 3"]);
    run.assert_code(1);
    let json = run.json();
    let results: Vec<_> = json.iter().filter(|v| v["type"] == "host" || v["type"] == "summary").collect();
    assert_eq!(results.len(), 3, "two hosts and a summary: {}", run.stdout);
    for host in ["a", "b"] {
        let h = run.host(host);
        assert_eq!(h["exit_code"], 3);
        assert_eq!(h["stdout"], "out\n");
        assert_eq!(h["stderr"], "err\n");
        assert!(h["error"].is_null());
        assert!(h["duration_ms"].as_u64().is_some());
    }
    let summary = json.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["hosts"], 2);
    assert_eq!(summary["failed"], 2);
}

#[test]
fn unreachable_host_fails_alone_and_exit_is_1() {
    let ws = Workspace::new();
    let a = ws.sshd(SshdOptions::default());
    let b = ws.sshd(SshdOptions::default());
    ws.known_hosts(&[&a, &b]);
    let closed = free_port();
    ws.inventory(&format!(
        "[hosts.a]\naddress = \"127.0.0.1\"\nport = {}\n[hosts.down]\naddress = \"127.0.0.1\"\nport = {closed}\n\
         [hosts.b]\naddress = \"127.0.0.1\"\nport = {}\n",
        a.port, b.port
    ));
    let run = ws.microctl(&["exec", "all", "--json", "--", "true"]);
    run.assert_code(1);
    assert_eq!(run.host("a")["exit_code"], 0);
    assert_eq!(run.host("b")["exit_code"], 0);
    let down = run.host("down");
    assert!(down["exit_code"].is_null());
    assert_eq!(down["error"]["class"], "unreachable");
    let msg = down["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&format!("cannot connect to down (127.0.0.1:{closed})")), "{msg}");
    assert!(msg.contains("refused"), "{msg}");
    let summary = run.json().pop().unwrap();
    assert_eq!(summary["ok"], 2);
    assert_eq!(summary["unreachable"], 1);
}

#[test]
fn pattern_matching_nothing_exits_2_with_the_known_names() {
    let ws = Workspace::new();
    ws.inventory("[hosts.a]\naddress = \"127.0.0.1\"\ngroups = [\"web\"]\n");
    let run = ws.microctl(&["exec", "nosuch", "--", "true"]);
    run.assert_code(2);
    assert!(run.stderr.contains("error: host pattern `nosuch` matches no host or group"), "{}", run.stderr);
    assert!(run.stderr.contains("hint: known hosts: a; groups: web"), "{}", run.stderr);
}

/// The field's habits: `-l/--limit PATTERN` is the host pattern of exec and converge (Ansible,
/// pyinfra), and a remote command given without `--` is refused with the line corrected.
#[test]
fn limit_selects_hosts_and_a_command_without_dashes_says_where_it_goes() {
    let ws = Workspace::new();
    let a = ws.sshd(SshdOptions::default());
    let b = ws.sshd(SshdOptions::default());
    ws.known_hosts(&[&a, &b]);
    ws.inventory(&format!(
        "[hosts.a]\naddress = \"127.0.0.1\"\nport = {}\ngroups = [\"web\"]\n\
         [hosts.b]\naddress = \"127.0.0.1\"\nport = {}\n",
        a.port, b.port
    ));
    for limit in ["-l", "--limit"] {
        let run = ws.microctl(&["exec", limit, "web", "--", "echo", "hi"]);
        run.assert_code(0);
        assert!(run.stdout.contains("a | hi\n") && !run.stdout.contains("b | hi"), "{}", run.stdout);
    }
    let run = ws.microctl(&["converge", "-l", "b", "--check"]);
    assert!(run.stdout.contains("1 host") && run.stdout.contains("b "), "{}\n{}", run.stdout, run.stderr);
    let run = ws.microctl(&["exec", "web", "-l", "b", "--", "true"]);
    run.assert_code(2);

    let run = ws.microctl(&["exec", "all", "uptime", "-a"]);
    run.assert_code(2);
    assert!(
        run.stderr.starts_with("error: unexpected argument `uptime`: put the remote command after `--`\n"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint: e.g. microctl -i "), "{}", run.stderr);
    assert!(run.stderr.contains(" exec all -- uptime -a\n"), "{}", run.stderr);
    let run = ws.microctl(&["ssh", "a", "echo", "hi"]);
    run.assert_code(2);
    assert!(run.stderr.contains(" ssh a -- echo hi\n"), "{}", run.stderr);
    // A mistyped option is clap's to report.
    let run = ws.microctl(&["exec", "all", "--sduo", "--", "true"]);
    run.assert_code(2);
    assert!(!run.stderr.contains("put the remote command"), "{}", run.stderr);
}
