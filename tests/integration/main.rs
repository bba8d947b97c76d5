//! Integration tests: the real `microctl` binary against real OpenSSH `sshd` daemons.
//! Needs root (sshd, network namespaces) and openssh-server; see README.md for the command.

mod support;

mod auth;
mod check_report;
mod completions;
mod converge;
mod converge_hostile;
mod converge_safety;
mod deploy;
mod deploy_check;
mod exec;
mod facts;
mod firewall;
mod golden;
mod host_bounds;
mod host_keys;
mod interrupt;
mod inventory_cli;
mod jump;
mod output;
mod readme;
mod remote_session;
mod role_errors;
mod roles_check;
mod roles_dir;
mod secrets;
mod sessions;
mod ssh;
mod unreachable;
mod users;
mod wait;
