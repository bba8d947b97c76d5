//! The printer's plain-lines mode (no terminal on stderr, or `-q`): every line `host | text`
//! (`text`), nothing redrawn. A phase that may take long is announced when it starts and kept
//! alive by the heartbeat (`still PHASE after Ns`), so a CI log never sits silent; `-v` adds
//! every phase with its time since the host started.

use std::time::Duration;

use super::seconds;
use super::text::{Progress, Text};

pub(super) struct Lines;

impl Progress for Lines {
    fn host_start(&self, text: &Text, host: &str) {
        if text.verbosity >= 1 {
            text.err_line(host, "started");
        }
    }

    fn phase(&self, text: &Text, host: &str, phase: &str, elapsed: Duration, slow: bool) {
        if text.verbosity >= 1 {
            text.err_line(host, &format!("[{}] {phase}", seconds(elapsed)));
        } else if slow && text.verbosity >= 0 {
            text.err_line(host, phase);
        }
    }

    fn wants_heartbeat(&self, text: &Text) -> bool {
        text.verbosity >= 0
    }

    fn heartbeat(&self, text: &Text, host: &str, phase: &str, running: Duration) {
        text.err_line(host, &format!("still {phase} after {}s", running.as_secs()));
    }
}
