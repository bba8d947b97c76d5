//! `microctl exec PATTERN -- CMD`: run an ad-hoc command on every matched host in parallel,
//! streaming `host | line` output, then a per-host summary (or JSON Lines with `--json`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Semaphore;

use super::{load_inventory, runtime};
use crate::cli::{ExecArgs, GlobalArgs};
use crate::error::Result;
use crate::inventory;
use crate::remote::Privilege;
use crate::report::{self, HostLines, Table};
use crate::transport::{ExecOutput, Options, Output, Pool};

struct HostResult {
    host: String,
    duration: Duration,
    outcome: Result<ExecOutput>,
}

impl HostResult {
    fn ok(&self) -> bool {
        matches!(&self.outcome, Ok(out) if out.success())
    }
}

pub fn run(global: &GlobalArgs, args: ExecArgs) -> Result<i32> {
    let inv = load_inventory(global)?;
    let hosts: Vec<String> = inventory::select(&inv, &args.pattern)?.iter().map(|h| h.name.clone()).collect();
    let command = args.command.join(" ");
    let color = report::color_enabled(&std::io::stdout());
    let width = hosts.iter().map(String::len).max().unwrap_or(0);
    let started = Instant::now();

    let results = runtime()?.block_on(async {
        let pool = Pool::new(inv.clone(), Options { accept_new: global.accept_new });
        let forks = Arc::new(Semaphore::new(args.forks as usize));
        let mut tasks = Vec::new();
        for (index, name) in hosts.iter().enumerate() {
            let (pool, forks, name) = (pool.clone(), forks.clone(), name.clone());
            let command = command.clone();
            let (json, sudo) = (args.json, args.sudo);
            tasks.push(tokio::spawn(async move {
                let _slot = forks.acquire_owned().await.expect("forks semaphore");
                let t0 = Instant::now();
                let lines = Arc::new(Mutex::new(HostLines::new(&name, index, width, color)));
                let outcome = run_on_host(&pool, &name, &command, sudo, json, &lines).await;
                let result = HostResult { host: name, duration: t0.elapsed(), outcome };
                if json {
                    report::json_line(&host_json(&result));
                } else {
                    let mut lines = lines.lock().expect("lines");
                    lines.flush();
                    if let Err(e) = &result.outcome {
                        lines.note(&format!("error: {}", e.one_line()));
                    }
                }
                result
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.expect("host task panicked"));
        }
        pool.close_all().await;
        results
    });

    let ok = results.iter().filter(|r| r.ok()).count();
    let unreachable = results.iter().filter(|r| r.outcome.is_err()).count();
    let failed = results.len() - ok - unreachable;
    if args.json {
        report::json_line(&json!({
            "type": "summary",
            "hosts": results.len(),
            "ok": ok,
            "failed": failed,
            "unreachable": unreachable,
            "duration_ms": started.elapsed().as_millis() as u64,
        }));
    } else {
        eprint!("{}", summary_table(&results));
        eprintln!(
            "{} hosts: {ok} ok, {failed} failed, {unreachable} unreachable in {}",
            results.len(),
            report::seconds(started.elapsed())
        );
    }
    Ok(if ok == results.len() { 0 } else { 1 })
}

async fn run_on_host(
    pool: &Pool,
    name: &str,
    command: &str,
    sudo: bool,
    json: bool,
    lines: &Mutex<HostLines>,
) -> Result<ExecOutput> {
    let conn = pool.connect(name).await?;
    let host = pool.inventory().host(name).expect("selected host");
    // --sudo asks for root whatever `become` says; a root login needs no sudo.
    let command = Privilege::new(sudo, &host.user).wrap(command);
    conn.exec(&command, &[], |out| {
        if json {
            return;
        }
        let mut lines = lines.lock().expect("lines");
        match out {
            Output::Stdout(d) => lines.stdout(d),
            Output::Stderr(d) => lines.stderr(d),
        }
    })
    .await
}

fn host_json(r: &HostResult) -> serde_json::Value {
    let (exit_code, stdout, stderr, error) = match &r.outcome {
        Ok(out) => {
            let error =
                out.signal.as_ref().map(|s| json!({ "class": "remote", "message": format!("killed by signal {s}") }));
            (
                json!(out.exit_code),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
                error.unwrap_or(serde_json::Value::Null),
            )
        }
        Err(e) => (serde_json::Value::Null, String::new(), String::new(), report::error_json(e)),
    };
    json!({
        "type": "host",
        "host": r.host,
        "exit_code": exit_code,
        "stdout": stdout,
        "stderr": stderr,
        "duration_ms": r.duration.as_millis() as u64,
        "error": error,
    })
}

fn summary_table(results: &[HostResult]) -> String {
    let mut table = Table::new(&["host", "status", "exit", "duration"]);
    for r in results {
        let (status, exit) = match &r.outcome {
            Ok(out) if out.success() => ("ok".to_string(), "0".to_string()),
            Ok(out) => (
                "failed".to_string(),
                out.exit_code
                    .map_or_else(|| format!("signal {}", out.signal.clone().unwrap_or_default()), |c| c.to_string()),
            ),
            Err(e) => (e.kind.class().to_string(), "-".to_string()),
        };
        table.row(vec![r.host.clone(), status, exit, report::seconds(r.duration)]);
    }
    table.render()
}
