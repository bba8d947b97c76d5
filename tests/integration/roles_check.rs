//! The repo's own roles, rendered for the repo's own inventory, checked by the real tools:
//! `nginx -t`, `systemd-analyze verify`, `promtool check config`, `bash -n`, `shellcheck`,
//! JSON and YAML parsers. Also: adding a host to group `app` reaches nginx and Prometheus
//! with no other edit; nginx's HTTPS modes (`tls`) pass `nginx -t` with modern TLS only.
//! Needs the Debian packages nginx, openssl (a stand-in certificate for `nginx -t`),
//! prometheus, shellcheck, systemd and python3-yaml (scripts/test.sh installs them); a missing
//! tool fails the test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use microctl::facts::Facts;
use microctl::inventory::{Inventory, Vars};
use microctl::plan::desired::Desired;
use microctl::role::{Renderer, RoleSet, role_names_for};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_roles(inv: &Inventory) -> RoleSet {
    let mut wanted: Vec<(String, microctl::error::Error)> = Vec::new();
    for h in &inv.hosts {
        for r in role_names_for(inv, h) {
            if !wanted.iter().any(|(n, _)| *n == r) {
                wanted.push((r, microctl::error::Error::usage("")));
            }
        }
    }
    RoleSet::load(&repo().join("roles"), &wanted)
        .unwrap_or_else(|e| panic!("{}", e.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")))
}

/// Every host of `inv` rendered (with the default facts): host name -> desired state.
fn render_all(inv: &Inventory) -> BTreeMap<String, Desired> {
    render_with(inv, &Facts::default(), &Vars::new())
}

/// Every host of `inv` rendered with `facts` and `-e` vars `extra`.
fn render_with(inv: &Inventory, facts: &Facts, extra: &Vars) -> BTreeMap<String, Desired> {
    let roles = load_roles(inv);
    let renderer = Renderer::new(inv, &roles, extra);
    for h in &inv.hosts {
        renderer.set_facts(h, facts, "");
    }
    inv.hosts
        .iter()
        .map(|h| {
            let d = renderer.render(h, None).unwrap_or_else(|e| panic!("{}: {e}", facts.summary()));
            // Every command's and handler's shell parses (`check`'s own check).
            let errors = microctl::role::snippets::check(&d, &roles.roles_dir, &mut Default::default());
            assert!(errors.is_empty(), "{}: {}", facts.summary(), errors[0]);
            (h.name.clone(), d)
        })
        .collect()
}

/// The releases every role must render and validate for.
fn releases() -> Vec<Facts> {
    ["os_id=debian,os_version_id=12", "os_id=ubuntu,os_version_id=22.04", "os_id=ubuntu,os_version_id=24.04,arch=arm64"]
        .iter()
        .map(|f| Facts::parse_overrides(f).unwrap())
        .collect()
}

fn repo_inventory() -> Inventory {
    Inventory::load(&repo().join("inventory.toml")).unwrap()
}

fn file<'a>(d: &'a Desired, dest: &str) -> &'a str {
    let f = d.files.iter().find(|f| f.dest == dest).unwrap_or_else(|| panic!("{} renders no {dest}", d.host));
    std::str::from_utf8(&f.content).unwrap()
}

/// Runs a tool; a missing tool or a failure (or, with `quiet`, any output) fails the test.
fn tool(cmd: &mut Command, quiet: bool) {
    let shown = format!("{cmd:?}");
    let program = cmd.get_program().to_string_lossy().into_owned();
    // The Debian package of each tool a check runs (scripts/test.sh installs them).
    let package = match program.as_str() {
        "promtool" => "prometheus",
        "systemd-analyze" => "systemd",
        "python3" => "python3-yaml",
        "sh" | "chmod" => "coreutils (and nginx and openssl, for nginx-check-site)",
        other => other,
    };
    let out = cmd.output().unwrap_or_else(|e| panic!("{shown}: {e}: install the Debian package {package}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{shown} failed:\n{text}");
    assert!(!quiet || text.trim().is_empty(), "{shown} complained:\n{text}");
}

/// Writes every rendered file of every host under `root/HOST/`, with its mode (a unit's
/// `ExecStartPre=` may name a script the role installs).
fn write_tree(root: &Path, rendered: &BTreeMap<String, Desired>) {
    use std::os::unix::fs::PermissionsExt;
    for (host, d) in rendered {
        for f in &d.files {
            let path = root.join(host).join(f.dest.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, f.content.as_slice()).unwrap();
            if let Some(mode) = f.meta.mode {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            }
        }
    }
}

/// For Debian 12, Ubuntu 22.04 and Ubuntu 24.04 (arm64) facts: every role renders, every
/// command parses, every file passes its validator.
#[test]
fn every_rendered_file_passes_its_real_validator() {
    let inv = repo_inventory();
    for facts in releases() {
        eprintln!("{}", facts.summary());
        validate_all(&render_with(&inv, &facts, &Vars::new()));
    }
}

/// What the roles take from the facts: jenkins's Java, the app's venv package, the
/// node_exporter tarball's architecture.
#[test]
fn roles_follow_the_facts() {
    let inv = repo_inventory();
    let mut tarball = Vars::new();
    tarball.insert("node_exporter_source".into(), toml::Value::String("tarball".into()));
    let expect = [
        ("openjdk-17-jre-headless", "python3.11-venv", "linux-$a", "a=amd64"),
        ("openjdk-21-jre-headless", "python3.10-venv", "linux-$a", "a=amd64"),
        ("openjdk-21-jre-headless", "python3.12-venv", "linux-$a", "a=arm64"),
    ];
    for (facts, (java, venv, url, arch)) in releases().iter().zip(expect) {
        let rendered = render_with(&inv, facts, &tarball);
        let packages = |d: &Desired| d.packages.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        let jenkins = rendered.values().find(|d| packages(d).iter().any(|p| p == "jenkins")).expect("a jenkins host");
        assert!(packages(jenkins).iter().any(|p| p == java), "{}: {:?}", facts.summary(), packages(jenkins));
        assert!(!packages(jenkins).iter().any(|p| p.starts_with("openjdk") && p != java));
        let app = rendered.values().find(|d| packages(d).iter().any(|p| p == "sqlite3")).expect("an app host");
        assert!(packages(app).iter().any(|p| p == venv), "{}: {:?}", facts.summary(), packages(app));
        let ne = rendered
            .values()
            .flat_map(|d| &d.commands)
            .find(|c| c.run.contains("node_exporter/releases"))
            .expect("the node_exporter tarball command");
        assert!(ne.run.contains(url) && ne.run.contains(arch), "{}: {}", facts.summary(), ne.run);
    }
}

fn validate_all(rendered: &BTreeMap<String, Desired>) {
    let tmp = tempfile::tempdir().unwrap();
    write_tree(tmp.path(), rendered);
    let mut checked: BTreeMap<&str, usize> = BTreeMap::new();
    for (host, d) in rendered {
        let root = tmp.path().join(host);
        for f in &d.files {
            let path = root.join(f.dest.trim_start_matches('/'));
            let text = std::str::from_utf8(&f.content).unwrap_or("");
            let kind = if f.dest == "/etc/nginx/sites-available/microblog" {
                // The role's own checker: the site inside a minimal nginx.conf, `nginx -t`.
                let checker = root.join("usr/local/lib/microctl/nginx-check-site");
                assert!(
                    Command::new("nginx").arg("-v").output().is_ok(),
                    "nginx is missing: install the Debian package nginx (scripts/test.sh does)"
                );
                tool(Command::new("sh").arg(&checker).arg(&path), false);
                "nginx -t"
            } else if f.dest.contains("/systemd/system/") {
                verify_unit(&root, &f.dest, text);
                "systemd-analyze verify"
            } else if f.dest.ends_with("prometheus.yml") {
                tool(Command::new("promtool").args(["check", "config"]).arg(&path), false);
                "promtool check config"
            } else if text.starts_with("#!") {
                tool(Command::new("bash").arg("-n").arg(&path), true);
                tool(Command::new("shellcheck").arg("--severity=warning").arg(&path), true);
                "bash -n + shellcheck"
            } else if f.dest.ends_with(".json") {
                serde_json::from_slice::<serde_json::Value>(&f.content).unwrap_or_else(|e| panic!("{}: {e}", f.dest));
                "json"
            } else if f.dest.ends_with(".yaml") || f.dest.ends_with(".yml") {
                tool(
                    Command::new("python3")
                        .args(["-c", "import sys, yaml; yaml.safe_load(open(sys.argv[1]))"])
                        .arg(&path),
                    true,
                );
                "yaml"
            } else if f.dest.ends_with(".env") {
                for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
                    assert!(
                        line.split_once('=').is_some_and(|(k, _)| !k.is_empty() && !k.contains(' ')),
                        "{}: {line}",
                        f.dest
                    );
                }
                "KEY=VALUE"
            } else if f.dest.ends_with(".html") {
                assert!(text.starts_with("<!DOCTYPE html>") && text.contains("</html>"), "{}: {text}", f.dest);
                "html"
            } else if f.dest.starts_with("/etc/apt/") {
                "apt source"
            } else if f.dest.ends_with(".pem") {
                // The site's certificate and key (tls = "files"; empty otherwise): nginx -t above
                // reads it (https_sites_pass_nginx_t_with_modern_tls checks the pair itself).
                assert!(
                    text.is_empty() || (text.contains("BEGIN CERTIFICATE") && text.contains("PRIVATE KEY")),
                    "{}: {text}",
                    f.dest
                );
                "pem"
            } else {
                panic!("no validator for {} on {host}", f.dest);
            };
            *checked.entry(kind).or_default() += 1;
        }
    }
    eprintln!("validated: {checked:?}");
    for kind in ["nginx -t", "systemd-analyze verify", "promtool check config", "bash -n + shellcheck", "json", "yaml"]
    {
        assert!(checked.contains_key(kind), "nothing was checked with {kind}: {checked:?}");
    }
}

/// `systemd-analyze verify --root` with the distribution's unit tree, and stub executables
/// at the unit's ExecStart paths (they exist on a converged host; here they do not).
fn verify_unit(root: &Path, dest: &str, text: &str) {
    let units = root.join("usr/lib/systemd/system");
    if !units.exists() {
        std::fs::create_dir_all(units.parent().unwrap()).unwrap();
        let system = ["/usr/lib/systemd/system", "/lib/systemd/system"]
            .into_iter()
            .find(|p| Path::new(p).join("sysinit.target").exists());
        let system =
            system.expect("systemd's unit files (Debian package systemd) are needed for systemd-analyze verify");
        tool(Command::new("cp").arg("-a").arg(system).arg(&units), true);
    }
    let (unit_path, unit_text) = match dest.rsplit_once(".service.d/") {
        // A drop-in: verify the unit it extends (a stub, if the package is not here).
        Some((base, _)) => {
            let base = format!("{base}.service");
            let p = root.join(base.trim_start_matches('/'));
            if !p.exists() {
                std::fs::write(&p, "[Service]\nExecStart=/usr/sbin/stub-daemon\n").unwrap();
            }
            (base, std::fs::read_to_string(&p).unwrap() + text)
        }
        None => (dest.to_string(), text.to_string()),
    };
    for line in unit_text.lines() {
        if let Some(exec) = line.strip_prefix("ExecStart=") {
            let bin = root.join(exec.split_whitespace().next().unwrap().trim_start_matches('/'));
            std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
            std::fs::write(&bin, "#!/bin/sh\n").unwrap();
            tool(Command::new("chmod").arg("755").arg(&bin), true);
        }
    }
    tool(Command::new("systemd-analyze").arg("verify").arg(format!("--root={}", root.display())).arg(&unit_path), true);
}

#[test]
fn nginx_and_prometheus_follow_the_inventory() {
    let rendered = render_all(&repo_inventory());
    let site = file(&rendered["web"], "/etc/nginx/sites-available/microblog");
    assert!(site.contains("server 10.0.2.20:5000 "), "{site}");
    for header in [
        "Host $host",
        "X-Real-IP $remote_addr",
        "X-Forwarded-For $proxy_add_x_forwarded_for",
        "X-Forwarded-Proto $scheme",
    ] {
        assert!(site.contains(&format!("proxy_set_header {header};")), "{site}");
    }
    let prom = file(&rendered["monitoring"], "/etc/prometheus/prometheus.yml");
    assert!(prom.contains("- \"10.0.2.20:9100\""), "{prom}");
    assert!(prom.contains("- \"203.0.113.10:9100\""), "{prom}");
    assert!(!prom.contains("10.0.1.10:9100"), "web has no node_exporter role: {prom}");
    let unit = file(&rendered["app"], "/etc/systemd/system/gunicorn.service");
    assert!(unit.contains("gunicorn --workers 3 --access-logfile"), "{unit}");
    assert!(unit.contains("\nRequires=gunicorn.socket\n") && unit.contains("\nType=notify\n"), "{unit}");
    // systemd holds the listening socket, so a restart never refuses a connection.
    let socket = file(&rendered["app"], "/etc/systemd/system/gunicorn.socket");
    assert!(socket.contains("\nListenStream=10.0.2.20:5000\n"), "{socket}");
    // An app that cannot start: systemd gives up (and closes the socket) after 3 starts, and
    // nginx answers its maintenance page (tests/lab.rs shows both on real hosts).
    for bound in [
        "\nStartLimitIntervalSec=30\n",
        "\nStartLimitBurst=3\n",
        "\nRestart=always\n",
        "\nConditionPathExists=/srv/microblog/current\n",
    ] {
        assert!(unit.contains(bound), "{bound}: {unit}");
    }
    assert!(site.contains("error_page 502 503 504 =503 /microctl-maintenance.html;"), "{site}");
    let page = file(&rendered["web"], "/var/www/microblog-maintenance/microctl-maintenance.html");
    assert!(page.contains("Down for maintenance"), "{page}");
    let env = rendered["app"].files.iter().find(|f| f.dest == "/etc/microblog.env").unwrap();
    assert!(env.sensitive && env.meta.mode == Some(0o600));

    // One more host in group app, and nothing else edited.
    let path = repo().join("inventory.toml");
    let text = std::fs::read_to_string(&path).unwrap()
        + "\n[hosts.app2]\naddress = \"10.0.2.21\"\nvia = \"web\"\ngroups = [\"app\"]\n";
    let inv = Inventory::parse(&path, &text).unwrap();
    let rendered = render_all(&inv);
    let site = file(&rendered["web"], "/etc/nginx/sites-available/microblog");
    assert!(site.contains("server 10.0.2.20:5000 ") && site.contains("server 10.0.2.21:5000 "), "{site}");
    let prom = file(&rendered["monitoring"], "/etc/prometheus/prometheus.yml");
    assert!(prom.contains("- \"10.0.2.20:9100\"") && prom.contains("- \"10.0.2.21:9100\""), "{prom}");
}

#[test]
fn check_passes_for_the_repo_inventory() {
    let out = Command::new(env!("CARGO_BIN_EXE_microctl")).current_dir(repo()).args(["check"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("check: ") && stdout.contains("\n4 hosts: 4 ok, 0 failed in "), "{stdout}");
}

#[test]
fn inventory_ports_gives_each_host_its_security_group() {
    let out = Command::new(env!("CARGO_BIN_EXE_microctl"))
        .current_dir(repo())
        .args(["inventory", "--ports", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let hosts: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let rules = |host: &str| -> Vec<(u64, Vec<String>)> {
        let h = hosts.iter().find(|h| h["host"] == host).unwrap();
        h["inbound"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["port"].as_u64().unwrap(), serde_json::from_value(r["from"].clone()).unwrap()))
            .collect()
    };
    // app: SSH only from its jump host web, gunicorn only from the nginx hosts, metrics from monitoring.
    assert_eq!(
        rules("app"),
        vec![(22, vec!["10.0.1.10".to_string()]), (5000, vec!["10.0.1.10".into()]), (9100, vec!["10.0.1.30".into()])]
    );
    assert_eq!(
        rules("web"),
        vec![(22, vec!["203.0.113.10".to_string()]), (80, vec!["0.0.0.0/0".into()]), (443, vec!["0.0.0.0/0".into()])]
    );
}

/// `-e` vars for nginx with `tls` = `mode` for the names blog.example.com and
/// www.blog.example.com (with "files": a certificate and key made for them, or `key` instead).
fn tls_vars(mode: &str, key: Option<&str>) -> Vars {
    let mut vars = Vars::new();
    let mut set = |k: &str, v: &str| vars.insert(k.into(), toml::Value::String(v.into()));
    set("tls", mode);
    set("server_name", "blog.example.com www.blog.example.com");
    let pair =
        rcgen::generate_simple_self_signed(vec!["blog.example.com".into(), "www.blog.example.com".into()]).unwrap();
    set("tls_certificate", &pair.cert.pem());
    set("tls_key", key.unwrap_or(&pair.signing_key.serialize_pem()));
    vars
}

/// tls = "acme" and "files" on Debian 12 and the Ubuntu LTS releases: every file passes its
/// validator (the site `nginx -t`, certbot's wrapper bash -n and shellcheck); HTTP redirects
/// to HTTPS except ACME challenges, HTTPS speaks TLS 1.2 and 1.3 with Mozilla's
/// "intermediate" ciphers only; "files" writes the pair 0600 and sensitive, and `nginx -t`
/// accepts it as it is (and refuses a key that is not the certificate's); certbot only with
/// "acme"; "off" (the repo's inventory) has no HTTPS at all.
#[test]
fn https_sites_pass_nginx_t_with_modern_tls() {
    let inv = repo_inventory();
    for mode in ["acme", "files"] {
        for facts in releases() {
            eprintln!("tls = {mode}, {}", facts.summary());
            let rendered = render_with(&inv, &facts, &tls_vars(mode, None));
            validate_all(&rendered);
            let web = &rendered["web"];
            let site = file(web, "/etc/nginx/sites-available/microblog");
            for line in [
                "listen 443 ssl default_server;",
                "server_name blog.example.com www.blog.example.com;",
                "ssl_protocols TLSv1.2 TLSv1.3;",
                "ssl_prefer_server_ciphers off;",
                "ssl_session_tickets off;",
                "location ^~ /.well-known/acme-challenge/ {",
                "root /var/www/microctl-acme;",
                "return 301 https://$host$request_uri;",
                "add_header Strict-Transport-Security \"max-age=63072000\" always;",
                "proxy_pass http://microblog;",
                "server 10.0.2.20:5000 max_fails=1 fail_timeout=5s;",
            ] {
                assert!(site.contains(line), "tls = {mode}: no `{line}` in:\n{site}");
            }
            let ciphers = site.lines().find_map(|l| l.trim().strip_prefix("ssl_ciphers ")).unwrap();
            for c in ciphers.trim_end_matches(';').split(':') {
                assert!(
                    c.starts_with("ECDHE-")
                        && (c.ends_with("GCM-SHA256") || c.ends_with("GCM-SHA384") || c.ends_with("CHACHA20-POLY1305")),
                    "{c}"
                );
            }
            // The app is served over HTTPS only: one proxy_pass, in the :443 server.
            let https = site.split("listen 443 ssl").nth(1).unwrap();
            assert_eq!(site.matches("proxy_pass").count(), 1);
            assert!(https.contains("proxy_pass http://microblog;"), "{site}");
            let pem = web.files.iter().find(|f| f.dest == "/etc/nginx/microctl-tls/site.pem").unwrap();
            assert!(pem.sensitive && pem.meta.mode == Some(0o600), "{:?}", pem.meta);
            let certbot = web.packages.iter().any(|p| p.name == "certbot");
            let obtain = web.commands.iter().find(|c| c.name == "ACME certificate").unwrap();
            // Every start of nginx (the service step of a converge runs before the command)
            // makes a stand-in first with "acme"; nothing is added otherwise.
            let drop_in = file(web, "/etc/systemd/system/nginx.service.d/microctl-tls.conf");
            let pre: Vec<&str> = drop_in.lines().filter(|l| l.starts_with("ExecStartPre=")).collect();
            if mode == "acme" {
                assert_eq!(
                    pre,
                    [
                        "ExecStartPre=",
                        "ExecStartPre=/usr/local/lib/microctl/acme-certificate stand-in",
                        "ExecStartPre=/usr/sbin/nginx -t -q -g 'daemon on; master_process on;'"
                    ],
                    "{drop_in}"
                );
            } else {
                assert!(pre.is_empty() && !drop_in.contains("[Service]"), "{drop_in}");
            }
            if mode == "acme" {
                assert!(certbot && pem.content.is_empty());
                assert_eq!(obtain.run, "/usr/local/lib/microctl/acme-certificate obtain");
                assert_eq!(obtain.unless.as_deref(), Some("/usr/local/lib/microctl/acme-certificate check"));
                assert!(site.contains("ssl_certificate /etc/nginx/microctl-tls/fullchain.pem;"), "{site}");
                let script = file(web, "/usr/local/lib/microctl/acme-certificate");
                for line in [
                    "names=\"blog.example.com www.blog.example.com\"",
                    "directory=\"https://acme-v02.api.letsencrypt.org/directory\"",
                    "--deploy-hook \"systemctl reload nginx\"",
                ] {
                    assert!(script.contains(line), "{line}: {script}");
                }
            } else {
                assert!(!certbot && obtain.run == "true");
                assert!(site.contains("ssl_certificate_key /etc/nginx/microctl-tls/site.pem;"), "{site}");
            }
        }
    }

    // "files": nginx -t with the rendered pair where the site expects it, and with a key that
    // is not the certificate's (nginx refuses: the pair itself is checked, not a stand-in).
    let other_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    for (key, ok) in [(None, true), (Some(other_key.as_str()), false)] {
        let rendered = render_with(&inv, &Facts::default(), &tls_vars("files", key));
        let tmp = tempfile::tempdir().unwrap();
        write_tree(tmp.path(), &rendered);
        let root = tmp.path().join("web");
        let pem = root.join("etc/nginx/microctl-tls/site.pem");
        let site = file(&rendered["web"], "/etc/nginx/sites-available/microblog")
            .replace("/etc/nginx/microctl-tls/site.pem", pem.to_str().unwrap());
        let site_path = tmp.path().join("site");
        std::fs::write(&site_path, site).unwrap();
        let out = Command::new("sh")
            .arg(root.join("usr/local/lib/microctl/nginx-check-site"))
            .arg(&site_path)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.success(), ok, "{said}");
        assert!(ok || said.contains("key values mismatch"), "{said}");
    }

    // "off", the default: no HTTPS, no certbot, an empty certificate file.
    let rendered = render_all(&inv);
    let web = &rendered["web"];
    let site = file(web, "/etc/nginx/sites-available/microblog");
    assert!(!site.contains("443") && !site.contains("ssl_") && !site.contains("return 301"), "{site}");
    assert!(!web.packages.iter().any(|p| p.name == "certbot"));
    assert!(file(web, "/etc/nginx/microctl-tls/site.pem").is_empty());
}

/// A `tls` that is not a mode, or HTTPS without the site's names, fails web's render with
/// a variable named after what to set.
#[test]
fn a_wrong_tls_setting_names_what_to_set() {
    let inv = repo_inventory();
    let roles = load_roles(&inv);
    let web = inv.host("web").unwrap();
    for (tls, names, says) in [
        ("https", "blog.example.com", "set_tls_to_off_acme_or_files"),
        ("acme", "_", "set_server_name_to_the_sites_dns_names_for_tls"),
        ("files", "_", "set_server_name_to_the_sites_dns_names_for_tls"),
    ] {
        let mut extra = tls_vars(tls, None);
        extra.insert("server_name".into(), toml::Value::String(names.into()));
        let renderer = Renderer::new(&inv, &roles, &extra);
        renderer.set_facts(web, &Facts::default(), "");
        let e = renderer.render(web, None).unwrap_err();
        assert!(e.to_string().contains(says), "{tls} {names}: {e}");
    }
}
