//! `microctl check` reports a role's mistake once, naming the hosts it hit, not once per host.

use crate::support::*;

#[test]
fn the_same_role_error_on_many_hosts_is_shown_once_with_the_hosts() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.path("roles/web")).unwrap();
    std::fs::write(ws.path("roles/web/role.toml"), "[[service]]\nname = \"nginx\"\nstate = \"runing\"\n").unwrap();
    let hosts: String = (1..=12)
        .map(|i| format!("[hosts.w{i}]\naddress = \"198.18.0.{i}\"\ngroups = [\"web\"]\nvars = {{ n = {i} }}\n"))
        .collect();
    std::fs::write(ws.path("inventory.toml"), format!("{hosts}[groups.web]\nroles = [\"web\"]\n")).unwrap();
    let roles = ws.path("roles").display().to_string();
    let run = ws.microctl(&["--roles-dir", &roles, "check"]);
    run.assert_code(2);
    assert_eq!(
        run.stderr,
        format!(
            "error: {roles}/web/role.toml:1:1: unknown service state `runing`\n  \
             host: w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, ... (12 hosts)\n  field: service.state\n  \
             hint: use \"started\" or \"stopped\"; restarts belong in handlers\n\
             check: 12 of 12 hosts failed to render\n"
        )
    );
}

/// A template renders TOML dates as their text, wherever the var comes from: the role's
/// defaults, the inventory, or `-e NAME:=VALUE`. (A path that is not absolute makes `check`
/// print what the template rendered.)
#[test]
fn dates_render_as_their_text() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.path("roles/web")).unwrap();
    std::fs::write(
        ws.path("roles/web/role.toml"),
        "[defaults]\nsince = 1979-05-27\n\n[[file]]\ndest = \"{{ since }}\"\ncontent = \"x\"\n",
    )
    .unwrap();
    let roles = ws.path("roles").display().to_string();
    let got = |inventory_vars: &str, extra: &[&str]| {
        std::fs::write(
            ws.path("inventory.toml"),
            format!("[hosts.w1]\naddress = \"198.18.0.1\"\ngroups = [\"web\"]\n{inventory_vars}[groups.web]\nroles = [\"web\"]\n"),
        )
        .unwrap();
        let mut args = vec!["--roles-dir", &roles, "check"];
        args.extend(extra);
        let run = ws.microctl(&args);
        run.assert_code(2);
        let line = run.stderr.lines().next().unwrap().to_string();
        line.split("got ").nth(1).unwrap_or_else(|| panic!("{}", run.stderr)).to_string()
    };
    assert_eq!(got("", &[]), "`1979-05-27`");
    assert_eq!(got("vars = { since = 2026-11-30T17:35:00Z }\n", &[]), "`2026-11-30T17:35:00Z`");
    assert_eq!(got("", &["-e", "since:=07:32:00"]), "`07:32:00`");
    assert_eq!(got("", &["-e", "since=1979-05-27"]), "`1979-05-27`");
}
