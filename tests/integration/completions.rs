//! Completions, the man page and `--version`, from the real binary: bash loads the completion
//! script and completes subcommands and the inventory's names, global options show and are
//! taken only where they apply, the man page is roff naming every subcommand, the version names
//! the git revision.

use std::process::Command;

fn microctl(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_microctl")).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs bash with the script of `microctl completions bash` loaded and the binary on PATH as
/// `microctl`, in `dir`, completes `line` (the last word is the one being completed) and returns
/// the first line (the registration) and the words offered.
fn bash_completes(dir: &std::path::Path, line: &str) -> (String, Vec<String>) {
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_microctl")).parent().unwrap();
    let words: Vec<&str> = line.split(' ').collect();
    let script = format!(
        "cd {dir} && PATH={bin_dir}:$PATH && source <(microctl completions bash) && complete -p microctl && \
         COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE={line:?}; COMP_POINT={point}; \
         _clap_complete_microctl microctl {last:?} {prev:?}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        dir = dir.display(),
        bin_dir = bin_dir.display(),
        words = words.iter().map(|w| format!("{w:?}")).collect::<Vec<_>>().join(" "),
        cword = words.len() - 1,
        point = line.len(),
        last = words[words.len() - 1],
        prev = words[words.len() - 2],
    );
    let out = Command::new("bash").arg("-c").arg(&script).output().expect("bash (Debian package bash)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines().map(str::to_string);
    let registration = lines.next().unwrap_or_default();
    (registration, lines.filter(|l| !l.is_empty()).collect())
}

#[test]
fn completions_load_in_their_shells() {
    let dir = tempfile::tempdir().unwrap();
    // bash: the script registers the function; completing `microctl ss` offers both.
    let (registration, offered) = bash_completes(dir.path(), "microctl ss");
    assert!(registration.ends_with(" -F _clap_complete_microctl microctl"), "{registration}");
    assert_eq!(offered, ["ssh", "ssh-config"]);
    let (code, zsh) = microctl(&["completions", "zsh"]);
    assert_eq!(code, 0);
    assert!(zsh.starts_with("#compdef microctl"), "{zsh}");
    let (code, fish) = microctl(&["completions", "fish"]);
    assert_eq!(code, 0);
    assert!(fish.contains("COMPLETE=fish microctl --"), "{fish}");
    let (code, _) = microctl(&["completions", "tcsh"]);
    assert_eq!(code, 2);
}

#[test]
fn completions_offer_host_group_and_deploy_names_from_the_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = "[hosts.web1]\naddress = \"127.0.0.1\"\ngroups = [\"web\"]\n\
                     [hosts.web2]\naddress = \"127.0.0.1\"\ngroups = [\"web\"]\n\
                     [hosts.db]\naddress = \"127.0.0.1\"\n\
                     [deploy.blog]\nhosts = \"web\"\nsource = \".\"\n[deploy.shop]\nhosts = \"db\"\nsource = \".\"\n";
    std::fs::write(dir.path().join("inventory.toml"), inventory).unwrap();
    let names = |line: &str| bash_completes(dir.path(), line).1;
    assert_eq!(names("microctl converge w"), ["web", "web1", "web2"]);
    assert_eq!(names("microctl exec -l d"), ["db"]);
    assert_eq!(names("microctl ssh w"), ["web1", "web2"]);
    assert_eq!(names("microctl deploy s"), ["shop"]);
    assert_eq!(names("microctl deploy blog w"), ["web", "web1", "web2"]);
    // `-i FILE` on the line being completed names the inventory.
    let other = tempfile::tempdir().unwrap();
    let named = dir.path().join("inventory.toml");
    let line = format!("microctl -i {} converge d", named.display());
    assert_eq!(bash_completes(other.path(), &line).1, ["db"]);
    // No inventory: nothing offered, no error printed into the line.
    assert!(bash_completes(other.path(), "microctl converge w").1.is_empty());
}

#[test]
fn global_options_show_only_on_the_subcommands_they_apply_to() {
    for sub in ["man", "completions"] {
        let (code, help) = microctl(&[sub, "--help"]);
        assert_eq!(code, 0);
        for option in ["--accept-new", "--inventory", "--roles-dir", "--json", "--quiet", "--verbose"] {
            assert!(!help.contains(option), "{sub} --help shows {option}:\n{help}");
        }
        let (_, page) = microctl(&["man", sub]);
        assert!(!page.contains("accept\\-new"), "microctl-{sub}(1) shows --accept-new");
    }
    let (_, converge) = microctl(&["converge", "--help"]);
    for option in ["--accept-new", "--inventory", "--roles-dir", "--json", "--quiet", "--verbose"] {
        assert!(converge.contains(option), "converge --help lacks {option}");
    }
    // Given where it does not apply, before or after the subcommand: refused, saying where it goes.
    for args in [&["man", "--accept-new"][..], &["--accept-new", "man"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_microctl")).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("`--accept-new` does not apply to `microctl man`"), "{err}");
        assert!(err.contains("applies to: exec, converge, deploy, ssh, lab"), "{err}");
    }
}

#[test]
fn json_before_or_after_the_subcommand_is_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.toml");
    std::fs::write(&inventory, "[hosts.web1]\naddress = \"127.0.0.1\"\n").unwrap();
    let inv = inventory.to_str().unwrap();
    let (code, after) = microctl(&["-i", inv, "inventory", "--json"]);
    assert_eq!(code, 0);
    assert!(after.starts_with('{'), "{after}");
    assert_eq!(microctl(&["--json", "-i", inv, "inventory"]), (0, after.clone()));
    assert_eq!(microctl(&["-i", inv, "inventory", "--json", "-q"]).0, 2, "-q does not apply to inventory");
    // `check` (JSON Lines): the same lines but for the durations.
    let timeless = |(code, text): (i32, String)| {
        let lines: Vec<String> = text
            .lines()
            .map(|l| l.split(',').filter(|f| !f.starts_with("\"duration_ms\"")).collect::<Vec<_>>().join(","))
            .collect();
        (code, lines)
    };
    let (code, check_after) = microctl(&["-i", inv, "check", "--json"]);
    assert_eq!(timeless(microctl(&["-i", inv, "--json", "check"])), timeless((code, check_after.clone())));
    assert!(check_after.lines().last().unwrap_or("").contains("\"summary\""), "{check_after}");
    // Where it does not apply, both placements are refused alike, naming where it goes.
    for args in [&["--json", "ssh", "web1"][..], &["ssh", "web1", "--json"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_microctl")).args(["-i", inv]).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("`--json` does not apply to `microctl ssh`"), "{err}");
        assert!(err.contains("applies to: exec, inventory, converge, check, deploy"), "{err}");
    }
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
