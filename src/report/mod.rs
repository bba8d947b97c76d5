//! Everything printed to the user: errors (rendered once), the `Printer` of multi-host
//! commands (typed events -> spinners, `host | text` lines or JSON Lines; one recap table),
//! and tables. Commands produce results; this module decides how they look.
//! Every text printed here passes through the secrets redactor (`secrets::redact`): a value
//! that came from a secret shows as `[secret NAME]`.

mod deploy_event;
pub mod event;
pub mod listing;
mod printer;
pub mod script;
mod settings;
mod table;

use std::io::Write;

pub use printer::{HEARTBEAT_ENV, Printer};
pub use settings::{ColorChoice, color_enabled, configure, decide_color, settings};
pub use table::Table;

use crate::error::Error;
pub use crate::secrets::redact::redact;

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

/// Prints one `Serialize` value as a JSON line on stdout, redacted.
pub fn json_line(value: &impl serde::Serialize) {
    let mut value = serde_json::to_value(value).expect("JSON types serialize");
    crate::secrets::redact::redact_json(&mut value);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
}

/// Seconds with two decimals, as shown in recaps.
pub fn seconds(d: std::time::Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}
