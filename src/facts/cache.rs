//! The facts cache on the controller: one JSON file per host in `$XDG_CACHE_HOME/microctl/facts/`
//! (else `~/.cache/microctl/facts/`), named after the host and keyed by its name, address and
//! port (a host moved to another address is another host), holding [`Gathered`]: the facts and
//! the fingerprint they were gathered under. Written atomically (a temporary file, named by process, renamed in);
//! the folder is the user's own, 0700. A file that cannot be read or does not parse is as good
//! as none: the host's facts are gathered again.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::gather::Gathered;
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::Host;

/// The cache folder.
pub fn dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".cache"),
    };
    Some(base.join("microctl").join("facts"))
}

/// `NAME-KEY.json`: KEY hashes the name, address and port.
pub fn path(host: &Host) -> Option<PathBuf> {
    let key = Sha256::digest(format!("{}\0{}\0{}", host.name, host.address, host.port).as_bytes());
    let key: String = key.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Some(dir()?.join(format!("{}-{key}.json", host.name)))
}

/// `host`'s cached facts, if any.
pub fn load(host: &Host) -> Option<Gathered> {
    let text = std::fs::read_to_string(path(host)?).ok()?;
    serde_json::from_str(&text).ok()
}

/// Records `host`'s facts.
pub fn store(host: &Host, gathered: &Gathered) -> Result<()> {
    let path = path(host).ok_or_else(|| {
        Error::new(ErrorKind::Usage, "cannot cache facts: neither XDG_CACHE_HOME nor HOME is set")
            .hint("set HOME or XDG_CACHE_HOME")
    })?;
    let dir = path.parent().expect("a folder");
    let io = |e: std::io::Error| {
        Error::new(ErrorKind::Usage, format!("cannot cache facts: {e}"))
            .at_file(dir)
            .host(&host.name)
            .hint("make the folder writable by you (or set XDG_CACHE_HOME)")
    };
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
    }
    let text = serde_json::to_string_pretty(gathered).expect("facts serialize");
    let tmp = dir.join(format!(".{}.{}.tmp", host.name, std::process::id()));
    std::fs::write(&tmp, text + "\n").map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}
