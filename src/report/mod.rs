//! Everything printed to the user: errors (rendered once), the `Printer` of multi-host
//! commands (typed events -> one mode: `terminal` spinners, plain `lines` or `json_lines`;
//! one recap table), and tables. Commands produce results; this module decides how they look.
//! Every text printed here passes through the secrets redactor (`secrets::redact`): a value
//! that came from a secret shows as `[secret NAME]`.

pub mod event;
mod host_event;
mod json_lines;
mod lines;
pub mod listing;
mod printer;
mod settings;
pub mod steps;
mod table;
mod terminal;
mod text;
mod unreached;

use std::io::Write;

pub use host_event::{HostEvent, Style};
pub use printer::Printer;
pub use settings::{ColorChoice, Settings};
pub use table::Table;

use crate::error::Error;
pub use crate::secrets::redact::redact;

/// Prints a top-level error to stderr, once, colored as `settings` say.
pub fn print_error(settings: &Settings, err: &Error) {
    let stderr = std::io::stderr();
    let prefix = if settings.color_for(&stderr) { "\x1b[1;31merror\x1b[0m" } else { "error" };
    let _ = writeln!(stderr.lock(), "{prefix}: {}", redact(&err.to_string()));
}

/// Set once a `--json` run printed its `summary`: [`json_failure`] then adds nothing.
pub(crate) static JSON_SUMMARY_PRINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A `--json` run of `command` that failed before any host (a role error, a bad pattern, a bad
/// deploy config): an `error` object and the `summary` (with the error's exit code), so the
/// summary is the last line whatever happened. Nothing when the run printed its summary.
pub fn json_failure(command: &'static str, err: &Error) {
    if JSON_SUMMARY_PRINTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    json_line(&event::Event::Error { error: event::ErrorJson::new(err) });
    let summary = event::Summary {
        command,
        hosts: 0,
        ok: 0,
        failed: 0,
        unreachable: 0,
        changed: 0,
        check: false,
        duration_ms: 0,
        exit_code: err.exit_code(),
        interrupted: None,
    };
    json_line(&event::Event::Summary(&summary));
}

/// Prints a note of microctl's own to stderr (e.g. a host key just recorded), whatever the
/// output mode, so `--json` on stdout stays clean.
pub fn notice(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "microctl: {}", redact(text));
}

/// Prints one `Serialize` value as a JSON line on stdout, redacted.
pub fn json_line(value: &impl serde::Serialize) {
    let mut value = serde_json::to_value(value).expect("JSON types serialize");
    crate::secrets::redact::redact_json(&mut value);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
}

/// `1 host`, `3 hosts`: a count and its noun, singular for one.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// `a, b, c (3 hosts)`, at most 10 names; one host is just its name.
pub fn host_list(hosts: &[String]) -> String {
    if let [one] = hosts {
        return one.clone();
    }
    let shown: Vec<&str> = hosts.iter().take(10).map(String::as_str).collect();
    let more = if hosts.len() > shown.len() { ", ..." } else { "" };
    format!("{}{more} ({} hosts)", shown.join(", "), hosts.len())
}

/// Groups per-host errors that are the same but for the host (a template error every host
/// of a group hits), in the order first seen: each error once, with the hosts it hit.
pub fn group_errors<'a>(failures: impl IntoIterator<Item = (&'a str, &'a Error)>) -> Vec<(&'a Error, Vec<String>)> {
    let mut groups: Vec<(&Error, Vec<String>)> = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (host, e) in failures {
        let mut key = e.duplicate();
        key.host = None;
        match seen.entry(key.to_string()) {
            std::collections::hash_map::Entry::Occupied(i) => groups[*i.get()].1.push(host.to_string()),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(groups.len());
                groups.push((e, vec![host.to_string()]));
            }
        }
    }
    groups
}

/// Seconds with two decimals, as shown in recaps.
pub fn seconds(d: std::time::Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}
