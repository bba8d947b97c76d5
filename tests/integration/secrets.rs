//! Secrets end to end: `secrets set` encrypts to the inventory's key, vars refer to secrets
//! and environment variables, converge writes the file they render with its content and mode,
//! and the value appears in none of stdout, stderr, `--diff`, `--json`, errors, `inventory`
//! or `check` output (shown as `[secret NAME]` where it would have been), nor in the forms
//! filters give it; a file that read one is sensitive and, without `mode`, 0600; and a snippet
//! holding one is on no command line of the host (a `nobody` process scans them all).

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::*;

const ROLE: &str = r#"
[[file]]
dest = "{{ root }}/etc/app.env"
template = "app.env.j2"
mode = "0640"
notify = ["use the secret"]

[[handler]]
name = "use the secret"
run = "{% if fail_handler | default(false) %}cat {{ root }}/etc/app.env >&2; : {{ ci_token }}; exit 3{% else %}true{% endif %}"
"#;

const VALUE: &str = "s3cr3t $HOME \"dq\" 'sq' `tick` value";
const TOKEN: &str = "ci-token-0123456789abcdef";

fn with_stdin(ws: &Workspace, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_microctl"))
        .args(["-i", ws.path("inventory.toml").to_str().unwrap()])
        .args(args)
        .env("HOME", ws.path("home"))
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("MICROCTL_SECRETS_IDENTITY")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    Run::from(child.wait_with_output().unwrap())
}

fn assert_no_secret(what: &str, run: &Run) {
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        for secret in [VALUE, TOKEN, "s3cr3t"] {
            assert!(!text.contains(secret), "{what}: {stream} shows the secret:\n{text}");
        }
    }
}

/// A workspace with one host `h0` (role `app`, real sshd on loopback) whose `root` var is
/// `WS/h0`, and `vars` (inline TOML table entries) besides; returns its sshd (kept running)
/// and that root.
fn app_host(vars: &str) -> (Workspace, Sshd, std::path::PathBuf) {
    let ws = Workspace::new();
    let host = ws.sshd(SshdOptions::default());
    ws.known_hosts(&[&host]);
    let root = ws.path("h0");
    ws.inventory(&format!(
        "[hosts.h0]\naddress = \"127.0.0.1\"\nport = {}\ngroups = [\"app\"]\nstate_dir = \"{r}/state\"\n\
         vars = {{ root = \"{r}\", {vars} }}\n[groups.app]\nroles = [\"app\"]\n",
        host.port,
        r = root.display()
    ));
    (ws, host, root)
}

#[test]
fn a_secret_reaches_its_file_and_no_output() {
    let (ws, _host, root) = app_host("secret_key = { secret = \"secret_key\" }, ci_token = { env = \"CI_TOKEN\" }");
    std::fs::create_dir_all(ws.path("roles/app/templates")).unwrap();
    std::fs::write(ws.path("roles/app/role.toml"), ROLE).unwrap();
    std::fs::write(ws.path("roles/app/templates/app.env.j2"), "SECRET_KEY={{ secret_key }}\nTOKEN={{ ci_token }}\n")
        .unwrap();
    let roles = ws.path("roles");
    let roles = roles.to_str().unwrap();

    // Before any: `secrets list` says so, exit 0, stdout empty.
    let none = ws.microctl(&["secrets", "list"]);
    none.assert_code(0);
    assert_eq!(none.stdout, "");
    assert!(none.stderr.starts_with("no secrets yet ("), "{}", none.stderr);
    // `secrets set` creates secrets.toml encrypted to the inventory's identity; no plain text.
    let set = with_stdin(&ws, &["secrets", "set", "secret_key"], &format!("{VALUE}\n"));
    set.assert_code(0);
    assert_no_secret("secrets set", &set);
    let file = std::fs::read_to_string(ws.path("secrets.toml")).unwrap();
    assert!(!file.contains("s3cr3t") && file.contains(ws.key.public_line.split_whitespace().nth(1).unwrap()), "{file}");
    let show = ws.microctl(&["secrets", "show", "secret_key"]);
    show.assert_code(0);
    assert_eq!(show.stdout, VALUE);
    assert_eq!(ws.microctl(&["secrets", "list"]).stdout, "secret_key\n");

    let env = [("CI_TOKEN", TOKEN)];
    // A missing environment variable is named, before anything is sent.
    let missing = ws.microctl(&["--roles-dir", roles, "converge", "--json"]);
    missing.assert_code(2);
    assert!(
        missing.stderr.contains("refers to environment variable `CI_TOKEN`, which is not set"),
        "{}",
        missing.stderr
    );

    let check = ws.microctl_env(&["--roles-dir", roles, "converge", "--check", "--diff", "--json"], &env);
    check.assert_code(3);
    assert_no_secret("converge --check --diff --json", &check);
    let text_check = ws.microctl_env(&["--roles-dir", roles, "converge", "--check", "--diff"], &env);
    text_check.assert_code(3);
    assert_no_secret("converge --check --diff", &text_check);
    assert!(text_check.stdout.contains("(sensitive: content not shown)"), "{}", text_check.stdout);

    // The handler prints the file to stderr and fails: the error shows the values redacted.
    let first =
        ws.microctl_env(&["--roles-dir", roles, "converge", "--diff", "--json", "-e", "fail_handler=true"], &env);
    first.assert_code(1);
    assert_no_secret("converge --diff --json (failing handler)", &first);
    assert!(first.stdout.contains("SECRET_KEY=[secret secret_key]\\nTOKEN=[secret CI_TOKEN]"), "{}", first.stdout);
    let env_file = root.join("etc/app.env");
    assert_eq!(std::fs::read_to_string(&env_file).unwrap(), format!("SECRET_KEY={VALUE}\nTOKEN={TOKEN}\n"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o7777, 0o640);

    let text_fail = ws.microctl_env(&["--roles-dir", roles, "converge", "--diff", "-e", "fail_handler=true"], &env);
    assert_no_secret("converge --diff (failing handler)", &text_fail);
    assert!(text_fail.stdout.contains("SECRET_KEY=[secret secret_key]"), "{}", text_fail.stdout);
    // Every output mode of the printer: -vv lines, -v JSON Lines with progress events, a terminal.
    let modes: [(&str, Vec<&str>); 3] = [
        ("-vv", vec!["-vv", "--roles-dir", roles, "converge", "--diff", "-e", "fail_handler=true"]),
        ("-v --json", vec!["-v", "--roles-dir", roles, "converge", "--diff", "--json", "-e", "fail_handler=true"]),
        ("-q", vec!["-q", "--roles-dir", roles, "converge", "--diff", "-e", "fail_handler=true"]),
    ];
    for (what, args) in modes {
        let run = ws.microctl_env(&args, &env);
        run.assert_code(1);
        assert_no_secret(what, &run);
        assert!(run.stdout.contains("[secret secret_key]"), "{what}: {}", run.stdout);
        if what == "-vv" {
            // The script summary names the handler's command, the token in it redacted.
            let want = "h0 |   handler use the secret when notified: `cat ";
            assert!(run.stderr.contains(want), "{}", run.stderr);
            assert!(run.stderr.contains("/etc/app.env >&2; : [secret CI_TOKEN]; exit 3`\n"), "{}", run.stderr);
        }
    }
    let tty = ws.microctl_tty(
        &["-v", "--roles-dir", roles, "converge", "--diff", "-e", "fail_handler=true"],
        "",
        &[("CI_TOKEN", TOKEN)],
    );
    tty.assert_code(1);
    assert_no_secret("a terminal", &tty);
    assert!(tty.stdout.contains("SECRET_KEY=[secret secret_key]"), "{}", tty.stdout);

    let second = ws.microctl_env(&["--roles-dir", roles, "converge", "--diff"], &env);
    second.assert_code(0);
    assert_no_secret("converge --diff", &second);

    for args in [vec!["inventory"], vec!["inventory", "--json"], vec!["--roles-dir", roles, "check"]] {
        let run = ws.microctl_env(&args, &env);
        run.assert_code(0);
        assert_no_secret(&args.join(" "), &run);
    }
}

#[test]
fn edit_recipients_and_rekey_for_a_second_teammate() {
    let ws = Workspace::new();
    ws.inventory("[hosts.h]\naddress = \"127.0.0.1\"\n");
    with_stdin(&ws, &["secrets", "set", "a"], "alpha-value\n").assert_code(0);
    with_stdin(&ws, &["secrets", "set", "b"], "bravo-value").assert_code(0);
    let before = std::fs::read_to_string(ws.path("secrets.toml")).unwrap();
    let armored_b = |text: &str| text.split("b = \"\"\"").nth(1).unwrap().split("\"\"\"").next().unwrap().to_string();

    // $EDITOR changes a; b's ciphertext stays byte for byte (reviews see only a changed).
    let edit = ws.microctl_env(&["secrets", "edit"], &[("EDITOR", "sed -i s/alpha-value/alpha-2/")]);
    edit.assert_code(0);
    assert_no_secret("secrets edit", &edit);
    let after = std::fs::read_to_string(ws.path("secrets.toml")).unwrap();
    assert_eq!(armored_b(&before), armored_b(&after));
    assert_eq!(ws.microctl(&["secrets", "show", "a"]).stdout, "alpha-2");
    assert_eq!(ws.microctl(&["secrets", "show", "b"]).stdout, "bravo-value");
    // Nothing left behind in /dev/shm (where the decrypted copy was edited).
    let left = std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("microctl-secrets-"))
        .count();
    assert_eq!(left, 0);

    // Bob cannot read until he is a recipient and the file is rekeyed.
    let bob = Key::generate(ws.dir.path(), "bob", "rsa", "");
    let as_bob = [("MICROCTL_SECRETS_IDENTITY", bob.private.to_str().unwrap())];
    let bob_show = |ws: &Workspace| {
        let inv = ws.path("inventory.toml");
        // Bob's inventory has no identity of ours: only his key decrypts.
        std::fs::write(&inv, "[hosts.h]\naddress = \"127.0.0.1\"\n").unwrap();
        ws.microctl_env(&["secrets", "show", "a"], &as_bob)
    };
    let refused = bob_show(&ws);
    refused.assert_code(2);
    assert!(refused.stderr.contains("cannot decrypt secret `a`"), "{}", refused.stderr);
    let text = std::fs::read_to_string(ws.path("secrets.toml")).unwrap();
    let text = text.replacen("recipients = [\n", &format!("recipients = [\n  \"{}\",\n", bob.public_line), 1);
    std::fs::write(ws.path("secrets.toml"), text).unwrap();
    ws.inventory("[hosts.h]\naddress = \"127.0.0.1\"\n");
    // `check` sees, offline, that the values are not encrypted to bob yet.
    let check = ws.microctl(&["check"]);
    assert!(check.stderr.contains("secrets not encrypted to exactly the current recipients: a, b"), "{}", check.stderr);
    let recipients = ws.microctl(&["secrets", "recipients"]);
    assert!(
        recipients.stdout.starts_with("ssh-rsa SHA256:") && recipients.stdout.contains("test-bob"),
        "{}",
        recipients.stdout
    );
    ws.microctl(&["secrets", "rekey"]).assert_code(0);
    assert!(!ws.microctl(&["check"]).stderr.contains("not encrypted to exactly"));
    let shown = bob_show(&ws);
    shown.assert_code(0);
    assert_eq!(shown.stdout, "alpha-2");
}

/// `check` reads `{ env = ... }` values for real (only secrets become stand-ins): an error
/// quoting the rendered value (a template naming a missing include, a snippet) shows it
/// redacted, never the CI token itself.
#[test]
fn check_never_prints_an_env_value_an_error_quotes() {
    let ws = Workspace::new();
    ws.inventory(
        "[hosts.h0]\naddress = \"127.0.0.1\"\ngroups = [\"app\"]\n\
         vars = { ci_token = { env = \"CI_TOKEN\" } }\n[groups.app]\nroles = [\"app\"]\n",
    );
    std::fs::create_dir_all(ws.path("roles/app/templates")).unwrap();
    std::fs::write(ws.path("roles/app/role.toml"), "[[file]]\ndest = \"/etc/app.env\"\ntemplate = \"app.env.j2\"\n")
        .unwrap();
    std::fs::write(ws.path("roles/app/templates/app.env.j2"), "{% include ci_token %}\n").unwrap();
    let roles = ws.path("roles");
    let run = ws.microctl_env(&["--roles-dir", roles.to_str().unwrap(), "check"], &[("CI_TOKEN", TOKEN)]);
    run.assert_code(2);
    assert_no_secret("check (a template error)", &run);
    assert!(run.stdout.contains("[secret CI_TOKEN]"), "{}", run.stdout);
}

const FILTERED_ROLE: &str = r#"
[[file]]
dest = "{{ root }}/etc/app.env"
template = "app.env.j2"
notify = ["show the file"]

[[file]]
dest = "{{ root }}/etc/replaced"
content = "{{ secret_key | replace('s3cr3t', 'REPLACED') }}"

[[file]]
dest = "{{ root }}/etc/plain"
content = "no secret in {{ root }}"

[[handler]]
name = "show the file"
run = "cat {{ root }}/etc/app.env >&2; exit 3"
"#;

/// A secret passed through filters (`systemd_env`, as roles/README recommends; `escape`;
/// `replace`) makes its file sensitive (the template read it: `--diff` shows no content)
/// and the forms microctl can compute are redacted wherever they are printed (here a
/// failing handler `cat`s the file). A file that holds a secret and has no `mode` is
/// written 0600, a new one and a live 0644 one alike, and `check` and converge warn,
/// naming the role, the file and the field; a file without a secret keeps the default 0644.
#[test]
fn a_filtered_secret_is_sensitive_redacted_and_its_file_0600() {
    use std::os::unix::fs::PermissionsExt;
    let (ws, _host, root) = app_host("secret_key = { secret = \"secret_key\" }");
    std::fs::create_dir_all(ws.path("roles/app/templates")).unwrap();
    std::fs::write(ws.path("roles/app/role.toml"), FILTERED_ROLE).unwrap();
    std::fs::write(
        ws.path("roles/app/templates/app.env.j2"),
        "KEY={{ secret_key | systemd_env }}\nHTML={{ secret_key | escape }}\n",
    )
    .unwrap();
    with_stdin(&ws, &["secrets", "set", "secret_key"], &format!("{VALUE}\n")).assert_code(0);
    // A live file, world-readable, about to hold the secret.
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/replaced"), "old\n").unwrap();
    std::fs::set_permissions(root.join("etc/replaced"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let roles = ws.path("roles");
    let roles = roles.to_str().unwrap();
    let env: [(&str, &str); 0] = [];
    let replaced = VALUE.replace("s3cr3t", "REPLACED");
    let no_secret = |what: &str, run: &Run| {
        assert_no_secret(what, run);
        assert!(
            !run.stdout.contains("REPLACED") && !run.stderr.contains("REPLACED"),
            "{what}: {}{}",
            run.stdout,
            run.stderr
        );
    };
    let warned = |what: &str, text: &str| {
        let role_toml = ws.path("roles/app/role.toml");
        for (line, file) in [(2, "{{ root }}/etc/app.env"), (7, "{{ root }}/etc/replaced")] {
            let want = format!(
                "{}:{line}:1: role `app`: file {file} holds a secret and has no `mode`: it is written 0600 (owner only)",
                role_toml.display()
            );
            assert!(text.contains(&want), "{what}: no warning `{want}` in:\n{text}");
        }
        assert!(text.contains("field: file.mode") && text.contains("hint: set `mode` for it in role.toml"), "{text}");
        assert!(!text.contains("etc/plain holds"), "{what}: {text}");
    };

    let check = ws.microctl_env(&["--roles-dir", roles, "check"], &env);
    check.assert_code(0);
    no_secret("check", &check);
    warned("check", &check.stderr);

    let pending = ws.microctl_env(&["--roles-dir", roles, "converge", "--check", "--diff"], &env);
    pending.assert_code(3);
    no_secret("converge --check --diff", &pending);
    warned("converge --check --diff", &pending.stderr);
    for dest in ["app.env", "replaced"] {
        let hidden = format!("+++ {}/etc/{dest}\nh0 | (sensitive: content not shown)", root.display());
        assert!(pending.stdout.contains(&hidden), "{dest}: {}", pending.stdout);
    }
    assert!(pending.stdout.contains("+no secret in"), "the plain file's diff is shown: {}", pending.stdout);
    let json = ws.microctl_env(&["--roles-dir", roles, "converge", "--check", "--diff", "--json"], &env);
    json.assert_code(3);
    no_secret("converge --check --diff --json", &json);
    assert!(json.stdout.contains("holds a secret and has no `mode`"), "{}", json.stdout);

    // The handler prints the file: every escaped form is redacted, in JSON and as text.
    for args in [vec!["--roles-dir", roles, "converge", "--json"], vec!["--roles-dir", roles, "converge"]] {
        let run = ws.microctl_env(&args, &env);
        run.assert_code(1);
        no_secret(&args.join(" "), &run);
        let shown =
            if args.contains(&"--json") { "KEY=\\\"[secret secret_key]\\\"" } else { "KEY=\"[secret secret_key]\"" };
        assert!(run.stdout.contains(shown), "{}", run.stdout);
        assert!(run.stdout.contains("HTML=[secret secret_key]"), "{}", run.stdout);
    }
    let mode = |name: &str| std::fs::metadata(root.join("etc").join(name)).unwrap().permissions().mode() & 0o7777;
    assert_eq!((mode("app.env"), mode("replaced"), mode("plain")), (0o600, 0o600, 0o644));
    // A live file that holds the secret already but was made world-readable: its mode is fixed.
    std::fs::set_permissions(root.join("etc/replaced"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let fix = ws.microctl(&["--roles-dir", roles, "converge", "--check"]);
    assert!(fix.stdout.contains("etc/replaced (mode"), "{}", fix.stdout);
    ws.microctl(&["--roles-dir", roles, "converge"]).assert_code(1); // the handler still fails
    assert_eq!(mode("replaced"), 0o600);
    assert_eq!(std::fs::read_to_string(root.join("etc/replaced")).unwrap(), replaced);
    let env_file = std::fs::read_to_string(root.join("etc/app.env")).unwrap();
    assert!(env_file.starts_with("KEY=\"s3cr3t \\$HOME \\\"dq\\\""), "{env_file}");
}

/// Every kind of snippet (`unless` in the probe, `validate`, `run`, a handler), holding a
/// secret, run by converge over real sshd, waits while user `nobody` scans every process's
/// command line (`tests/cmdline_scanner.sh`): the scanner saw each snippet's wrapper (so it
/// looked while each ran) and never the secret.
#[test]
fn a_secret_in_a_snippet_is_on_no_command_line_of_the_host() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    assert!(unsafe { libc::geteuid() } == 0, "this test needs root (it plays user nobody, uid 65534)");
    // The scanner's folder: reachable by nobody (the workspace is root's, 0700).
    let reachable = tempfile::tempdir().unwrap();
    std::fs::set_permissions(reachable.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let scan = reachable.path().join("scan");
    std::fs::create_dir(&scan).unwrap();
    std::os::unix::fs::chown(&scan, Some(65534), Some(65534)).unwrap();
    let secret = "Sup3r-snippet-secret-4242";
    let (ws, _host, _root) = app_host(&format!("scan = \"{}\", db_pw = {{ env = \"DB_PW\" }}", scan.display()));
    // Each snippet says it started, then waits (bounded) until the scanner is done with it.
    let wait = |round: &str| {
        format!(
            ": {{{{ db_pw }}}}; touch {{{{ scan }}}}/started.{round}; i=0; \
             while [ ! -e {{{{ scan }}}}/done.{round} ] && [ $i -lt 1200 ]; do i=$((i + 1)); sleep 0.05; done"
        )
    };
    let role = format!(
        "[[file]]\ndest = \"{{{{ root }}}}/etc/conf\"\ncontent = \"x\\n\"\nmode = \"0644\"\n\
         validate = \"{}; test -s %s\"\nnotify = [\"use it\"]\n\n\
         [[command]]\nname = \"use it too\"\nrun = \"{}\"\nunless = \"{}; false\"\n\n\
         [[handler]]\nname = \"use it\"\nrun = \"{}\"\n",
        wait("validate"),
        wait("run"),
        wait("unless"),
        wait("handler")
    );
    std::fs::create_dir_all(ws.path("roles/app")).unwrap();
    std::fs::write(ws.path("roles/app/role.toml"), role).unwrap();
    let mut scanner = Command::new("sh")
        .args(["-c", include_str!("../cmdline_scanner.sh"), "scanner"])
        .arg(&scan)
        .args(["unless", "validate", "run", "handler"])
        .env("NEEDLE", secret)
        .uid(65534)
        .gid(65534)
        .spawn()
        .unwrap();
    let roles = ws.path("roles");
    let run = ws.microctl_env(&["--roles-dir", roles.to_str().unwrap(), "converge"], &[("DB_PW", secret)]);
    let scanned = scanner.wait().unwrap();
    let log = std::fs::read_to_string(scan.join("log")).unwrap_or_default();
    run.assert_code(0);
    assert!(scanned.success(), "the scanner failed:\n{log}");
    assert!(!log.contains("SAW"), "user nobody read the secret on a command line:\n{log}");
    for round in ["unless", "validate", "run", "handler"] {
        let wrappers: u32 = log
            .split_once(&format!("{round}: scanned "))
            .and_then(|(_, rest)| rest.split_once(" command lines, "))
            .and_then(|(_, rest)| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{round}: no scan in the log:\n{log}"));
        assert!(wrappers > 0, "{round}: the scanner never saw the snippet's wrapper running:\n{log}");
    }
}

/// `secrets set` with an identity whose `.pub` is missing (a key copied alone, as CI secrets
/// often are) derives the public half from the key itself and encrypts to it.
#[test]
fn secrets_set_derives_the_public_key_when_the_pub_file_is_missing() {
    let ws = Workspace::new();
    ws.inventory("[hosts.a]\naddress = \"127.0.0.1\"\n");
    std::fs::remove_file(format!("{}.pub", ws.key.private.display())).unwrap();
    let set = with_stdin(&ws, &["secrets", "set", "token"], "abcdefgh12345678\n");
    set.assert_code(0);
    assert!(set.stderr.contains("encrypted to the public half of "), "{}", set.stderr);
    let file = std::fs::read_to_string(ws.path("secrets.toml")).unwrap();
    let body = ws.key.public_line.split_whitespace().nth(1).unwrap();
    assert!(file.contains(body), "{file}");
    let show = ws.microctl(&["secrets", "show", "token"]);
    show.assert_code(0);
    assert_eq!(show.stdout, "abcdefgh12345678");
}

/// Only the selected hosts' secrets and environment are read: `converge a` does not need the
/// variable only group app's vars refer to, and `deploy app --list` reads none at all; the
/// hosts that use it still require it.
#[test]
fn only_what_the_selected_hosts_render_is_resolved() {
    let ws = Workspace::new();
    let a = ws.sshd(SshdOptions::default());
    ws.known_hosts(&[&a]);
    ws.inventory(&format!(
        "[hosts.a]\naddress = \"127.0.0.1\"\nport = {}\n\
         [hosts.b]\naddress = \"127.0.0.1\"\nport = 1\ngroups = [\"app\"]\n\
         [groups.app.vars]\ntoken = {{ env = \"MICROCTL_TEST_UNSET_TOKEN\" }}\n\
         [deploy.app]\nsource = \"/nonexistent\"\nhealth_path = \"/\"\nhealth_port = \"8000\"\n",
        a.port
    ));
    let run = ws.microctl(&["converge", "a", "--check"]);
    run.assert_code(0);
    let run = ws.microctl(&["converge", "b", "--check"]);
    run.assert_code(2);
    assert!(run.stderr.contains("MICROCTL_TEST_UNSET_TOKEN"), "{}", run.stderr);
    let list = ws.microctl(&["deploy", "app", "--list"]);
    assert!(!list.stderr.contains("MICROCTL_TEST_UNSET_TOKEN"), "{}", list.stderr);
    assert_ne!(list.code, 2, "--list needs no vars: {}", list.stderr);
}

/// The redaction policy for short values: `secrets set` refuses a value shorter than 8
/// characters; `check` warns about a short `env` value (masked only as a word of its own).
#[test]
fn short_secret_values_are_refused_or_warned_about() {
    let ws = Workspace::new();
    ws.inventory("[hosts.a]\naddress = \"127.0.0.1\"\n[hosts.a.vars]\npin = { env = \"MICROCTL_TEST_PIN\" }\n");
    let set = with_stdin(&ws, &["secrets", "set", "pin"], "1234\n");
    set.assert_code(2);
    assert!(set.stderr.contains("error: secret `pin` is 4 characters long: at least 8 are needed"), "{}", set.stderr);
    assert!(!ws.path("secrets.toml").exists(), "nothing written");
    let check = ws.microctl_env(&["check"], &[("MICROCTL_TEST_PIN", "1234")]);
    assert!(
        check.stderr.contains("environment variable `MICROCTL_TEST_PIN` (var `pin`) is 4 characters long"),
        "{}",
        check.stderr
    );
}

#[test]
fn quiet_secrets_commands_print_no_confirmation() {
    let ws = Workspace::new();
    ws.inventory("[hosts.h]\naddress = \"127.0.0.1\"\n");
    // -q: only errors; the file is created and the secret set all the same.
    let quiet = with_stdin(&ws, &["-q", "secrets", "set", "a"], "alpha-value\n");
    quiet.assert_code(0);
    assert_eq!(quiet.stderr, "", "-q prints no confirmation");
    assert_eq!(ws.microctl(&["secrets", "show", "a"]).stdout, "alpha-value");
    let rekey = ws.microctl(&["-q", "secrets", "rekey"]);
    rekey.assert_code(0);
    assert_eq!(rekey.stderr, "", "-q prints no confirmation");
    // Without -q the confirmation is said.
    let said = with_stdin(&ws, &["secrets", "set", "b"], "bravo-value\n");
    said.assert_code(0);
    assert!(said.stderr.contains("microctl: secret `b` set in "), "{}", said.stderr);
}

/// `exec` output (text and `--json`) masks the values the selected hosts' vars refer to when
/// they can be read without asking (a secret your key decrypts, a set `env` variable); one
/// that cannot be read is not masked, and exec runs all the same.
#[test]
fn exec_output_masks_the_secrets_the_hosts_refer_to() {
    let (ws, _host, _root) = app_host("secret_key = { secret = \"secret_key\" }, ci_token = { env = \"CI_TOKEN\" }");
    with_stdin(&ws, &["secrets", "set", "secret_key"], &format!("{VALUE}\n")).assert_code(0);
    let printed = ws.path("printed.txt");
    std::fs::write(&printed, format!("{VALUE}\n{TOKEN}\n")).unwrap();
    let cat = format!("cat {}", printed.display());
    let env = [("CI_TOKEN", TOKEN)];
    for json in [false, true] {
        let mut args = vec!["exec", "h0", "--", &cat];
        if json {
            args.insert(2, "--json");
        }
        let run = ws.microctl_env(&args, &env);
        run.assert_code(0);
        assert_no_secret(&format!("exec (json: {json})"), &run);
        assert!(run.stdout.contains("[secret secret_key]"), "{}", run.stdout);
        assert!(run.stdout.contains("[secret CI_TOKEN]"), "{}", run.stdout);
    }
    // CI_TOKEN unset: nothing to mask it with; the secret still is, and exec still runs.
    let run = ws.microctl(&["exec", "h0", "--", &cat]);
    run.assert_code(0);
    assert!(run.stdout.contains(TOKEN), "{}", run.stdout);
    assert!(run.stdout.contains("[secret secret_key]") && !run.stdout.contains("s3cr3t"), "{}", run.stdout);
}
