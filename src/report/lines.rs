//! Host-prefixed output: `web | line`, whole lines only, so output from hosts running in
//! parallel never interleaves mid-line. The prefix is colored per host on a terminal.

use std::io::Write;

const COLORS: [&str; 6] = ["36", "33", "35", "32", "34", "91"];

/// Buffers one host's partial lines and prints complete ones with its prefix.
pub struct HostLines {
    prefix: String,
    stdout_buf: Vec<u8>,
    stderr_buf: Vec<u8>,
}

impl HostLines {
    /// `index` picks the color; `width` pads names so the bars line up.
    pub fn new(host: &str, index: usize, width: usize, color: bool) -> Self {
        let name = format!("{host:<width$}");
        let prefix = if color {
            format!("\x1b[{}m{name}\x1b[0m | ", COLORS[index % COLORS.len()])
        } else {
            format!("{name} | ")
        };
        HostLines { prefix, stdout_buf: Vec::new(), stderr_buf: Vec::new() }
    }

    pub fn stdout(&mut self, data: &[u8]) {
        Self::push(&self.prefix, &mut self.stdout_buf, data, &mut std::io::stdout().lock());
    }

    pub fn stderr(&mut self, data: &[u8]) {
        Self::push(&self.prefix, &mut self.stderr_buf, data, &mut std::io::stderr().lock());
    }

    /// A whole line of microctl's own (not the remote command's) on stdout.
    pub fn note(&self, text: &str) {
        let _ = writeln!(std::io::stdout().lock(), "{}{}", self.prefix, super::redact(text));
    }

    /// Prints what is left of unterminated last lines.
    pub fn flush(&mut self) {
        for (buf, is_err) in [(&mut self.stdout_buf, false), (&mut self.stderr_buf, true)] {
            if !buf.is_empty() {
                buf.push(b'\n');
                let data = std::mem::take(buf);
                if is_err {
                    Self::push(&self.prefix, buf, &data, &mut std::io::stderr().lock());
                } else {
                    Self::push(&self.prefix, buf, &data, &mut std::io::stdout().lock());
                }
            }
        }
    }

    fn push(prefix: &str, buf: &mut Vec<u8>, data: &[u8], out: &mut impl Write) {
        buf.extend_from_slice(data);
        let Some(last_nl) = buf.iter().rposition(|b| *b == b'\n') else { return };
        let complete: Vec<u8> = buf.drain(..=last_nl).collect();
        let mut text = Vec::with_capacity(complete.len() + prefix.len() * 4);
        for line in complete.split_inclusive(|b| *b == b'\n') {
            text.extend_from_slice(prefix.as_bytes());
            match std::str::from_utf8(line) {
                Ok(s) => text.extend_from_slice(super::redact(s).as_bytes()),
                Err(_) => text.extend_from_slice(line),
            }
        }
        let _ = out.write_all(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_only_whole_lines_with_prefix() {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        HostLines::push("web | ", &mut buf, b"one\ntw", &mut out);
        assert_eq!(out, b"web | one\n");
        HostLines::push("web | ", &mut buf, b"o\nthree\n", &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "web | one\nweb | two\nweb | three\n");
        assert!(buf.is_empty());
    }
}
