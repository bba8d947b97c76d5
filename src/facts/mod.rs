//! Host facts: what a template may ask of a host (`facts.arch`, `facts.os_id`,
//! `facts.os_version_id`, `facts.os_codename`, `facts.cpus`, `facts.mem_mib`,
//! `facts.hostname`, `facts.boot_id`), gathered in one exec (`gather`) and cached on the
//! controller per host (`cache`), with the fingerprint they were gathered under: the boot id
//! and os-release's ID and VERSION_ID.
//!
//! Rendering happens before connecting, so a host whose roles read `facts` is rendered from
//! its cached facts (or, on first contact, from [`Facts::default`]) and its probe prints the
//! fingerprint with shell builtins only (`fingerprint.sh`: no process, no round trip). When it
//! differs from the one the render used (first contact, a reboot, an OS upgrade), the client
//! ends the session having sent nothing, the facts are gathered, cached, the host rendered
//! again and converged in a second session: a no-op pays nothing, a changed host pays two
//! round trips once. Hosts whose roles never read `facts` pay nothing at all.

pub mod cache;
pub mod gather;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// One host's facts (the template variable `facts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// `dpkg --print-architecture`: `amd64`, `arm64`...
    pub arch: String,
    /// os-release's `ID`: `debian`, `ubuntu`.
    pub os_id: String,
    /// os-release's `VERSION_ID`: `12`, `24.04`.
    pub os_version_id: String,
    /// os-release's `VERSION_CODENAME`: `bookworm`, `noble`.
    pub os_codename: String,
    pub cpus: u64,
    /// MemTotal, in MiB.
    pub mem_mib: u64,
    pub hostname: String,
    pub boot_id: String,
}

impl Default for Facts {
    /// What `check` renders with when it knows nothing of a host (README: facts): Debian 12
    /// amd64, 2 cpus, 2048 MiB.
    fn default() -> Facts {
        Facts {
            arch: "amd64".into(),
            os_id: "debian".into(),
            os_version_id: "12".into(),
            os_codename: "bookworm".into(),
            cpus: 2,
            mem_mib: 2048,
            hostname: "localhost".into(),
            boot_id: "00000000-0000-0000-0000-000000000000".into(),
        }
    }
}

/// The codename of a known release, so `--facts os_id=ubuntu,os_version_id=24.04` needs no more.
fn codename(os_id: &str, version: &str) -> Option<&'static str> {
    Some(match (os_id, version) {
        ("debian", "11") => "bullseye",
        ("debian", "12") => "bookworm",
        ("debian", "13") => "trixie",
        ("ubuntu", "20.04") => "focal",
        ("ubuntu", "22.04") => "jammy",
        ("ubuntu", "24.04") => "noble",
        _ => return None,
    })
}

impl Facts {
    /// The template value (`facts.arch`...).
    pub fn value(&self) -> minijinja::Value {
        minijinja::Value::from(minijinja::value::Serde(self))
    }

    /// Sets one fact by name from text (`--facts`, the gather's lines).
    fn set(&mut self, key: &str, value: &str) -> std::result::Result<(), String> {
        let number = |v: &str| v.parse::<u64>().map_err(|_| format!("`{key}` must be a whole number, not `{v}`"));
        match key {
            "arch" => self.arch = value.into(),
            "os_id" => self.os_id = value.into(),
            "os_version_id" => self.os_version_id = value.into(),
            "os_codename" => self.os_codename = value.into(),
            "cpus" => self.cpus = number(value)?,
            "mem_mib" => self.mem_mib = number(value)?,
            "hostname" => self.hostname = value.into(),
            "boot_id" => self.boot_id = value.into(),
            _ => return Err(format!("no fact `{key}`")),
        }
        Ok(())
    }

    /// `check --facts os_id=ubuntu,os_version_id=24.04,arch=arm64`: the default with these
    /// set (the codename follows a known release unless given).
    pub fn parse_overrides(text: &str) -> Result<Facts> {
        let mut facts = Facts::default();
        let mut codename_given = false;
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').ok_or_else(|| usage(format!("`{pair}` is not NAME=VALUE")))?;
            facts.set(key.trim(), value.trim()).map_err(usage)?;
            codename_given |= key.trim() == "os_codename";
        }
        if !codename_given {
            facts.os_codename = codename(&facts.os_id, &facts.os_version_id).unwrap_or_default().to_string();
        }
        Ok(facts)
    }

    /// One line for people: `ubuntu 24.04 (noble) arm64, 2 cpus, 2048 MiB`.
    pub fn summary(&self) -> String {
        format!(
            "{} {} ({}) {}, {} cpus, {} MiB",
            self.os_id, self.os_version_id, self.os_codename, self.arch, self.cpus, self.mem_mib
        )
    }
}

/// Before rendering: each selected host whose roles read `facts` gets its cached facts, or the
/// default with an empty fingerprint (its probe then says the facts are stale). Returns how
/// many hosts read facts and how many of those had none cached.
pub fn from_cache(
    renderer: &crate::role::Renderer,
    hosts: &[std::sync::Arc<crate::inventory::Host>],
) -> (usize, usize) {
    let (mut using, mut missing) = (0, 0);
    for host in hosts.iter().filter(|h| renderer.uses_facts(h)) {
        using += 1;
        match cache::load(host) {
            Some(g) => renderer.set_facts(host, &g.facts, &g.fingerprint),
            None => {
                missing += 1;
                renderer.set_facts(host, &Facts::default(), "");
            }
        }
    }
    (using, missing)
}

/// `check`'s facts, offline: `--facts` (over the default) for every host whose roles read
/// `facts`, else each host's cached facts, else the default. Returns the note saying which
/// (`None` when no role reads `facts`).
pub fn for_check(
    renderer: &crate::role::Renderer,
    hosts: &[std::sync::Arc<crate::inventory::Host>],
    given: Option<&str>,
) -> Result<Option<String>> {
    let given = given.map(Facts::parse_overrides).transpose()?;
    let using: Vec<_> = hosts.iter().filter(|h| renderer.uses_facts(h)).collect();
    if using.is_empty() {
        return Ok(None);
    }
    if let Some(facts) = given {
        for host in &using {
            renderer.set_facts(host, &facts, "");
        }
        return Ok(Some(format!("check: facts from --facts: {}", facts.summary())));
    }
    let (using, defaulted) = from_cache(renderer, hosts);
    let cached = using - defaulted;
    Ok(Some(format!(
        "check: facts of {} from the cache, of {} the default ({}; --facts to choose)",
        crate::report::count(cached, "host"),
        crate::report::count(defaulted, "host"),
        Facts::default().summary()
    )))
}

/// Gathers `host`'s facts through the pool (one exec) and caches them.
pub async fn gather_and_cache(
    pool: &crate::transport::Pool,
    host: &crate::inventory::Host,
) -> Result<gather::Gathered> {
    let conn = pool.connect(host).await?;
    let gathered = gather::gather(&conn, host).await?;
    cache::store(host, &gathered)?;
    Ok(gathered)
}

/// A host whose fingerprint changed again between the gather and the second session.
pub fn changed_while_converging(host: &crate::inventory::Host) -> Error {
    Error::new(
        ErrorKind::Remote,
        "the host's facts changed again while converging (a reboot or an OS upgrade under way?)",
    )
    .host(&host.name)
    .task("facts")
    .hint("nothing was applied; run converge again once the host is settled")
}

fn usage(message: String) -> Error {
    Error::new(ErrorKind::Usage, format!("--facts: {message}")).hint(
        "give NAME=VALUE pairs separated by commas, e.g. --facts os_id=ubuntu,os_version_id=24.04,arch=arm64 \
         (names: arch, os_id, os_version_id, os_codename, cpus, mem_mib, hostname, boot_id)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_start_from_the_default_and_follow_the_release() {
        let f = Facts::parse_overrides("os_id=ubuntu, os_version_id=24.04,arch=arm64").unwrap();
        assert_eq!(
            (f.os_id.as_str(), f.os_codename.as_str(), f.arch.as_str(), f.cpus),
            ("ubuntu", "noble", "arm64", 2)
        );
        assert_eq!(Facts::parse_overrides("").unwrap(), Facts::default());
        for bad in ["cpus=two", "colour=red", "arch"] {
            let e = Facts::parse_overrides(bad).unwrap_err();
            assert!(e.to_string().contains("--facts"), "{bad}: {e}");
        }
    }
}
