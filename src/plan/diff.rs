//! Unified diffs of text files for `--diff` (via `similar`): plain text, data; the printer
//! colors them when it prints them to a terminal (`apply::Event::Diff`).

use similar::TextDiff;

/// A unified diff from `old` to `new` for `path`; `None` if either side is not UTF-8 text.
pub fn unified(path: &str, old: &[u8], new: &[u8]) -> Option<String> {
    let (old, new) = (std::str::from_utf8(old).ok()?, std::str::from_utf8(new).ok()?);
    let diff = TextDiff::from_lines(old, new);
    Some(diff.unified_diff().context_radius(3).header(&format!("a{path}"), &format!("b{path}")).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_changed_lines() {
        let d = unified("/etc/x", b"a\nb\nc\n", b"a\nB\nc\n").unwrap();
        assert_eq!(d, "--- a/etc/x\n+++ b/etc/x\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
        assert!(unified("/bin", &[0xff, 0xfe], b"x").is_none());
    }
}
