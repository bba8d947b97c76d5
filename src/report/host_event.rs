//! The one interface through which a domain's events reach the printer: each domain (apply's
//! converge events, deploy's events) defines its own typed events next to the code that emits
//! them and implements [`HostEvent`]; the printer knows only this trait, never the domain.
//! What an event says (its text, the phase it starts, whether that phase is slow, its JSON
//! object) is decided by the domain once, so the terminal, plain and JSON outputs agree.

use std::borrow::Cow;

use serde::Serialize;

/// One event on a host, as the printer sees it.
pub trait HostEvent {
    /// The event's JSON Lines object (with its `type`; the printer adds `host`).
    type Json<'a>: Serialize
    where
        Self: 'a;

    /// The JSON object, or `None` when the event only moves the host's phase (that phase is
    /// then its `phase` event).
    fn json(&self) -> Option<Self::Json<'_>>;

    /// The result printed as `host | text` lines on stdout, or `None` for progress only.
    fn text(&self) -> Option<Cow<'_, str>>;

    /// The phase the host enters with this event (its spinner, its `-v` line), if any.
    fn phase(&self) -> Option<Cow<'_, str>> {
        None
    }

    /// Whether that phase may take long: announced even without `-v` when there is no
    /// terminal, and kept alive by the heartbeat.
    fn is_slow(&self) -> bool {
        false
    }

    /// How one line of `text` is painted when its stream takes color.
    fn style(&self, _line: &str) -> Style {
        Style::Plain
    }
}

/// How a line of text is painted on a stream that takes color (never in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    /// Something added (a diff's `+` line): green.
    Added,
    /// Something removed (a diff's `-` line): red.
    Removed,
    /// Where a change is (a diff's `@@` line): cyan.
    Location,
}

impl Style {
    /// `text` painted in this style (ANSI SGR), as is when plain.
    pub fn paint(self, text: &str) -> Cow<'_, str> {
        let code = match self {
            Style::Plain => return Cow::Borrowed(text),
            Style::Added => "32",
            Style::Removed => "31",
            Style::Location => "36",
        };
        Cow::Owned(format!("\x1b[{code}m{text}\x1b[0m"))
    }
}
