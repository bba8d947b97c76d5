//! Build script: `microctl --version` names the git revision it was built from
//! (`0.1.0 (1a2b3c4)`: HEAD when it was built; uncommitted changes are not marked). Outside a git checkout of
//! this crate (a tarball, `cargo install` from a registry) it is just the package version.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    // Only this crate's own checkout: a tarball unpacked inside another repository must not
    // borrow that repository's revision.
    let ours = git(&["rev-parse", "--show-toplevel"])
        .is_some_and(|top| Path::new(&top).canonicalize().ok() == Path::new(&manifest_dir).canonicalize().ok());
    let rev = ours.then(|| git(&["rev-parse", "--short", "HEAD"])).flatten();
    match rev {
        Some(rev) => {
            println!("cargo:rustc-env=MICROCTL_VERSION={version} ({rev})");
            if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
                println!("cargo:rerun-if-changed={head}");
            }
            if let Some(head_ref) =
                git(&["symbolic-ref", "-q", "HEAD"]).and_then(|r| git(&["rev-parse", "--git-path", &r]))
            {
                println!("cargo:rerun-if-changed={head_ref}");
            }
        }
        None => println!("cargo:rustc-env=MICROCTL_VERSION={version}"),
    }
    println!("cargo:rerun-if-changed=build.rs");
}
