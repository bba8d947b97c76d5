//! The hash record's shell halves and the text they exchange with the client, kept beside
//! the judge (`super`) so one module owns the format: `write.sh` writes the record at the end
//! of an apply (called by [`write_steps`]), `list.sh` lists it at the start of the probe and
//! the probe's `find` takes its pieces from here ([`FIND_STARTS`], [`FIND_UNVOUCHED`],
//! [`t_entry`]); the `H` lines it prints are read back by [`parse_listing`]; what the record
//! cannot vouch for is asked for in a [`hash_frame`] (read by `src/apply/host.sh`) and the
//! answer read by [`parse_hashes`].

use std::fmt::Write;

use crate::plan::probe::{Observed, bad, hash_line};
use crate::plan::{Action, Plan, desired::Desired, trust};
use crate::shell::{Shipped, quote};

/// The probe's first part: lists the record (names only), sets `T0`, `HT`, `H` and the
/// `-o -inum N` arguments of the probe's `find`.
pub static LIST_SH: Shipped = Shipped::new(include_str!("list.sh"));

/// The apply script's `hashes_settle` and `record_hashes` (defined after `apply.sh`).
pub static WRITE_SH: Shipped = Shipped::new(include_str!("write.sh"));

/// The probe's `find` starting points after `$STATE`: the record's folder and its `T_` entry
/// (their stat is what [`super::Record::read`] checks the record is untouched by).
pub const FIND_STARTS: &str = " \"$STATE/hashes\" \"$HT\"";

/// The `find` condition of a file the record cannot vouch for (hashed by the probe): changed
/// after T0, or an inode the record does not list.
pub const FIND_UNVOUCHED: &str = "'(' -newerct \"@$T0\" -o ! '(' -false \"$@\" ')' ')'";

/// The `find -path` pattern of the record's `T_` entry (a starting point, never hashed), in a
/// state folder whose name is already escaped as a pattern (`escaped_state_dir`).
pub fn t_entry(escaped_state_dir: &str) -> String {
    format!("{escaped_state_dir}/hashes/T_*")
}

/// Takes the record's `H` lines (its names, as `list.sh` printed them) off the front of the
/// probe's output; returns them and the rest.
pub fn parse_listing(output: &str) -> Result<(Vec<String>, &str), String> {
    let mut names = Vec::new();
    let mut rest = output;
    while let Some(r) = rest.strip_prefix("H\t") {
        let (line, tail) = r.split_once('\n').ok_or("a hash record line is cut short")?;
        names.push(line.to_string());
        rest = tail;
    }
    Ok((names, rest))
}

/// The end of an apply script that got through every step: the host's hash record of every
/// managed file (`record_hashes`), taken once the clock has moved past the renames of this
/// run (`hashes_settle`), so that the next no-op reads none of them.
pub fn write_steps(desired: &Desired, plan: &Plan) -> String {
    let mut s = String::new();
    if desired.files.is_empty() {
        return s;
    }
    let mut dirs: Vec<String> = Vec::new();
    for c in &plan.changes {
        if let Action::WriteFile(i) | Action::FixFileMeta(i) = c.action {
            let parent = trust::ancestors(&desired.files[i].dest).pop().unwrap_or_else(|| "/".into());
            let d = quote(&parent);
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    // Not a file in a folder others can write (`plan::trust`): the record never vouches for it.
    let files: Vec<String> = desired
        .files
        .iter()
        .enumerate()
        .filter(|(i, _)| !plan.untrusted.contains(i))
        .map(|(_, f)| quote(&f.dest))
        .collect();
    if !dirs.is_empty() {
        let _ = writeln!(s, "hashes_settle {}", dirs.join(" "));
    }
    let _ = writeln!(s, "record_hashes{}", files.iter().map(|f| format!(" {f}")).collect::<String>());
    s
}

/// A `hash` frame for `host.sh`: `hash`, one path per line, an empty line (managed paths
/// hold no control characters).
pub fn hash_frame(paths: &[String]) -> String {
    let mut frame = String::from("hash\n");
    for p in paths {
        frame.push_str(p);
        frame.push('\n');
    }
    frame.push('\n');
    frame
}

/// Reads the `sha256sum` lines the host printed for a `hash` frame (files the probe left to
/// the hash record, which could not vouch for them) into `obs`: only for paths in `asked`.
pub fn parse_hashes(output: &str, asked: &[String], obs: &mut Observed) -> Result<(), String> {
    for line in output.lines() {
        let (hash, path) = hash_line(line).ok_or_else(|| bad(line))?;
        if !asked.contains(&path) {
            return Err(bad(line));
        }
        obs.paths.entry(path).or_default().sha256 = Some(hash.to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{out_of_date, vouch};
    use super::*;
    use crate::plan::desired::{FileSpec, Meta, Origin, sha256_hex};
    use crate::plan::probe;
    use std::os::unix::fs::PermissionsExt;

    fn file(dest: &str, content: &str) -> FileSpec {
        let content = std::sync::Arc::new(content.as_bytes().to_vec());
        FileSpec {
            origin: Origin { role: "r".into(), line: 1 },
            dest: dest.into(),
            sha256: sha256_hex(&content),
            content,
            meta: Meta { owner: None, group: None, mode: Some(0o644) },
            validate: None,
            sensitive: false,
            notify: vec![],
            apt_source: false,
        }
    }

    /// The record round trip under sh and dash: written by the shell half (`write.sh`, as
    /// `write_steps` calls it at the end of an apply), listed by the other (`list.sh`, in the
    /// real probe), judged by the Rust half (`vouch`): every file is vouched for with its
    /// own hash and the probe's `find` read none. A file edited in place since (same size,
    /// its mtime put back) is read by `find` and not vouched for; the other still is.
    #[test]
    fn the_record_written_by_the_shell_is_read_back_by_the_client_under_sh_and_dash() {
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_str().unwrap();
            let state = format!("{root}/state");
            std::fs::create_dir(&state).unwrap();
            std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
            std::fs::create_dir(format!("{root}/etc")).unwrap();
            let d = Desired {
                host: "h".into(),
                files: vec![file(&format!("{root}/etc/a"), "a v1\n"), file(&format!("{root}/etc/b"), "b v1\n")],
                ..Default::default()
            };
            let probe = || {
                let script = format!("STATE={}\nTIMEOUT=60\n{}", quote(&state), probe::script(&d, &state, false));
                let out = std::process::Command::new(shell).arg("-c").arg(&script).output().unwrap();
                assert!(out.status.success() && out.stderr.is_empty(), "{shell}: {out:?}");
                let text = String::from_utf8(out.stdout).unwrap();
                let mut obs = probe::parse(&text).unwrap_or_else(|e| panic!("{shell}: {e}: {text:?}"));
                obs.login_uid = Some(obs.path(&state).uid);
                obs
            };
            // The apply: the files written (as the rename does), then the record.
            let plan = crate::plan::plan(&d, &probe());
            assert_eq!(plan.changes.len(), 2, "{shell}: {:?}", plan.changes);
            for f in &d.files {
                std::fs::write(&f.dest, f.content.as_slice()).unwrap();
            }
            let w = format!("{root}/w");
            std::fs::create_dir(&w).unwrap();
            let write = format!("STATE={} W={}\n{WRITE_SH}{}", quote(&state), quote(&w), write_steps(&d, &plan));
            assert!(write.contains("hashes_settle ") && write.contains("record_hashes "), "{write}");
            let out = std::process::Command::new(shell).arg("-c").arg(&write).output().unwrap();
            assert!(out.status.success() && out.stderr.is_empty(), "{shell}: {out:?}");

            let mut obs = probe();
            let read: Vec<&str> =
                d.files.iter().filter(|f| obs.path(&f.dest).sha256.is_some()).map(|f| f.dest.as_str()).collect();
            assert!(read.is_empty(), "{shell}: the probe read {read:?}");
            assert_eq!(obs.record.len(), 3, "{shell}: {:?}", obs.record);
            assert!(vouch(&d, &state, &mut obs, super::super::clock_now()).is_empty(), "{shell}");
            for f in &d.files {
                let p = obs.path(&f.dest);
                assert_eq!((p.vouched, p.sha256.as_deref()), (true, Some(f.sha256.as_str())), "{shell}: {}", f.dest);
            }
            assert!(!out_of_date(&d, &state, &obs, super::super::clock_now()), "{shell}");

            let a = &d.files[0].dest;
            let mtime = std::fs::metadata(a).unwrap().modified().unwrap();
            std::fs::write(a, "A V1\n").unwrap();
            std::fs::File::options().write(true).open(a).unwrap().set_modified(mtime).unwrap();
            let mut obs = probe();
            assert_eq!(obs.path(a).sha256, Some(sha256_hex(b"A V1\n")), "{shell}: find read the edited file");
            assert!(vouch(&d, &state, &mut obs, super::super::clock_now()).is_empty(), "{shell}");
            assert!(!obs.path(a).vouched && obs.path(&d.files[1].dest).vouched, "{shell}");
        }
    }

    /// `record_hashes` under sh and dash: a `T_` entry; for a file on a filesystem with
    /// nanosecond timestamps its device, inode, size, ctime and the hash `sha256sum` gives
    /// (a path with `\\` is skipped: its line is escaped); for one elsewhere (/proc) only
    /// `N_DEV_INODE`, not read; nothing for what is missing or not a file. Run again, it
    /// replaces the record.
    #[test]
    fn record_hashes_names_each_file_under_sh_and_dash() {
        use std::os::unix::fs::MetadataExt;
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_str().unwrap();
            let (plain, slash) = (format!("{root}/a b"), format!("{root}/back\\slash"));
            std::fs::write(&plain, "test").unwrap();
            std::fs::write(&slash, "x").unwrap();
            let script = format!(
                "STATE={state} W={w}\n{WRITE_SH}record_hashes {} {} /proc/version {state}/missing {root}\n",
                quote(&plain),
                quote(&slash),
                state = quote(&format!("{root}/state")),
                w = quote(&format!("{root}/w")),
                root = quote(root),
            );
            std::fs::create_dir(format!("{root}/state")).unwrap();
            for _ in 0..2 {
                // The run's stage folder (`hashes_settle`'s stamp is made there).
                std::fs::create_dir_all(format!("{root}/w")).unwrap();
                let out = std::process::Command::new(shell).arg("-c").arg(&script).output().unwrap();
                assert!(out.status.success(), "{shell}: {out:?}");
                let mut names: Vec<String> = std::fs::read_dir(format!("{root}/state/hashes"))
                    .unwrap()
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect();
                names.sort();
                let (m, v) = (std::fs::metadata(&plain).unwrap(), std::fs::metadata("/proc/version").unwrap());
                let entry = format!(
                    "{}_{}_4_{}.{:09}0_{}",
                    m.dev(),
                    m.ino(),
                    m.ctime(),
                    m.ctime_nsec(),
                    crate::plan::desired::sha256_hex(b"test")
                );
                assert_eq!(names.len(), 3, "{shell}: {names:?}");
                assert_eq!(names[0], entry, "{shell}");
                assert_eq!(names[1], format!("N_{}_{}", v.dev(), v.ino()), "{shell}");
                assert!(names[2].starts_with("T_"), "{shell}: {names:?}");
                assert_eq!(
                    std::fs::metadata(format!("{root}/state/hashes")).unwrap().mode() & 0o7777,
                    0o700,
                    "{shell}"
                );
            }
        }
    }
}
