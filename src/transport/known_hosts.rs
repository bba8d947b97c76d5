//! OpenSSH `known_hosts` files: lookup (plain, hashed `|1|salt|hash`, `[host]:port`, comma
//! lists, `*`/`?` wildcards, `!` negation, `@revoked`) with real line numbers, and recording.
//!
//! A host's keys are looked up in its user file (the inventory's `known_hosts`, the only one
//! recorded in) and then in the global files (`global_known_hosts`, OpenSSH's
//! `GlobalKnownHostsFile`, by default `/etc/ssh/ssh_known_hosts` and `ssh_known_hosts2`), which
//! are only read. As in OpenSSH, the lines of all files are judged together: a key pinned in a
//! global file is known, and a different key pinned there is changed, as in the user file.
//! The name looked up is lowercased first, as OpenSSH does (`ssh.c`, `ssh_login`), so
//! `LocalHost` finds the hashed entry OpenSSH wrote for `localhost` and is recorded as that.
//!
//! The verdict follows OpenSSH 9.2 (`StrictHostKeyChecking=accept-new`) exactly, as the
//! integration table in tests/integration/host_keys.rs checks against the real `ssh`:
//! - a line for this host holding this key: known;
//! - this key marked `@revoked` for this host: refused;
//! - any other usable key line for this host, of ANY type: changed (refused, never recorded);
//! - otherwise (no line, or only `@revoked` / `@cert-authority` lines, or lines OpenSSH skips:
//!   unparsable keys, unknown types, non-UTF-8 bytes): new, which `--accept-new` records;
//!   except that on a port other than 22, a line for the bare host name (no port) holding this
//!   key makes it known, as OpenSSH checks "without port identifier" before calling it new.
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

/// The known_hosts files of one host: the user's, which `--accept-new` records in, then the
/// global ones, read only. A missing file has no lines.
#[derive(Debug, Clone)]
pub struct Files {
    pub user: PathBuf,
    pub global: Vec<PathBuf>,
}

/// One key line that applies to a host.
#[derive(Debug, Clone)]
pub struct Entry {
    pub file: PathBuf,
    pub line: usize,
    pub revoked: bool,
    pub key: PublicKey,
}

/// The name OpenSSH looks up and records: `host` on port 22, `[host]:port` otherwise, with
/// `host` lowercased (OpenSSH lowercases the host name before it looks it up, hashes it or
/// records it; its `lowercase()` is `tolower()` per byte, i.e. ASCII).
pub fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 { host } else { format!("[{host}]:{port}") }
}

/// Every key line that applies to `host:port`: the user file's, then the global files'.
pub fn entries(files: &Files, host: &str, port: u16) -> std::io::Result<Vec<Entry>> {
    let mut out = parse_entries(&read(&files.user)?, &files.user, host, port);
    out.extend(global_entries(files, host, port)?);
    Ok(out)
}

/// The global files' lines for `host:port`.
fn global_entries(files: &Files, host: &str, port: u16) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for file in &files.global {
        out.extend(parse_entries(&read(file)?, file, host, port));
    }
    Ok(out)
}

/// A file's bytes; a missing file is empty. Other errors name the file (a global file that
/// cannot be read fails the check rather than being skipped: it may pin this host).
fn read(file: &Path) -> std::io::Result<Vec<u8>> {
    match std::fs::read(file) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(std::io::Error::new(e.kind(), format!("cannot read {}: {e}", file.display()))),
    }
}

/// The key lines of `bytes` (the file `file`) for `host:port`. Lines are bytes, as OpenSSH
/// reads them: one that is not UTF-8 (a Latin-1 comment) or does not parse is skipped, never
/// fails the file.
fn parse_entries(bytes: &[u8], file: &Path, host: &str, port: u16) -> Vec<Entry> {
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
            out.push(Entry { file: file.to_path_buf(), line: idx + 1, revoked, key });
        }
    }
    out
}

/// Judges `key` against the lines for `host:port` in `files`, all together (as OpenSSH loads
/// the user and global files into one list): a line holding the key in either makes it known.
pub fn verdict(files: &Files, host: &str, port: u16, key: &PublicKey) -> std::io::Result<Verdict> {
    judge_files(&read(&files.user)?, files, host, port, key)
}

/// The verdict from the user file's `user` bytes and the global files. A host on a port other
/// than 22 that is new there is known when a line for its bare name holds this key: OpenSSH
/// checks "without port identifier" before it calls a host new.
fn judge_files(user: &[u8], files: &Files, host: &str, port: u16, key: &PublicKey) -> std::io::Result<Verdict> {
    let lines = |port| -> std::io::Result<Vec<Entry>> {
        let mut lines = parse_entries(user, &files.user, host, port);
        lines.extend(global_entries(files, host, port)?);
        Ok(lines)
    };
    let verdict = judge(&lines(port)?, key);
    if verdict == Verdict::Unknown && port != 22 && judge(&lines(22)?, key) == Verdict::Known {
        return Ok(Verdict::Known);
    }
    Ok(verdict)
}

fn judge(entries: &[Entry], key: &PublicKey) -> Verdict {
    if let Some(e) = entries.iter().find(|e| e.revoked && e.key.key_data() == key.key_data()) {
        return Verdict::Revoked { file: e.file.clone(), line: e.line };
    }
    let valid: Vec<&Entry> = entries.iter().filter(|e| !e.revoked).collect();
    if valid.iter().any(|e| e.key.key_data() == key.key_data()) {
        return Verdict::Known;
    }
    let offending = valid.iter().find(|e| same_key_type(&e.key.algorithm(), &key.algorithm())).or(valid.first());
    match offending {
        Some(e) => {
            Verdict::Changed { file: e.file.clone(), line: e.line, recorded: e.key.algorithm().as_str().to_string() }
        }
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

/// Records `key` for `host:port` in the user file if, judged again under an exclusive lock on
/// that file (with the global files read again too), the host is still new; returns that
/// verdict (`Unknown` means the line was written). The global files are never written.
/// Missing parent folders are created 0700, like OpenSSH's `~/.ssh`. The lock is `flock` on
/// the file itself, so it orders this process's connections as well as other processes.
pub fn record(files: &Files, host: &str, port: u16, key: &PublicKey) -> std::io::Result<Verdict> {
    let file = &files.user;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().read(true).append(true).create(true).open(file)?;
    f.lock()?;
    let mut bytes = Vec::new();
    f.seek(SeekFrom::Start(0))?;
    f.read_to_end(&mut bytes)?;
    let verdict = judge_files(&bytes, files, host, port, key)?;
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

    /// A user file and no global one.
    fn only(path: &Path) -> Files {
        Files { user: path.to_path_buf(), global: vec![] }
    }

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
        assert_eq!(verdict(&only(f.path()), "10.0.0.1", 2222, &key(ED_A)).unwrap(), Verdict::Known);
        assert_eq!(
            verdict(&only(f.path()), "10.0.0.1", 2222, &key(ED_B)).unwrap(),
            Verdict::Changed { file: f.path().to_path_buf(), line: 3, recorded: "ssh-ed25519".into() }
        );
        // Port 22 looks up the bare name, which this file does not have.
        assert_eq!(verdict(&only(f.path()), "10.0.0.1", 22, &key(ED_A)).unwrap(), Verdict::Unknown);
        // Another port, new there: the bare name holding this key makes it known, another key
        // there does not make it changed.
        let bare = file(&format!("10.0.0.1 ssh-ed25519 {ED_A}\n"));
        assert_eq!(verdict(&only(bare.path()), "10.0.0.1", 2222, &key(ED_A)).unwrap(), Verdict::Known);
        assert_eq!(record(&only(bare.path()), "10.0.0.1", 2222, &key(ED_A)).unwrap(), Verdict::Known);
        assert_eq!(verdict(&only(bare.path()), "10.0.0.1", 2222, &key(ED_B)).unwrap(), Verdict::Unknown);
    }

    #[test]
    fn a_key_of_another_type_is_changed_not_new() {
        let f = file(&format!("h ssh-ed25519 {ED_A}\n"));
        let rsa = key(RSA);
        assert_eq!(
            verdict(&only(f.path()), "h", 22, &rsa).unwrap(),
            Verdict::Changed { file: f.path().to_path_buf(), line: 1, recorded: "ssh-ed25519".into() }
        );
        // Both recorded: the presented one is known.
        let both = file(&format!("h ssh-ed25519 {ED_A}\nh ssh-rsa {RSA}\n"));
        assert_eq!(verdict(&only(both.path()), "h", 22, &rsa).unwrap(), Verdict::Known);
        // The offending line is the one of the presented key's type when there is one.
        let two = file(&format!("h ssh-ed25519 {ED_A}\nh ssh-ed25519 {ED_A}\nh ssh-rsa {RSA}\n"));
        assert!(matches!(verdict(&only(two.path()), "h", 22, &key(ED_B)).unwrap(), Verdict::Changed { line: 1, .. }));
    }

    #[test]
    fn revoked_and_cert_authority_lines_do_not_make_a_host_known() {
        let f = file(&format!("@revoked h ssh-ed25519 {ED_B}\n@cert-authority h ssh-ed25519 {ED_B}\n"));
        assert_eq!(verdict(&only(f.path()), "h", 22, &key(ED_A)).unwrap(), Verdict::Unknown);
        assert_eq!(
            verdict(&only(f.path()), "h", 22, &key(ED_B)).unwrap(),
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
        assert_eq!(verdict(&only(f.path()), "h", 22, &key(ED_A)).unwrap(), Verdict::Known);
        assert!(matches!(verdict(&only(f.path()), "h", 22, &key(ED_B)).unwrap(), Verdict::Changed { line: 8, .. }));
        let skipped_only = file(&format!(
            "h ssh-rsa {ED_B}
h ssh-foo {ED_B}
"
        ));
        assert_eq!(verdict(&only(skipped_only.path()), "h", 22, &key(ED_A)).unwrap(), Verdict::Unknown);
    }

    /// An `ssh-keygen -H` style host field for `name`, with salt "salt-bytes-0123456789".
    fn hashed(name: &str) -> String {
        let salt = b"salt-bytes-0123456789";
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(salt).unwrap();
        mac.update(name.as_bytes());
        let hash = mac.finalize().into_bytes();
        format!("|1|{}|{}", BASE64.encode(salt), BASE64.encode(&hash))
    }

    #[test]
    fn hashed_wildcard_negation_and_revoked() {
        let hashed = hashed("web.example");
        let f = file(&format!(
            "{hashed} ssh-ed25519 {ED_A}\n*.lab,!bad.lab ssh-ed25519 {ED_B}\n@revoked * ssh-ed25519 {ED_B}\n"
        ));
        assert_eq!(verdict(&only(f.path()), "web.example", 22, &key(ED_A)).unwrap(), Verdict::Known);
        assert_eq!(
            verdict(&only(f.path()), "a.lab", 22, &key(ED_B)).unwrap(),
            Verdict::Revoked { file: f.path().to_path_buf(), line: 3 }
        );
        assert!(entries(&only(f.path()), "bad.lab", 22).unwrap().iter().all(|e| e.revoked));
    }

    /// OpenSSH lowercases the host name before it looks it up, hashes it or records it: the
    /// hashed entry Debian's `HashKnownHosts` wrote for `localhost` pins `LocalHost` too.
    #[test]
    fn host_names_are_lowercased_before_lookup_hashing_and_recording() {
        let f = file(&format!("{} ssh-ed25519 {ED_A}\n", hashed("[localhost]:2222")));
        assert_eq!(verdict(&only(f.path()), "LocalHost", 2222, &key(ED_A)).unwrap(), Verdict::Known);
        assert!(matches!(
            record(&only(f.path()), "LOCALHOST", 2222, &key(ED_B)).unwrap(),
            Verdict::Changed { line: 1, .. }
        ));
        let plain = file(&format!("Web.Example ssh-ed25519 {ED_A}\n"));
        assert_eq!(verdict(&only(plain.path()), "WEB.example", 22, &key(ED_A)).unwrap(), Verdict::Known);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        assert_eq!(record(&only(&path), "Web.Example", 2222, &key(ED_A)).unwrap(), Verdict::Unknown);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("[web.example]:2222 ssh-ed25519 {ED_A}\n"));
        assert_eq!(lookup_name("LocalHost", 22), "localhost");
    }

    /// The global files are judged with the user file, as one list (OpenSSH's precedence): a
    /// key pinned in either is known, a different key pinned in either is changed, `@revoked`
    /// in either refuses; recording writes the user file only.
    #[test]
    fn global_files_pin_keys_and_are_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let global = dir.path().join("ssh_known_hosts");
        let pinned = format!("# system\nh ssh-ed25519 {ED_A}\n");
        std::fs::write(&global, &pinned).unwrap();
        let files =
            Files { user: dir.path().join("known_hosts"), global: vec![dir.path().join("none"), global.clone()] };
        assert_eq!(verdict(&files, "h", 22, &key(ED_A)).unwrap(), Verdict::Known);
        assert_eq!(
            verdict(&files, "H", 22, &key(RSA)).unwrap(),
            Verdict::Changed { file: global.clone(), line: 2, recorded: "ssh-ed25519".into() }
        );
        assert!(matches!(record(&files, "h", 22, &key(ED_B)).unwrap(), Verdict::Changed { .. }));
        assert_eq!(record(&files, "h", 22, &key(ED_A)).unwrap(), Verdict::Known);
        assert_eq!(std::fs::read_to_string(&files.user).unwrap(), "");
        assert_eq!(std::fs::read_to_string(&global).unwrap(), pinned);
        // The user file holds the key, the global file another: known (a line holds it).
        std::fs::write(&files.user, format!("h ssh-ed25519 {ED_B}\n")).unwrap();
        assert_eq!(verdict(&files, "h", 22, &key(ED_B)).unwrap(), Verdict::Known);
        // Revoked in the global file: refused though the user file holds it.
        std::fs::write(&global, format!("@revoked h ssh-ed25519 {ED_B}\n")).unwrap();
        assert_eq!(verdict(&files, "h", 22, &key(ED_B)).unwrap(), Verdict::Revoked { file: global, line: 1 });
        // A global file that cannot be read fails the check, naming it.
        let unreadable = Files { global: vec![dir.path().to_path_buf()], ..files };
        let e = verdict(&unreadable, "h", 22, &key(ED_A)).unwrap_err().to_string();
        assert!(e.contains(&format!("cannot read {}", dir.path().display())), "{e}");
    }

    #[test]
    fn record_creates_0700_folders_writes_once_and_rechecks() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home/.ssh/known_hosts");
        assert_eq!(verdict(&only(&path), "h", 2200, &key(ED_A)).unwrap(), Verdict::Unknown);
        assert_eq!(record(&only(&path), "h", 2200, &key(ED_A)).unwrap(), Verdict::Unknown);
        let mode = std::fs::metadata(dir.path().join("home/.ssh")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(mode & 0o777, std::fs::metadata(dir.path().join("home")).unwrap().permissions().mode() & 0o777);
        // Already there: nothing written. A different key: changed, nothing written.
        assert_eq!(record(&only(&path), "h", 2200, &key(ED_A)).unwrap(), Verdict::Known);
        assert!(matches!(record(&only(&path), "h", 2200, &key(RSA)).unwrap(), Verdict::Changed { .. }));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("[h]:2200 ssh-ed25519 {ED_A}\n"));
        // A last line without its newline keeps its own line.
        std::fs::write(&path, format!("other ssh-ed25519 {ED_B}")).unwrap();
        record(&only(&path), "h", 22, &key(ED_A)).unwrap();
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
                s.spawn(|| record(&only(&path), "h", 22, &key(ED_A)).unwrap());
            }
        });
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("h ssh-ed25519 {ED_A}\n"));
    }

    #[test]
    fn recorded_algorithms_come_first() {
        let rsa = Algorithm::Rsa { hash: Some(HashAlg::Sha512) };
        let recorded = vec![Entry { file: PathBuf::new(), line: 1, revoked: false, key: key(ED_A) }];
        let default = vec![rsa.clone(), Algorithm::Ed25519];
        assert_eq!(preferred_algorithms(&recorded, &default), vec![Algorithm::Ed25519, rsa]);
    }
}
