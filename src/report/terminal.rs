//! The printer's terminal mode (stderr is a TTY, not `-q`): a spinner per host showing its
//! phase (at most `MAX_SPINNERS` at once), results written above them (`text`); with `-v`
//! each phase as a line too. No heartbeat: the spinners show what runs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::text::{Progress, Text};
use super::{redact, seconds};

/// At most this many spinners at once (more would not fit a terminal); hosts beyond get none
/// until others finish, their results print all the same.
const MAX_SPINNERS: usize = 20;

pub(super) struct Terminal {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Terminal {
    /// The spinners, and `text` writing above them.
    pub(super) fn new(text: &mut Text) -> Terminal {
        let multi = MultiProgress::new();
        text.multi = Some(multi.clone());
        Terminal { multi, bars: Mutex::new(HashMap::new()) }
    }
}

impl Progress for Terminal {
    fn host_start(&self, text: &Text, host: &str) {
        let mut bars = self.bars.lock().expect("spinners");
        if bars.len() >= MAX_SPINNERS {
            return;
        }
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {wide_msg}")
                .expect("valid template")
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
        );
        bar.set_prefix(text.padded(host));
        bar.enable_steady_tick(Duration::from_millis(100));
        bars.insert(host.to_string(), bar);
    }

    fn phase(&self, text: &Text, host: &str, phase: &str, elapsed: Duration, _slow: bool) {
        if let Some(bar) = self.bars.lock().expect("spinners").get(host) {
            bar.set_message(redact(phase).to_string());
        }
        if text.verbosity >= 1 {
            text.err_line(host, &format!("[{}] {phase}", seconds(elapsed)));
        }
    }

    fn host_done(&self, host: &str) {
        if let Some(bar) = self.bars.lock().expect("spinners").remove(host) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    fn finish(&self) {
        let _ = self.multi.clear();
    }
}
