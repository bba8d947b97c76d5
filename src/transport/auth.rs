//! User authentication on one hop: the host's identity file (ed25519, ECDSA, RSA with
//! rsa-sha2-512/256; encrypted keys unlocked once per run), then ssh-agent, then OpenSSH's
//! default key files. Each key is loaded and decrypted once and shared by every hop.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::Handle;
use russh::keys::agent::client::AgentClient;
use russh::keys::{Algorithm, PrivateKey, PrivateKeyWithHashAlg};
use tokio::sync::OnceCell;

use super::connection::ClientHandler;
use super::unreached::Unreached;
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::Host;

/// Environment variable holding the passphrase of encrypted identity files.
pub const PASSPHRASE_ENV: &str = "MICROCTL_KEY_PASSPHRASE";

type KeyCell = Arc<OnceCell<std::result::Result<Arc<PrivateKey>, String>>>;

/// Private keys loaded so far, by path; shared by all connections of a run.
#[derive(Default)]
pub struct Keys {
    loaded: Mutex<HashMap<PathBuf, KeyCell>>,
}

impl Keys {
    /// Loads (and if needed decrypts) `path` once; later calls share the result.
    async fn load(&self, path: &Path) -> std::result::Result<Arc<PrivateKey>, String> {
        let cell = self.loaded.lock().expect("keys lock").entry(path.to_path_buf()).or_default().clone();
        let path = path.to_path_buf();
        cell.get_or_init(|| async move {
            tokio::task::spawn_blocking(move || load_key_file(&path))
                .await
                .unwrap_or_else(|e| Err(format!("key loader panicked: {e}")))
        })
        .await
        .clone()
    }
}

/// A private key file, checked as OpenSSH checks it, decrypted with MICROCTL_KEY_PASSPHRASE or
/// a prompt on a terminal when it is encrypted.
pub(crate) fn load_key_file(path: &Path) -> std::result::Result<Arc<PrivateKey>, String> {
    super::identity::check(path).map_err(|p| p.message(path))?;
    match russh::keys::load_secret_key(path, None) {
        Ok(k) => Ok(Arc::new(k)),
        Err(russh::keys::Error::KeyIsEncrypted) => {
            let passphrase = match std::env::var(PASSPHRASE_ENV) {
                Ok(p) => p,
                Err(_) if std::io::stdin().is_terminal() => {
                    rpassword::prompt_password(format!("Enter passphrase for key '{}': ", path.display()))
                        .map_err(|e| format!("cannot read passphrase: {e}"))?
                }
                Err(_) => {
                    return Err(format!(
                        "{} is encrypted and no passphrase is available (set {PASSPHRASE_ENV}, run on a terminal, or add the key to ssh-agent)",
                        path.display()
                    ));
                }
            };
            russh::keys::load_secret_key(path, Some(&passphrase))
                .map(Arc::new)
                .map_err(|e| format!("cannot decrypt {}: {e} (wrong passphrase?)", path.display()))
        }
        Err(e) => Err(format!("cannot load {}: {e}", path.display())),
    }
}

/// The host's configured identity file, checked as OpenSSH checks it, before dialing: a
/// missing, unreadable or unprotected key is its own error, not a refused login.
pub fn check_identity(host: &Host) -> Result<()> {
    let Some(path) = &host.identity else { return Ok(()) };
    super::identity::check(path).map_err(|p| {
        Error::new(ErrorKind::Identity, p.message(path))
            .host(&host.name)
            .field("identity")
            .unreached(Unreached::Identity)
            .hint(p.hint(path))
    })
}

/// Authenticates `host.user` on `handle`, trying each credential until one is accepted.
pub async fn authenticate(handle: &mut Handle<ClientHandler>, host: &Host, keys: &Keys) -> Result<()> {
    let deadline = host.connect_timeout;
    let mut tried: Vec<String> = Vec::new();
    let mut problems: Vec<String> = Vec::new();

    let mut files: Vec<PathBuf> = host.identity.iter().cloned().collect();
    let try_agent = std::env::var_os("SSH_AUTH_SOCK").is_some();
    if host.identity.is_none() {
        let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()));
        for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
            let p = home.join(".ssh").join(name);
            if p.exists() {
                files.push(p);
            }
        }
    }

    // An explicitly configured identity comes first; without one the agent goes first, as in OpenSSH.
    let agent_first = host.identity.is_none();
    if agent_first && try_agent && with_agent(handle, host, deadline, &mut tried, &mut problems).await? {
        return Ok(());
    }
    for path in &files {
        let key = match keys.load(path).await {
            Ok(k) => k,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        tried.push(format!("{} ({})", path.display(), key.algorithm()));
        let hash = if matches!(key.algorithm(), Algorithm::Rsa { .. }) {
            timed(deadline, host, handle.best_supported_rsa_hash()).await?.flatten()
        } else {
            None
        };
        let auth = handle.authenticate_publickey(host.user.clone(), PrivateKeyWithHashAlg::new(key, hash));
        if timed(deadline, host, auth).await?.success() {
            return Ok(());
        }
    }
    if !agent_first && try_agent && with_agent(handle, host, deadline, &mut tried, &mut problems).await? {
        return Ok(());
    }

    let mut message = format!("{}@{} refused authentication", host.user, host.name);
    if !tried.is_empty() {
        message.push_str(&format!("; offered: {}", tried.join(", ")));
    }
    if !problems.is_empty() {
        message.push_str(&format!("; {}", problems.join("; ")));
    }
    let err = Error::new(ErrorKind::AuthRefused, message).host(&host.name).unreached(Unreached::AuthRefused);
    Err(err.hint(format!(
        "check `user` and `identity` for host `{}` in the inventory and that the key is in ~{}/.ssh/authorized_keys on the host",
        host.name, host.user
    )))
}

/// Tries every identity the agent holds; true when one was accepted.
async fn with_agent(
    handle: &mut Handle<ClientHandler>,
    host: &Host,
    deadline: Duration,
    tried: &mut Vec<String>,
    problems: &mut Vec<String>,
) -> Result<bool> {
    let mut agent = match AgentClient::connect_env().await {
        Ok(a) => a,
        Err(e) => {
            problems.push(format!("ssh-agent: {e}"));
            return Ok(false);
        }
    };
    let identities = match agent.request_identities().await {
        Ok(ids) => ids,
        Err(e) => {
            problems.push(format!("ssh-agent: {e}"));
            return Ok(false);
        }
    };
    for id in identities {
        let key = id.public_key().into_owned();
        tried.push(format!("agent key {}", key.algorithm()));
        let hash = if matches!(key.algorithm(), Algorithm::Rsa { .. }) {
            timed(deadline, host, handle.best_supported_rsa_hash()).await?.flatten()
        } else {
            None
        };
        let attempt = handle.authenticate_publickey_with(host.user.clone(), key, hash, &mut agent);
        match tokio::time::timeout(deadline, attempt).await {
            Ok(Ok(r)) if r.success() => return Ok(true),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => problems.push(format!("ssh-agent could not sign: {e}")),
            Err(_) => return Err(auth_timeout(host)),
        }
    }
    Ok(false)
}

async fn timed<T>(
    deadline: Duration,
    host: &Host,
    fut: impl Future<Output = std::result::Result<T, russh::Error>>,
) -> Result<T> {
    match tokio::time::timeout(deadline, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Error::new(ErrorKind::Ssh, format!("authentication on {} failed", host.name))
            .host(&host.name)
            .unreached(Unreached::AuthFailed)
            .caused_by(e)),
        Err(_) => Err(auth_timeout(host)),
    }
}

fn auth_timeout(host: &Host) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("authentication on {} took longer than {:?}", host.name, host.connect_timeout),
    )
    .host(&host.name)
    .unreached(Unreached::Timeout)
    .hint("raise `connect_timeout` for this host, or check the server's load")
}
