//! The vendor apt key check: the command that fetches a repository's signing key on the host
//! and installs it only if every key in the downloaded file is one of the pinned fingerprints
//! (`fetch_key.sh`). Built here, tested here by running it under `sh` and `dash` against keys
//! made with gpg in a temporary GNUPGHOME (never fetching anything), and shellchecked.

use crate::remote::Shipped;
use crate::shell::quote;

static FETCH_KEY_SH: Shipped = Shipped::new(include_str!("fetch_key.sh"));

/// The pinned fingerprints of `key_fingerprint`: a comma list, spaces inside a fingerprint
/// allowed (as vendors print them), compared upper-case.
pub fn pinned(text: &str) -> Vec<String> {
    text.split(',').map(|f| f.split_whitespace().collect::<String>().to_uppercase()).filter(|f| !f.is_empty()).collect()
}

/// The step that downloads `url` and installs it at `keyring` only if every key it holds is
/// one of `fingerprints`.
pub fn fetch_script(url: &str, fingerprints: &[String], keyring: &str) -> String {
    format!(
        "url={}\nfingerprints={}\nkeyring={}\n{FETCH_KEY_SH}",
        quote(url),
        quote(&fingerprints.join(" ")),
        quote(keyring)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    #[test]
    fn pinned_accepts_spaced_and_comma_lists() {
        assert_eq!(pinned("b53a e77b ADB6"), ["B53AE77BADB6"]);
        assert_eq!(pinned(" AAAA , bbbb,"), ["AAAA", "BBBB"]);
    }

    #[test]
    fn script_sets_quoted_parameters_then_runs_the_checked_body() {
        let s = fetch_script("https://x.example/k ey", &["AA".into(), "BB".into()], "/etc/apt/keyrings/x.asc");
        assert!(s.starts_with("url='https://x.example/k ey'\nfingerprints='AA BB'\nkeyring=/etc/apt/keyrings/x.asc\n"));
        assert!(s.ends_with(&*FETCH_KEY_SH));
    }

    #[test]
    fn fetch_key_sh_passes_shellcheck() {
        let out = Command::new("shellcheck").args(["-s", "sh", "src/role/fetch_key.sh"]).output();
        let out = out.expect("shellcheck (apt-get install shellcheck)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }

    fn run(cmd: &mut Command) -> String {
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Makes a signing key in `home` (a temp GNUPGHOME) and returns its fingerprint and its
    /// armored public key.
    fn make_key(home: &Path, uid: &str) -> (String, Vec<u8>) {
        let gpg = |args: &[&str]| {
            let mut c = Command::new("gpg");
            c.env("GNUPGHOME", home).args(["--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""]);
            c.args(args);
            c
        };
        run(&mut gpg(&["--quick-gen-key", uid, "ed25519", "sign", "never"]));
        let listing = run(&mut gpg(&["--with-colons", "--list-keys", uid]));
        let fpr = listing.lines().find(|l| l.starts_with("fpr:")).unwrap().split(':').nth(9).unwrap().to_string();
        let armored = gpg(&["--armor", "--export", uid]).output().unwrap().stdout;
        (fpr, armored)
    }

    struct Outcome {
        ok: bool,
        stderr: String,
        installed: Option<Vec<u8>>,
    }

    /// Runs the generated step under `shell` with `curl` replaced by a copy of `served`, the
    /// keyring under a temp dir.
    fn fetch(shell: &str, served: &[u8], fingerprints: &[String]) -> Outcome {
        fetch_in(&tempfile::tempdir().unwrap(), shell, served, fingerprints, None)
    }

    /// [`fetch`] in `dir` (its `etc/apt/keyrings/vendor.asc` may exist already), under
    /// `strace -f` writing to `trace` when given.
    fn fetch_in(
        dir: &tempfile::TempDir,
        shell: &str,
        served: &[u8],
        fingerprints: &[String],
        trace: Option<&Path>,
    ) -> Outcome {
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(dir.path().join("served"), served).unwrap();
        let curl = bin.join("curl");
        std::fs::write(
            &curl,
            format!(
                "#!/bin/sh\nwhile [ $# -gt 0 ]; do case $1 in -o) out=$2; shift 2;; *) shift;; esac; done\ncp {} \"$out\"\n",
                dir.path().join("served").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&curl, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let keyring = dir.path().join("etc/apt/keyrings/vendor.asc");
        let script = fetch_script("https://vendor.example/key.asc", fingerprints, keyring.to_str().unwrap());
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let mut command = match trace {
            Some(log) => {
                let mut c = Command::new("strace");
                c.args([
                    "-f",
                    "-qq",
                    "-e",
                    "trace=openat,open,creat,truncate,unlink,unlinkat,rename,renameat,renameat2",
                ]);
                c.arg("-o").arg(log).arg(shell);
                c
            }
            None => Command::new(shell),
        };
        let out = command.arg("-c").arg(&script).env("PATH", path).env("HOME", dir.path()).output().unwrap();
        // The step cleans up after itself: nothing left in the temp dir but what the test made.
        Outcome {
            ok: out.status.success(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            installed: std::fs::read(&keyring).ok(),
        }
    }

    #[test]
    fn every_key_in_the_file_must_be_pinned() {
        let home = tempfile::tempdir().unwrap();
        std::fs::set_permissions(home.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let (vendor, vendor_key) = make_key(home.path(), "Vendor Signing <vendor@example.invalid>");
        let (extra, extra_key) = make_key(home.path(), "Intruder <intruder@example.invalid>");
        let both = [vendor_key.clone(), extra_key.clone()].concat();
        for shell in ["sh", "dash"] {
            let ok = fetch(shell, &vendor_key, std::slice::from_ref(&vendor));
            assert!(ok.ok, "{shell}: the pinned key alone is accepted: {}", ok.stderr);
            // Green means checked (#21): a key installed says nothing on stderr.
            assert_eq!(ok.stderr, "", "{shell}: fetch_key.sh wrote to stderr");
            assert_eq!(ok.installed.as_deref(), Some(&vendor_key[..]), "{shell}");

            let refused = fetch(shell, &both, std::slice::from_ref(&vendor));
            assert!(!refused.ok, "{shell}: vendor key plus an extra key must be refused");
            assert_eq!(refused.installed, None, "{shell}: nothing installed");
            assert!(refused.stderr.contains(&format!("holds key {extra}, which is not pinned")), "{}", refused.stderr);

            let wrong = fetch(shell, &extra_key, std::slice::from_ref(&vendor));
            assert!(!wrong.ok && wrong.installed.is_none(), "{shell}: a key that is not pinned");

            let empty = fetch(shell, b"<html>not a key</html>\n", std::slice::from_ref(&vendor));
            assert!(!empty.ok && empty.installed.is_none(), "{shell}: not a key: {}", empty.stderr);

            let two_pinned = fetch(shell, &both, &[vendor.clone(), extra.clone()]);
            assert!(two_pinned.ok, "{shell}: both keys pinned: {}", two_pinned.stderr);
            assert_eq!(two_pinned.stderr, "", "{shell}: fetch_key.sh wrote to stderr");
        }
    }

    /// The keyring is never written in place: the new key is staged in the keyring's folder
    /// and renamed over it (apt sees the old keyring or the new one, whole); a refused key
    /// leaves the old keyring and no stage behind. Checked on the system calls (strace).
    #[test]
    fn the_keyring_is_renamed_into_place_under_sh_and_dash() {
        let home = tempfile::tempdir().unwrap();
        std::fs::set_permissions(home.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let (vendor, vendor_key) = make_key(home.path(), "Vendor Signing <vendor@example.invalid>");
        let (_, extra_key) = make_key(home.path(), "Intruder <intruder@example.invalid>");
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let folder = dir.path().join("etc/apt/keyrings");
            std::fs::create_dir_all(&folder).unwrap();
            let keyring = folder.join("vendor.asc");
            std::fs::write(&keyring, "the old keyring\n").unwrap();
            let log = dir.path().join("strace.log");
            let ok = fetch_in(&dir, shell, &vendor_key, std::slice::from_ref(&vendor), Some(&log));
            assert!(ok.ok, "{shell}: {}", ok.stderr);
            assert_eq!(ok.installed.as_deref(), Some(&vendor_key[..]), "{shell}");
            let log = std::fs::read_to_string(&log).unwrap();
            let quoted = format!("\"{}\"", keyring.display());
            let touching: Vec<&str> = log.lines().filter(|l| l.contains(&quoted)).collect();
            // The only calls naming the keyring: renames onto it, from the same folder (`mv`
            // may try renameat2 first); one of them succeeded.
            let staged = format!("\"{}/.vendor.asc.microctl.", folder.display());
            assert!(touching.iter().all(|l| l.contains("rename") && l.contains(&staged)), "{shell}: {touching:#?}");
            assert!(touching.iter().any(|l| l.ends_with(") = 0")), "{shell}: {touching:#?}");
            let names = |f: &Path| -> Vec<String> {
                std::fs::read_dir(f).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
            };
            assert_eq!(names(&folder), ["vendor.asc"], "{shell}: stage left behind");

            let refused = fetch_in(&dir, shell, &extra_key, std::slice::from_ref(&vendor), None);
            assert!(!refused.ok, "{shell}");
            assert_eq!(refused.installed.as_deref(), Some(&vendor_key[..]), "{shell}: the old keyring stays");
            assert_eq!(names(&folder), ["vendor.asc"], "{shell}: stage left behind");
        }
    }
}
