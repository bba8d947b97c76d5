//! Command-line definitions (clap derive). Parsing only: `command::dispatch` acts on them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "microctl", version, about = "Converge, deploy and run commands on hosts over SSH")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Inventory file.
    #[arg(short = 'i', long = "inventory", env = "MICROCTL_INVENTORY", global = true,
          default_value = crate::inventory::DEFAULT_PATH)]
    pub inventory: PathBuf,
    /// Record unknown host keys in known_hosts and continue (like OpenSSH's
    /// StrictHostKeyChecking=accept-new). A changed key is always refused.
    #[arg(long, global = true)]
    pub accept_new: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command on every host matching PATTERN, in parallel.
    Exec(ExecArgs),
    /// Show hosts, groups, vars and each host's jump chain.
    Inventory(InventoryArgs),
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Hosts: `all`, names, groups, globs (`web*`), comma lists, `!name` to exclude.
    pub pattern: String,
    /// The command, after `--`; run by the remote user's shell.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
    /// How many hosts to work on at once.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub forks: u32,
    /// Run the command as root through `sudo -n`.
    #[arg(long)]
    pub sudo: bool,
    /// Print one JSON object per host, then a summary object (JSON Lines).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
