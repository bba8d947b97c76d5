//! The hash record: what lets a no-op converge skip reading (hashing) the files it manages.
//! This module owns its format on both sides: the judge here, the shell halves that write
//! and list it (`write.sh`, `list.sh`) and the text they exchange with the client (`wire`).
//!
//! After every apply, and after a no-op whose probe had to hash a file, the host writes a
//! record (`record_hashes` in write.sh, at the end of the apply script): a folder
//! `STATE/hashes`, made anew with mode 0700 (its mtime then is T0, taken before any file is
//! read), holding for each managed regular file on a filesystem with nanosecond timestamps an
//! empty file named `DEV_INODE_SIZE_CTIME_SHA256`, and last `T_T0`. The next probe lists those
//! names (list.sh, the probe's first part: names only, one `readdir`) and its `find` hashes
//! only the files the record cannot vouch for. Here the client decides, for each file the
//! probe did not hash, whether the record vouches for its hash: only when
//!
//! - the record is whole (exactly one `T_`) and untouched: its folder is not a link, has mode
//!   0700 and the state folder's owner, and its ctime is still that of the `T_` entry written
//!   last (an entry planted, removed or renamed there since, or a `chmod`, moves it; a folder
//!   put in its place is another owner's: a state folder that was ever writable by others
//!   cannot lend its record),
//! - it has one entry for the file's device and inode,
//! - the file's size and ctime are exactly the recorded ones,
//! - the recorded ctime has a nonzero nanosecond part (an ext4 with 128-byte inodes keeps
//!   whole seconds) and is older than T0.
//!
//! Why that is enough: the kernel sets a file's ctime to the current time on every change of
//! its content (write, truncate, mmap write fault), its metadata, or its name (rename, link),
//! and user space cannot set it (`touch -d` sets mtime and atime only); another file put in its
//! place has another inode, or a new ctime. The record read the file after T0; a file last
//! changed before T0 (recorded ctime < T0) and unchanged since (same ctime now) had the
//! recorded content when it was read, and has it now; a file changed after T0 has a ctime at
//! or after T0, never equal to one before it. This is git's rule for "racily clean" index
//! entries, one step stricter: git trusts entries older than the index file's own mtime,
//! written after the read; T0 is taken before it.
//! Files a user other than root can write are never vouched for, nor recorded
//! (`record_hashes` lists only root-owned files without a group/other write bit, the client
//! names only files in trusted folders, `plan::trust`, and checks both again here): the
//! kernel moves ctime on the *first* write through a shared writable `mmap` (the write
//! fault that makes a page dirty), not on later stores to the already-dirty page, so whoever
//! can write a file can change its content with its ctime unchanged. Only root can write a
//! root-owned file without write bits for others, and root is trusted. A file in a folder
//! others can write is left out too (its name could be given to another file).
//! And a record older than [`MAX_AGE`] (24 h, by the controller's clock; or one from more
//! than that in the future: a host clock far off) vouches for nothing: every file is read
//! then and the record written again, a full read at least once a day whatever else the
//! record missed. The limit stays: root's own mmap edits of a root-owned file within that
//! day go unseen by a no-op converge (root is trusted: it could as well edit the record).
//! Where that cannot hold, the file is hashed: a filesystem with coarse or foreign timestamps
//! (vfat, NFS, FUSE: an `N_DEV_INODE` entry only), a record cut short, a file the record does not list, one
//! changed at T0's tick. Left out by design: a clock set back by root, and a file changed by
//! root under a mounted filesystem (through its block device): both need root, who owns the
//! record.

mod wire;

pub use wire::{
    FIND_STARTS, FIND_UNVOUCHED, LIST_SH, WRITE_SH, hash_frame, parse_hashes, parse_listing, t_entry, write_steps,
};

use std::collections::HashMap;

use super::desired::Desired;
use super::probe::{Kind, Observed, PathState, Stamp, Stat};

/// How long a hash record vouches for anything: after it, every file is read again (a full
/// read at least once a day; see the module doc).
pub const MAX_AGE: i64 = 24 * 3600;

/// The controller's clock, as a [`Stamp`] (the record's age is judged by it).
pub fn clock_now() -> Stamp {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Stamp { secs: t.as_secs() as i64, nanos: t.subsec_nanos() }
}

/// Whether the record may vouch for `path` (now `state`): a regular file owned by root with no
/// group/other write bit (no one but root can write it, through mmap or otherwise), in a
/// folder only trusted users can write (`plan::trust`).
pub fn eligible(desired: &Desired, observed: &Observed, path: &str, state: &PathState) -> bool {
    state.kind == Kind::File
        && state.uid == 0
        && state.mode & 0o022 == 0
        && super::trust::place(desired, observed, path) == super::trust::Place::Trusted
}

/// A whole hash record, as the client reads it: by (device, inode), the recorded entry
/// (`None` where two entries name one file: it vouches for neither).
#[derive(Debug, Default)]
pub struct Record {
    t0: Stamp,
    files: HashMap<(u64, u64), Option<Entry>>,
    /// Files on a filesystem without nanosecond timestamps (`N_` entries): always hashed.
    coarse: std::collections::HashSet<(u64, u64)>,
}

/// What the record saw of one file: its size, its ctime and its content's hash.
#[derive(Debug)]
struct Entry {
    size: u64,
    ctime: Stamp,
    sha256: String,
}

impl Record {
    /// The record's names (the probe's `H` lines); `None` unless it is whole: exactly one
    /// `T_` entry and every other name one `record_hashes` makes (`N_DEV_INODE` for a file on
    /// a filesystem without nanosecond timestamps, `DEV_INODE_SIZE_CTIME_SHA256` otherwise).
    pub fn parse(names: &[String]) -> Option<Record> {
        let mut t0 = None;
        let mut files = HashMap::new();
        let mut coarse = std::collections::HashSet::new();
        for name in names {
            if let Some(t) = name.strip_prefix("T_") {
                if t0.replace(Stamp::parse(t)?).is_some() {
                    return None;
                }
                continue;
            }
            if let Some(file) = name.strip_prefix("N_") {
                let (dev, ino) = file.split_once('_')?;
                coarse.insert((dev.parse().ok()?, ino.parse().ok()?));
                continue;
            }
            let v: Vec<&str> = name.split('_').collect();
            let [dev, ino, size, ctime, hash] = v.as_slice() else { return None };
            if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return None;
            }
            let entry = Entry { size: size.parse().ok()?, ctime: Stamp::parse(ctime)?, sha256: hash.to_string() };
            match files.entry((dev.parse().ok()?, ino.parse().ok()?)) {
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(Some(entry));
                }
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    e.insert(None);
                }
            }
        }
        Some(Record { t0: t0?, files, coarse })
    }

    /// The record the probe listed in `state_dir`, if it is whole and untouched since it was
    /// written: its folder a folder (not a link) with mode 0700 and the state folder's owner,
    /// and its ctime that of the `T_` entry made last (an entry added, removed or renamed
    /// since, or a `chmod`, would have moved it: so would a folder put in its place).
    /// Not one older than [`MAX_AGE`] at `now` (nor one that far in the future).
    pub fn read(observed: &Observed, state_dir: &str, now: Stamp) -> Option<Record> {
        let record = Record::parse(&observed.record)?;
        if (now.secs - record.t0.secs).abs() > MAX_AGE {
            return None;
        }
        let t = observed.record.iter().find(|n| n.starts_with("T_"))?;
        let state = observed.paths.get(state_dir)?;
        let dir = observed.paths.get(&format!("{state_dir}/hashes"))?;
        let last = observed.paths.get(&format!("{state_dir}/hashes/{t}"))?;
        let intact = dir.kind == Kind::Dir && dir.mode == 0o700 && dir.uid == state.uid && state.kind == Kind::Dir;
        (intact && last.kind == Kind::File && last.stat.ctime == dir.stat.ctime).then_some(record)
    }

    /// The hash the record vouches for, for a file whose `stat` the probe saw now.
    pub fn vouches(&self, now: &Stat) -> Option<&str> {
        let e = self.files.get(&(now.dev, now.ino))?.as_ref()?;
        let unchanged = e.size == now.size && e.ctime == now.ctime;
        (unchanged && e.ctime.nanos != 0 && e.ctime < self.t0).then_some(e.sha256.as_str())
    }
}

/// Gives every file destination that is a regular file the probe did not hash the hash the
/// host's record vouches for (marked `vouched`). Returns the destinations still without a
/// hash (the client asks the host to hash those), in order, once each.
pub fn vouch(desired: &Desired, state_dir: &str, observed: &mut Observed, now: Stamp) -> Vec<String> {
    let record = Record::read(observed, state_dir, now);
    let mut unknown = Vec::new();
    for f in &desired.files {
        let Some(state) = observed.paths.get(&f.dest) else { continue };
        if state.kind != Kind::File || state.sha256.is_some() {
            continue;
        }
        let hash = match &record {
            Some(r) if eligible(desired, observed, &f.dest, state) => r.vouches(&state.stat).map(str::to_string),
            _ => None,
        };
        let state = observed.paths.get_mut(&f.dest).expect("seen above");
        match hash {
            Some(hash) => {
                state.sha256 = Some(hash);
                state.vouched = true;
            }
            None if !unknown.contains(&f.dest) => unknown.push(f.dest.clone()),
            None => {}
        }
    }
    unknown
}

/// Whether the host's record should be written again after a run that changed nothing: the
/// record is missing, not whole or touched, or a file's hash was read now that a new record
/// could vouch for next time (not one on a filesystem without nanosecond timestamps, not one
/// whose ctime has none: those are read every time, a new record would not change that).
/// A record that lists a file it may no longer vouch for (`eligible`: its owner, mode or
/// folder changed since) is written again too, without it (else the client would ask for its
/// hash in a `hash` frame, one more round trip, on every run).
pub fn out_of_date(desired: &Desired, state_dir: &str, observed: &Observed, now: Stamp) -> bool {
    let record = Record::read(observed, state_dir, now);
    desired.files.iter().any(|f| match observed.paths.get(&f.dest) {
        Some(s) if s.kind == Kind::File => {
            let ok = eligible(desired, observed, &f.dest, s);
            match &record {
                None => ok || !observed.record.is_empty(),
                Some(r) if !ok => r.files.contains_key(&(s.stat.dev, s.stat.ino)),
                Some(r) => !s.vouched && s.stat.ctime.nanos != 0 && !r.coarse.contains(&(s.stat.dev, s.stat.ino)),
            }
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The controller's clock in these tests: a little after the records' T0 (100.5).
    const NOW: Stamp = Stamp { secs: 200, nanos: 0 };

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn stamp(text: &str) -> Stamp {
        Stamp::parse(text).unwrap()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The file the whole record vouches for: device 7, inode 42, 5 bytes.
    fn now() -> Stat {
        Stat { dev: 7, ino: 42, size: 5, ctime: stamp("100.5000000000") }
    }

    fn whole() -> Vec<String> {
        vec![format!("7_42_5_100.5000000000_{HASH}"), "T_100.5000000010".into()]
    }

    /// The cases of the rule, each one condition away from a vouched file.
    #[test]
    fn the_record_vouches_only_for_an_unchanged_file_last_changed_before_t0() {
        let r = Record::parse(&whole()).unwrap();
        assert_eq!(r.vouches(&now()), Some(HASH));
        let cases: [(&str, Stat); 6] = [
            ("another inode (renamed over)", Stat { ino: 43, ..now() }),
            ("another device", Stat { dev: 8, ..now() }),
            ("another size", Stat { size: 6, ..now() }),
            ("changed since (ctime moved)", Stat { ctime: stamp("100.6"), ..now() }),
            ("a ctime that went back (clock set back)", Stat { ctime: stamp("100.4"), ..now() }),
            ("one nanosecond later", Stat { ctime: stamp("100.5000000010"), ..now() }),
        ];
        for (what, stat) in cases {
            assert_eq!(r.vouches(&stat), None, "{what}");
        }
        // Recorded at T0's tick or after it (racily clean), or with whole seconds only.
        for (entry, t) in [
            ("7_42_5_100.5000000000_", "T_100.5000000000"),
            ("7_42_5_100.5000000000_", "T_100.4"),
            ("7_42_5_100.0000000000_", "T_101.0"),
        ] {
            let r = Record::parse(&[format!("{entry}{HASH}"), t.to_string()]).unwrap();
            let ctime = stamp(entry.split('_').nth(3).unwrap());
            assert_eq!(r.vouches(&Stat { ctime, ..now() }), None, "{entry} {t}");
        }
    }

    /// A record cut short (no `T_`), one with two times, a name `record_hashes` does not
    /// make: nothing is vouched for. Two entries for one file: neither.
    #[test]
    fn a_record_that_is_not_whole_vouches_for_nothing() {
        let entry = format!("7_42_5_100.5000000000_{HASH}");
        for bad in [
            names(&[&entry]),
            names(&[&entry, "T_100.6", "T_100.7"]),
            names(&[&entry, "T_100.6", "7_42_5_100.5_nothex"]),
            names(&[&entry, "T_100.6", "7_42_5_100.5"]),
            names(&[&entry, "T_100.6", "x_7_42_5_100.5_x"]),
            names(&[&entry, "T_soon"]),
        ] {
            assert!(Record::parse(&bad).is_none(), "{bad:?}");
        }
        let twice = names(&[&entry, &format!("7_42_5_100.4000000000_{HASH}"), "T_100.6"]);
        assert_eq!(Record::parse(&twice).unwrap().vouches(&now()), None);
        assert!(Record::parse(&[]).is_none());
    }

    #[test]
    fn stamps_are_read_to_the_nanosecond() {
        assert_eq!(stamp("1796071838.1397685000"), Stamp { secs: 1796071838, nanos: 139768500 });
        assert_eq!(stamp("5.5"), Stamp { secs: 5, nanos: 500000000 });
        assert!(stamp("5.000000001") > stamp("5.0"));
        for bad in ["5", ".5", "5.", "5.x", "x.5", "5.5.5"] {
            assert_eq!(Stamp::parse(bad), None, "{bad}");
        }
    }

    /// An observed host: the state folder /s (uid 0), its record folder and `T_` entry as
    /// `record_hashes` leaves them, the record's `names`, and file /f (device 7, inode 42).
    fn host(names: &[&str], f: Stat) -> (Desired, Observed) {
        use super::super::desired::{FileSpec, Meta, Origin};
        use super::super::probe::PathState;
        let dir = |mode, uid, ctime: &str| PathState {
            kind: Kind::Dir,
            mode,
            uid,
            stat: Stat { ctime: stamp(ctime), ..Stat::default() },
            ..PathState::default()
        };
        let mut o = Observed { record: names.iter().map(|s| s.to_string()).collect(), ..Observed::default() };
        o.paths.insert("/s".into(), dir(0o700, 0, "1.0"));
        o.paths.insert("/s/hashes".into(), dir(0o700, 0, "200.5"));
        let t = PathState {
            kind: Kind::File,
            stat: Stat { ctime: stamp("200.5"), ..Stat::default() },
            ..Default::default()
        };
        o.paths.insert("/s/hashes/T_100.5000000010".into(), t);
        o.paths.insert("/f".into(), PathState { kind: Kind::File, mode: 0o644, stat: f, ..PathState::default() });
        let content = std::sync::Arc::new(b"test\n".to_vec());
        let file = FileSpec {
            origin: Origin { role: "r".into(), line: 1 },
            dest: "/f".into(),
            sha256: HASH.into(),
            content,
            meta: Meta::default(),
            validate: None,
            sensitive: false,
            notify: vec![],
            apt_source: false,
        };
        (Desired { files: vec![file], ..Desired::default() }, o)
    }

    /// Issue #20 item 7: the record vouches only for files no one but root can write (owned
    /// by root, no group/other write bit, in folders only root can write: a store through an
    /// already-dirty shared mmap page changes content without moving ctime), and only for
    /// [`MAX_AGE`] after it was written (or before: a host clock far ahead). A record that lists a
    /// file it may no longer vouch for is written again; one too old, too.
    #[test]
    fn the_record_vouches_only_for_root_only_files_and_only_for_a_day() {
        let entry = format!("7_42_5_100.5000000000_{HASH}");
        let names = [entry.as_str(), "T_100.5000000010"];
        type Change = fn(&mut Observed);
        let not_root_only: [(&str, Change); 5] = [
            ("owned by another user", |o| o.paths.get_mut("/f").unwrap().uid = 1000),
            ("group-writable", |o| o.paths.get_mut("/f").unwrap().mode = 0o664),
            ("other-writable", |o| o.paths.get_mut("/f").unwrap().mode = 0o646),
            ("in a folder others can write", |o| {
                let dir = PathState { kind: Kind::Dir, mode: 0o777, ..PathState::default() };
                o.paths.insert("/".into(), dir);
            }),
            ("in a folder another user owns", |o| {
                let dir = PathState { kind: Kind::Dir, mode: 0o755, uid: 33, ..PathState::default() };
                o.paths.insert("/".into(), dir);
            }),
        ];
        for (what, change) in not_root_only {
            let (d, mut o) = host(&names, now());
            change(&mut o);
            assert_eq!(vouch(&d, "/s", &mut o, NOW), ["/f"], "{what}");
            assert!(!o.path("/f").vouched, "{what}");
            // Listed in the record: written again (without it); else not.
            assert!(out_of_date(&d, "/s", &o, NOW), "{what}");
            let (d, mut o) = host(&["T_100.5000000010"], now());
            change(&mut o);
            assert_eq!(vouch(&d, "/s", &mut o, NOW), ["/f"], "{what}");
            o.paths.get_mut("/f").unwrap().sha256 = Some(HASH.into());
            assert!(!out_of_date(&d, "/s", &o, NOW), "{what}: nothing a new record could vouch for");
        }
        // Root's 0644 file, under root's folders: vouched for, up to a day after T0.
        let day = |secs: i64| Stamp { secs: 100 + secs, nanos: 500000010 };
        for (at, ok) in [(day(0), true), (day(MAX_AGE), true), (day(MAX_AGE + 1), false), (day(-MAX_AGE - 1), false)] {
            let (d, mut o) = host(&names, now());
            let asked = vouch(&d, "/s", &mut o, at);
            assert_eq!((asked.is_empty(), o.path("/f").vouched), (ok, ok), "{at:?}");
            o.paths.get_mut("/f").unwrap().sha256 = Some(HASH.into());
            assert_eq!(out_of_date(&d, "/s", &o, at), !ok, "{at:?}: an old record is written again");
        }
    }

    /// The record is used only from its untouched folder (mode, owner, ctime of `T_`); what
    /// it does not vouch for is asked for; it is written again only where that would help.
    #[test]
    fn vouching_and_writing_the_record_again() {
        let entry = format!("7_42_5_100.5000000000_{HASH}");
        let names = [entry.as_str(), "T_100.5000000010"];
        let (d, mut o) = host(&names, now());
        assert!(vouch(&d, "/s", &mut o, NOW).is_empty());
        assert_eq!((o.path("/f").sha256.as_deref(), o.path("/f").vouched), (Some(HASH), true));
        assert!(!out_of_date(&d, "/s", &o, NOW));

        // Touched: a folder of another mode, another owner, a ctime that moved, not a folder.
        type Tamper = fn(&mut Observed);
        let tampered: [(&str, Tamper); 4] = [
            ("mode 0755", |o| o.paths.get_mut("/s/hashes").unwrap().mode = 0o755),
            ("another owner", |o| o.paths.get_mut("/s/hashes").unwrap().uid = 1000),
            ("an entry planted since", |o| o.paths.get_mut("/s/hashes").unwrap().stat.ctime = stamp("300.0")),
            ("a link", |o| o.paths.get_mut("/s/hashes").unwrap().kind = Kind::Link),
        ];
        for (what, tamper) in tampered {
            let (d, mut o) = host(&names, now());
            tamper(&mut o);
            assert_eq!(vouch(&d, "/s", &mut o, NOW), ["/f"], "{what}");
            assert!(out_of_date(&d, "/s", &o, NOW), "{what}");
        }

        // Changed since: asked for, then (read now, on a filesystem with nanoseconds) written again.
        let changed = Stat { ctime: stamp("150.25"), ..now() };
        let (d, mut o) = host(&names, changed);
        assert_eq!(vouch(&d, "/s", &mut o, NOW), ["/f"]);
        o.paths.get_mut("/f").unwrap().sha256 = Some(HASH.into());
        assert!(out_of_date(&d, "/s", &o, NOW));
        // On a filesystem without nanosecond timestamps (`N_`), or with whole seconds: read
        // every time, and no record would change that.
        let coarse = ["N_7_42", "T_100.5000000010"];
        let (d, mut o) = host(&coarse, changed);
        assert_eq!(vouch(&d, "/s", &mut o, NOW), ["/f"]);
        o.paths.get_mut("/f").unwrap().sha256 = Some(HASH.into());
        assert!(!out_of_date(&d, "/s", &o, NOW));
        let (d, mut o) = host(&names, Stat { ctime: stamp("150.0"), ..now() });
        o.paths.get_mut("/f").unwrap().sha256 = Some(HASH.into());
        assert!(!out_of_date(&d, "/s", &o, NOW));
        // No record at all: written.
        let (d, mut o) = host(&[], now());
        assert_eq!(vouch(&d, "/s", &mut o, NOW), ["/f"]);
        assert!(out_of_date(&d, "/s", &o, NOW));
    }
}
