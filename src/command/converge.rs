//! `microctl converge`: render every selected host's roles (offline), then for each host in
//! parallel: connect, lock, probe, plan, apply only the differences, run handlers; then a
//! recap (all through `report::Printer`). A host that fails stops; the others go on.
//!
//! Exit status: 0 converged, 1 any host failed, 2 usage/inventory/role/template error (then
//! no host is contacted),
//! 3 (`--check` only) changes are pending.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::{extra_vars, load_inventory_for, load_roles, runtime};
use crate::apply::{self, HostRun, Options, Progress as Step};
use crate::cli::{ConvergeArgs, GlobalArgs};
use crate::error::{Error, Result};
use crate::inventory::Host;
use crate::plan::desired::Desired;
use crate::report::event::{ChangeJson, ChangeState, ConvergeHost, HostDone, HostFields, Status, Timings};
use crate::report::{self, Printer};
use crate::role::Renderer;
use crate::transport::Pool;

pub fn run(global: &GlobalArgs, args: ConvergeArgs) -> Result<i32> {
    let (inv, selected) = load_inventory_for(global, args.hosts())?;
    let roles = load_roles(global, &inv)?;
    if let Some(only) = &args.roles {
        for name in only {
            if !roles.contains(name) {
                return Err(Error::usage(format!("--roles: no host uses role `{name}`")));
            }
        }
    }
    let extra = extra_vars(&args.extra_vars)?;

    // Render everything first, offline.
    let renderer = Renderer::new(&inv, &roles, &extra);
    let hosts = crate::inventory::select(&inv, args.hosts())?;
    crate::facts::from_cache(&renderer, &hosts);
    let rendered: Vec<(Arc<Host>, Result<Desired>)> = hosts
        .into_iter()
        .map(|host| {
            let d = renderer.render(&host, args.roles.as_deref());
            (host, d)
        })
        .collect();
    // A template error (roles were checked at load) is an input error: each distinct one is
    // reported once, naming the hosts it hit; exit 2, connect nowhere.
    if rendered.iter().any(|(_, d)| d.is_err()) {
        let printer = Printer::new("converge", &selected, args.json);
        let failures = rendered.iter().filter_map(|(h, d)| d.as_ref().err().map(|e| (h.name.as_str(), e)));
        for (error, hosts) in report::group_errors(failures) {
            printer.shared_error(error, &hosts);
        }
        for (host, desired) in rendered {
            let Err(e) = desired else { continue };
            let run = HostRun { host: host.name.clone(), failed: 1, error: Some(e), ..Default::default() };
            report_host(&printer, &run, args.check, false);
        }
        return Ok(printer.finish_as(0, args.check, Some(2)));
    }

    let printer = Printer::new("converge", &selected, args.json);
    for warning in renderer.warnings() {
        printer.warning(&warning);
    }
    let opts = Options {
        check: args.check,
        diff: args.diff,
        color: report::color_enabled(&std::io::stdout()),
        lock_timeout: Duration::from_secs(args.lock_timeout),
        timeout: args.timeout.map(Duration::from_secs),
        what: "converge",
    };
    let runs = runtime()?.block_on(async {
        let pool = Pool::new(inv.clone(), super::connect_options(global, &args.wait, &printer));
        let forks = Arc::new(Semaphore::new(args.forks as usize));
        let host_task = |host: Arc<Host>, desired: Result<Desired>, again: Option<u64>| {
            let (pool, forks, printer, opts) = (pool.clone(), forks.clone(), printer.clone(), opts.clone());
            tokio::spawn(converge_task(pool, forks, printer, opts, host, desired, again))
        };
        let tasks: Vec<_> = rendered.into_iter().map(|(host, desired)| host_task(host, desired, None)).collect();
        let mut runs = Vec::new();
        let mut stale = Vec::new();
        for t in tasks {
            match t.await.expect("host task panicked") {
                (host, run) if run.stale_facts && run.error.is_none() => stale.push((host, run.channels_opened)),
                (_, run) => runs.push(run),
            }
        }
        // Hosts whose facts were not the ones rendered with (first contact, reboot, OS
        // upgrade): nothing was applied; gathered now (one exec each), rendered again and
        // converged in a second session.
        let gathers: Vec<_> = stale
            .into_iter()
            .map(|(host, channels)| {
                let (pool, forks, printer) = (pool.clone(), forks.clone(), printer.clone());
                tokio::spawn(async move {
                    let _slot = forks.acquire_owned().await.expect("forks");
                    printer.phase(&host.name, "gathering facts", false);
                    let gathered = crate::facts::gather_and_cache(&pool, &host).await;
                    (host, gathered, channels + 1)
                })
            })
            .collect();
        let mut again = Vec::new();
        for g in gathers {
            let (host, gathered, channels) = g.await.expect("facts task panicked");
            let desired = gathered.and_then(|g| {
                renderer.set_facts(&host, &g.facts, &g.fingerprint);
                renderer.render(&host, args.roles.as_deref())
            });
            again.push(host_task(host, desired, Some(channels)));
        }
        for t in again {
            runs.push(t.await.expect("host task panicked").1);
        }
        pool.close_all().await;
        runs
    });

    let changed: usize = runs.iter().map(|r| r.changed).sum();
    Ok(printer.finish(changed, args.check))
}

/// One host's converge (a task): its run, reported unless its facts turned out stale on a
/// first try (`again` None: the caller gathers them and converges it again; Some: the
/// channels the first try and the gather opened, counted in its report).
async fn converge_task(
    pool: Arc<Pool>,
    forks: Arc<Semaphore>,
    printer: Printer,
    opts: Options,
    host: Arc<Host>,
    desired: Result<Desired>,
    again: Option<u64>,
) -> (Arc<Host>, HostRun) {
    let name = host.name.clone();
    let mut run = match desired {
        Err(e) => HostRun { host: name, failed: 1, error: Some(e), ..Default::default() },
        Ok(desired) => {
            let _slot = forks.acquire_owned().await.expect("forks");
            if again.is_none() {
                printer.host_start(&name);
            }
            // The one remote command; the session script follows on its stdin.
            printer.command(&name, &crate::remote::bootstrap(host.privilege()));
            printer.script(&name, "converge", || {
                let wait = opts.lock_timeout.as_secs();
                report::script::converge(&desired, &host.state_dir, wait, opts.diff, opts.check)
            });
            let on_step = |step: Step<'_>| match step {
                Step::Phase(p) => printer.phase(&name, p, is_slow(p)),
                Step::Step(ok, text) => match (text.strip_prefix("handler "), ok) {
                    (Some(h), true) => printer.handler(&name, h, ChangeState::Changed),
                    (Some(h), false) => printer.handler(&name, h, ChangeState::Failed),
                    (None, true) => printer.change(&name, text, ChangeState::Changed, None),
                    (None, false) => printer.change(&name, text, ChangeState::Failed, None),
                },
            };
            apply::converge_host(&pool, &host, &desired, &opts, &on_step).await
        }
    };
    run.channels_opened += again.unwrap_or(0);
    if run.stale_facts && run.error.is_none() {
        if again.is_none() {
            return (host, run);
        }
        run.failed = 1;
        run.error = Some(crate::facts::changed_while_converging(&host));
    }
    report_host(&printer, &run, opts.check, true);
    (host, run)
}

/// Phases that may take long: announced without a terminal, and kept alive by the heartbeat.
fn is_slow(phase: &str) -> bool {
    phase.starts_with("waiting")
        || ["packages", "command", "service", "handler"]
            .iter()
            .any(|p| phase.strip_prefix("applying ").is_some_and(|s| s.starts_with(p)))
}

/// The host's pending changes (`--check`), diffs and result, to the printer; `print_error`
/// false when its error was printed already (shared with other hosts).
fn report_host(printer: &Printer, run: &HostRun, check: bool, print_error: bool) {
    if check {
        for c in &run.plan.changes {
            printer.change(&run.host, &c.resource, ChangeState::Pending, Some(&c.reason));
        }
        for h in &run.plan.handlers {
            printer.handler(&run.host, h, ChangeState::Pending);
        }
    }
    for d in &run.diffs {
        printer.diff(&run.host, d);
    }
    let status = match &run.error {
        Some(e) => Status::of_error(e),
        None if check && !run.plan.is_empty() => Status::Pending,
        None if run.changed > 0 || !run.handlers_run.is_empty() => Status::Changed,
        None => Status::Ok,
    };
    let detail =
        format!("{} ok, {} {}, {} failed", run.ok, run.changed, if check { "pending" } else { "changed" }, run.failed);
    let fields = HostFields::Converge(ConvergeHost {
        check,
        ok: run.ok,
        changed: run.changed,
        failed: run.failed,
        changes: run
            .plan
            .changes
            .iter()
            .map(|c| ChangeJson { resource: c.resource.clone(), reason: c.reason.clone(), role: c.role.clone() })
            .collect(),
        handlers: if check { run.plan.handlers.clone() } else { run.handlers_run.clone() },
        pending_handlers: run.plan.pending.clone(),
        diffs: run.diffs.clone(),
        channels_opened: run.channels_opened,
        bytes_sent: run.bytes_sent,
        timings: Timings {
            connect_ms: run.connect.as_millis() as u64,
            probe_ms: run.probe.as_millis() as u64,
            apply_ms: run.apply.as_millis() as u64,
            total_ms: run.total.as_millis() as u64,
        },
    });
    let mut done = HostDone::new(&run.host, status, run.total, run.error.as_ref(), detail, fields);
    if !print_error {
        done.error_text = None;
    }
    printer.host_done(&done);
}
