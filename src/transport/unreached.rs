//! Why no session could be had on a host: the precise class of every failure to get one
//! (TCP refused, a timeout, a host key, authentication, a jump host, a refused channel...).
//! The transport sets it on each such error where it is made (`Error::unreached`); a host
//! whose error carries one is `unreachable` (`report::event::Status::of_error`), the recap's
//! detail says it in words, and `--json` gives it as `error.reason`. Behind a jump host that
//! failed, it is the failing hop's own reason (the error's `hop` names that hop).

/// The precise class of a failure to get a session on a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreached {
    /// Nothing listens on the address and port (TCP connection refused).
    Refused,
    /// No route to the host or its network.
    NoRoute,
    /// The TCP connection failed otherwise (a name that does not resolve, ...).
    Connect,
    /// The jump host could not open the tunnel to the host.
    Tunnel,
    /// Connecting or authenticating took longer than `connect_timeout`.
    Timeout,
    /// The SSH handshake failed (not an SSH server, or it hung up).
    Handshake,
    /// The configured identity file is missing, unreadable or readable by others.
    Identity,
    /// The server refused every credential offered.
    AuthRefused,
    /// Authentication broke off (a protocol error).
    AuthFailed,
    /// The host key is not in known_hosts (or could not be judged).
    HostKeyUnknown,
    /// The host key differs from the one recorded.
    HostKeyChanged,
    /// The host key is marked `@revoked`.
    HostKeyRevoked,
    /// The server refused to open a session channel or to start the command.
    SessionRefused,
    /// The connection was gone before a session could be opened on it.
    Lost,
}

impl Unreached {
    /// The stable name in JSON (`error.reason`).
    pub fn reason(self) -> &'static str {
        match self {
            Unreached::Refused => "refused",
            Unreached::NoRoute => "no_route",
            Unreached::Connect => "connect_failed",
            Unreached::Tunnel => "tunnel_refused",
            Unreached::Timeout => "timeout",
            Unreached::Handshake => "handshake_failed",
            Unreached::Identity => "identity",
            Unreached::AuthRefused => "auth_refused",
            Unreached::AuthFailed => "auth_failed",
            Unreached::HostKeyUnknown => "host_key_unknown",
            Unreached::HostKeyChanged => "host_key_changed",
            Unreached::HostKeyRevoked => "host_key_revoked",
            Unreached::SessionRefused => "session_refused",
            Unreached::Lost => "connection_lost",
        }
    }

    /// In words, for the recap's detail column.
    pub fn words(self) -> &'static str {
        match self {
            Unreached::Refused => "connection refused",
            Unreached::NoRoute => "no route to host",
            Unreached::Connect => "cannot connect",
            Unreached::Tunnel => "tunnel refused",
            Unreached::Timeout => "timed out",
            Unreached::Handshake => "SSH handshake failed",
            Unreached::Identity => "identity file unusable",
            Unreached::AuthRefused => "authentication refused",
            Unreached::AuthFailed => "authentication failed",
            Unreached::HostKeyUnknown => "host key unknown",
            Unreached::HostKeyChanged => "host key changed",
            Unreached::HostKeyRevoked => "host key revoked",
            Unreached::SessionRefused => "session refused",
            Unreached::Lost => "connection lost",
        }
    }

    /// A failed TCP connect, by what the system said.
    pub fn of_connect(e: &std::io::Error) -> Unreached {
        use std::io::ErrorKind::*;
        match e.kind() {
            ConnectionRefused => Unreached::Refused,
            TimedOut => Unreached::Timeout,
            HostUnreachable | NetworkUnreachable => Unreached::NoRoute,
            _ => Unreached::Connect,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connect_is_told_from_a_missing_route() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(Unreached::of_connect(&refused), Unreached::Refused);
        let no_route = std::io::Error::from(std::io::ErrorKind::HostUnreachable);
        assert_eq!(Unreached::of_connect(&no_route).words(), "no route to host");
        assert_eq!(Unreached::of_connect(&std::io::Error::other("lookup failed")).reason(), "connect_failed");
    }
}
