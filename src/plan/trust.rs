//! Which folders converge may act in as root: the rule of issue #20 ("root never follows,
//! creates, deletes, chowns or chmods a path inside a folder that a user other than root can
//! write, unless through a descriptor it opened with no-follow semantics, or by dropping to
//! that user"), judged from the probe's records of every ancestor of every managed path and
//! of the state folder (`probe::script` lists them in its one `find`: no extra process, no
//! extra round trip).
//!
//! A folder is *closed* when only trusted users can change what is in it: it is owned by root
//! or by the session's login user (the state folder's owner) and has no group or other write
//! bit, and the roles do not make it otherwise in this run (a `[[directory]]` with another
//! `owner`, or a `mode` with such a bit). A missing folder is closed unless the roles make it
//! open: root creates it. A path is reached safely when every folder above it is closed, or
//! is a trusted user's sticky folder (`/tmp`: others cannot rename or remove what they do not
//! own there) whose next folder on the way is a trusted user's. A symlink, a file or a special
//! file on the way is never passed (what it leads to was not checked).
//!
//! Where a managed path lives ([`place`]):
//! - [`Place::Trusted`]: its folder is closed and reached safely: acted on by path, as ever.
//! - [`Place::Guarded`]: its folder DIR is open, but DIR's own folder is closed and reached
//!   safely, and DIR is on the same filesystem (not a mount point: the rename must not become
//!   a copy). A file there is staged in a root-only 0700 folder beside DIR (in its closed
//!   parent), given its content, owner and mode there, and renamed into DIR (`mv -fT`:
//!   rename(2) never follows its last component); an owner/mode fix is such a write of the
//!   content it already has. Folders, links and removals there are refused.
//! - [`Place::Refused`]: anything else (an open folder further up, a mount point, a symlink
//!   on the way): the host fails before anything is written, naming the folder.

use super::desired::Desired;
use super::probe::{Kind, Observed, PathState};

/// Where a managed path lives, for the rule above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Trusted,
    /// Its folder is open (why: the refusal a folder, a link or a removal there gets); its
    /// folder's folder is closed: files are staged there.
    Guarded(Refusal),
    Refused(Refusal),
}

/// Why a path is refused: the folder at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub folder: String,
    pub why: String,
}

impl Refusal {
    fn new(folder: &str, why: String) -> Refusal {
        Refusal { folder: folder.to_string(), why }
    }
}

/// The folders above `path`, outermost first: `/`, `/a`, `/a/b` for `/a/b/c`.
pub fn ancestors(path: &str) -> Vec<String> {
    let mut out = vec!["/".to_string()];
    let trimmed = path.trim_end_matches('/');
    let mut at = 0;
    while let Some(i) = trimmed[at + 1..].find('/') {
        at += i + 1;
        out.push(trimmed[..at].to_string());
    }
    out
}

/// The users whose folders converge trusts: root and the login user (the state folder's
/// owner: `session.sh` refuses a state folder that is not the session user's).
pub fn trusted_uids(observed: &Observed) -> Vec<u32> {
    let mut v = vec![0];
    v.extend(observed.login_uid.filter(|u| *u != 0));
    v
}

/// What one folder is, from the probe's record and the roles.
struct Folder<'a> {
    path: &'a str,
    state: PathState,
    /// The roles make it open in this run (another owner, a group/other write bit).
    made_open: bool,
}

impl Folder<'_> {
    fn new<'a>(desired: &Desired, observed: &Observed, path: &'a str) -> Folder<'a> {
        let made_open = desired.dirs.iter().any(|d| {
            d.path.trim_end_matches('/') == path
                && (d.meta.owner.as_deref().is_some_and(|o| o != "root") || d.meta.mode.is_some_and(|m| m & 0o022 != 0))
        });
        Folder { path, state: observed.path(path), made_open }
    }

    fn trusted_owner(&self, trusted: &[u32]) -> bool {
        trusted.contains(&self.state.uid)
    }

    /// Only trusted users can change what is in it.
    fn closed(&self, trusted: &[u32]) -> Result<(), Refusal> {
        let open = match self.state.kind {
            Kind::Missing => None,
            Kind::Dir if !self.trusted_owner(trusted) => Some(format!("is owned by uid {}", self.state.uid)),
            Kind::Dir if self.state.mode & 0o022 != 0 => Some(format!("has mode {:04o}", self.state.mode)),
            Kind::Dir => None,
            Kind::Link => return Err(Refusal::new(self.path, "is a symlink (what it leads to is not checked)".into())),
            _ => return Err(Refusal::new(self.path, "is not a folder".into())),
        };
        match (open, self.made_open) {
            (Some(why), _) => Err(Refusal::new(self.path, format!("{why}: a user other than root can write in it"))),
            (None, true) => Err(Refusal::new(
                self.path,
                "is made writable by a user other than root by the roles (its owner or mode)".into(),
            )),
            (None, false) => Ok(()),
        }
    }

    /// `next` (the folder or path below it) is reached safely through it: it is closed, or a
    /// trusted user's sticky folder and `next` is a trusted user's (others cannot rename it).
    fn passes_to(&self, next: &PathState, trusted: &[u32]) -> Result<(), Refusal> {
        let err = match self.closed(trusted) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let sticky = self.state.kind == Kind::Dir && self.state.mode & 0o1000 != 0;
        let next_ours = matches!(next.kind, Kind::Dir | Kind::File) && trusted.contains(&next.uid);
        if sticky && self.trusted_owner(trusted) && !self.made_open && next_ours { Ok(()) } else { Err(err) }
    }
}

/// Where `path` lives (see the module's rule).
pub fn place(desired: &Desired, observed: &Observed, path: &str) -> Place {
    let trusted = trusted_uids(observed);
    let chain = ancestors(path);
    let folders: Vec<Folder> = chain.iter().map(|p| Folder::new(desired, observed, p)).collect();
    let k = folders.len() - 1;
    // Every folder above the parent's parent passes to the next.
    for i in 0..k.saturating_sub(1) {
        if let Err(e) = folders[i].passes_to(&folders[i + 1].state, &trusted) {
            return Place::Refused(e);
        }
    }
    let dir = &folders[k];
    let reached = |i: usize| if i == 0 { Ok(()) } else { folders[i - 1].passes_to(&folders[i].state, &trusted) };
    let dir_err = match dir.closed(&trusted) {
        Ok(()) => match reached(k) {
            Ok(()) => return Place::Trusted,
            Err(e) => return Place::Refused(e),
        },
        Err(e) => e,
    };
    if k == 0 || !matches!(dir.state.kind, Kind::Dir | Kind::Missing) {
        return Place::Refused(dir_err);
    }
    let up = &folders[k - 1];
    if let Err(e) = up.closed(&trusted).and_then(|_| reached(k - 1)) {
        return Place::Refused(e);
    }
    if dir.state.kind == Kind::Dir && up.state.kind == Kind::Dir && dir.state.stat.dev != up.state.stat.dev {
        return Place::Refused(Refusal::new(
            dir.path,
            format!("{}, and is a mount point (a rename into it would be a copy)", dir_err.why),
        ));
    }
    Place::Guarded(dir_err)
}

/// The state folder and every folder above it are closed (the sticky rule applies on the
/// way), so no one but root or the login user can swap it after it was checked.
pub fn state_folder(observed: &Observed, state_dir: &str) -> Result<(), Refusal> {
    if !state_dir.starts_with('/') {
        return Err(Refusal::new(state_dir, "is not an absolute path (the folders above it are unknown)".into()));
    }
    let trusted = trusted_uids(observed);
    let none = Desired::default();
    let mut chain = ancestors(state_dir);
    chain.push(state_dir.trim_end_matches('/').to_string());
    for pair in chain.windows(2) {
        let folder = Folder::new(&none, observed, &pair[0]);
        folder.passes_to(&observed.path(&pair[1]), &trusted)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::desired::{DirSpec, Meta, Origin};
    use super::super::probe::Stat;
    use super::*;

    fn dir(uid: u32, mode: u32, dev: u64) -> PathState {
        PathState { kind: Kind::Dir, uid, mode, stat: Stat { dev, ..Stat::default() }, ..PathState::default() }
    }

    /// `/` and `/srv` root 0755, `/tmp` sticky 1777, `/srv/app` root, `/srv/app/shared`
    /// www-data (33) 0750, `/srv/app/shared/deep` www-data.
    fn host() -> Observed {
        let mut o = Observed { login_uid: Some(0), ..Observed::default() };
        for (p, s) in [
            ("/", dir(0, 0o755, 1)),
            ("/srv", dir(0, 0o755, 1)),
            ("/tmp", dir(0, 0o1777, 1)),
            ("/tmp/ours", dir(0, 0o700, 1)),
            ("/tmp/theirs", dir(65534, 0o755, 1)),
            ("/srv/app", dir(0, 0o755, 1)),
            ("/srv/app/shared", dir(33, 0o750, 1)),
            ("/srv/app/shared/deep", dir(33, 0o755, 1)),
            ("/srv/app/mnt", dir(33, 0o755, 2)),
            ("/srv/app/g", dir(0, 0o775, 1)),
            ("/srv/link", PathState { kind: Kind::Link, ..PathState::default() }),
        ] {
            o.paths.insert(p.into(), s);
        }
        o
    }

    #[test]
    fn places_follow_the_rule() {
        let (d, o) = (Desired::default(), host());
        let refused = |p: &str| match place(&d, &o, p) {
            Place::Refused(r) => r.folder,
            other => panic!("{p}: {other:?}"),
        };
        assert_eq!(ancestors("/a/b/c"), ["/", "/a", "/a/b"]);
        assert_eq!(ancestors("/c"), ["/"]);
        for p in ["/etc/x", "/srv/app/x", "/srv/app/new/x", "/tmp/ours/x"] {
            assert_eq!(place(&d, &o, p), Place::Trusted, "{p}");
        }
        for p in ["/srv/app/shared/x", "/srv/app/g/x", "/tmp/x"] {
            assert!(matches!(place(&d, &o, p), Place::Guarded(_)), "{p}");
        }
        assert_eq!(refused("/srv/app/shared/deep/x"), "/srv/app/shared");
        assert_eq!(refused("/srv/app/shared/new/x"), "/srv/app/shared");
        assert_eq!(refused("/srv/app/mnt/x"), "/srv/app/mnt");
        assert_eq!(refused("/srv/link/x"), "/srv/link");
        assert_eq!(refused("/tmp/theirs/x/y"), "/tmp");
        // A folder to make in a sticky folder: someone may make it first.
        assert_eq!(refused("/tmp/x/y"), "/tmp");
        // The login user (33 here) is trusted like root.
        let mut o2 = host();
        o2.login_uid = Some(33);
        assert_eq!(place(&d, &o2, "/srv/app/shared/deep/x"), Place::Trusted);
        // A folder the roles give to another user, or make group-writable, is open already.
        let o3 = host();
        let mk =
            |path: &str, meta: Meta| DirSpec { origin: Origin::default(), path: path.into(), meta, notify: vec![] };
        let d = Desired {
            dirs: vec![
                mk("/srv/app/new", Meta { owner: Some("www-data".into()), ..Meta::default() }),
                mk("/srv/app", Meta { mode: Some(0o775), ..Meta::default() }),
            ],
            ..Desired::default()
        };
        assert_eq!(place(&d, &o3, "/srv/x"), Place::Trusted);
        assert!(matches!(place(&d, &o3, "/srv/app/x"), Place::Guarded(r) if r.why.contains("by the roles")));
        assert!(matches!(place(&d, &o3, "/srv/app/new/x"), Place::Refused(r) if r.folder == "/srv/app"));
    }

    #[test]
    fn the_state_folder_needs_closed_folders_above() {
        let mut o = host();
        o.paths.insert("/srv/app/shared/state".into(), dir(0, 0o700, 1));
        o.paths.insert("/srv/app/state".into(), dir(0, 0o700, 1));
        o.paths.insert("/tmp/ours/state".into(), dir(0, 0o700, 1));
        assert_eq!(state_folder(&o, "/srv/app/state"), Ok(()));
        assert_eq!(state_folder(&o, "/tmp/ours/state"), Ok(()));
        let e = state_folder(&o, "/srv/app/shared/state").unwrap_err();
        assert_eq!(e.folder, "/srv/app/shared");
        assert!(e.why.contains("owned by uid 33"), "{e:?}");
        o.paths.insert("/srv/app/g/state".into(), dir(0, 0o700, 1));
        assert!(state_folder(&o, "/srv/app/g/state").unwrap_err().why.contains("mode 0775"));
        assert!(state_folder(&o, "state").unwrap_err().why.contains("not an absolute path"));
    }
}
