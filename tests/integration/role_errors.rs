//! Role and template errors through the real binary: each names the file, line and what to do.

use crate::support::*;

fn setup(ws: &Workspace, groups_roles: &str, role_toml: &str, template: &str) -> String {
    std::fs::create_dir_all(ws.path("roles/web/templates")).unwrap();
    std::fs::write(ws.path("roles/web/role.toml"), role_toml).unwrap();
    std::fs::write(ws.path("roles/web/templates/site.j2"), template).unwrap();
    std::fs::write(
        ws.path("inventory.toml"),
        format!("[hosts.w1]\naddress = \"198.18.0.11\"\ngroups = [\"web\"]\n\n[groups.web]\nroles = {groups_roles}\n"),
    )
    .unwrap();
    ws.path("roles").display().to_string()
}

fn check(ws: &Workspace, roles: &str) -> Run {
    ws.microctl(&["--roles-dir", roles, "check"])
}

const GOOD_ROLE: &str = "[[file]]\ndest = \"/etc/site.conf\"\ntemplate = \"site.j2\"\n";

#[test]
fn undefined_template_variable_names_template_line_variable_and_host() {
    let ws = Workspace::new();
    let roles = setup(&ws, "[\"web\"]", GOOD_ROLE, "server {\n  listen {{ port }};\n  root {{ docroot }};\n}\n");
    let run = check(&ws, &roles);
    run.assert_code(2);
    let template = ws.path("roles/web/templates/site.j2");
    // A host's error is a result: on stdout, through the printer, then the summary.
    assert!(
        run.stdout.starts_with(&format!(
            "error: {}:2:1: undefined variable `port`\n  host: w1\n  task: role web: file /etc/site.conf\n",
            template.display()
        )),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("\n1 host: 0 ok, 1 failed in "), "{}", run.stdout);
    let run = ws.microctl(&["--roles-dir", &roles, "check", "-e", "port=80", "-e", "docroot=/srv"]);
    run.assert_code(0);
    assert!(run.stdout.starts_with("check: 1 resource rendered from "), "{}", run.stdout);
    assert!(run.stdout.contains("\n1 host: 1 ok, 0 failed in "), "{}", run.stdout);
}

#[test]
fn undefined_variable_in_a_field_names_role_toml_line_and_field() {
    let ws = Workspace::new();
    let role = "[[directory]]\npath = \"/srv\"\n\n[[file]]\ndest = \"{{ conf_dir }}/site.conf\"\ncontent = \"x\"\n";
    let roles = setup(&ws, "[\"web\"]", role, "");
    let run = check(&ws, &roles);
    run.assert_code(2);
    let toml = ws.path("roles/web/role.toml");
    assert!(
        run.stdout.starts_with(&format!(
            "error: {}:4:1: cannot render `file.dest`: undefined variable `conf_dir`\n  host: w1\n  field: file.dest\n",
            toml.display()
        )),
        "{}",
        run.stdout
    );
}

#[test]
fn unknown_role_names_the_inventory_line_and_lists_roles() {
    let ws = Workspace::new();
    let roles = setup(&ws, "[\"web\", \"ngnix\"]", GOOD_ROLE, "x\n");
    let run = check(&ws, &roles);
    run.assert_code(2);
    let inv = ws.path("inventory.toml");
    assert_eq!(
        run.stderr,
        format!(
            "error: {}:5:1: unknown role `ngnix`: {roles}/ngnix/role.toml does not exist\n  field: groups.web.roles\n  hint: roles in {roles}: web\n",
            inv.display()
        )
    );
}

#[test]
fn bad_role_toml_names_file_line_and_column() {
    let ws = Workspace::new();
    let roles = setup(&ws, "[\"web\"]", "[[file]]\ndest = \"/etc/x\"\ntemplat = \"site.j2\"\n", "x\n");
    let run = check(&ws, &roles);
    run.assert_code(2);
    let toml = ws.path("roles/web/role.toml");
    assert!(
        run.stderr.starts_with(&format!("error: {}:3:1: file[0]: unknown field `templat`", toml.display())),
        "{}",
        run.stderr
    );

    // A wrong type names the path, the expected and the found.
    let roles = setup(&ws, "[\"web\"]", "[[file]]\ndest = \"/etc/x\"\ncontent = \"x\"\nsensitive = \"yes\"\n", "x\n");
    let run = check(&ws, &roles);
    assert_eq!(
        run.stderr,
        format!(
            "error: {}:4:13: file[0].sensitive: expected true or false, found the string \"yes\"\n  field: file[0].sensitive\n  hint: write `sensitive` as true or false; the role format is described in roles/README.md\n",
            toml.display()
        )
    );

    let roles = setup(&ws, "[\"web\"]", "[[file]]\ndest = \"etc/x\"\ncontent = \"x\"\nnotify = [\"nope\"]\n", "x\n");
    let run = check(&ws, &roles);
    assert!(run.stderr.contains("1:1: `file.dest` must be an absolute path, got `etc/x`"), "{}", run.stderr);

    let roles = setup(&ws, "[\"web\"]", "[[file]]\ndest = \"/etc/x\"\ncontent = \"x\"\nnotify = [\"nope\"]\n", "x\n");
    let run = check(&ws, &roles);
    assert!(run.stderr.contains("1:1: `notify` names unknown handler `nope`"), "{}", run.stderr);

    let roles = setup(&ws, "[\"web\"]", "[[command]]\nname = \"migrate\"\nrun = \"true\"\n", "x\n");
    let run = check(&ws, &roles);
    assert!(run.stderr.contains("command `migrate` has no guard"), "{}", run.stderr);
}

#[test]
fn names_and_paths_that_escape_are_refused_at_load_with_file_and_line() {
    let ws = Workspace::new();
    let toml = ws.path("roles/web/role.toml");
    let repo = "[[file]]\ndest = \"/etc/x\"\ncontent = \"x\"\n\n[[apt_repository]]\nname = \"../../cron.d/evil\"\nurl = \"https://example.invalid\"\nsuite = \"stable\"\nkey = \"k.gpg\"\n";
    let roles = setup(&ws, "[\"web\"]", repo, "x\n");
    let run = check(&ws, &roles);
    run.assert_code(2);
    assert!(
        run.stderr.starts_with(&format!(
            "error: {}:5:1: `apt_repository.name` must be a plain file name (letters, digits, `_`, `-`, `.`), got `../../cron.d/evil`\n  field: apt_repository.name\n",
            toml.display()
        )),
        "{}",
        run.stderr
    );
    for (line, role) in [
        (1, "[[file]]\ndest = \"/etc/nginx/../cron.d/x\"\ncontent = \"x\"\n"),
        (1, "[[directory]]\npath = \"/srv//app\"\n"),
        (4, "[[file]]\ndest = \"/etc/x\"\ncontent = \"x\"\n[[absent]]\npath = \"/etc/./x\"\n"),
        (1, "[[command]]\nname = \"m\"\nrun = \"true\"\ncreates = \"/var/../x\"\n"),
        (1, "[[file]]\ndest = \"/etc/x\"\nsrc = \"../../etc/shadow\"\n"),
    ] {
        let roles = setup(&ws, "[\"web\"]", role, "x\n");
        let run = check(&ws, &roles);
        run.assert_code(2);
        assert!(
            run.stderr.starts_with(&format!("error: {}:{line}:1: `", toml.display()))
                && (run.stderr.contains("must be a normalised absolute path")
                    || run.stderr.contains("must name a file inside files/")),
            "{role}: {}",
            run.stderr
        );
    }
    // A templated path is checked once rendered, naming the host too.
    let roles = setup(&ws, "[\"web\"]", "[[file]]\ndest = \"/etc/{{ sub }}/x\"\ncontent = \"x\"\n", "x\n");
    let run = ws.microctl(&["--roles-dir", &roles, "check", "-e", "sub=../cron.d"]);
    run.assert_code(2);
    assert!(
        run.stdout
            .starts_with(&format!("error: {}:1:1: `file.dest` must be a normalised absolute path", toml.display()))
            && run.stdout.contains("host: w1"),
        "{}",
        run.stdout
    );
}

/// `mode = 644` (a TOML integer) is the decimal 644, i.e. 0o1204 (`--w----r-T`): Ansible's
/// classic pitfall. `check` refuses it (exit 2) naming role.toml, line, column and field, with
/// the string that was meant; nothing is rendered or applied.
#[test]
fn an_integer_mode_is_refused_with_the_string_it_meant() {
    let ws = Workspace::new();
    let role = "[[file]]\ndest = \"/etc/site.conf\"\ncontent = \"x\"\nmode = 644\n";
    let roles = setup(&ws, "[\"web\"]", role, "");
    let run = check(&ws, &roles);
    run.assert_code(2);
    let toml = ws.path("roles/web/role.toml");
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(
        all.contains(&format!(
            "error: {}:1:1: `mode` is the TOML integer 644, i.e. octal 1204: a mode must be a string of octal digits\n  field: file.mode\n  hint: write it as a string: mode = \"0644\" (or mode = \"1204\" if you wrote 0o1204)\n",
            toml.display()
        )),
        "{all}"
    );
    std::fs::write(ws.path("roles/web/role.toml"), role.replace("644", "\"0644\"")).unwrap();
    check(&ws, &roles).assert_code(0);
}

/// A `validate` whose `%s` stands inside single quotes would hand the validator the text
/// `"$1"`, not the staged file: `check` refuses it, literal or templated.
#[test]
fn a_validate_placeholder_in_single_quotes_is_refused() {
    let ws = Workspace::new();
    for validate in ["grep -q x '%s'", "grep -q {{ 'x' }} '%s'"] {
        let role = format!("[[file]]\ndest = \"/etc/site.conf\"\ncontent = \"x\"\nvalidate = \"{validate}\"\n");
        let roles = setup(&ws, "[\"web\"]", &role, "");
        let run = check(&ws, &roles);
        run.assert_code(2);
        let all = format!("{}{}", run.stdout, run.stderr);
        assert!(
            all.contains("`validate` has %s inside single quotes, where it is never replaced by the staged file"),
            "{all}"
        );
        assert!(all.contains("field: file.validate"), "{all}");
    }
}

/// A group named in a host's `groups` with no `[groups.X]` table and no roles, spelled almost
/// like one that has a table, is a typo until shown otherwise: `check` warns "did you mean".
#[test]
fn a_group_typo_gets_did_you_mean() {
    let ws = Workspace::new();
    let roles = setup(&ws, "[\"web\"]", GOOD_ROLE, "x\n");
    let inv = std::fs::read_to_string(ws.path("inventory.toml")).unwrap();
    std::fs::write(
        ws.path("inventory.toml"),
        format!("{inv}\n[hosts.w2]\naddress = \"198.18.0.12\"\ngroups = [\"wbe\", \"backup\"]\n"),
    )
    .unwrap();
    let run = check(&ws, &roles);
    run.assert_code(0);
    assert!(
        run.stderr.contains("group `wbe` has no [groups.wbe] table and no roles: did you mean `web`?"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("`backup`"), "a group far from any other is no typo: {}", run.stderr);
}

/// A handler whose action is mistyped is one error, on the handler: the file that notifies it
/// gets no second, false "notify names unknown handler".
#[test]
fn a_handler_action_typo_is_one_error_not_two() {
    let ws = Workspace::new();
    let role = "[[file]]\ndest = \"/etc/site.conf\"\ncontent = \"x\"\nnotify = [\"reload site\"]\n\n\
                [[handler]]\nname = \"reload site\"\nservice = \"nginx\"\naction = \"relaod\"\n";
    let roles = setup(&ws, "[\"web\"]", role, "");
    let run = check(&ws, &roles);
    run.assert_code(2);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("handler `reload site`: unknown action `relaod`"), "{all}");
    assert!(!all.contains("unknown handler"), "{all}");
}

/// `-e NAME=VALUE` that nothing reads changes nothing: a warning names it and the nearest name
/// read; names that are read (at top level, as `host.vars.NAME`, in a role field) are not warned.
#[test]
fn an_extra_var_nothing_reads_is_warned() {
    let ws = Workspace::new();
    let role = "[defaults]\nworkers = 2\n\n[[file]]\ndest = \"{{ conf_dir }}/site.conf\"\ntemplate = \"site.j2\"\n";
    let roles = setup(&ws, "[\"web\"]", role, "workers={{ workers }} port={{ host.vars.port }}\n");
    let run = ws.microctl(&[
        "--roles-dir",
        &roles,
        "check",
        "-e",
        "conf_dir=/etc",
        "-e",
        "port=80",
        "-e",
        "wrokers=4",
        "-e",
        "zzz_unrelated=1",
    ]);
    run.assert_code(0);
    assert!(
        run.stderr.contains("-e wrokers: no template or role field reads `wrokers`, so it changes nothing"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("did you mean `-e workers=...`?"), "{}", run.stderr);
    assert!(run.stderr.contains("-e zzz_unrelated: no template"), "{}", run.stderr);
    for read in ["conf_dir", "port"] {
        assert!(!run.stderr.contains(&format!("-e {read}:")), "{read} is read: {}", run.stderr);
    }
    let quiet = ws.microctl(&["--roles-dir", &roles, "check", "-e", "conf_dir=/etc", "-e", "port=80"]);
    quiet.assert_code(0);
    assert!(!quiet.stderr.contains("reads"), "{}", quiet.stderr);
}
