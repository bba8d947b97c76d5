//! Where roles come from: `--roles-dir`, else `MICROCTL_ROLES`, else `roles/` next to the
//! inventory, else `./roles`; commands that need no roles never read them.

use std::path::Path;

use crate::support::*;

const ROLE: &str = "[[file]]\ndest = \"/etc/site.conf\"\ncontent = \"hello\"\n";

fn role(dir: &Path, text: &str) {
    std::fs::create_dir_all(dir.join("web")).unwrap();
    std::fs::write(dir.join("web/role.toml"), text).unwrap();
}

fn rendered_from(run: &Run) -> String {
    run.assert_code(0);
    let rest = run.stdout.split(" rendered from ").nth(1).unwrap_or_else(|| panic!("{}", run.stdout));
    rest.split(" (").next().unwrap().to_string()
}

#[test]
fn the_inventory_folder_wins_over_the_current_folder_and_flags_win_over_both() {
    let ws = Workspace::new();
    ws.inventory("[hosts.w1]\naddress = \"198.18.0.11\"\ngroups = [\"web\"]\n[groups.web]\nroles = [\"web\"]\n");
    let cwd = ws.path("ci-workspace");
    role(&cwd.join("roles"), "this is [ not a role");
    role(&ws.path("roles"), ROLE);
    role(&ws.path("env-roles"), ROLE);
    role(&ws.path("flag-roles"), ROLE);
    let beside = ws.path("roles").display().to_string();
    let env = ws.path("env-roles").display().to_string();
    let flag = ws.path("flag-roles").display().to_string();

    // `roles/` next to the inventory, although ./roles exists (and is broken).
    assert_eq!(rendered_from(&ws.microctl_in(&cwd, &["check"], &[])), beside);
    // MICROCTL_ROLES over the inventory's folder; --roles-dir over both.
    assert_eq!(rendered_from(&ws.microctl_in(&cwd, &["check"], &[("MICROCTL_ROLES", &env)])), env);
    let run = ws.microctl_in(&cwd, &["--roles-dir", &flag, "check"], &[("MICROCTL_ROLES", &env)]);
    assert_eq!(rendered_from(&run), flag);
    // Without roles next to the inventory, ./roles is used: here, the broken one.
    std::fs::remove_dir_all(ws.path("roles")).unwrap();
    let run = ws.microctl_in(&cwd, &["check"], &[]);
    run.assert_code(2);
    assert!(run.stderr.starts_with("error: roles/web/role.toml:1:"), "{}", run.stderr);
}

#[test]
fn commands_that_need_no_roles_do_not_read_them() {
    let ws = Workspace::new();
    let sshd = ws.sshd(SshdOptions::default());
    ws.known_hosts(&[&sshd]);
    ws.inventory(&format!(
        "[hosts.w1]\naddress = \"127.0.0.1\"\nport = {}\ngroups = [\"web\"]\nvars = {{ app_port = 5000 }}\n[groups.web]\nroles = [\"web\"]\n\
         [deploy.site]\nhosts = \"w1\"\nsource = \"{}\"\n",
        sshd.port,
        ws.path("src").display()
    ));
    // Every role the inventory names is broken: only commands that render would notice.
    role(&ws.path("roles"), "this is [ not a role");
    let roles = ws.path("roles").display().to_string();
    let broken = [("MICROCTL_ROLES", roles.as_str())];
    ws.microctl_env(&["check"], &broken).assert_code(2);
    ws.microctl_env(&["inventory"], &broken).assert_code(0);
    ws.microctl_env(&["exec", "w1", "--", "true"], &broken).assert_code(0);
    ws.microctl_env(&["ssh-config"], &broken).assert_code(0);
    ws.microctl_env(&["ssh", "w1", "--", "true"], &broken).assert_code(0);
    // deploy uses roles only for their defaults: no roles folder at all is fine.
    std::fs::remove_dir_all(ws.path("roles")).unwrap();
    let run = ws.microctl_in(&ws.path("home"), &["deploy", "site", "--list"], &[]);
    run.assert_code(0);
}
