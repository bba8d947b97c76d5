//! The one user-facing error type.
//!
//! Every failure a user can see is an [`Error`]: a kind (which decides the exit code), a message,
//! structured location fields (file/line/column/field for input errors, host/hop/task for remote
//! ones), an optional hint saying what to do, and the underlying cause, which is never dropped.
//! It is rendered once, at the top (`lib::run`), by its `Display` impl.

use std::fmt;
use std::path::{Path, PathBuf};

/// What went wrong, coarsely: decides the exit code and the JSON `error.class`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad command line.
    Usage,
    /// `inventory.toml` could not be read or is invalid.
    Inventory,
    /// A role (role.toml, files) is invalid.
    Role,
    /// A template failed to render.
    Template,
    /// TCP connection to a host failed (refused, no route, DNS).
    Unreachable,
    /// Connecting or authenticating took too long.
    Timeout,
    /// The server refused every credential we offered.
    AuthRefused,
    /// The configured identity file is missing, unreadable or readable by others.
    Identity,
    /// The host key is not in known_hosts.
    HostKeyUnknown,
    /// The host key differs from the one recorded in known_hosts.
    HostKeyChanged,
    /// A jump host on the way to the target failed.
    JumpFailed,
    /// The SSH session broke after it was established.
    Ssh,
    /// A command or task failed on the remote host.
    Remote,
    /// Another run holds the host lock.
    Locked,
    /// Local I/O failed.
    Io,
    /// The local lab failed.
    Lab,
    /// The run was interrupted (Ctrl-C, SIGTERM) while this host's work ran or waited.
    Interrupted,
}

impl ErrorKind {
    /// The stable name used in JSON output and summaries.
    pub fn class(self) -> &'static str {
        match self {
            ErrorKind::Usage => "usage",
            ErrorKind::Inventory => "inventory",
            ErrorKind::Role => "role",
            ErrorKind::Template => "template",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::AuthRefused => "auth_refused",
            ErrorKind::Identity => "identity",
            ErrorKind::HostKeyUnknown => "host_key_unknown",
            ErrorKind::HostKeyChanged => "host_key_changed",
            ErrorKind::JumpFailed => "jump_failed",
            ErrorKind::Ssh => "ssh",
            ErrorKind::Remote => "remote",
            ErrorKind::Locked => "locked",
            ErrorKind::Io => "io",
            ErrorKind::Lab => "lab",
            ErrorKind::Interrupted => "interrupted",
        }
    }

    /// Input errors exit 2 (nothing was attempted); everything else exits 1.
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Usage | ErrorKind::Inventory | ErrorKind::Role | ErrorKind::Template => 2,
            _ => 1,
        }
    }
}

type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A user-facing error with structured location fields and a hint. Boxed, so `Result`s stay
/// small; the fields are reached through `Deref`.
#[derive(Debug)]
pub struct Error(Box<ErrorData>);

/// The fields of an [`Error`].
#[derive(Debug)]
pub struct ErrorData {
    pub kind: ErrorKind,
    pub message: String,
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub field: Option<String>,
    pub host: Option<String>,
    pub hop: Option<String>,
    pub task: Option<String>,
    pub hint: Option<String>,
    /// Extra output to show under the message (e.g. a validator's stderr).
    pub detail: Option<String>,
    /// Set when no session could be had on the host, saying why (`transport::Unreached`).
    pub unreached: Option<crate::transport::Unreached>,
    pub cause: Option<Cause>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(ErrorData {
            kind,
            message: message.into(),
            file: None,
            line: None,
            column: None,
            field: None,
            host: None,
            hop: None,
            task: None,
            hint: None,
            detail: None,
            unreached: None,
            cause: None,
        }))
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Usage, message)
    }

    pub fn io(action: impl fmt::Display, path: &Path, cause: std::io::Error) -> Self {
        Error::new(ErrorKind::Io, format!("{action} {}", path.display())).caused_by(cause)
    }

    /// Re-kinds an error (e.g. an I/O error that is really an inventory problem).
    pub fn kind_of(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    pub fn at_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = Some(file.into());
        self
    }

    pub fn at_line(mut self, line: usize, column: usize) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    pub fn hop(mut self, hop: impl Into<String>) -> Self {
        self.hop = Some(hop.into());
        self
    }

    pub fn task(mut self, task: impl Into<String>) -> Self {
        self.task = Some(task.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Marks a failure to get a session on the host, saying why.
    pub fn unreached(mut self, why: crate::transport::Unreached) -> Self {
        self.unreached = Some(why);
        self
    }

    pub fn caused_by(mut self, cause: impl Into<Cause>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }

    /// A copy for a second reporter (e.g. every host behind a failed jump host); a cause that
    /// is an [`Error`] is copied as one (so a jump host's own error stays reachable), any other
    /// cause chain is kept as text, link by link.
    pub fn duplicate(&self) -> Error {
        let cause: Option<Cause> = match self.cause.as_deref().and_then(|c| c.downcast_ref::<Error>()) {
            Some(inner) => Some(Box::new(inner.duplicate())),
            None => self
                .causes()
                .into_iter()
                .rev()
                .fold(None, |inner: Option<Box<CauseText>>, text| Some(Box::new(CauseText { text, inner })))
                .map(|c| c as Cause),
        };
        Error(Box::new(ErrorData {
            kind: self.kind,
            message: self.message.clone(),
            file: self.file.clone(),
            line: self.line,
            column: self.column,
            field: self.field.clone(),
            host: self.host.clone(),
            hop: self.hop.clone(),
            task: self.task.clone(),
            hint: self.hint.clone(),
            detail: self.detail.clone(),
            unreached: self.unreached,
            cause,
        }))
    }

    /// The message with its location prefix and cause chain, on one line: for JSON and summaries.
    pub fn one_line(&self) -> String {
        let mut s = self.location_prefix();
        s.push_str(&self.message);
        for cause in self.causes() {
            s.push_str(": ");
            s.push_str(&cause);
        }
        s
    }

    /// Each link of the cause chain as one line of text. A cause that is itself an [`Error`]
    /// contributes its located message; its own causes follow as further links.
    fn causes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut cause: Option<&(dyn std::error::Error + 'static)> = self.cause.as_deref().map(|c| c as _);
        while let Some(c) = cause {
            match c.downcast_ref::<Error>() {
                Some(inner) => out.push(format!("{}{}", inner.location_prefix(), inner.message)),
                None => out.push(c.to_string()),
            }
            cause = c.source();
        }
        out
    }

    fn location_prefix(&self) -> String {
        let mut s = String::new();
        if let Some(file) = &self.file {
            s.push_str(&file.display().to_string());
            if let Some(line) = self.line {
                s.push_str(&format!(":{line}"));
                if let Some(col) = self.column {
                    s.push_str(&format!(":{col}"));
                }
            }
            s.push_str(": ");
        }
        s
    }
}

impl std::ops::Deref for Error {
    type Target = ErrorData;
    fn deref(&self) -> &ErrorData {
        &self.0
    }
}

impl std::ops::DerefMut for Error {
    fn deref_mut(&mut self) -> &mut ErrorData {
        &mut self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.location_prefix(), self.message)?;
        let labels = [("host", &self.host), ("hop", &self.hop), ("task", &self.task), ("field", &self.field)];
        for (label, value) in labels {
            if let Some(v) = value {
                write!(f, "\n  {label}: {v}")?;
            }
        }
        for cause in self.causes() {
            write!(f, "\n  caused by: {cause}")?;
        }
        if let Some(detail) = &self.detail {
            for line in detail.trim_end().lines() {
                write!(f, "\n  | {line}")?;
            }
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_deref().map(|c| c as _)
    }
}

/// A cause kept as text by [`Error::duplicate`].
#[derive(Debug)]
struct CauseText {
    text: String,
    inner: Option<Box<CauseText>>,
}

impl fmt::Display for CauseText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for CauseText {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.as_deref().map(|c| c as _)
    }
}

/// 1-based line and column of a byte offset in `text`. Scans `text` once: for many offsets in
/// one file use [`LineIndex`].
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    LineIndex::new(text).line_col(offset)
}

/// Where each line of a text starts, so that any number of offsets are turned into line:col
/// in O(log lines) each (an inventory of 20,000 hosts asks for tens of thousands).
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
    len: usize,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let starts = std::iter::once(0)
            .chain(text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts, len: text.len() }
    }

    /// 1-based line and column (in bytes) of `offset`.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.len);
        let line = self.starts.partition_point(|&s| s <= offset);
        (line, offset - self.starts[line - 1] + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        assert_eq!(line_col(text, 9), (2, 4));
        assert_eq!(line_col(text, 13), (3, 1));
        assert_eq!(line_col(text, 99), (3, 1));
        assert_eq!(line_col("", 0), (1, 1));
        let index = LineIndex::new(text);
        for offset in 0..=text.len() {
            let before = &text[..offset];
            let naive = (before.matches('\n').count() + 1, offset - before.rfind('\n').map_or(0, |nl| nl + 1) + 1);
            assert_eq!(index.line_col(offset), naive, "offset {offset}");
        }
    }

    #[test]
    fn display_has_location_fields_cause_and_hint() {
        let err = Error::new(ErrorKind::Inventory, "unknown host `webb` in `via`")
            .at_file("inventory.toml")
            .at_line(7, 7)
            .field("hosts.app.via")
            .caused_by(std::io::Error::other("boom"))
            .hint("define [hosts.webb] or fix the name");
        let text = err.to_string();
        assert_eq!(
            text,
            "inventory.toml:7:7: unknown host `webb` in `via`\n  field: hosts.app.via\n  caused by: boom\n  hint: define [hosts.webb] or fix the name"
        );
        assert_eq!(err.exit_code(), 2);
        assert_eq!(err.one_line(), "inventory.toml:7:7: unknown host `webb` in `via`: boom");
    }
}
