//! Converge's part of the host session (`host.sh`): after the session holds the lock, the
//! probe section runs (its `find` prints the state folder's record, which the client checks:
//! the session runs with `STATE_CHECK=client`), then `probe-end`, then the client's frame is
//! read: none (the client refused the state folder) ends the script having written nothing;
//! a payload is unpacked inside the state folder and its `apply.sh` sourced; `0` exits.
//! Lock, framing and markers are `crate::remote`'s; the client half is `super::client`. The
//! tests here run whole sessions under sh and dash, driving that client, and count the
//! processes they start.

use crate::remote::Shipped;

/// The fixed tail of converge's session body.
pub static HOST_SH: Shipped = Shipped::new(include_str!("host.sh"));

/// Converge's session body: the probe section (see `plan::probe::script`), then `host.sh`.
pub fn body(probe: &str) -> String {
    format!("{probe}{HOST_SH}")
}

#[cfg(test)]
mod tests {
    use super::super::client::{Client, Next};
    use super::*;
    use crate::plan::desired::*;
    use crate::plan::probe;
    use crate::remote::{self, Privilege};
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};
    use std::sync::Arc;

    const N: &str = "n0";

    /// `k` files (two modes, one folder), a folder, a link and a handler, under `root`.
    fn desired(root: &str, k: usize, version: &str) -> Desired {
        let o = || Origin { role: "r".into(), line: 1 };
        let files = (0..k)
            .map(|i| {
                let content = Arc::new(format!("file {i} {version}\n").into_bytes());
                FileSpec {
                    origin: o(),
                    dest: format!("{root}/etc/f{i}"),
                    sha256: sha256_hex(&content),
                    content,
                    meta: Meta { owner: None, group: None, mode: Some(if i % 2 == 0 { 0o644 } else { 0o600 }) },
                    // f1's validator uses f0, written by the same run: it is in place by then.
                    validate: match i {
                        0 => Some("grep -q file %s # must start with `file`".into()),
                        1 => Some(format!("grep -q file {root}/etc/f0 && test -f %s")),
                        _ => None,
                    },
                    sensitive: false,
                    notify: vec!["h".into()],
                    apt_source: false,
                }
            })
            .collect();
        Desired {
            host: "h".into(),
            dirs: vec![DirSpec {
                origin: o(),
                path: format!("{root}/etc"),
                meta: Meta { mode: Some(0o755), ..Default::default() },
                notify: vec![],
            }],
            files,
            links: vec![LinkSpec {
                origin: o(),
                path: format!("{root}/cur"),
                target: format!("{root}/etc/f0"),
                notify: vec![],
            }],
            handlers: vec![HandlerSpec {
                origin: o(),
                name: "h".into(),
                run: format!("echo ran >> {root}/handler.log"),
            }],
            ..Default::default()
        }
    }

    /// One whole converge session on this machine, as a host runs it: the bootstrap under
    /// `shell` (behind a banner with no newline, optionally under `strace -f`), the probe read
    /// back and planned, then the payload (if anything changed). Returns the plan, the
    /// exit status, the markers after the probe and, under strace, the number of processes.
    fn converge(shell: &str, state: &str, d: &Desired, count: bool) -> (crate::plan::Plan, Option<i32>, String, usize) {
        let r = session(shell, state, d, count);
        (r.plan, r.code, r.out, r.processes)
    }

    /// What one converge session did (see [`session`]).
    struct Seen {
        plan: crate::plan::Plan,
        code: Option<i32>,
        out: String,
        processes: usize,
        /// File destinations the probe's `find` hashed, the record vouched for, and the
        /// client then asked the host to hash (a `hash` frame).
        hashed: Vec<String>,
        vouched: Vec<String>,
        asked: Vec<String>,
        /// All the host shell wrote to stderr (nothing, on a healthy host).
        stderr: String,
        /// The client found the facts stale (`crate::facts`) and sent nothing.
        stale: bool,
    }

    /// One whole converge session on this machine, as a host runs it: the bootstrap under
    /// `shell` (behind a banner with no newline, optionally under `strace -f`), its output
    /// fed to the client half that runs (`client::Client`: the probe judged against the hash
    /// record and planned, a `hash` frame, then the payload if anything changed), what it
    /// says to send sent on the script's stdin.
    fn session(shell: &str, state: &str, d: &Desired, count: bool) -> Seen {
        let spec = remote::Spec { client_checks_state: true, ..remote::test_spec(state, N, 1) };
        let script = remote::script(&spec, &body(&probe::script(d, state, false)));
        let cmd = format!("printf 'Welcome to prod-host! '; {}", remote::bootstrap(Privilege::AsLogin));
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut command = if count {
            let mut c = Command::new("strace");
            c.args(["-f", "-qq", "-e", "trace=process", "-o"]).arg(log.path()).arg(shell);
            c
        } else {
            Command::new(shell)
        };
        let mut child = command
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stderr, &mut text).unwrap();
            text
        });
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(script.as_bytes()).unwrap();
        stdin.flush().unwrap();
        // The client half that runs (`client::Client`), driven over the pipes as
        // `apply::talk` drives it over the session.
        let opts = super::super::ConvergeOptions {
            check: false,
            diff: false,
            lock_timeout: std::time::Duration::from_secs(1),
            timeout: None,
            what: "converge",
        };
        let mut client = Client::new(d, state, &opts, N, crate::plan::hashes::clock_now());
        let dests = |o: &probe::Observed, f: &dyn Fn(&probe::PathState) -> bool| -> Vec<String> {
            d.files.iter().filter(|x| o.paths.get(&x.dest).is_some_and(f)).map(|x| x.dest.clone()).collect()
        };
        let mut reader = remote::Reader::new(N);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut stdin = Some(stdin);
        // The host's output once the client sent its last frame (the apply's markers).
        let mut rest = String::new();
        let mut hashed = None;
        let mut eof = false;
        loop {
            let line = loop {
                if let Some(line) = reader.line(eof) {
                    break Some(line);
                }
                if eof {
                    break None;
                }
                let mut buf = Vec::new();
                eof = stdout.read_until(b'\n', &mut buf).unwrap() == 0;
                if stdin.is_none() {
                    rest.push_str(&String::from_utf8_lossy(&buf));
                }
                reader.push(&buf);
            };
            let next = client.push(line).unwrap_or_else(|e| panic!("{shell}: {e}"));
            if hashed.is_none() && !matches!(next, Next::Read) {
                // Before the hash frame's answer: what the probe's `find` hashed.
                hashed = Some(dests(client.observed(), &|p| p.sha256.is_some() && !p.vouched));
            }
            let mut send = |data: &[u8]| {
                let pipe = stdin.as_mut().expect("stdin is open until the last frame");
                pipe.write_all(data).unwrap();
                pipe.flush().unwrap();
            };
            match next {
                Next::Read | Next::Begin { .. } | Next::Wait(_) | Next::Step { .. } => {}
                Next::Send(frame) => send(frame.as_bytes()),
                Next::Refuse { frame, error } => panic!("{shell}: refused (empty frame: {frame}): {error}"),
                Next::Finish => {
                    send(&remote::frame(b""));
                    stdin = None;
                }
                Next::Stale => stdin = None,
                Next::Apply { payload, .. } => {
                    send(&remote::frame(&payload.to_vec()));
                    stdin = None;
                }
                Next::EarlyEnd => panic!("{shell}: the session ended before probe-end"),
                Next::Exit => break,
            }
        }
        let code = child.wait().unwrap().code();
        let processes = if count {
            let text = std::fs::read_to_string(log.path()).unwrap();
            if std::env::var("SHOW_EXEC").is_ok() {
                eprintln!(
                    "{}",
                    text.lines()
                        .filter(|l| l.contains("execve(") || l.contains("clone"))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            let pids: std::collections::HashSet<&str> = text.lines().filter_map(|l| l.split(' ').next()).collect();
            pids.len()
        } else {
            0
        };
        let stderr = stderr.join().unwrap();
        let vouched = dests(client.observed(), &|p| p.vouched);
        let asked = client.asked().to_vec();
        let plan = std::mem::take(&mut client.run.plan);
        let stale = client.run.stale_facts;
        Seen { plan, code, out: rest, processes, hashed: hashed.unwrap_or_default(), vouched, asked, stderr, stale }
    }

    fn mode(p: &str) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    /// The converge session under the real sh and dash: a fresh host gets every file (mode,
    /// content, link, handler) with nothing left staged, in /tmp or in the state folder; the
    /// second run changes nothing and runs no handler; one changed file changes only it.
    #[test]
    fn host_script_converges_under_sh_and_dash() {
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_str().unwrap();
            let state = format!("{root}/state");
            let d = desired(root, 3, "v1");
            let (plan, code, out, _) = converge(shell, &state, &d, false);
            assert_eq!(code, Some(0), "{shell}: {out}");
            assert_eq!(plan.changes.len(), 5, "{shell}: {:?}", plan.changes);
            assert!(out.contains("n0 passed\th0\n"), "{shell}: {out}");
            for i in 0..3 {
                let f = format!("{root}/etc/f{i}");
                assert_eq!(std::fs::read_to_string(&f).unwrap(), format!("file {i} v1\n"));
                assert_eq!(mode(&f), if i % 2 == 0 { 0o644 } else { 0o600 });
            }
            assert_eq!(std::fs::read_link(format!("{root}/cur")).unwrap().to_str().unwrap(), format!("{root}/etc/f0"));
            assert_eq!(std::fs::read_to_string(format!("{root}/handler.log")).unwrap(), "ran\n");
            let left = |p: &str| -> Vec<String> {
                std::fs::read_dir(p).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect()
            };
            assert!(left(&format!("{root}/etc")).iter().all(|n| !n.starts_with(".microctl")), "{shell}");
            assert!(left(root).iter().all(|n| !n.starts_with(".microctl")), "{shell}");
            let mut st = left(&state);
            st.sort();
            // The hash record's folder and the lock note.
            assert_eq!(st, ["hashes", "lock.owner"], "{shell}: the stage is gone, no pending handlers");
            let record = left(&format!("{state}/hashes"));
            assert_eq!(record.iter().filter(|n| n.starts_with("T_")).count(), 1, "{shell}: {record:?}");
            assert_eq!(record.len(), 4, "{shell}: T_ and one entry per file: {record:?}");
            assert_eq!(std::fs::read_to_string(format!("{state}/lock.owner")).unwrap(), "");

            let (plan, code, out, _) = converge(shell, &state, &d, false);
            assert_eq!((code, plan.changes.len(), plan.handlers.len()), (Some(0), 0, 0), "{shell}: {out}");

            let d2 = desired(root, 3, "v2");
            let mut d2 = d2;
            d2.files.truncate(2);
            d2.files[0] = d.files[0].clone();
            let (plan, code, out, _) = converge(shell, &state, &d2, false);
            assert_eq!((code, plan.changes.len()), (Some(0), 1), "{shell}: {out}");
            assert_eq!(std::fs::read_to_string(format!("{root}/etc/f1")).unwrap(), "file 1 v2\n");
            assert_eq!(std::fs::read_to_string(format!("{root}/handler.log")).unwrap(), "ran\nran\n");
        }
    }

    /// Issue #21 (green means checked): the whole converge session as a host runs it
    /// (`mark.sh`, `session.sh`, `probe.sh` and the probe `probe.rs` appends, `host.sh`, the
    /// `apply.sh` of the payload), under sh and dash with `set -u`, writes NOTHING to stderr
    /// on a realistic host: a root holding an out-of-date file, a path to remove, a command
    /// with `unless` and `creates`; the fresh apply, the no-op that reads the hash record, a
    /// change, and a run whose hash record is cut short. (`probe.sh` once held a comment
    /// fragment as a command, printing `every: not found` on every converge.)
    #[test]
    fn converge_session_writes_nothing_to_stderr_under_sh_and_dash() {
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_str().unwrap();
            let state = format!("{root}/state");
            std::fs::create_dir_all(format!("{root}/etc")).unwrap();
            std::fs::write(format!("{root}/etc/f0"), "old content\n").unwrap();
            std::fs::write(format!("{root}/stale"), "x\n").unwrap();
            let o = || Origin { role: "r".into(), line: 1 };
            let mut d = desired(root, 3, "v1");
            d.absent.push(AbsentSpec { origin: o(), path: format!("{root}/stale"), notify: vec![] });
            d.commands.push(CommandSpec {
                origin: o(),
                name: "seed".into(),
                run: format!("echo seeded > {root}/seeded"),
                creates: Some(format!("{root}/seeded")),
                unless: Some(format!("test -e {root}/nothing-here")),
                notify: vec!["h".into()],
                early: false,
            });
            let run = |d: &Desired, what: &str| {
                let r = session(shell, &state, d, false);
                assert_eq!(r.code, Some(0), "{shell} {what}: {}", r.out);
                assert_eq!(r.stderr, "", "{shell} {what}: the host scripts wrote to stderr");
                r
            };
            let r = run(&d, "fresh host");
            assert!(r.plan.changes.len() >= 6, "{shell}: {:?}", r.plan.changes);
            assert!(!std::path::Path::new(&format!("{root}/stale")).exists(), "{shell}");
            assert!(run(&d, "no-op").plan.is_empty(), "{shell}");
            let mut d2 = desired(root, 3, "v2");
            d2.commands = d.commands.clone();
            assert_eq!(run(&d2, "one change per file").plan.changes.len(), 3, "{shell}");
            for e in std::fs::read_dir(format!("{state}/hashes")).unwrap() {
                let e = e.unwrap();
                if e.file_name().to_string_lossy().starts_with("T_") {
                    std::fs::remove_file(e.path()).unwrap();
                }
            }
            assert!(run(&d2, "hash record cut short").plan.is_empty(), "{shell}");
        }
    }

    /// The hash record under sh and dash, case by case (`plan::hashes`): after an apply the
    /// no-op reads no file; an edit in place with size and mtime kept is hashed by `find`
    /// and undone; a record cut short vouches for nothing (every file hashed, nothing
    /// rewritten, the record written again); a file whose recorded ctime is the record's own
    /// time (racily clean) is not vouched for, the client asks for its hash (`hash` frame);
    /// a file the record does not list is hashed. No case rewrites an unchanged file.
    #[test]
    fn the_hash_record_spares_reads_and_hides_no_change_under_sh_and_dash() {
        let names = |state: &str| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(format!("{state}/hashes"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_str().unwrap();
            let state = format!("{root}/state");
            let d = desired(root, 3, "v1");
            let all: Vec<String> = d.files.iter().map(|f| f.dest.clone()).collect();
            assert_eq!(session(shell, &state, &d, false).code, Some(0));
            let record = names(&state);
            assert_eq!(record.len(), 4, "{shell}: {record:?}");

            let r = session(shell, &state, &d, false);
            assert!(r.plan.is_empty(), "{shell}: {:?}", r.plan.changes);
            assert_eq!((r.hashed.len(), &r.vouched, r.asked.len()), (0, &all, 0), "{shell}: no file read");
            assert_eq!(names(&state), record, "{shell}: nothing to record again");

            // f0 edited in place: same size, the old mtime put back.
            let f0 = &all[0];
            let mtime = std::fs::metadata(f0).unwrap().modified().unwrap();
            std::fs::write(f0, "FILE 0 v1\n").unwrap();
            std::fs::File::options().write(true).open(f0).unwrap().set_modified(mtime).unwrap();
            let r = session(shell, &state, &d, false);
            assert_eq!((&r.hashed, r.vouched.len(), r.plan.changes.len()), (&vec![f0.clone()], 2, 1), "{shell}");
            assert_eq!(std::fs::read_to_string(f0).unwrap(), "file 0 v1\n", "{shell}");

            // Cut short: no `T_`. Every file hashed, nothing rewritten, recorded again.
            let t = names(&state).into_iter().find(|n| n.starts_with("T_")).unwrap();
            std::fs::remove_file(format!("{state}/hashes/{t}")).unwrap();
            let r = session(shell, &state, &d, false);
            assert!(r.plan.is_empty(), "{shell}: {:?}", r.plan.changes);
            assert_eq!((&r.hashed, r.vouched.len()), (&all, 0), "{shell}");
            assert_eq!(names(&state).iter().filter(|n| n.starts_with("T_")).count(), 1, "{shell}");

            // Touched since it was written: an entry planted in the record (as if when the
            // state folder was open to others) moves the folder's ctime: nothing is vouched for.
            let forged = format!("{state}/hashes/1_2_3_4.5_{}", "0".repeat(64));
            std::fs::write(&forged, "").unwrap();
            let r = session(shell, &state, &d, false);
            assert!(r.plan.is_empty(), "{shell}: {:?}", r.plan.changes);
            assert_eq!((r.vouched.len(), r.hashed.len() + r.asked.len()), (0, 3), "{shell}");
            assert!(!std::path::Path::new(&forged).exists(), "{shell}: recorded again");

            // Racily clean: a record (written as `record_hashes` does, `T_` last) whose T0 is
            // f1's ctime. `find` leaves f1 to the record, which does not vouch for it: the
            // client asks for its hash.
            let f1_ctime = {
                use std::os::unix::fs::MetadataExt;
                let m = std::fs::metadata(&all[1]).unwrap();
                format!("{}.{:09}0", m.ctime(), m.ctime_nsec())
            };
            let entries: Vec<String> = names(&state).into_iter().filter(|n| !n.starts_with("T_")).collect();
            std::fs::remove_dir_all(format!("{state}/hashes")).unwrap();
            std::fs::create_dir(format!("{state}/hashes")).unwrap();
            std::fs::set_permissions(format!("{state}/hashes"), std::fs::Permissions::from_mode(0o700)).unwrap();
            for e in &entries {
                std::fs::write(format!("{state}/hashes/{e}"), "").unwrap();
            }
            std::fs::write(format!("{state}/hashes/T_{f1_ctime}"), "").unwrap();
            let r = session(shell, &state, &d, false);
            assert!(r.plan.is_empty(), "{shell}: {:?}", r.plan.changes);
            // (f2 shares f1's ctime: renamed by the same `mv`; f0, edited later, is newer.)
            assert!(
                r.asked.contains(&all[1]) && !r.vouched.contains(&all[1]),
                "{shell}: {:?} {:?}",
                r.asked,
                r.vouched
            );
            assert_eq!(r.asked.len() + r.vouched.len() + r.hashed.len(), 3, "{shell}");
            let r = session(shell, &state, &d, false);
            assert_eq!((r.hashed.len(), r.vouched.len(), r.asked.len()), (0, 3, 0), "{shell}: recorded again");

            // A fourth file, already right on the host, that the record does not list.
            let mut d4 = desired(root, 4, "v1");
            d4.files[3].validate = None;
            std::fs::write(&d4.files[3].dest, "file 3 v1\n").unwrap();
            std::fs::set_permissions(&d4.files[3].dest, std::fs::Permissions::from_mode(0o600)).unwrap();
            let r = session(shell, &state, &d4, false);
            assert!(r.plan.is_empty(), "{shell}: {:?}", r.plan.changes);
            assert_eq!((&r.hashed, r.asked.len()), (&vec![d4.files[3].dest.clone()], 0), "{shell}");
        }
    }

    /// A folder tree that the attacker `nobody` can reach (tempdirs are root's alone): the
    /// returned folder is root's, 0755; `shared` in it is nobody's (the app's folder, 0755);
    /// `vault` root's 0700 with `secret`, root 0600 (the victim); `att` nobody's, for the
    /// attacker's log.
    struct Hostile {
        _dir: tempfile::TempDir,
        root: String,
        shared: String,
        vault: String,
        att: String,
    }

    impl Hostile {
        fn new() -> Hostile {
            assert!(nix_is_root(), "these tests need root (they play the app user as nobody)");
            let dir = tempfile::tempdir().unwrap();
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let root = dir.path().to_str().unwrap().to_string();
            let (shared, vault, att) = (format!("{root}/shared"), format!("{root}/vault"), format!("{root}/att"));
            for (d, mode, nobody) in [(&shared, 0o755, true), (&vault, 0o700, false), (&att, 0o755, true)] {
                std::fs::create_dir(d).unwrap();
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode)).unwrap();
                if nobody {
                    std::os::unix::fs::chown(d, Some(NOBODY), Some(NOGROUP)).unwrap();
                }
            }
            std::fs::write(format!("{vault}/secret"), "precious\n").unwrap();
            std::fs::set_permissions(format!("{vault}/secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
            Hostile { _dir: dir, root, shared, vault, att }
        }

        /// A file of nobody's in `shared`, with `mode`.
        fn theirs(&self, name: &str, content: &str, mode: u32) -> String {
            let p = format!("{}/{name}", self.shared);
            std::fs::write(&p, content).unwrap();
            std::os::unix::fs::chown(&p, Some(NOBODY), Some(NOGROUP)).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p
        }

        /// The victim is as it was: root's, 0600, "precious".
        fn assert_victim_untouched(&self, what: &str) {
            use std::os::unix::fs::MetadataExt;
            let p = format!("{}/secret", self.vault);
            let m = std::fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("{what}: the victim is gone: {e}"));
            assert!(m.file_type().is_file(), "{what}: the victim is no longer a file");
            assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (0, 0, 0o600), "{what}: the victim's owner/mode changed");
            assert_eq!(std::fs::read_to_string(&p).unwrap(), "precious\n", "{what}: the victim's content changed");
        }

        /// A validate snippet that holds the run (between staging and the rename) until the
        /// attacker logged `done` (bounded: 20 s), then checks the staged file.
        fn gate(&self) -> String {
            format!(
                "i=0; until grep -qx done {}/log 2>/dev/null || [ $i -ge 400 ]; do sleep 0.05; i=$((i+1)); done; test -f %s",
                self.att
            )
        }
    }

    const NOBODY: u32 = 65534;
    const NOGROUP: u32 = 65534;

    fn nix_is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    /// The attacker: `nobody` running `inotifywait -m` (create, attrib, moved_to) on `watch`,
    /// each event (`EVENTS|PATH`) read by a perl loop that runs `act` (perl, with `$e`, `$p`
    /// and `@a` = `args`) at most once, where `act` returns true; it logs what it did to
    /// `att/log`, `done` last. Killed (its process group) on drop.
    struct Attacker {
        child: std::process::Child,
        log: String,
    }

    impl Attacker {
        fn start(h: &Hostile, watch: &[&str], act: &str, args: &[&str]) -> Attacker {
            use std::os::unix::process::CommandExt;
            assert!(
                Command::new("inotifywait").arg("--help").output().is_ok(),
                "inotifywait is needed (Debian package inotify-tools)"
            );
            let perl = format!(
                "open(my $log, '>>', shift @ARGV) or die; $log->autoflush(1); my @a = @ARGV; my $done = 0; \
                 while (my $l = <STDIN>) {{ chomp $l; my ($e, $p) = split /\\|/, $l, 2; next if $done; \
                 if (do {{ {act} }}) {{ $done = 1; print $log \"done\\n\"; }} }}"
            );
            let log = format!("{}/log", h.att);
            let err = format!("{}/inotify.err", h.att);
            let script = "w=$1; e=$2; l=$3; p=$4; shift 4; inotifywait -m -e create,attrib,moved_to --format '%e|%w%f' $w 2>\"$e\" | perl -e \"$p\" \"$l\" \"$@\"";
            let child = Command::new("runuser")
                .args(["-u", "nobody", "--", "sh", "-c", script, "sh", &watch.join(" "), &err, &log, &perl])
                .args(args)
                .stdin(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap();
            let t = std::time::Instant::now();
            while !std::fs::read_to_string(&err).unwrap_or_default().contains("Watches established") {
                assert!(t.elapsed() < std::time::Duration::from_secs(20), "the attacker's watches never came up");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Attacker { child, log }
        }

        /// What the attacker logged, once it logged `done` (bounded).
        fn acted(&self) -> String {
            let t = std::time::Instant::now();
            loop {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                if log.lines().any(|l| l == "done") {
                    return log;
                }
                assert!(t.elapsed() < std::time::Duration::from_secs(20), "the attacker never acted: {log:?}");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }

    impl Drop for Attacker {
        fn drop(&mut self) {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
            let _ = self.child.wait();
        }
    }

    fn regular(p: &str) -> (u32, u32, u32, String) {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(p).unwrap();
        assert!(m.file_type().is_file(), "{p} is not a regular file: {:?}", m.file_type());
        (m.uid(), m.gid(), m.mode() & 0o7777, std::fs::read_to_string(p).unwrap())
    }

    fn file_spec(dest: &str, content: &str, meta: Meta, validate: Option<String>) -> FileSpec {
        let content = Arc::new(content.as_bytes().to_vec());
        FileSpec {
            origin: Origin { role: "r".into(), line: 1 },
            dest: dest.into(),
            sha256: sha256_hex(&content),
            content,
            meta,
            validate,
            sensitive: false,
            notify: vec![],
            apt_source: false,
        }
    }

    /// Issue #20 item 2, under sh and dash: two files written into the app's folder `shared`
    /// (nobody's): a.conf without owner/mode (nobody's 0666 file there now), b.conf root's
    /// 0640. The attacker (nobody, inotify on `shared` and its parent) swaps the first
    /// `.microctl.*` staging folder it sees for a symlink to the root-only vault and plants a
    /// symlink to the victim at a.conf, while the run waits in a.conf's validate. The attack
    /// ran (its log), yet the victim is untouched, and both managed paths are regular files
    /// with the role's content and their owner/mode (a.conf's: the live file's, as probed),
    /// with no staging folder left. (Before the fix the stage was `shared/.microctl.N`: the
    /// rename moved the vault's file into `shared`.)
    #[test]
    #[ignore = "needs root: run by scripts/test.sh"]
    fn a_swapped_stage_in_a_folder_others_can_write_changes_nothing_of_roots_under_sh_and_dash() {
        for shell in ["sh", "dash"] {
            let h = Hostile::new();
            std::fs::write(format!("{}/a.conf", h.vault), "precious\n").unwrap();
            std::fs::set_permissions(format!("{}/a.conf", h.vault), std::fs::Permissions::from_mode(0o600)).unwrap();
            let a = h.theirs("a.conf", "old a\n", 0o666);
            let b = format!("{}/b.conf", h.shared);
            let d = Desired {
                host: "h".into(),
                files: vec![
                    file_spec(&a, "a v1\n", Meta::default(), Some(h.gate())),
                    file_spec(
                        &b,
                        "b v1\n",
                        Meta { owner: Some("root".into()), group: Some("root".into()), mode: Some(0o640) },
                        None,
                    ),
                ],
                ..Default::default()
            };
            let act = "if ($p =~ m{/\\.microctl\\.[^/]*$}) { \
                 if (rename($p, \"$a[0]/stolen\")) { symlink($a[1], $p); print $log \"swapped $p\\n\"; } \
                 else { print $log \"denied $p: $!\\n\"; } \
                 unlink(\"$a[0]/a.conf\"); symlink(\"$a[2]\", \"$a[0]/a.conf\") and print $log \"planted a.conf\\n\"; 1 } else { 0 }";
            let attacker =
                Attacker::start(&h, &[&h.root, &h.shared], act, &[&h.shared, &h.vault, &format!("{}/secret", h.vault)]);
            let r = session(shell, &format!("{}/state", h.root), &d, false);
            let log = attacker.acted();
            drop(attacker);
            eprintln!("{shell}: the attacker: {log}");
            assert!(log.contains(".microctl.") && log.contains("planted a.conf"), "{shell}: {log}");
            assert_eq!(r.code, Some(0), "{shell}: {} {log}", r.out);
            h.assert_victim_untouched(shell);
            let vaulted = std::fs::read_to_string(format!("{}/a.conf", h.vault)).ok();
            assert_eq!(vaulted.as_deref(), Some("precious\n"), "{shell}: the vault's a.conf was moved or changed");
            assert_eq!(regular(&a), (NOBODY, NOGROUP, 0o666, "a v1\n".into()), "{shell}: {log}");
            assert_eq!(regular(&b), (0, 0, 0o640, "b v1\n".into()), "{shell}");
            for folder in [&h.root, &h.shared] {
                let left: Vec<String> = std::fs::read_dir(folder)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .filter(|n| n.starts_with(".microctl"))
                    .collect();
                assert!(left.is_empty(), "{shell}: {left:?} left in {folder}");
            }
        }
    }

    /// Issue #20 item 3, under sh and dash: a file in `shared` (nobody's) with the right
    /// content but nobody's 0600 where the role wants root's 0644. The attacker swaps it for a
    /// symlink to the victim on the first event it sees (the `chown -h` of the old fix, or a
    /// staging folder), while the run waits. The fix re-stages the content and renames it
    /// over (no chown/chmod by path in a folder others can write): the victim is untouched
    /// and the managed path is root's 0644 file with the content. (Before the fix: `chmod
    /// 0644` followed the link put there after `chown -h`, or the managed path ended as it.)
    #[test]
    #[ignore = "needs root: run by scripts/test.sh"]
    fn an_owner_mode_fix_in_a_folder_others_can_write_follows_no_swap_under_sh_and_dash() {
        for shell in ["sh", "dash"] {
            let h = Hostile::new();
            let p = h.theirs("app.conf", "same\n", 0o600);
            let meta = Meta { owner: Some("root".into()), group: Some("root".into()), mode: Some(0o644) };
            let d = Desired {
                host: "h".into(),
                files: vec![file_spec(&p, "same\n", meta, Some(h.gate()))],
                ..Default::default()
            };
            let act = "if (($e =~ /ATTRIB/ && $p eq $a[0]) || $p =~ m{/\\.microctl\\.[^/]*$}) { \
                 rename($a[0], \"$a[0].old\"); symlink($a[1], $a[0]) and print $log \"swapped $a[0] on $e $p\\n\"; 1 } else { 0 }";
            let attacker = Attacker::start(&h, &[&h.root, &h.shared], act, &[&p, &format!("{}/secret", h.vault)]);
            let r = session(shell, &format!("{}/state", h.root), &d, false);
            let log = attacker.acted();
            drop(attacker);
            eprintln!("{shell}: the attacker: {log}");
            assert!(log.contains("swapped"), "{shell}: {log}");
            assert_eq!(r.plan.changes.len(), 1, "{shell}: {:?}", r.plan.changes);
            assert_eq!(
                r.plan.changes[0].reason, "mode 0600 -> 0644, owner nobody -> root, group nogroup -> root",
                "{shell}"
            );
            assert_eq!(r.code, Some(0), "{shell}: {} {log}", r.out);
            h.assert_victim_untouched(shell);
            assert_eq!(regular(&p), (0, 0, 0o644, "same\n".into()), "{shell}: {log}");
        }
    }

    /// Processes the host scripts start (counted with `strace -f`, every fork and exec): a
    /// no-op costs the same whatever the number of files, and so does a fresh apply of files
    /// in one folder (one `install` per owner/mode, one `sync`, one `mv -t` per folder). Fails
    /// if either grows.
    #[test]
    fn processes_per_host_and_per_file_are_bounded() {
        if Command::new("strace").arg("-V").output().is_err() {
            panic!("strace is missing: install the Debian package strace (scripts/test.sh does)");
        }
        let run = |k: usize| {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_str().unwrap();
            let d = desired(root, k, "v1");
            let (_, code, out, fresh) = converge("dash", &format!("{root}/state"), &d, true);
            assert_eq!(code, Some(0), "{out}");
            let (plan, code, _, noop) = converge("dash", &format!("{root}/state"), &d, true);
            assert!(code == Some(0) && plan.is_empty());
            (fresh, noop)
        };
        let (fresh4, noop4) = run(4);
        let (fresh16, noop16) = run(16);
        eprintln!(
            "processes: no-op {noop4} (4 files), {noop16} (16 files); fresh {fresh4} (4 files), {fresh16} (16 files)"
        );
        // `sh` (the login shell `exec`s it; it reads its script itself), `flock`, `find` (the
        // probe, the state folder's record included); no `sha256sum`: the hash record the
        // fresh run wrote vouches for every file (`plan::hashes`).
        assert!(noop4 <= NOOP_PROCESSES && noop16 == noop4, "no-op: {noop4} / {noop16}");
        assert!(fresh16 <= fresh4 + 12 * PER_FILE_PROCESSES, "per file: {fresh4} -> {fresh16}");
        assert!(fresh4 <= FRESH_4_PROCESSES, "fresh, 4 files: {fresh4}");
    }

    /// Facts (`crate::facts`): a host rendered with facts whose fingerprint is not its own
    /// (first contact, reboot, OS upgrade) ends its session having written nothing (no file,
    /// no state folder entry but the lock's); with its own fingerprint the converge goes on;
    /// and a no-op with the fingerprint costs not one process more than without (builtins).
    #[test]
    fn stale_facts_write_nothing_and_a_no_op_with_facts_starts_no_process_under_sh_and_dash() {
        let out = Command::new("sh").arg("-c").arg(crate::facts::gather::FINGERPRINT_SH.text()).output().unwrap();
        let line = String::from_utf8(out.stdout).unwrap();
        let own = line.strip_prefix("F\t").and_then(|l| l.strip_suffix('\n')).expect("one F line").to_string();
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_str().unwrap();
            let state = format!("{root}/state");
            let mut d = desired(root, 2, "v1");
            for stale in ["", "not-this-boot\tID=debian\tVERSION_ID=\"12\""] {
                d.facts_fingerprint = Some(stale.to_string());
                let seen = session(shell, &state, &d, false);
                assert!(seen.stale && seen.plan.is_empty(), "{shell}: {stale:?} not stale");
                assert_eq!((seen.code, seen.stderr.as_str()), (Some(0), ""), "{shell}");
                assert!(!std::path::Path::new(&format!("{root}/etc")).exists(), "{shell}: a stale host was written to");
                let left: Vec<_> = std::fs::read_dir(&state).unwrap().map(|e| e.unwrap().file_name()).collect();
                assert!(left.iter().all(|n| n.to_string_lossy().starts_with("lock")), "{shell}: {left:?}");
            }
            d.facts_fingerprint = Some(own.clone());
            let seen = session(shell, &state, &d, false);
            assert!(!seen.stale && !seen.plan.is_empty() && seen.code == Some(0), "{shell}: {}", seen.out);
            assert_eq!(std::fs::read_to_string(format!("{root}/etc/f0")).unwrap(), "file 0 v1\n", "{shell}");
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let state = format!("{root}/state");
        let mut d = desired(root, 4, "v1");
        converge("dash", &state, &d, false);
        let (plan, code, _, without) = converge("dash", &state, &d, true);
        assert!(plan.is_empty() && code == Some(0));
        d.facts_fingerprint = Some(own);
        let (plan, code, _, with) = converge("dash", &state, &d, true);
        assert!(plan.is_empty() && code == Some(0));
        assert_eq!(with, without, "a no-op with facts starts {with} processes, without {without}");
    }

    /// What a no-op session sends before the probe runs: no comment or blank line of the
    /// `.sh` files (`remote::Shipped`), the only comment left being the `# shellcheck`
    /// directive `remote::script` ends with. Prints the bytes, and those of the same script
    /// with the files' comments. Fails if comments are shipped again.
    #[test]
    fn no_op_session_ships_no_comment_lines() {
        let spec = remote::Spec { client_checks_state: true, ..remote::test_spec("/var/lib/microctl", N, 60) };
        for k in [0, 4] {
            let script =
                remote::script(&spec, &body(&probe::script(&desired("/srv/app", k, "v1"), "/var/lib/microctl", false)));
            let as_written = crate::shell::with_comments(&script);
            eprintln!("no-op session script, {k} files: {} bytes ({} with comments)", script.len(), as_written.len());
            let comments: Vec<&str> = script.lines().filter(|l| l.trim_start().starts_with('#')).collect();
            assert_eq!(comments, ["# shellcheck disable=SC2317 # reached only when the body does not exit itself"]);
            assert!(script.lines().all(|l| !l.trim().is_empty()), "{script}");
            assert!(as_written.len() > script.len() * 2, "{} / {}", as_written.len(), script.len());
        }
    }

    /// What `processes_per_host_and_per_file_are_bounded` allows (measured, then fixed here;
    /// the fresh count includes the two validators and the handler: `timeout`, `sh` and the
    /// command each, the host-side bound of a snippet, and the hash record's `mkdir`, `find`
    /// and `sha256sum`; the no-op run has no snippet).
    const NOOP_PROCESSES: usize = 3;
    const PER_FILE_PROCESSES: usize = 0;
    const FRESH_4_PROCESSES: usize = 28;
}
