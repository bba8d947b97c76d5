//! The one printer of multi-host commands (converge, deploy, exec): commands tell it what
//! happens as typed events; it alone decides how that looks.
//!
//! - Modes: spinners per host on a terminal (stderr is a TTY; indicatif), plain `host | text`
//!   lines otherwise, or JSON Lines (`--json`, see `event`).
//! - Streams, the same for every command: results on stdout (changes, diffs, the remote
//!   command's stdout, host errors, the recap table, the summary, JSON); progress and
//!   diagnostics on stderr (spinners, phases, heartbeats, `-vv` commands, the remote command's
//!   stderr). So `converge --diff | tee log` keeps the diffs in the log while the spinners stay
//!   on the terminal.
//! - Verbosity: `-q` prints only host errors and the summary line; `-v` each host's phases
//!   with their time since the host started, and its timings when done; `-vv` also the remote
//!   commands and a summary of the steps of each host script sent (`report::script`).
//! - Without a terminal a step that may take long (lock wait, package install, build, health
//!   wait) is announced when it starts, and every 30 s while it runs (MICROCTL_HEARTBEAT_SECS),
//!   so a CI log never sits silent; with `--json` the same beat is a `heartbeat` event.
//! - Remote output is printed in whole lines; an unterminated last line is ended at host done,
//!   so it never glues onto what follows. Everything printed passes through the secrets
//!   redactor.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::event::{Event, HostDone, Status, Stream, Summary};
use super::host_event::{HostEvent, Style};
use super::{Table, redact, seconds, settings};
use crate::error::Error;

const COLORS: [&str; 6] = ["36", "33", "35", "32", "34", "91"];

/// At most this many spinners at once (more would not fit a terminal); hosts beyond get none
/// until others finish, their results print all the same.
const MAX_SPINNERS: usize = 20;

/// The env var that overrides the heartbeat interval (seconds), for tests.
pub const HEARTBEAT_ENV: &str = "MICROCTL_HEARTBEAT_SECS";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Tty,
    Plain,
    Json,
}

/// The printer of one run; cheap to clone into host tasks.
#[derive(Clone)]
pub struct Printer {
    inner: Arc<Inner>,
}

struct Inner {
    command: &'static str,
    mode: Mode,
    verbosity: i8,
    color_out: bool,
    color_err: bool,
    width: usize,
    multi: Option<MultiProgress>,
    started: Instant,
    state: Mutex<State>,
    heartbeat: Mutex<Option<(mpsc::Sender<()>, thread::JoinHandle<()>)>>,
}

#[derive(Default)]
struct State {
    hosts: HashMap<String, HostState>,
    rows: Vec<(String, Status, String, Duration)>,
}

struct HostState {
    index: usize,
    began: bool,
    started: Instant,
    bar: Option<ProgressBar>,
    /// The current phase, when it started, when it was last announced.
    phase: Option<(String, Instant, Instant)>,
    out: Vec<u8>,
    err: Vec<u8>,
}

impl Printer {
    /// A printer for `command` over `hosts`; `json` for `--json`.
    pub fn new(command: &'static str, hosts: &[String], json: bool) -> Printer {
        let s = settings();
        let color_out = super::color_enabled(&std::io::stdout());
        let color_err = super::color_enabled(&std::io::stderr());
        let stderr_tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let mode = if json {
            Mode::Json
        } else if stderr_tty && s.verbosity >= 0 {
            Mode::Tty
        } else {
            Mode::Plain
        };
        let mut state = State::default();
        for (index, host) in hosts.iter().enumerate() {
            let now = Instant::now();
            state.hosts.insert(
                host.clone(),
                HostState { index, began: false, started: now, bar: None, phase: None, out: vec![], err: vec![] },
            );
        }
        let printer = Printer {
            inner: Arc::new(Inner {
                command,
                mode,
                verbosity: s.verbosity,
                color_out,
                color_err,
                width: hosts.iter().map(String::len).max().unwrap_or(0),
                multi: (mode == Mode::Tty).then(MultiProgress::new),
                started: Instant::now(),
                state: Mutex::new(state),
                heartbeat: Mutex::new(None),
            }),
        };
        if mode != Mode::Tty && s.verbosity >= 0 {
            printer.start_heartbeat(heartbeat_interval());
        }
        printer
    }

    /// Work on `host` begins (its spinner appears).
    pub fn host_start(&self, host: &str) {
        let inner = &self.inner;
        let mut state = inner.state.lock().expect("printer state");
        let h = state.host(host);
        if h.began {
            return;
        }
        h.began = true;
        h.started = Instant::now();
        let bars = state.hosts.values().filter(|h| h.bar.is_some()).count();
        let h = state.host(host);
        if let Some(multi) = inner.multi.as_ref().filter(|_| bars < MAX_SPINNERS) {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner:.cyan} {prefix:.bold} {wide_msg}")
                    .expect("valid template")
                    .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
            );
            bar.set_prefix(format!("{host:<w$}", w = inner.width));
            bar.enable_steady_tick(Duration::from_millis(100));
            h.bar = Some(bar);
        }
        drop(state);
        self.json(&Event::HostStart { host }, 0);
        if inner.mode == Mode::Plain && inner.verbosity >= 1 {
            self.err_line(host, "started");
        }
    }

    /// `host` enters `phase`; `slow` when it may take long (announced even without `-v`
    /// when there is no terminal, and kept alive by the heartbeat).
    pub fn phase(&self, host: &str, phase: &str, slow: bool) {
        self.host_start(host);
        let inner = &self.inner;
        let mut state = inner.state.lock().expect("printer state");
        let h = state.host(host);
        let now = Instant::now();
        let elapsed = now - h.started;
        h.phase = Some((phase.to_string(), now, now));
        if let Some(bar) = &h.bar {
            bar.set_message(redact(phase).to_string());
        }
        drop(state);
        self.json(&Event::Phase { host, phase, elapsed_ms: elapsed.as_millis() as u64 }, 0);
        if inner.mode != Mode::Json
            && (inner.verbosity >= 1 || (slow && inner.mode == Mode::Plain && inner.verbosity >= 0))
        {
            let text = if inner.verbosity >= 1 { format!("[{}] {phase}", seconds(elapsed)) } else { phase.to_string() };
            self.err_line(host, &text);
        }
    }

    /// A remote command microctl runs on `host` (shown with `-vv`).
    pub fn command(&self, host: &str, command: &str) {
        if self.inner.verbosity < 2 {
            return;
        }
        self.json(&Event::Command { host, command }, 2);
        if self.inner.mode != Mode::Json {
            for line in command.lines() {
                self.err_line(host, &format!("$ {line}"));
            }
        }
    }

    /// An event of a command's domain on `host` (a converge change, a deploy step): its JSON
    /// object, its result lines, and the phase it starts, as the event says.
    pub fn event<E: HostEvent + ?Sized>(&self, host: &str, event: &E) {
        self.host_start(host);
        if self.inner.mode == Mode::Json
            && let Some(json) = event.json()
        {
            let mut value = serde_json::to_value(&json).expect("JSON types serialize");
            if let Some(object) = value.as_object_mut() {
                object.insert("host".into(), host.into());
            }
            self.json(&value, 0);
        }
        if let Some(text) = event.text() {
            for line in text.lines() {
                self.result_line(host, line, event.style(line));
            }
        }
        if let Some(phase) = event.phase() {
            self.phase(host, &phase, event.is_slow());
        }
    }

    /// The steps of host script `script` sent to `host` (shown with `-vv`): a readable
    /// summary, never its payload; redacted like everything printed.
    /// `steps` is only called with `-vv`.
    pub fn script(&self, host: &str, script: &str, steps: impl FnOnce() -> Vec<String>) {
        if self.inner.verbosity < 2 {
            return;
        }
        let steps = steps();
        let steps = &steps;
        self.json(&Event::Script { host, script, steps }, 2);
        if self.inner.mode != Mode::Json {
            self.err_line(host, &format!("script {script}:"));
            for step in steps {
                self.err_line(host, &format!("  {step}"));
            }
        }
    }

    /// A problem that does not fail the run: `warning: text` on stderr, or a `warning` JSON
    /// event (no host, no hint); printed even with `-q`.
    pub fn warning_line(&self, text: &str) {
        if self.inner.mode == Mode::Json {
            self.json(&Event::Warning { host: None, message: text, hint: None }, -1);
            return;
        }
        self.warning_text(text);
    }

    /// A host-dependent error shared by `hosts` (the same template error on many hosts),
    /// printed once, naming them (`host: a, b, c (3 hosts)`), on stdout like other host
    /// errors. Not in JSON mode: there each host's `host` object carries it. Report those
    /// hosts' `host_done` without `error_text`, so it is not printed again.
    pub fn shared_error(&self, err: &Error, hosts: &[String]) {
        if self.inner.mode == Mode::Json {
            return;
        }
        let mut err = err.duplicate();
        err.host = Some(super::host_list(hosts));
        let prefix = if self.inner.color_out { "\x1b[1;31merror\x1b[0m" } else { "error" };
        let text = format!("{prefix}: {}\n", redact(&err.to_string()));
        self.write_out(&text);
    }

    /// A problem that does not fail the command: on stderr (not with `-q`), or a `warning`
    /// event in JSON.
    pub fn warning(&self, warning: &Error) {
        if self.inner.verbosity < 0 && self.inner.mode != Mode::Json {
            return;
        }
        if self.inner.mode == Mode::Json {
            let message = warning.one_line();
            self.json(
                &Event::Warning { host: warning.host.as_deref(), message: &message, hint: warning.hint.as_deref() },
                -1,
            );
            return;
        }
        self.warning_text(&warning.to_string());
    }

    /// `warning: text` on stderr, above the spinners.
    fn warning_text(&self, text: &str) {
        let prefix = if self.inner.color_err { "\x1b[1;33mwarning\x1b[0m" } else { "warning" };
        self.write_err(format!("{prefix}: {}", redact(text)));
    }

    /// A line of the command's own about the whole run (not in JSON mode, not with `-q`).
    pub fn message(&self, text: &str) {
        if self.inner.mode != Mode::Json && self.inner.verbosity >= 0 {
            self.write_out(&format!("{}\n", redact(text)));
        }
    }

    /// Bytes of the remote command's output; printed in whole lines.
    pub fn output(&self, host: &str, stream: Stream, data: &[u8]) {
        let lines = {
            let mut state = self.inner.state.lock().expect("printer state");
            let h = state.host(host);
            let buf = if stream == Stream::Stdout { &mut h.out } else { &mut h.err };
            whole_lines(buf, data)
        };
        self.print_output(host, stream, &lines);
    }

    /// The host is done: its unterminated output is ended, its spinner goes, its error (if
    /// any) is printed, and its row kept for the recap.
    pub fn host_done<F: serde::Serialize>(&self, done: &HostDone<F>) {
        let (rest_out, rest_err, started) = {
            let mut state = self.inner.state.lock().expect("printer state");
            let h = state.host(&done.host);
            if let Some(bar) = h.bar.take() {
                bar.finish_and_clear();
                if let Some(m) = &self.inner.multi {
                    m.remove(&bar);
                }
            }
            h.phase = None;
            let rest = |buf: &mut Vec<u8>| {
                if buf.is_empty() {
                    return Vec::new();
                }
                buf.push(b'\n');
                whole_lines(buf, b"")
            };
            let (o, e) = (rest(&mut h.out), rest(&mut h.err));
            let started = h.started;
            state.rows.push((
                done.host.clone(),
                done.status,
                done.detail.clone(),
                Duration::from_millis(done.duration_ms),
            ));
            (o, e, started)
        };
        self.print_output(&done.host, Stream::Stdout, &rest_out);
        self.print_output(&done.host, Stream::Stderr, &rest_err);
        self.json(done, -1);
        if self.inner.mode == Mode::Json {
            return;
        }
        if let Some(text) = &done.error_text {
            for (i, line) in text.lines().enumerate() {
                let line = if i == 0 { format!("error: {line}") } else { line.to_string() };
                self.out_line(&done.host, &line);
            }
        }
        if self.inner.verbosity >= 1 {
            let detail = if done.detail.is_empty() { String::new() } else { format!(" ({})", done.detail) };
            let text = format!("[{}] done: {}{detail}", seconds(started.elapsed()), done.status.as_str());
            self.err_line(&done.host, &text);
        }
    }

    /// The run is done: the recap table (not with `-q`) and the summary line, or the JSON
    /// summary. `changed` is what the command counts as changed; `check` is converge
    /// `--check`. Returns the exit status: 1 when any host failed, else 3 when `check` found
    /// changes pending, else 0.
    pub fn finish(&self, changed: usize, check: bool) -> i32 {
        self.finish_as(changed, check, None)
    }

    /// `finish`, with the exit status `code` when given (2: an input error found before any
    /// host was contacted; the hosts it concerns were reported `failed`).
    pub fn finish_as(&self, changed: usize, check: bool, code: Option<i32>) -> i32 {
        if let Some((stop, handle)) = self.inner.heartbeat.lock().expect("heartbeat").take() {
            let _ = stop.send(());
            let _ = handle.join();
        }
        if let Some(m) = &self.inner.multi {
            let _ = m.clear();
        }
        let rows = std::mem::take(&mut self.inner.state.lock().expect("printer state").rows);
        let count = |f: &dyn Fn(Status) -> bool| rows.iter().filter(|r| f(r.1)).count();
        let summary = Summary {
            command: self.inner.command,
            hosts: rows.len(),
            ok: count(&|s| !s.is_failure()),
            failed: count(&|s| s == Status::Failed),
            unreachable: count(&|s| s == Status::Unreachable),
            changed,
            check,
            duration_ms: self.inner.started.elapsed().as_millis() as u64,
            exit_code: if let Some(code) = code {
                code
            } else if rows.iter().any(|r| r.1.is_failure()) {
                1
            } else if check && rows.iter().any(|r| r.1 == Status::Pending) {
                3
            } else {
                0
            },
        };
        if self.inner.mode == Mode::Json {
            super::JSON_SUMMARY_PRINTED.store(true, std::sync::atomic::Ordering::SeqCst);
            self.json(&Event::Summary(&summary), -1);
            return summary.exit_code;
        }
        let mut out = String::new();
        // `check` contacts no host: its errors say everything, a table of hosts would not.
        if self.inner.verbosity >= 0 && !rows.is_empty() && self.inner.command != "check" {
            let mut table = Table::new(&["host", "status", "detail", "duration"]);
            for (host, status, detail, duration) in &rows {
                table.row(vec![host.clone(), status.as_str().into(), detail.clone(), seconds(*duration)]);
            }
            out.push_str(&table.render());
        }
        out.push_str(&summary_line(&summary, count(&|s| s == Status::Skipped)));
        out.push('\n');
        let _ = std::io::stdout().lock().write_all(redact(&out).as_bytes());
        summary.exit_code
    }

    fn print_output(&self, host: &str, stream: Stream, lines: &[String]) {
        for line in lines {
            self.json(&Event::Output { host, stream, line }, 0);
            if self.inner.mode == Mode::Json || self.inner.verbosity < 0 {
                continue;
            }
            match stream {
                Stream::Stdout => self.out_line(host, line),
                Stream::Stderr => self.err_line(host, line),
            }
        }
    }

    /// Prints a JSON event when in JSON mode and `verbosity` allows (`-1`: always).
    fn json(&self, event: &impl serde::Serialize, min_verbosity: i8) {
        if self.inner.mode != Mode::Json || self.inner.verbosity < min_verbosity {
            return;
        }
        super::json_line(event);
    }

    /// A result line (not with `-q`, not in JSON mode), painted in `style` when stdout
    /// takes color.
    fn result_line(&self, host: &str, text: &str, style: Style) {
        if self.inner.mode != Mode::Json && self.inner.verbosity >= 0 {
            let text = redact(text);
            let shown = if self.inner.color_out { style.paint(&text) } else { std::borrow::Cow::Borrowed(&*text) };
            self.write_out(&format!("{}{shown}\n", self.prefix(host, self.inner.color_out)));
        }
    }

    fn prefix(&self, host: &str, color: bool) -> String {
        let index = self.inner.state.lock().expect("printer state").host(host).index;
        let name = format!("{host:<w$}", w = self.inner.width);
        if color { format!("\x1b[{}m{name}\x1b[0m | ", COLORS[index % COLORS.len()]) } else { format!("{name} | ") }
    }

    /// `host | text` on stdout (above the spinners).
    fn out_line(&self, host: &str, text: &str) {
        self.write_out(&format!("{}{}\n", self.prefix(host, self.inner.color_out), redact(text)));
    }

    /// Text (already redacted) on stdout, above the spinners.
    fn write_out(&self, line: &str) {
        let write = || {
            let _ = std::io::stdout().lock().write_all(line.as_bytes());
        };
        match &self.inner.multi {
            Some(m) => m.suspend(write),
            None => write(),
        }
    }

    /// `host | text` on stderr (above the spinners).
    fn err_line(&self, host: &str, text: &str) {
        self.write_err(format!("{}{}", self.prefix(host, self.inner.color_err), redact(text)));
    }

    /// A line (already redacted, without its newline) on stderr, above the spinners.
    fn write_err(&self, line: String) {
        match &self.inner.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    fn start_heartbeat(&self, every: Duration) {
        let (stop, wait) = mpsc::channel::<()>();
        let printer = self.clone();
        let tick = every.min(Duration::from_secs(1));
        let handle = thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(tick) {
                printer.beat(every);
            }
        });
        *self.inner.heartbeat.lock().expect("heartbeat") = Some((stop, handle));
    }

    /// Says, for each host whose phase has run `every` since it was last announced, that it
    /// still runs: a `still PHASE after Ns` line, or a `heartbeat` JSON event.
    fn beat(&self, every: Duration) {
        let due: Vec<(String, String, Duration)> = {
            let mut state = self.inner.state.lock().expect("printer state");
            let now = Instant::now();
            let mut due = Vec::new();
            for (host, h) in state.hosts.iter_mut() {
                if let Some((phase, since, last)) = &mut h.phase
                    && now - *last >= every
                {
                    *last = now;
                    let running = now - *since;
                    if self.inner.mode == Mode::Json {
                        // Under the lock: never after the host's own `host` event.
                        let ms = running.as_millis() as u64;
                        self.json(&Event::Heartbeat { host, phase, running_ms: ms }, 0);
                    } else {
                        due.push((host.clone(), phase.clone(), running));
                    }
                }
            }
            due.sort();
            due
        };
        for (host, phase, running) in due {
            self.err_line(&host, &format!("still {phase} after {}s", running.as_secs()));
        }
    }
}

impl State {
    fn host(&mut self, host: &str) -> &mut HostState {
        let index = self.hosts.len();
        self.hosts.entry(host.to_string()).or_insert_with(|| HostState {
            index,
            began: false,
            started: Instant::now(),
            bar: None,
            phase: None,
            out: vec![],
            err: vec![],
        })
    }
}

/// The heartbeat interval: MICROCTL_HEARTBEAT_SECS, else 30 s.
fn heartbeat_interval() -> Duration {
    std::env::var(HEARTBEAT_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(Duration::from_secs(30), Duration::from_secs)
}

/// `3 hosts: 2 ok, 4 changed, 1 failed, 0 unreachable in 1.20s` (no `changed` for exec;
/// `1 host: ...` for one).
fn summary_line(s: &Summary, skipped: usize) -> String {
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
    format!(
        "{}: {} in {}",
        super::count(s.hosts, "host"),
        parts.join(", "),
        seconds(Duration::from_millis(s.duration_ms))
    )
}

/// Appends `data` to `buf` and takes the whole lines out of it (without their newlines).
fn whole_lines(buf: &mut Vec<u8>, data: &[u8]) -> Vec<String> {
    buf.extend_from_slice(data);
    let Some(last_nl) = buf.iter().rposition(|b| *b == b'\n') else { return Vec::new() };
    let complete: Vec<u8> = buf.drain(..=last_nl).collect();
    complete[..complete.len() - 1]
        .split(|b| *b == b'\n')
        .map(|l| String::from_utf8_lossy(l.strip_suffix(b"\r").unwrap_or(l)).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_lines_leave_the_buffer() {
        let mut buf = Vec::new();
        assert_eq!(whole_lines(&mut buf, b"one\ntw"), vec!["one"]);
        assert_eq!(whole_lines(&mut buf, b"o\r\nthree\n"), vec!["two", "three"]);
        assert!(buf.is_empty());
        assert!(whole_lines(&mut buf, b"no newline").is_empty());
        assert_eq!(buf, b"no newline");
    }

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
        };
        assert_eq!(summary_line(&s, 0), "3 hosts: 3 ok, 0 failed, 0 unreachable in 1.20s");
        s.command = "converge";
        s.check = true;
        s.changed = 4;
        assert_eq!(
            summary_line(&s, 1),
            "3 hosts: 3 ok, 4 changes pending, 0 failed, 0 unreachable, 1 skipped in 1.20s"
        );
        s.command = "check";
        s.failed = 1;
        assert_eq!(summary_line(&s, 0), "3 hosts: 3 ok, 1 failed in 1.20s");
    }
}
