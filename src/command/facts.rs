//! `microctl facts [PATTERN]`: gather the facts of every matched host, fresh (one exec per
//! host, through the pool, in parallel), cache them for converge (`crate::facts::cache`), and
//! print them: a table, or with `--json` one object per host (`{"host", "facts"}` or
//! `{"host", "error"}`) and a summary object. Exit 0 when every host answered, 1 otherwise.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{load_inventory, runtime};
use crate::cli::{FactsArgs, GlobalArgs};
use crate::error::Result;
use crate::facts::Facts;
use crate::report::Printer;
use crate::transport::Pool;

pub fn run(global: &GlobalArgs, args: FactsArgs) -> Result<i32> {
    let inv = load_inventory(global)?;
    let selected = crate::inventory::select(&inv, args.pattern.as_deref().unwrap_or("all"))?;
    let names: Vec<String> = selected.iter().map(|h| h.name.clone()).collect();
    // Quiet: only the connection's waits (`--wait`) go through it, to stderr.
    let printer = Printer::new(&global.output, "facts", &names, false);
    let results: Vec<(String, Result<Facts>)> = runtime()?.block_on(async {
        let pool = Pool::new(inv.clone(), super::connect_options(global, &args.wait, &printer));
        let forks = Arc::new(Semaphore::new(args.forks as usize));
        let tasks: Vec<_> = selected
            .iter()
            .map(|host| {
                let (pool, forks, host) = (pool.clone(), forks.clone(), host.clone());
                tokio::spawn(async move {
                    let _slot = forks.acquire_owned().await.expect("forks");
                    let gathered = crate::facts::gather_and_cache(&pool, &host).await;
                    (host.name.clone(), gathered.map(|g| g.facts))
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.expect("facts task panicked"));
        }
        pool.close_all().await;
        results
    });
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if args.json {
        for (host, result) in &results {
            let line = match result {
                Ok(f) => serde_json::json!({ "host": host, "facts": f }),
                Err(e) => serde_json::json!({ "host": host, "error": e.to_string() }),
            };
            println!("{line}");
        }
        println!("{}", serde_json::json!({ "summary": { "hosts": results.len(), "failed": failed } }));
    } else {
        print!("{}", table(&results));
        for (_, result) in &results {
            if let Err(e) = result {
                eprintln!("error: {e}");
            }
        }
    }
    Ok(if failed > 0 { 1 } else { 0 })
}

/// The facts as an aligned table, one host a row (failed hosts left out: their errors follow).
fn table(results: &[(String, Result<Facts>)]) -> String {
    let mut rows =
        vec![["HOST", "ARCH", "OS", "VERSION", "CODENAME", "CPUS", "MEM_MIB", "HOSTNAME", "BOOT_ID"].map(String::from)];
    for (host, result) in results {
        let Ok(f) = result else { continue };
        rows.push([
            host.clone(),
            f.arch.clone(),
            f.os_id.clone(),
            f.os_version_id.clone(),
            f.os_codename.clone(),
            f.cpus.to_string(),
            f.mem_mib.to_string(),
            f.hostname.clone(),
            f.boot_id.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..9).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
