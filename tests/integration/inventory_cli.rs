//! Inventory errors through the real binary (exact messages, exit 2) and `microctl inventory`.

use crate::support::*;

fn write(ws: &Workspace, text: &str) -> String {
    let p = ws.path("inventory.toml");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn via_cycle_unknown_via_and_bad_toml_have_exact_messages() {
    let ws = Workspace::new();
    let p = write(
        &ws,
        "[hosts.web]\naddress = \"10.0.0.1\"\nvia = \"app\"\n[hosts.app]\naddress = \"10.0.0.2\"\nvia = \"web\"\n",
    );
    let run = ws.microctl(&["inventory"]);
    run.assert_code(2);
    assert_eq!(
        run.stderr,
        format!(
            "error: {p}:3:7: `via` cycle: web -> app -> web\n  field: hosts.web.via\n  hint: jump chains must end at a host reached directly; remove `via` from one host of the cycle\n"
        )
    );

    write(&ws, "[hosts.app]\naddress = \"10.0.0.2\"\nvia = \"wbe\"\n[hosts.web]\naddress = \"10.0.0.1\"\n");
    let run = ws.microctl(&["exec", "all", "--", "true"]);
    run.assert_code(2);
    assert_eq!(
        run.stderr,
        format!(
            "error: {p}:3:7: host `app` goes via unknown host `wbe`\n  field: hosts.app.via\n  hint: define [hosts.wbe] or set `via` to one of: app, web\n"
        )
    );

    write(&ws, "[hosts.app]\naddress = \"10.0.0.2\nport = 22\n");
    let run = ws.microctl(&["inventory"]);
    run.assert_code(2);
    assert!(
        run.stderr.starts_with(&format!("error: {p}:2:20: invalid inventory: invalid basic string, expected `\"`")),
        "{}",
        run.stderr
    );

    let missing = ws.path("nope.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_microctl"))
        .args(["-i", missing.to_str().unwrap(), "inventory"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("error: cannot read inventory {}\n  caused by: No such file", missing.display())),
        "{stderr}"
    );
}

/// A teammate's inventory with `user = "root\"\nProxyCommand ..."` would make `ssh -F` of the
/// printed config (README says to `Include` it) run a command on this machine: refused at load
/// (file:line:col, field), as is a hostile path; with a hostile `$USER` (no `user` in the
/// inventory) `ssh-config` itself refuses. No ProxyCommand or LocalCommand line is ever printed.
#[test]
fn hostile_login_values_never_reach_the_ssh_config() {
    let ws = Workspace::new();
    let marker = ws.path("pwned");
    let no_command_line = |run: &Run| {
        let bad = run.stdout.lines().find(|l| {
            let l = l.trim_start().to_ascii_lowercase();
            l.starts_with("proxycommand") || l.starts_with("localcommand")
        });
        assert_eq!(bad, None, "{}", run.stdout);
    };
    let p = write(
        &ws,
        &format!(
            "[hosts.web]\naddress = \"10.0.0.1\"\nuser = \"root\\\"\\nProxyCommand touch {}\"\n",
            marker.display()
        ),
    );
    let run = ws.microctl(&["ssh-config"]);
    no_command_line(&run);
    run.assert_code(2);
    assert_eq!(
        run.stderr,
        format!(
            "error: {p}:3:8: hosts.web.user: \"root\\\"\\nProxyCommand touch {}\" is not a valid user name: it has a quote\n  field: hosts.web.user\n  hint: write the login name as it is on the host: letters, digits, `.`, `_` and `-` (not first), at most 32 characters, as `useradd` takes it\n",
            marker.display()
        )
    );
    write(
        &ws,
        &format!(
            "[defaults]\nidentity = \"/k/id\\n  LocalCommand touch {}\"\n[hosts.web]\naddress = \"10.0.0.1\"\n",
            marker.display()
        ),
    );
    let run = ws.microctl(&["ssh-config"]);
    no_command_line(&run);
    run.assert_code(2);
    assert!(
        run.stderr
            .starts_with(&format!("error: {p}:2:12: defaults.identity: the path \"/k/id\\n  LocalCommand touch ")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("\" has a control character\n  field: defaults.identity\n"), "{}", run.stderr);

    // The user from $USER is no inventory value: ssh-config refuses to print it.
    write(&ws, "[hosts.web]\naddress = \"10.0.0.1\"\n");
    let user = format!("x\nProxyCommand touch {}", marker.display());
    let run = ws.microctl_env(&["ssh-config"], &[("USER", &user)]);
    no_command_line(&run);
    run.assert_code(2);
    assert!(
        run.stderr.starts_with(&format!(
            "error: cannot write the user of host `web` into an OpenSSH config: {user:?} is not a valid user name: it has a control character\n  host: web\n  field: hosts.web.user\n"
        )),
        "{}",
        run.stderr
    );
    // A sane $USER is printed, and OpenSSH reads the config back without a command in it.
    let run = ws.microctl_env(&["ssh-config"], &[("USER", "deploy")]);
    run.assert_code(0);
    let cfg = ws.path("ssh_config");
    std::fs::write(&cfg, &run.stdout).unwrap();
    let g = sh(&format!("ssh -G -F {} web", cfg.display()));
    assert!(g.contains("\nuser deploy\n"), "{g}");
    assert!(g.lines().all(|l| !l.starts_with("proxycommand ") && !l.starts_with("localcommand ")), "{g}");
    assert!(!marker.exists());
}

#[test]
fn inventory_shows_chains_groups_and_vars() {
    let ws = Workspace::new();
    write(
        &ws,
        "[defaults]\nuser = \"ubuntu\"\n[hosts.jenkins]\naddress = \"198.18.0.10\"\ngroups = [\"ci\"]\n\
         [hosts.web]\naddress = \"198.18.0.11\"\nvia = \"jenkins\"\ngroups = [\"web\"]\n\
         [hosts.app]\naddress = \"198.18.1.20\"\nvia = \"web\"\ngroups = [\"app\"]\nvars = { gunicorn_workers = 3 }\n\
         [groups.app]\nroles = [\"app\"]\nvars = { app_port = 5000 }\n",
    );
    let run = ws.microctl(&["inventory"]);
    run.assert_code(0);
    let rows: Vec<String> = run.stdout.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    assert!(
        rows.contains(&"app ubuntu@198.18.1.20:22 app control -> jenkins -> web -> app".to_string()),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("app vars: app_port=5000 gunicorn_workers=3"), "{}", run.stdout);
    let json: serde_json::Value = serde_json::from_str(ws.microctl(&["inventory", "--json"]).stdout.trim()).unwrap();
    assert_eq!(json["hosts"][2]["chain"], serde_json::json!(["jenkins", "web", "app"]));
    assert_eq!(json["groups"]["app"]["roles"], serde_json::json!(["app"]));
}

#[test]
fn type_errors_name_the_field_the_expected_and_the_found() {
    let ws = Workspace::new();
    let p = write(&ws, "[hosts.web]\naddress = \"10.0.0.1\"\nport = \"22\"\n");
    let run = ws.microctl(&["inventory"]);
    run.assert_code(2);
    assert_eq!(
        run.stderr,
        format!(
            "error: {p}:3:8: hosts.web.port: expected an integer, found the string \"22\"\n  field: hosts.web.port\n  hint: write the value without quotes: `port = 22`\n"
        )
    );
    let p = write(&ws, "[hosts.web]\naddress = \"10.0.0.1\"\ngroups = [\"web\", 5]\n");
    let run = ws.microctl(&["exec", "all", "--", "true"]);
    run.assert_code(2);
    assert_eq!(
        run.stderr,
        format!(
            "error: {p}:3:18: hosts.web.groups[1]: expected a string, found the integer 5\n  field: hosts.web.groups[1]\n  hint: write `groups[1]` as a string; the inventory format is described in README.md\n"
        )
    );
    let p = write(&ws, "[hosts.web]\naddress = \"10.0.0.1\"\nbecome = \"yes\"\n");
    let run = ws.microctl(&["check"]);
    run.assert_code(2);
    assert_eq!(
        run.stderr,
        format!(
            "error: {p}:3:10: hosts.web.become: expected true or false, found the string \"yes\"\n  field: hosts.web.become\n  hint: write `become` as true or false; the inventory format is described in README.md\n"
        )
    );
}

#[test]
fn duplicate_keys_and_tables_name_the_key_and_the_first_one() {
    let ws = Workspace::new();
    let p = write(&ws, "[hosts.web]\naddress = \"10.0.0.1\"\n\n[hosts.web]\naddress = \"10.0.0.2\"\n");
    let run = ws.microctl(&["inventory"]);
    run.assert_code(2);
    assert_eq!(
        run.stderr,
        format!(
            "error: {p}:4:8: duplicate table [hosts.web] (first defined on line 1)\n  field: hosts.web\n  hint: each table and each key may appear once: merge the two, or remove or rename one\n"
        )
    );
    let p = write(&ws, "[hosts.web]\naddress = \"10.0.0.1\"\nport = 22\naddress = \"10.0.0.2\"\n");
    let run = ws.microctl(&["inventory"]);
    run.assert_code(2);
    assert_eq!(
        run.stderr,
        format!(
            "error: {p}:4:1: duplicate key `address` in [hosts.web] (first set on line 2)\n  field: hosts.web.address\n  hint: each table and each key may appear once: merge the two, or remove or rename one\n"
        )
    );
}

#[test]
fn a_non_utf8_inventory_names_the_first_bad_byte() {
    let ws = Workspace::new();
    let p = ws.path("inventory.toml");
    std::fs::write(&p, b"[hosts.web]\naddress = \"10.0.0.1\"\n# J\xf6rg's host\n").unwrap();
    let run = ws.microctl(&["inventory"]);
    run.assert_code(2);
    assert_eq!(
        run.stderr,
        format!(
            "error: {}:3:4: not UTF-8: byte 0xf6 is not part of a UTF-8 character\n  hint: TOML files must be UTF-8: re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)\n",
            p.display()
        )
    );
}

#[test]
fn an_empty_inventory_says_it_has_no_hosts() {
    let ws = Workspace::new();
    let p = write(&ws, "# nothing yet\n");
    let run = ws.microctl(&["inventory"]);
    run.assert_code(0);
    assert_eq!(run.stdout, format!("{p}: no hosts (add [hosts.NAME] tables, see README.md)\n"));
    let json = ws.microctl(&["inventory", "--json"]);
    json.assert_code(0);
    assert_eq!(json.stdout, "{\"groups\":{},\"hosts\":[]}\n");
    let needs_hosts = format!(
        "error: {p}: the inventory has no hosts\n  hint: add a [hosts.NAME] table with an `address` (see README.md), or pass another inventory with -i\n"
    );
    for args in [&["exec", "all", "--", "true"][..], &["check"], &["converge"]] {
        let run = ws.microctl(args);
        run.assert_code(2);
        assert_eq!(run.stderr, needs_hosts, "{args:?}");
    }
}

#[test]
fn extra_vars_are_strings_unless_typed_and_dates_are_text() {
    let ws = Workspace::new();
    write(&ws, "[hosts.web]\naddress = \"10.0.0.1\"\nvars = { since = 1979-05-27, at = 1979-05-27T07:32:00Z }\n");
    let json: serde_json::Value = serde_json::from_str(ws.microctl(&["inventory", "--json"]).stdout.trim()).unwrap();
    assert_eq!(json["hosts"][0]["vars"], serde_json::json!({ "since": "1979-05-27", "at": "1979-05-27T07:32:00Z" }));
    let run = ws.microctl(&["check", "-e", "n=0x1F", "-e", "m:=staging"]);
    run.assert_code(2);
    assert_eq!(
        run.stderr,
        "error: -e m:=staging: `staging` is not a TOML value\n  hint: quote a string (-e 'm:=\"staging\"'), or use -e m=staging to pass it as typed\n"
    );
}

/// A group of 20,000 hosts (one table cell far wider than any format width, which made
/// `microctl inventory` panic) lists whole: no panic, no row padded to that cell's width.
#[test]
fn a_group_of_twenty_thousand_hosts_lists_without_a_panic() {
    let ws = Workspace::new();
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&format!("[hosts.h{i}]\naddress = \"127.0.0.{}\"\ngroups = [\"big\"]\n", 1 + i % 250));
    }
    write(&ws, &text);
    let started = std::time::Instant::now();
    let run = ws.microctl(&["inventory"]);
    let took = started.elapsed();
    run.assert_code(0);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(run.stdout.contains("h19999"), "the group's hosts are listed");
    // Every host row is short: padded to the short cells, not to the group's host list.
    let longest_host_row = run.stdout.lines().filter(|l| l.starts_with("h1 ")).map(str::len).max().unwrap();
    assert!(longest_host_row < 200, "host rows padded to the group cell: {longest_host_row} chars");
    eprintln!("inventory of 20,000 hosts: {took:?}, {} bytes", run.stdout.len());
}
