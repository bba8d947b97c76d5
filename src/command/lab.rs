//! `microctl lab up | down [--fresh] | status | ssh HOST`.

use crate::cli::{GlobalArgs, LabCommand, SshArgs};
use crate::error::{Error, Result};
use crate::lab;
use crate::report::Table;

pub fn run(global: &GlobalArgs, cmd: LabCommand) -> Result<i32> {
    match cmd {
        LabCommand::Up { app2 } => {
            let inventory = lab::up(app2)?;
            let i = inventory.display();
            println!("The lab is up. Use it with:");
            println!("  microctl -i {i} exec all -- uptime");
            println!("  microctl -i {i} converge");
            println!("  microctl lab ssh app          (or: microctl -i {i} ssh-config > cfg; ssh -F cfg app)");
            println!("Site (after converge and deploy): http://198.18.0.11/   Prometheus: http://198.18.0.12:9090/");
            Ok(0)
        }
        LabCommand::Down { fresh } => {
            lab::down(fresh)?;
            println!("The lab is down{}.", if fresh { " and its hosts reset" } else { "" });
            Ok(0)
        }
        LabCommand::Status => {
            let mut table = Table::new(&["host", "state", "address"]);
            let mut up = 0;
            for (name, running, addr) in lab::status()? {
                up += usize::from(running);
                table.row(vec![name, if running { "running".into() } else { "stopped".into() }, addr]);
            }
            print!("{}", table.render());
            Ok(if up == lab::hosts(lab::has_app2()).len() { 0 } else { 1 })
        }
        LabCommand::Ssh { host, command } => {
            let names: Vec<&str> = lab::hosts(lab::has_app2()).iter().map(|h| h.name).collect();
            if !names.contains(&host.as_str()) {
                return Err(
                    Error::usage(format!("no lab host `{host}`")).hint(format!("lab hosts: {}", names.join(", ")))
                );
            }
            super::ssh::run(&lab::dir().join("inventory.toml"), global.accept_new, SshArgs { host, command })
        }
    }
}
