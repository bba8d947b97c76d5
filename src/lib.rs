//! microctl: an SSH-based configuration and deployment orchestrator.
//!
//! Data flows one way: the inventory is parsed and resolved (`inventory`), hosts are reached
//! over one multiplexed SSH connection each, jump hosts shared (`transport`), and each command
//! (`command`) reports through one place (`report`). Every user-facing failure is an
//! [`error::Error`], rendered once, here, at the top.

pub(crate) mod apply;
pub(crate) mod cli;
pub(crate) mod clock;
pub(crate) mod command;
pub mod deploy;
pub mod error;
pub mod facts;
pub(crate) mod fanout;
pub(crate) mod firewall;
pub mod inventory;
pub(crate) mod lab;
pub(crate) mod login;
pub mod plan;
pub(crate) mod remote;
pub(crate) mod report;
pub mod role;
pub(crate) mod secrets;
pub(crate) mod shell;
pub mod transport;

use std::ffi::OsString;

/// Runs microctl with `args` (including the program name) and returns the exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let here = std::env::current_dir().ok();
    match clap_complete::CompleteEnv::with_factory(cli::command).try_complete(args.clone(), here.as_deref()) {
        Ok(true) => return 0,
        Ok(false) => {}
        Err(e) => {
            let _ = e.print();
            return 2;
        }
    }
    let mut cli = match cli::parse(&args) {
        Ok(cli) => cli,
        Err(cli::Refused::Usage(err)) => {
            report::print_error(&report::Settings::default(), &err);
            return err.exit_code();
        }
        Err(cli::Refused::Clap(e)) => {
            if let Some(err) = cli::command_without_dashes(&e, &args) {
                report::print_error(&report::Settings::default(), &err);
                return err.exit_code();
            }
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    cli.global.output = report::Settings::new(cli.global.quiet, cli.global.verbose, cli.global.color);
    let output = cli.global.output;
    let json = cli.command.json_name();
    let code = match command::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            report::print_error(&output, &err);
            if let Some(command) = json {
                report::json_failure(command, &err);
            }
            err.exit_code()
        }
    };
    // An interrupted run says so in its exit status, whatever its hosts' results.
    fanout::interrupted_exit().unwrap_or(code)
}
