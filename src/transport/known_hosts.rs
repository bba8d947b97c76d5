//! OpenSSH `known_hosts` files: lookup (plain, hashed `|1|salt|hash`, `[host]:port`, comma
//! lists, `*`/`?` wildcards, `!` negation, `@revoked`) with real line numbers, and recording.
//!
//! The verdict follows OpenSSH 9.2 (`StrictHostKeyChecking=accept-new`) exactly, as the
//! integration table in tests/integration/host_keys.rs checks against the real `ssh`:
//! - a line for this host holding this key: known;
//! - this key marked `@revoked` for this host: refused;
//! - any other usable key line for this host, of ANY type: changed (refused, never recorded);
//! - otherwise (no line, or only `@revoked` / `@cert-authority` lines, or lines OpenSSH skips:
//!   unparsable keys, unknown types, non-UTF-8 bytes): new, which `--accept-new` records.
//!
//! Recording takes an exclusive lock on the file, re-judges under it and appends one line with
//! one write, so concurrent runs never garble or duplicate a line.
//!
//! Written here rather than using russh's helper because that one counts lines wrongly, splits
//! only on single spaces and ignores `@revoked`; a host-key verdict must be exact.

use std::io::{Read, Seek, SeekFrom, Write};
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
    /// No usable line names this host: OpenSSH's "new host", the only case `--accept-new` records.
    Unknown,
    /// Lines name this host but none holds this key (whatever their key types): OpenSSH's
    /// "REMOTE HOST IDENTIFICATION HAS CHANGED". `line` is the offending line (one of the
    /// presented key's type if any, else the first), `recorded` its key type.
    Changed { file: PathBuf, line: usize, recorded: String },
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
    match std::fs::read(file) {
        Ok(bytes) => Ok(parse_entries(&bytes, host, port)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(e),
    }
}

/// The key lines of `bytes` for `host:port`. Lines are bytes, as OpenSSH reads them: one that
/// is not UTF-8 (a Latin-1 comment) or does not parse is skipped, never fails the file.
fn parse_entries(bytes: &[u8], host: &str, port: u16) -> Vec<Entry> {
    let name = lookup_name(host, port);
    let mut out = Vec::new();
    for (idx, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        // Host, type and key are ASCII; other bytes (a Latin-1 comment) cannot make them match.
        let raw = String::from_utf8_lossy(raw);
        let mut fields = raw.split_ascii_whitespace();
        let Some(mut first) = fields.next() else { continue };
        if first.starts_with('#') {
            continue;
        }
        let mut revoked = false;
        if first.starts_with('@') {
            match first {
                "@revoked" => revoked = true,
                // Certificate authorities vouch for host certificates, which we do not request;
                // OpenSSH likewise treats a host with only a CA line as new for a plain key.
                _ => continue,
            }
            let Some(next) = fields.next() else { continue };
            first = next;
        }
        let (Some(algo), Some(b64)) = (fields.next(), fields.next()) else { continue };
        if !hosts_match(first, &name) {
            continue;
        }
        // A key whose blob disagrees with its type name is a line OpenSSH skips.
        if let Ok(key) = russh::keys::parse_public_key_base64(b64)
            && key.algorithm().as_str() == algo
        {
            out.push(Entry { line: idx + 1, revoked, key });
        }
    }
    out
}

/// Judges `key` against the lines for `host:port` in `file`.
pub fn verdict(file: &Path, host: &str, port: u16, key: &PublicKey) -> std::io::Result<Verdict> {
    Ok(judge(&entries(file, host, port)?, file, key))
}

fn judge(entries: &[Entry], file: &Path, key: &PublicKey) -> Verdict {
    if let Some(e) = entries.iter().find(|e| e.revoked && e.key.key_data() == key.key_data()) {
        return Verdict::Revoked { file: file.to_path_buf(), line: e.line };
    }
    let valid: Vec<&Entry> = entries.iter().filter(|e| !e.revoked).collect();
    if valid.iter().any(|e| e.key.key_data() == key.key_data()) {
        return Verdict::Known;
    }
    let offending = valid.iter().find(|e| same_key_type(&e.key.algorithm(), &key.algorithm())).or(valid.first());
    match offending {
        Some(e) => Verdict::Changed {
            file: file.to_path_buf(),
            line: e.line,
            recorded: e.key.algorithm().as_str().to_string(),
        },
        None => Verdict::Unknown,
    }
}

/// The host-key algorithms to offer, those recorded for this host first (as OpenSSH does), so
/// a host known by its RSA key is not called changed because ed25519 was negotiated.
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

/// The line OpenSSH would add for `host:port` (unhashed, its default), newline-terminated.
pub fn line(host: &str, port: u16, key: &PublicKey) -> std::io::Result<String> {
    let encoded = key.to_openssh().map_err(std::io::Error::other)?;
    // to_openssh() ends with the comment, if any: keep "algorithm base64" only.
    let mut parts = encoded.split_ascii_whitespace();
    let (algo, b64) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    Ok(format!("{} {algo} {b64}\n", lookup_name(host, port)))
}

/// Records `key` for `host:port` in `file` if, judged again under an exclusive lock on the
/// file, the host is still new; returns that verdict (`Unknown` means the line was written).
/// Missing parent folders are created 0700, like OpenSSH's `~/.ssh`. The lock is `flock` on
/// the file itself, so it orders this process's connections as well as other processes.
pub fn record(file: &Path, host: &str, port: u16, key: &PublicKey) -> std::io::Result<Verdict> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().read(true).append(true).create(true).open(file)?;
    f.lock()?;
    let mut bytes = Vec::new();
    f.seek(SeekFrom::Start(0))?;
    f.read_to_end(&mut bytes)?;
    let verdict = judge(&parse_entries(&bytes, host, port), file, key);
    if verdict == Verdict::Unknown {
        let mut text = line(host, port, key)?;
        // A last line without its newline would otherwise swallow ours.
        if bytes.last().is_some_and(|b| *b != b'\n') {
            text.insert(0, '\n');
        }
        // One write of the whole line, under the lock.
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    Ok(verdict)
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

    /// An RSA key (other type than ED_A/ED_B).
    const RSA: &str = "AAAAB3NzaC1yc2EAAAADAQABAAAAgQCXnePFM8/zPdkhbyf0OPJDNhiit/6TlNla7M9M7eU82uZ5FszNNHg5v4btZweDCyk9GRgmlANmtlOQDraceNSkPsFDECx+4Zk98rup6Tv8kmbvsPkM+FzpTuJsfSfOIp7booC4GWryLKP/lUp9wQXvy0OruRT1wWYvuBBJwQadJw==";

    #[test]
    fn plain_port_tabs_comments_and_real_line_numbers() {
        let f = file(&format!("# comment\n\n[10.0.0.1]:2222\tssh-ed25519\t{ED_A}\n"));
        assert_eq!(verdict(f.path(), "10.0.0.1", 2222, &key(ED_A)).unwrap(), Verdict::Known);
        assert_eq!(
            verdict(f.path(), "10.0.0.1", 2222, &key(ED_B)).unwrap(),
            Verdict::Changed { file: f.path().to_path_buf(), line: 3, recorded: "ssh-ed25519".into() }
        );
        // Port 22 looks up the bare name, which this file does not have.
        assert_eq!(verdict(f.path(), "10.0.0.1", 22, &key(ED_A)).unwrap(), Verdict::Unknown);
    }

    #[test]
    fn a_key_of_another_type_is_changed_not_new() {
        let f = file(&format!("h ssh-ed25519 {ED_A}\n"));
        let rsa = key(RSA);
        assert_eq!(
            verdict(f.path(), "h", 22, &rsa).unwrap(),
            Verdict::Changed { file: f.path().to_path_buf(), line: 1, recorded: "ssh-ed25519".into() }
        );
        // Both recorded: the presented one is known.
        let both = file(&format!("h ssh-ed25519 {ED_A}\nh ssh-rsa {RSA}\n"));
        assert_eq!(verdict(both.path(), "h", 22, &rsa).unwrap(), Verdict::Known);
        // The offending line is the one of the presented key's type when there is one.
        let two = file(&format!("h ssh-ed25519 {ED_A}\nh ssh-ed25519 {ED_A}\nh ssh-rsa {RSA}\n"));
        assert!(matches!(verdict(two.path(), "h", 22, &key(ED_B)).unwrap(), Verdict::Changed { line: 1, .. }));
    }

    #[test]
    fn revoked_and_cert_authority_lines_do_not_make_a_host_known() {
        let f = file(&format!("@revoked h ssh-ed25519 {ED_B}\n@cert-authority h ssh-ed25519 {ED_B}\n"));
        assert_eq!(verdict(f.path(), "h", 22, &key(ED_A)).unwrap(), Verdict::Unknown);
        assert_eq!(
            verdict(f.path(), "h", 22, &key(ED_B)).unwrap(),
            Verdict::Revoked { file: f.path().to_path_buf(), line: 1 }
        );
    }

    #[test]
    fn lines_openssh_skips_do_not_fail_the_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"# caf\xe9 in Latin-1\n\xff\xfe garbage\nh ssh-ed25519 notbase64\n").unwrap();
        f.write_all(format!("h ssh-rsa {ED_B}\nh ssh-foo {ED_B}\nh\n@revoked\nh ssh-ed25519 {ED_A} c").as_bytes())
            .unwrap();
        f.write_all(b"\xe9\n").unwrap();
        // The mismatched, unknown and broken lines are skipped; line 8 counts, Latin-1 comment and all.
        assert_eq!(verdict(f.path(), "h", 22, &key(ED_A)).unwrap(), Verdict::Known);
        assert!(matches!(verdict(f.path(), "h", 22, &key(ED_B)).unwrap(), Verdict::Changed { line: 8, .. }));
        let skipped_only = file(&format!(
            "h ssh-rsa {ED_B}
h ssh-foo {ED_B}
"
        ));
        assert_eq!(verdict(skipped_only.path(), "h", 22, &key(ED_A)).unwrap(), Verdict::Unknown);
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
    fn record_creates_0700_folders_writes_once_and_rechecks() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home/.ssh/known_hosts");
        assert_eq!(verdict(&path, "h", 2200, &key(ED_A)).unwrap(), Verdict::Unknown);
        assert_eq!(record(&path, "h", 2200, &key(ED_A)).unwrap(), Verdict::Unknown);
        let mode = std::fs::metadata(dir.path().join("home/.ssh")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(mode & 0o777, std::fs::metadata(dir.path().join("home")).unwrap().permissions().mode() & 0o777);
        // Already there: nothing written. A different key: changed, nothing written.
        assert_eq!(record(&path, "h", 2200, &key(ED_A)).unwrap(), Verdict::Known);
        assert!(matches!(record(&path, "h", 2200, &key(RSA)).unwrap(), Verdict::Changed { .. }));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("[h]:2200 ssh-ed25519 {ED_A}\n"));
        // A last line without its newline keeps its own line.
        std::fs::write(&path, format!("other ssh-ed25519 {ED_B}")).unwrap();
        record(&path, "h", 22, &key(ED_A)).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("other ssh-ed25519 {ED_B}\nh ssh-ed25519 {ED_A}\n")
        );
    }

    #[test]
    fn concurrent_records_leave_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| record(&path, "h", 22, &key(ED_A)).unwrap());
            }
        });
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("h ssh-ed25519 {ED_A}\n"));
    }

    #[test]
    fn recorded_algorithms_come_first() {
        let rsa = Algorithm::Rsa { hash: Some(HashAlg::Sha512) };
        let recorded = vec![Entry { line: 1, revoked: false, key: key(ED_A) }];
        let default = vec![rsa.clone(), Algorithm::Ed25519];
        assert_eq!(preferred_algorithms(&recorded, &default), vec![Algorithm::Ed25519, rsa]);
    }
}
