//! `microctl exec PATTERN -- CMD`: run an ad-hoc command on every matched host in parallel,
//! streaming `host | line` output, then the recap (or JSON Lines with `--json`), all through
//! `report::Printer`; the secrets the hosts' vars refer to are masked in it when readable.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;

use super::{load_inventory, runtime};
use crate::cli::{ExecArgs, GlobalArgs};
use crate::error::Result;
use crate::inventory::{self, Host};
use crate::remote::Privilege;
use crate::report::Printer;
use crate::report::event::{ExecHost, HostDone, HostFields, Status, Stream};
use crate::transport::{ExecOutput, Output, Pool};

pub fn run(global: &GlobalArgs, args: ExecArgs) -> Result<i32> {
    let inv = load_inventory(global)?;
    let selected = inventory::select(&inv, args.hosts())?;
    // Output is masked with the secrets these hosts' vars refer to, where readable unasked.
    crate::secrets::known::register_readable(&inv, &selected);
    let hosts: Vec<String> = selected.iter().map(|h| h.name.clone()).collect();
    let command = args.command.join(" ");
    let printer = Printer::new("exec", &hosts, args.json);

    runtime()?.block_on(async {
        let pool = Pool::new(inv.clone(), super::connect_options(global, &args.wait, &printer));
        let forks = Arc::new(Semaphore::new(args.forks as usize));
        let mut tasks = Vec::new();
        for host in &selected {
            let (pool, forks, host, printer) = (pool.clone(), forks.clone(), host.clone(), printer.clone());
            let command = command.clone();
            let sudo = args.sudo;
            tasks.push(tokio::spawn(async move {
                let _slot = forks.acquire_owned().await.expect("forks semaphore");
                let t0 = Instant::now();
                printer.host_start(&host.name);
                let outcome = run_on_host(&pool, &host, &command, sudo, &printer).await;
                printer.host_done(&host_done(&host.name, t0.elapsed(), outcome));
            }));
        }
        for t in tasks {
            t.await.expect("host task panicked");
        }
        pool.close_all().await;
    });
    Ok(printer.finish(0, false))
}

async fn run_on_host(pool: &Pool, host: &Host, command: &str, sudo: bool, printer: &Printer) -> Result<ExecOutput> {
    let name = host.name.as_str();
    printer.phase(name, "connecting", false);
    let conn = pool.connect(host).await?;
    // --sudo asks for root whatever `become` says; a root login needs no sudo.
    let command = Privilege::new(sudo, &host.user).wrap(command);
    printer.phase(name, "running", true);
    printer.command(name, &command);
    conn.exec(&command, &[], |out| match out {
        Output::Stdout(d) => printer.output(name, Stream::Stdout, d),
        Output::Stderr(d) => printer.output(name, Stream::Stderr, d),
    })
    .await
}

fn host_done(host: &str, duration: std::time::Duration, outcome: Result<ExecOutput>) -> HostDone {
    match outcome {
        Ok(out) => {
            let (status, detail) = match (out.success(), out.exit_code, &out.signal) {
                (true, _, _) => (Status::Ok, "exit 0".to_string()),
                (false, Some(c), _) => (Status::Failed, format!("exit {c}")),
                (false, None, s) => (Status::Failed, format!("signal {}", s.clone().unwrap_or_default())),
            };
            let error = out.signal.as_ref().map(|s| {
                crate::error::Error::new(crate::error::ErrorKind::Remote, format!("killed by signal {s}")).host(host)
            });
            let fields = HostFields::Exec(ExecHost {
                exit_code: out.exit_code,
                signal: out.signal.clone(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
            HostDone::new(host, status, duration, error.as_ref(), detail, fields)
        }
        Err(e) => {
            let fields = HostFields::Exec(ExecHost {
                exit_code: None,
                signal: None,
                stdout: String::new(),
                stderr: String::new(),
            });
            HostDone::new(host, Status::of_error(&e), duration, Some(&e), e.kind.class().to_string(), fields)
        }
    }
}
