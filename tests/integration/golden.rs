//! Whole-output comparisons (issue #21, green means checked): the human output of converge,
//! deploy, exec and check in plain mode (not a terminal), stdout and stderr each compared
//! EXACTLY with the text written here, after [`blank`] replaced what changes from run to run
//! (durations, ports, the workspace's temp path, release stamps). A line the printer gains or
//! loses, or anything a host script prints outside its markers (a stray `every: not found`
//! from a probe), fails these. The JSON schema checks are in `output.rs`.

use crate::converge::Fleet;
use crate::support::*;

/// `text` with the run-dependent parts blanked: the workspace folder `tmp` as `TMP`, a port
/// after `127.0.0.1:` as `PORT`, a release stamp `20261207T180501.123Z` as `STAMP`, a
/// revision after it as `REV`, and a duration (`0.42s`, `12ms`, `3s`) as `T`.
pub fn blank(text: &str, tmp: &std::path::Path) -> String {
    let text = text.replace(&tmp.display().to_string(), "TMP");
    let text = blank_after(&text, "127.0.0.1:", "PORT", |c| c.is_ascii_digit());
    let c: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < c.len() {
        let word_start = i == 0 || !(c[i - 1].is_ascii_alphanumeric() || c[i - 1] == '.');
        if word_start && c[i].is_ascii_digit() {
            if let Some(n) = stamp(&c[i..]) {
                out.push_str("STAMP");
                i += n;
                if c.get(i) == Some(&'-') {
                    let rev = c[i + 1..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
                    if rev > 0 {
                        out.push_str("-REV");
                        i += 1 + rev;
                    }
                }
                continue;
            }
            if let Some(n) = duration(&c[i..]) {
                out.push('T');
                i += n;
                continue;
            }
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// `text` with the hosts in name order: hosts run in parallel (even `--forks 1` connects to
/// all at once), so the order in which their lines interleave, and the recap's rows (in the
/// order the hosts finished), vary from run to run. Each host's own lines keep their order;
/// lines that are no host's (the recap's header, the summary) keep their place.
pub fn by_host(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let header = lines.iter().position(|l| l.starts_with("host  status")).unwrap_or(lines.len());
    // The host lines (`NAME | ...`) sorted among their own places; other lines stay put.
    let mut results = lines[..header].to_vec();
    let places: Vec<usize> = (0..results.len()).filter(|i| results[*i].contains(" | ")).collect();
    let mut hosts: Vec<&str> = places.iter().map(|i| results[*i]).collect();
    hosts.sort_by_key(|l| l.split(" | ").next().unwrap_or("").trim().to_string());
    for (i, l) in places.into_iter().zip(hosts) {
        results[i] = l;
    }
    let mut rest = lines[header..].to_vec();
    if rest.len() > 2 {
        let end = rest.len() - 1;
        rest[1..end].sort_by_key(|l| l.split(' ').next().unwrap_or("").to_string());
    }
    results.iter().chain(&rest).map(|l| format!("{l}\n")).collect()
}

/// `text` with the run of characters `keep` after each `prefix` replaced by `with`.
fn blank_after(text: &str, prefix: &str, with: &str, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        out.push_str(&rest[..at + prefix.len()]);
        rest = &rest[at + prefix.len()..];
        let n = rest.chars().take_while(|c| keep(*c)).count();
        if n > 0 {
            out.push_str(with);
            rest = &rest[n..];
        }
    }
    out.push_str(rest);
    out
}

/// The length of a release stamp `YYYYMMDDTHHMMSS[.mmm]Z` at the start of `c`.
fn stamp(c: &[char]) -> Option<usize> {
    let digits = |from: usize, n: usize| c.len() >= from + n && c[from..from + n].iter().all(|c| c.is_ascii_digit());
    if !(digits(0, 8) && c.get(8) == Some(&'T') && digits(9, 6)) {
        return None;
    }
    let mut n = 15;
    if c.get(n) == Some(&'.') && digits(n + 1, 3) {
        n += 4;
    }
    (c.get(n) == Some(&'Z')).then_some(n + 1)
}

/// The length of a duration `12s`, `0.42s`, `12ms`, `1m02s` at the start of `c` (a number
/// followed by a unit that ends the word).
fn duration(c: &[char]) -> Option<usize> {
    let mut n = c.iter().take_while(|c| c.is_ascii_digit()).count();
    if c.get(n) == Some(&'.') {
        let frac = c[n + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if frac == 0 {
            return None;
        }
        n += 1 + frac;
    }
    let unit = ["ms", "s", "m"].iter().find(|u| c[n..].starts_with(&u.chars().collect::<Vec<_>>()))?;
    n += unit.len();
    if *unit == "m" {
        // `1m02s`
        n += duration(&c[n..])?;
        return Some(n);
    }
    let ends = c.get(n).is_none_or(|c| !c.is_ascii_alphanumeric());
    ends.then_some(n)
}

#[test]
fn by_host_orders_hosts_and_keeps_each_hosts_lines() {
    assert_eq!(
        by_host("b | 1\na | 1\nb | 2\na | 2\nhost  status\nb     ok\na     ok\n2 hosts\n"),
        "a | 1\na | 2\nb | 1\nb | 2\nhost  status\na     ok\nb     ok\n2 hosts\n"
    );
}

#[test]
fn blank_replaces_only_what_changes_between_runs() {
    let tmp = std::path::Path::new("/tmp/.tmpAbC");
    assert_eq!(
        blank(
            "h0 | release 20261207T180501.123Z-abc1234 at /tmp/.tmpAbC/h0/srv (127.0.0.1:40123) in 0.42s, 12ms, 1m02s\n\
             2 hosts: 2 ok in 3s; 5 pending; v2 h0s 10.0.2.2:5000\n",
            tmp
        ),
        "h0 | release STAMP-REV at TMP/h0/srv (127.0.0.1:PORT) in T, T, T\n\
         2 hosts: 2 ok in T; 5 pending; v2 h0s 10.0.2.2:5000\n"
    );
}

/// Runs microctl in `ws` with no heartbeat (a line every N s of a slow step depends on the
/// machine's load, not on the printer).
fn plain(ws: &Workspace, args: &[&str]) -> Run {
    ws.microctl_env(args, &[("MICROCTL_HEARTBEAT_SECS", "3600")])
}

/// Prints `what`'s blanked output when `GOLDEN_SHOW` is set (to write the expected text).
fn show(what: &str, run: &Run, tmp: &std::path::Path) {
    if std::env::var_os("GOLDEN_SHOW").is_some() {
        eprintln!(
            "==== {what} (exit {}) stdout:\n{}==== stderr:\n{}====",
            run.code,
            by_host(&blank(&run.stdout, tmp)),
            by_host(&blank(&run.stderr, tmp))
        );
    }
}

fn assert_golden(what: &str, run: &Run, tmp: &std::path::Path, code: i32, stdout: &str, stderr: &str) {
    show(what, run, tmp);
    assert_eq!(run.code, code, "{what}: {}{}", run.stdout, run.stderr);
    assert_eq!(by_host(&blank(&run.stdout, tmp)), stdout, "{what}: stdout");
    assert_eq!(by_host(&blank(&run.stderr, tmp)), stderr, "{what}: stderr");
}

#[test]
fn converge_plain_output_is_exactly_this() {
    let fleet = Fleet::new(2, crate::converge::ROLE);
    let roles = fleet.ws.path("roles");
    let tmp = fleet.ws.dir.path();
    let run = plain(&fleet.ws, &["--roles-dir", roles.to_str().unwrap(), "converge", "--forks", "1"]);
    assert_golden(
        "converge",
        &run,
        tmp,
        0,
        "h0 | changed: directory TMP/h0/etc/site (created)
h0 | changed: file TMP/h0/etc/site/greeting.conf (created)
h0 | changed: file TMP/h0/etc/site/version.txt (created)
h0 | changed: file TMP/h0/etc/site/checked.conf (created)
h0 | changed: link TMP/h0/etc/site/current (created)
h0 | ran handler: reload site
h0 | ran handler: restart site
h1 | changed: directory TMP/h1/etc/site (created)
h1 | changed: file TMP/h1/etc/site/greeting.conf (created)
h1 | changed: file TMP/h1/etc/site/version.txt (created)
h1 | changed: file TMP/h1/etc/site/checked.conf (created)
h1 | changed: link TMP/h1/etc/site/current (created)
h1 | ran handler: reload site
h1 | ran handler: restart site
host  status   detail                     duration
h0    changed  1 ok, 5 changed, 0 failed  T
h1    changed  1 ok, 5 changed, 0 failed  T
2 hosts: 2 ok, 10 changed, 0 failed, 0 unreachable in T
",
        "h0 | applying handler reload site
h0 | applying handler restart site
h1 | applying handler reload site
h1 | applying handler restart site
",
    );
    let run = plain(&fleet.ws, &["--roles-dir", roles.to_str().unwrap(), "converge", "--forks", "1"]);
    assert_golden(
        "converge again",
        &run,
        tmp,
        0,
        "host  status  detail                     duration
h0    ok      6 ok, 0 changed, 0 failed  T
h1    ok      6 ok, 0 changed, 0 failed  T
2 hosts: 2 ok, 0 changed, 0 failed, 0 unreachable in T
",
        "",
    );
}

/// The failure paths, where a host's own output does reach the user (a validator's words, the
/// error's detail): a refused file and a failed build, exactly these lines.
#[test]
fn failure_plain_output_is_exactly_this() {
    let fleet = Fleet::new(1, crate::converge::ROLE);
    let roles = fleet.ws.path("roles");
    let tmp = fleet.ws.dir.path();
    plain(&fleet.ws, &["--roles-dir", roles.to_str().unwrap(), "converge"]).assert_code(0);
    let run = plain(&fleet.ws, &["--roles-dir", roles.to_str().unwrap(), "converge", "-e", "checked=bad"]);
    assert_golden(
        "converge refused",
        &run,
        tmp,
        1,
        "h0 | FAILED: file TMP/h0/etc/site/checked.conf (content)
h0 | error: validate refused the new content of TMP/h0/etc/site/checked.conf (exit 1); the live file is unchanged
h0 |   host: h0
h0 |   task: file TMP/h0/etc/site/checked.conf (content)
h0 |   | checked.conf must start with good
h0 |   hint: the check was `grep -q '^good' %s || { echo 'checked.conf must start with good' >&2; exit 1; }` on the new content (its output is above); fix the template, the vars or the check, and run converge again
host  status  detail                     duration
h0    failed  5 ok, 0 changed, 1 failed  T
1 host: 0 ok, 0 changed, 1 failed, 0 unreachable in T
",
        "",
    );
    let app = crate::deploy::setup_with(1, |_| (String::new(), None));
    let run = plain(&app.ws, &["deploy", "app", "--ref", "broken"]);
    assert_golden(
        "deploy broken",
        &run,
        app.ws.dir.path(),
        1,
        "h0 | release STAMP-REV
h0 | build: python3 -c 'import ast; ast.parse(open(\"serve.py\").read())'
h0 | build: test ! -f BUILD_FAILS
h0 | error: build step `test ! -f BUILD_FAILS` failed on h0; current was not touched
h0 |   host: h0
host  status  detail                           duration
h0    failed  STAMP-REV  T
1 host: 0 ok, 0 changed, 1 failed, 0 unreachable in T
",
        "",
    );
}

#[test]
fn deploy_plain_output_is_exactly_this() {
    let app = crate::deploy::setup();
    let tmp = app.ws.dir.path();
    let run = plain(&app.ws, &["deploy", "app", "--ref", "v1"]);
    let host = |h: &str| {
        format!(
            "{h} | release STAMP-REV
{h} | build: python3 -c 'import ast; ast.parse(open(\"serve.py\").read())'
{h} | build: test ! -f BUILD_FAILS
{h} | confirm watchdog armed: rolls back unless confirmed within T
{h} | current -> STAMP-REV; restarting
{h} | restarted; checking health (confirm within T)
{h} | healthy: HTTP 200 from 127.0.0.1:PORT/healthz through {h}
{h} | verdict: keep the release
{h} | healthy: kept; old releases pruned
"
        )
    };
    let recap = "host  status   detail                           duration
h0    changed  STAMP-REV  T
h1    changed  STAMP-REV  T
2 hosts: 2 ok, 2 changed, 0 failed, 0 unreachable in T
";
    // (Both the switch and the health wait announce the same phase: two lines.)
    let waits = "h0 | waiting for the health check
h0 | waiting for the health check
h1 | waiting for the health check
h1 | waiting for the health check
";
    assert_golden("deploy", &run, tmp, 0, &format!("{}{}{recap}", host("h0"), host("h1")), waits);
    let run = plain(&app.ws, &["deploy", "app", "--ref", "sick"]);
    assert_golden(
        "deploy sick",
        &run,
        tmp,
        1,
        "h0 | release STAMP-REV
h0 | build: python3 -c 'import ast; ast.parse(open(\"serve.py\").read())'
h0 | build: test ! -f BUILD_FAILS
h0 | confirm watchdog armed: rolls back unless confirmed within T
h0 | current -> STAMP-REV; restarting
h0 | restarted; checking health (confirm within T)
h0 | verdict: roll back
h0 | rolled back to STAMP-REV
h0 | after rollback: healthy, HTTP 200
h0 | error: health check failed on h0; rolled back to STAMP-REV
h0 |   host: h0
h0 |   task: release STAMP-REV
h0 |   | HTTP 500 from http://127.0.0.1:PORT/healthz: version 2
h0 |   hint: the site kept serving the previous release; fix the app and deploy again
host  status   detail                                        duration
h0    failed   STAMP-REV, rolled back  T
h1    skipped  not attempted: an earlier host failed         T
2 hosts: 0 ok, 0 changed, 1 failed, 0 unreachable, 1 skipped in T
",
        "h0 | waiting for the health check
h0 | waiting for the health check
",
    );
}

#[test]
fn exec_plain_output_is_exactly_this() {
    let (ws, _sshd) = crate::output::exec_workspace();
    let run = plain(&ws, &["exec", "all", "--forks", "1", "--", "printf 'abc'; echo err >&2"]);
    assert_golden(
        "exec",
        &run,
        ws.dir.path(),
        1,
        "a    | abc
b    | abc
down | error: cannot connect to down (127.0.0.1:PORT)
down |   host: down
down |   caused by: Connection refused (os error 111)
down |   hint: check the address and port, and that sshd is running there
host  status       detail              duration
a     ok           exit 0              T
b     ok           exit 0              T
down  unreachable  connection refused  T
3 hosts: 2 ok, 0 failed, 1 unreachable in T
",
        "a    | running
a    | err
b    | running
b    | err
",
    );
}

#[test]
fn check_plain_output_is_exactly_this() {
    let fleet = Fleet::new(1, crate::converge::ROLE);
    let roles = fleet.ws.path("roles");
    let run = plain(&fleet.ws, &["--roles-dir", roles.to_str().unwrap(), "check"]);
    assert_golden(
        "check",
        &run,
        fleet.ws.dir.path(),
        0,
        "check: 6 resources rendered from TMP/roles (TMP/inventory.toml)
1 host: 1 ok, 0 failed in T
",
        "",
    );
}
