//! `microctl converge` against real sshd: first run creates, second run changes nothing in one
//! exec channel, one var changes exactly its files and handlers, validate protects live files,
//! `--check` changes nothing, handlers survive failure, the host lock serialises runs, and the
//! hash record that spares a no-op reading files never hides an edit.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::*;

pub const ROLE: &str = r#"
[defaults]
greeting = "hello"
version = 1
handler_fails = false

[[directory]]
path = "{{ root }}/etc/site"
mode = "0750"

[[file]]
dest = "{{ root }}/etc/site/greeting.conf"
template = "greeting.conf.j2"
mode = "0640"
notify = ["reload site"]

[[file]]
dest = "{{ root }}/etc/site/version.txt"
content = "version {{ version }}\n"
notify = ["restart site"]

[[file]]
dest = "{{ root }}/etc/site/checked.conf"
content = "{{ checked | default('good') }}\n"
validate = "grep -q '^good' %s || { echo 'checked.conf must start with good' >&2; exit 1; }"

[[link]]
path = "{{ root }}/etc/site/current"
target = "{{ root }}/etc/site/greeting.conf"

[[absent]]
path = "{{ root }}/etc/site/old.conf"

[[handler]]
name = "reload site"
run = "echo reload >> {{ root }}/handlers.log"

[[handler]]
name = "restart site"
run = "{% if handler_fails %}echo restart refused >&2; exit 7{% else %}echo restart >> {{ root }}/handlers.log{% endif %}"
"#;

const TEMPLATE: &str =
    "{{ greeting }} from {{ host.name }}\npeers:{% for h in groups.site %} {{ h.name }}{% endfor %}\n";

/// A workspace with `n` hosts (each its own sshd and root folder) using role `site`.
pub struct Fleet {
    pub ws: Workspace,
    pub _sshd: Vec<Sshd>,
}

impl Fleet {
    pub fn new(n: usize, role: &str) -> Fleet {
        Fleet::with(n, role, |_| SshdOptions::default())
    }

    /// Like `new`, with host `i`'s sshd options from `opts(i)`.
    pub fn with(n: usize, role: &str, opts: impl Fn(usize) -> SshdOptions) -> Fleet {
        let ws = Workspace::new();
        let sshd: Vec<Sshd> = (0..n).map(|i| ws.sshd(opts(i))).collect();
        ws.known_hosts(&sshd.iter().collect::<Vec<_>>());
        let mut hosts = String::new();
        for (i, s) in sshd.iter().enumerate() {
            let root = ws.path(&format!("h{i}"));
            hosts.push_str(&format!(
                "[hosts.h{i}]\naddress = \"127.0.0.1\"\nport = {}\ngroups = [\"site\"]\nstate_dir = \"{r}/state\"\nvars = {{ root = \"{r}\" }}\n",
                s.port,
                r = root.display()
            ));
        }
        hosts.push_str("[groups.site]\nroles = [\"site\"]\n");
        ws.inventory(&hosts);
        let role_dir = ws.path("roles/site/templates");
        std::fs::create_dir_all(&role_dir).unwrap();
        std::fs::write(ws.path("roles/site/role.toml"), role).unwrap();
        std::fs::write(role_dir.join("greeting.conf.j2"), TEMPLATE).unwrap();
        Fleet { ws, _sshd: sshd }
    }

    pub fn root(&self, i: usize) -> PathBuf {
        self.ws.path(&format!("h{i}"))
    }

    pub fn converge(&self, extra: &[&str]) -> Run {
        let roles = self.ws.path("roles");
        let mut args = vec!["--roles-dir", roles.to_str().unwrap(), "converge", "--json"];
        args.extend_from_slice(extra);
        self.ws.microctl(&args)
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn first_run_creates_second_changes_nothing_in_one_channel() {
    let fleet = Fleet::new(2, ROLE);
    std::fs::create_dir_all(fleet.root(0).join("etc/site")).unwrap();
    std::fs::write(fleet.root(0).join("etc/site/old.conf"), "stale").unwrap();

    let first = fleet.converge(&[]);
    first.assert_code(0);
    for i in 0..2 {
        let root = fleet.root(i);
        let site = root.join("etc/site");
        assert_eq!(read(&site.join("greeting.conf")), format!("hello from h{i}\npeers: h0 h1"));
        assert_eq!(mode(&site.join("greeting.conf")), 0o640);
        assert_eq!(mode(&site), 0o750);
        assert_eq!(mode(&site.join("version.txt")), 0o644);
        assert_eq!(std::fs::read_link(site.join("current")).unwrap(), site.join("greeting.conf"));
        assert!(!site.join("old.conf").exists());
        assert_eq!(read(&root.join("handlers.log")), "reload\nrestart\n");
        let h = first.host(&format!("h{i}"));
        assert_eq!(h["handlers"], serde_json::json!(["reload site", "restart site"]));
        assert_eq!(h["channels_opened"], 1, "probe and apply share one channel: {h}");
        // No stray temp files.
        let names: Vec<String> =
            std::fs::read_dir(&site).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert!(names.iter().all(|n| !n.starts_with(".microctl")), "{names:?}");
    }
    assert_eq!(first.host("h0")["changed"], 6, "dir, 3 files, link, absent: {}", first.stdout);
    assert_eq!(first.host("h1")["changed"], 5);

    let second = fleet.converge(&[]);
    second.assert_code(0);
    for i in 0..2 {
        let h = second.host(&format!("h{i}"));
        assert_eq!(h["changed"], 0, "{h}");
        assert_eq!(h["ok"], 6);
        assert_eq!(h["handlers"], serde_json::json!([]));
        assert_eq!(h["channels_opened"], 1, "a no-op converge is one exec: {h}");
        assert_eq!(read(&fleet.root(i).join("handlers.log")), "reload\nrestart\n");
    }
}

#[test]
fn one_var_changes_exactly_its_files_and_handlers() {
    let fleet = Fleet::new(1, ROLE);
    fleet.converge(&[]).assert_code(0);
    let run = fleet.converge(&["-e", "greeting=hi"]);
    run.assert_code(0);
    let h = run.host("h0");
    assert_eq!(h["changed"], 1, "{h}");
    assert_eq!(h["changes"][0]["resource"], format!("file {}/etc/site/greeting.conf", fleet.root(0).display()));
    assert_eq!(h["handlers"], serde_json::json!(["reload site"]));
    assert_eq!(read(&fleet.root(0).join("handlers.log")), "reload\nrestart\nreload\n");

    // Mode drift is repaired without upload and fires the file's handler.
    std::fs::set_permissions(fleet.root(0).join("etc/site/greeting.conf"), std::fs::Permissions::from_mode(0o666))
        .unwrap();
    let run = fleet.converge(&["-e", "greeting=hi"]);
    assert_eq!(run.host("h0")["changes"][0]["reason"], "mode 0666 -> 0640");
    assert_eq!(mode(&fleet.root(0).join("etc/site/greeting.conf")), 0o640);
}

#[test]
fn check_mode_reports_and_changes_nothing_and_diff_shows_lines() {
    let fleet = Fleet::new(1, ROLE);
    fleet.converge(&[]).assert_code(0);
    let run = fleet.converge(&["--check", "--diff", "-e", "version=2"]);
    run.assert_code(3);
    let h = run.host("h0");
    assert_eq!(h["changed"], 1);
    assert_eq!(h["handlers"], serde_json::json!(["restart site"]));
    let diff = h["diffs"][0].as_str().unwrap();
    assert!(diff.contains("-version 1\n+version 2\n"), "{diff}");
    assert_eq!(read(&fleet.root(0).join("etc/site/version.txt")), "version 1\n");
    fleet.converge(&["--check"]).assert_code(0);
}

/// `--check` on a host no run has converged creates nothing there, not even the state folder
/// (nor the folders above it): the session takes no lock when there is no folder to lock.
#[test]
fn check_on_a_fresh_host_creates_not_even_the_state_folder() {
    let fleet = Fleet::new(1, ROLE);
    let root = fleet.root(0);
    assert!(!root.exists());
    let run = fleet.converge(&["--check"]);
    run.assert_code(3);
    assert!(run.host("h0")["changed"].as_u64().unwrap() > 0, "{}", run.stdout);
    assert!(!root.join("state").exists(), "--check created the state folder");
    assert!(!root.exists(), "--check created {}", root.display());
    // The run after it converges as usual, and a --check on the converged host still locks.
    fleet.converge(&[]).assert_code(0);
    assert_eq!(mode(&root.join("state")), 0o700);
    let mut holder = hold_lock(&root.join("state"));
    let run = fleet.converge(&["--check", "--lock-timeout", "1"]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    run.assert_code(1);
    assert!(run.host("h0")["error"]["message"].as_str().unwrap().contains("lock"), "{}", run.stdout);
}

#[test]
fn failing_validate_keeps_the_live_file_and_fails_the_host() {
    let fleet = Fleet::new(2, ROLE);
    fleet.converge(&[]).assert_code(0);
    let live = fleet.root(0).join("etc/site/checked.conf");
    let run = fleet.converge(&["-e", "checked=bad"]);
    run.assert_code(1);
    assert_eq!(read(&live), "good\n");
    let err = &run.host("h0")["error"];
    assert_eq!(err["class"], "remote");
    assert_eq!(err["task"], format!("file {} (content)", live.display()));
    let text = fleet.ws.microctl(&[
        "--roles-dir",
        fleet.ws.path("roles").to_str().unwrap(),
        "converge",
        "h0",
        "-e",
        "checked=bad",
    ]);
    assert!(text.stdout.contains("checked.conf must start with good"), "{}", text.stdout);
    // It says who refused what, and that the live file stands.
    assert!(
        text.stdout.contains(&format!(
            "validate refused the new content of {} (exit 1); the live file is unchanged",
            live.display()
        )),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("hint: the check was `grep -q '^good' %s ||"), "{}", text.stdout);
    let names: Vec<String> = std::fs::read_dir(live.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with(".microctl")), "staged file removed: {names:?}");
}

#[test]
fn handlers_survive_a_failed_run_and_fire_on_the_next() {
    let fleet = Fleet::new(1, ROLE);
    fleet.converge(&[]).assert_code(0);
    // version.txt changes, then its handler fails: the run fails after the file changed.
    let run = fleet.converge(&["-e", "version=2", "-e", "handler_fails=true"]);
    run.assert_code(1);
    assert_eq!(read(&fleet.root(0).join("etc/site/version.txt")), "version 2\n");
    assert!(run.host("h0")["error"]["message"].as_str().unwrap().contains("handler restart site failed (exit 7)"));
    assert_eq!(read(&fleet.root(0).join("state/pending-handlers")), "restart site\n");
    // Nothing differs any more, but the pending handler still runs, once.
    let run = fleet.converge(&["-e", "version=2"]);
    run.assert_code(0);
    let h = run.host("h0");
    assert_eq!(h["changed"], 0);
    assert_eq!(h["handlers"], serde_json::json!(["restart site"]));
    assert_eq!(h["pending_handlers"], serde_json::json!(["restart site"]));
    assert!(!fleet.root(0).join("state/pending-handlers").exists());
    assert_eq!(read(&fleet.root(0).join("handlers.log")), "reload\nrestart\nrestart\n");
    assert_eq!(fleet.converge(&["-e", "version=2"]).host("h0")["handlers"], serde_json::json!([]));
}

/// The state folder's hash record (`plan::hashes`): its entry names.
fn record(fleet: &Fleet) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fleet.root(0).join("state/hashes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The hash record lets a no-op skip reading the managed files (`sha256sum`), but an edit
/// made to look like nothing happened is still seen and undone: the content changed in place
/// with the same size and the old mtime put back, or another file with the same size and old
/// mtime renamed over it (what fools rsync's quick check, size + mtime).
#[test]
fn an_edit_that_keeps_size_and_mtime_is_still_seen() {
    use std::io::{Seek, Write};
    let fleet = Fleet::new(1, ROLE);
    fleet.converge(&[]).assert_code(0);
    let record = self::record(&fleet);
    assert_eq!(record.iter().filter(|n| n.starts_with("T_")).count(), 1, "{record:?}");
    assert_eq!(record.len(), 4, "T and the 3 files: {record:?}");
    let noop = fleet.converge(&[]);
    assert_eq!(noop.host("h0")["changed"], 0, "{}", noop.stdout);
    assert_eq!(self::record(&fleet), record, "a no-op that read no file writes no record");

    let version = fleet.root(0).join("etc/site/version.txt");
    let mtime = std::fs::metadata(&version).unwrap().modified().unwrap();
    let mut f = std::fs::OpenOptions::new().write(true).open(&version).unwrap();
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.write_all(b"version 9\n").unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);
    assert_eq!(std::fs::metadata(&version).unwrap().modified().unwrap(), mtime);
    let run = fleet.converge(&[]);
    run.assert_code(0);
    let h = run.host("h0");
    assert_eq!(h["changed"], 1, "{h}");
    assert_eq!(h["changes"][0]["resource"], format!("file {}", version.display()));
    assert_eq!(h["handlers"], serde_json::json!(["restart site"]));
    assert_eq!(read(&version), "version 1\n");

    let greeting = fleet.root(0).join("etc/site/greeting.conf");
    let meta = std::fs::metadata(&greeting).unwrap();
    let other = fleet.root(0).join("etc/site/other");
    std::fs::write(&other, "x".repeat(meta.len() as usize)).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::File::options().write(true).open(&other).unwrap().set_modified(meta.modified().unwrap()).unwrap();
    std::fs::rename(&other, &greeting).unwrap();
    let run = fleet.converge(&[]);
    let h = run.host("h0");
    assert_eq!((h["changed"].as_u64(), h["handlers"].clone()), (Some(1), serde_json::json!(["reload site"])), "{h}");
    assert_eq!(read(&greeting), "hello from h0\npeers: h0");
    assert_eq!(fleet.converge(&[]).host("h0")["changed"], 0);

    // No record (removed by hand, or an upgrade): every file is read, nothing is changed,
    // and the record is written again for the next run.
    std::fs::remove_dir_all(fleet.root(0).join("state/hashes")).unwrap();
    let run = fleet.converge(&[]);
    run.assert_code(0);
    let h = run.host("h0");
    assert_eq!(
        (h["changed"].as_u64(), h["status"].as_str(), h["handlers"].clone()),
        (Some(0), Some("ok"), serde_json::json!([])),
        "{h}"
    );
    assert_eq!(self::record(&fleet).len(), 4, "written again");
    assert_eq!(read(&fleet.root(0).join("handlers.log")), "reload\nrestart\nrestart\nreload\n");
}
