//! `microctl converge`: render every selected host's roles (offline), then for each host in
//! parallel: connect, lock, probe, plan, apply only the differences, run handlers; then a
//! recap (all through `report::Printer`). A host that fails stops; the others go on.
//!
//! Exit status: 0 converged, 1 any host failed, 2 usage/inventory/role/template error (then
//! no host is contacted),
//! 3 (`--check` only) changes are pending.

use std::sync::Arc;
use std::time::Duration;

use super::{extra_vars, load_inventory_for, load_roles, unread_extra_warnings};
use crate::apply::{self, ChangeState, ConvergeOptions, Event, HostRun};
use crate::cli::{ConvergeArgs, GlobalArgs};
use crate::error::{Error, Result};
use crate::fanout::Fanout;
use crate::inventory::Host;
use crate::plan::desired::Desired;
use crate::report::event::{HostDone, Status, exit_status};
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

    // Render everything first, offline; with the host's firewall (`crate::firewall`) when its
    // `firewall` var is on, unless `--roles` narrows the run.
    let renderer = Renderer::new(&inv, &roles, &extra);
    let with_firewall = |d: Desired, host: &Host| match args.roles {
        Some(_) => Ok(d),
        None => crate::firewall::attach(&inv, &roles, host, d),
    };
    let hosts = crate::inventory::select(&inv, args.hosts())?;
    crate::facts::from_cache(&renderer, &hosts);
    let rendered: Vec<(Arc<Host>, Result<Desired>)> = hosts
        .into_iter()
        .map(|host| {
            let d = renderer.render(&host, args.roles.as_deref()).and_then(|d| with_firewall(d, &host));
            (host, d)
        })
        .collect();
    // A template error (roles were checked at load) is an input error: each distinct one is
    // reported once, naming the hosts it hit; exit 2, connect nowhere.
    if rendered.iter().any(|(_, d)| d.is_err()) {
        let printer = Printer::new(&global.output, "converge", &selected, args.json);
        let failures = rendered.iter().filter_map(|(h, d)| d.as_ref().err().map(|e| (h.name.as_str(), e)));
        for (error, hosts) in report::group_errors(failures) {
            printer.shared_error(error, &hosts);
        }
        for (host, desired) in rendered {
            let Err(e) = desired else { continue };
            let run = HostRun { host: host.name.clone(), failed: 1, error: Some(e), ..Default::default() };
            report_host(&printer, &run, args.check, false);
        }
        // A template error is an input error: 2, whatever the hosts' statuses.
        printer.finish(0, args.check, 2);
        return Ok(2);
    }

    let printer = Printer::new(&global.output, "converge", &selected, args.json);
    for warning in renderer.warnings().into_iter().chain(unread_extra_warnings(&extra, &roles)) {
        printer.warning(&warning);
    }
    let opts = ConvergeOptions {
        check: args.check,
        diff: args.diff,
        lock_timeout: Duration::from_secs(args.lock_timeout),
        timeout: args.timeout.map(Duration::from_secs),
        what: "converge",
    };
    let jobs: Vec<Job> =
        rendered.into_iter().map(|(host, desired)| Job(host, desired.expect("checked above"), None)).collect();
    let pool = Pool::new(inv.clone(), super::connect_options(global, &args.wait, &printer));
    let fan = Fanout::new(pool, printer.clone(), args.forks as usize);
    let converge = |Job(host, desired, again): Job| {
        let (pool, printer, opts) = (fan.pool().clone(), printer.clone(), opts.clone());
        async move {
            let name = &host.name;
            // The one remote command; the session script follows on its stdin.
            printer.command(name, &crate::remote::bootstrap(host.privilege()));
            printer.script(name, "converge", || {
                let wait = opts.lock_timeout.as_secs();
                apply::steps::converge(&desired, &host.state_dir, wait, opts.diff, opts.check)
            });
            // A host key recorded while dialing is said at the next event.
            let on_event = |event: Event<'_>| {
                for note in pool.take_notes() {
                    printer.notice(&note);
                }
                printer.event(name, &event)
            };
            let mut run = apply::converge_host(&pool, &host, &desired, &opts, &on_event).await;
            // The firewall, after everything else, confirmed over a new connection.
            if let (Some(table), None, false) = (&desired.firewall, &run.error, run.stale_facts) {
                crate::firewall::converge_step(&pool, &host, table, &opts, &mut run, &on_event).await;
            }
            for note in pool.take_notes() {
                printer.notice(&note);
            }
            // Stale facts (`crate::facts`): nothing was applied. On a first try the caller
            // gathers them and converges the host again; a second try counts the channels of
            // the first and of the gather.
            run.channels_opened += again.unwrap_or(0);
            if run.stale_facts && run.error.is_none() {
                if again.is_none() {
                    return run;
                }
                run.failed = 1;
                run.error = Some(crate::facts::changed_while_converging(&host));
            }
            report_host(&printer, &run, opts.check, true);
            run
        }
    };
    let failed = |host: String, e: Error| {
        let run = HostRun { host, failed: 1, error: Some(e), ..Default::default() };
        report_host(&printer, &run, args.check, true);
        run
    };
    // One wave per jump depth when a jump host has its firewall on: a jump host's firewall is
    // confirmed before anything behind it is contacted; hosts behind one whose firewall step
    // failed are left alone.
    let on: Vec<String> = jobs.iter().filter(|j| j.1.firewall.is_some()).map(|j| j.0.name.clone()).collect();
    let behind = |host: &Host| -> Vec<String> {
        inv.chain(host).iter().filter(|h| h.name != host.name && on.contains(&h.name)).map(|h| h.name.clone()).collect()
    };
    let mut waves: Vec<Vec<Job>> = Vec::new();
    if jobs.iter().any(|j| !behind(&j.0).is_empty()) {
        for job in jobs {
            let depth = inv.chain(&job.0).len();
            waves.resize_with(waves.len().max(depth), Vec::new);
            waves[depth - 1].push(job);
        }
    } else {
        waves.push(jobs);
    }
    let wave = async |jobs: Vec<Job>| {
        let hosts = hosts_of(&jobs);
        let mut runs = Vec::new();
        let mut stale = Vec::new();
        for (host, outcome) in hosts.into_iter().zip(fan.each(jobs, converge).await) {
            match outcome {
                Ok(run) if run.stale_facts && run.error.is_none() => stale.push(Stale(host, run.channels_opened)),
                Ok(run) => runs.push(run),
                Err(e) => runs.push(failed(host.name.clone(), e)),
            }
        }
        if stale.is_empty() {
            return runs;
        }
        // Their facts were not the ones rendered with (first contact, reboot, OS upgrade):
        // gathered now (one exec each), the hosts rendered again and converged again.
        let names: Vec<String> = stale.iter().map(|s| s.0.name.clone()).collect();
        let gathers = fan
            .each(stale, |Stale(host, channels)| {
                let (pool, printer) = (fan.pool().clone(), printer.clone());
                async move {
                    printer.phase(&host.name, "gathering facts", false);
                    let gathered = crate::facts::gather_and_cache(&pool, &host).await;
                    (host, gathered, channels + 1)
                }
            })
            .await;
        let mut again = Vec::new();
        for (name, outcome) in names.into_iter().zip(gathers) {
            let (host, gathered, channels) = match outcome {
                Ok(g) => g,
                Err(e) => {
                    runs.push(failed(name, e));
                    continue;
                }
            };
            let rendered = gathered.and_then(|g| {
                renderer.set_facts(&host, &g.facts, &g.fingerprint);
                renderer.render(&host, args.roles.as_deref()).and_then(|d| with_firewall(d, &host))
            });
            match rendered {
                Ok(desired) => again.push(Job(host, desired, Some(channels))),
                Err(e) => runs.push(failed(host.name.clone(), e)),
            }
        }
        for (host, outcome) in hosts_of(&again).into_iter().zip(fan.each(again, converge).await) {
            runs.push(outcome.unwrap_or_else(|e| failed(host.name.clone(), e)));
        }
        runs
    };
    let runs: Vec<HostRun> = fan.block_on(async {
        let mut runs: Vec<HostRun> = Vec::new();
        for jobs in waves {
            let (mut go, mut left) = (Vec::new(), Vec::new());
            for job in jobs {
                let cut = behind(&job.0).into_iter().find(|j| runs.iter().any(|r| r.firewall_failed && &r.host == j));
                match cut {
                    Some(jump) => left.push((job.0.name.clone(), jump)),
                    None => go.push(job),
                }
            }
            for (host, jump) in left {
                let e = Error::new(
                    crate::error::ErrorKind::Remote,
                    format!("{host} left alone: the firewall of its jump host {jump} failed"),
                )
                .host(&host)
                .hint(format!("fix {jump}'s firewall first (see its error), then run again"));
                runs.push(failed(host, e));
            }
            runs.extend(wave(go).await);
        }
        runs
    })?;

    let changed: usize = runs.iter().map(|r| r.changed).sum();
    let code = exit_status(runs.iter().map(|r| status(r, args.check)), args.check);
    printer.finish(changed, args.check, code);
    Ok(code)
}

/// A host and what its roles want of it: one unit of the fan-out; on a second try (its facts
/// were stale, `crate::facts`), the channels its first try and the gather opened.
struct Job(Arc<Host>, Desired, Option<u64>);

impl AsRef<Host> for Job {
    fn as_ref(&self) -> &Host {
        &self.0
    }
}

/// A host whose facts were stale, and the channels its first try opened.
struct Stale(Arc<Host>, u64);

impl AsRef<Host> for Stale {
    fn as_ref(&self) -> &Host {
        &self.0
    }
}

fn hosts_of(jobs: &[Job]) -> Vec<Arc<Host>> {
    jobs.iter().map(|j| j.0.clone()).collect()
}

/// How a host's run ended.
fn status(run: &HostRun, check: bool) -> Status {
    match &run.error {
        Some(e) => Status::of_error(e),
        None if check && !run.plan.is_empty() => Status::Pending,
        None if run.changed > 0 || !run.handlers_run.is_empty() => Status::Changed,
        None => Status::Ok,
    }
}

/// The host's pending changes (`--check`), diffs and result, to the printer; `print_error`
/// false when its error was printed already (shared with other hosts).
fn report_host(printer: &Printer, run: &HostRun, check: bool, print_error: bool) {
    if check {
        for c in &run.plan.changes {
            let pending = Event::Change { resource: &c.resource, state: ChangeState::Pending, reason: Some(&c.reason) };
            printer.event(&run.host, &pending);
        }
        for h in &run.plan.handlers {
            printer.event(&run.host, &Event::Handler { handler: h, state: ChangeState::Pending });
        }
    }
    for diff in &run.diffs {
        printer.event(&run.host, &Event::Diff { diff });
    }
    let status = status(run, check);
    let detail =
        format!("{} ok, {} {}, {} failed", run.ok, run.changed, if check { "pending" } else { "changed" }, run.failed);
    let mut done = HostDone::new(&run.host, status, run.total, run.error.as_ref(), detail, run.outcome(check));
    if !print_error {
        done.error_text = None;
    }
    printer.host_done(&done);
}
