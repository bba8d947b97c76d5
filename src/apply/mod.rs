//! Running a plan on a host: one exec channel carries the whole conversation (lock, probe,
//! payload, apply), so a converge where nothing changed costs connect + auth + one exec, and
//! one with changes costs the same channel plus one more round trip for the payload.
//!
//! The session (bootstrap, lock, framing, markers, timeouts) is `crate::remote`'s; `agent` is
//! converge's part of it (probe + payload reader), `script` the apply script, `payload` the
//! tar stream that carries it with the changed files.

pub mod agent;
pub mod event;
mod payload;
pub mod script;
pub mod steps;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::plan::desired::Desired;
use crate::plan::probe::{self, Kind};
use crate::plan::{self, Action, Plan, diff, hashes};
use crate::remote::{self, Line, Marker, Session};
use crate::transport::Pool;

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Probe and plan only; change nothing.
    pub check: bool,
    /// Compute unified diffs of changed text files.
    pub diff: bool,
    pub lock_timeout: Duration,
    /// `--timeout`: the bound of each session phase, for every host (else each host's own).
    pub timeout: Option<Duration>,
    /// `converge` or `deploy`, shown to whoever waits for the lock.
    pub what: &'static str,
}

pub use event::{ChangeState, Event, Phase};

/// Receives a host run's events as it goes.
pub type Progress<'p> = &'p (dyn Fn(Event<'_>) + Sync);

/// The outcome of one host.
#[derive(Debug, Default)]
pub struct HostRun {
    pub host: String,
    pub plan: Plan,
    /// Changes applied (in check mode: changes pending).
    pub changed: usize,
    pub ok: usize,
    pub failed: usize,
    pub handlers_run: Vec<String>,
    /// Unified diffs (`--diff`), uncolored.
    pub diffs: Vec<String>,
    pub error: Option<Error>,
    pub channels_opened: u64,
    pub bytes_sent: u64,
    pub connect: Duration,
    pub probe: Duration,
    pub apply: Duration,
    pub total: Duration,
}

/// A host run as the command's own fields of its JSON `host` object (README "JSON Lines",
/// `converge`): counts, changes, handlers, diffs, timings.
#[derive(Debug, Serialize)]
pub struct Outcome<'a> {
    check: bool,
    /// Resources already as desired.
    ok: usize,
    /// Resources changed (with `--check`: pending).
    changed: usize,
    failed: usize,
    changes: &'a [plan::Change],
    /// Handlers run (with `--check`: that would run).
    handlers: &'a [String],
    pending_handlers: &'a [String],
    diffs: &'a [String],
    channels_opened: u64,
    bytes_sent: u64,
    timings: Timings,
}

#[derive(Debug, Serialize)]
struct Timings {
    connect_ms: u64,
    probe_ms: u64,
    apply_ms: u64,
    total_ms: u64,
}

impl HostRun {
    /// The run's JSON fields; `check` for `--check` (the handlers are then those that would run).
    pub fn outcome(&self, check: bool) -> Outcome<'_> {
        let ms = |d: Duration| d.as_millis() as u64;
        Outcome {
            check,
            ok: self.ok,
            changed: self.changed,
            failed: self.failed,
            changes: &self.plan.changes,
            handlers: if check { &self.plan.handlers } else { &self.handlers_run },
            pending_handlers: &self.plan.pending,
            diffs: &self.diffs,
            channels_opened: self.channels_opened,
            bytes_sent: self.bytes_sent,
            timings: Timings {
                connect_ms: ms(self.connect),
                probe_ms: ms(self.probe),
                apply_ms: ms(self.apply),
                total_ms: ms(self.total),
            },
        }
    }
}

/// Converges one host to `desired`.
pub async fn converge_host(pool: &Pool, desired: &Desired, opts: &Options, progress: Progress<'_>) -> HostRun {
    let started = Instant::now();
    let mut run = HostRun { host: desired.host.clone(), ..Default::default() };
    if let Err(e) = run_host(pool, desired, opts, progress, &mut run).await {
        run.failed = run.failed.max(1);
        run.error = Some(e);
    }
    run.total = started.elapsed();
    run
}

async fn run_host(
    pool: &Pool,
    desired: &Desired,
    opts: &Options,
    progress: Progress<'_>,
    run: &mut HostRun,
) -> Result<()> {
    progress(Event::Phase(Phase::Connecting));
    let t = Instant::now();
    let conn = pool.connect(&desired.host).await?;
    run.connect = t.elapsed();
    let before = (conn.stats.channels_opened.load(Ordering::Relaxed), conn.stats.bytes_sent.load(Ordering::Relaxed));
    let result = talk(&conn, pool, desired, opts, progress, run).await;
    run.channels_opened = conn.stats.channels_opened.load(Ordering::Relaxed) - before.0;
    run.bytes_sent = conn.stats.bytes_sent.load(Ordering::Relaxed) - before.1;
    result
}

async fn talk(
    conn: &std::sync::Arc<crate::transport::Connection>,
    pool: &Pool,
    desired: &Desired,
    opts: &Options,
    progress: Progress<'_>,
    run: &mut HostRun,
) -> Result<()> {
    let host = pool.inventory().host(&desired.host).expect("rendered host is in the inventory");
    progress(Event::Phase(Phase::Probing));
    let t = Instant::now();
    // The probe's `find` prints the state folder's record: checked here, before the host
    // writes anything there (`host.sh`).
    let spec = remote::Spec {
        client_checks_state: true,
        ..remote::Spec::for_host(host, opts.what, opts.lock_timeout, opts.timeout)
    };
    let state_dir = spec.state_dir.clone();
    let body = agent::body(&probe::script(desired, &state_dir, opts.diff));
    let mut session = Session::start(conn, spec, &body, |_| progress(Event::Phase(Phase::LockWait))).await?;
    session.phase("probe");
    let out = read_probe(&mut session).await?;
    let mut observed = probe::parse(&out).map_err(|e| unparsed(desired, e))?;
    if !observed.state_folder_ok(&state_dir) {
        // Its stdin ends: the host script exits, having written nothing.
        let _ = session.close_stdin().await;
        return Err(remote::state_refused(&desired.host, &state_dir));
    }
    // Root or the login user (the folder's owner) alone may write the folders above it.
    observed.login_uid = Some(observed.path(&state_dir).uid);
    if let Err(r) = plan::trust::state_folder(&observed, &state_dir) {
        let _ = session.close_stdin().await;
        return Err(remote::state_folder_exposed(&desired.host, &state_dir, &r.folder, &r.why));
    }
    // Files the probe left to the hash record that it cannot vouch for: hashed now, in one
    // more round trip (rare: a file the record does not list, changed at its very time...).
    let now = hashes::clock_now();
    let unknown = hashes::vouch(desired, &state_dir, &mut observed, now);
    if !unknown.is_empty() {
        session.send(hash_frame(&unknown).as_bytes()).await?;
        let out = read_probe(&mut session).await?;
        probe::parse_hashes(&out, &unknown, &mut observed).map_err(|e| unparsed(desired, e))?;
    }
    run.probe = t.elapsed();
    let plan = plan::plan(desired, &observed);
    run.ok = plan.ok;
    if !plan.refused.is_empty() {
        let _ = session.send_frame(b"").await;
        let _ = session.close_stdin().await;
        return Err(refused(desired, &plan.refused));
    }
    if opts.diff {
        run.diffs = diffs(desired, &plan, &observed);
    }

    // Nothing to change, but a file's hash was read now: the hash record is written again
    // (by a payload whose apply script has no step but that), so the next no-op reads none.
    let record_only = plan.is_empty() && !opts.check && hashes::out_of_date(desired, &state_dir, &observed, now);
    if opts.check || (plan.is_empty() && !record_only) {
        session.phase("finish");
        session.send_frame(b"").await?;
        session.close_stdin().await?;
        let code = session.finish(|_| {}).await?;
        if code != 0 {
            return Err(session.classify(Some(code)));
        }
        run.changed = if opts.check { plan.changes.len() } else { 0 };
        run.plan = plan;
        return Ok(());
    }

    progress(Event::Phase(if record_only { Phase::RecordingHashes } else { Phase::Applying }));
    let t = Instant::now();
    session.phase("payload upload");
    let payload = payload::build(desired, &plan, session.nonce())?;
    payload.send(&mut session).await?;
    session.close_stdin().await?;
    run.plan = plan;
    session.phase("apply");
    let result = follow_apply(&mut session, desired, run, progress).await;
    run.apply = t.elapsed();
    result
}

/// The probe's output (or a `hash` frame's), up to its `probe-end` marker.
async fn read_probe(session: &mut Session) -> Result<String> {
    let mut out = String::new();
    loop {
        match session.next().await? {
            Some(Line::Data(l)) => {
                out.push_str(&l);
                out.push('\n');
            }
            Some(Line::Marker(Marker::ProbeEnd)) => return Ok(out),
            Some(Line::Marker(_)) => {}
            None => return Err(session.early_exit().await),
        }
    }
}

fn unparsed(desired: &Desired, e: String) -> Error {
    Error::new(ErrorKind::Remote, format!("the probe's output does not parse: {e}"))
        .host(&desired.host)
        .task("probe")
        .hint("something on the host printed into the probe (or a tool printed what microctl does not know); nothing was changed")
}

/// The error of a host whose plan would act in folders other users can write.
fn refused(desired: &Desired, what: &[String]) -> Error {
    Error::new(
        ErrorKind::Remote,
        format!("refusing to act as root in folders a user other than root can write on {}", desired.host),
    )
    .host(&desired.host)
    .task("plan")
    .detail(what.join("\n"))
    .hint("nothing was written on the host; make each folder named root's and not group/other-writable (chown root: FOLDER; chmod go-w FOLDER), or manage the path elsewhere (README: security)")
}

/// A `hash` frame for `host.sh`: `hash`, one path per line, an empty line (managed paths
/// hold no control characters).
pub(crate) fn hash_frame(paths: &[String]) -> String {
    let mut frame = String::from("hash\n");
    for p in paths {
        frame.push_str(p);
        frame.push('\n');
    }
    frame.push('\n');
    frame
}

/// Reads the apply script's markers until it ends, counting steps and naming a failure.
async fn follow_apply(
    session: &mut Session,
    desired: &Desired,
    run: &mut HostRun,
    progress: Progress<'_>,
) -> Result<()> {
    let mut failure: Option<(String, String)> = None;
    // The file whose `validate` refused its new content (the failing step was that check).
    let mut refused: Option<usize> = None;
    let mut output = String::new();
    while let Some(line) = session.next().await? {
        match line {
            // Each step gets the whole timeout (an apt install may take minutes).
            Line::Marker(Marker::Begin(id)) => {
                let slow = event::step_is_slow(&run.plan, &id);
                let label = step_label(&run.plan, id);
                progress(Event::Phase(Phase::Step { label: &label, slow }));
                session.phase(format!("apply step {label}"))
            }
            Line::Marker(Marker::Passed(id)) => {
                if let Some(handler) = step_handler(&run.plan, &id) {
                    progress(Event::Handler { handler, state: ChangeState::Changed });
                    run.handlers_run.push(handler.to_string());
                } else if let Some(text) = step_text(&run.plan, &id) {
                    run.changed += 1;
                    progress(Event::Change { resource: &text, state: ChangeState::Changed, reason: None });
                }
            }
            Line::Marker(Marker::Fail { step, code }) => {
                refused = validated_file(desired, &run.plan, &step);
                let handler = step_handler(&run.plan, &step);
                let text = step_label(&run.plan, step);
                progress(match handler {
                    Some(handler) => Event::Handler { handler, state: ChangeState::Failed },
                    None => Event::Change { resource: &text, state: ChangeState::Failed, reason: None },
                });
                failure = Some((text, code.unwrap_or_else(|| "?".into())));
            }
            Line::Marker(Marker::Out(rest)) => {
                output.push_str(&rest);
                output.push('\n');
            }
            _ => {}
        }
    }
    let code = session.finish(|_| {}).await?;
    if let (Some((task, rc)), Some(i)) = (&failure, refused) {
        run.failed = 1;
        let f = &desired.files[i];
        let said = if output.trim().is_empty() { "(the validator printed nothing)\n".to_string() } else { output };
        return Err(Error::new(
            ErrorKind::Remote,
            format!("validate refused the new content of {} (exit {rc}); the live file is unchanged", f.dest),
        )
        .host(&desired.host)
        .task(task.clone())
        .detail(said)
        .hint(format!(
            "the check was `{}` on the new content (its output is above); fix the template, the vars or the check, and run converge again",
            f.validate.as_deref().unwrap_or_default()
        )));
    }
    if let Some((task, rc)) = failure {
        run.failed = 1;
        return Err(Error::new(ErrorKind::Remote, format!("{task} failed (exit {rc})"))
            .host(&desired.host)
            .task(task)
            .detail(output)
            .hint("fix the cause shown above and run converge again; changes already made stay, pending handlers run next time"));
    }
    if code != 0 {
        return Err(session.classify(Some(code)));
    }
    Ok(())
}

/// The file whose `validate` step `id` is: a file's change has a step of its own only for its
/// validate (its content is written by the `stage` step).
fn validated_file(desired: &Desired, plan: &Plan, id: &str) -> Option<usize> {
    let change = plan.changes.get(id.parse::<usize>().ok()?)?;
    match change.action {
        Action::WriteFile(i) if desired.files[i].validate.is_some() => Some(i),
        _ => None,
    }
}

/// How a step is named in a phase or a failure: its change, or what the fixed steps do.
fn step_label(plan: &Plan, id: String) -> String {
    match id.as_str() {
        "stage" | "stage-apt" => "staging the changed files".into(),
        "rename" | "rename-apt" => "renaming the staged files into place".into(),
        "pending" => "recording the handlers to run".into(),
        _ => step_text(plan, &id).unwrap_or(id),
    }
}

/// The handler step `id` (`h0`) runs, if it is one.
fn step_handler<'p>(plan: &'p Plan, id: &str) -> Option<&'p str> {
    plan.handlers.get(id.strip_prefix('h')?.parse::<usize>().ok()?).map(String::as_str)
}

/// The description of change or handler step `id` (`3`, `h0`).
fn step_text(plan: &Plan, id: &str) -> Option<String> {
    if let Some(h) = id.strip_prefix('h') {
        return plan.handlers.get(h.parse::<usize>().ok()?).map(|n| format!("handler {n}"));
    }
    let change = plan.changes.get(id.parse::<usize>().ok()?)?;
    Some(format!("{} ({})", change.resource, change.reason))
}

/// Unified diffs for the files the plan writes (sensitive ones only named).
fn diffs(desired: &Desired, plan: &Plan, observed: &probe::Observed) -> Vec<String> {
    let mut out = Vec::new();
    for change in &plan.changes {
        let Action::WriteFile(i) = change.action else { continue };
        let f = &desired.files[i];
        if f.sensitive {
            out.push(format!("--- {0}\n+++ {0}\n(sensitive: content not shown)\n", f.dest));
            continue;
        }
        let state = observed.path(&f.dest);
        let old = match (&state.kind, &state.content) {
            (Kind::Missing, _) => Vec::new(),
            // Never what a symlink (or anything but a plain file) points at.
            (Kind::File, Some(c)) if c.len() <= probe::DIFF_LIMIT => c.clone(),
            (Kind::Link, _) => {
                out.push(format!("--- {0}\n+++ {0}\n(a symlink now: what it points at is not shown)\n", f.dest));
                continue;
            }
            _ => {
                out.push(format!("--- {0}\n+++ {0}\n(binary or large file changed)\n", f.dest));
                continue;
            }
        };
        match diff::unified(&f.dest, &old, &f.content) {
            Some(d) => out.push(d),
            None => out.push(format!("--- {0}\n+++ {0}\n(binary file changed)\n", f.dest)),
        }
    }
    out
}
