//! Hosts on which no session could be had, against real sshd: every such failure (refused,
//! timed out, not SSH, a changed host key, a refused session channel, a failed jump host) is
//! `unreachable` with its precise class in the recap and `--json` (`error.reason`); the same
//! failure on many hosts (every host behind a jump host whose key changed) is printed once,
//! naming them, while `--json` keeps one error per host.

use std::io::Write;
use std::net::TcpListener;

use crate::support::*;

/// A known_hosts line that records someone else's key for `server`: its key "changed".
fn wrong_key_line(server: &Sshd, impostor: &Sshd) -> String {
    format!("[127.0.0.1]:{} {}", server.port, impostor.host_key)
}

/// The recap row of `host`: its status and detail, spaces collapsed (`b unreachable jump host a: ...`).
fn recap_row(stdout: &str, host: &str) -> String {
    let row = stdout
        .lines()
        .skip_while(|l| !l.starts_with("host "))
        .find(|l| l.split_whitespace().next() == Some(host))
        .unwrap_or_else(|| panic!("no recap row for {host}:\n{stdout}"));
    let mut words: Vec<&str> = row.split_whitespace().collect();
    words.pop(); // the duration
    words.join(" ")
}

#[test]
fn hosts_behind_a_jump_host_whose_key_changed_get_one_error_naming_them() {
    let ws = Workspace::new();
    let a = ws.sshd(SshdOptions::default());
    let target = ws.sshd(SshdOptions::default());
    let impostor = ws.sshd(SshdOptions::default());
    std::fs::write(
        ws.path("known_hosts"),
        format!("{}\n{}\n", wrong_key_line(&a, &impostor), target.known_hosts_line()),
    )
    .unwrap();
    // b and c behind a, d behind b; `other` refuses connections: a failure of its own.
    ws.inventory(&format!(
        "[hosts.a]\naddress = \"127.0.0.1\"\nport = {a}\n\
         [hosts.b]\naddress = \"127.0.0.1\"\nport = {t}\nvia = \"a\"\n\
         [hosts.c]\naddress = \"127.0.0.1\"\nport = {t}\nvia = \"a\"\n\
         [hosts.d]\naddress = \"127.0.0.1\"\nport = {t}\nvia = \"b\"\n\
         [hosts.other]\naddress = \"127.0.0.1\"\nport = {}\n",
        free_port(),
        a = a.port,
        t = target.port,
    ));
    let run = ws.microctl(&["exec", "all", "--", "true"]);
    run.assert_code(1);
    let out = &run.stdout;
    assert_eq!(out.matches("HOST KEY CHANGED").count(), 1, "one error for the four hosts:\n{out}");
    assert!(
        out.contains(&format!(
            "error: {}:1:1: HOST KEY CHANGED for a (127.0.0.1:{})",
            ws.path("known_hosts").display(),
            a.port
        )),
        "{out}"
    );
    assert!(out.contains("\n  host: a, b, c, d (4 hosts; b, c, d via a)\n"), "{out}");
    assert_eq!(out.matches("hint: someone may be intercepting").count(), 1, "the hint once:\n{out}");
    assert!(!out.contains("cannot reach b"), "no paragraph per host behind a:\n{out}");
    // A different failure stays its host's own.
    assert!(out.contains("other | error: cannot connect to other (127.0.0.1:"), "{out}");
    // Each host keeps its recap row, with its class.
    assert_eq!(recap_row(out, "a"), "a unreachable host key changed");
    for host in ["b", "c", "d"] {
        assert_eq!(recap_row(out, host), format!("{host} unreachable jump host a: host key changed"));
    }
    assert_eq!(recap_row(out, "other"), "other unreachable connection refused");
    assert!(out.contains("5 hosts: 0 ok, 0 failed, 5 unreachable in "), "{out}");
    assert!(!impostor.log().contains("publickey") && target.accepted() == 0, "{}", target.log());

    // --json: one error per host, each classed, none left out.
    let json = ws.microctl(&["exec", "all", "--json", "--", "true"]);
    json.assert_code(1);
    crate::output::check_json_lines(&json);
    let a_err = &json.host("a")["error"];
    assert_eq!(
        (a_err["class"].as_str(), a_err["reason"].as_str()),
        (Some("host_key_changed"), Some("host_key_changed"))
    );
    for host in ["b", "c", "d"] {
        let h = json.host(host);
        assert_eq!(h["status"], "unreachable", "{h}");
        assert_eq!(h["error"]["class"], "jump_failed", "{h}");
        assert_eq!(h["error"]["hop"], "a", "{h}");
        assert_eq!(h["error"]["reason"], "host_key_changed", "{h}");
        assert!(
            h["error"]["message"].as_str().unwrap().starts_with(&format!("cannot reach {host}: jump host a")),
            "{h}"
        );
    }
    assert_eq!(json.host("other")["error"]["reason"], "refused");

    // One host behind a: its own error as before, no grouping.
    let one = ws.microctl(&["exec", "c", "--", "true"]);
    one.assert_code(1);
    assert!(one.stdout.contains("c | error: cannot reach c: jump host a failed\n"), "{}", one.stdout);
}

#[test]
fn every_failure_to_get_a_session_is_unreachable_with_its_class() {
    let ws = Workspace::new();
    let up = ws.sshd(SshdOptions::default());
    let no_sessions = ws.sshd(SshdOptions { max_sessions: 0, ..Default::default() });
    let impostor = ws.sshd(SshdOptions::default());
    std::fs::write(
        ws.path("known_hosts"),
        format!("{}\n{}\n{}\n", up.known_hosts_line(), no_sessions.known_hosts_line(), wrong_key_line(&impostor, &up)),
    )
    .unwrap();
    // Accepts TCP and never says a word: the SSH handshake waits for a banner.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    // Answers like a web server: no SSH there.
    let web = TcpListener::bind("127.0.0.1:0").unwrap();
    let web_port = web.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in web.incoming().take(2).flatten() {
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    ws.inventory(&format!(
        "[hosts.up]\naddress = \"127.0.0.1\"\nport = {}\n\
         [hosts.refused]\naddress = \"127.0.0.1\"\nport = {}\n\
         [hosts.silent]\naddress = \"127.0.0.1\"\nport = {}\nconnect_timeout = 1\n\
         [hosts.web]\naddress = \"127.0.0.1\"\nport = {web_port}\n\
         [hosts.nosession]\naddress = \"127.0.0.1\"\nport = {}\n\
         [hosts.changed]\naddress = \"127.0.0.1\"\nport = {}\n",
        up.port,
        free_port(),
        silent.local_addr().unwrap().port(),
        no_sessions.port,
        impostor.port,
    ));
    let run = ws.microctl(&["converge", "all"]);
    run.assert_code(1);
    let out = &run.stdout;
    let classes = [
        ("refused", "connection refused"),
        ("silent", "timed out"),
        ("web", "SSH handshake failed"),
        ("nosession", "session refused"),
        ("changed", "host key changed"),
    ];
    for (host, words) in classes {
        assert_eq!(recap_row(out, host), format!("{host} unreachable {words}"), "{out}");
    }
    assert!(out.contains("6 hosts: 1 ok, 0 changed, 0 failed, 5 unreachable in "), "{out}");
    // Their errors as before, one each (no two are the same failure).
    assert!(out.contains("nosession | error: cannot open a session channel on nosession\n"), "{out}");
    assert!(out.contains("silent    | error: connecting to silent (127.0.0.1:"), "{out}");

    let json = ws.microctl(&["exec", "all", "--json", "--", "true"]);
    json.assert_code(1);
    crate::output::check_json_lines(&json);
    let reasons = [
        ("refused", "refused"),
        ("silent", "timeout"),
        ("web", "handshake_failed"),
        ("nosession", "session_refused"),
        ("changed", "host_key_changed"),
    ];
    for (host, reason) in reasons {
        let h = json.host(host);
        assert_eq!((h["status"].as_str(), h["error"]["reason"].as_str()), (Some("unreachable"), Some(reason)), "{h}");
    }
    assert_eq!(json.host("up")["error"], serde_json::Value::Null);
    assert_eq!(json.json().last().unwrap()["unreachable"], 5);
    drop(silent);
}
