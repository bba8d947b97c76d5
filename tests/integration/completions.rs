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

/// `man --dir` writes one page per subcommand (clap_mangen renders each) plus microctl(1);
/// every page has ENVIRONMENT (every MICROCTL_* variable), EXIT STATUS, FILES and EXAMPLES;
/// the top page's SEE ALSO names only pages that were written; groff renders each cleanly.
#[test]
fn a_man_page_per_subcommand_and_no_page_named_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _) = microctl(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    let mut pages: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    pages.sort();
    for sub in ["converge", "deploy", "exec", "check", "inventory", "ssh", "ssh-config", "secrets", "lab", "man"] {
        assert!(pages.contains(&format!("microctl-{sub}.1")), "{sub}: {pages:?}");
    }
    for page in &pages {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        for section in
            [".SH \"ENVIRONMENT\"", ".SH \"EXIT STATUS\"", ".SH \"FILES\"", ".SH EXAMPLES", ".SH \"SEE ALSO\""]
        {
            assert!(text.contains(section), "{page}: no {section}");
        }
        for var in [
            "MICROCTL_INVENTORY",
            "MICROCTL_ROLES",
            "MICROCTL_KEY_PASSPHRASE",
            "MICROCTL_SECRETS_IDENTITY",
            "MICROCTL_HEARTBEAT_SECS",
            "MICROCTL_LAB_DIR",
        ] {
            assert!(text.contains(var), "{page}: no {var}");
        }
        // groff (Debian's groff-base, which man-db needs) renders it without a warning.
        let out = Command::new("groff").args(["-man", "-Tutf8", "-ww", "-z"]).arg(dir.path().join(page)).output();
        let out = out.expect("groff is missing: install the Debian package groff-base");
        assert!(out.status.success() && out.stderr.is_empty(), "{page}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let top = std::fs::read_to_string(dir.path().join("microctl.1")).unwrap();
    let see_also = top.split(".SH \"SEE ALSO\"").nth(1).unwrap();
    for named in see_also.split("\\fBmicroctl\\-").skip(1) {
        let name = named.split("\\fR").next().unwrap().replace("\\-", "-");
        assert!(
            pages.contains(&format!("microctl-{name}.1")),
            "SEE ALSO names microctl-{name}(1), which was not written"
        );
    }
    let (code, exec) = microctl(&["man", "exec"]);
    assert_eq!(code, 0);
    assert!(exec.contains(".TH microctl-exec 1"), "{exec}");
    assert_eq!(microctl(&["man", "nosuch"]).0, 2);
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
