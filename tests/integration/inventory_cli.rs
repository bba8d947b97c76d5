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
