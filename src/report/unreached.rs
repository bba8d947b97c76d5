//! Hosts on which no session could be had, as text mode reports them: each one's recap detail
//! (its class in words, `host key changed`, `jump host a: timed out`), and their errors
//! grouped at the end of the run. Hosts behind a jump host that failed fail with it: their
//! errors and the jump host's own are one failure, printed once with the hosts it hit
//! (`host: a, b, c (3 hosts; b, c via a)`) and its hint once. Other errors are grouped only
//! when they are the same but for the host. A failure that hit one host prints as any host
//! error does. `--json` keeps one error per host.

use crate::error::{Error, ErrorKind};

/// The recap's detail for a host never reached: why, in words; behind a failed jump host,
/// which hop failed and why.
pub fn detail(err: &Error) -> String {
    let words = err.unreached.map_or("cannot connect", |u| u.words());
    match (&err.hop, err.kind) {
        (Some(hop), ErrorKind::JumpFailed) => format!("jump host {hop}: {words}"),
        _ => words.to_string(),
    }
}

/// What to print for one failure: one host's own error, or an error shared by several.
#[derive(Debug)]
pub(super) enum Report {
    One { host: String, text: String },
    Shared(Error),
}

/// The failures of `failures` (host, error, in the run's host order), grouped: each failure
/// once, in the order first seen.
pub(super) fn grouped(failures: &[(String, Error)]) -> Vec<Report> {
    let mut groups: Vec<(&Error, Vec<&(String, Error)>)> = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for failure in failures {
        let root = root(&failure.1);
        let mut key = root.duplicate();
        key.host = None;
        key.hop = None;
        match seen.entry(key.to_string()) {
            std::collections::hash_map::Entry::Occupied(i) => groups[*i.get()].1.push(failure),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(groups.len());
                groups.push((root, vec![failure]));
            }
        }
    }
    groups
        .into_iter()
        .map(|(root, hit)| match hit[..] {
            [(host, err)] => Report::One { host: host.clone(), text: err.to_string() },
            _ => Report::Shared(shared(root, &hit)),
        })
        .collect()
}

/// The failure itself: behind failed jump hosts, the error of the hop that failed.
fn root(err: &Error) -> &Error {
    let mut err = err;
    while err.kind == ErrorKind::JumpFailed {
        match err.cause.as_deref().and_then(|c| c.downcast_ref::<Error>()) {
            Some(inner) => err = inner,
            None => break,
        }
    }
    err
}

/// `root` naming the hosts it hit, and those behind the hop that failed: `a, b, c (3 hosts;
/// b, c via a)`.
fn shared(root: &Error, hit: &[&(String, Error)]) -> Error {
    let names: Vec<String> = hit.iter().map(|(h, _)| h.clone()).collect();
    let mut listed = super::host_list(&names);
    let behind: Vec<&str> =
        hit.iter().filter(|(_, e)| e.kind == ErrorKind::JumpFailed).map(|(h, _)| h.as_str()).collect();
    let mut err = root.duplicate();
    if let (false, Some(hop)) = (behind.is_empty(), &root.host) {
        let more = if behind.len() > 10 { ", ..." } else { "" };
        let shown = behind[..behind.len().min(10)].join(", ");
        listed = format!("{}; {shown}{more} via {hop})", listed.strip_suffix(')').unwrap_or(&listed));
        err.hop = None;
    }
    err.host = Some(listed);
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Unreached;

    fn changed(host: &str) -> Error {
        Error::new(ErrorKind::HostKeyChanged, format!("HOST KEY CHANGED for {host} (127.0.0.1:22)"))
            .host(host)
            .unreached(Unreached::HostKeyChanged)
            .hint("delete that line")
    }

    fn behind(host: &str, jump: Error) -> Error {
        let hop = jump.hop.clone().or(jump.host.clone()).unwrap();
        Error::new(ErrorKind::JumpFailed, format!("cannot reach {host}: jump host {hop} failed"))
            .host(host)
            .hop(hop)
            .unreached(jump.unreached.unwrap())
            .hint(jump.hint.clone().unwrap())
            .caused_by(jump)
    }

    fn texts(reports: &[Report]) -> Vec<String> {
        reports
            .iter()
            .map(|r| match r {
                Report::One { host, text } => format!("{host} | {text}"),
                Report::Shared(e) => e.to_string(),
            })
            .collect()
    }

    #[test]
    fn hosts_behind_a_failed_jump_host_share_its_error() {
        let failures = vec![
            ("a".to_string(), changed("a")),
            ("b".to_string(), behind("b", changed("a")).duplicate()),
            // Two hops behind: c via b via a.
            ("c".to_string(), behind("c", behind("b", changed("a")).duplicate()).duplicate()),
        ];
        assert_eq!(
            texts(&grouped(&failures)),
            ["HOST KEY CHANGED for a (127.0.0.1:22)\n  host: a, b, c (3 hosts; b, c via a)\n  hint: delete that line"]
        );
        // Without the jump host itself.
        assert_eq!(
            texts(&grouped(&failures[1..])),
            ["HOST KEY CHANGED for a (127.0.0.1:22)\n  host: b, c (2 hosts; b, c via a)\n  hint: delete that line"]
        );
        assert_eq!(detail(&failures[2].1), "jump host a: host key changed");
        assert_eq!(detail(&failures[0].1), "host key changed");
    }

    #[test]
    fn different_failures_stay_apart_and_one_host_keeps_its_own_error() {
        let refused = |host: &str, port: u16| {
            Error::new(ErrorKind::Unreachable, format!("cannot connect to {host} (127.0.0.1:{port})"))
                .host(host)
                .unreached(Unreached::Refused)
        };
        let failures = vec![
            ("x".to_string(), refused("x", 1)),
            ("y".to_string(), refused("y", 2)),
            ("z".to_string(), behind("z", changed("a"))),
        ];
        assert_eq!(
            texts(&grouped(&failures)),
            [
                "x | cannot connect to x (127.0.0.1:1)\n  host: x",
                "y | cannot connect to y (127.0.0.1:2)\n  host: y",
                "z | cannot reach z: jump host a failed\n  host: z\n  hop: a\n  caused by: HOST KEY CHANGED for a (127.0.0.1:22)\n  hint: delete that line",
            ]
        );
        // The same error but for the host (one unprotected key file) is one failure.
        let key = |host: &str| {
            Error::new(ErrorKind::Identity, "/k is readable by others").host(host).unreached(Unreached::Identity)
        };
        let failures = vec![("x".to_string(), key("x")), ("y".to_string(), key("y"))];
        assert_eq!(texts(&grouped(&failures)), ["/k is readable by others\n  host: x, y (2 hosts)"]);
    }
}
