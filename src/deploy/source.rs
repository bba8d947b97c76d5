//! Packing a local source folder for upload: a git checkout is packed with `git archive` at a
//! ref (committed code only, as Kamal and Capistrano deploy), anything else by walking the
//! folder. The result is one tar stream and a short revision naming the release.

use std::path::Path;
use std::process::Command;

use crate::error::{Error, ErrorKind, Result};
use crate::plan::desired::sha256_hex;

/// A packed release.
pub struct Packed {
    pub tar: Vec<u8>,
    /// Short git commit, or a content hash for a plain folder.
    pub rev: String,
    /// Set when the checkout has uncommitted changes the release leaves out.
    pub warning: Option<String>,
}

/// Folders and files never uploaded from a plain folder.
const SKIP: [&str; 6] = [".git", "venv", ".venv", "__pycache__", "instance", "node_modules"];

pub fn pack(path: &Path, git_ref: Option<&str>) -> Result<Packed> {
    if !path.is_dir() {
        return Err(Error::new(ErrorKind::Usage, format!("deploy source {} is not a folder", path.display()))
            .hint("set `source` in [deploy.NAME] to the app's folder (relative to the inventory) or a git URL"));
    }
    match git(path, &["rev-parse", "--show-prefix"]) {
        Ok(prefix) => pack_git(path, prefix.trim(), git_ref.unwrap_or("HEAD")),
        Err(_) if git_ref.is_some() => {
            Err(Error::usage(format!("--ref needs a git checkout, and {} is not in one", path.display())))
        }
        Err(_) => pack_folder(path),
    }
}

fn pack_git(path: &Path, prefix: &str, git_ref: &str) -> Result<Packed> {
    let commit = git(path, &["rev-parse", "--verify", "--quiet", &format!("{git_ref}^{{commit}}")])
        .map_err(|e| Error::usage(format!("unknown git ref `{git_ref}` in {}", path.display())).caused_by(e))?;
    let rev = commit.trim().chars().take(10).collect::<String>();
    // From the top of the work tree: inside a subfolder, git archive would also filter by it.
    let top = git(path, &["rev-parse", "--show-toplevel"])
        .map_err(|e| Error::new(ErrorKind::Io, "git failed").caused_by(e))?;
    let out = Command::new("git")
        .arg("-C")
        .arg(top.trim())
        .args(["archive", "--format=tar", &format!("{}:{prefix}", commit.trim())])
        .output()
        .map_err(|e| Error::new(ErrorKind::Io, "cannot run git archive").caused_by(e))?;
    if !out.status.success() {
        return Err(Error::new(ErrorKind::Io, format!("git archive of {} failed", path.display()))
            .detail(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    let dirty =
        git_ref == "HEAD" && git(path, &["status", "--porcelain", "--", "."]).is_ok_and(|s| !s.trim().is_empty());
    Ok(Packed {
        tar: out.stdout,
        rev,
        warning: dirty.then(|| format!("{} has uncommitted changes; deploying the last commit", path.display())),
    })
}

fn pack_folder(path: &Path) -> Result<Packed> {
    let mut files = Vec::new();
    collect(path, path, &mut files).map_err(|e| Error::io("cannot read", path, e))?;
    files.sort();
    let mut builder = tar::Builder::new(Vec::new());
    let mut digest_input = Vec::new();
    for rel in &files {
        let full = path.join(rel);
        let data = std::fs::read(&full).map_err(|e| Error::io("cannot read", &full, e))?;
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&full).map_err(|e| Error::io("cannot stat", &full, e))?.permissions(),
        );
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(mode & 0o755 | 0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(&mut header, rel, data.as_slice())
            .map_err(|e| Error::new(ErrorKind::Io, "cannot pack the release").caused_by(e))?;
        digest_input.extend_from_slice(rel.as_bytes());
        digest_input.push(0);
        digest_input.extend_from_slice(sha256_hex(&data).as_bytes());
    }
    let tar = builder.into_inner().map_err(|e| Error::new(ErrorKind::Io, "cannot pack the release").caused_by(e))?;
    Ok(Packed { tar, rev: sha256_hex(&digest_input)[..10].to_string(), warning: None })
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if SKIP.contains(&name.as_str()) || name.ends_with(".pyc") || name.ends_with(".db") {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect(root, &path, out)?;
        } else if kind.is_file() {
            out.push(path.strip_prefix(root).expect("under root").to_string_lossy().into_owned());
        }
    }
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> std::io::Result<String> {
    let out = Command::new("git").arg("-C").arg(dir).args(args).output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_folder_skips_venv_and_hashes_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.py"), "print(1)\n").unwrap();
        std::fs::create_dir_all(dir.path().join("venv/bin")).unwrap();
        std::fs::write(dir.path().join("venv/bin/python"), "x").unwrap();
        std::fs::create_dir_all(dir.path().join("pkg")).unwrap();
        std::fs::write(dir.path().join("pkg/mod.py"), "").unwrap();
        let a = pack(dir.path(), None).unwrap();
        let mut names: Vec<String> = tar::Archive::new(a.tar.as_slice())
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["app.py", "pkg/mod.py"]);
        std::fs::write(dir.path().join("app.py"), "print(2)\n").unwrap();
        assert_ne!(pack(dir.path(), None).unwrap().rev, a.rev);
        assert!(pack(dir.path(), Some("v1")).is_err());
    }
}
