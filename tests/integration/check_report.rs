//! A role's mistake is reported once, whatever the number of hosts using the role: found when
//! the roles load (before any host is rendered or contacted) by `check` and `converge` alike.
//! What depends on a host's values (an undefined variable) fails per host, each distinct error
//! printed once naming the hosts it hit. `check` prints through the one printer.

use crate::converge::Fleet;
use crate::support::*;

const BAD_STATE: &str =
    "[[file]]\ndest = \"/etc/x\"\ncontent = \"x\"\n\n[[service]]\nname = \"nginx\"\nstate = \"runing\"\n";

/// `1 host: 0 ok, 1 failed in 0.01s` with the time blanked.
fn blank_time(text: &str) -> String {
    let re = |line: &str| match line.rsplit_once(" in ") {
        Some((head, t)) if t.ends_with('s') && t[..t.len() - 1].parse::<f64>().is_ok() => format!("{head} in T"),
        _ => line.to_string(),
    };
    text.lines().map(|l| re(l) + "\n").collect()
}

#[test]
fn one_role_error_with_three_hosts_is_printed_once_by_check_converge_and_deploy_before_any_contact() {
    let fleet = Fleet::new(3, BAD_STATE);
    let roles = fleet.ws.path("roles");
    let roles = roles.to_str().unwrap();
    // deploy reads the roles (their defaults) too.
    let src = fleet.ws.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let inv = fleet.ws.path("inventory.toml");
    let text = std::fs::read_to_string(&inv).unwrap();
    std::fs::write(&inv, format!("{text}[deploy.site]\nhosts = \"site\"\nsource = \"{}\"\n", src.display())).unwrap();
    let expected = format!(
        "error: {roles}/site/role.toml:5:1: unknown service state `runing`\n  \
         field: service.state\n  \
         hint: use \"started\" or \"stopped\"; restarts belong in handlers\n"
    );
    for args in [
        &["check"][..],
        &["check", "--json"],
        &["converge"],
        &["converge", "--json"],
        &["converge", "--check"],
        &["-q", "converge"],
        &["deploy", "site"],
    ] {
        let mut all = vec!["--roles-dir", roles];
        all.extend_from_slice(args);
        let run = fleet.ws.microctl(&all);
        run.assert_code(2);
        assert_eq!(run.stderr, expected, "{args:?}");
        if args.contains(&"--json") {
            // JSON Lines end with the summary whatever happened: the error, then the summary.
            let kinds: Vec<String> = run.json().iter().map(|v| v["type"].as_str().unwrap().to_string()).collect();
            assert_eq!(kinds, ["error", "summary"], "{args:?}: {}", run.stdout);
        } else {
            assert_eq!(run.stdout, "", "{args:?}: nothing rendered, no host reported");
        }
    }
    for i in 0..3 {
        assert!(!fleet.root(i).join("state").exists(), "host h{i} was contacted");
    }
}

#[test]
fn every_role_error_is_reported_each_once_with_line_column_and_field() {
    let role = "[[file]]\ndest = \"/etc/x\"\nsrc = \"missing.txt\"\nmode = \"0999\"\n\n[[command]]\nname = \"m\"\nrun = \"if true; then echo\"\n\n[[handler]]\nname = \"h\"\nservice = \"x\"\naction = \"bounce\"\n\n[[directory]]\npath = \"/srv/{{ oops\"\nowner = \"root:root\"\nnotify = [\"nope\"]\n";
    let fleet = Fleet::new(2, role);
    let roles = fleet.ws.path("roles");
    let run = fleet.ws.microctl(&["--roles-dir", roles.to_str().unwrap(), "check"]);
    run.assert_code(2);
    let toml = roles.join("site/role.toml");
    let firsts: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    let t = toml.display();
    assert_eq!(
        firsts,
        [
            format!("error: {t}:1:1: invalid mode `0999`"),
            format!("error: {t}:1:1: cannot read static file {}", fleet.ws.path("files/missing.txt").display()),
            format!("error: {t}:6:1: command `m` has no guard"),
            format!("error: {t}:6:1: `command.run` is not valid sh: {}", sh_n("if true; then echo")),
            format!("error: {t}:10:1: handler `h`: unknown action `bounce`"),
            format!(
                "error: {t}:15:1: `directory.path` is not a valid template: syntax error: unexpected end of input, expected end of variable block"
            ),
            format!("error: {t}:15:1: `directory.owner` must be a user or group name or a numeric id, got `root:root`"),
            format!("error: {t}:15:1: `notify` names unknown handler `nope`"),
        ],
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

/// What `sh -n` says about `text` (its wording is the shell's).
fn sh_n(text: &str) -> String {
    let out = std::process::Command::new("sh").args(["-n", "-c", text]).output().unwrap();
    String::from_utf8_lossy(&out.stderr).trim().trim_start_matches("sh: ").to_string()
}

#[test]
fn an_undefined_host_var_fails_per_host_named_and_grouped() {
    // `tier` is set on h1 only: h0 and h2 fail, one error naming both; h1 renders.
    let role = "[[file]]\ndest = \"{{ root }}/etc/tier\"\ntemplate = \"tier.j2\"\n";
    let fleet = Fleet::new(3, role);
    std::fs::write(fleet.ws.path("roles/site/templates/tier.j2"), "tier {{ tier }}\n").unwrap();
    let inv = fleet.ws.path("inventory.toml");
    let text = std::fs::read_to_string(&inv).unwrap();
    let (before, h1) = text.split_once("[hosts.h1]\n").unwrap();
    let h1 = h1.replacen("vars = { root", "vars = { tier = \"gold\", root", 1);
    std::fs::write(&inv, format!("{before}[hosts.h1]\n{h1}")).unwrap();
    let roles = fleet.ws.path("roles");
    let roles = roles.to_str().unwrap();
    let template = fleet.ws.path("roles/site/templates/tier.j2");
    let expected = format!(
        "error: {}:1:1: undefined variable `tier`\n  host: h0, h2 (2 hosts)\n  task: role site: file {{{{ root }}}}/etc/tier\n  \
         hint: define the variable in the inventory (host, group or defaults vars), in the role's [defaults], or with -e\n",
        template.display()
    );
    let check = fleet.ws.microctl(&["--roles-dir", roles, "check"]);
    check.assert_code(2);
    assert_eq!(blank_time(&check.stdout), format!("{expected}3 hosts: 1 ok, 2 failed in T\n"));
    let converge = fleet.ws.microctl(&["--roles-dir", roles, "converge"]);
    converge.assert_code(2);
    assert!(converge.stdout.starts_with(&expected), "{}", converge.stdout);
    assert_eq!(converge.stdout.matches("undefined variable").count(), 1, "{}", converge.stdout);
    assert!(
        blank_time(&converge.stdout).ends_with("2 hosts: 0 ok, 0 changed, 2 failed, 0 unreachable in T\n"),
        "{}",
        converge.stdout
    );
    for i in 0..3 {
        assert!(!fleet.root(i).join("state").exists(), "host h{i} was contacted");
    }
    let ok = fleet.ws.microctl(&["--roles-dir", roles, "check", "-e", "tier=silver"]);
    ok.assert_code(0);
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
        let line = run.stdout.lines().next().unwrap().to_string();
        line.split("got ").nth(1).unwrap_or_else(|| panic!("{}", run.stdout)).to_string()
    };
    assert_eq!(got("", &[]), "`1979-05-27`");
    assert_eq!(got("vars = { since = 2026-11-30T17:35:00Z }\n", &[]), "`2026-11-30T17:35:00Z`");
    assert_eq!(got("", &["-e", "since:=07:32:00"]), "`07:32:00`");
    assert_eq!(got("", &["-e", "since=1979-05-27"]), "`1979-05-27`");
}
