//! The typed events every multi-host command emits, and the one JSON Lines schema they are
//! printed in (`--json`): each line is one object with a `type` field. A domain's own events
//! (converge's changes, deploy's steps) and a host's own result fields are the domain's
//! types, reaching the printer through `HostEvent` and `Serialize`. The schema is
//! documented in docs/output.md ("JSON Lines"); an integration test checks every line against it.
//!
//! Progress events (`host_start`, `phase`) are left out with `-q`; `host` (one per host, when
//! it is done) and `summary` (last) are always printed.

use serde::Serialize;

use crate::error::Error;

/// One JSON Lines event. `host` events carry the command's own fields (flattened).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event<'a> {
    /// Work on a host begins.
    HostStart { host: &'a str },
    /// The host enters a phase (`connecting`, `probing`, `waiting for the host lock`, ...).
    Phase { host: &'a str, phase: &'a str, elapsed_ms: u64 },
    /// A remote command microctl runs on the host (`-vv`).
    Command { host: &'a str, command: &'a str },
    /// One whole line of the remote command's output (`exec`).
    Output { host: &'a str, stream: Stream, line: &'a str },
    /// A phase still runs (`--json` heartbeat, every MICROCTL_HEARTBEAT_SECS, default 30).
    Heartbeat { host: &'a str, phase: &'a str, running_ms: u64 },
    /// The steps of a host script microctl sends (`-vv`): a readable summary, never its
    /// payload.
    Script { host: &'a str, script: &'a str, steps: &'a [String] },
    /// A problem that does not fail the command (`check`; deploy: uncommitted files left out of a release): the hosts it concerns (or null),
    /// the message, and what to do (or null).
    Warning { host: Option<&'a str>, message: &'a str, hint: Option<&'a str> },
    /// The run failed before any host (a role error, a bad pattern, a bad deploy config):
    /// printed right before the `summary`.
    Error { error: ErrorJson },
    /// The run was interrupted (SIGINT, SIGTERM): no host starts any more, and the remote
    /// steps of `hosts` (each with the step it was in) are being stopped.
    Interrupted { signal: &'a str, hosts: &'a [Unfinished] },
    /// The run is done; always the last line.
    Summary(&'a Summary),
}

/// Which stream of the remote command a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a host ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Done, nothing (left) to change.
    Ok,
    /// Done, something changed (converge) or a release went live (deploy).
    Changed,
    /// `converge --check`: changes are pending.
    Pending,
    /// The host's work failed (a remote command's exit status, a failed step or health check).
    Failed,
    /// Never reached (connection, authentication, host key, jump host).
    Unreachable,
    /// Not attempted (deploy: an earlier batch failed).
    Skipped,
    /// The run was interrupted (Ctrl-C) while the host's work ran, or before it started.
    Interrupted,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Pending => "pending",
            Status::Failed => "failed",
            Status::Unreachable => "unreachable",
            Status::Skipped => "skipped",
            Status::Interrupted => "interrupted",
        }
    }

    /// How a host that ended with `err` is counted: unreachable when no session could be had
    /// on it (the transport classed the error, `transport::Unreached`), else failed.
    pub fn of_error(err: &Error) -> Status {
        use crate::error::ErrorKind;
        if err.kind == ErrorKind::Interrupted {
            Status::Interrupted
        } else if err.unreached.is_some() {
            Status::Unreachable
        } else {
            Status::Failed
        }
    }

    /// Whether the host counts as failed in the summary and the exit status.
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Failed | Status::Unreachable | Status::Skipped | Status::Interrupted)
    }
}

/// A multi-host command's exit status from its hosts' statuses: 1 when any host failed, else
/// 3 when `check` (converge `--check`) found changes pending, else 0.
pub fn exit_status(statuses: impl IntoIterator<Item = Status>, check: bool) -> i32 {
    let statuses: Vec<Status> = statuses.into_iter().collect();
    if statuses.iter().any(|s| s.is_failure()) {
        1
    } else if check && statuses.contains(&Status::Pending) {
        3
    } else {
        0
    }
}

/// A host's result, its JSON `host` object: the fields every command has, then the
/// command's own (`fields`, a type of the command's domain that serializes itself).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "host")]
pub struct HostDone<F> {
    pub host: String,
    pub status: Status,
    pub duration_ms: u64,
    pub error: Option<ErrorJson>,
    /// The recap table's `detail` column (not in JSON: the command's fields say it).
    #[serde(skip)]
    pub detail: String,
    /// The error as printed in text mode (with its hint), not in JSON.
    #[serde(skip)]
    pub error_text: Option<String>,
    /// The error, when no session could be had on the host: text mode prints it at the end,
    /// once for every host the same failure hit (`report::unreached`).
    #[serde(skip)]
    pub unreached: Option<Error>,
    #[serde(flatten)]
    pub fields: F,
}

impl<F: Serialize> HostDone<F> {
    pub fn new(
        host: &str,
        status: Status,
        duration: std::time::Duration,
        error: Option<&Error>,
        detail: String,
        fields: F,
    ) -> HostDone<F> {
        let unreached = error.filter(|e| e.unreached.is_some());
        HostDone {
            host: host.to_string(),
            status,
            duration_ms: duration.as_millis() as u64,
            error: error.map(ErrorJson::new),
            // Never reached: the command's own detail has nothing to say, the class does.
            detail: unreached.map_or(detail, super::unreached::detail),
            error_text: error.map(|e| e.to_string()),
            unreached: unreached.map(Error::duplicate),
            fields,
        }
    }
}

/// The last line: counts over hosts, the exit status.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub command: &'static str,
    pub hosts: usize,
    /// Hosts whose status is `ok`, `changed` or `pending`.
    pub ok: usize,
    /// Hosts whose status is `failed`, `unreachable` or `skipped`.
    pub failed: usize,
    pub unreachable: usize,
    /// converge: resources changed (pending with `--check`); deploy: hosts on a new release.
    pub changed: usize,
    pub check: bool,
    pub duration_ms: u64,
    pub exit_code: i32,
    /// The signal that interrupted the run (`SIGINT`, `SIGTERM`), or null.
    pub interrupted: Option<&'static str>,
}

/// A host whose work was under way when the run was interrupted, and the step it was in.
#[derive(Debug, Clone, Serialize)]
pub struct Unfinished {
    pub host: String,
    pub step: String,
}

/// An error as JSON: `class` and `message`, and where known the jump hop, task, hint, detail,
/// and `reason`: why no session could be had on the host (`transport::Unreached`; behind a
/// failed jump host, the failing hop's reason).
#[derive(Debug, Serialize)]
pub struct ErrorJson {
    pub class: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hop: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ErrorJson {
    pub fn new(err: &Error) -> ErrorJson {
        ErrorJson {
            class: err.kind.class(),
            message: err.one_line(),
            reason: err.unreached.map(|u| u.reason()),
            hop: err.hop.clone(),
            task: err.task.clone(),
            hint: err.hint.clone(),
            detail: err.detail.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_status_comes_from_the_hosts() {
        use Status::*;
        assert_eq!(exit_status([Ok, Changed], false), 0);
        assert_eq!(exit_status([Ok, Pending], true), 3);
        assert_eq!(exit_status([Pending, Skipped], true), 1);
        assert_eq!(exit_status([Unreachable], false), 1);
        assert_eq!(exit_status([], true), 0);
    }

    #[test]
    fn events_serialize_with_a_type_field() {
        let e = Event::Output { host: "web", stream: Stream::Stderr, line: "x" };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"type":"output","host":"web","stream":"stderr","line":"x"}"#
        );
        #[derive(Serialize)]
        struct Exec {
            exit_code: Option<u32>,
            stdout: &'static str,
        }
        let done = HostDone {
            host: "a".into(),
            status: Status::Failed,
            duration_ms: 5,
            error: None,
            detail: "exit 3".into(),
            error_text: None,
            unreached: None,
            fields: Exec { exit_code: Some(3), stdout: "o\n" },
        };
        assert_eq!(
            serde_json::to_value(&done).unwrap(),
            serde_json::json!({"type":"host","host":"a","status":"failed","duration_ms":5,"error":null,"exit_code":3,"stdout":"o\n"})
        );
    }
}
