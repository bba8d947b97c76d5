//! Host facts against real sshd: `microctl facts` reports this machine's os-release,
//! `dpkg --print-architecture` and `nproc`; a converge of a role reading `facts` renders them
//! (first contact: a probe-only session, one gather, the real session); the next converge
//! uses the cache (one channel, nothing gathered); a cached fingerprint that is not the
//! host's (a reboot, an OS upgrade) makes the next converge gather again and succeed;
//! `check` says which facts it rendered with.

use std::path::PathBuf;

use crate::converge::Fleet;
use crate::support::*;

const ROLE: &str = r#"
[[file]]
dest = "{{ root }}/facts.txt"
content = "{{ facts.arch }} {{ facts.os_id }} {{ facts.os_version_id }} {{ facts.os_codename }} {{ facts.cpus }} {{ facts.boot_id }}\n"
"#;

fn tool(cmd: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn os_release(key: &str) -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap();
    let v = text.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_default();
    v.trim_matches('"').to_string()
}

/// The host's facts as this machine states them: arch os_id version codename cpus boot_id.
fn expected() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    format!(
        "{} {} {} {} {} {}\n",
        tool("dpkg", &["--print-architecture"]),
        os_release("ID"),
        os_release("VERSION_ID"),
        os_release("VERSION_CODENAME"),
        tool("nproc", &[]),
        boot.trim()
    )
}

struct Facts {
    fleet: Fleet,
    cache: PathBuf,
}

impl Facts {
    fn new() -> Facts {
        let fleet = Fleet::new(1, ROLE);
        let cache = fleet.ws.path("cache");
        Facts { fleet, cache }
    }

    fn run(&self, args: &[&str]) -> Run {
        let roles = self.fleet.ws.path("roles");
        // `--roles-dir` applies to converge and check, not to `facts`.
        let mut all = if args[0] == "facts" { vec![] } else { vec!["--roles-dir", roles.to_str().unwrap()] };
        all.extend_from_slice(args);
        self.fleet.ws.microctl_env(&all, &[("XDG_CACHE_HOME", self.cache.to_str().unwrap())])
    }

    /// The one cached facts file.
    fn cache_file(&self) -> PathBuf {
        let dir = self.cache.join("microctl/facts");
        let files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].clone()
    }
}

#[test]
fn facts_match_the_host_and_converge_caches_them() {
    let f = Facts::new();
    let written = f.fleet.root(0).join("facts.txt");

    // First contact: no cache. The probe-only session finds no fingerprint to match, the facts
    // are gathered, the host rendered again and converged: three channels, the file right.
    let run = f.run(&["converge", "--json"]);
    run.assert_code(0);
    let h = run.host("h0");
    assert_eq!(h["status"], "changed", "{h}");
    assert_eq!(h["channels_opened"], 3, "probe, gather, converge: {h}");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), expected());
    let cached = f.cache_file();

    // The cache is used: one channel, nothing gathered, nothing changed.
    let run = f.run(&["converge", "--json"]);
    run.assert_code(0);
    let h = run.host("h0");
    assert_eq!((h["channels_opened"].as_u64(), h["status"].as_str()), (Some(1), Some("ok")), "{h}");

    // A cached fingerprint that is not the host's (as after a reboot): gathered again, with
    // the cached facts' wrong values replaced by the host's.
    let text = std::fs::read_to_string(&cached).unwrap();
    let boot = tool("cat", &["/proc/sys/kernel/random/boot_id"]);
    let stale = text.replace(&boot, "00000000-1111-2222-3333-444444444444");
    assert_ne!(stale, text);
    std::fs::write(&cached, stale.replace(&format!("\"cpus\": {}", tool("nproc", &[])), "\"cpus\": 999")).unwrap();
    let run = f.run(&["converge", "--json"]);
    run.assert_code(0);
    let h = run.host("h0");
    assert_eq!((h["channels_opened"].as_u64(), h["status"].as_str()), (Some(3), Some("ok")), "{h}");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), expected());
    assert_eq!(std::fs::read_to_string(&cached).unwrap(), text, "the cache holds the host's facts again");

    // `microctl facts`: fresh, the host's values, as JSON and as a table.
    let run = f.run(&["facts", "--json"]);
    run.assert_code(0);
    let line = run.json().into_iter().find(|v| v["host"] == "h0").expect("h0's facts");
    let got = &line["facts"];
    assert_eq!(got["arch"], tool("dpkg", &["--print-architecture"]), "{line}");
    assert_eq!(got["os_id"], os_release("ID"), "{line}");
    assert_eq!(got["os_version_id"], os_release("VERSION_ID"), "{line}");
    assert_eq!(got["os_codename"], os_release("VERSION_CODENAME"), "{line}");
    assert_eq!(got["cpus"].to_string(), tool("nproc", &[]), "{line}");
    assert_eq!(got["hostname"], tool("cat", &["/proc/sys/kernel/hostname"]), "{line}");
    let run = f.run(&["facts", "h0"]);
    run.assert_code(0);
    let row = run.stdout.lines().nth(1).unwrap_or_default().to_string();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..3], ["h0", &tool("dpkg", &["--print-architecture"]), &os_release("ID")], "{}", run.stdout);

    // `check` renders offline and says with what: the cache here, `--facts` when given.
    let run = f.run(&["check"]);
    run.assert_code(0);
    assert!(run.stdout.contains("facts of 1 host from the cache, of 0 hosts the default"), "{}", run.stdout);
    std::fs::remove_file(&cached).unwrap();
    let run = f.run(&["check"]);
    assert!(run.stdout.contains("of 1 host the default (debian 12 (bookworm) amd64"), "{}", run.stdout);
    let run = f.run(&["check", "--facts", "os_id=ubuntu,os_version_id=24.04,arch=arm64"]);
    run.assert_code(0);
    assert!(run.stdout.contains("facts from --facts: ubuntu 24.04 (noble) arm64"), "{}", run.stdout);
    let run = f.run(&["check", "--facts", "cpus=many"]);
    run.assert_code(2);
    assert!(run.stderr.contains("--facts") && run.stderr.contains("whole number"), "{}", run.stderr);
}

/// A role that never reads `facts` gathers nothing and caches nothing: one channel on first
/// contact.
#[test]
fn a_role_without_facts_gathers_nothing() {
    let fleet = Fleet::new(1, "[[file]]\ndest = \"{{ root }}/plain.txt\"\ncontent = \"plain\\n\"\n");
    let cache = fleet.ws.path("cache");
    let roles = fleet.ws.path("roles");
    let run = fleet.ws.microctl_env(
        &["--roles-dir", roles.to_str().unwrap(), "converge", "--json"],
        &[("XDG_CACHE_HOME", cache.to_str().unwrap())],
    );
    run.assert_code(0);
    assert_eq!(run.host("h0")["channels_opened"], 1, "{}", run.stdout);
    assert!(!cache.exists(), "a host whose roles read no facts had them cached");
}
