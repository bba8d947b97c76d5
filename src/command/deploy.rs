//! `microctl deploy APP`: a new release on each host of the deploy (one batch at a time), a
//! health check through the SSH chain and through nginx, rollback on failure; `--list` and
//! `--rollback`. Exit status 0 when every host is healthy on the new release, 1 otherwise.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{extra_vars, load_roles_if_any, unread_extra_deploy_warnings};
use crate::cli::{DeployArgs, GlobalArgs};
use crate::deploy::config::DeployConfig;
use crate::deploy::ledger::Listing;
use crate::deploy::{self, Event, EventSink, HostDeploy, HostPlan, plan};
use crate::error::{Error, ErrorKind, Result};
use crate::fanout::Fanout;
use crate::inventory::{self, Host};
use crate::remote;
use crate::report::event::{HostDone, Status, exit_status};
use crate::report::{Printer, Table};
use crate::role::Renderer;
use crate::transport::Pool;

pub fn run(global: &GlobalArgs, args: DeployArgs) -> Result<i32> {
    deploy::ledger::check_rollback_arg(args.rollback.as_deref())?;
    let mut inv = inventory::Inventory::load(&global.inventory)?;
    let mut cfg = DeployConfig::load(&inv, &args.app)?;
    if let Some(source) = &args.source {
        let cwd =
            std::env::current_dir().map_err(|e| Error::new(ErrorKind::Io, "no current directory").caused_by(e))?;
        plan::override_source(&mut cfg, source, args.git_ref.as_deref(), &cwd)?;
    }
    let request = plan::Request {
        only: args.only(),
        list: args.list,
        rollback: args.rollback.as_deref(),
        git_ref: args.git_ref.as_deref(),
        lock_timeout: Duration::from_secs(args.lock_timeout),
        timeout: args.timeout.map(Duration::from_secs),
    };
    let names: Vec<String> = plan::hosts(&inv, &cfg, request.only)?.iter().map(|h| h.name.clone()).collect();
    // Only the deployed hosts' secrets and environment are read; `--list` reads none.
    if !args.list {
        for note in crate::secrets::resolve(&mut inv, crate::secrets::Mode::Values, Some(&names))? {
            crate::report::notice(&note.message);
        }
    }
    let inv = Arc::new(inv);
    // The handles, taken after the secrets are in.
    let hosts = plan::hosts(&inv, &cfg, request.only)?;
    let roles = load_roles_if_any(global, &inv)?;
    let extra = extra_vars(&args.extra_vars)?;
    let renderer = Renderer::new(&inv, &roles, &extra);
    // The templates rendered (for `-e` names nothing reads).
    let templates = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let render = |host: &Host, text: &str| {
        if text.contains("{{") || text.contains("{%") {
            templates.lock().expect("templates lock").insert(text.to_string());
        }
        roles.templates.render_str(text, &renderer.context(host)).map_err(|e| e.message)
    };
    let chosen = plan::choose(&cfg, &request)?;
    let warning = chosen.warning.clone();
    let planned = plan::plan(plan::Input {
        cfg: &cfg,
        inv: &inv,
        hosts: hosts.clone(),
        request: &request,
        chosen,
        deployed_by: deploy::ledger::deployer(),
        render: &render,
    })?;

    let printer = Printer::new(&global.output, "deploy", &names, args.json);
    let pool = Pool::new(inv.clone(), super::connect_options(global, &args.wait, &printer));
    if let Some(w) = &warning {
        printer.warning_line(w);
    }
    let templates = templates.into_inner().expect("templates lock");
    for unread in unread_extra_deploy_warnings(&extra, &cfg.name, &templates) {
        printer.warning(&unread);
    }
    let fan = Fanout::new(pool, printer.clone(), planned.hosts.len());
    if args.list {
        return list(&fan, planned.hosts, &printer, &request, args.json || global.output.quiet());
    }
    let shared = Arc::new(planned.shared);
    deploy::steps::show(&printer, &planned.hosts, &shared);
    let (sink, dials) = (printer.clone(), fan.pool().clone());
    let on_event: EventSink = Arc::new(move |host: &str, e: Event<'_>| {
        // A host key recorded while dialing is said at the next event.
        for note in dials.take_notes() {
            sink.notice(&note);
        }
        sink.event(host, &e)
    });
    let results = fan.block_on(deploy::run(&fan, planned.hosts, shared, on_event))?;
    for note in fan.pool().take_notes() {
        printer.notice(&note);
    }
    report(&printer, &results)
}

/// One line (or JSON object) per host, then the summary.
fn report(printer: &Printer, results: &[HostDeploy]) -> Result<i32> {
    for r in results {
        printer.host_done(&HostDone::new(&r.host, r.status(), r.duration, r.error.as_ref(), r.detail(), r));
    }
    let live = results.iter().filter(|r| r.error.is_none() && !r.skipped).count();
    let code = exit_status(results.iter().map(HostDeploy::status), false);
    printer.finish(live, false, code);
    Ok(code)
}

/// `--list`: every host's release ledger (read in parallel), the live release marked.
fn list(
    fan: &Fanout,
    plans: Vec<HostPlan>,
    printer: &Printer,
    request: &plan::Request<'_>,
    no_table: bool,
) -> Result<i32> {
    let (lock_timeout, timeout) = (request.lock_timeout, request.timeout);
    let listed = fan.block_on(fan.each(plans.clone(), |plan| {
        let (pool, printer) = (fan.pool().clone(), printer.clone());
        async move {
            let t0 = Instant::now();
            let host = &plan.host.name;
            printer.command(host, &remote::bootstrap(plan.host.privilege()));
            let listed = deploy::list(&pool, &plan, lock_timeout, timeout, |holder| {
                printer.event(host, &Event::LockWait { holder: holder.into() })
            })
            .await;
            for note in pool.take_notes() {
                printer.notice(&note);
            }
            (listed.map(Listing::of), t0.elapsed())
        }
    }))?;
    let mut table = Table::new(&Listing::COLUMNS);
    let (mut statuses, none) = (Vec::new(), Listing::default());
    for (plan, outcome) in plans.iter().zip(listed) {
        let host = &plan.host.name;
        let (listed, took) = outcome.unwrap_or_else(|e| (Err(e), Duration::ZERO));
        let done = match &listed {
            Ok(listing) => {
                listing.rows(host).into_iter().for_each(|row| table.row(row));
                HostDone::new(host, Status::Ok, took, None, listing.detail(), listing)
            }
            Err(e) => HostDone::new(host, Status::of_error(e), took, Some(e), e.kind.class().into(), &none),
        };
        statuses.push(done.status);
        printer.host_done(&done);
    }
    if !no_table {
        print!("{}", table.render());
    }
    let code = exit_status(statuses, false);
    printer.finish(0, false, code);
    Ok(code)
}
