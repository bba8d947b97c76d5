//! `microctl converge`: render every selected host's roles (offline), then for each host in
//! parallel: connect, lock, probe, plan, apply only the differences, run handlers; then a
//! recap. A host that fails stops; the others go on.
//!
//! Exit status: 0 converged, 1 any host failed, 2 usage/inventory/role error,
//! 3 (`--check` only) changes are pending.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Semaphore;

use super::{extra_vars, load_inventory_with_secrets, load_roles, runtime};
use crate::apply::{self, HostRun, Options, Progress as Step};
use crate::cli::{ConvergeArgs, GlobalArgs};
use crate::error::{Error, Result};
use crate::inventory;
use crate::plan::desired::Desired;
use crate::report::{self, Progress, Table};
use crate::role::Renderer;
use crate::transport::{self, Pool};

/// Exit status of `--check` when changes are pending.
pub const EXIT_PENDING: i32 = 3;

pub fn run(global: &GlobalArgs, args: ConvergeArgs) -> Result<i32> {
    let started = Instant::now();
    let (inv, _) = load_inventory_with_secrets(global, crate::secrets::Mode::Values)?;
    let selected: Vec<String> = inventory::select(&inv, &args.pattern)?.iter().map(|h| h.name.clone()).collect();
    let roles = load_roles(global, &inv)?;
    if let Some(only) = &args.roles {
        for name in only {
            if !roles.contains(name) {
                return Err(Error::usage(format!("--roles: no host uses role `{name}`")));
            }
        }
    }
    let extra = extra_vars(&args.extra_vars)?;

    // Render everything first: a render error stops its host before anything is sent.
    let renderer = Renderer::new(&inv, &roles, &extra);
    let rendered: Vec<(String, Result<Desired>)> = selected
        .iter()
        .map(|name| (name.clone(), renderer.render(inv.host(name).expect("selected"), args.roles.as_deref())))
        .collect();

    let color = report::color_enabled(&std::io::stdout());
    let tty = !args.json && report::color_enabled(&std::io::stderr());
    let progress = Arc::new(Progress::new(&selected, tty));
    let opts = Options {
        check: args.check,
        diff: args.diff,
        color,
        lock_timeout: Duration::from_secs(args.lock_timeout),
        timeout: args.timeout.map(Duration::from_secs),
        what: "converge",
    };
    let runs = runtime()?.block_on(async {
        let pool = Pool::new(inv.clone(), transport::Options { accept_new: global.accept_new });
        let forks = Arc::new(Semaphore::new(args.forks as usize));
        let mut tasks = Vec::new();
        for (name, desired) in rendered {
            let (pool, forks, progress, opts) = (pool.clone(), forks.clone(), progress.clone(), opts.clone());
            let json = args.json;
            tasks.push(tokio::spawn(async move {
                let host = progress.host(&name);
                let run = match desired {
                    Err(e) => HostRun { host: name, failed: 1, error: Some(e), ..Default::default() },
                    Ok(desired) => {
                        let _slot = forks.acquire_owned().await.expect("forks");
                        let on_step = |step: Step<'_>| match step {
                            Step::Phase(p) => host.phase(p),
                            Step::Step(true, text) if !json => host.line(&format!("changed: {text}")),
                            Step::Step(false, text) if !json => host.line(&format!("FAILED: {text}")),
                            Step::Step(..) => {}
                        };
                        apply::converge_host(&pool, &desired, &opts, &on_step).await
                    }
                };
                host.finish();
                if json {
                    report::json_line(&host_json(&run, opts.check));
                } else {
                    print_host(&host, &run, &opts);
                }
                run
            }));
        }
        let mut runs = Vec::new();
        for t in tasks {
            runs.push(t.await.expect("host task panicked"));
        }
        pool.close_all().await;
        runs
    });

    let failed = runs.iter().filter(|r| r.error.is_some()).count();
    let changed: usize = runs.iter().map(|r| r.changed).sum();
    if args.json {
        report::json_line(&json!({
            "type": "summary",
            "hosts": runs.len(),
            "failed": failed,
            "changed": changed,
            "ok": runs.iter().map(|r| r.ok).sum::<usize>(),
            "check": args.check,
            "duration_ms": started.elapsed().as_millis() as u64,
        }));
    } else {
        print!("{}", recap(&runs, args.check));
        println!(
            "{} hosts, {changed} {}, {failed} failed, in {}",
            runs.len(),
            if args.check { "changes pending" } else { "changed" },
            report::seconds(started.elapsed())
        );
    }
    Ok(if failed > 0 {
        1
    } else if args.check && runs.iter().any(|r| !r.plan.is_empty()) {
        EXIT_PENDING
    } else {
        0
    })
}

fn print_host(host: &report::HostProgress, run: &HostRun, opts: &Options) {
    if opts.check {
        for c in &run.plan.changes {
            host.line(&format!("would change: {} ({})", c.resource, c.reason));
        }
        for h in &run.plan.handlers {
            host.line(&format!("would run handler: {h}"));
        }
    } else {
        for h in &run.handlers_run {
            host.line(&format!("ran handler: {h}"));
        }
    }
    for d in &run.diffs {
        for line in d.lines() {
            host.line(line);
        }
    }
    if let Some(e) = &run.error {
        for (i, line) in e.to_string().lines().enumerate() {
            host.line(&if i == 0 { format!("error: {line}") } else { line.to_string() });
        }
    }
}

fn host_json(run: &HostRun, check: bool) -> serde_json::Value {
    let changes: Vec<_> = run
        .plan
        .changes
        .iter()
        .map(|c| json!({ "resource": c.resource, "reason": c.reason, "role": c.role }))
        .collect();
    json!({
        "type": "host",
        "host": run.host,
        "check": check,
        "ok": run.ok,
        "changed": run.changed,
        "failed": run.failed,
        "changes": changes,
        "handlers": if check { &run.plan.handlers } else { &run.handlers_run },
        "pending_handlers": run.plan.pending,
        "diffs": run.diffs,
        "channels_opened": run.channels_opened,
        "bytes_sent": run.bytes_sent,
        "timings": {
            "connect_ms": run.connect.as_millis() as u64,
            "probe_ms": run.probe.as_millis() as u64,
            "apply_ms": run.apply.as_millis() as u64,
            "total_ms": run.total.as_millis() as u64,
        },
        "error": run.error.as_ref().map(report::error_json),
    })
}

fn recap(runs: &[HostRun], check: bool) -> String {
    let mut table = Table::new(&["host", "ok", if check { "pending" } else { "changed" }, "failed", "duration"]);
    for r in runs {
        table.row(vec![
            r.host.clone(),
            r.ok.to_string(),
            r.changed.to_string(),
            r.failed.to_string(),
            report::seconds(r.total),
        ]);
    }
    table.render()
}
