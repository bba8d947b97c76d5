//! What a deploy does on a host, as typed events: `deploy` emits them as they happen, the
//! printer renders them through `report::HostEvent` (a `host | text` line, the host's phase
//! and heartbeat, or a JSON `deploy` object with an `event` kind, its fields and its text).
//! The text of each event is defined here once, so the TTY, plain and JSON outputs say the
//! same thing.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::report::HostEvent;

/// One thing that happened in a host's deploy. In JSON: `"event": "<snake_case kind>"` plus the
/// variant's fields (docs/output.md, "JSON Lines", `deploy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DeployEvent<'a> {
    /// Another run holds the host lock; this one waits.
    LockWait { holder: Cow<'a, str> },
    /// Another run holds the lock of `via`, a `health_via` host this deploy drains on; it waits.
    ViaLockWait { via: Cow<'a, str>, holder: Cow<'a, str> },
    /// The release this deploy installs (or, for `--rollback`, goes back to).
    Release { release: Cow<'a, str> },
    /// A release left half-built by a killed run was removed.
    CleanedIncomplete { release: Cow<'a, str> },
    /// A release left live but unconfirmed by a killed run was rolled back.
    RecoveredUnconfirmed { release: Cow<'a, str> },
    /// The cached build environment's inputs did not change: reused.
    CacheHit { key: Cow<'a, str> },
    /// The cached build environment is (re)built.
    CacheBuild { key: Cow<'a, str> },
    /// A build step starts.
    BuildStep { step: Cow<'a, str> },
    /// The host's confirm watchdog is armed: it rolls back unless confirmed within this.
    WatchdogArmed { confirm_secs: u64 },
    /// `current` points at the new release; the app restarts.
    Switch { release: Cow<'a, str> },
    /// Restarted: the health checks begin (the verdict is due within `confirm_secs`).
    HealthWait { confirm_secs: u64 },
    /// The app answered through the host's own connection.
    Healthy { http_status: u16, address: Cow<'a, str>, path: Cow<'a, str>, through: Cow<'a, str> },
    /// The site answered through nginx on a `health_via` host.
    HealthyVia { http_status: u16, via: Cow<'a, str> },
    /// The host was taken out of nginx's upstream on `via` while it is deployed.
    Drained { via: Cow<'a, str> },
    /// The host is back in nginx's upstream on `via`.
    Restored { via: Cow<'a, str> },
    /// The verdict sent to the host: `true` keeps the release, `false` rolls it back.
    Verdict { keep: bool },
    /// The host kept the release and pruned old ones.
    Kept,
    /// The host went back to the previous release.
    RolledBack { to: Cow<'a, str> },
    /// After a rollback: whether the release gone back to serves again (`detail`: the HTTP
    /// status, or why not).
    AfterRollback { healthy: bool, detail: Cow<'a, str> },
}

impl DeployEvent<'_> {
    /// The host's phase this event starts, and whether it may take long (announced without a
    /// terminal, kept alive by the heartbeat).
    fn started_phase(&self) -> Option<(String, bool)> {
        match self {
            DeployEvent::LockWait { .. } | DeployEvent::ViaLockWait { .. } => Some((self.to_string(), true)),
            // Their result line announces them already; the heartbeat keeps them alive.
            DeployEvent::BuildStep { .. } | DeployEvent::CacheBuild { .. } => Some((self.to_string(), false)),
            DeployEvent::Switch { .. } | DeployEvent::HealthWait { .. } => {
                Some(("waiting for the health check".into(), true))
            }
            _ => None,
        }
    }

    /// Whether the event is a result line (`host | text` on stdout); a lock wait is progress
    /// only (its phase says it).
    pub fn is_result(&self) -> bool {
        !matches!(self, DeployEvent::LockWait { .. } | DeployEvent::ViaLockWait { .. })
    }
}

/// A deploy event's JSON Lines object: `"type": "deploy"`, the event's kind and fields, and
/// its text as printed.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "deploy")]
pub struct JsonLine<'b, 'a> {
    #[serde(flatten)]
    event: &'b DeployEvent<'a>,
    text: String,
}

impl<'a> HostEvent for DeployEvent<'a> {
    type Json<'b>
        = JsonLine<'b, 'a>
    where
        Self: 'b;

    fn json(&self) -> Option<JsonLine<'_, 'a>> {
        Some(JsonLine { event: self, text: self.to_string() })
    }

    fn text(&self) -> Option<Cow<'_, str>> {
        self.is_result().then(|| Cow::Owned(self.to_string()))
    }

    fn phase(&self) -> Option<Cow<'_, str>> {
        self.started_phase().map(|(phase, _)| Cow::Owned(phase))
    }

    fn is_slow(&self) -> bool {
        self.started_phase().is_some_and(|(_, slow)| slow)
    }
}

impl fmt::Display for DeployEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeployEvent::LockWait { holder } => write!(f, "waiting for the host lock held by {holder}"),
            DeployEvent::ViaLockWait { via, holder } => {
                write!(f, "waiting for the host lock of {via} held by {holder}")
            }
            DeployEvent::Release { release } => write!(f, "release {release}"),
            DeployEvent::CleanedIncomplete { release } => {
                write!(f, "removed incomplete release {release} (its deploy never finished)")
            }
            DeployEvent::RecoveredUnconfirmed { release } => {
                write!(f, "rolled back unconfirmed release {release} left by an earlier run")
            }
            DeployEvent::CacheHit { key } => write!(f, "cache: environment {key} reused (inputs unchanged)"),
            DeployEvent::CacheBuild { key } => write!(f, "cache: building environment {key}"),
            DeployEvent::BuildStep { step } => write!(f, "build: {step}"),
            DeployEvent::WatchdogArmed { confirm_secs } => {
                write!(f, "confirm watchdog armed: rolls back unless confirmed within {confirm_secs}s")
            }
            DeployEvent::Switch { release } => write!(f, "current -> {release}; restarting"),
            DeployEvent::HealthWait { confirm_secs } => {
                write!(f, "restarted; checking health (confirm within {confirm_secs}s)")
            }
            DeployEvent::Healthy { http_status, address, path, through } => {
                write!(f, "healthy: HTTP {http_status} from {address}{path} through {through}")
            }
            DeployEvent::HealthyVia { http_status, via } => {
                write!(f, "healthy: HTTP {http_status} through nginx on {via}")
            }
            DeployEvent::Drained { via } => write!(f, "out of nginx's rotation on {via} (drained) until healthy"),
            DeployEvent::Restored { via } => write!(f, "back in nginx's rotation on {via}"),
            DeployEvent::Verdict { keep: true } => write!(f, "verdict: keep the release"),
            DeployEvent::Verdict { keep: false } => write!(f, "verdict: roll back"),
            DeployEvent::Kept => write!(f, "healthy: kept; old releases pruned"),
            DeployEvent::RolledBack { to } => write!(f, "rolled back to {to}"),
            DeployEvent::AfterRollback { healthy: true, detail } => write!(f, "after rollback: healthy, {detail}"),
            DeployEvent::AfterRollback { healthy: false, detail } => {
                write!(f, "after rollback: STILL UNHEALTHY: {detail}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_a_kind_their_fields_and_one_text() {
        let e = DeployEvent::BuildStep { step: "venv/bin/flask db upgrade".into() };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"event":"build_step","step":"venv/bin/flask db upgrade"}"#);
        assert_eq!(e.to_string(), "build: venv/bin/flask db upgrade");
        let e = DeployEvent::Healthy {
            http_status: 200,
            address: "10.0.2.10:5000".into(),
            path: "/healthz".into(),
            through: "app".into(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"healthy","http_status":200,"address":"10.0.2.10:5000","path":"/healthz","through":"app"}"#
        );
        assert_eq!(e.to_string(), "healthy: HTTP 200 from 10.0.2.10:5000/healthz through app");
        assert_eq!(serde_json::to_string(&DeployEvent::Kept).unwrap(), r#"{"event":"kept"}"#);
        assert_eq!(
            DeployEvent::AfterRollback { healthy: false, detail: "connection refused".into() }.to_string(),
            "after rollback: STILL UNHEALTHY: connection refused"
        );
    }

    #[test]
    fn long_steps_set_the_phase_and_a_lock_wait_is_no_result() {
        let lock = DeployEvent::LockWait { holder: "alice (converge)".into() };
        assert_eq!(lock.started_phase(), Some(("waiting for the host lock held by alice (converge)".into(), true)));
        assert!(lock.is_slow() && lock.text().is_none());
        assert!(!lock.is_result());
        let build = DeployEvent::BuildStep { step: "make".into() };
        assert_eq!(build.started_phase(), Some(("build: make".into(), false)));
        assert!(build.is_result() && !build.is_slow());
        assert_eq!(
            serde_json::to_value(build.json().unwrap()).unwrap(),
            serde_json::json!({"type": "deploy", "event": "build_step", "step": "make", "text": "build: make"})
        );
        let wait = Some(("waiting for the health check".to_string(), true));
        assert_eq!(DeployEvent::Switch { release: "r1".into() }.started_phase(), wait);
        assert_eq!(DeployEvent::HealthWait { confirm_secs: 90 }.started_phase(), wait);
        assert_eq!(DeployEvent::Release { release: "r1".into() }.started_phase(), None);
        assert_eq!(DeployEvent::Verdict { keep: true }.started_phase(), None);
    }
}
