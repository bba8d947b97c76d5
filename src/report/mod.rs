//! Everything printed to the user: errors (rendered once), host-prefixed output lines, JSON
//! Lines, and recap tables. Commands produce results; this module decides how they look.
//! Every text printed here passes through the secrets redactor (`secrets::redact`): a value
//! that came from a secret shows as `[secret NAME]`.

mod lines;
mod progress;
mod table;

use std::io::{IsTerminal, Write};

pub use lines::HostLines;
pub use progress::{HostProgress, Progress};
pub use table::Table;

use crate::error::Error;
pub use crate::secrets::redact::redact;

/// Whether to color output on this stream: a terminal, and NO_COLOR unset.
pub fn color_enabled(stream: &impl IsTerminal) -> bool {
    stream.is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Prints a top-level error to stderr, once.
pub fn print_error(err: &Error) {
    let stderr = std::io::stderr();
    let prefix = if color_enabled(&stderr) { "\x1b[1;31merror\x1b[0m" } else { "error" };
    let _ = writeln!(stderr.lock(), "{prefix}: {}", redact(&err.to_string()));
}

/// Prints a note of microctl's own to stderr (e.g. a host key just recorded), whatever the
/// output mode, so `--json` on stdout stays clean.
pub fn notice(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "microctl: {}", redact(text));
}

/// Prints a problem that does not fail the command (e.g. from `check`) to stderr.
pub fn print_warning(err: &Error) {
    let stderr = std::io::stderr();
    let prefix = if color_enabled(&stderr) { "\x1b[1;33mwarning\x1b[0m" } else { "warning" };
    let _ = writeln!(stderr.lock(), "{prefix}: {}", redact(&err.to_string()));
}

/// Prints one JSON value as a line on stdout.
pub fn json_line(value: &serde_json::Value) {
    let mut value = value.clone();
    crate::secrets::redact::redact_json(&mut value);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
}

/// An error as a JSON object: `{"class": ..., "message": ...}` plus location fields.
pub fn error_json(err: &Error) -> serde_json::Value {
    let mut obj = serde_json::json!({ "class": err.kind.class(), "message": err.one_line() });
    for (key, value) in [("hop", &err.hop), ("task", &err.task), ("hint", &err.hint), ("detail", &err.detail)] {
        if let Some(v) = value {
            obj[key] = serde_json::Value::String(v.clone());
        }
    }
    obj
}

/// Seconds with two decimals, as shown in recaps.
pub fn seconds(d: std::time::Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}
