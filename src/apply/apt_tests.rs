// `apt_wait` (src/apply/apt.sh) under sh and dash, against a real POSIX lock (fcntl F_SETLK,
// as dpkg and apt take theirs) held by a perl process on a stand-in lock file.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use super::{APPLY_SH, APT_SH};
use crate::remote::MARK_SH;
use crate::shell::quote;

/// A process holding a write lock on `path` until its stdin closes.
fn hold(path: &str) -> Child {
    let script = r#"use Fcntl; open(my $f, ">>", $ARGV[0]) or die "open: $!";
        my $l = pack("ssx4qqix4", F_WRLCK, 0, 0, 0, 0); fcntl($f, F_SETLK, $l) or die "lock: $!";
        $| = 1; print "held\n"; <STDIN>;"#;
    let mut child = Command::new("perl")
        .args(["-e", script, path])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("perl (package perl-base)");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "held\n", "the holder took the lock");
    child
}

/// `apt_wait 7 SECS` with the lock files in `dir`, then `$APT` printed.
fn waiter(shell: &str, dir: &str, secs: u64) -> Child {
    let script = format!(
        "STATE={d}/state W={d}/w NONCE=n0\n{MARK_SH}{APPLY_SH}{APT_SH}APT_LOCKS={locks}\n\
         apt_wait 7 {secs} || {{ echo \"failed $?\"; cat \"$W/step.out\"; exit 1; }}\necho \"APT=$APT\"\n",
        d = quote(dir),
        locks = quote(&format!("{dir}/lock-frontend {dir}/lock {dir}/missing")),
    );
    std::fs::create_dir_all(format!("{dir}/w")).unwrap();
    std::fs::create_dir_all(format!("{dir}/state")).unwrap();
    Command::new(shell).arg("-c").arg(script).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
}

#[test]
fn apt_wait_names_the_holder_once_and_goes_on_when_it_lets_go() {
    for shell in ["sh", "dash"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        std::fs::write(format!("{d}/lock-frontend"), "").unwrap();
        // Free: no marker, no wait; apt then waits itself for what is left.
        let out = waiter(shell, d, 300).wait_with_output().unwrap();
        assert!(out.status.success(), "{shell}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{shell}");
        assert!(String::from_utf8_lossy(&out.stdout).ends_with("-o DPkg::Lock::Timeout=300\n"), "{shell}: {out:?}");

        // Held: the marker names the holder (pid and name), once; released, it goes on.
        let mut holder = hold(&format!("{d}/lock"));
        let mut w = waiter(shell, d, 300);
        let mut lines = BufReader::new(w.stdout.take().unwrap());
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        assert_eq!(line, format!("n0 apt-wait\t{} perl\n", holder.id()), "{shell}");
        holder.stdin.take().unwrap().write_all(b"\n").unwrap();
        holder.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut lines, &mut rest).unwrap();
        assert!(w.wait().unwrap().success(), "{shell}: {rest}");
        assert!(!rest.contains("apt-wait"), "said once: {rest}");
        let left: u64 = rest.trim().rsplit('=').next().unwrap().parse().unwrap();
        assert!(left < 300, "{shell}: apt waits only for what is left: {rest}");
    }
}

#[test]
fn apt_wait_gives_up_after_its_timeout_naming_the_holder() {
    for shell in ["sh", "dash"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let mut holder = hold(&format!("{d}/lock-frontend"));
        let out = waiter(shell, d, 1).wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{shell}: {text}");
        assert!(
            text.contains(&format!(
                "dpkg's lock is still held by {} perl after 1s (the host's apt_lock_timeout)",
                holder.id()
            )),
            "{shell}: {text}"
        );
        drop(holder.stdin.take());
        holder.wait().unwrap();
    }
}

#[test]
fn apt_update_is_tried_three_times_before_it_fails() {
    for shell in ["sh", "dash"] {
        for (fails, code, tries) in [(0, 0, 1), (2, 0, 3), (3, 1, 3)] {
            let dir = tempfile::tempdir().unwrap();
            let d = quote(dir.path().to_str().unwrap());
            std::fs::create_dir_all(dir.path().join("state")).unwrap();
            let script = format!(
                "W={d}/w STATE={d}/state NONCE=n0\n{MARK_SH}{APPLY_SH}{APT_SH}\
                 fake() {{ echo \"$*\" >> {d}/tries; [ \"$(grep -c update {d}/tries)\" -gt {fails} ]; }}\n\
                 sleep() {{ echo \"sleep $1\" >> {d}/tries; }}\nAPT=fake\napt_update\n"
            );
            let out = Command::new(shell).arg("-c").arg(&script).output().unwrap();
            assert_eq!(out.status.code(), Some(code), "{shell} {fails}: {out:?}");
            let log = std::fs::read_to_string(dir.path().join("tries")).unwrap();
            assert_eq!(log.matches("update").count(), tries, "{shell} {fails}: {log}");
            if tries == 3 {
                assert!(log.contains("sleep 2\n") && log.contains("sleep 4\n"), "backoff: {log}");
            }
        }
    }
}
