//! Command-line definitions (clap derive). Parsing only: `command::dispatch` acts on them.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

mod complete;

#[derive(Debug, Parser)]
#[command(name = "microctl", version = env!("MICROCTL_VERSION"), about = "Converge, deploy and run commands on hosts over SSH")]
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
    /// Folder of roles [default: `roles` next to the inventory, else ./roles].
    #[arg(long, env = "MICROCTL_ROLES", global = true)]
    pub roles_dir: Option<PathBuf>,
    /// Print only host errors and the summary line.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print each host's phases and timings; twice (-vv) also the remote commands.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Color: auto (a terminal, unless NO_COLOR is set or CLICOLOR_FORCE forces it), always, never.
    #[arg(long, global = true, value_enum, default_value_t = crate::report::ColorChoice::Auto, value_name = "WHEN")]
    pub color: crate::report::ColorChoice,
    /// The output settings of the flags above, built once after parsing (`lib::run`).
    #[arg(skip)]
    pub output: crate::report::Settings,
    /// Print JSON (converge, exec, deploy, check, inventory): before or after the subcommand,
    /// like every option here; each of those reads it as its own `--json`.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command on every host matching PATTERN, in parallel.
    Exec(ExecArgs),
    /// Show hosts, groups, vars and each host's jump chain.
    Inventory(InventoryArgs),
    /// Bring hosts to the state their roles describe.
    Converge(ConvergeArgs),
    /// Check inventory, roles and templates offline: render everything for every host, no SSH.
    Check(CheckArgs),
    /// Gather and print the facts of the hosts matching PATTERN (all by default), fresh, in
    /// parallel; they are cached for converge.
    Facts(FactsArgs),
    /// Deploy an app ([deploy.NAME] in the inventory): new release, health check, rollback.
    Deploy(DeployArgs),
    /// Open a shell on HOST through its jump chain (a PTY when stdin is a terminal), or run CMD;
    /// exits with the remote exit status.
    Ssh(SshArgs),
    /// Print an OpenSSH client config for the hosts (jump chains as ProxyJump), for plain
    /// ssh, scp and rsync: `microctl ssh-config > cfg; ssh -F cfg app`.
    SshConfig(SshConfigArgs),
    /// Print shell completions: `microctl completions bash > /etc/bash_completion.d/microctl`.
    Completions(CompletionsArgs),
    /// Print a manual page (roff): `microctl man | man -l -`, `microctl man exec`; or write
    /// them all: `microctl man --dir /usr/local/share/man/man1`.
    Man(ManArgs),
    /// The local lab: the four microblog hosts as real systemd machines on this computer.
    #[command(subcommand)]
    Lab(LabCommand),
    /// Secrets in secrets.toml next to the inventory, encrypted to the team's SSH public keys;
    /// vars refer to them as `name = { secret = "NAME" }`.
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// List the secrets' names (values stay encrypted).
    List,
    /// Print one secret's value, decrypted with your SSH key.
    Show { name: String },
    /// Set a secret from stdin (prompted without echo on a terminal; one trailing newline is
    /// dropped). Creates secrets.toml, encrypted to your public key, if there is none.
    Set { name: String },
    /// Remove a secret.
    Remove { name: String },
    /// Edit every secret in $VISUAL/$EDITOR as TOML (a private temp file, removed after);
    /// changed values are re-encrypted, unchanged ones kept as they were.
    Edit,
    /// List the recipients (SSH public keys) secrets are encrypted to, with fingerprints.
    Recipients,
    /// Re-encrypt every secret to the current recipients (after adding or removing one).
    Rekey,
    /// Make an ed25519 SSH key pair and store its private key as secret NAME (templates:
    /// `{{ NAME }}`, and `{{ NAME | ssh_public_key }}` for the public line); prints the public line.
    Keygen {
        name: String,
        /// Replace an existing NAME (rotation: the next converge swaps the public line in every
        /// `[[authorized_key]]` that uses it).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Build (and cache) the image, start the four hosts, write LAB/inventory.toml.
    Up {
        /// Also run a second app host, `app2` (198.18.1.21, private net, reached through web,
        /// group app: nginx's upstream and Prometheus include it after a converge).
        #[arg(long)]
        app2: bool,
    },
    /// Stop the hosts and remove every namespace, link, route, cgroup and mount of the lab.
    Down {
        /// Also forget the hosts' changes (the base image stays cached).
        #[arg(long)]
        fresh: bool,
    },
    /// Show each host's state and address.
    Status,
    /// Open a shell on a lab host, or run CMD (app goes through web): `microctl ssh` on the
    /// lab's inventory.
    Ssh {
        host: String,
        /// A command to run instead of a shell.
        #[arg(last = true)]
        command: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The deploy to run: a [deploy.NAME] table of the inventory.
    #[arg(add = complete::deploys())]
    pub app: String,
    /// Only these of the deploy's hosts (a canary, or the host that failed): names, groups,
    /// globs, comma lists, `!name`; default: all of its `hosts`.
    #[arg(add = complete::hosts())]
    pub pattern: Option<String>,
    #[command(flatten)]
    pub limit: Limit,
    #[command(flatten)]
    pub wait: Wait,
    /// List each host's release ledger: every release's status (healthy, failed, incomplete),
    /// who deployed it, when, from which revision, the result, and which one is live.
    #[arg(long, conflicts_with_all = ["rollback", "git_ref"])]
    pub list: bool,
    /// Switch back to the newest HEALTHY release older than the live one, or to RELEASE
    /// (health-checked like a deploy).
    #[arg(long, value_name = "RELEASE", num_args = 0..=1, default_missing_value = "", conflicts_with = "git_ref")]
    pub rollback: Option<String>,
    /// Git ref to deploy (a branch, tag or commit SHA of the source checkout or repository).
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// Deploy this folder (relative to the current directory, e.g. a CI workspace) or git URL
    /// instead of the inventory's `source`.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["list", "rollback"])]
    pub source: Option<String>,
    /// Set a variable: NAME=VALUE (a string, as typed) or NAME:=VALUE (a TOML value).
    #[arg(short = 'e', long = "extra-var", value_name = "NAME=VALUE")]
    pub extra_vars: Vec<String>,
    /// Print one JSON object per host, then a summary object (JSON Lines).
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for another run's lock on a host before failing.
    #[arg(long, default_value_t = 60)]
    pub lock_timeout: u64,
    /// Seconds each phase on a host may take once connected (lock wait excepted) before the
    /// host fails; overrides the hosts' `timeout` setting (default 600).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub timeout: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ConvergeArgs {
    /// Hosts: `all` (the default), names, groups, globs (`web*`), comma lists, `!name` to exclude.
    #[arg(add = complete::hosts())]
    pub pattern: Option<String>,
    #[command(flatten)]
    pub limit: Limit,
    #[command(flatten)]
    pub wait: Wait,
    /// Probe and show what would change; change nothing. Exit 3 when changes are pending.
    #[arg(long)]
    pub check: bool,
    /// Show unified diffs of changed text files (sensitive files excepted).
    #[arg(long)]
    pub diff: bool,
    /// Only apply the resources of these roles (comma list).
    #[arg(long, value_delimiter = ',')]
    pub roles: Option<Vec<String>>,
    /// Set a variable, highest precedence: NAME=VALUE sets the string VALUE as typed;
    /// NAME:=VALUE reads VALUE as TOML (`-e n:=5`, `-e 'ports:=[80, 443]'`).
    #[arg(short = 'e', long = "extra-var", value_name = "NAME=VALUE")]
    pub extra_vars: Vec<String>,
    /// How many hosts to work on at once.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub forks: u32,
    /// Print one JSON object per host, then a summary object (JSON Lines).
    #[arg(long)]
    pub json: bool,
    /// Seconds to wait for another run's lock on a host before failing.
    #[arg(long, default_value_t = 60)]
    pub lock_timeout: u64,
    /// Seconds each phase on a host may take once connected (lock wait excepted) before the
    /// host fails; overrides the hosts' `timeout` setting (default 600).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub timeout: Option<u64>,
}

impl Command {
    /// The command's name when it prints JSON Lines (`--json`): its failures before any host
    /// are JSON too (`report::json_failure`).
    pub fn json_name(&self) -> Option<&'static str> {
        match self {
            Command::Converge(a) if a.json => Some("converge"),
            Command::Exec(a) if a.json => Some("exec"),
            Command::Deploy(a) if a.json => Some("deploy"),
            Command::Check(a) if a.json => Some("check"),
            Command::Facts(a) if a.json => Some("facts"),
            _ => None,
        }
    }
}

/// `-l/--limit PATTERN`: the host pattern as an option (Ansible's and pyinfra's habit), on the
/// commands that take a PATTERN (converge, exec, deploy).
#[derive(Debug, Args)]
pub struct Limit {
    /// The hosts, as an option: the same as PATTERN.
    #[arg(short = 'l', long = "limit", value_name = "PATTERN", conflicts_with = "pattern", add = complete::hosts())]
    pub limit: Option<String>,
}

/// `--wait SECS`: keep dialing hosts that do not answer yet (fresh VMs still booting), on the
/// commands that connect to a selection (converge, exec, deploy).
#[derive(Debug, Args)]
pub struct Wait {
    /// Keep retrying a host that refuses connections, does not answer or refuses our key, for
    /// up to SECS (a VM still booting); a changed or unknown host key is never waited out.
    #[arg(long = "wait", value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub secs: Option<u64>,
}

impl Limit {
    /// The pattern given by `--limit` or as `pattern`, if any.
    pub fn or<'a>(&'a self, pattern: &'a Option<String>) -> Option<&'a str> {
        self.limit.as_deref().or(pattern.as_deref())
    }
}

impl ConvergeArgs {
    /// The host pattern, from PATTERN or `--limit`.
    pub fn hosts(&self) -> &str {
        self.limit.or(&self.pattern).unwrap_or("all")
    }
}

impl ExecArgs {
    /// The host pattern, from PATTERN or `--limit` (clap requires one).
    pub fn hosts(&self) -> &str {
        self.limit.or(&self.pattern).unwrap_or("all")
    }
}

impl DeployArgs {
    /// The subset of the deploy's hosts asked for, from PATTERN or `--limit`.
    pub fn only(&self) -> Option<&str> {
        self.limit.or(&self.pattern)
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Set a variable: NAME=VALUE (a string, as typed) or NAME:=VALUE (a TOML value).
    #[arg(short = 'e', long = "extra-var", value_name = "NAME=VALUE")]
    pub extra_vars: Vec<String>,
    /// Render every host with these facts (over the default Debian 12 amd64, 2 cpus, 2048 MiB),
    /// e.g. `os_id=ubuntu,os_version_id=24.04,arch=arm64`; without it, each host's cached facts
    /// (from its last converge or `microctl facts`), else the default.
    #[arg(long, value_name = "NAME=VALUE,...")]
    pub facts: Option<String>,
    /// Print one JSON object per host, warnings, then a summary object (JSON Lines).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct FactsArgs {
    /// Hosts: `all` (the default), names, groups, globs (`web*`), comma lists, `!name` to exclude.
    pub pattern: Option<String>,
    #[command(flatten)]
    pub wait: Wait,
    /// How many hosts to work on at once.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub forks: u32,
    /// Print one JSON object per host, then a summary object (JSON Lines).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Hosts: `all`, names, groups, globs (`web*`), comma lists, `!name` to exclude.
    #[arg(required_unless_present = "limit", add = complete::hosts())]
    pub pattern: Option<String>,
    #[command(flatten)]
    pub limit: Limit,
    #[command(flatten)]
    pub wait: Wait,
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
    /// Show only these hosts: `all`, names, groups, globs (`web*`), comma lists, `!name`.
    #[arg(add = complete::hosts())]
    pub pattern: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Print per host the inbound firewall rules its roles need (SSH from the jump host only).
    #[arg(long)]
    pub ports: bool,
}

#[derive(Debug, Args)]
pub struct SshArgs {
    /// The host (a name from the inventory).
    #[arg(add = complete::host_names())]
    pub host: String,
    /// A command to run instead of a shell, after `--`; run by the remote user's shell.
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct SshConfigArgs {
    /// Only these hosts (and their jump hosts): `all`, names, groups, globs, `!name`.
    #[arg(default_value = "all", add = complete::hosts())]
    pub pattern: String,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The subcommand whose page to print (microctl-SUBCOMMAND(1)); default: microctl(1).
    pub subcommand: Option<String>,
    /// Write every page (microctl.1 and microctl-SUBCOMMAND.1) into DIR instead.
    #[arg(long, value_name = "DIR", conflicts_with = "subcommand")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// `microctl exec all uptime` (or `ssh app uptime`) without `--`: clap's "unexpected argument"
/// becomes a usage error that says where the remote command goes, with the line corrected.
pub fn command_without_dashes(e: &clap::Error, args: &[OsString]) -> Option<crate::error::Error> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let Some(ContextValue::String(bad)) = e.get(ContextKind::InvalidArg) else { return None };
    if bad.starts_with('-') {
        return None; // a mistyped option of ours, not a command
    }
    let words: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    // The subcommand: the first word that is not an option or a global option's value.
    let mut i = 1;
    while i < words.len() && words[i].starts_with('-') {
        let takes_value = ["-i", "--inventory", "--roles-dir", "--color"].contains(&words[i].as_str());
        i += if takes_value { 2 } else { 1 };
    }
    let sub = words.get(i)?.as_str();
    if !matches!(sub, "exec" | "ssh") || words.iter().any(|w| w == "--") {
        return None;
    }
    let at = i + 1 + words[i + 1..].iter().position(|w| w == bad)?;
    let mut fixed: Vec<String> = words.iter().map(|w| crate::shell::quote(w)).collect();
    fixed[0] = "microctl".into();
    fixed.insert(at, "--".into());
    Some(
        crate::error::Error::usage(format!("unexpected argument `{bad}`: put the remote command after `--`"))
            .hint(format!("e.g. {}", fixed.join(" "))),
    )
}

/// Where each option of [`GlobalArgs`] applies (by argument id, then subcommands). One rule for
/// all of them: written before or after the subcommand, the same; on a subcommand that ignores
/// it, not shown (help, man page, completions) and refused when given.
const APPLIES: &[(&str, &[&str])] = &[
    ("inventory", &["exec", "inventory", "converge", "check", "deploy", "ssh", "ssh-config", "secrets", "facts"]),
    ("roles_dir", &["inventory", "converge", "check", "deploy"]),
    ("accept_new", &["exec", "converge", "deploy", "ssh", "lab", "facts"]),
    ("quiet", &["exec", "converge", "check", "deploy", "secrets"]),
    ("verbose", &["exec", "converge", "check", "deploy"]),
    ("color", &["exec", "inventory", "converge", "check", "deploy", "ssh", "ssh-config", "secrets", "lab", "facts"]),
    ("json", &["exec", "inventory", "converge", "check", "deploy", "facts"]),
];

fn applies(id: &str, sub: &str) -> bool {
    APPLIES.iter().find(|(a, _)| *a == id).is_none_or(|(_, subs)| subs.contains(&sub))
}

/// The clap command, with each global option hidden on the subcommands it does not apply to
/// (a hidden copy in the subcommand keeps clap from propagating the shown one there).
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    let globals: Vec<clap::Arg> = cmd.get_arguments().filter(|a| a.is_global_set()).cloned().collect();
    let subs: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
    for sub in &subs {
        for arg in globals.iter().filter(|a| !applies(a.get_id().as_str(), sub)) {
            let hidden = arg.clone().hide(true);
            cmd = cmd.mut_subcommand(sub, |s| s.arg(hidden));
        }
    }
    cmd
}

/// Why a command line was not run: clap's own error (help and version included), or an
/// option given to a subcommand it does not apply to.
#[derive(Debug)]
pub enum Refused {
    Clap(clap::Error),
    Usage(crate::error::Error),
}

/// Parses `args` (program name first) by [`command`]'s rules.
pub fn parse(args: &[OsString]) -> Result<Cli, Refused> {
    let matches = command().try_get_matches_from(args).map_err(Refused::Clap)?;
    if let Some((sub, _)) = matches.subcommand() {
        for (id, subs) in APPLIES {
            let given = matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
            if given && !subs.contains(&sub) {
                let flag = Cli::command()
                    .get_arguments()
                    .find(|a| a.get_id() == id)
                    .and_then(|a| a.get_long())
                    .map(|l| format!("--{l}"))
                    .unwrap_or_else(|| id.to_string());
                return Err(Refused::Usage(
                    crate::error::Error::usage(format!("`{flag}` does not apply to `microctl {sub}`"))
                        .hint(format!("`{flag}` applies to: {}", subs.join(", "))),
                ));
            }
        }
    }
    Cli::from_arg_matches(&matches).map_err(Refused::Clap)
}
