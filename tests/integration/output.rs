//! The one printer, seen from outside: converge, exec, deploy and check under a terminal (`script`)
//! and without, JSON Lines checked against the schema docs/output.md documents, `-q`, `-v`, `-vv`,
//! `--color` with NO_COLOR and CLICOLOR_FORCE, `--diff | cat` on a terminal keeping the diffs,
//! unterminated remote output not gluing onto the recap, and the heartbeat without a terminal.

use serde_json::Value;

use crate::converge::Fleet;
use crate::support::*;

/// docs/output.md's JSON Lines schema: per event `type`, every field and its type. `s` string, `u`
/// unsigned integer, `b` bool, `a` array, `o` object; `?` also null. No other field may appear.
fn fields_of(kind: &str, command: &str, v: &Value) -> Vec<(&'static str, &'static str)> {
    match kind {
        "host_start" => vec![("host", "s")],
        "phase" => vec![("host", "s"), ("phase", "s"), ("elapsed_ms", "u")],
        "command" => vec![("host", "s"), ("command", "s")],
        "change" => vec![("host", "s"), ("resource", "s"), ("state", "s"), ("reason", "s?")],
        "handler" => vec![("host", "s"), ("handler", "s"), ("state", "s")],
        "diff" => vec![("host", "s"), ("diff", "s")],
        "output" => vec![("host", "s"), ("stream", "s"), ("line", "s")],
        "deploy" => {
            let mut f = vec![("host", "s"), ("event", "s"), ("text", "s")];
            f.extend(deploy_fields(v["event"].as_str().unwrap_or_else(|| panic!("deploy without event: {v}"))));
            f
        }
        "heartbeat" => vec![("host", "s"), ("phase", "s"), ("running_ms", "u")],
        "script" => vec![("host", "s"), ("script", "s"), ("steps", "a")],
        "warning" => vec![("host", "s?"), ("message", "s"), ("hint", "s?")],
        "host" => {
            let mut f = vec![("host", "s"), ("status", "s"), ("duration_ms", "u"), ("error", "o?")];
            f.extend(match command {
                "converge" => vec![
                    ("check", "b"),
                    ("ok", "u"),
                    ("changed", "u"),
                    ("failed", "u"),
                    ("changes", "a"),
                    ("handlers", "a"),
                    ("pending_handlers", "a"),
                    ("diffs", "a"),
                    ("channels_opened", "u"),
                    ("bytes_sent", "u"),
                    ("timings", "o"),
                ],
                "exec" => vec![("exit_code", "u?"), ("signal", "s?"), ("stdout", "s"), ("stderr", "s")],
                "check" => vec![("resources", "u")],
                "deploy" if v.get("live").is_some() => vec![("live", "s"), ("releases", "a"), ("ledger", "a")],
                "deploy" => {
                    vec![("release", "s?"), ("previous", "s?"), ("health", "a"), ("rolled_back", "b"), ("skipped", "b")]
                }
                other => panic!("no schema for command {other}"),
            });
            f
        }
        "error" => vec![("error", "o")],
        "interrupted" => vec![("signal", "s"), ("hosts", "a")],
        "summary" => vec![
            ("command", "s"),
            ("hosts", "u"),
            ("ok", "u"),
            ("failed", "u"),
            ("unreachable", "u"),
            ("changed", "u"),
            ("check", "b"),
            ("duration_ms", "u"),
            ("exit_code", "u"),
            ("interrupted", "s?"),
        ],
        other => panic!("unknown event type {other:?}"),
    }
}

/// docs/output.md's `deploy` events: the fields of each `event` kind.
fn deploy_fields(event: &str) -> Vec<(&'static str, &'static str)> {
    match event {
        "lock_wait" => vec![("holder", "s")],
        "via_lock_wait" => vec![("via", "s"), ("holder", "s")],
        "release" | "cleaned_incomplete" | "recovered_unconfirmed" | "switch" => vec![("release", "s")],
        "cache_hit" | "cache_build" => vec![("key", "s")],
        "build_step" => vec![("step", "s")],
        "watchdog_armed" | "health_wait" => vec![("confirm_secs", "u")],
        "healthy" => vec![("http_status", "u"), ("address", "s"), ("path", "s"), ("through", "s")],
        "healthy_via" => vec![("http_status", "u"), ("via", "s")],
        "drained" | "restored" => vec![("via", "s")],
        "verdict" => vec![("keep", "b")],
        "kept" => vec![],
        "rolled_back" => vec![("to", "s")],
        "after_rollback" => vec![("healthy", "b"), ("detail", "s")],
        other => panic!("undocumented deploy event {other:?}"),
    }
}

/// docs/output.md documents the schema checked here: every `type` of its table and every
/// deploy `event` is one that `fields_of` and `deploy_fields` know, and its row names each of
/// their fields (the `host` row names the common ones; the commands' own follow the table).
#[test]
fn the_schema_checked_here_is_the_one_docs_output_md_documents() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/output.md");
    let doc = std::fs::read_to_string(path).expect("docs/output.md");
    let ticked = |cell: &str| cell.split('`').skip(1).step_by(2).map(str::to_string).collect::<Vec<_>>();
    let (mut table, mut types, mut events) = ("", 0, 0);
    for line in doc.lines() {
        match line {
            l if l.starts_with("| `type` |") => table = "type",
            l if l.starts_with("| `event` |") => table = "event",
            l if !l.starts_with('|') => table = "",
            l if l.starts_with("| `") => {
                let (first, rest) = l[1..].split_once(" | ").expect("a table row");
                for name in ticked(first) {
                    let fields = match table {
                        "type" => {
                            types += 1;
                            let common = fields_of(&name, "exec", &serde_json::json!({"event": "kept"}));
                            if name == "host" { common[..4].to_vec() } else { common }
                        }
                        "event" => {
                            events += 1;
                            deploy_fields(&name)
                        }
                        _ => continue,
                    };
                    for (field, _) in fields {
                        assert!(
                            ticked(rest).iter().any(|f| f == field),
                            "{path}: the row of `{name}` lacks `{field}`: {l}"
                        );
                    }
                }
            }
            _ => {}
        }
    }
    assert!(types >= 13 && events >= 18, "{path}: only {types} types and {events} deploy events found");
}

fn has_type(v: &Value, t: &str) -> bool {
    let (t, nullable) = t.strip_suffix('?').map_or((t, false), |t| (t, true));
    (nullable && v.is_null())
        || match t {
            "s" => v.is_string(),
            "u" => v.is_u64(),
            "b" => v.is_boolean(),
            "a" => v.is_array(),
            "o" => v.is_object(),
            _ => unreachable!(),
        }
}

/// Checks every line of a `--json` run against the schema; returns the lines.
pub fn check_json_lines(run: &Run) -> Vec<Value> {
    let lines = run.json();
    let summary = lines.last().unwrap_or_else(|| panic!("no JSON at all: {}", run.stderr));
    assert_eq!(summary["type"], "summary", "the summary comes last: {}", run.stdout);
    assert_eq!(summary["exit_code"], run.code, "{summary}");
    let command = summary["command"].as_str().expect("summary.command").to_string();
    for v in &lines {
        let obj = v.as_object().unwrap_or_else(|| panic!("not an object: {v}"));
        let kind = obj.get("type").and_then(Value::as_str).unwrap_or_else(|| panic!("no type: {v}"));
        let fields = fields_of(kind, &command, v);
        for (name, t) in &fields {
            let value = obj.get(*name).unwrap_or_else(|| panic!("{kind} event without `{name}`: {v}"));
            assert!(has_type(value, t), "{kind}.{name} is not of type {t}: {v}");
        }
        for key in obj.keys() {
            assert!(
                key == "type" || fields.iter().any(|(n, _)| n == key),
                "{kind} event with undocumented `{key}`: {v}"
            );
        }
        if let Some(e) = obj.get("error").filter(|e| !e.is_null()) {
            assert!(e["class"].is_string() && e["message"].is_string(), "error without class or message: {v}");
        }
        let enums: &[(&str, &[&str])] = &[
            ("status", &["ok", "changed", "pending", "failed", "unreachable", "skipped", "interrupted"]),
            ("state", &["changed", "failed", "pending"]),
            ("stream", &["stdout", "stderr"]),
        ];
        for (field, allowed) in enums {
            if let Some(s) = obj.get(*field).filter(|_| kind != "summary") {
                assert!(allowed.contains(&s.as_str().unwrap()), "{kind}.{field} = {s}: {v}");
            }
        }
    }
    let hosts = lines.iter().filter(|v| v["type"] == "host").count();
    assert_eq!(summary["hosts"], hosts, "{}", run.stdout);
    lines
}

fn types(lines: &[Value]) -> Vec<&str> {
    lines.iter().map(|v| v["type"].as_str().unwrap()).collect()
}

#[test]
fn schema_check_fails_on_a_broken_line() {
    let run = Run {
        code: 0,
        stdout: "{\"type\":\"host\",\"host\":\"a\",\"status\":\"ok\",\"duration_ms\":\"5\",\"error\":null,\
                 \"exit_code\":0,\"signal\":null,\"stdout\":\"\",\"stderr\":\"\"}\n\
                 {\"type\":\"summary\",\"command\":\"exec\",\"hosts\":1,\"ok\":1,\"failed\":0,\"unreachable\":0,\
                 \"changed\":0,\"check\":false,\"duration_ms\":1,\"exit_code\":0,\"interrupted\":null}\n"
            .into(),
        stderr: String::new(),
    };
    let result = std::panic::catch_unwind(|| check_json_lines(&run));
    assert!(result.is_err(), "duration_ms as a string must fail the schema");
    let fixed = Run { stdout: run.stdout.replace("\"5\"", "5"), ..run };
    check_json_lines(&fixed);
}

#[test]
fn converge_output_in_every_mode() {
    let fleet = Fleet::new(2, crate::converge::ROLE);
    let roles = fleet.ws.path("roles");
    let roles = roles.to_str().unwrap();
    let ws = &fleet.ws;

    // JSON Lines, with progress events.
    let json = ws.microctl(&["--roles-dir", roles, "converge", "--check", "--diff", "--json"]);
    json.assert_code(3);
    let lines = check_json_lines(&json);
    let kinds = types(&lines);
    for kind in ["host_start", "phase", "change", "handler", "diff", "host", "summary"] {
        assert!(kinds.contains(&kind), "no {kind} event: {}", json.stdout);
    }
    assert_eq!(json.host("h0")["status"], "pending");

    // Plain lines: results on stdout, one recap, one summary.
    let plain = ws.microctl(&["--roles-dir", roles, "converge", "--check", "--diff"]);
    plain.assert_code(3);
    for want in [
        "h0 | would change: file ",
        "h1 | would run handler: reload site\n",
        "h0 | +hello from h0\n",
        "\nhost  status   detail",
        "\nh0    pending  1 ok, 5 pending, 0 failed",
        "2 hosts: 2 ok, 10 changes pending, 0 failed, 0 unreachable in ",
    ] {
        assert!(plain.stdout.contains(want), "{want:?} not in:\n{}", plain.stdout);
    }
    assert!(
        !plain.stdout.contains('\x1b') && !plain.stderr.contains('\x1b'),
        "NO_COLOR: {}{}",
        plain.stdout,
        plain.stderr
    );
    assert!(!plain.stderr.contains("+hello"), "diffs are results, on stdout: {}", plain.stderr);

    // A terminal, stdout piped: the diffs are in the pipe, the spinners are not.
    let out = ws.path("tee.log");
    let tty = ws.microctl_tty(
        &["--roles-dir", roles, "converge", "--check", "--diff"],
        &format!("| cat > '{}'", out.display()),
        &[],
    );
    assert_eq!(tty.code, 0, "cat's status: {}", tty.stdout);
    let log = std::fs::read_to_string(&out).unwrap();
    assert!(log.contains("h0 | +hello from h0\n") && log.contains("h0 | would change: file "), "{log}");
    assert!(log.contains("2 hosts: 2 ok, 10 changes pending"), "{log}");
    assert!(!log.contains('\x1b') && !log.contains('⠋'), "spinners stay on the terminal: {log:?}");
    assert!(!tty.stdout.contains("+hello"), "the terminal shows no diff twice: {}", tty.stdout);

    // A terminal for everything: the same results.
    let tty = ws.microctl_tty(&["--roles-dir", roles, "converge", "--check"], "", &[]);
    tty.assert_code(3);
    assert!(tty.stdout.contains("h1 | would change: file "), "{}", tty.stdout);
    assert!(tty.stdout.contains("2 hosts: 2 ok, 10 changes pending"), "{}", tty.stdout);

    // -q: only the summary (no host failed).
    let quiet = ws.microctl(&["-q", "--roles-dir", roles, "converge", "--check", "--diff"]);
    quiet.assert_code(3);
    assert_eq!(quiet.stdout.lines().count(), 1, "{}", quiet.stdout);
    assert!(quiet.stdout.starts_with("2 hosts: 2 ok, 10 changes pending"), "{}", quiet.stdout);
    assert_eq!(quiet.stderr, "");

    // Applying, -v: changes and handlers as they happen, phases with times on stderr.
    let verbose = ws.microctl(&["-v", "--roles-dir", roles, "converge"]);
    verbose.assert_code(0);
    assert!(verbose.stdout.contains("h0 | changed: file "), "{}", verbose.stdout);
    assert!(verbose.stdout.contains("h1 | ran handler: restart site\n"), "{}", verbose.stdout);
    for want in ["h0 | started\n", "s] connecting\n", "s] probing\n", "s] applying file ", "s] done: changed ("] {
        assert!(verbose.stderr.contains(want), "{want:?} not in:\n{}", verbose.stderr);
    }
    let traced = ws.microctl(&["-vv", "--roles-dir", roles, "converge", "h0"]);
    traced.assert_code(0);
    assert!(traced.stderr.contains("h0 | $ exec sh -s\n"), "-vv: {}", traced.stderr);
    // ... and the steps of the script it sends, never a file's content.
    for want in
        ["h0 | script converge:\n", "h0 |   take the host lock ", "h0 |   probe ", "h0 |   apply only what differs"]
    {
        assert!(traced.stderr.contains(want), "{want:?} not in -vv:\n{}", traced.stderr);
    }
    assert!(!traced.stderr.contains("hello from h0"), "no payload in -vv: {}", traced.stderr);
    let again = ws.microctl(&["--roles-dir", roles, "converge"]);
    again.assert_code(0);
    assert!(again.stdout.contains("2 hosts: 2 ok, 0 changed"), "{}", again.stdout);
    assert_eq!(again.stderr, "", "nothing slow, no -v: no progress lines");
}

/// Two reachable hosts and one whose port is closed.
pub fn exec_workspace() -> (Workspace, Vec<Sshd>) {
    let ws = Workspace::new();
    let a = ws.sshd(SshdOptions::default());
    let b = ws.sshd(SshdOptions::default());
    ws.known_hosts(&[&a, &b]);
    ws.inventory(&format!(
        "[hosts.a]\naddress = \"127.0.0.1\"\nport = {}\n[hosts.b]\naddress = \"127.0.0.1\"\nport = {}\n\
         [hosts.down]\naddress = \"127.0.0.1\"\nport = {}\n",
        a.port,
        b.port,
        free_port()
    ));
    (ws, vec![a, b])
}

#[test]
fn exec_output_in_every_mode() {
    let (ws, _sshd) = exec_workspace();
    let cmd = "printf 'abc'; echo err >&2";

    let plain = ws.microctl(&["exec", "all", "--", cmd]);
    plain.assert_code(1);
    // The unterminated `abc` is ended before the recap: nothing glues onto the table.
    assert!(plain.stdout.contains("a    | abc\n") && plain.stdout.contains("b    | abc\n"), "{}", plain.stdout);
    assert!(plain.stdout.contains("\nhost  status       detail"), "{}", plain.stdout);
    assert!(plain.stdout.contains("down | error: cannot connect to down"), "{}", plain.stdout);
    assert!(plain.stdout.contains("3 hosts: 2 ok, 0 failed, 1 unreachable in "), "{}", plain.stdout);
    assert!(plain.stderr.contains("a    | err\n"), "the remote stderr stays stderr: {}", plain.stderr);

    let quiet = ws.microctl(&["--quiet", "exec", "all", "--", cmd]);
    quiet.assert_code(1);
    assert!(!quiet.stdout.contains("abc") && !quiet.stderr.contains("err\n"), "{}{}", quiet.stdout, quiet.stderr);
    assert!(quiet.stdout.starts_with("down | error: cannot connect to down"), "{}", quiet.stdout);
    assert!(quiet.stdout.lines().last().unwrap().starts_with("3 hosts: 2 ok, 0 failed, 1 unreachable"));
    assert!(!quiet.stdout.contains("host  status"), "no recap with -q: {}", quiet.stdout);

    let json = ws.microctl(&["exec", "all", "--json", "--", cmd]);
    json.assert_code(1);
    let lines = check_json_lines(&json);
    assert!(
        lines
            .iter()
            .any(|v| v["type"] == "output" && v["host"] == "a" && v["line"] == "abc" && v["stream"] == "stdout"),
        "{}",
        json.stdout
    );
    assert_eq!(json.host("down")["status"], "unreachable");
    let quiet_json = ws.microctl(&["-q", "exec", "all", "--json", "--", cmd]);
    quiet_json.assert_code(1);
    assert_eq!(
        types(&check_json_lines(&quiet_json)),
        ["host"; 3].iter().chain(&["summary"]).copied().collect::<Vec<_>>()
    );
    assert_eq!(json.host("a")["stdout"], "abc");

    let tty = ws.microctl_tty(&["exec", "all", "--", cmd], "", &[]);
    tty.assert_code(1);
    for want in ["a    | abc\r\n", "a    | err", "3 hosts: 2 ok, 0 failed, 1 unreachable"] {
        assert!(tty.stdout.contains(want), "{want:?} not in:\n{}", tty.stdout);
    }

    let traced = ws.microctl(&["-vv", "exec", "a", "--", "true"]);
    traced.assert_code(0);
    assert!(traced.stderr.contains("a | $ true\n"), "-vv shows the remote command: {}", traced.stderr);
    assert!(!ws.microctl(&["-v", "exec", "a", "--", "true"]).stderr.contains("$ true"));
}

#[test]
fn colors_follow_the_flag_no_color_and_clicolor_force() {
    let (ws, _sshd) = exec_workspace();
    let colored = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = args.to_vec();
        all.extend(["exec", "a", "--", "echo hi"]);
        let run = ws.microctl_env(&all, env);
        run.assert_code(0);
        run.stdout.contains("\x1b[")
    };
    // (flags, env, colored): the harness sets NO_COLOR=1; an empty NO_COLOR counts as unset.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], bool);
    let cases: [Case; 7] = [
        (&[], &[], false),
        (&["--color", "always"], &[], true),
        (&["--color", "auto"], &[("NO_COLOR", ""), ("CLICOLOR_FORCE", "1")], true),
        (&[], &[("NO_COLOR", ""), ("CLICOLOR_FORCE", "0")], false),
        (&[], &[("CLICOLOR_FORCE", "1")], false),
        (&["--color", "never"], &[("NO_COLOR", ""), ("CLICOLOR_FORCE", "1")], false),
        (&[], &[("NO_COLOR", "")], false),
    ];
    for (flags, env, want) in cases {
        assert_eq!(colored(flags, env), want, "{flags:?} {env:?}");
    }
    // On a terminal, auto colors unless NO_COLOR says no.
    let tty = ws.microctl_tty(&["exec", "a", "--", "echo hi"], "", &[("NO_COLOR", "")]);
    assert!(tty.stdout.contains("\x1b[36ma\x1b[0m | hi"), "{:?}", tty.stdout);
    let tty = ws.microctl_tty(&["exec", "a", "--", "echo hi"], "", &[]);
    assert!(!tty.stdout.contains("\x1b[36m"), "{:?}", tty.stdout);
}

#[test]
fn without_a_terminal_a_long_step_is_announced_and_kept_alive() {
    let (ws, _sshd) = exec_workspace();
    let started = std::time::Instant::now();
    let run = ws.microctl_env(&["exec", "a", "--", "sleep 3.5"], &[(HEARTBEAT, "1")]);
    let took = started.elapsed().as_secs();
    run.assert_code(0);
    assert!(run.stderr.starts_with("a | running\n"), "{}", run.stderr);
    // One line a second: `after 1s`, `after 2s`, ... in order, at least two, and never more
    // than the seconds the run took (a loaded machine makes the run, not the beat, longer).
    let beats: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("a | still running after ")).collect();
    assert!(beats.len() >= 2 && beats.len() as u64 <= took, "one line a second ({took} s): {}", run.stderr);
    for (i, beat) in beats.iter().enumerate() {
        assert_eq!(*beat, format!("a | still running after {}s", i + 1), "{}", run.stderr);
    }
    // The default interval is 30 s.
    let run = ws.microctl(&["exec", "a", "--", "sleep 1.5"]);
    assert!(!run.stderr.contains("still"), "{}", run.stderr);
    // JSON: a typed `heartbeat` event each interval, before the host's result; no text lines.
    let json = ws.microctl_env(&["exec", "a", "--json", "--", "sleep 3.5"], &[(HEARTBEAT, "1")]);
    json.assert_code(0);
    let lines = check_json_lines(&json);
    let beats: Vec<&Value> = lines.iter().filter(|v| v["type"] == "heartbeat").collect();
    assert!((2..=4).contains(&beats.len()), "one event a second: {}", json.stdout);
    let done = lines.iter().position(|v| v["type"] == "host").unwrap();
    assert!(lines[done..].iter().all(|v| v["type"] != "heartbeat"), "{}", json.stdout);
    let ms: Vec<u64> = beats.iter().map(|b| b["running_ms"].as_u64().unwrap()).collect();
    assert!(beats.iter().all(|b| b["host"] == "a" && b["phase"] == "running"), "{}", json.stdout);
    assert!(ms.windows(2).all(|w| w[0] < w[1]) && ms[0] >= 1000, "{ms:?}");
    assert!(!json.stderr.contains("still") && !json.stdout.contains("still"), "{}", json.stderr);
    // Without the variable the interval is 30 s: no event in a short run.
    let json = ws.microctl(&["exec", "a", "--json", "--", "sleep 1.5"]);
    assert!(!json.stdout.contains("heartbeat"), "{}", json.stdout);
}

#[test]
fn deploy_output_in_every_mode() {
    let app = crate::deploy::setup();
    let ws = &app.ws;

    // A terminal: the health checks and the recap.
    let tty = ws.microctl_tty(&["deploy", "app", "--ref", "v1"], "", &[]);
    tty.assert_code(0);
    assert_eq!(crate::deploy::served(app.ports[0]), "version 1");
    for want in ["h0 | healthy: HTTP 200 from 127.0.0.1:", "h1 | release ", "2 hosts: 2 ok, 2 changed, 0 failed"] {
        assert!(tty.stdout.contains(want), "{want:?} not in:\n{}", tty.stdout);
    }

    // Plain lines, the build announced (a step that may take long), then JSON Lines.
    let plain = ws.microctl(&["deploy", "app", "--ref", "v2"]);
    plain.assert_code(0);
    assert!(plain.stdout.contains("h0 | current -> "), "{}", plain.stdout);
    assert!(plain.stdout.contains("\nh0    changed  "), "{}", plain.stdout);
    assert!(plain.stdout.contains("h0 | build: "), "{}", plain.stdout);
    assert!(plain.stderr.contains("h0 | waiting for the health check\n"), "{}", plain.stderr);

    // JSON with -vv, from a source folder with uncommitted changes: typed deploy events, the
    // script summaries, and the warning as an event (stderr stays empty of it).
    let untracked = ws.path("src/app/NOTES");
    std::fs::write(&untracked, "not committed\n").unwrap();
    let json = ws.microctl(&["-vv", "deploy", "app", "--json"]);
    std::fs::remove_file(&untracked).unwrap();
    json.assert_code(0);
    let lines = check_json_lines(&json);
    let kinds = types(&lines);
    for kind in ["host_start", "phase", "command", "script", "deploy", "warning", "host", "summary"] {
        assert!(kinds.contains(&kind), "no {kind} event: {}", json.stdout);
    }
    assert!(!json.stderr.contains("warning"), "{}", json.stderr);
    let warning = lines.iter().find(|v| v["type"] == "warning").unwrap();
    assert!(warning["message"].as_str().unwrap().ends_with("has uncommitted changes; deploying the last commit"));
    let events: Vec<&str> = lines
        .iter()
        .filter(|v| v["type"] == "deploy" && v["host"] == "h0")
        .map(|v| v["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "release",
            "build_step",
            "build_step",
            "watchdog_armed",
            "switch",
            "health_wait",
            "healthy",
            "verdict",
            "kept"
        ],
        "{}",
        json.stdout
    );
    let step = lines.iter().find(|v| v["event"] == "build_step").unwrap();
    assert_eq!(step["text"], format!("build: {}", step["step"].as_str().unwrap()));
    let script = lines.iter().find(|v| v["type"] == "script" && v["host"] == "h1").unwrap();
    assert_eq!(script["script"], "deploy");
    let steps: Vec<&str> = script["steps"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert!(steps[0].starts_with("take the host lock ") && steps.contains(&"build as root: `test ! -f BUILD_FAILS`"));
    assert!(steps.iter().any(|s| s.contains("(payload: the release tar, not shown)")), "{steps:?}");
    let list = ws.microctl(&["deploy", "app", "--list", "--json"]);
    list.assert_code(0);
    check_json_lines(&list);
    assert_eq!(list.host("h0")["releases"].as_array().unwrap().len(), 3, "{}", list.stdout);

    // Plain -vv: the same summary on stderr, and the warning there too.
    std::fs::write(&untracked, "not committed\n").unwrap();
    let traced = ws.microctl(&["-vv", "deploy", "app"]);
    std::fs::remove_file(&untracked).unwrap();
    traced.assert_code(0);
    assert!(traced.stderr.starts_with("warning: "), "{}", traced.stderr);
    for want in [
        "has uncommitted changes; deploying the last commit\n",
        "h0 | script deploy:\n",
        "h0 |   take the host lock ",
        "h0 |   build as root: `test ! -f BUILD_FAILS`\n",
    ] {
        assert!(traced.stderr.contains(want), "{want:?} not in:\n{}", traced.stderr);
    }

    // Unhealthy, in JSON: the verdict rolls back, the rollback and its health are events.
    let sick = ws.microctl(&["deploy", "app", "--ref", "sick", "--json"]);
    sick.assert_code(1);
    let lines = check_json_lines(&sick);
    let events: Vec<&str> =
        lines.iter().filter(|v| v["type"] == "deploy").map(|v| v["event"].as_str().unwrap()).collect();
    let tail = &events[events.iter().position(|e| *e == "verdict").expect("a verdict")..];
    assert_eq!(tail, ["verdict", "rolled_back", "after_rollback"], "{}", sick.stdout);
    let verdict = lines.iter().find(|v| v["event"] == "verdict").unwrap();
    assert_eq!(verdict["keep"], false);
    assert_eq!(lines.iter().find(|v| v["event"] == "after_rollback").unwrap()["healthy"], true, "{}", sick.stdout);

    let quiet = ws.microctl(&["-q", "deploy", "app", "--ref", "sick"]);
    quiet.assert_code(1);
    assert!(quiet.stdout.starts_with("h0 | error: health check failed on h0"), "{}", quiet.stdout);
    assert!(!quiet.stdout.contains("healthy"), "{}", quiet.stdout);
    let last = quiet.stdout.lines().last().unwrap();
    assert!(last.starts_with("2 hosts: 0 ok, 0 changed, 1 failed, 0 unreachable, 1 skipped in "), "{last}");
}

#[test]
fn a_lock_wait_is_announced_and_kept_alive_without_a_terminal() {
    use std::os::unix::fs::PermissionsExt;
    let fleet = Fleet::new(1, crate::converge::ROLE);
    let roles = fleet.ws.path("roles");
    let state = fleet.root(0).join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut holder = hold_lock(&state);
    let run = fleet.ws.microctl_env(
        &["--roles-dir", roles.to_str().unwrap(), "converge", "--lock-timeout", "3"],
        &[(HEARTBEAT, "1")],
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
    run.assert_code(1);
    assert!(run.stderr.contains("h0 | waiting for the host lock\n"), "{}", run.stderr);
    let beats = run.stderr.matches("h0 | still waiting for the host lock after ").count();
    assert!((2..=4).contains(&beats), "one line a second: {}", run.stderr);
    assert!(run.stdout.contains("h0 | error: host h0 is locked by "), "{}", run.stdout);
}

const HEARTBEAT: &str = "MICROCTL_HEARTBEAT_SECS";

/// `check --json`: one `host` object per host (a host-dependent template error on the hosts
/// it hit, `resources` on the others), the warnings as `warning` events, the summary last with
/// exit code 2; all in the documented schema, nothing on stderr. `-q` keeps errors and the
/// summary only; plain text prints the shared error once.
#[test]
fn check_output_in_every_mode() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.path("roles/web/templates")).unwrap();
    std::fs::write(ws.path("roles/web/role.toml"), "[[file]]\ndest = \"/etc/tier\"\ntemplate = \"tier.j2\"\n").unwrap();
    std::fs::write(ws.path("roles/web/templates/tier.j2"), "{{ tier }}\n").unwrap();
    ws.inventory(
        "[hosts.w1]\naddress = \"198.18.0.1\"\ngroups = [\"web\"]\nidentity = \"no-such-key\"\n\n\
         [hosts.w2]\naddress = \"198.18.0.2\"\ngroups = [\"web\"]\nidentity = \"no-such-key\"\nvars = { tier = \"gold\" }\n\n\
         [hosts.w3]\naddress = \"198.18.0.3\"\ngroups = [\"web\"]\nidentity = \"no-such-key\"\n\n[groups.web]\nroles = [\"web\"]\n",
    );
    let run = ws.microctl(&["check", "--json"]);
    run.assert_code(2);
    assert_eq!(run.stderr, "", "--json: diagnostics are events too");
    let lines = check_json_lines(&run);
    assert_eq!(types(&lines), ["host", "host", "host", "warning", "summary"], "{}", run.stdout);
    for (host, failed) in [("w1", true), ("w2", false), ("w3", true)] {
        let h = run.host(host);
        assert_eq!(h["status"], if failed { "failed" } else { "ok" }, "{h}");
        assert_eq!(h["resources"], if failed { 0 } else { 1 }, "{h}");
        if failed {
            assert_eq!(h["error"]["class"], "template", "{h}");
            let message = h["error"]["message"].as_str().unwrap();
            assert!(message.ends_with("tier.j2:1:1: undefined variable `tier`"), "{h}");
        }
    }
    let warning = &lines[3];
    assert_eq!(warning["host"], "w1, w2, w3", "{warning}");
    assert!(warning["message"].as_str().unwrap().contains("identity file"), "{warning}");
    let summary = lines.last().unwrap();
    assert_eq!(
        (summary["command"].as_str(), summary["ok"].as_u64(), summary["failed"].as_u64()),
        (Some("check"), Some(1), Some(2))
    );

    // Plain text: the error once naming both hosts, on stdout; the warning on stderr.
    let run = ws.microctl(&["check"]);
    run.assert_code(2);
    assert_eq!(run.stdout.matches("undefined variable `tier`").count(), 1, "{}", run.stdout);
    assert!(run.stdout.contains("\n  host: w1, w3 (2 hosts)\n"), "{}", run.stdout);
    assert!(run.stdout.contains("\n3 hosts: 1 ok, 2 failed in "), "{}", run.stdout);
    assert!(run.stderr.starts_with("warning: "), "{}", run.stderr);
    // -q: the error and the summary, nothing else on stdout.
    let quiet = ws.microctl(&["-q", "check"]);
    quiet.assert_code(2);
    let kept: Vec<&str> = quiet.stdout.lines().filter(|l| !l.starts_with("  ")).collect();
    assert_eq!(kept.len(), 2, "{}", quiet.stdout);
    assert!(kept[0].starts_with("error: ") && kept[1].starts_with("3 hosts: 1 ok, 2 failed in "), "{}", quiet.stdout);
    assert_eq!(quiet.stderr, "", "-q: no warnings");
}

/// A `--json` run that fails before any host (a bad pattern, a role error, a bad deploy) still
/// ends in JSON: an `error` object, then the `summary` with exit_code 2, as the schema says.
#[test]
fn a_json_run_that_fails_before_any_host_ends_with_an_error_and_the_summary() {
    let ws = Workspace::new();
    ws.inventory("[hosts.a]\naddress = \"127.0.0.1\"\n");
    for args in [
        &["converge", "--json", "nosuch"][..],
        &["exec", "--json", "nosuch", "--", "true"],
        &["deploy", "nosuch", "--json"],
    ] {
        let run = ws.microctl(args);
        run.assert_code(2);
        let lines = check_json_lines(&run);
        assert_eq!(types(&lines), ["error", "summary"], "{args:?}: {}", run.stdout);
        assert_eq!(lines[0]["error"]["class"], "usage", "{args:?}: {}", run.stdout);
        assert_eq!(lines[1]["command"], args[0], "{}", run.stdout);
        assert!(run.stderr.starts_with("error: "), "the text error stays on stderr: {}", run.stderr);
    }
}

#[test]
fn converge_diff_json_on_a_terminal_holds_no_escape() {
    let fleet = Fleet::new(1, crate::converge::ROLE);
    let roles = fleet.ws.path("roles");
    let roles = roles.to_str().unwrap();
    let ws = &fleet.ws;
    // A terminal where color is on (NO_COLOR empty): the diffs are data, never painted in JSON.
    let args = ["--roles-dir", roles, "converge", "--check", "--diff", "--json"];
    let tty = ws.microctl_tty(&args, "", &[("NO_COLOR", "")]);
    tty.assert_code(3);
    assert!(!tty.stdout.contains('\x1b'), "an escape byte on the terminal: {:?}", tty.stdout);
    let lines: Vec<Value> =
        tty.stdout.lines().map(|l| serde_json::from_str(l.trim_end_matches('\r')).unwrap()).collect();
    let diffs: Vec<&str> = lines.iter().filter(|v| v["type"] == "diff").map(|v| v["diff"].as_str().unwrap()).collect();
    assert!(diffs.iter().any(|d| d.contains("hello from h0")), "no diff: {:?}", tty.stdout);
    let host = lines.iter().find(|v| v["type"] == "host").unwrap();
    let held = host["diffs"].as_array().unwrap().iter().map(|d| d.as_str().unwrap());
    for diff in diffs.iter().copied().chain(held) {
        assert!(!diff.contains('\x1b'), "an escape in a JSON diff: {diff:?}");
    }
    // The same run printed as text on that terminal: the diff is colored there.
    let text = ws.microctl_tty(&args[..5], "", &[("NO_COLOR", "")]);
    text.assert_code(3);
    assert!(text.stdout.contains("\x1b[32m+hello from h0\x1b[0m"), "{:?}", text.stdout);
}
