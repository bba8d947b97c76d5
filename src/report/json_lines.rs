//! The printer's JSON Lines mode (`--json`): one object per line on stdout, in the schema of
//! `event` (docs/output.md, "JSON Lines"). Progress events (`host_start`, `phase`, domain events,
//! output, heartbeats) are left out with `-q`, `command` and `script` need `-vv`; warnings,
//! `host` and the `summary` are always printed. No text, no color, ever.

use std::time::Duration;

use serde_json::Value;

use super::event::{Event, Stream, Summary, Unfinished};
use super::host_event::Style;
use super::printer::{Done, Mode, Row};
use crate::error::Error;

pub(super) struct JsonLines {
    verbosity: i8,
}

impl JsonLines {
    pub(super) fn new(verbosity: i8) -> JsonLines {
        JsonLines { verbosity }
    }

    /// Prints `event` when `verbosity` allows (`-1`: always).
    fn line(&self, event: &impl serde::Serialize, min_verbosity: i8) {
        if self.verbosity >= min_verbosity {
            super::json_line(event);
        }
    }
}

impl Mode for JsonLines {
    fn host_start(&self, host: &str) {
        self.line(&Event::HostStart { host }, 0);
    }

    fn phase(&self, host: &str, phase: &str, elapsed: Duration, _slow: bool) {
        self.line(&Event::Phase { host, phase, elapsed_ms: elapsed.as_millis() as u64 }, 0);
    }

    fn command(&self, host: &str, command: &str) {
        self.line(&Event::Command { host, command }, 2);
    }

    fn event(&self, _host: &str, json: &dyn Fn() -> Option<Value>, _text: Option<&str>, _: &dyn Fn(&str) -> Style) {
        if self.verbosity >= 0
            && let Some(value) = json()
        {
            super::json_line(&value);
        }
    }

    fn script(&self, host: &str, script: &str, steps: &dyn Fn() -> Vec<String>) {
        if self.verbosity >= 2 {
            self.line(&Event::Script { host, script, steps: &steps() }, 2);
        }
    }

    fn warning(&self, host: Option<&str>, message: &str, hint: Option<&str>, _text: &str, _always: bool) {
        self.line(&Event::Warning { host, message, hint }, -1);
    }

    /// Not in JSON: each host's `host` object carries it.
    fn shared_error(&self, _err: &Error, _hosts: &[String]) {}

    /// Not in JSON: the host's `host` object carries it.
    fn host_error(&self, _host: Option<&str>, _text: &str) {}

    fn message(&self, _text: &str) {}

    fn output(&self, host: &str, stream: Stream, line: &str) {
        self.line(&Event::Output { host, stream, line }, 0);
    }

    fn host_done(&self, done: &Done<'_>) {
        self.line(&(done.json)(), -1);
    }

    fn wants_heartbeat(&self) -> bool {
        self.verbosity >= 0
    }

    fn heartbeat(&self, host: &str, phase: &str, running: Duration) {
        self.line(&Event::Heartbeat { host, phase, running_ms: running.as_millis() as u64 }, 0);
    }

    fn interrupted(&self, signal: &str, hosts: &[Unfinished]) {
        self.line(&Event::Interrupted { signal, hosts }, -1);
    }

    fn finish(&self, summary: &Summary, _rows: &[Row]) {
        super::JSON_SUMMARY_PRINTED.store(true, std::sync::atomic::Ordering::SeqCst);
        self.line(&Event::Summary(summary), -1);
    }
}
