//! Deploying an app: atomic releases, a health check through the SSH chain, automatic
//! rollback, guaranteed by a confirm watchdog on the host. Hosts go in batches (default one at
//! a time), each drained from nginx while it is deployed when others keep serving; the first
//! failure stops the rest, which stay on their old release.
//!
//! `config` reads `[deploy.NAME]`, `plan` turns it into one plan per host (rendered, checked,
//! before any host is contacted), `source` packs a local folder, `script` is what runs on the
//! host (holding the host lock, waiting for our verdict, the watchdog armed), `ledger` reads
//! the host's release ledger, `envfile` reads the env file as data, `drain` takes a host out
//! of nginx's upstream, `health` checks over SSH tunnels.

pub mod config;
pub mod deploy_script;
pub mod drain;
pub mod envfile;
pub mod event;
pub mod health;
pub mod ledger;
pub mod plan;
pub mod source;
pub mod steps;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::fanout::Fanout;
use crate::inventory::Host;
use crate::remote::{self, Line, Marker, Session};
use crate::report::event::Status;
use crate::transport::Pool;
use deploy_script::{HostSettings, Target};
use health::HealthCheck;

/// One host's deploy, rendered and ready.
#[derive(Debug, Clone)]
pub struct HostPlan {
    pub host: Arc<Host>,
    pub settings: HostSettings,
    pub target: Target,
    /// The app as this host serves it: checked through a tunnel on the host's own connection.
    pub health_address: String,
    pub health_port: u16,
    /// Hosts (e.g. nginx on web) to check through after the app itself is healthy.
    pub via: Vec<Arc<Host>>,
    /// The host's `address:port` in nginx's upstream on the `via` hosts, when it is drained
    /// while it is deployed (a rolling deploy: other hosts stay in rotation).
    pub drain: Option<String>,
}

/// The site as a `via` host's nginx serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViaSite {
    pub https: bool,
    pub port: u16,
    /// `Host:` and TLS server name.
    pub name: String,
}

/// What the whole deploy shares.
#[derive(Debug, Clone)]
pub struct Shared {
    pub health_path: String,
    pub health_status: u16,
    pub health_timeout: Duration,
    /// How the site is checked through each `via` host (same order as [`HostPlan::via`]).
    pub via_sites: Vec<ViaSite>,
    /// What HTTPS checks trust (the system's roots, or `health_ca_file`).
    pub tls: Option<health::Tls>,
    pub lock_timeout: Duration,
    /// `--timeout`: the bound of each session phase, for every host (else each host's own).
    pub timeout: Option<Duration>,
    pub batch: usize,
    /// The release tar, for uploaded sources.
    pub payload: Option<Arc<Vec<u8>>>,
    /// The nginx site holding the upstream, and how to check and reload it, for draining.
    pub drain_file: String,
    pub drain_reload: String,
}

/// Progress events, for live output: typed, rendered by the printer (`report::HostEvent`).
pub use event::DeployEvent as Event;

/// Receives `(host, event)` as hosts progress.
pub type EventSink = Arc<dyn Fn(&str, Event<'_>) + Send + Sync>;

/// The outcome of one host; serialized, it is the command's own fields of its JSON `host`
/// object (docs/output.md, "JSON Lines", `deploy`).
#[derive(Debug, Default, serde::Serialize)]
pub struct HostDeploy {
    #[serde(skip)]
    pub host: String,
    pub previous: Option<String>,
    pub release: Option<String>,
    pub health: Vec<String>,
    pub rolled_back: bool,
    /// Not attempted: an earlier batch failed.
    pub skipped: bool,
    #[serde(skip)]
    pub error: Option<Error>,
    #[serde(skip)]
    pub duration: Duration,
}

impl HostDeploy {
    /// How the host ended: skipped, failed (by its error's class), or changed (a new release).
    pub fn status(&self) -> Status {
        match (&self.error, self.skipped) {
            (_, true) => Status::Skipped,
            (Some(e), _) => Status::of_error(e),
            (None, _) => Status::Changed,
        }
    }

    /// The recap's detail: the release, whether it was rolled back, or why it was not tried.
    pub fn detail(&self) -> String {
        let release = self.release.clone().unwrap_or_else(|| "-".into());
        match (&self.error, self.skipped, self.rolled_back) {
            (_, true, _) => "not attempted: an earlier host failed".to_string(),
            (Some(_), _, true) => format!("{release}, rolled back"),
            _ => release,
        }
    }
}

/// What the verdict needs to reach the host before its watchdog's deadline.
const CONFIRM_MARGIN: Duration = Duration::from_secs(3);

/// Deploys `plans` in batches (through the one fan-out runner), stopping after the first batch
/// with a failure: the hosts after it are reported skipped.
pub async fn run(fan: &Fanout, plans: Vec<HostPlan>, shared: Arc<Shared>, on_event: EventSink) -> Vec<HostDeploy> {
    let mut results = Vec::new();
    let mut failed = false;
    let out_of_rotation = Arc::new(OutOfRotation::default());
    for batch in plans.chunks(shared.batch) {
        if failed {
            results.extend(batch.iter().map(|p| HostDeploy {
                host: p.host.name.clone(),
                skipped: true,
                ..Default::default()
            }));
            continue;
        }
        let outcomes = fan
            .each(batch.to_vec(), |plan| {
                let (pool, shared, on_event) = (fan.pool().clone(), shared.clone(), on_event.clone());
                let out_of_rotation = out_of_rotation.clone();
                async move { deploy_host(&pool, &plan, &shared, &*on_event, &out_of_rotation).await }
            })
            .await;
        for (plan, outcome) in batch.iter().zip(outcomes) {
            let mut r = outcome.unwrap_or_else(|e| HostDeploy {
                host: plan.host.name.clone(),
                error: Some(e),
                ..Default::default()
            });
            // Interrupted (Ctrl-C) while out of nginx's rotation and still on its live release:
            // back in, as the host task would have done. A switched host is left out: its
            // watchdog rolls the unconfirmed release back (the next deploy or converge of the
            // via host puts it back).
            if crate::fanout::interrupted_exit().is_some()
                && out_of_rotation.unswitched(&plan.host)
                && let Err(e) = set_drain(fan.pool(), plan, &shared, false, &*on_event).await
            {
                let error = r
                    .error
                    .take()
                    .map(|i| i.detail(format!("and it is still out of nginx's rotation: {}", e.one_line())));
                r.error = error.or(Some(e));
            }
            failed |= r.error.is_some();
            results.push(r);
        }
    }
    results
}

/// The hosts taken out of nginx's rotation and not yet put back, each with whether it has
/// switched to its new release since: what an interrupted run (whose host tasks are
/// cancelled mid-step) still has to put back.
#[derive(Default)]
struct OutOfRotation(std::sync::Mutex<Vec<(Arc<Host>, bool)>>);

impl OutOfRotation {
    fn hosts(&self) -> std::sync::MutexGuard<'_, Vec<(Arc<Host>, bool)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Being taken out (from before its drain session starts: it may be cut off halfway).
    fn taken_out(&self, host: &Arc<Host>) {
        let mut hosts = self.hosts();
        if !hosts.iter().any(|(h, _)| Arc::ptr_eq(h, host)) {
            hosts.push((host.clone(), false));
        }
    }

    fn switched(&self, host: &Arc<Host>) {
        self.hosts().iter_mut().filter(|(h, _)| Arc::ptr_eq(h, host)).for_each(|(_, switched)| *switched = true);
    }

    fn put_back(&self, host: &Arc<Host>) {
        self.hosts().retain(|(h, _)| !Arc::ptr_eq(h, host));
    }

    /// Out of rotation and still on its live release.
    fn unswitched(&self, host: &Arc<Host>) -> bool {
        self.hosts().iter().any(|(h, switched)| Arc::ptr_eq(h, host) && !switched)
    }
}

impl AsRef<Host> for HostPlan {
    fn as_ref(&self) -> &Host {
        &self.host
    }
}

async fn deploy_host(
    pool: &Pool,
    plan: &HostPlan,
    shared: &Shared,
    on_event: &(dyn Fn(&str, Event<'_>) + Send + Sync),
    out_of_rotation: &OutOfRotation,
) -> HostDeploy {
    let started = Instant::now();
    let mut out = HostDeploy { host: plan.host.name.clone(), ..Default::default() };
    if plan.drain.is_some() {
        out_of_rotation.taken_out(&plan.host);
    }
    let steps = match set_drain(pool, plan, shared, true, on_event).await {
        Ok(()) => deploy_steps(pool, plan, shared, on_event, &mut out, out_of_rotation).await,
        Err(e) => Err(e),
    };
    // Back in rotation whatever happened (a no-op when the health check already did it).
    let back = set_drain(pool, plan, shared, false, on_event).await;
    if back.is_ok() {
        out_of_rotation.put_back(&plan.host);
    }
    if let Err(e) = steps.and(back) {
        out.error = Some(e);
    }
    out.duration = started.elapsed();
    out
}

/// The phase a build-and-restart marker starts: each build step, the cache build, the switch
/// and the restart get the whole session timeout of their own (as converge's steps do).
fn phase_of(m: &Marker) -> Option<String> {
    match m {
        Marker::Step(s) => Some(format!("build step `{s}`")),
        Marker::Cache { state, key } if state == "building" => Some(format!("cache build {key}")),
        Marker::Armed(_) => Some("switch".into()),
        Marker::Switched(r) => Some(format!("restart on {r}")),
        _ => None,
    }
}

async fn deploy_steps(
    pool: &Pool,
    plan: &HostPlan,
    shared: &Shared,
    on_event: &(dyn Fn(&str, Event<'_>) + Send + Sync),
    out: &mut HostDeploy,
    out_of_rotation: &OutOfRotation,
) -> Result<()> {
    let conn = pool.connect(&plan.host).await?;
    let what = if matches!(plan.target, Target::Previous { .. }) { "deploy --rollback" } else { "deploy" };
    let spec = remote::Spec::for_host(&plan.host, what, shared.lock_timeout, shared.timeout);
    let body = deploy_script::build(&plan.settings, &plan.target);
    let mut session = Session::start(&conn, spec, &body, |holder| {
        on_event(&plan.host.name, Event::LockWait { holder: holder.into() })
    })
    .await?;
    if let (Target::Upload { .. }, Some(payload)) = (&plan.target, &shared.payload) {
        session.phase("release upload");
        session.send_frame(payload).await?;
    }

    session.phase("build and restart");
    let mut log = Log::default();
    let mut armed = Instant::now();
    loop {
        match session.next().await? {
            Some(Line::Marker(Marker::Restarted)) => break,
            Some(Line::Marker(m)) => {
                if let Some(p) = phase_of(&m) {
                    session.phase(p);
                }
                if matches!(m, Marker::Armed(_)) {
                    armed = Instant::now();
                    // From here on the host decides alone if we are interrupted (as when the
                    // controller is killed): its session must not be stopped, nor the host
                    // put back in rotation on an unconfirmed release.
                    conn.keep_on_interrupt();
                    out_of_rotation.switched(&plan.host);
                }
                if let Some(event) = log.take(m, out) {
                    on_event(&plan.host.name, event);
                }
            }
            Some(Line::Data(_)) => {}
            None => {
                let code = session.finish(|_| {}).await?;
                return Err(log.failure(&session, code, out));
            }
        }
    }

    // Live on the new release: check it, then tell the host to keep it or to roll back, in time:
    // the host's watchdog rolls back on its own when confirm_timeout passes without a verdict,
    // so the checks get what is left of it, less a margin for the verdict to travel.
    let confirm = Duration::from_secs(plan.settings.confirm_timeout);
    let budget = confirm.saturating_sub(armed.elapsed()).saturating_sub(CONFIRM_MARGIN);
    on_event(&plan.host.name, Event::HealthWait { confirm_secs: confirm.as_secs() });
    let verdict = match tokio::time::timeout(budget, check(pool, plan, shared, on_event, out)).await {
        Ok(v) => v,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "the health checks did not finish within the confirm window ({}s, confirm_timeout)",
                confirm.as_secs()
            ),
        )),
    };
    session.phase("verdict");
    on_event(&plan.host.name, Event::Verdict { keep: verdict.is_ok() });
    // The host may have stopped listening: its watchdog decided (we were too slow); what it
    // said about that follows in its markers, so a failed send is not the error to report.
    // A connection that really broke fails `finish` below instead.
    let _ = session.send_line(if verdict.is_ok() { "ok" } else { "rollback" }).await;
    let _ = session.close_stdin().await;
    let mut rest = Vec::new();
    let code = session
        .finish(|line| {
            if let Line::Marker(m) = line {
                rest.push(m);
            }
        })
        .await?;
    for m in rest {
        if let Some(event) = log.take(m, out) {
            on_event(&plan.host.name, event);
        }
    }
    if out.rolled_back {
        // Say whether the release we went back to serves again.
        // Bounded by the confirm window too: the host has decided, this only reports.
        let check = HealthCheck {
            address: &plan.health_address,
            port: plan.health_port,
            host_header: &plan.health_address,
            path: &shared.health_path,
            expect: shared.health_status,
            timeout: shared.health_timeout.min(confirm),
            https: false,
            tls: None,
        };
        let event = match check.wait(&conn).await {
            Ok(r) => Event::AfterRollback { healthy: true, detail: format!("HTTP {}", r.status).into() },
            Err(e) => Event::AfterRollback { healthy: false, detail: e.one_line().into() },
        };
        out.health.push(event.to_string());
        on_event(&plan.host.name, event);
    }
    match verdict {
        Ok(()) if code == 0 => Ok(()),
        Ok(()) => Err(log.failure(&session, code, out)),
        Err(why) => Err(Error::new(
            ErrorKind::Remote,
            format!(
                "health check failed on {}; rolled back to {}",
                plan.host.name,
                out.previous.clone().unwrap_or_else(|| "nothing (no previous release)".into())
            ),
        )
        .host(&plan.host.name)
        .task(format!("release {}", out.release.clone().unwrap_or_default()))
        .detail(why.one_line())
        .hint("the site kept serving the previous release; fix the app and deploy again")),
    }
}

/// The app's own port through the host's connection, then the site through each `via` host.
async fn check(
    pool: &Pool,
    plan: &HostPlan,
    shared: &Shared,
    on_event: &(dyn Fn(&str, Event<'_>) + Send + Sync),
    out: &mut HostDeploy,
) -> Result<()> {
    let conn = pool.connect(&plan.host).await?;
    let (addr, port) = (&plan.health_address, plan.health_port);
    let app = HealthCheck {
        address: addr,
        port,
        host_header: addr,
        path: &shared.health_path,
        expect: shared.health_status,
        timeout: shared.health_timeout,
        https: false,
        tls: None,
    };
    let r = app.wait(&conn).await?;
    let address = format!("{addr}:{port}");
    let event = Event::Healthy {
        http_status: r.status,
        address: address.into(),
        path: (&shared.health_path).into(),
        through: (&plan.host.name).into(),
    };
    out.health.push(event.to_string());
    on_event(&plan.host.name, event);
    // Healthy: back in nginx's rotation, then the site through nginx.
    set_drain(pool, plan, shared, false, on_event).await?;
    for (via, how) in plan.via.iter().zip(&shared.via_sites) {
        let via_conn = pool.connect(via).await?;
        let site = HealthCheck {
            address: "127.0.0.1",
            port: how.port,
            host_header: &how.name,
            https: how.https,
            tls: shared.tls.as_ref(),
            ..app.clone()
        };
        let r = site
            .wait(&via_conn)
            .await
            .map_err(|e| Error::new(e.kind, format!("through {}: {}", via.name, e.message)))?;
        let event = Event::HealthyVia { http_status: r.status, via: (&via.name).into() };
        out.health.push(event.to_string());
        on_event(&plan.host.name, event);
    }
    Ok(())
}

/// Takes `plan`'s host out of nginx's upstream on each `via` host (`down`), or puts it back;
/// nothing when the plan does not drain. Each drain is a host session on the via host (its
/// lock: the drains of one batch take turns on the site file; its timeout and privilege).
/// Says so only when something changed.
async fn set_drain(
    pool: &Pool,
    plan: &HostPlan,
    shared: &Shared,
    down: bool,
    on_event: &(dyn Fn(&str, Event<'_>) + Send + Sync),
) -> Result<()> {
    let Some(server) = &plan.drain else { return Ok(()) };
    for via in &plan.via {
        let conn = pool.connect(via).await?;
        let what = format!("deploy, draining {}", plan.host.name);
        let spec = remote::Spec::for_host(via, &what, shared.lock_timeout, shared.timeout);
        let body = drain::body(&shared.drain_file, server, down, &shared.drain_reload);
        let mut session = Session::start(&conn, spec, &body, |holder| {
            on_event(&plan.host.name, Event::ViaLockWait { via: (&via.name).into(), holder: holder.into() })
        })
        .await?;
        session.phase(if down { "drain" } else { "undrain" });
        let (code, said) = session.output().await?;
        if code != 0 {
            let (what, how) = if down { ("take", "out of") } else { ("put", "back in") };
            return Err(Error::new(
                ErrorKind::Remote,
                format!("cannot {what} {} ({server}) {how} nginx's upstream on {}", plan.host.name, via.name),
            )
            .host(&via.name)
            .task(if down { "drain" } else { "undrain" })
            .detail(format!("{said}{}", session.stderr()))
            .hint(format!(
                "check {} on {v}; `microctl converge {v}` restores it",
                shared.drain_file,
                v = via.name
            )));
        }
        if said.lines().any(|l| l == "changed") {
            let via = (&via.name).into();
            on_event(&plan.host.name, if down { Event::Drained { via } } else { Event::Restored { via } });
        }
    }
    Ok(())
}

/// `deploy --list` on one host: its release ledger, read in a host session like every other
/// run (the lock, so never halfway through a deploy's ledger write; the nonce; the timeout).
pub async fn list(
    pool: &Pool,
    plan: &HostPlan,
    lock_timeout: Duration,
    timeout: Option<Duration>,
    on_wait: impl Fn(&str),
) -> Result<Vec<ledger::Entry>> {
    let conn = pool.connect(&plan.host).await?;
    let spec = remote::Spec::for_host(&plan.host, "deploy --list", lock_timeout, timeout);
    let mut session = Session::start(&conn, spec, &ledger::list_script(&plan.settings.root), on_wait).await?;
    session.phase("list");
    let (code, text) = session.output().await?;
    if code != 0 {
        return Err(session.classify(Some(code)));
    }
    Ok(ledger::parse_list(&text))
}

/// Reads the host script's markers.
#[derive(Default)]
struct Log {
    failed: Option<String>,
    output: String,
}

impl Log {
    /// Records one marker; returns the event to show the user, if any.
    fn take(&mut self, m: Marker, out: &mut HostDeploy) -> Option<Event<'static>> {
        match m {
            Marker::Previous(p) => {
                out.previous = Some(p.trim_start_matches("releases/").to_string()).filter(|p| !p.is_empty())
            }
            Marker::Release(r) => {
                out.release = Some(r.clone());
                return Some(Event::Release { release: r.into() });
            }
            Marker::Step(s) => return Some(Event::BuildStep { step: s.into() }),
            Marker::Switched(s) => return Some(Event::Switch { release: s.into() }),
            Marker::Fail { step, .. } => self.failed = Some(step),
            Marker::Out(line) => {
                self.output.push_str(&line);
                self.output.push('\n');
            }
            Marker::RolledBack(p) => {
                out.rolled_back = true;
                return Some(Event::RolledBack { to: p.trim_start_matches("releases/").to_string().into() });
            }
            Marker::Pruned => return Some(Event::Kept),
            Marker::Armed(s) => {
                return Some(Event::WatchdogArmed { confirm_secs: s.trim().parse().unwrap_or_default() });
            }
            Marker::Cleaned(r) => return Some(Event::CleanedIncomplete { release: r.into() }),
            Marker::Recovered(r) => return Some(Event::RecoveredUnconfirmed { release: r.into() }),
            Marker::Cache { state, key } => {
                return Some(if state == "reused" {
                    Event::CacheHit { key: key.into() }
                } else {
                    Event::CacheBuild { key: key.into() }
                });
            }
            _ => {}
        }
        None
    }

    /// The script ended with `code` before it should have.
    fn failure(&self, session: &Session, code: u32, out: &HostDeploy) -> Error {
        let host = session.host();
        let Some(what) = self.failed.clone() else {
            // Not one of deploy's own steps: locked, sudo refused, the session's own error.
            return session.classify(Some(code));
        };
        let mut msg = format!("{what} failed on {host}");
        if what.starts_with("build") {
            msg.push_str("; current was not touched");
        } else if out.rolled_back {
            msg.push_str(&format!("; rolled back to {}", out.previous.clone().unwrap_or_else(|| "nothing".into())));
        }
        Error::new(ErrorKind::Remote, msg).host(host).detail(self.output.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each build step, the cache build, the switch and the restart restart the deadline under
    /// a name of their own; other markers leave the phase as it is.
    #[test]
    fn build_and_restart_markers_start_phases() {
        let step = |s: &str| Marker::Step(s.into());
        assert_eq!(phase_of(&step("pip install -r req.txt")).as_deref(), Some("build step `pip install -r req.txt`"));
        let cache = |state: &str| Marker::Cache { state: state.into(), key: "0123abcd".into() };
        assert_eq!(phase_of(&cache("building")).as_deref(), Some("cache build 0123abcd"));
        assert_eq!(phase_of(&cache("reused")), None);
        assert_eq!(phase_of(&Marker::Armed("30".into())).as_deref(), Some("switch"));
        assert_eq!(phase_of(&Marker::Switched("r1".into())).as_deref(), Some("restart on r1"));
        assert_eq!(phase_of(&Marker::Release("r1".into())), None);
    }

    /// What an interrupted run puts back in rotation: a host taken out and not switched; not
    /// one switched since (its watchdog decides), nor one already back, nor another host.
    #[test]
    fn only_a_host_out_of_rotation_and_not_switched_is_put_back() {
        let text = "[hosts.a]\naddress = \"10.0.0.1\"\n[hosts.b]\naddress = \"10.0.0.2\"\n";
        let inv = crate::inventory::Inventory::parse(std::path::Path::new("/inv/inventory.toml"), text).unwrap();
        let (a, b) = (inv.hosts[0].clone(), inv.hosts[1].clone());
        let out = OutOfRotation::default();
        assert!(!out.unswitched(&a));
        out.taken_out(&a);
        out.taken_out(&b);
        assert!(out.unswitched(&a) && out.unswitched(&b));
        out.switched(&a);
        assert!(!out.unswitched(&a) && out.unswitched(&b));
        out.taken_out(&a);
        assert!(!out.unswitched(&a), "taken out again: still switched");
        out.put_back(&b);
        assert!(!out.unswitched(&b));
    }
}
