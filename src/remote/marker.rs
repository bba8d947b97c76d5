//! Markers: the typed lines host scripts print (with `mark` from `mark.sh`) and the client
//! reads. A marker line is `NONCE KIND<TAB>FIELD...`; `NONCE` is the run's random token, so
//! only the host script of this run can print one (a banner, a MOTD or a step's output cannot).

/// One marker. The host side prints its kind as the lowercase name given in `kind()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// The session script runs (everything before it is the login's own output).
    Start,
    /// Another run holds the lock: its owner line.
    Waiting(String),
    /// The lock wait timed out: the holder's owner line (exit status [`super::LOCKED_EXIT`]).
    Locked(String),
    /// The host lock is ours.
    Ready,
    /// The session itself failed (cannot create the state folder, cannot unpack).
    Error(String),
    /// Converge: the probe output is complete; the script now reads the payload.
    ProbeEnd,
    /// A step starts / succeeded (converge step ids: `3`, `h0`, `pending`, `daemon-reload`).
    Begin(String),
    Passed(String),
    /// A step failed: what, and its exit status when known.
    Fail {
        step: String,
        code: Option<String>,
    },
    /// One line of the failed step's output.
    Out(String),
    /// Converge: a package step waits for dpkg's or apt's lock, held by `PID NAME`.
    AptWait(String),
    /// Deploy: the live release before this run (`releases/NAME`, or empty).
    Previous(String),
    /// Deploy: the release this run installs or switches to.
    Release(String),
    /// Deploy: a build step starts.
    Step(String),
    /// Deploy: `current` now points at this release.
    Switched(String),
    /// Deploy: the app restarted on the new release; the script waits for the verdict.
    Restarted,
    /// Deploy: switched back to this release.
    RolledBack(String),
    /// Deploy: kept; old releases pruned.
    Pruned,
    /// Deploy: the confirm watchdog is armed with this many seconds (before the switch).
    Armed(String),
    /// Deploy: the incomplete release of a run that died was removed.
    Cleaned(String),
    /// Deploy: a switched release nobody decided on was rolled back at the start of this run.
    Recovered(String),
    /// Deploy: the cached environment: `reused` or `building`, and its key.
    Cache {
        state: String,
        key: String,
    },
}

impl Marker {
    /// Parses `line` (without its newline) if it is a marker of the run with `nonce`.
    pub fn parse(nonce: &str, line: &str) -> Option<Marker> {
        let rest = line.strip_prefix(nonce)?.strip_prefix(' ')?;
        let (kind, fields) = rest.split_once('\t').unwrap_or((rest, ""));
        let first = || fields.split('\t').next().unwrap_or("").to_string();
        Some(match kind {
            "start" => Marker::Start,
            "waiting" => Marker::Waiting(fields.to_string()),
            "locked" => Marker::Locked(fields.to_string()),
            "ready" => Marker::Ready,
            "error" => Marker::Error(fields.to_string()),
            "probe-end" => Marker::ProbeEnd,
            "begin" => Marker::Begin(first()),
            "passed" => Marker::Passed(first()),
            "fail" => {
                let mut f = fields.splitn(2, '\t');
                let step = f.next().unwrap_or("").to_string();
                Marker::Fail { step, code: f.next().map(str::to_string) }
            }
            "out" => Marker::Out(fields.to_string()),
            "apt-wait" => Marker::AptWait(first()),
            "previous" => Marker::Previous(fields.to_string()),
            "release" => Marker::Release(fields.to_string()),
            "step" => Marker::Step(fields.to_string()),
            "switched" => Marker::Switched(fields.to_string()),
            "restarted" => Marker::Restarted,
            "rolled-back" => Marker::RolledBack(fields.to_string()),
            "pruned" => Marker::Pruned,
            "armed" => Marker::Armed(first()),
            "cleaned" => Marker::Cleaned(first()),
            "recovered" => Marker::Recovered(first()),
            "cache" => {
                let mut f = fields.splitn(2, '\t');
                let state = f.next().unwrap_or("").to_string();
                Marker::Cache { state, key: f.next().unwrap_or("").to_string() }
            }
            _ => return None,
        })
    }
}

/// One line of the script's stdout after `start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Marker(Marker),
    /// Anything else (probe output).
    Data(String),
}

/// Splits the script's stdout into [`Line`]s: drops everything before `NONCE start` (found
/// anywhere, so a banner without a trailing newline cannot hide it), then one line at a time.
#[derive(Debug)]
pub struct Reader {
    start: String,
    nonce: String,
    started: bool,
    pending: Vec<u8>,
}

impl Reader {
    pub fn new(nonce: &str) -> Reader {
        Reader { start: format!("{nonce} start\n"), nonce: nonce.to_string(), started: false, pending: Vec::new() }
    }

    /// Whether the `start` marker has been seen (the script runs).
    pub fn started(&self) -> bool {
        self.started
    }

    pub fn push(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
    }

    /// The next complete line; at the end of the stream (`eof`), also an unterminated last one.
    pub fn line(&mut self, eof: bool) -> Option<Line> {
        if !self.started {
            let at = self.pending.windows(self.start.len()).position(|w| w == self.start.as_bytes())?;
            self.pending.drain(..at + self.start.len());
            self.started = true;
        }
        let end = match self.pending.iter().position(|b| *b == b'\n') {
            Some(nl) => nl + 1,
            None if eof && !self.pending.is_empty() => self.pending.len(),
            None => return None,
        };
        let raw: Vec<u8> = self.pending.drain(..end).collect();
        let text = String::from_utf8_lossy(raw.strip_suffix(b"\n").unwrap_or(&raw)).into_owned();
        Some(match Marker::parse(&self.nonce, &text) {
            Some(m) => Line::Marker(m),
            None => Line::Data(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn reader_skips_what_the_login_printed_and_splits_lines_across_chunks() {
        let mut r = Reader::new(N);
        // A banner with no newline, a fake marker of another run, then ours split mid-nonce.
        r.push(b"Welcome to prod-host! ffffffffffffffff ready\n");
        assert_eq!(r.line(false), None);
        r.push(&format!("hello {}", &N[..5]).into_bytes());
        assert_eq!(r.line(false), None);
        r.push(&format!("{} start\n{N} ready\nP\tf", &N[5..]).into_bytes());
        assert_eq!(r.line(false), Some(Line::Marker(Marker::Ready)));
        assert!(r.started());
        assert_eq!(r.line(false), None);
        r.push(b"\t644\nno newline");
        assert_eq!(r.line(false), Some(Line::Data("P\tf\t644".into())));
        assert_eq!(r.line(false), None);
        assert_eq!(r.line(true), Some(Line::Data("no newline".into())));
        assert_eq!(r.line(true), None);
        // Never started: nothing is ours.
        let mut r = Reader::new(N);
        r.push(b"sudo: a password is required\n");
        assert_eq!(r.line(true), None);
        assert!(!r.started());
    }

    const N: &str = "0123456789abcdef";

    #[test]
    fn parses_only_this_runs_markers() {
        assert_eq!(Marker::parse(N, &format!("{N} start")), Some(Marker::Start));
        assert_eq!(
            Marker::parse(N, &format!("{N} locked\tme@x (converge), host pid 7")),
            Some(Marker::Locked("me@x (converge), host pid 7".into()))
        );
        assert_eq!(
            Marker::parse(N, &format!("{N} fail\t3\t7")),
            Some(Marker::Fail { step: "3".into(), code: Some("7".into()) })
        );
        assert_eq!(
            Marker::parse(N, &format!("{N} fail\tbuild")),
            Some(Marker::Fail { step: "build".into(), code: None })
        );
        assert_eq!(Marker::parse(N, &format!("{N} out\ta\tb")), Some(Marker::Out("a\tb".into())));
        assert_eq!(
            Marker::parse(N, &format!("{N} cache\treused\t0123abcd")),
            Some(Marker::Cache { state: "reused".into(), key: "0123abcd".into() })
        );
        assert_eq!(Marker::parse(N, &format!("{N} armed\t90")), Some(Marker::Armed("90".into())));
        assert_eq!(Marker::parse(N, "@@done\t1"), None);
        assert_eq!(Marker::parse(N, &format!("ffff{N} passed\t1")), None);
        assert_eq!(Marker::parse(N, &format!("{N} bogus")), None);
    }

    /// `mark` and `mark_out` under the real shells print what `parse` reads back.
    #[test]
    fn shell_emitter_round_trips_under_sh_and_dash() {
        for shell in ["sh", "dash"] {
            let script = format!(
                "NONCE={N}\n{}\nmark start\nmark fail 'build step `x`' 3\nmark waiting 'a b$c'\nprintf 'one\\ntwo\\n' | mark_out\nmark ready\n",
                super::super::MARK_SH
            );
            let out = Command::new(shell).arg("-c").arg(&script).output().unwrap();
            assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
            let got: Vec<Marker> =
                String::from_utf8_lossy(&out.stdout).lines().map(|l| Marker::parse(N, l).unwrap()).collect();
            assert_eq!(
                got,
                [
                    Marker::Start,
                    Marker::Fail { step: "build step `x`".into(), code: Some("3".into()) },
                    Marker::Waiting("a b$c".into()),
                    Marker::Out("one".into()),
                    Marker::Out("two".into()),
                    Marker::Ready
                ],
                "{shell}"
            );
        }
    }
}
