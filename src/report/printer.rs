//! The one printer of multi-host commands (converge, deploy, exec, check): commands tell it
//! what happens as typed events; it keeps each host's state (when it started, its phase, its
//! unterminated output, its recap row) and hands what to show to one output mode, chosen once:
//!
//! - `terminal`: spinners per host (stderr is a TTY and not `-q`; indicatif);
//! - `lines`: plain `host | text` lines, and a heartbeat for long steps;
//! - `json_lines`: JSON Lines (`--json`, see `event`), a `heartbeat` event for long steps.
//!
//! - Streams, the same for every command: results on stdout (changes, diffs, the remote
//!   command's stdout, host errors, the recap table, the summary, JSON); progress and
//!   diagnostics on stderr (spinners, phases, heartbeats, `-vv` commands, the remote command's
//!   stderr). So `converge --diff | tee log` keeps the diffs in the log while the spinners stay
//!   on the terminal.
//! - Verbosity: `-q` prints only host errors and the summary line; `-v` each host's phases
//!   with their time since the host started, and its timings when done; `-vv` also the remote
//!   commands and a summary of the steps of each host script sent (`report::steps`).
//! - Without a terminal a step that may take long (lock wait, package install, build, health
//!   wait) is announced when it starts, and every 30 s while it runs (MICROCTL_HEARTBEAT_SECS),
//!   so a CI log never sits silent; with `--json` the same beat is a `heartbeat` event.
//! - Hosts on which no session could be had: their errors are printed at the end, before the
//!   recap, each failure once with the hosts it hit (`report::unreached`).
//! - Remote output is printed in whole lines; an unterminated last line is ended at host done,
//!   so it never glues onto what follows. Everything printed passes through the secrets
//!   redactor.
//! - The exit status is the command's (`event::exit_status`); the printer prints it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use super::Settings;
use super::event::{HostDone, Status, Stream, Summary, Unfinished};
use super::host_event::{HostEvent, Style};
use super::json_lines::JsonLines;
use super::lines::Lines;
use super::terminal::Terminal;
use super::text::{Text, TextMode};
use crate::error::Error;

/// The env var that overrides the heartbeat interval (seconds), for tests.
pub const HEARTBEAT_ENV: &str = "MICROCTL_HEARTBEAT_SECS";

/// A host's row in the recap: host, status, detail, duration.
pub(super) type Row = (String, Status, String, Duration);

/// A host's result as an output mode shows it.
pub(super) struct Done<'a> {
    pub host: &'a str,
    pub status: Status,
    pub detail: &'a str,
    pub error_text: Option<&'a str>,
    /// Since the host started.
    pub elapsed: Duration,
    /// Its JSON `host` object.
    pub json: &'a dyn Fn() -> Value,
}

/// How one output mode shows what the printer is told. Each mode decides alone what it prints
/// at which verbosity.
pub(super) trait Mode: Send + Sync {
    /// Work on `host` begins (once per host).
    fn host_start(&self, host: &str);
    /// `host` enters `phase`, `elapsed` after it started; `slow` when it may take long.
    fn phase(&self, host: &str, phase: &str, elapsed: Duration, slow: bool);
    /// A remote command microctl runs on `host`.
    fn command(&self, host: &str, command: &str);
    /// A domain event: its JSON object (made only when wanted), its result text and how each
    /// line of it is painted.
    fn event(&self, host: &str, json: &dyn Fn() -> Option<Value>, text: Option<&str>, style: &dyn Fn(&str) -> Style);
    /// The steps of host script `script` sent to `host` (made only with `-vv`).
    fn script(&self, host: &str, script: &str, steps: &dyn Fn() -> Vec<String>);
    /// A problem that does not fail the run; `always` prints it even with `-q`.
    fn warning(&self, host: Option<&str>, message: &str, hint: Option<&str>, text: &str, always: bool);
    /// An error shared by `hosts`, printed once.
    fn shared_error(&self, err: &Error, hosts: &[String]);
    /// An error printed after its host was done (`text` as `Error` displays it): one host's
    /// (`host | error: ...`), or, without `host`, one that names its hosts itself.
    fn host_error(&self, host: Option<&str>, text: &str);
    /// A line of the command's own about the whole run.
    fn message(&self, text: &str);
    /// A note of microctl's own (`microctl: text`), on stderr whatever the mode.
    fn notice(&self, text: &str) {
        super::notice(text);
    }
    /// One whole line of the remote command's output.
    fn output(&self, host: &str, stream: Stream, line: &str);
    /// The host is done.
    fn host_done(&self, done: &Done<'_>);
    /// Whether the printer keeps long phases alive (no terminal, not `-q`).
    fn wants_heartbeat(&self) -> bool;
    /// `phase` still runs on `host`, since `running`.
    fn heartbeat(&self, host: &str, phase: &str, running: Duration);
    /// The run was interrupted by `signal`; `hosts` were under way, each in its step.
    fn interrupted(&self, signal: &str, hosts: &[Unfinished]);
    /// The run is done: the recap rows and the summary.
    fn finish(&self, summary: &Summary, rows: &[Row]);
}

/// The printer of one run; cheap to clone into host tasks.
#[derive(Clone)]
pub struct Printer {
    inner: Arc<Inner>,
}

struct Inner {
    command: &'static str,
    mode: Box<dyn Mode>,
    started: Instant,
    state: Mutex<State>,
    heartbeat: Mutex<Option<(mpsc::Sender<()>, thread::JoinHandle<()>)>>,
}

#[derive(Default)]
struct State {
    hosts: HashMap<String, HostState>,
    rows: Vec<Row>,
    /// The hosts in the run's order.
    order: Vec<String>,
    /// The hosts on which no session could be had, and their errors: printed at the end.
    unreached: Vec<(String, Error)>,
    /// The signal that interrupted the run and its exit status (128 + its number).
    interrupted: Option<(&'static str, i32)>,
}

struct HostState {
    began: bool,
    done: bool,
    started: Instant,
    /// The current phase, when it started, when it was last announced.
    phase: Option<(String, Instant, Instant)>,
    out: Vec<u8>,
    err: Vec<u8>,
}

impl Printer {
    /// A printer for `command` over `hosts`, as `settings` say; `json` for `--json`.
    pub fn new(settings: &Settings, command: &'static str, hosts: &[String], json: bool) -> Printer {
        let stderr_tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let mode: Box<dyn Mode> = if json {
            Box::new(JsonLines::new(settings.verbosity))
        } else {
            let mut text = Text::new(settings, command, hosts);
            if stderr_tty && !settings.quiet() {
                let terminal = Terminal::new(&mut text);
                Box::new(TextMode::new(text, terminal))
            } else {
                Box::new(TextMode::new(text, Lines))
            }
        };
        let mut state = State { order: hosts.to_vec(), ..State::default() };
        for host in hosts {
            state.host(host);
        }
        let printer = Printer {
            inner: Arc::new(Inner {
                command,
                mode,
                started: Instant::now(),
                state: Mutex::new(state),
                heartbeat: Mutex::new(None),
            }),
        };
        if printer.inner.mode.wants_heartbeat() {
            printer.start_heartbeat(heartbeat_interval());
        }
        printer
    }

    /// Work on `host` begins (its spinner appears).
    pub fn host_start(&self, host: &str) {
        {
            let mut state = self.inner.state.lock().expect("printer state");
            let h = state.host(host);
            if h.began {
                return;
            }
            h.began = true;
            h.started = Instant::now();
        }
        self.inner.mode.host_start(host);
    }

    /// `host` enters `phase`; `slow` when it may take long (announced even without `-v`
    /// when there is no terminal, and kept alive by the heartbeat).
    pub fn phase(&self, host: &str, phase: &str, slow: bool) {
        self.host_start(host);
        let elapsed = {
            let mut state = self.inner.state.lock().expect("printer state");
            let h = state.host(host);
            let now = Instant::now();
            h.phase = Some((phase.to_string(), now, now));
            now - h.started
        };
        self.inner.mode.phase(host, phase, elapsed, slow);
    }

    /// A remote command microctl runs on `host` (shown with `-vv`).
    pub fn command(&self, host: &str, command: &str) {
        self.inner.mode.command(host, command);
    }

    /// An event of a command's domain on `host` (a converge change, a deploy step): its JSON
    /// object, its result lines, and the phase it starts, as the event says.
    pub fn event<E: HostEvent + ?Sized>(&self, host: &str, event: &E) {
        self.host_start(host);
        let json = || {
            let mut value = serde_json::to_value(event.json()?).expect("JSON types serialize");
            if let Some(object) = value.as_object_mut() {
                object.insert("host".into(), host.into());
            }
            Some(value)
        };
        let text = event.text();
        self.inner.mode.event(host, &json, text.as_deref(), &|line| event.style(line));
        if let Some(phase) = event.phase() {
            self.phase(host, &phase, event.is_slow());
        }
    }

    /// The steps of host script `script` sent to `host` (shown with `-vv`): a readable
    /// summary, never its payload; redacted like everything printed.
    /// `steps` is only called with `-vv`.
    pub fn script(&self, host: &str, script: &str, steps: impl Fn() -> Vec<String>) {
        self.inner.mode.script(host, script, &steps);
    }

    /// A problem that does not fail the run: `warning: text` on stderr, or a `warning` JSON
    /// event (no host, no hint); printed even with `-q`.
    pub fn warning_line(&self, text: &str) {
        self.inner.mode.warning(None, text, None, text, true);
    }

    /// A host-dependent error shared by `hosts` (the same template error on many hosts),
    /// printed once, naming them (`host: a, b, c (3 hosts)`), on stdout like other host
    /// errors. Not in JSON mode: there each host's `host` object carries it. Report those
    /// hosts' `host_done` without `error_text`, so it is not printed again.
    pub fn shared_error(&self, err: &Error, hosts: &[String]) {
        self.inner.mode.shared_error(err, hosts);
    }

    /// A problem that does not fail the command: on stderr (not with `-q`), or a `warning`
    /// event in JSON.
    pub fn warning(&self, warning: &Error) {
        let message = warning.one_line();
        let text = warning.to_string();
        self.inner.mode.warning(warning.host.as_deref(), &message, warning.hint.as_deref(), &text, false);
    }

    /// A line of the command's own about the whole run (not in JSON mode, not with `-q`).
    pub fn message(&self, text: &str) {
        self.inner.mode.message(text);
    }

    /// A note of microctl's own (a host key just recorded; `Pool::take_notes`): `microctl:
    /// text` on stderr in every mode (above the spinners), so `--json` on stdout stays clean.
    pub fn notice(&self, text: &str) {
        self.inner.mode.notice(text);
    }

    /// Bytes of the remote command's output; printed in whole lines.
    pub fn output(&self, host: &str, stream: Stream, data: &[u8]) {
        let lines = {
            let mut state = self.inner.state.lock().expect("printer state");
            let h = state.host(host);
            let buf = if stream == Stream::Stdout { &mut h.out } else { &mut h.err };
            whole_lines(buf, data)
        };
        for line in &lines {
            self.inner.mode.output(host, stream, line);
        }
    }

    /// The host is done: its unterminated output is ended, its spinner goes, its error (if
    /// any) is printed (at the end when no session could be had on it, grouped), and its row
    /// kept for the recap.
    pub fn host_done<F: Serialize>(&self, done: &HostDone<F>) {
        // Printed at the end, once for all the hosts the same failure hit.
        let deferred = done.unreached.as_ref().filter(|_| done.error_text.is_some());
        let (rest_out, rest_err, started) = {
            let mut state = self.inner.state.lock().expect("printer state");
            let h = state.host(&done.host);
            h.phase = None;
            h.done = true;
            let rest = |buf: &mut Vec<u8>| {
                if buf.is_empty() {
                    return Vec::new();
                }
                buf.push(b'\n');
                whole_lines(buf, b"")
            };
            let (o, e) = (rest(&mut h.out), rest(&mut h.err));
            let (started, began) = (h.started, h.began);
            // An interrupted host's detail is where it was stopped.
            let detail = match (&done.error, done.status) {
                (Some(e), Status::Interrupted) => interrupted_detail(e.task.as_deref()),
                _ => done.detail.clone(),
            };
            // (An interrupted host's work never returned its time: the printer's is used.)
            let duration = match done.status {
                Status::Interrupted if began => started.elapsed(),
                _ => Duration::from_millis(done.duration_ms),
            };
            state.rows.push((done.host.clone(), done.status, detail, duration));
            if let Some(err) = deferred {
                state.unreached.push((done.host.clone(), err.duplicate()));
            }
            (o, e, started)
        };
        for line in &rest_out {
            self.inner.mode.output(&done.host, Stream::Stdout, line);
        }
        for line in &rest_err {
            self.inner.mode.output(&done.host, Stream::Stderr, line);
        }
        let json = || serde_json::to_value(done).expect("JSON types serialize");
        self.inner.mode.host_done(&Done {
            host: &done.host,
            status: done.status,
            detail: &done.detail,
            error_text: done.error_text.as_deref().filter(|_| deferred.is_none()),
            elapsed: started.elapsed(),
            json: &json,
        });
    }

    /// The run is done: the recap table (not with `-q`) and the summary line, or the JSON
    /// summary. `changed` is what the command counts as changed; `check` is converge
    /// `--check`; `exit_code` the status the command computed from its results
    /// (`event::exit_status`), shown in the JSON summary.
    pub fn finish(&self, changed: usize, check: bool, exit_code: i32) {
        if let Some((stop, handle)) = self.inner.heartbeat.lock().expect("heartbeat").take() {
            let _ = stop.send(());
            let _ = handle.join();
        }
        let (rows, unreached, interrupted) = {
            let mut state = self.inner.state.lock().expect("printer state");
            let mut unreached = std::mem::take(&mut state.unreached);
            let place = |host: &str| state.order.iter().position(|h| h == host).unwrap_or(usize::MAX);
            unreached.sort_by_key(|(host, _)| place(host));
            (std::mem::take(&mut state.rows), unreached, state.interrupted)
        };
        for report in super::unreached::grouped(&unreached) {
            match report {
                super::unreached::Report::One { host, text } => self.inner.mode.host_error(Some(&host), &text),
                super::unreached::Report::Shared(err) => self.inner.mode.host_error(None, &err.to_string()),
            }
        }
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
            exit_code: interrupted.map_or(exit_code, |(_, code)| code),
            interrupted: interrupted.map(|(signal, _)| signal),
        };
        self.inner.mode.finish(&summary, &rows);
    }

    /// The run was interrupted by `signal` (exit status `code`): says so, naming the hosts
    /// under way and the step each is in, and returns them. The summary then carries the
    /// signal and `code`.
    pub fn interrupted(&self, signal: &'static str, code: i32) -> Vec<Unfinished> {
        let hosts = {
            let mut state = self.inner.state.lock().expect("printer state");
            state.interrupted = Some((signal, code));
            let mut hosts: Vec<Unfinished> = state
                .hosts
                .iter()
                .filter(|(_, h)| h.began && !h.done)
                .map(|(host, h)| Unfinished {
                    host: host.clone(),
                    step: h.phase.as_ref().map_or_else(|| "starting".to_string(), |p| p.0.clone()),
                })
                .collect();
            hosts.sort_by(|a, b| a.host.cmp(&b.host));
            hosts
        };
        self.inner.mode.interrupted(signal, &hosts);
        hosts
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
    /// still runs. Under the state lock: never after the host's own `host` event.
    fn beat(&self, every: Duration) {
        let mut state = self.inner.state.lock().expect("printer state");
        let now = Instant::now();
        let mut due = Vec::new();
        for (host, h) in state.hosts.iter_mut() {
            if let Some((phase, since, last)) = &mut h.phase
                && now - *last >= every
            {
                *last = now;
                due.push((host.clone(), phase.clone(), now - *since));
            }
        }
        due.sort();
        for (host, phase, running) in due {
            self.inner.mode.heartbeat(&host, &phase, running);
        }
    }
}

impl State {
    fn host(&mut self, host: &str) -> &mut HostState {
        self.hosts.entry(host.to_string()).or_insert_with(|| HostState {
            began: false,
            done: false,
            started: Instant::now(),
            phase: None,
            out: vec![],
            err: vec![],
        })
    }
}

/// The recap's detail of an interrupted host: the step it was stopped in.
fn interrupted_detail(step: Option<&str>) -> String {
    match step {
        Some(step) => format!("during {step}"),
        None => "not started".to_string(),
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
}
