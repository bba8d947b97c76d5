//! Completions, the man page and `--version`, from the real binary: bash loads the completion
//! script, the man page is roff naming every subcommand, the version names the git revision.

use std::process::Command;

use crate::support::sh;

fn microctl(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_microctl")).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn completions_load_in_their_shells() {
    let bin = env!("CARGO_BIN_EXE_microctl");
    // bash: the script defines the function and registers it; completing `microctl ss` offers both.
    let out = sh(&format!(
        "bash -c 'source <({bin} completions bash) && complete -p microctl && \
         COMP_WORDS=(microctl ss); COMP_CWORD=1; COMP_LINE=\"microctl ss\"; COMP_POINT=11; _microctl microctl ss microctl; \
         printf \"%s\\n\" \"${{COMPREPLY[@]}}\"'"
    ));
    assert!(out.lines().next().unwrap().ends_with(" -F _microctl microctl"), "{out}");
    let offered: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(offered, ["ssh", "ssh-config"], "{out}");
    let (code, zsh) = microctl(&["completions", "zsh"]);
    assert_eq!(code, 0);
    assert!(zsh.starts_with("#compdef microctl"), "{zsh}");
    let (code, fish) = microctl(&["completions", "fish"]);
    assert_eq!(code, 0);
    assert!(fish.contains("complete -c microctl -n \"__fish_microctl_needs_command\" -f -a \"ssh-config\""), "{fish}");
    let (code, _) = microctl(&["completions", "tcsh"]);
    assert_eq!(code, 2);
}

#[test]
fn the_man_page_is_roff_with_every_subcommand() {
    let (code, man) = microctl(&["man"]);
    assert_eq!(code, 0);
    assert!(man.starts_with(".ie \\n(.g .ds Aq \\(aq") || man.contains(".TH microctl"), "{man}");
    assert!(man.contains(".TH microctl 1"), "{man}");
    for sub in ["converge", "deploy", "exec", "inventory", "ssh\\-config", "completions", "lab"] {
        assert!(man.contains(sub), "{sub} missing from:\n{man}");
    }
}

#[test]
fn version_names_the_git_revision() {
    let (code, version) = microctl(&["--version"]);
    assert_eq!(code, 0);
    let rev = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let expected = match rev {
        Some(rev) => format!("microctl {} ({rev})\n", env!("CARGO_PKG_VERSION")),
        None => format!("microctl {}\n", env!("CARGO_PKG_VERSION")),
    };
    assert_eq!(version, expected);
}
