//! SSH key pairs as secrets: `microctl secrets keygen NAME` makes an ed25519 key pair and
//! stores its private half (OpenSSH format, the comment `NAME`) as the secret `NAME`,
//! encrypted like every secret. A template gets the private key as `{{ NAME }}` (a file
//! that renders it is sensitive: `access`) and the public line as
//! `{{ NAME | ssh_public_key }}` ([`public_line`], the template filter). `check`'s stand-in
//! of a secret (`[secret NAME]`) has a fixed stand-in public key, so roles still render
//! and their key lines still parse offline.

use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{PrivateKey, PublicKey};

use crate::error::{Error, ErrorKind, Result};

/// A new ed25519 private key in OpenSSH format, commented `name` (32 bytes of
/// /dev/urandom: no fallback).
pub fn generate(name: &str) -> Result<String> {
    use std::io::Read;
    let mut seed = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .map_err(|e| Error::new(ErrorKind::Io, "cannot read /dev/urandom for a new key").caused_by(e))?;
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    seed.fill(0);
    key.set_comment(name);
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| Error::new(ErrorKind::Io, "cannot encode the new key").caused_by(e))?;
    Ok(pem.to_string())
}

/// The public line (`ssh-ed25519 BASE64 COMMENT`) of an OpenSSH private key; of `check`'s
/// stand-in `[secret NAME]`, a fixed stand-in key's, commented `stand-in-NAME`.
pub fn public_line(private: &str) -> std::result::Result<String, String> {
    let public: PublicKey = match private.strip_prefix("[secret ").and_then(|n| n.strip_suffix(']')) {
        Some(name) => {
            let mut k = PublicKey::from(Ed25519Keypair::from_seed(&[7u8; 32]).public);
            k.set_comment(format!("stand-in-{name}"));
            k
        }
        None => PrivateKey::from_openssh(private.trim())
            .map_err(|e| format!("ssh_public_key needs an OpenSSH private key (from `microctl secrets keygen`): {e}"))?
            .public_key()
            .clone(),
    };
    public.to_openssh().map_err(|e| format!("cannot encode a public key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generated key is a private key OpenSSH reads, with its comment; its public line is
    /// what `ssh-keygen -y` derives from it; two keys differ.
    #[test]
    fn generated_keys_are_openssh_keys() {
        let pem = generate("deploy_key").unwrap();
        assert!(pem.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"), "{pem}");
        let line = public_line(&pem).unwrap();
        assert!(line.starts_with("ssh-ed25519 ") && line.ends_with(" deploy_key"), "{line}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, &pem).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let out = std::process::Command::new("ssh-keygen").arg("-y").arg("-f").arg(&path).output();
        let out = out.expect("ssh-keygen (Debian package openssh-client)");
        assert!(out.status.success(), "{out:?}");
        let derived = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            derived.split_whitespace().take(2).collect::<Vec<_>>(),
            line.split_whitespace().take(2).collect::<Vec<_>>()
        );
        assert_ne!(public_line(&generate("deploy_key").unwrap()).unwrap(), line);
        assert!(public_line("[secret deploy_key]").unwrap().ends_with(" stand-in-deploy_key"));
        assert!(public_line("not a key").is_err());
    }
}
