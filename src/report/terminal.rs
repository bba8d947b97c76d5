//! The printer's terminal mode (stderr is a TTY, not `-q`): a spinner per host showing its
//! phase (at most `MAX_SPINNERS` at once), results written above them; with `-v` each phase
//! as a line too. No heartbeat: the spinners show what runs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::Value;

use super::event::{Stream, Summary};
use super::host_event::Style;
use super::printer::{Done, Mode, Row};
use super::text::Text;
use super::{redact, seconds};
use crate::error::Error;

/// At most this many spinners at once (more would not fit a terminal); hosts beyond get none
/// until others finish, their results print all the same.
const MAX_SPINNERS: usize = 20;

pub(super) struct Terminal {
    text: Text,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Terminal {
    pub(super) fn new(mut text: Text) -> Terminal {
        text.multi = Some(MultiProgress::new());
        Terminal { text, bars: Mutex::new(HashMap::new()) }
    }

    fn multi(&self) -> &MultiProgress {
        self.text.multi.as_ref().expect("a terminal has spinners")
    }
}

impl Mode for Terminal {
    fn host_start(&self, host: &str) {
        let mut bars = self.bars.lock().expect("spinners");
        if bars.len() >= MAX_SPINNERS {
            return;
        }
        let bar = self.multi().add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {wide_msg}")
                .expect("valid template")
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
        );
        bar.set_prefix(self.text.padded(host));
        bar.enable_steady_tick(Duration::from_millis(100));
        bars.insert(host.to_string(), bar);
    }

    fn phase(&self, host: &str, phase: &str, elapsed: Duration, _slow: bool) {
        if let Some(bar) = self.bars.lock().expect("spinners").get(host) {
            bar.set_message(redact(phase).to_string());
        }
        if self.text.verbosity >= 1 {
            self.text.err_line(host, &format!("[{}] {phase}", seconds(elapsed)));
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
        if let Some(bar) = self.bars.lock().expect("spinners").remove(done.host) {
            bar.finish_and_clear();
            self.multi().remove(&bar);
        }
        self.text.host_done(done);
    }

    fn wants_heartbeat(&self) -> bool {
        false
    }

    fn heartbeat(&self, _host: &str, _phase: &str, _running: Duration) {}

    fn finish(&self, summary: &Summary, rows: &[Row]) {
        let _ = self.multi().clear();
        self.text.finish(summary, rows);
    }
}
