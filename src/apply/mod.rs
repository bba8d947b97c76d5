//! Running a plan on a host: one exec channel carries the whole conversation (lock, probe,
//! payload, apply), so a converge where nothing changed costs connect + auth + one exec, and
//! one with changes costs the same channel plus one more round trip for the payload.
//!
//! `agent` builds the host script (lock + probe + payload reader), `script` the apply script,
//! `payload` the tar stream that carries it with the changed files.

pub mod agent;
mod payload;
pub mod script;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::plan::desired::Desired;
use crate::plan::probe::{self, Kind};
use crate::plan::{self, Action, Plan, diff};
use crate::transport::{Output, Pool, RemoteProcess};

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Probe and plan only; change nothing.
    pub check: bool,
    /// Compute unified diffs of changed text files.
    pub diff: bool,
    /// Color the diffs.
    pub color: bool,
    pub lock_timeout: Duration,
    /// `converge` or `deploy`, shown to whoever waits for the lock.
    pub what: &'static str,
}

/// What a host run reports as it goes.
pub enum Progress<'a> {
    Phase(&'a str),
    /// A change was applied (`true`) or failed (`false`).
    Step(bool, &'a str),
}

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
    pub channels_opened: u64,
    pub bytes_sent: u64,
    pub connect: Duration,
    pub probe: Duration,
    pub apply: Duration,
    pub total: Duration,
}

/// Converges one host to `desired`.
pub async fn converge_host(
    pool: &Pool,
    desired: &Desired,
    opts: &Options,
    progress: &(dyn Fn(Progress<'_>) + Sync),
) -> HostRun {
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
    progress: &(dyn Fn(Progress<'_>) + Sync),
    run: &mut HostRun,
) -> Result<()> {
    progress(Progress::Phase("connecting"));
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
    progress: &(dyn Fn(Progress<'_>) + Sync),
    run: &mut HostRun,
) -> Result<()> {
    let host = pool.inventory().host(&desired.host).expect("rendered host is in the inventory");
    progress(Progress::Phase("probing"));
    let t = Instant::now();
    let probe = probe::script(desired, opts.diff);
    let script =
        agent::host_script(&host.state_dir, &agent::lock_owner(opts.what), opts.lock_timeout.as_secs(), &probe);
    let mut process = conn.start(&agent::bootstrap(host.sudo_prefix())).await?;
    process.send(format!("{}\n{script}", script.len()).as_bytes()).await?;
    let mut stderr = Vec::new();
    let (out, found) = process.read_until_line(agent::PROBE_END, |o| collect_stderr(o, &mut stderr)).await?;
    if !found {
        let finished = process.finish(|o| collect_stderr(o, &mut stderr)).await?;
        return Err(early_exit(&desired.host, &out, &stderr, finished.exit_code));
    }
    let observed = probe::parse(&String::from_utf8_lossy(&out));
    run.probe = t.elapsed();
    let plan = plan::plan(desired, &observed);
    run.ok = plan.ok;
    if opts.diff {
        run.diffs = diffs(desired, &plan, &observed, opts.color);
    }

    if opts.check || plan.is_empty() {
        process.send(b"0\n").await?;
        process.close_stdin().await?;
        let end = process.finish(|o| collect_stderr(o, &mut stderr)).await?;
        if !end.success() {
            return Err(early_exit(&desired.host, &end.stdout, &stderr, end.exit_code));
        }
        run.changed = if opts.check { plan.changes.len() } else { 0 };
        run.plan = plan;
        return Ok(());
    }

    progress(Progress::Phase("applying"));
    let t = Instant::now();
    let tar = payload::build(desired, &plan)?;
    process.send(format!("{}\n", tar.len()).as_bytes()).await?;
    process.send(&tar).await?;
    process.close_stdin().await?;
    run.plan = plan;
    let result = follow_apply(&mut process, desired, run, progress, &mut stderr).await;
    run.apply = t.elapsed();
    result
}

/// Reads the apply script's markers until it ends, counting steps and naming a failure.
async fn follow_apply(
    process: &mut RemoteProcess,
    desired: &Desired,
    run: &mut HostRun,
    progress: &(dyn Fn(Progress<'_>) + Sync),
    stderr: &mut Vec<u8>,
) -> Result<()> {
    let mut pending = Vec::new();
    let mut failure: Option<(String, String)> = None;
    let mut output = String::new();
    let mut handle_line = |line: &str, run: &mut HostRun| {
        let fields: Vec<&str> = line.splitn(3, '\t').collect();
        match fields.as_slice() {
            ["@@done", id] => {
                if let Some(text) = step_text(&run.plan, id) {
                    if id.starts_with('h') {
                        run.handlers_run.push(text.trim_start_matches("handler ").to_string());
                    } else {
                        run.changed += 1;
                    }
                    progress(Progress::Step(true, &text));
                }
            }
            ["@@fail", id, rc] => {
                let text = step_text(&run.plan, id).unwrap_or_else(|| (*id).to_string());
                progress(Progress::Step(false, &text));
                failure = Some((text, (*rc).to_string()));
            }
            ["@@out", rest] => {
                output.push_str(rest);
                output.push('\n');
            }
            _ => {}
        }
    };
    let end = process
        .finish(|o| match o {
            Output::Stdout(d) => {
                pending.extend_from_slice(d);
                while let Some(nl) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=nl).collect();
                    handle_line(String::from_utf8_lossy(&line).trim_end_matches('\n'), run);
                }
            }
            Output::Stderr(d) => stderr.extend_from_slice(d),
        })
        .await?;
    if let Some((task, rc)) = failure {
        run.failed = 1;
        return Err(Error::new(ErrorKind::Remote, format!("{task} failed (exit {rc})"))
            .host(&desired.host)
            .task(task)
            .detail(output)
            .hint("fix the cause shown above and run converge again; changes already made stay, pending handlers run next time"));
    }
    if !end.success() {
        return Err(early_exit(&desired.host, &end.stdout, stderr, end.exit_code));
    }
    Ok(())
}

/// The description of step `id` (`3`, `h0`, `pending`, `daemon-reload`).
fn step_text(plan: &Plan, id: &str) -> Option<String> {
    if let Some(h) = id.strip_prefix('h') {
        return plan.handlers.get(h.parse::<usize>().ok()?).map(|n| format!("handler {n}"));
    }
    let change = plan.changes.get(id.parse::<usize>().ok()?)?;
    Some(format!("{} ({})", change.resource, change.reason))
}

fn collect_stderr(o: Output<'_>, into: &mut Vec<u8>) {
    if let Output::Stderr(d) = o {
        into.extend_from_slice(d);
    }
}

/// The host script stopped before it should have: explain why.
fn early_exit(host: &str, stdout: &[u8], stderr: &[u8], code: Option<u32>) -> Error {
    let stdout = String::from_utf8_lossy(stdout);
    let stderr = String::from_utf8_lossy(stderr);
    if code == Some(agent::LOCKED_EXIT) {
        let holder = stdout
            .lines()
            .find_map(|l| l.strip_prefix("@@locked\t"))
            .filter(|h| !h.is_empty())
            .unwrap_or("a run that has not named itself yet")
            .to_string();
        return Error::new(ErrorKind::Locked, format!("host {host} is locked by {holder}"))
            .host(host)
            .hint("another converge or deploy is running on this host; wait for it, or raise --lock-timeout");
    }
    if stderr.contains("sudo:") {
        return Error::new(ErrorKind::Remote, format!("sudo failed on {host}"))
            .host(host)
            .detail(stderr.into_owned())
            .hint("the login user needs passwordless sudo (NOPASSWD), or log in as root, or set `become = false`");
    }
    let error_line = stdout.lines().find_map(|l| l.strip_prefix("@@error ")).map(str::to_string);
    Error::new(
        ErrorKind::Remote,
        error_line.unwrap_or_else(|| {
            format!("the host script on {host} exited with {}", code.map_or("no status".into(), |c| c.to_string()))
        }),
    )
    .host(host)
    .detail(format!("{stdout}{stderr}"))
}

/// Unified diffs for the files the plan writes (sensitive ones only named).
fn diffs(desired: &Desired, plan: &Plan, observed: &probe::Observed, color: bool) -> Vec<String> {
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
            (_, Some(c)) => c.clone(),
            _ => {
                out.push(format!("--- {0}\n+++ {0}\n(binary or large file changed)\n", f.dest));
                continue;
            }
        };
        match diff::unified(&f.dest, &old, &f.content, color) {
            Some(d) => out.push(d),
            None => out.push(format!("--- {0}\n+++ {0}\n(binary file changed)\n", f.dest)),
        }
    }
    out
}
