//! `microctl exec PATTERN -- CMD`: run an ad-hoc command on every matched host in parallel
//! (through the one fan-out runner), streaming `host | line` output, then the recap (or JSON
//! Lines with `--json`), all through `report::Printer`; the secrets the hosts' vars refer to
//! are masked in it when readable.

use std::time::Instant;

use super::load_inventory;
use crate::cli::{ExecArgs, GlobalArgs};
use crate::error::Result;
use crate::fanout::Fanout;
use crate::inventory::{self, Host};
use crate::remote::Privilege;
use crate::report::Printer;
use crate::report::event::{HostDone, Status, Stream, exit_status};
use crate::transport::{ExecOutput, Output, Pool};

pub fn run(global: &GlobalArgs, args: ExecArgs) -> Result<i32> {
    let inv = load_inventory(global)?;
    let selected = inventory::select(&inv, args.hosts())?;
    // Output is masked with the secrets these hosts' vars refer to, where readable unasked.
    crate::secrets::known::register_readable(&inv, &selected);
    let hosts: Vec<String> = selected.iter().map(|h| h.name.clone()).collect();
    let command = args.command.join(" ");
    let printer = Printer::new(&global.output, "exec", &hosts, args.json);
    let pool = Pool::new(inv.clone(), super::connect_options(global, &args.wait, &printer));
    let fan = Fanout::new(pool, printer.clone(), args.forks as usize);
    let outcomes = fan.block_on(fan.each(selected.clone(), |host| {
        let (pool, printer, command, sudo) = (fan.pool().clone(), printer.clone(), command.clone(), args.sudo);
        async move {
            let t0 = Instant::now();
            let outcome = run_on_host(&pool, &host, &command, sudo, &printer).await;
            (outcome, t0.elapsed())
        }
    }))?;
    let mut statuses = Vec::new();
    for (host, outcome) in selected.iter().zip(outcomes) {
        let (outcome, took) = outcome.unwrap_or_else(|e| (Err(e), std::time::Duration::ZERO));
        let done = host_done(&host.name, took, outcome);
        printer.host_done(&done);
        statuses.push(done.status);
    }
    let code = exit_status(statuses, false);
    printer.finish(0, false, code);
    Ok(code)
}

async fn run_on_host(pool: &Pool, host: &Host, command: &str, sudo: bool, printer: &Printer) -> Result<ExecOutput> {
    let name = host.name.as_str();
    printer.phase(name, "connecting", false);
    let conn = pool.connect(host).await;
    for note in pool.take_notes() {
        printer.notice(&note);
    }
    let conn = conn?;
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

/// `exec`'s own fields of a host's JSON `host` object: the exit status and the whole output.
#[derive(Debug, serde::Serialize)]
struct ExecHost {
    exit_code: Option<u32>,
    signal: Option<String>,
    stdout: String,
    stderr: String,
}

fn host_done(host: &str, duration: std::time::Duration, outcome: Result<ExecOutput>) -> HostDone<ExecHost> {
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
            let fields = ExecHost {
                exit_code: out.exit_code,
                signal: out.signal.clone(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            };
            HostDone::new(host, status, duration, error.as_ref(), detail, fields)
        }
        Err(e) => {
            let fields = ExecHost { exit_code: None, signal: None, stdout: String::new(), stderr: String::new() };
            HostDone::new(host, Status::of_error(&e), duration, Some(&e), e.kind.class().to_string(), fields)
        }
    }
}
