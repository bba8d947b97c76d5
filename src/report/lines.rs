//! The printer's plain-lines mode (no terminal on stderr, or `-q`): every line `host | text`,
//! nothing redrawn. A phase that may take long is announced when it starts and kept alive by
//! the heartbeat (`still PHASE after Ns`), so a CI log never sits silent; `-v` adds every
//! phase with its time since the host started.

use std::time::Duration;

use serde_json::Value;

use super::event::{Stream, Summary};
use super::host_event::Style;
use super::printer::{Done, Mode, Row};
use super::seconds;
use super::text::Text;
use crate::error::Error;

pub(super) struct Lines {
    text: Text,
}

impl Lines {
    pub(super) fn new(text: Text) -> Lines {
        Lines { text }
    }
}

impl Mode for Lines {
    fn host_start(&self, host: &str) {
        if self.text.verbosity >= 1 {
            self.text.err_line(host, "started");
        }
    }

    fn phase(&self, host: &str, phase: &str, elapsed: Duration, slow: bool) {
        let verbosity = self.text.verbosity;
        if verbosity >= 1 {
            self.text.err_line(host, &format!("[{}] {phase}", seconds(elapsed)));
        } else if slow && verbosity >= 0 {
            self.text.err_line(host, phase);
        }
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
        self.text.host_done(done);
    }

    fn wants_heartbeat(&self) -> bool {
        self.text.verbosity >= 0
    }

    fn heartbeat(&self, host: &str, phase: &str, running: Duration) {
        self.text.err_line(host, &format!("still {phase} after {}s", running.as_secs()));
    }

    fn finish(&self, summary: &Summary, rows: &[Row]) {
        self.text.finish(summary, rows);
    }
}
