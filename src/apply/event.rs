//! What a converge does on a host, as typed events: `apply` emits the phases and each step's
//! result as they happen, the converge command the pending changes (`--check`) and the diffs
//! (`--diff`) when the host is done. The printer renders them through `report::HostEvent`:
//! the text of each is defined here once, and which phases may take long (a heartbeat
//! without a terminal) is decided by the plan's resource types, never by the text.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::plan::{Action, Plan};
use crate::report::{HostEvent, Style};

/// What happened to a change or handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeState {
    Changed,
    Failed,
    Pending,
}

/// A phase of a host's converge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase<'a> {
    Connecting,
    Probing,
    /// Another run holds the host lock.
    LockWait,
    /// No change, but the hash record is written again.
    RecordingHashes,
    /// The payload goes up.
    Applying,
    /// A step waits for something on the host (dpkg's lock): what, in words. Slow.
    Wait(&'a str),
    /// A step of the apply script runs: `label` names it, `slow` when its kind may take long.
    Step {
        label: &'a str,
        slow: bool,
    },
}

impl Phase<'_> {
    /// Whether the phase may take long: the lock wait, and the steps whose resource type may
    /// (packages, services, commands) or that run a handler.
    pub fn is_slow(&self) -> bool {
        match self {
            Phase::LockWait | Phase::Wait(_) => true,
            Phase::Step { slow, .. } => *slow,
            _ => false,
        }
    }
}

impl fmt::Display for Phase<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Connecting => f.write_str("connecting"),
            Phase::Probing => f.write_str("probing"),
            Phase::LockWait => f.write_str("waiting for the host lock"),
            Phase::RecordingHashes => f.write_str("recording hashes"),
            Phase::Applying => f.write_str("applying"),
            Phase::Wait(what) => f.write_str(what),
            Phase::Step { label, .. } => write!(f, "applying {label}"),
        }
    }
}

/// Whether apply step `id` (`3`, `h0`, `stage`...) may take long, by what it does: a handler,
/// a package install, a service or a command; never the fixed steps or a file.
pub fn step_is_slow(plan: &Plan, id: &str) -> bool {
    if id.starts_with('h') {
        return true;
    }
    let Some(change) = id.parse::<usize>().ok().and_then(|i| plan.changes.get(i)) else { return false };
    matches!(change.action, Action::Install(_) | Action::Service { .. } | Action::Run(_))
}

/// One event of a host's converge. In JSON: `change`, `handler` and `diff` objects
/// (docs/output.md, "JSON Lines"); a phase is the printer's `phase` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event<'a> {
    /// The host enters a phase.
    #[serde(skip)]
    Phase(Phase<'a>),
    /// A resource changed, failed, or would change (`--check`).
    Change { resource: &'a str, state: ChangeState, reason: Option<&'a str> },
    /// A handler ran, failed, or would run (`--check`).
    Handler { handler: &'a str, state: ChangeState },
    /// A unified diff of one changed file (`--diff`), uncolored: data.
    Diff { diff: &'a str },
}

impl<'a> HostEvent for Event<'a> {
    type Json<'b>
        = &'b Event<'a>
    where
        Self: 'b;

    fn json(&self) -> Option<&Event<'a>> {
        (!matches!(self, Event::Phase(_))).then_some(self)
    }

    fn text(&self) -> Option<Cow<'_, str>> {
        Some(match *self {
            Event::Phase(_) => return None,
            Event::Change { resource, state: ChangeState::Changed, .. } => format!("changed: {resource}").into(),
            Event::Change { resource, state: ChangeState::Failed, .. } => format!("FAILED: {resource}").into(),
            Event::Change { resource, state: ChangeState::Pending, reason: Some(r) } => {
                format!("would change: {resource} ({r})").into()
            }
            Event::Change { resource, state: ChangeState::Pending, reason: None } => {
                format!("would change: {resource}").into()
            }
            Event::Handler { handler, state: ChangeState::Changed } => format!("ran handler: {handler}").into(),
            Event::Handler { handler, state: ChangeState::Failed } => format!("FAILED: handler {handler}").into(),
            Event::Handler { handler, state: ChangeState::Pending } => format!("would run handler: {handler}").into(),
            Event::Diff { diff } => Cow::Borrowed(diff),
        })
    }

    fn phase(&self) -> Option<Cow<'_, str>> {
        match self {
            Event::Phase(p) => Some(p.to_string().into()),
            _ => None,
        }
    }

    fn is_slow(&self) -> bool {
        matches!(self, Event::Phase(p) if p.is_slow())
    }

    /// A diff's added lines green, removed red, hunk headers cyan (its `---`/`+++` header plain).
    fn style(&self, line: &str) -> Style {
        if !matches!(self, Event::Diff { .. }) {
            return Style::Plain;
        }
        match line.as_bytes().first() {
            Some(b'+') if !line.starts_with("+++") => Style::Added,
            Some(b'-') if !line.starts_with("---") => Style::Removed,
            Some(b'@') => Style::Location,
            _ => Style::Plain,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Change;

    #[test]
    fn slow_steps_are_decided_by_the_resource_type() {
        let change = |action: Action, resource: &str| Change {
            action,
            resource: resource.into(),
            role: "r".into(),
            reason: "created".into(),
        };
        let plan = Plan {
            changes: vec![
                change(Action::Install(vec!["nginx".into()]), "packages nginx"),
                change(Action::WriteFile(0), "file /etc/packages"),
                change(Action::Run(0), "command migrate"),
                change(Action::Service { index: 0, enable: Some(true), start: None }, "service nginx"),
                change(Action::MakeDir(0), "directory /srv/service"),
            ],
            handlers: vec!["reload".into()],
            ..Default::default()
        };
        let slow: Vec<bool> = ["0", "1", "2", "3", "4", "h0", "stage", "rename-apt", "pending", "9"]
            .iter()
            .map(|id| step_is_slow(&plan, id))
            .collect();
        assert_eq!(slow, [true, false, true, true, false, true, false, false, false, false]);
        // A phase's text says nothing about its slowness: a file named like a package is not slow.
        let file = Event::Phase(Phase::Step { label: "packages.conf (created)", slow: false });
        assert!(!file.is_slow());
        assert_eq!(file.phase().unwrap(), "applying packages.conf (created)");
        assert!(Event::Phase(Phase::LockWait).is_slow() && !Event::Phase(Phase::Probing).is_slow());
    }

    #[test]
    fn events_print_their_text_and_serialize_without_color() {
        let pending = Event::Change { resource: "file /x", state: ChangeState::Pending, reason: Some("content") };
        assert_eq!(pending.text().unwrap(), "would change: file /x (content)");
        assert_eq!(
            serde_json::to_value(pending.json().unwrap()).unwrap(),
            serde_json::json!({"type": "change", "resource": "file /x", "state": "pending", "reason": "content"})
        );
        let ran = Event::Handler { handler: "reload", state: ChangeState::Changed };
        assert_eq!(ran.text().unwrap(), "ran handler: reload");
        assert_eq!(
            serde_json::to_value(ran.json().unwrap()).unwrap(),
            serde_json::json!({"type": "handler", "handler": "reload", "state": "changed"})
        );
        assert!(Event::Phase(Phase::Connecting).json().is_none() && Event::Phase(Phase::Connecting).text().is_none());
        let diff = Event::Diff { diff: "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n" };
        let styles: Vec<Style> = diff.text().unwrap().lines().map(|l| diff.style(l)).collect();
        assert_eq!(styles, [Style::Plain, Style::Plain, Style::Location, Style::Removed, Style::Added]);
        let json = serde_json::to_string(&diff.json().unwrap()).unwrap();
        assert!(!json.contains("\\u001b") && json.contains("+b"), "{json}");
    }
}
