//! Running a plan on a host: one exec channel carries the whole conversation (lock, probe,
//! payload, apply), so a converge where nothing changed costs connect + auth + one exec, and
//! one with changes costs the same channel plus one more round trip for the payload.
//!
//! The session (bootstrap, lock, framing, markers, timeouts) is `crate::remote`'s; `host` is
//! converge's part of it on the host (probe + payload reader), `client` its client half (a
//! sans-IO state machine this file drives over the session), `apply_script` the apply script,
//! `payload` the tar stream that carries it with the changed files.

pub mod apply_script;
pub mod client;
pub mod event;
pub mod host;
mod payload;
pub mod steps;
pub mod users;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::inventory::Host;
use crate::plan::desired::Desired;
use crate::plan::{Plan, hashes, probe};
use crate::remote::{self, Session};
use crate::transport::Pool;

use client::{Client, End, Next};

/// How to run.
#[derive(Debug, Clone)]
pub struct ConvergeOptions {
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
    pub diffs: Vec<String>,
    pub error: Option<Error>,
    /// The facts this host was rendered with are not its own (`crate::facts`): nothing was
    /// applied; gather, render again and converge again.
    pub stale_facts: bool,
    /// The hash the host's live firewall table carries (empty: none), when its firewall is on.
    pub firewall_seen: Option<String>,
    /// Its firewall step failed (`crate::firewall`): the hosts behind it are left alone.
    pub firewall_failed: bool,
    pub channels_opened: u64,
    pub bytes_sent: u64,
    pub connect: Duration,
    pub probe: Duration,
    pub apply: Duration,
    pub total: Duration,
}

/// A host run as the command's own fields of its JSON `host` object (docs/output.md,
/// "JSON Lines", `converge`): counts, changes, handlers, diffs, timings.
#[derive(Debug, Serialize)]
pub struct Outcome<'a> {
    check: bool,
    /// Resources already as desired.
    ok: usize,
    /// Resources changed (with `--check`: pending).
    changed: usize,
    failed: usize,
    changes: &'a [crate::plan::Change],
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

/// Converges `host` to `desired` (rendered for it).
pub async fn converge_host(
    pool: &Pool,
    host: &Host,
    desired: &Desired,
    opts: &ConvergeOptions,
    progress: Progress<'_>,
) -> HostRun {
    let started = Instant::now();
    let mut run = HostRun { host: desired.host.clone(), ..Default::default() };
    if let Err(e) = run_host(pool, host, desired, opts, progress, &mut run).await {
        run.failed = run.failed.max(1);
        run.error = Some(e);
    }
    run.total = started.elapsed();
    run
}

async fn run_host(
    pool: &Pool,
    host: &Host,
    desired: &Desired,
    opts: &ConvergeOptions,
    progress: Progress<'_>,
    run: &mut HostRun,
) -> Result<()> {
    progress(Event::Phase(Phase::Connecting));
    let t = Instant::now();
    let conn = pool.connect(host).await?;
    run.connect = t.elapsed();
    let before = (conn.stats.channels_opened.load(Ordering::Relaxed), conn.stats.bytes_sent.load(Ordering::Relaxed));
    let result = talk(&conn, host, desired, opts, progress, run).await;
    run.channels_opened = conn.stats.channels_opened.load(Ordering::Relaxed) - before.0;
    run.bytes_sent = conn.stats.bytes_sent.load(Ordering::Relaxed) - before.1;
    result
}

async fn talk(
    conn: &std::sync::Arc<crate::transport::Connection>,
    host: &Host,
    desired: &Desired,
    opts: &ConvergeOptions,
    progress: Progress<'_>,
    run: &mut HostRun,
) -> Result<()> {
    progress(Event::Phase(Phase::Probing));
    let t = Instant::now();
    // The probe's `find` prints the state folder's record: checked here, before the host
    // writes anything there (`host.sh`).
    let spec = remote::Spec {
        client_checks_state: true,
        create_state: !opts.check, // --check creates nothing on the host, not even the folder
        ..remote::Spec::for_host(host, opts.what, opts.lock_timeout, opts.timeout)
    };
    let state_dir = spec.state_dir.clone();
    let body = host::body(&probe::script(desired, &state_dir, opts.diff));
    let mut session = Session::start(conn, spec, &body, |_| progress(Event::Phase(Phase::LockWait))).await?;
    session.phase("probe");
    let mut client = Client::new(desired, &state_dir, opts, session.nonce(), hashes::clock_now());
    let mut applying = None;
    let result = drive(&mut session, &mut client, progress, t, &mut applying, run).await;
    run.apply = applying.map(|t: Instant| t.elapsed()).unwrap_or_default();
    let c = std::mem::take(&mut client.run);
    (run.plan, run.changed, run.ok, run.failed, run.handlers_run, run.diffs, run.stale_facts) =
        (c.plan, c.changed, c.ok, c.failed, c.handlers_run, c.diffs, c.stale_facts);
    run.firewall_seen = c.firewall_seen;
    result
}

/// Runs the session as `client` says (see `client`): what it asks to send is sent, what it
/// reports goes to `progress`; the probe's and the apply's times go to `run`.
async fn drive(
    session: &mut Session,
    client: &mut Client<'_>,
    progress: Progress<'_>,
    probe_started: Instant,
    applying: &mut Option<Instant>,
    run: &mut HostRun,
) -> Result<()> {
    loop {
        let line = session.next().await?;
        match client.push(line)? {
            Next::Read => {}
            Next::Send(frame) => session.send(frame.as_bytes()).await?,
            Next::Refuse { frame, error } => {
                if frame {
                    let _ = session.send_frame(b"").await;
                }
                let _ = session.close_stdin().await;
                return Err(error);
            }
            Next::Stale => {
                run.probe = probe_started.elapsed();
                session.phase("finish");
                session.close_stdin().await?;
            }
            Next::Finish => {
                run.probe = probe_started.elapsed();
                session.phase("finish");
                session.send_frame(b"").await?;
                session.close_stdin().await?;
            }
            Next::Apply { payload, record_only } => {
                run.probe = probe_started.elapsed();
                progress(Event::Phase(if record_only { Phase::RecordingHashes } else { Phase::Applying }));
                *applying = Some(Instant::now());
                session.phase("payload upload");
                payload.send(session).await?;
                session.close_stdin().await?;
                session.phase("apply");
            }
            // Each step gets the whole timeout (an apt install may take minutes).
            Next::Begin { label, slow } => {
                progress(Event::Phase(Phase::Step { label: &label, slow }));
                session.phase(format!("apply step {label}"))
            }
            Next::Wait(phase) => {
                progress(Event::Phase(Phase::Wait(&phase)));
                session.phase(phase)
            }
            Next::Step { ok, text, handler } => {
                let state = if ok { ChangeState::Changed } else { ChangeState::Failed };
                progress(match &handler {
                    Some(handler) => Event::Handler { handler, state },
                    None => Event::Change { resource: &text, state, reason: None },
                })
            }
            Next::EarlyEnd => return Err(session.early_exit().await),
            Next::Exit => {
                return match client.exit(session.finish(|_| {}).await?) {
                    End::Done => Ok(()),
                    End::Failed(e) => Err(e),
                    End::Status(code) => Err(session.classify(Some(code))),
                };
            }
        }
    }
}
