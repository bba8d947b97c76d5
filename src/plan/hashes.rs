//! The hash record: what lets a no-op converge skip reading (hashing) the files it manages.
//!
//! After every apply, and after a no-op whose probe had to hash a file, the host writes
//! `$STATE/hashes` (`record_hashes` in src/apply/host.sh): the time T0 at which the record was
//! emptied (before anything was read), then for each managed regular file its device, inode,
//! size and ctime, whether its filesystem keeps nanosecond timestamps (`S` lines), and its
//! `sha256sum`; `end` last. The next probe prints the record (src/plan/probe.sh) and `find`
//! hashes only the files the record cannot vouch for. Here the client decides, for each file
//! the probe did not hash, whether the record vouches for its hash: only when
//!
//! - the record is whole (`T` first, `end` last) and lists the file with a hash,
//! - the file's device, inode, size and ctime are exactly the recorded ones,
//! - its filesystem keeps nanosecond timestamps (`S`) and the recorded ctime has a nonzero
//!   nanosecond part (an ext4 with 128-byte inodes keeps whole seconds),
//! - the recorded ctime is older than T0.
//!
//! Why that is enough: the kernel sets a file's ctime to the current time on every change of
//! its content (write, truncate, mmap write fault), its metadata, or its name (rename, link),
//! and user space cannot set it (`touch -d` sets mtime and atime only). The record read the
//! file after T0; a file last changed before T0 (recorded ctime < T0) and unchanged since
//! (same ctime now) had the recorded content when it was read, and has it now. A file changed
//! after T0 has a ctime at or after T0, never equal to one before it. This is git's rule for
//! a "racily clean" index entry, applied with nanoseconds and one step stricter (git trusts
//! entries older than the index file's own mtime, written after the read; T0 is taken before).
//! Where that cannot hold, the file is hashed: a coarse-timestamp filesystem (vfat, NFS, FUSE:
//! no `S` line), a record cut short, a file the record does not list, or one changed at T0.
//! Left out by design: a clock set back by root, and a file's content changed by root
//! through a block device under a mounted filesystem (both need root, who owns the record).

use std::collections::{HashMap, HashSet};

use super::desired::Desired;
use super::probe::{Kind, Observed, Stamp, Stat};

/// A whole hash record, as the client reads it.
#[derive(Debug, Default)]
pub struct Record {
    t0: Stamp,
    files: HashMap<String, (Stat, Option<String>)>,
    nanosecond_inodes: HashSet<u64>,
}

impl Record {
    /// The record's lines (the probe's `H` lines); `None` unless it is whole and every line
    /// is one `record_hashes` writes.
    pub fn parse(lines: &[String]) -> Option<Record> {
        let (first, rest) = lines.split_first()?;
        let (last, body) = rest.split_last()?;
        if last != "end" {
            return None;
        }
        let mut record = Record { t0: Stamp::parse(first.strip_prefix("T\t")?)?, ..Default::default() };
        let mut hashes = Vec::new();
        for line in body {
            if let Some(f) = line.strip_prefix("F\t") {
                let v: Vec<&str> = f.splitn(5, '\t').collect();
                let [dev, ino, size, ctime, path] = v.as_slice() else { return None };
                let stat = Stat {
                    dev: dev.parse().ok()?,
                    ino: ino.parse().ok()?,
                    size: size.parse().ok()?,
                    ctime: Stamp::parse(ctime)?,
                };
                record.files.insert(path.to_string(), (stat, None));
            } else if let Some(ino) = line.strip_prefix("S\t") {
                record.nanosecond_inodes.insert(ino.parse().ok()?);
            } else {
                let (hash, path) = super::probe::hash_line(line)?;
                hashes.push((hash.to_string(), path));
            }
        }
        for (hash, path) in hashes {
            record.files.get_mut(&path)?.1 = Some(hash);
        }
        Some(record)
    }

    /// The hash the record vouches for at `path`, whose `stat` the probe saw now.
    pub fn vouches(&self, path: &str, now: &Stat) -> Option<&str> {
        let (then, hash) = self.files.get(path)?;
        let unchanged = then == now && self.nanosecond_inodes.contains(&then.ino);
        (unchanged && then.ctime.nanos != 0 && then.ctime < self.t0).then_some(hash.as_deref()).flatten()
    }
}

/// Gives every file destination that is a regular file the probe did not hash the hash the
/// host's record vouches for (marked `vouched`). Returns the destinations still without a
/// hash (the client asks the host to hash those), in order, once each.
pub fn vouch(desired: &Desired, observed: &mut Observed) -> Vec<String> {
    let record = Record::parse(&observed.record);
    let mut unknown = Vec::new();
    for f in &desired.files {
        let Some(state) = observed.paths.get_mut(&f.dest) else { continue };
        if state.kind != Kind::File || state.sha256.is_some() {
            continue;
        }
        match record.as_ref().and_then(|r| r.vouches(&f.dest, &state.stat)) {
            Some(hash) => {
                state.sha256 = Some(hash.to_string());
                state.vouched = true;
            }
            None if !unknown.contains(&f.dest) => unknown.push(f.dest.clone()),
            None => {}
        }
    }
    unknown
}

/// Whether the host's record should be written again after a run that changed nothing:
/// some file destination's hash was read now, not vouched for by the record.
pub fn out_of_date(desired: &Desired, observed: &Observed) -> bool {
    desired.files.iter().any(|f| observed.paths.get(&f.dest).is_some_and(|s| s.kind == Kind::File && !s.vouched))
}
