//! Unified diffs of text files for `--diff` (via `similar`), colored on a terminal.

use similar::TextDiff;

/// A unified diff from `old` to `new` for `path`; `None` if either side is not UTF-8 text.
pub fn unified(path: &str, old: &[u8], new: &[u8], color: bool) -> Option<String> {
    let (old, new) = (std::str::from_utf8(old).ok()?, std::str::from_utf8(new).ok()?);
    let diff = TextDiff::from_lines(old, new);
    let text = diff.unified_diff().context_radius(3).header(&format!("a{path}"), &format!("b{path}")).to_string();
    if !color {
        return Some(text);
    }
    let colored = text
        .lines()
        .map(|l| match l.as_bytes().first() {
            Some(b'+') if !l.starts_with("+++") => format!("\x1b[32m{l}\x1b[0m"),
            Some(b'-') if !l.starts_with("---") => format!("\x1b[31m{l}\x1b[0m"),
            Some(b'@') => format!("\x1b[36m{l}\x1b[0m"),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    Some(colored + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_changed_lines() {
        let d = unified("/etc/x", b"a\nb\nc\n", b"a\nB\nc\n", false).unwrap();
        assert_eq!(d, "--- a/etc/x\n+++ b/etc/x\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
        assert!(unified("/bin", &[0xff, 0xfe], b"x", false).is_none());
    }
}
