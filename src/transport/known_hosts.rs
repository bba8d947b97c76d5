//! OpenSSH `known_hosts` files: lookup (plain, hashed `|1|salt|hash`, `[host]:port`, comma
//! lists, `*`/`?` wildcards, `!` negation, `@revoked`) with real line numbers, and appending.
//!
//! Written here rather than using russh's helper because that one counts lines wrongly, splits
//! only on single spaces and ignores `@revoked`; a host-key verdict must be exact.

use std::io::Write;
use std::path::{Path, PathBuf};

use data_encoding::BASE64;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{Algorithm, HashAlg, PublicKey};
use sha1::Sha1;

/// What known_hosts says about a key a server presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A line for this host holds this key.
    Known,
    /// No line holds a key of this algorithm for this host (other algorithms may be recorded).
    Unknown { recorded: Vec<String> },
    /// A line for this host holds a different key of the same algorithm.
    Changed { file: PathBuf, line: usize },
    /// The key is marked `@revoked`.
    Revoked { file: PathBuf, line: usize },
}

/// One key line that applies to a host.
#[derive(Debug, Clone)]
pub struct Entry {
    pub line: usize,
    pub revoked: bool,
    pub key: PublicKey,
}

/// The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise.
pub fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 { host.to_string() } else { format!("[{host}]:{port}") }
}

/// Every key line in `file` that applies to `host:port`. A missing file has none.
pub fn entries(file: &Path, host: &str, port: u16) -> std::io::Result<Vec<Entry>> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let name = lookup_name(host, port);
    let mut out = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let mut fields = raw.split_ascii_whitespace();
        let Some(mut first) = fields.next() else { continue };
        if first.starts_with('#') {
            continue;
        }
        let mut revoked = false;
        if first.starts_with('@') {
            match first {
                "@revoked" => revoked = true,
                // Certificate authorities vouch for host certificates, which we do not request.
                _ => continue,
            }
            let Some(next) = fields.next() else { continue };
            first = next;
        }
        let (Some(_algo), Some(b64)) = (fields.next(), fields.next()) else { continue };
        if !hosts_match(first, &name) {
            continue;
        }
        if let Ok(key) = russh::keys::parse_public_key_base64(b64) {
            out.push(Entry { line: idx + 1, revoked, key });
        }
    }
    Ok(out)
}

/// Judges `key` against the lines for `host:port` in `file`.
pub fn verdict(file: &Path, host: &str, port: u16, key: &PublicKey) -> std::io::Result<Verdict> {
    let entries = entries(file, host, port)?;
    if let Some(e) = entries.iter().find(|e| e.revoked && e.key.key_data() == key.key_data()) {
        return Ok(Verdict::Revoked { file: file.to_path_buf(), line: e.line });
    }
    let valid: Vec<&Entry> = entries.iter().filter(|e| !e.revoked).collect();
    if valid.iter().any(|e| e.key.key_data() == key.key_data()) {
        return Ok(Verdict::Known);
    }
    let same_type = |e: &&&Entry| same_key_type(&e.key.algorithm(), &key.algorithm());
    if let Some(e) = valid.iter().find(same_type) {
        return Ok(Verdict::Changed { file: file.to_path_buf(), line: e.line });
    }
    let recorded = valid.iter().map(|e| e.key.algorithm().to_string()).collect();
    Ok(Verdict::Unknown { recorded })
}

/// The host-key algorithms to offer, those recorded for this host first (as OpenSSH does), so
/// a host known by its RSA key is not called unknown because ed25519 was negotiated.
pub fn preferred_algorithms(recorded: &[Entry], default: &[Algorithm]) -> Vec<Algorithm> {
    let mut first: Vec<Algorithm> = Vec::new();
    for e in recorded.iter().filter(|e| !e.revoked) {
        for alg in default {
            if same_key_type(alg, &e.key.algorithm()) && !first.contains(alg) {
                first.push(alg.clone());
            }
        }
    }
    let rest = default.iter().filter(|a| !first.contains(a)).cloned().collect::<Vec<_>>();
    first.extend(rest);
    first
}

/// RSA keys are one type whatever the signature hash.
fn same_key_type(a: &Algorithm, b: &Algorithm) -> bool {
    match (a, b) {
        (Algorithm::Rsa { .. }, Algorithm::Rsa { .. }) => true,
        _ => a == b,
    }
}

/// Appends `host:port key` (unhashed, like OpenSSH's default) to `file`, creating it.
pub fn append(file: &Path, host: &str, port: u16, key: &PublicKey) -> std::io::Result<()> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let encoded = key.to_openssh().map_err(std::io::Error::other)?;
    // to_openssh() ends with the comment, if any: keep "algorithm base64" only.
    let mut parts = encoded.split_ascii_whitespace();
    let (algo, b64) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(file)?;
    writeln!(f, "{} {algo} {b64}", lookup_name(host, port))?;
    f.sync_all()
}

/// SHA256 fingerprint as OpenSSH prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// Does a comma list of patterns (plain, hashed, wildcard, negated) match `name`?
fn hosts_match(patterns: &str, name: &str) -> bool {
    if let Some(hashed) = patterns.strip_prefix("|1|") {
        return hashed_match(hashed, name);
    }
    let mut matched = false;
    for pattern in patterns.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard_match(negated, name) {
                return false;
            }
        } else if wildcard_match(pattern, name) {
            matched = true;
        }
    }
    matched
}

fn hashed_match(salt_and_hash: &str, name: &str) -> bool {
    let Some((salt, hash)) = salt_and_hash.split_once('|') else { return false };
    let (Ok(salt), Ok(hash)) = (BASE64.decode(salt.as_bytes()), BASE64.decode(hash.as_bytes())) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt) else { return false };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// OpenSSH's `*` and `?` host patterns (case-insensitive).
fn wildcard_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIHUvcrEZWFZytH4m1Nw1EawlHaFbHrnR6KWIg8dMWY9f";
    const ED_B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIGDqtjEtndt3MaOif4X0U+6zgGRR8CmCfphHsJcrNFIu";

    fn key(b64: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(b64).unwrap()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn plain_port_tabs_comments_and_real_line_numbers() {
        let f = file(&format!("# comment\n\n[10.0.0.1]:2222\tssh-ed25519\t{ED_A}\n"));
        assert_eq!(verdict(f.path(), "10.0.0.1", 2222, &key(ED_A)).unwrap(), Verdict::Known);
        assert_eq!(
            verdict(f.path(), "10.0.0.1", 2222, &key(ED_B)).unwrap(),
            Verdict::Changed { file: f.path().to_path_buf(), line: 3 }
        );
        // Port 22 looks up the bare name, which this file does not have.
        assert!(matches!(verdict(f.path(), "10.0.0.1", 22, &key(ED_A)).unwrap(), Verdict::Unknown { .. }));
    }

    #[test]
    fn hashed_wildcard_negation_and_revoked() {
        // `ssh-keygen -H` style entry for "web.example" with salt "salt-bytes-0123456789".
        let salt = b"salt-bytes-0123456789";
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(salt).unwrap();
        mac.update(b"web.example");
        let hash = mac.finalize().into_bytes();
        let hashed = format!("|1|{}|{}", BASE64.encode(salt), BASE64.encode(&hash));
        let f = file(&format!(
            "{hashed} ssh-ed25519 {ED_A}\n*.lab,!bad.lab ssh-ed25519 {ED_B}\n@revoked * ssh-ed25519 {ED_B}\n"
        ));
        assert_eq!(verdict(f.path(), "web.example", 22, &key(ED_A)).unwrap(), Verdict::Known);
        assert_eq!(
            verdict(f.path(), "a.lab", 22, &key(ED_B)).unwrap(),
            Verdict::Revoked { file: f.path().to_path_buf(), line: 3 }
        );
        assert!(entries(f.path(), "bad.lab", 22).unwrap().iter().all(|e| e.revoked));
    }

    #[test]
    fn append_then_known_and_missing_file_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/known_hosts");
        assert!(matches!(verdict(&path, "h", 2200, &key(ED_A)).unwrap(), Verdict::Unknown { .. }));
        append(&path, "h", 2200, &key(ED_A)).unwrap();
        assert_eq!(verdict(&path, "h", 2200, &key(ED_A)).unwrap(), Verdict::Known);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("[h]:2200 ssh-ed25519 {ED_A}\n"));
    }

    #[test]
    fn recorded_algorithms_come_first() {
        let rsa = Algorithm::Rsa { hash: Some(HashAlg::Sha512) };
        let recorded = vec![Entry { line: 1, revoked: false, key: key(ED_A) }];
        let default = vec![rsa.clone(), Algorithm::Ed25519];
        assert_eq!(preferred_algorithms(&recorded, &default), vec![Algorithm::Ed25519, rsa]);
    }
}
