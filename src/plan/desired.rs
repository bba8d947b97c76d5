//! The desired state of one host: every resource of its roles, rendered (templates filled in,
//! content hashed), ready to be compared with what the probe observed.

use std::sync::Arc;

/// Ownership and permissions; `None` fields are not managed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<u32>,
}

/// Where a resource was declared, for messages: `nginx` role, `file` #2, line 14 of role.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub role: String,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct FileSpec {
    pub origin: Origin,
    pub dest: String,
    pub content: Arc<Vec<u8>>,
    /// Hex SHA-256 of `content`.
    pub sha256: String,
    pub meta: Meta,
    /// Command run on the staged file; `%s` is replaced by its path.
    pub validate: Option<String>,
    pub sensitive: bool,
    pub notify: Vec<String>,
    /// An apt sources/keyring file: a change triggers `apt-get update` before installs.
    pub apt_source: bool,
}

#[derive(Debug, Clone)]
pub struct DirSpec {
    pub origin: Origin,
    pub path: String,
    pub meta: Meta,
    pub notify: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LinkSpec {
    pub origin: Origin,
    pub path: String,
    pub target: String,
    pub notify: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct AbsentSpec {
    pub origin: Origin,
    pub path: String,
    pub notify: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct PackageSpec {
    pub origin: Origin,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub origin: Origin,
    pub name: String,
    pub enabled: Option<bool>,
    /// `Some(true)`: started; `Some(false)`: stopped.
    pub running: Option<bool>,
    pub notify: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct CommandSpec {
    pub origin: Origin,
    pub name: String,
    pub run: String,
    pub creates: Option<String>,
    pub unless: Option<String>,
    pub notify: Vec<String>,
    /// Runs before packages and apt sources (e.g. fetching an apt signing key).
    pub early: bool,
}

#[derive(Debug, Clone)]
pub struct HandlerSpec {
    pub origin: Origin,
    pub name: String,
    /// The shell command the handler runs (`systemctl reload nginx`, or the role's `run`).
    pub run: String,
}

/// Everything one host should look like. Resources apply in this field order.
#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub host: String,
    pub packages: Vec<PackageSpec>,
    pub dirs: Vec<DirSpec>,
    pub files: Vec<FileSpec>,
    pub links: Vec<LinkSpec>,
    pub absent: Vec<AbsentSpec>,
    pub services: Vec<ServiceSpec>,
    pub commands: Vec<CommandSpec>,
    /// Every handler the host's roles define, in definition order.
    pub handlers: Vec<HandlerSpec>,
    /// `[[user]]` and `[[authorized_key]]` (`plan::users`): applied after packages.
    pub users: Vec<super::users::UserSpec>,
    pub authorized_keys: Vec<super::users::AuthorizedKeySpec>,
    /// Seconds a package step waits for dpkg's and apt's locks (the host's `apt_lock_timeout`).
    pub apt_lock_timeout: u64,
    /// Its roles read `facts`: the fingerprint of the facts it was rendered with (`crate::facts`;
    /// empty: not gathered yet). The probe prints the host's; when they differ, nothing is
    /// applied and the host is rendered again from fresh facts.
    pub facts_fingerprint: Option<String>,
    /// The host's firewall table when its `firewall` var is on (`crate::firewall`): the probe
    /// reads the live table's hash; a different one is applied after the run, confirmed.
    pub firewall: Option<Arc<crate::firewall::Table>>,
}

impl Desired {
    /// Total number of resources (for the ok/changed counts).
    pub fn len(&self) -> usize {
        self.packages.len()
            + self.dirs.len()
            + self.files.len()
            + self.links.len()
            + self.absent.len()
            + self.services.len()
            + self.commands.len()
            + self.users.len()
            + self.authorized_keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every path the probe must look at.
    pub fn probed_paths(&self) -> Vec<&str> {
        let mut paths: Vec<&str> = Vec::new();
        paths.extend(self.dirs.iter().map(|d| d.path.as_str()));
        paths.extend(self.files.iter().map(|f| f.dest.as_str()));
        paths.extend(self.links.iter().map(|l| l.path.as_str()));
        paths.extend(self.absent.iter().map(|a| a.path.as_str()));
        paths.extend(self.commands.iter().filter_map(|c| c.creates.as_deref()));
        paths.sort_unstable();
        paths.dedup();
        paths
    }
}

#[cfg(test)]
thread_local! {
    /// For the tests: the bytes [`sha256_hex`] hashed on this thread.
    pub static HASHED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Bytes with their hex SHA-256, computed once: a static file of the roles (`src =`, an apt
/// keyring) is read and hashed once per run, and every host's [`FileSpec`] shares its bytes
/// and copies its digest, instead of hashing the same bytes once per host.
#[derive(Debug)]
pub struct Blob {
    pub bytes: Arc<Vec<u8>>,
    pub sha256: String,
}

impl Blob {
    pub fn new(bytes: Vec<u8>) -> Blob {
        Blob { sha256: sha256_hex(&bytes), bytes: Arc::new(bytes) }
    }
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    #[cfg(test)]
    HASHED.with(|n| n.set(n.get() + data.len()));
    let digest = sha2::Sha256::digest(data);
    data_encoding::HEXLOWER.encode(&digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_coreutils() {
        // printf 'hello\n' | sha256sum
        assert_eq!(sha256_hex(b"hello\n"), "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
    }
}
