//! Live progress for multi-host runs: on a terminal, an indicatif spinner per host showing its
//! phase, with finished steps printed above; otherwise plain `host | text` lines.

use std::io::Write;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Progress for one run over many hosts.
pub struct Progress {
    multi: Option<MultiProgress>,
    width: usize,
}

/// Progress of one host.
pub struct HostProgress {
    bar: Option<ProgressBar>,
    multi: Option<MultiProgress>,
    prefix: String,
}

impl Progress {
    /// `tty`: draw spinners (stderr is a terminal); otherwise print lines.
    pub fn new(hosts: &[String], tty: bool) -> Progress {
        let width = hosts.iter().map(String::len).max().unwrap_or(0);
        Progress { multi: tty.then(MultiProgress::new), width }
    }

    pub fn host(&self, name: &str) -> HostProgress {
        let prefix = format!("{name:<w$}", w = self.width);
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {wide_msg}")
                    .expect("valid template")
                    .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
            );
            bar.set_prefix(prefix.clone());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        HostProgress { bar, multi: self.multi.clone(), prefix }
    }
}

impl HostProgress {
    /// What the host is doing now (spinner message; not printed in plain mode).
    pub fn phase(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(text.to_string());
        }
    }

    /// A line worth keeping: printed above the spinners, or as a plain line.
    pub fn line(&self, text: &str) {
        let line = format!("{} | {}", self.prefix, super::redact(text));
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
        }
    }

    /// The host is done: its spinner goes away.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
