//! The printer's two text modes (`terminal`, `lines`): one `TextMode` that writes what they
//! share, `host | text` lines (the host name padded and, where the stream takes color,
//! colored), results on stdout and progress on stderr written above the spinners when there
//! are any, the host errors, the recap table and the summary line; and a `Progress` of each
//! mode's own for how progress shows (spinners, or lines and a heartbeat). Everything written
//! is redacted here.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::MultiProgress;

use super::event::{Status, Stream, Summary, Unfinished};
use super::host_event::Style;
use serde_json::Value;

use super::printer::{Done, Mode, Row};
use super::{Settings, Table, redact, seconds};
use crate::error::Error;

/// How progress shows in a text mode: what differs between `terminal` and `lines`.
pub(super) trait Progress: Send + Sync {
    /// Work on `host` begins.
    fn host_start(&self, text: &Text, host: &str);
    /// `host` enters `phase`.
    fn phase(&self, text: &Text, host: &str, phase: &str, elapsed: Duration, slow: bool);
    /// The host is done (before its error and `done` line).
    fn host_done(&self, _host: &str) {}
    /// Whether long phases are kept alive by the heartbeat.
    fn wants_heartbeat(&self, _text: &Text) -> bool {
        false
    }
    /// `phase` still runs on `host`.
    fn heartbeat(&self, _text: &Text, _host: &str, _phase: &str, _running: Duration) {}
    /// The run is done (before the recap).
    fn finish(&self) {}
}

/// A text mode: the shared text, and the mode's own progress.
pub(super) struct TextMode<P> {
    text: Text,
    progress: P,
}

impl<P: Progress> TextMode<P> {
    pub(super) fn new(text: Text, progress: P) -> TextMode<P> {
        TextMode { text, progress }
    }
}

impl<P: Progress> Mode for TextMode<P> {
    fn host_start(&self, host: &str) {
        self.progress.host_start(&self.text, host);
    }

    fn phase(&self, host: &str, phase: &str, elapsed: Duration, slow: bool) {
        self.progress.phase(&self.text, host, phase, elapsed, slow);
    }

    fn command(&self, host: &str, command: &str) {
        self.text.command(host, command);
    }

    fn event(&self, host: &str, _json: &dyn Fn() -> Option<Value>, text: Option<&str>, style: &dyn Fn(&str) -> Style) {
        self.text.event(host, text, style);
    }

    fn script(&self, host: &str, script: &str, steps: &dyn Fn() -> Vec<String>) {
        self.text.script(host, script, steps);
    }

    fn warning(&self, _host: Option<&str>, _message: &str, _hint: Option<&str>, text: &str, always: bool) {
        self.text.warning(text, always);
    }

    fn shared_error(&self, err: &Error, hosts: &[String]) {
        self.text.shared_error(err, hosts);
    }

    fn host_error(&self, host: Option<&str>, text: &str) {
        self.text.host_error(host, text);
    }

    fn message(&self, text: &str) {
        self.text.message(text);
    }

    fn notice(&self, text: &str) {
        self.text.notice(text);
    }

    fn output(&self, host: &str, stream: Stream, line: &str) {
        self.text.output(host, stream, line);
    }

    fn host_done(&self, done: &Done<'_>) {
        self.progress.host_done(done.host);
        self.text.host_done(done);
    }

    fn wants_heartbeat(&self) -> bool {
        self.progress.wants_heartbeat(&self.text)
    }

    fn heartbeat(&self, host: &str, phase: &str, running: Duration) {
        self.progress.heartbeat(&self.text, host, phase, running);
    }

    fn interrupted(&self, signal: &str, hosts: &[Unfinished]) {
        self.text.interrupted(signal, hosts);
    }

    fn finish(&self, summary: &Summary, rows: &[Row]) {
        self.progress.finish();
        self.text.finish(summary, rows);
    }
}

const COLORS: [&str; 6] = ["36", "33", "35", "32", "34", "91"];

pub(super) struct Text {
    pub verbosity: i8,
    command: &'static str,
    color_out: bool,
    color_err: bool,
    width: usize,
    /// Each host's place in the run (its color).
    index: Mutex<HashMap<String, usize>>,
    /// The spinners' owner, on a terminal: lines are written above them.
    pub multi: Option<MultiProgress>,
}

impl Text {
    pub(super) fn new(settings: &Settings, command: &'static str, hosts: &[String]) -> Text {
        Text {
            verbosity: settings.verbosity,
            command,
            color_out: settings.color_for(&std::io::stdout()),
            color_err: settings.color_for(&std::io::stderr()),
            width: hosts.iter().map(String::len).max().unwrap_or(0),
            index: Mutex::new(hosts.iter().enumerate().map(|(i, h)| (h.clone(), i)).collect()),
            multi: None,
        }
    }

    /// The host name padded to the widest (the spinners' prefix).
    pub(super) fn padded(&self, host: &str) -> String {
        format!("{host:<w$}", w = self.width)
    }

    fn prefix(&self, host: &str, color: bool) -> String {
        let name = self.padded(host);
        if !color {
            return format!("{name} | ");
        }
        let index = {
            let mut index = self.index.lock().expect("host index");
            let next = index.len();
            *index.entry(host.to_string()).or_insert(next)
        };
        format!("\x1b[{}m{name}\x1b[0m | ", COLORS[index % COLORS.len()])
    }

    /// `host | text` on stdout, painted in `style` when stdout takes color.
    fn out_line(&self, host: &str, text: &str, style: Style) {
        let text = redact(text);
        let shown = if self.color_out { style.paint(&text) } else { std::borrow::Cow::Borrowed(&*text) };
        self.write_out(&format!("{}{shown}\n", self.prefix(host, self.color_out)));
    }

    /// Text (already redacted) on stdout, above the spinners.
    fn write_out(&self, text: &str) {
        let write = || {
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        };
        match &self.multi {
            Some(m) => m.suspend(write),
            None => write(),
        }
    }

    /// `host | text` on stderr (above the spinners).
    pub(super) fn err_line(&self, host: &str, text: &str) {
        self.write_err(format!("{}{}", self.prefix(host, self.color_err), redact(text)));
    }

    /// A line (already redacted, without its newline) on stderr, above the spinners.
    fn write_err(&self, line: String) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    /// `-vv`: the remote command, `$ `-prefixed.
    fn command(&self, host: &str, command: &str) {
        if self.verbosity >= 2 {
            for line in command.lines() {
                self.err_line(host, &format!("$ {line}"));
            }
        }
    }

    /// A domain event's result lines (not with `-q`).
    fn event(&self, host: &str, text: Option<&str>, style: &dyn Fn(&str) -> Style) {
        if let Some(text) = text.filter(|_| self.verbosity >= 0) {
            for line in text.lines() {
                self.out_line(host, line, style(line));
            }
        }
    }

    /// `-vv`: the script's steps.
    fn script(&self, host: &str, script: &str, steps: &dyn Fn() -> Vec<String>) {
        if self.verbosity >= 2 {
            self.err_line(host, &format!("script {script}:"));
            for step in steps() {
                self.err_line(host, &format!("  {step}"));
            }
        }
    }

    /// `warning: text` on stderr (not with `-q` unless `always`).
    fn warning(&self, text: &str, always: bool) {
        if always || self.verbosity >= 0 {
            let prefix = if self.color_err { "\x1b[1;33mwarning\x1b[0m" } else { "warning" };
            self.write_err(format!("{prefix}: {}", redact(text)));
        }
    }

    /// An error shared by `hosts`, once, naming them, on stdout like other host errors.
    fn shared_error(&self, err: &Error, hosts: &[String]) {
        let mut err = err.duplicate();
        err.host = Some(super::host_list(hosts));
        self.host_error(None, &err.to_string());
    }

    /// A host's error as `host | error: ...` lines; without `host`, an error that names its
    /// hosts itself, as `error: ...`; on stdout like other host errors.
    fn host_error(&self, host: Option<&str>, text: &str) {
        match host {
            Some(host) => {
                for (i, line) in text.lines().enumerate() {
                    let line = if i == 0 { format!("error: {line}") } else { line.to_string() };
                    self.out_line(host, &line, Style::Plain);
                }
            }
            None => {
                let prefix = if self.color_out { "\x1b[1;31merror\x1b[0m" } else { "error" };
                self.write_out(&format!("{prefix}: {}\n", redact(text)));
            }
        }
    }

    /// `microctl: text` on stderr, above the spinners.
    fn notice(&self, text: &str) {
        self.write_err(format!("microctl: {}", redact(text)));
    }

    /// `interrupted (SIGINT): ...` on stderr, even with `-q`: no host starts any more, and
    /// the hosts under way (each with its step) are being stopped.
    fn interrupted(&self, signal: &str, hosts: &[Unfinished]) {
        let under_way = if hosts.is_empty() {
            "no host was under way".to_string()
        } else {
            let each: Vec<String> = hosts.iter().map(|h| format!("{} (during {})", h.host, h.step)).collect();
            format!("stopping the remote step on {}", each.join(", "))
        };
        self.write_err(format!(
            "microctl: interrupted ({signal}): no further host starts; {}; Ctrl-C again exits at once",
            redact(&under_way)
        ));
    }

    /// A line of the command's own (not with `-q`).
    fn message(&self, text: &str) {
        if self.verbosity >= 0 {
            self.write_out(&format!("{}\n", redact(text)));
        }
    }

    /// A line of the remote command's output, on the stream it came from (not with `-q`).
    fn output(&self, host: &str, stream: Stream, line: &str) {
        match stream {
            _ if self.verbosity < 0 => {}
            Stream::Stdout => self.out_line(host, line, Style::Plain),
            Stream::Stderr => self.err_line(host, line),
        }
    }

    /// The host's error, and with `-v` its `done` line.
    fn host_done(&self, done: &Done<'_>) {
        if let Some(text) = done.error_text {
            self.host_error(Some(done.host), text);
        }
        if self.verbosity >= 1 {
            let detail = if done.detail.is_empty() { String::new() } else { format!(" ({})", done.detail) };
            let text = format!("[{}] done: {}{detail}", seconds(done.elapsed), done.status.as_str());
            self.err_line(done.host, &text);
        }
    }

    /// The recap table (not with `-q`, not for `check`) and the summary line.
    fn finish(&self, summary: &Summary, rows: &[Row]) {
        let mut out = String::new();
        // `check` contacts no host: its errors say everything, a table of hosts would not.
        if self.verbosity >= 0 && !rows.is_empty() && self.command != "check" {
            let mut table = Table::new(&["host", "status", "detail", "duration"]);
            for (host, status, detail, duration) in rows {
                table.row(vec![host.clone(), status.as_str().into(), detail.clone(), seconds(*duration)]);
            }
            out.push_str(&table.render());
        }
        let count = |status: Status| rows.iter().filter(|r| r.1 == status).count();
        out.push_str(&summary_line(summary, count(Status::Skipped), count(Status::Interrupted)));
        out.push('\n');
        let _ = std::io::stdout().lock().write_all(redact(&out).as_bytes());
    }
}

/// `3 hosts: 2 ok, 4 changed, 1 failed, 0 unreachable in 1.20s` (no `changed` for exec;
/// `1 host: ...` for one).
fn summary_line(s: &Summary, skipped: usize, interrupted: usize) -> String {
    let mut parts = vec![format!("{} ok", s.ok)];
    if s.command != "exec" && s.command != "check" {
        parts.push(format!("{} {}", s.changed, if s.check { "changes pending" } else { "changed" }));
    }
    parts.push(format!("{} failed", s.failed));
    if s.command != "check" {
        parts.push(format!("{} unreachable", s.unreachable));
    }
    if skipped > 0 {
        parts.push(format!("{skipped} skipped"));
    }
    if interrupted > 0 {
        parts.push(format!("{interrupted} interrupted"));
    }
    let head = s.interrupted.map_or(String::new(), |signal| format!("interrupted ({signal}): "));
    format!(
        "{head}{}: {} in {}",
        super::count(s.hosts, "host"),
        parts.join(", "),
        seconds(Duration::from_millis(s.duration_ms))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines() {
        let mut s = Summary {
            command: "exec",
            hosts: 3,
            ok: 3,
            failed: 0,
            unreachable: 0,
            changed: 0,
            check: false,
            duration_ms: 1200,
            exit_code: 0,
            interrupted: None,
        };
        assert_eq!(summary_line(&s, 0, 0), "3 hosts: 3 ok, 0 failed, 0 unreachable in 1.20s");
        s.command = "converge";
        s.check = true;
        s.changed = 4;
        assert_eq!(
            summary_line(&s, 1, 0),
            "3 hosts: 3 ok, 4 changes pending, 0 failed, 0 unreachable, 1 skipped in 1.20s"
        );
        s.command = "check";
        s.failed = 1;
        assert_eq!(summary_line(&s, 0, 0), "3 hosts: 3 ok, 1 failed in 1.20s");
        s.command = "exec";
        s.interrupted = Some("SIGINT");
        assert_eq!(
            summary_line(&s, 0, 2),
            "interrupted (SIGINT): 3 hosts: 3 ok, 1 failed, 0 unreachable, 2 interrupted in 1.20s"
        );
    }
}
