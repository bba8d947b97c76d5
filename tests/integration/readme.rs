//! README and docs/ cannot rot: the "Your own servers in ten minutes" guide is run as written
//! up to the first step that needs real hosts (keys, the fleet folder, the inventory, secrets,
//! `microctl check`), and its inventory must load and render for the releases a cloud offers;
//! every `microctl` command shown in README.md, docs/, roles/README.md and the Jenkinsfile must
//! parse with the real binary; every relative link and `#anchor` in them must resolve.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::Run;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The Markdown files whose links and commands are checked.
fn documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> =
        ["README.md", "roles/README.md", "BENCHMARKS.md"].iter().map(|p| repo().join(p)).collect();
    let mut pages: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    pages.sort();
    docs.extend(pages);
    docs
}

/// A fenced code block: its info string (`sh`, `toml`, or empty) and its text.
struct Block {
    lang: String,
    text: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for line in markdown.lines() {
        match (line.strip_prefix("```"), open.take()) {
            (Some(lang), None) => open = Some(Block { lang: lang.trim().to_string(), text: String::new() }),
            (Some(_), Some(block)) => out.push(block),
            (None, Some(mut block)) => {
                block.text.push_str(line);
                block.text.push('\n');
                open = Some(block);
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "a code block is not closed");
    out
}

/// The text of the `##` section titled `title`, up to the next `##` heading.
fn section<'a>(markdown: &'a str, title: &str) -> &'a str {
    let start = markdown.find(&format!("\n## {title}\n")).unwrap_or_else(|| panic!("no section `## {title}`"));
    let rest = &markdown[start + 1..];
    rest[3..].find("\n## ").map_or(rest, |end| &rest[..end + 3])
}

/// The commands of a shell line, split as sh would at `|`, `;`, `&&`, `||` and redirections
/// (a redirection's target is dropped), quotes removed; `#` starts a comment.
fn commands(line: &str) -> Vec<Vec<String>> {
    let (mut all, mut words, mut word) = (Vec::new(), Vec::new(), None::<String>);
    let mut chars = line.chars().peekable();
    let mut skip_target = false;
    let end_word = |words: &mut Vec<String>, word: &mut Option<String>, skip: &mut bool| {
        if let Some(w) = word.take() {
            if *skip {
                *skip = false;
            } else {
                words.push(w);
            }
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                let w = word.get_or_insert_with(String::new);
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    w.push(q);
                }
            }
            '#' if word.is_none() => break,
            ' ' | '\t' => end_word(&mut words, &mut word, &mut skip_target),
            '|' | ';' | '&' => {
                end_word(&mut words, &mut word, &mut skip_target);
                if !words.is_empty() {
                    all.push(std::mem::take(&mut words));
                }
            }
            '>' | '<' => {
                // `2>`: the digit was the start of the redirection, not a word.
                if word.as_deref().is_some_and(|w| w.chars().all(|d| d.is_ascii_digit())) {
                    word = None;
                }
                end_word(&mut words, &mut word, &mut skip_target);
                while chars.peek() == Some(&'>') {
                    chars.next();
                }
                skip_target = true;
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    end_word(&mut words, &mut word, &mut skip_target);
    if !words.is_empty() {
        all.push(words);
    }
    all
}

#[test]
fn shell_lines_split_like_sh() {
    let w = |s: &[&str]| s.iter().map(ToString::to_string).collect::<Vec<_>>();
    assert_eq!(commands("microctl ssh-config > ~/.ssh/c.conf   # then: ssh"), vec![w(&["microctl", "ssh-config"])]);
    assert_eq!(
        commands("printf %s \"$V\" | microctl secrets set k 2>/dev/null"),
        vec![w(&["printf", "%s", "$V"]), w(&["microctl", "secrets", "set", "k"])]
    );
    assert_eq!(
        commands("microctl exec 'web*,!web3' -- df -h /"),
        vec![w(&["microctl", "exec", "web*,!web3", "--", "df", "-h", "/"])]
    );
    assert_eq!(commands("a && b; c"), vec![w(&["a"]), w(&["b"]), w(&["c"])]);
}

/// Every `microctl` command in the fenced blocks of `markdown` (and in `sh '...'` steps of a
/// Jenkinsfile): its arguments after `microctl`.
fn microctl_commands(markdown: &str, jenkinsfile: bool) -> Vec<Vec<String>> {
    let lines: Vec<String> = if jenkinsfile {
        markdown
            .lines()
            .filter_map(|l| l.trim().strip_prefix("sh '").and_then(|l| l.strip_suffix('\'')).map(str::to_string))
            .collect()
    } else {
        blocks(markdown)
            .into_iter()
            .filter(|b| matches!(b.lang.as_str(), "sh" | "bash" | ""))
            .flat_map(|b| b.text.lines().map(str::to_string).collect::<Vec<_>>())
            .collect()
    };
    lines.iter().flat_map(|l| commands(l)).filter(|c| c[0] == "microctl").map(|c| c[1..].to_vec()).collect()
}

/// `microctl ARGS`, run in `cwd` with HOME `home` and nothing of the caller's environment
/// that microctl reads.
fn microctl(cwd: &Path, home: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_microctl"))
        .args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("MICROCTL_INVENTORY")
        .env_remove("MICROCTL_ROLES")
        .env_remove("MICROCTL_KEY_PASSPHRASE")
        .env_remove("MICROCTL_SECRETS_IDENTITY")
        .env_remove("XDG_CACHE_HOME")
        .stdin(Stdio::null())
        .output()
        .expect("run microctl");
    Run::from(out)
}

/// README's two commands, the lab demo and the test run, stay near the top, as the block
/// they are, and stay true for root on a fresh Debian 12: the scripts exist and use no sudo.
#[test]
fn the_two_commands_stay_near_the_top() {
    let readme = read(&repo().join("README.md"));
    for (command, script) in
        [("bash scripts/lab-demo.sh", "scripts/lab-demo.sh"), ("bash scripts/test.sh", "scripts/test.sh")]
    {
        let at = readme.find(&format!("\n```sh\n{command}\n```\n")).unwrap_or_else(|| {
            panic!("README lacks a ```sh block holding just `{command}`");
        });
        let line = readme[..at].lines().count() + 2;
        assert!(line <= 80, "README shows `{command}` at line {line}: keep it near the top (80 lines)");
        let text = read(&repo().join(script));
        assert!(!text.contains("sudo"), "{script} runs as root on a fresh Debian 12: no sudo");
        assert!(text.contains("id -u"), "{script} says it must run as root");
    }
}

/// Each command shown, with `--help` added before its `--` (or at its end), must parse: a
/// subcommand, an option or a value the binary does not take fails here.
#[test]
fn every_microctl_command_in_the_docs_parses() {
    let home = tempfile::tempdir().unwrap();
    let mut sources: Vec<(PathBuf, bool)> = documents().into_iter().map(|p| (p, false)).collect();
    sources.push((repo().join("files/Jenkinsfile"), true));
    let mut checked = 0;
    for (path, jenkinsfile) in sources {
        for args in microctl_commands(&read(&path), jenkinsfile) {
            let mut with_help: Vec<&str> = args.iter().map(String::as_str).collect();
            let at = with_help.iter().position(|a| *a == "--").unwrap_or(with_help.len());
            with_help.insert(at, "--help");
            let run = microctl(home.path(), home.path(), &with_help);
            assert!(
                run.code == 0 && !run.stdout.is_empty(),
                "{}: `microctl {}` does not parse:\n{}{}",
                path.display(),
                args.join(" "),
                run.stdout,
                run.stderr
            );
            checked += 1;
        }
    }
    // README's install, quickstart, guide, secrets and ssh-config blocks: far more than this.
    assert!(checked >= 30, "only {checked} commands found: is the extraction broken?");
}

/// The guide run as written, steps 1 to 3, in a fresh HOME: the key, the fleet folder made
/// from this checkout, the inventory from the guide's `# inventory.toml` blocks, the secrets
/// (each `secrets set` fed a value on stdin; `ssh-keygen` given an empty passphrase), and
/// `microctl check`, which must render all four hosts with no warning but the placeholder
/// the guide tells the reader to set. Then the same inventory for Ubuntu 22.04 and 24.04 facts,
/// and its topology: app reached through web.
#[test]
fn the_ten_minute_guide_runs_as_written_until_it_needs_hosts() {
    let readme = read(&repo().join("README.md"));
    let guide = section(&readme, "Your own servers in ten minutes");
    let offline = &guide[..guide.find("\n### 4.").expect("the guide's step 4")];
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    let mut script = String::from("set -e\n");
    let mut inventory = String::new();
    for block in blocks(offline) {
        match block.lang.as_str() {
            "toml" if block.text.starts_with("# inventory.toml") => inventory.push_str(&block.text),
            "toml" => panic!("a toml block of the guide that the test does not know:\n{}", block.text),
            "sh" => {
                for line in block.text.lines() {
                    let line = match line.split_whitespace().collect::<Vec<_>>()[..] {
                        ["microctl", "secrets", "set", name, ..] => {
                            format!("printf %s 'a value of {name} long enough' | {line}")
                        }
                        ["ssh-keygen", ..] => format!("{line} -q -N ''"),
                        _ => line.to_string(),
                    };
                    script.push_str(&line);
                    script.push('\n');
                }
            }
            other => panic!("a {other:?} block in the guide's offline steps"),
        }
    }
    assert!(script.contains("microctl check"), "the guide's offline steps end with a check:\n{script}");
    // The reader writes the inventory between making the folder and the first `microctl` line.
    let fleet = home.join("fleet");
    let write_inventory = format!("cat > inventory.toml <<'EOF'\n{inventory}EOF\n");
    let first_microctl = script.lines().position(|l| l.contains("microctl ")).expect("a microctl line");
    let at: usize = script.lines().take(first_microctl).map(|l| l.len() + 1).sum();
    script.insert_str(at, &write_inventory);
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_microctl")).parent().unwrap();
    let out = Command::new("sh")
        .args(["-c", &script])
        .current_dir(repo())
        .env("HOME", &home)
        .env("PATH", format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()))
        .env("NO_COLOR", "1")
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("MICROCTL_INVENTORY")
        .env_remove("MICROCTL_ROLES")
        .env_remove("MICROCTL_SECRETS_IDENTITY")
        .env_remove("XDG_CACHE_HOME")
        .stdin(Stdio::null())
        .output()
        .expect("run sh (and ssh-keygen: Debian package openssh-client)");
    let run = Run::from(out);
    let context = format!("script:\n{script}\nstdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    assert_eq!(run.code, 0, "{context}");
    assert!(fleet.join("inventory.toml").is_file() && fleet.join("secrets.toml").is_file(), "{context}");
    assert!(run.stdout.contains("4 hosts: 4 ok, 0 failed"), "{context}");
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(
        warnings,
        ["warning: inventory.toml: var `jenkins_key_fingerprint` is a placeholder: `SET-ME-FROM-PKG.JENKINS.IO`"],
        "{context}"
    );

    for facts in ["os_id=ubuntu,os_version_id=24.04", "os_id=ubuntu,os_version_id=22.04,arch=arm64"] {
        let run = microctl(&fleet, &home, &["check", "--facts", facts]);
        assert_eq!(run.code, 0, "check --facts {facts}\n{}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains("4 hosts: 4 ok, 0 failed"), "check --facts {facts}\n{}", run.stdout);
    }

    let run = microctl(&fleet, &home, &["inventory", "--json"]);
    run.assert_code(0);
    let inv: serde_json::Value = serde_json::from_str(&run.stdout).expect("inventory --json");
    let chain = |name: &str| {
        inv["hosts"].as_array().unwrap().iter().find(|h| h["name"] == name).unwrap_or_else(|| panic!("no host {name}"))
            ["chain"]
            .clone()
    };
    assert_eq!(inv["hosts"].as_array().unwrap().len(), 4, "{}", run.stdout);
    assert_eq!(chain("app"), serde_json::json!(["web", "app"]), "app is reached through web");
    assert_eq!(chain("web"), serde_json::json!(["web"]), "web is public");
}

/// GitHub's anchor for a heading: lowercased, spaces to `-`, punctuation other than `-` and
/// `_` dropped; a repeated heading gets `-1`, `-2`...
fn anchors(markdown: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        let Some(title) = line.strip_prefix('#').filter(|_| !in_code).map(|t| t.trim_start_matches('#')) else {
            continue;
        };
        let slug: String = title
            .trim()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_lowercase().next().unwrap()),
                _ => None,
            })
            .collect();
        let n = seen
            .iter()
            .filter(|s| {
                **s == slug
                    || s.strip_prefix(&slug).is_some_and(|r| r.starts_with('-') && r[1..].parse::<u32>().is_ok())
            })
            .count();
        seen.push(if n == 0 { slug } else { format!("{slug}-{n}") });
    }
    seen
}

/// The targets of the `[text](target)` links of `markdown`, outside code.
fn links(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        // Inline code spans are not links.
        let text: String = line.split('`').step_by(2).collect::<Vec<_>>().join("");
        let mut rest = text.as_str();
        while let Some(at) = rest.find("](") {
            let tail = &rest[at + 2..];
            let end = tail.find(')').expect("a link is closed on its line");
            out.push(tail[..end].to_string());
            rest = &tail[end..];
        }
    }
    out
}

#[test]
fn anchors_are_githubs() {
    let md = "# microctl\n## JSON Lines (`--json`)\n## Logging in: `ssh` and `ssh-config`\n## Deploy\n### Deploy\n```\n# not a heading\n```\n";
    assert_eq!(anchors(md), ["microctl", "json-lines---json", "logging-in-ssh-and-ssh-config", "deploy", "deploy-1"]);
}

/// Every relative link of README.md, docs/, roles/README.md and BENCHMARKS.md names a file
/// that exists, and its `#anchor` a heading of that file.
#[test]
fn links_in_the_docs_resolve() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        for target in links(&read(&doc)) {
            if target.starts_with("http://") || target.starts_with("https://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = target.split_once('#').map_or((target.as_str(), None), |(f, a)| (f, Some(a)));
            let path = if file.is_empty() { doc.clone() } else { doc.parent().unwrap().join(file) };
            checked += 1;
            if !path.exists() {
                broken.push(format!("{}: {target}: no such file", doc.display()));
            } else if let Some(anchor) = anchor
                && !anchors(&read(&path)).iter().any(|a| a == anchor)
            {
                broken.push(format!("{}: {target}: no heading with that anchor in {}", doc.display(), path.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked >= 20, "only {checked} links found: is the extraction broken?");
}
