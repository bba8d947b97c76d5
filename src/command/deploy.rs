//! `microctl deploy APP`: a new release on each host of the deploy (one batch at a time), a
//! health check through the SSH chain and through nginx, rollback on failure; `--list` and
//! `--rollback`. Exit status 0 when every host is healthy on the new release, 1 otherwise.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{extra_vars, load_roles_if_any, runtime};
use crate::cli::{DeployArgs, GlobalArgs};
use crate::deploy::config::{DeployConfig, Source};
use crate::deploy::script::{Settings, Target};
use crate::deploy::{self, Event, EventSink, HostPlan, Shared};
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::{self, Host};
use crate::remote;
use crate::report::event::{HostDone, Status, exit_status};
use crate::report::{Printer, Table};
use crate::role::Renderer;
use crate::transport::{self, Pool};

pub fn run(global: &GlobalArgs, args: DeployArgs) -> Result<i32> {
    // An argument check: before the inventory, its secrets or any host.
    if let Some(r) = args.rollback.as_deref().filter(|r| !r.is_empty() && !deploy::ledger::release_name_ok(r)) {
        return Err(Error::new(ErrorKind::Usage, format!("`{}` is not a release name", r.escape_debug()))
            .hint("release names are letters, digits, `.`, `_` and `-`; `microctl deploy NAME --list` shows them"));
    }
    let mut inv = inventory::Inventory::load(&global.inventory)?;
    let mut cfg = DeployConfig::load(&inv, &args.app)?;
    if let Some(source) = &args.source {
        let cwd =
            std::env::current_dir().map_err(|e| Error::new(ErrorKind::Io, "no current directory").caused_by(e))?;
        cfg.source = Source::parse(source, &cwd);
        if matches!(cfg.source, Source::Git(_)) && args.git_ref.is_none() && cfg.git_ref.is_none() {
            return Err(Error::usage(format!("--source {source} is a git URL: it needs --ref")).hint("e.g. --ref main"));
        }
    }
    let mut names: Vec<String> = inventory::select(&inv, &cfg.hosts)?.iter().map(|h| h.name.clone()).collect();
    if let Some(only) = args.only() {
        let asked = inventory::select(&inv, only)?;
        let all = names.join(", ");
        names.retain(|n| asked.iter().any(|a| &a.name == n));
        if names.is_empty() {
            return Err(Error::usage(format!("`{only}` matches none of deploy.{}'s hosts ({all})", cfg.name))
                .hint("name some of those hosts, or leave the pattern out to deploy to all of them"));
        }
    }
    // Only the deployed hosts' secrets and environment are read; `--list` reads none.
    if !args.list {
        for note in crate::secrets::resolve(&mut inv, crate::secrets::Mode::Values, Some(&names))? {
            crate::report::notice(&note.message);
        }
    }
    let inv = Arc::new(inv);
    let hosts: Vec<&Host> = names.iter().map(|n| inv.host(n).expect("selected")).collect();
    let roles = load_roles_if_any(global, &inv)?;
    let extra = extra_vars(&args.extra_vars)?;
    let renderer = Renderer::new(&inv, &roles, &extra);
    let render = |host: &Host, field: &str, text: &str| -> Result<String> {
        roles.templates.render_str(text, &renderer.context(host)).map_err(|e| {
            Error::new(ErrorKind::Template, format!("cannot render deploy.{}.{field}: {}", cfg.name, e.message))
                .at_file(&inv.path)
                .host(&host.name)
        })
    };

    let mut warnings = Vec::new();
    let (target, payload) = if let Some(release) = &args.rollback {
        (Target::Previous { release: Some(release.clone()).filter(|r| !r.is_empty()) }, None)
    } else if args.list {
        (Target::Previous { release: None }, None)
    } else {
        match &cfg.source {
            Source::Git(url) => {
                let git_ref = args.git_ref.clone().or(cfg.git_ref.clone()).expect("checked in config");
                (Target::Clone { url: url.clone(), git_ref }, None)
            }
            Source::Path(path) => {
                let packed = deploy::source::pack(path, args.git_ref.as_deref().or(cfg.git_ref.as_deref()))?;
                warnings.extend(packed.warning.clone());
                let name = format!("{}-{}", crate::clock::compact_stamp(), packed.rev);
                let revision = match args.git_ref.as_deref().or(cfg.git_ref.as_deref()) {
                    Some(r) if !packed.rev.starts_with(r) => format!("{} ({r})", packed.rev),
                    _ => packed.rev.clone(),
                };
                (Target::Upload { name, revision }, Some(Arc::new(packed.tar)))
            }
        }
    };

    let deployed_by = crate::deploy::ledger::deployer();
    let mut plans = Vec::new();
    for host in &hosts {
        let port_text = render(host, "health_port", &cfg.health_port)?;
        let health_port = port_text.trim().parse().map_err(|_| {
            Error::new(
                ErrorKind::Inventory,
                format!("deploy.{}.health_port renders to `{port_text}`, not a port", cfg.name),
            )
            .at_file(&inv.path)
            .host(&host.name)
            .hint("set `health_port` in the deploy table, or `app_port` in the host's vars")
        })?;
        let via = match &cfg.health_via {
            Some(p) => inventory::select(&inv, p)?.iter().map(|h| h.name.clone()).collect(),
            None => vec![],
        };
        let root = render(host, "root", &cfg.root)?;
        if let Some(why) = crate::deploy::config::check_root(&root) {
            return Err(Error::new(ErrorKind::Inventory, format!("deploy.{}.root {why}, got {root:?}", cfg.name))
                .at_file(&inv.path)
                .host(&host.name)
                .hint("an absolute folder of its own, e.g. root = \"/srv/microblog\""));
        }
        plans.push(HostPlan {
            host: host.name.clone(),
            settings: Settings {
                root,
                user: render(host, "user", &cfg.user)?,
                env_file: cfg.env_file.as_ref().map(|e| render(host, "env_file", e)).transpose()?,
                build: cfg.build.iter().map(|b| render(host, "build", b)).collect::<Result<_>>()?,
                restart: render(host, "restart", &cfg.restart)?,
                keep: cfg.keep,
                cache: match &cfg.cache {
                    Some(c) => Some(crate::deploy::config::Cache {
                        build: c.build.iter().map(|b| render(host, "cache_build", b)).collect::<Result<_>>()?,
                        ..c.clone()
                    }),
                    None => None,
                },
                confirm_timeout: cfg.confirm_timeout,
                deployed_by: deployed_by.clone(),
            },
            target: target.clone(),
            health_address: String::new(),
            health_port,
            drain: None,
            via,
        });
        let plan = plans.last_mut().expect("just pushed");
        plan.health_address = render(host, "health_address", &cfg.health_address)?;
        // Rolling (other hosts stay in rotation): drained while it is deployed.
        if cfg.drain && !plan.via.is_empty() && hosts.len() > cfg.batch {
            // A drain is a session of its own on the via host (its lock); on the host being
            // deployed that lock is the deploy's own, so the drain would wait on itself.
            if plan.via.contains(&plan.host) {
                return Err(Error::new(
                    ErrorKind::Inventory,
                    format!(
                        "deploy.{}: {} is one of its own health_via hosts, so it cannot be drained while it is deployed",
                        cfg.name, plan.host
                    ),
                )
                .at_file(&inv.path)
                .host(&plan.host)
                .field("health_via")
                .hint("let health_via name only the nginx hosts that are not deployed here, or set drain = false"));
            }
            plan.drain = Some(format!("{}:{}", plan.health_address, plan.health_port));
        }
    }

    let pool = Pool::new(inv.clone(), transport::Options { accept_new: global.accept_new });
    let names: Vec<String> = plans.iter().map(|p| p.host.clone()).collect();
    let printer = Printer::new(&global.output, "deploy", &names, args.json);
    for w in &warnings {
        printer.warning_line(w);
    }
    if args.list {
        let lock_timeout = Duration::from_secs(args.lock_timeout);
        return runtime()?.block_on(list(
            pool,
            plans,
            &printer,
            args.json || global.output.quiet(),
            lock_timeout,
            args.timeout.map(Duration::from_secs),
        ));
    }
    let shared = Arc::new(Shared {
        health_path: cfg.health_path.clone(),
        health_status: cfg.health_status,
        health_timeout: cfg.health_timeout,
        via_port: cfg.health_via_port,
        lock_timeout: Duration::from_secs(args.lock_timeout),
        timeout: args.timeout.map(Duration::from_secs),
        batch: cfg.batch,
        payload,
        drain_file: cfg.drain_file.clone(),
        drain_reload: cfg.drain_reload.clone(),
    });
    let (sink, dials) = (printer.clone(), pool.clone());
    let on_event: EventSink = Arc::new(move |host: &str, e: Event<'_>| {
        // A host key recorded while dialing is said at the next event.
        for note in dials.take_notes() {
            sink.notice(&note);
        }
        sink.event(host, &e)
    });
    for plan in &plans {
        // The one remote command per host; the deploy script follows on its stdin.
        let host = inv.host(&plan.host).expect("planned host");
        printer.command(&plan.host, &remote::bootstrap(host.privilege()));
        printer.script(&plan.host, "deploy", || {
            deploy::steps::deploy(&plan.settings, &plan.target, &host.state_dir, shared.lock_timeout.as_secs())
        });
        if let Some(server) = &plan.drain {
            for via in &plan.via {
                printer.script(&plan.host, "drain", || {
                    deploy::steps::drain(server, via, &cfg.drain_file, &cfg.drain_reload)
                });
            }
        }
    }
    let results = runtime()?.block_on(async {
        let r = deploy::run(pool.clone(), plans, shared, on_event).await;
        for note in pool.take_notes() {
            printer.notice(&note);
        }
        pool.close_all().await;
        r
    });

    let mut statuses = Vec::new();
    for r in &results {
        let status = match (&r.error, r.skipped) {
            (_, true) => Status::Skipped,
            (Some(e), _) => Status::of_error(e),
            (None, _) => Status::Changed,
        };
        let release = r.release.clone().unwrap_or_else(|| "-".into());
        let detail = match (&r.error, r.skipped, r.rolled_back) {
            (_, true, _) => "not attempted: an earlier host failed".to_string(),
            (Some(_), _, true) => format!("{release}, rolled back"),
            _ => release,
        };
        printer.host_done(&HostDone::new(&r.host, status, r.duration, r.error.as_ref(), detail, r));
        statuses.push(status);
    }
    let live = results.iter().filter(|r| r.error.is_none() && !r.skipped).count();
    let code = exit_status(statuses, false);
    printer.finish(live, false, code);
    Ok(code)
}

/// `--list`: every host's release ledger, the live release marked.
async fn list(
    pool: Arc<Pool>,
    plans: Vec<HostPlan>,
    printer: &Printer,
    no_table: bool,
    lock_timeout: Duration,
    timeout: Option<Duration>,
) -> Result<i32> {
    let mut table = Table::new(&["host", "release", "status", "live", "by", "started", "revision", "result"]);
    let mut statuses = Vec::new();
    for plan in &plans {
        let t0 = Instant::now();
        let host = pool.inventory().host(&plan.host).expect("planned host");
        printer.command(&plan.host, &remote::bootstrap(host.privilege()));
        let listed = deploy::list(&pool, plan, lock_timeout, timeout, |holder| {
            printer.event(&plan.host, &Event::LockWait { holder: holder.into() })
        })
        .await;
        for note in pool.take_notes() {
            printer.notice(&note);
        }
        match listed {
            Ok(entries) => {
                let live = entries.iter().find(|e| e.live).map(|e| e.release.clone()).unwrap_or_default();
                let releases: Vec<String> = entries.iter().filter(|e| e.present).map(|e| e.release.clone()).collect();
                for e in &entries {
                    let status = if e.present { e.status.clone() } else { format!("{} (removed)", e.status) };
                    table.row(vec![
                        plan.host.clone(),
                        e.release.clone(),
                        status,
                        if e.live { "*".into() } else { String::new() },
                        e.by.clone(),
                        e.started.clone(),
                        e.revision.clone(),
                        e.result.clone(),
                    ]);
                }
                let detail = format!("{}, live {live}", crate::report::count(releases.len(), "release"));
                let fields = deploy::ledger::Listing { live, releases, ledger: entries };
                printer.host_done(&HostDone::new(&plan.host, Status::Ok, t0.elapsed(), None, detail, fields));
                statuses.push(Status::Ok);
            }
            Err(e) => {
                let fields = deploy::ledger::Listing::default();
                let status = Status::of_error(&e);
                statuses.push(status);
                printer.host_done(&HostDone::new(
                    &plan.host,
                    status,
                    t0.elapsed(),
                    Some(&e),
                    e.kind.class().into(),
                    fields,
                ));
            }
        }
    }
    if !no_table {
        print!("{}", table.render());
    }
    pool.close_all().await;
    let code = exit_status(statuses, false);
    printer.finish(0, false, code);
    Ok(code)
}
