//! Privilege: how a command gets root on a host. The one place that spells `sudo -n`
//! (non-interactive: a sudo that wants a password fails at once instead of hanging).

use crate::shell::quote;

/// How privileged work runs on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    /// Already root (or `become = false`): run as is.
    AsLogin,
    /// Through `sudo -n sh -c '...'`.
    Sudo,
}

impl Privilege {
    /// `sudo` when asked for and the login user is not root.
    pub fn new(want_root: bool, user: &str) -> Privilege {
        if want_root && user != "root" { Privilege::Sudo } else { Privilege::AsLogin }
    }

    /// `command` as the remote login shell should run it to get this privilege.
    pub fn wrap(self, command: &str) -> String {
        match self {
            Privilege::AsLogin => command.to_string(),
            Privilege::Sudo => format!("sudo -n sh -c {}", quote(command)),
        }
    }

    /// `exec PROGRAM`, through `sudo -n` when needed: the login shell replaces itself with it
    /// (no login shell left waiting: one process fewer on hosts whose shell would fork).
    pub fn exec(self, program: &str) -> String {
        match self {
            Privilege::AsLogin => format!("exec {program}"),
            Privilege::Sudo => format!("exec sudo -n {program}"),
        }
    }

    /// `command` run by `sh -c`, through sudo when needed (a constant shell whatever the
    /// login shell is).
    pub fn sh(self, command: &str) -> String {
        match self {
            Privilege::AsLogin => format!("sh -c {}", quote(command)),
            Privilege::Sudo => self.wrap(command),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_in_sudo_only_when_needed() {
        assert_eq!(Privilege::new(true, "deploy"), Privilege::Sudo);
        assert_eq!(Privilege::new(true, "root"), Privilege::AsLogin);
        assert_eq!(Privilege::new(false, "deploy"), Privilege::AsLogin);
        assert_eq!(Privilege::Sudo.wrap("id -u && echo 'x'"), r"sudo -n sh -c 'id -u && echo '\''x'\'''");
        assert_eq!(Privilege::AsLogin.wrap("id -u"), "id -u");
        assert_eq!(Privilege::AsLogin.sh("id -u"), "sh -c 'id -u'");
        assert_eq!(Privilege::Sudo.sh("id -u"), "sudo -n sh -c 'id -u'");
        assert_eq!(Privilege::AsLogin.exec("sh -s"), "exec sh -s");
        assert_eq!(Privilege::Sudo.exec("sh -s"), "exec sudo -n sh -s");
    }
}
