//! The env file is data: `envfile.sh` reads a systemd `EnvironmentFile=` the way systemd does
//! and prints its assignments as quoted words, which the deploy host script hands to `env` for
//! each build step and the restart. No shell ever sources the file, so a value such as
//! `abc$(touch /tmp/x)def` is a string, never a command.

use crate::remote::Shipped;

/// `env_words FILE` (POSIX sh + awk).
pub static ENVFILE_SH: Shipped = Shipped::new(include_str!("envfile.sh"));

/// Cases of systemd's EnvironmentFile= rules (systemd.exec(5), env-file.c of systemd 252):
/// (file content, the assignments systemd makes of it, in order). The lab test runs each on a
/// real systemd host too, comparing `env_words` with systemd's own reading.
pub const CASES: &[(&str, &[&str])] = &[
    ("A=1\n", &["A=1"]),
    ("  A  =  1 2  \n", &["A=1 2"]),
    ("A=\"x y\"\n", &["A=x y"]),
    ("A='x \"y\" $z `w`'\n", &["A=x \"y\" $z `w`"]),
    ("A=\"a\\\"b\\\\c\\`d\\$e\"\n", &["A=a\"b\\c`d$e"]),
    ("A=\"a\\nb\"\n", &["A=a\\nb"]),
    ("A=\"line1\nline2\"\n", &["A=line1\nline2"]),
    ("A='multi\nline'\n", &["A=multi\nline"]),
    ("A=abc$(touch /tmp/x)def\n", &["A=abc$(touch /tmp/x)def"]),
    ("A=`touch /tmp/x` pa$word\n", &["A=`touch /tmp/x` pa$word"]),
    ("A=a\\ b\nB=a\\\\b\n", &["A=a b", "B=a\\b"]),
    ("A=x \"q\" 'r'\n", &["A=x \"q\" 'r'"]),
    ("A=\"x\"y'z' \"w\"  \n", &["A=xy'z' \"w\""]),
    ("A=\"x\" 'y'  \"z\"\n", &["A=xyz"]),
    ("A=a\\\n  b\n", &["A=a  b"]),
    ("A=\"a\\\nb\"\n", &["A=ab"]),
    ("#A=1\n;B=2\n  # C=3\nD=4\n", &["D=4"]),
    ("noequals\nE=5\n", &["E=5"]),
    ("1A=x\nA-B=y\nexport C=z\nA B=w\n_ok9=v\n", &["_ok9=v"]),
    ("A=\nB=''\nC=\"\"\n", &["A=", "B=", "C="]),
    ("A=1\r\nB=2\r\n", &["A=1", "B=2"]),
    ("A=ctl\x01value\nB=tab\there\n", &["A=ctl\x01value", "B=tab\there"]),
    ("A=1\nA=2\n", &["A=1", "A=2"]),
    ("A=\"unterminated", &["A=unterminated"]),
    ("A=no newline  ", &["A=no newline"]),
    ("A=x # not a comment\n", &["A=x # not a comment"]),
    ("A=it's\n", &["A=it's"]),
    ("\n\n   \nA=1", &["A=1"]),
    ("", &[]),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// What `env_words` makes of `content`, under `shell`: the words, once the shell has
    /// unquoted them (as `env` receives them).
    pub fn parse(shell: &str, content: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("env");
        std::fs::write(&file, content).unwrap();
        let marker = dir.path().join("ran");
        let script = format!(
            "{ENVFILE_SH}\nw=$(env_words \"$1\") || exit 9\neval \"set -- $w\"\nfor a; do printf '%s\\0' \"$a\"; done"
        );
        let out = Command::new(shell)
            .arg("-c")
            .arg(&script)
            .arg("sh")
            .arg(&file)
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!marker.exists());
        let text = String::from_utf8(out.stdout).unwrap();
        text.split_terminator('\0').map(str::to_string).collect()
    }

    #[test]
    fn reads_the_file_as_systemd_does_under_sh_and_dash() {
        for shell in ["sh", "dash"] {
            for (content, want) in CASES {
                assert_eq!(parse(shell, content), *want, "{shell}: {content:?}");
            }
        }
    }

    #[test]
    fn nothing_in_the_file_runs() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("x");
        let f = flag.display();
        let content = format!("A=$(touch {f})\nB=`touch {f}`\nC=\"$(touch {f})\"\nD='$(touch {f})'\n$(touch {f})=1\n");
        for shell in ["sh", "dash"] {
            let words = parse(shell, &content);
            assert_eq!(words.len(), 4, "{words:?}");
            assert!(!flag.exists(), "{shell} ran a command from the env file");
        }
    }

    #[test]
    fn envfile_sh_passes_shellcheck() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("envfile.sh");
        std::fs::write(&p, ENVFILE_SH.raw()).unwrap();
        let out = Command::new("shellcheck")
            .args(["-s", "sh"])
            .arg(&p)
            .output()
            .expect("shellcheck (scripts/test.sh installs it)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
}
