//! `[deploy.NAME]` mistakes are found when the inventory is read, by `check` as by `deploy`:
//! an unknown field (with the field it most likely means), a wrong type and a host pattern that
//! matches nothing each exit 2 naming the file, line, column and field, before any host is
//! contacted (the hosts' port 1 answers nothing).

use crate::support::*;

/// An app host and a web host (unreachable), then `[deploy.app]`: `source`, then `deploy`.
fn inventory(ws: &Workspace, deploy: &str) -> String {
    let src = ws.path("src");
    std::fs::create_dir_all(&src).unwrap();
    ws.inventory(&format!(
        "[hosts.a1]\naddress = \"127.0.0.1\"\nport = 1\ngroups = [\"app\"]\n\n\
         [hosts.w1]\naddress = \"127.0.0.1\"\nport = 1\ngroups = [\"web\"]\n\n\
         [deploy.app]\nsource = \"{}\"\n{deploy}\n",
        src.display()
    ))
    .display()
    .to_string()
}

/// `check` and `deploy app` both refuse `deploy` with exactly `expected` (after `error: FILE:`).
fn refused_by_check_and_deploy(deploy: &str, expected: &str) {
    let ws = Workspace::new();
    let path = inventory(&ws, deploy);
    for args in [&["check"][..], &["deploy", "app"], &["deploy", "app", "--list"]] {
        let run = ws.microctl(args);
        run.assert_code(2);
        assert_eq!(run.stderr, format!("error: {path}:{expected}"), "{args:?}");
        assert_eq!(run.stdout, "", "{args:?}: no host reported");
    }
}

#[test]
fn check_and_deploy_name_an_unknown_deploy_field_and_the_one_it_means() {
    refused_by_check_and_deploy(
        "health_pth = \"/x\"",
        "19:14: unknown field `health_pth` in [deploy.app]\n  field: deploy.app.health_pth\n  hint: did you mean `health_path`?\n",
    );
}

#[test]
fn check_and_deploy_name_a_deploy_field_of_the_wrong_type() {
    refused_by_check_and_deploy(
        "keep = \"3\"",
        "19:8: invalid [deploy.app]: invalid type: string \"3\", expected usize\n  field: deploy.app.keep\n  hint: see README.md, Deploy, for each setting's type\n",
    );
}

#[test]
fn check_and_deploy_name_a_deploy_host_pattern_that_matches_nothing() {
    refused_by_check_and_deploy(
        "hosts = \"ap\"",
        "19:9: `hosts`: host pattern `ap` matches no host or group\n  field: deploy.app.hosts\n  hint: known hosts: a1, w1; groups: app, web\n",
    );
    refused_by_check_and_deploy(
        "health_via = \"web,ngnix\"",
        "19:14: `health_via`: host pattern `ngnix` matches no host or group\n  field: deploy.app.health_via\n  hint: known hosts: a1, w1; groups: app, web\n",
    );
}

#[test]
fn check_passes_a_deploy_table_without_mistakes() {
    let ws = Workspace::new();
    inventory(&ws, "hosts = \"app\"\nhealth_via = \"web\"\nkeep = 3");
    let run = ws.microctl(&["check"]);
    run.assert_code(0);
}

/// `deploy -e NAME=VALUE` that no field of `[deploy.app]` reads changes nothing: warned as
/// converge and check warn (with the name it most likely means), in text and `--json`; the
/// names the fields read (at top level or as `host.vars.NAME`) are not.
#[test]
fn deploy_warns_of_an_extra_var_no_deploy_field_reads() {
    let ws = Workspace::new();
    inventory(
        &ws,
        "hosts = \"app\"\nhealth_port = 8000\nroot = \"/srv/{{ app_dir }}\"\nrestart = \"systemctl restart {{ host.vars.unit | default('app') }}\"",
    );
    let deploy = |extra: &[&str], more: &[&str]| {
        let mut args = vec!["deploy", "app"];
        args.extend(more);
        for e in extra {
            args.extend(["-e", e]);
        }
        ws.microctl(&args)
    };
    let unread = "warning: -e app_dri: no field of [deploy.app] reads `app_dri`, so it changes nothing\n  \
                  hint: did you mean `-e app_dir=...`?\n";
    for more in [&[][..], &["--list"]] {
        let run = deploy(&["app_dir=x", "unit=y", "app_dri=z", "zzz_unrelated=1"], more);
        // a1's port 1 answers nothing: the warnings come before any host is tried.
        run.assert_code(1);
        assert!(run.stderr.contains(unread), "{more:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("warning: -e zzz_unrelated: no field of [deploy.app] reads `zzz_unrelated`"),
            "{more:?}: {}",
            run.stderr
        );
        for read in ["app_dir", "unit"] {
            assert!(!run.stderr.contains(&format!("-e {read}:")), "{read} is read: {}", run.stderr);
        }
    }
    let json = deploy(&["app_dir=x", "app_dri=z"], &["--json"]);
    json.assert_code(1);
    let warnings: Vec<serde_json::Value> = json.json().into_iter().filter(|v| v["type"] == "warning").collect();
    assert_eq!(warnings.len(), 1, "{}", json.stdout);
    assert_eq!(warnings[0]["message"], "-e app_dri: no field of [deploy.app] reads `app_dri`, so it changes nothing");
    assert_eq!(warnings[0]["hint"], "did you mean `-e app_dir=...`?");
    let quiet = deploy(&["app_dir=x", "unit=y"], &[]);
    quiet.assert_code(1);
    assert!(!quiet.stderr.contains("warning: -e"), "{}", quiet.stderr);
}
