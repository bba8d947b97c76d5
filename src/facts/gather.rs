//! Gathering a host's facts: `fingerprint.sh` then `gather.sh`, sent on the stdin of one
//! `sh -s` exec as the login user (no root needed), and the parser of what they print. The
//! fingerprint section is also what a converge's probe runs ([`FINGERPRINT_SH`]), so the
//! line a gather records and the line a probe prints are made by the same shell.

use crate::error::{Error, ErrorKind, Result};
use crate::inventory::Host;
use crate::remote::Shipped;
use crate::transport::Connection;

use super::Facts;

/// Prints the `F` line (builtins only): part of the probe of a host whose roles read `facts`.
pub static FINGERPRINT_SH: Shipped = Shipped::new(include_str!("fingerprint.sh"));
static GATHER_SH: Shipped = Shipped::new(include_str!("gather.sh"));

/// Facts as gathered, with the fingerprint line (`F<TAB>...`, without its tag) they were
/// gathered under.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Gathered {
    pub fingerprint: String,
    pub facts: Facts,
}

/// The whole gather script.
pub fn script() -> String {
    format!("{FINGERPRINT_SH}{GATHER_SH}")
}

/// Gathers `host`'s facts over `conn`: one exec.
pub async fn gather(conn: &std::sync::Arc<Connection>, host: &Host) -> Result<Gathered> {
    let out = conn.exec("sh -s", script().as_bytes(), |_| {}).await.map_err(|e| e.task("gathering facts"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.success() {
        return Err(failed(host, format!("the facts script exited {:?}", out.exit_code))
            .detail(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    parse(&stdout).map_err(|why| failed(host, why).detail(stdout.into_owned()))
}

fn failed(host: &Host, why: String) -> Error {
    Error::new(ErrorKind::Remote, format!("cannot gather facts: {why}"))
        .host(&host.name)
        .task("gathering facts")
        .hint("facts need a Debian or Ubuntu host (dpkg, nproc, /proc, /etc/os-release); check with `microctl exec HOST -- dpkg --print-architecture`")
}

/// Parses the gather's output. Every fact is required; an unknown line is an error.
pub fn parse(out: &str) -> std::result::Result<Gathered, String> {
    let mut fingerprint = None;
    let mut facts = Facts { cpus: 0, mem_mib: 0, ..Facts::default() };
    let mut seen: Vec<&str> = Vec::new();
    for line in out.lines() {
        let (tag, value) = line.split_once('\t').ok_or_else(|| format!("unexpected line `{}`", line.escape_debug()))?;
        let key = match tag {
            "F" => {
                fingerprint = Some(value.to_string());
                continue;
            }
            "os" => {
                let (k, v) = value.split_once('=').ok_or_else(|| format!("unexpected os-release line `{value}`"))?;
                let v = os_release_value(v);
                match k {
                    "ID" => ("os_id", v),
                    "VERSION_ID" => ("os_version_id", v),
                    "VERSION_CODENAME" => ("os_codename", v),
                    _ => return Err(format!("unexpected os-release line `{value}`")),
                }
            }
            "mem_kib" => {
                let kib: u64 = value.parse().map_err(|_| format!("MemTotal is `{value}`"))?;
                ("mem_mib", (kib / 1024).to_string())
            }
            "arch" | "cpus" | "hostname" => (tag, value.to_string()),
            _ => return Err(format!("unexpected line `{}`", line.escape_debug())),
        };
        if key.1.is_empty() {
            return Err(format!("`{}` is empty", key.0));
        }
        facts.set(key.0, &key.1)?;
        seen.push(key.0);
    }
    let fingerprint = fingerprint.ok_or("no fingerprint line")?;
    facts.boot_id = fingerprint.split('\t').next().unwrap_or_default().to_string();
    if facts.boot_id.is_empty() {
        return Err("no boot id (/proc/sys/kernel/random/boot_id)".into());
    }
    for need in ["arch", "cpus", "mem_mib", "hostname", "os_id", "os_version_id"] {
        if !seen.contains(&need) {
            return Err(format!("no `{need}`"));
        }
    }
    // Debian testing/unstable has no VERSION_CODENAME in some releases: then empty.
    Ok(Gathered { fingerprint, facts })
}

/// An os-release value: unquoted (`"12"` -> `12`, `'x'` -> `x`).
fn os_release_value(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner.replace("\\\"", "\"");
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gather script under sh and dash on this machine: empty stderr, and each fact what
    /// the machine says (os-release, dpkg, nproc, boot id); the fingerprint line is the one
    /// the probe's section prints alone.
    #[test]
    fn gather_under_sh_and_dash() {
        let run = |shell: &str, text: &str| {
            let out = std::process::Command::new(shell).arg("-c").arg(text).output().unwrap();
            assert!(out.status.success(), "{shell}: {out:?}");
            assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{shell}: the script wrote to stderr");
            String::from_utf8(out.stdout).unwrap()
        };
        let tool = |cmd: &str, arg: &str| {
            let out = std::process::Command::new(cmd).arg(arg).output().expect(cmd);
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };
        let os = std::fs::read_to_string("/etc/os-release").unwrap();
        let field = |k: &str| {
            os.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).map(os_release_value).unwrap_or_default()
        };
        for shell in ["sh", "dash"] {
            let g = parse(&run(shell, &script())).unwrap();
            assert_eq!(g.facts.os_id, field("ID"), "{shell}");
            assert_eq!(g.facts.os_version_id, field("VERSION_ID"), "{shell}");
            assert_eq!(g.facts.os_codename, field("VERSION_CODENAME"), "{shell}");
            assert_eq!(g.facts.arch, tool("dpkg", "--print-architecture"), "{shell}");
            assert_eq!(g.facts.cpus.to_string(), tool("nproc", "--ignore=0"), "{shell}");
            let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
            assert_eq!(g.facts.boot_id, boot.trim(), "{shell}");
            assert!(g.facts.mem_mib > 0 && !g.facts.hostname.is_empty(), "{shell}");
            let alone = run(shell, &FINGERPRINT_SH);
            assert_eq!(alone, format!("F\t{}\n", g.fingerprint), "{shell}");
        }
    }

    #[test]
    fn odd_output_is_refused() {
        let ok = "F\tb\tID=debian\tVERSION_ID=\"12\"\narch\tamd64\ncpus\t2\nmem_kib\t2097152\nhostname\th\nos\tID=debian\nos\tVERSION_ID=\"12\"\n";
        let g = parse(ok).unwrap();
        assert_eq!((g.facts.mem_mib, g.facts.os_version_id.as_str(), g.facts.boot_id.as_str()), (2048, "12", "b"));
        for (bad, why) in [
            (ok.replace("arch\tamd64\n", ""), "no `arch`"),
            (ok.replace("cpus\t2", "cpus\t"), "`cpus` is empty"),
            (ok.replace("cpus\t2", "cpus\ttwo"), "whole number"),
            (format!("{ok}rogue line\n"), "unexpected line"),
            (ok.replace("F\tb\t", "X\tb\t"), "unexpected line"),
            (ok.lines().skip(1).map(|l| format!("{l}\n")).collect(), "no fingerprint"),
        ] {
            let e = parse(&bad).unwrap_err();
            assert!(e.contains(why), "{why}: {e}");
        }
    }
}
