//! Converge's client half of the host session, written once as a sans-IO state machine: it
//! is fed what the host printed (the lines of `remote::Reader`, then the end of the stream
//! and the exit status) and says what to send next and what happened. It does no I/O and
//! knows no clock but the one it is given: the real path (`apply::talk`, over
//! `remote::Session`) and the sh/dash tests of `host` (the real `host.sh` under sh and dash)
//! both drive it, so the tests exercise the client that runs.
//!
//! The conversation (`host.sh`): the probe's output up to `probe-end` is parsed and the
//! state folder judged (refused: stdin is closed with nothing sent, the host writes
//! nothing); files the hash record cannot vouch for are asked for in a `hash` frame (one
//! more `probe-end`); the plan then decides: refused changes (an empty frame, then the end),
//! nothing to do or `--check` (an empty frame, the script ends), or a payload (the apply
//! script and the changed files) whose markers (`begin`, `passed`, `fail`, `out`) are
//! followed to the end of the stream, then the exit status settles the run.

use crate::error::{Error, ErrorKind, Result};
use crate::plan::desired::Desired;
use crate::plan::probe::{self, Kind, Observed, Stamp};
use crate::plan::{self, Action, Plan, diff, hashes};
use crate::remote::{self, Line, Marker};

use super::HostRun;
use super::payload::{self, Payload};

/// What the driver does next, after one [`Client::push`].
pub enum Next {
    /// Nothing to do: read the next line.
    Read,
    /// Send this `hash` frame, then read on.
    Send(String),
    /// The host is refused: send an empty frame first when `frame`, close stdin (the host
    /// script ends), and fail the host with `error` (nothing was written).
    Refuse { frame: bool, error: Error },
    /// Nothing to apply (or `--check`): send an empty frame, close stdin, read on to the end.
    Finish,
    /// The host's facts changed since the render (`crate::facts`): close stdin with nothing
    /// sent (the host script ends, having written nothing), read on to the end; the host is
    /// rendered again from fresh facts ([`HostRun::stale_facts`]).
    Stale,
    /// Send this payload, close stdin, and read on: the apply script's markers follow.
    /// `record_only`: it holds no step but writing the hash record again.
    Apply { payload: Payload, record_only: bool },
    /// An apply step began: its label, and whether its kind may take long (packages,
    /// services, commands, handlers: see `event::step_is_slow`).
    Begin { label: String, slow: bool },
    /// A step waits for something on the host (a phase of its own: the wait gets the whole
    /// timeout): what it waits for.
    Wait(String),
    /// An apply step passed (`ok`) or failed: its text, and the handler's name when it ran
    /// one.
    Step { ok: bool, text: String, handler: Option<String> },
    /// The stream ended before the probe did: the host script ended early (the driver asks
    /// the session why).
    EarlyEnd,
    /// The stream ended: the driver reads the exit status and hands it to [`Client::exit`].
    Exit,
}

/// How the run ended, once its exit status is known.
#[derive(Debug)]
pub enum End {
    Done,
    /// A step failed (named, with its output).
    Failed(Error),
    /// The script exited with this nonzero status and no step failure of its own (the
    /// driver asks the session why: lock, signal, the script's `error` marker...).
    Status(u32),
}

/// Where the conversation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Reading the probe's output.
    Probe,
    /// Reading the hashes asked for in a `hash` frame.
    Hashes,
    /// Nothing sent but an empty frame: reading to the end.
    Finish,
    /// The payload was sent: following the apply script's markers.
    Apply,
}

/// Converge's client half for one host (see the module doc).
pub struct Client<'a> {
    desired: &'a Desired,
    state_dir: String,
    check: bool,
    diff: bool,
    nonce: String,
    now: Stamp,
    stage: Stage,
    /// The data lines read in this stage (the probe's output, a `hash` frame's).
    out: String,
    observed: Observed,
    asked: Vec<String>,
    /// The failed step (its label and exit status) and, when it was a file's `validate`,
    /// that file; the output of the failed step.
    failure: Option<(String, String)>,
    refused: Option<usize>,
    output: String,
    /// What the run did so far: plan, counts, handlers run, diffs (the driver adds timings).
    pub run: HostRun,
}

impl<'a> Client<'a> {
    /// A client for one session converging `desired` with `state_dir` as the host's state
    /// folder; `nonce` names the payload's stage folder; `now` is the controller's clock
    /// (`hashes::clock_now`: the hash record's age is judged by it).
    pub fn new(
        desired: &'a Desired,
        state_dir: &str,
        opts: &super::ConvergeOptions,
        nonce: &str,
        now: Stamp,
    ) -> Client<'a> {
        Client {
            desired,
            state_dir: state_dir.to_string(),
            check: opts.check,
            diff: opts.diff,
            nonce: nonce.to_string(),
            now,
            stage: Stage::Probe,
            out: String::new(),
            observed: Observed::default(),
            asked: Vec::new(),
            failure: None,
            refused: None,
            output: String::new(),
            run: HostRun { host: desired.host.clone(), ..Default::default() },
        }
    }

    /// What the host observed (after the probe; with the hashes the record vouched for and
    /// those asked for). For the tests that drive the real host script.
    #[cfg(test)]
    pub fn observed(&self) -> &Observed {
        &self.observed
    }

    /// The files the hash record could not vouch for, asked for in a `hash` frame.
    #[cfg(test)]
    pub fn asked(&self) -> &[String] {
        &self.asked
    }

    /// Feeds one line the host printed (`None`: the end of the stream). An error fails the
    /// host at once (output that does not parse, a payload that cannot be built).
    pub fn push(&mut self, line: Option<Line>) -> Result<Next> {
        let Some(line) = line else {
            return Ok(match self.stage {
                Stage::Probe | Stage::Hashes => Next::EarlyEnd,
                Stage::Finish | Stage::Apply => Next::Exit,
            });
        };
        match self.stage {
            Stage::Probe | Stage::Hashes => match line {
                Line::Data(l) => {
                    self.out.push_str(&l);
                    self.out.push('\n');
                    Ok(Next::Read)
                }
                Line::Marker(Marker::ProbeEnd) => {
                    let out = std::mem::take(&mut self.out);
                    if self.stage == Stage::Probe { self.probed(&out) } else { self.hashed(&out) }
                }
                Line::Marker(_) => Ok(Next::Read),
            },
            Stage::Finish => Ok(Next::Read),
            Stage::Apply => Ok(self.applying(line)),
        }
    }

    /// The probe's output is complete: the state folder judged, the hash record consulted.
    fn probed(&mut self, out: &str) -> Result<Next> {
        let (desired, state_dir) = (self.desired, self.state_dir.as_str());
        self.observed = probe::parse(out).map_err(|e| unparsed(desired, e))?;
        self.run.firewall_seen = self.observed.firewall.clone();
        // --check on a host with no state folder: the session created none and holds no lock
        // (a host no run has converged); the host writes and deletes nothing (`NOSTATE`), so
        // there is no folder to judge. Otherwise the folder is judged before anything is sent.
        let fresh_check = self.check && !self.observed.paths.contains_key(state_dir);
        if !fresh_check {
            if !self.observed.state_folder_ok(state_dir) {
                // Its stdin ends: the host script exits, having written nothing.
                return Ok(Next::Refuse { frame: false, error: remote::state_refused(&desired.host, state_dir) });
            }
            // Root or the login user (the folder's owner) alone may write the folders above it.
            self.observed.login_uid = Some(self.observed.path(state_dir).uid);
            if let Err(r) = plan::trust::state_folder(&self.observed, state_dir) {
                let error = remote::state_folder_exposed(&desired.host, state_dir, &r.folder, &r.why);
                return Ok(Next::Refuse { frame: false, error });
            }
        }
        if let Some(want) = &desired.facts_fingerprint
            && self.observed.facts_fingerprint.as_ref().is_none_or(|seen| seen != want || want.is_empty())
        {
            self.run.stale_facts = true;
            self.stage = Stage::Finish;
            return Ok(Next::Stale);
        }
        // Files the probe left to the hash record that it cannot vouch for: hashed now, in one
        // more round trip (rare: a file the record does not list, changed at its very time...).
        self.asked = hashes::vouch(desired, state_dir, &mut self.observed, self.now);
        if !self.asked.is_empty() {
            self.stage = Stage::Hashes;
            return Ok(Next::Send(hashes::hash_frame(&self.asked)));
        }
        self.decide()
    }

    /// The hashes asked for are in.
    fn hashed(&mut self, out: &str) -> Result<Next> {
        hashes::parse_hashes(out, &self.asked, &mut self.observed).map_err(|e| unparsed(self.desired, e))?;
        self.decide()
    }

    /// Plans from what was observed and says what to send.
    fn decide(&mut self) -> Result<Next> {
        let desired = self.desired;
        let plan = plan::plan(desired, &self.observed);
        self.run.ok = plan.ok;
        if !plan.refused.is_empty() {
            return Ok(Next::Refuse { frame: true, error: refused(desired, &plan.refused) });
        }
        if self.diff {
            self.run.diffs = diffs(desired, &plan, &self.observed);
        }
        // Nothing to change, but a file's hash was read now: the hash record is written again
        // (by a payload whose apply script has no step but that), so the next no-op reads none.
        let record_only =
            plan.is_empty() && !self.check && hashes::out_of_date(desired, &self.state_dir, &self.observed, self.now);
        if self.check || (plan.is_empty() && !record_only) {
            self.run.changed = if self.check { plan.changes.len() } else { 0 };
            self.run.plan = plan;
            self.stage = Stage::Finish;
            return Ok(Next::Finish);
        }
        let payload = payload::build(desired, &plan, &self.nonce)?;
        self.run.plan = plan;
        self.stage = Stage::Apply;
        Ok(Next::Apply { payload, record_only })
    }

    /// One line of the apply script's output: steps counted, a failure named.
    fn applying(&mut self, line: Line) -> Next {
        let plan = &self.run.plan;
        match line {
            Line::Marker(Marker::Begin(id)) => {
                let slow = super::event::step_is_slow(plan, &id);
                Next::Begin { label: step_label(plan, id), slow }
            }
            Line::Marker(Marker::AptWait(holder)) => {
                Next::Wait(format!("waiting for the dpkg lock (held by {holder})"))
            }
            Line::Marker(Marker::Passed(id)) => {
                let Some(text) = step_text(plan, &id) else { return Next::Read };
                let handler = step_handler(plan, &id).map(str::to_string);
                match &handler {
                    Some(h) => self.run.handlers_run.push(h.clone()),
                    None => self.run.changed += 1,
                }
                Next::Step { ok: true, text, handler }
            }
            Line::Marker(Marker::Fail { step, code }) => {
                self.refused = validated_file(self.desired, plan, &step);
                let handler = step_handler(plan, &step).map(str::to_string);
                let text = step_label(plan, step);
                self.failure = Some((text.clone(), code.unwrap_or_else(|| "?".into())));
                Next::Step { ok: false, text, handler }
            }
            Line::Marker(Marker::Out(rest)) => {
                self.output.push_str(&rest);
                self.output.push('\n');
                Next::Read
            }
            _ => Next::Read,
        }
    }

    /// The script's exit status, once the stream ended ([`Next::Exit`]).
    pub fn exit(&mut self, code: u32) -> End {
        let desired = self.desired;
        if let (Some((task, rc)), Some(i)) = (&self.failure, self.refused) {
            self.run.failed = 1;
            let f = &desired.files[i];
            let output = std::mem::take(&mut self.output);
            let said = if output.trim().is_empty() { "(the validator printed nothing)\n".to_string() } else { output };
            return End::Failed(
                Error::new(
                    ErrorKind::Remote,
                    format!("validate refused the new content of {} (exit {rc}); the live file is unchanged", f.dest),
                )
                .host(&desired.host)
                .task(task.clone())
                .detail(said)
                .hint(format!(
                    "the check was `{}` on the new content (its output is above); fix the template, the vars or the check, and run converge again",
                    f.validate.as_deref().unwrap_or_default()
                )),
            );
        }
        if let Some((task, rc)) = self.failure.take() {
            self.run.failed = 1;
            return End::Failed(
                Error::new(ErrorKind::Remote, format!("{task} failed (exit {rc})"))
                    .host(&desired.host)
                    .task(task)
                    .detail(std::mem::take(&mut self.output))
                    .hint("fix the cause shown above and run converge again; changes already made stay, pending handlers run next time"),
            );
        }
        if code != 0 {
            return End::Status(code);
        }
        End::Done
    }
}

fn unparsed(desired: &Desired, e: String) -> Error {
    Error::new(ErrorKind::Remote, format!("the probe's output does not parse: {e}"))
        .host(&desired.host)
        .task("probe")
        .hint("something on the host printed into the probe (or a tool printed what microctl does not know); nothing was changed")
}

/// The error of a host whose plan would act in folders other users can write.
fn refused(desired: &Desired, what: &[String]) -> Error {
    Error::new(
        ErrorKind::Remote,
        format!("refusing to act as root in folders a user other than root can write on {}", desired.host),
    )
    .host(&desired.host)
    .task("plan")
    .detail(what.join("\n"))
    .hint("nothing was written on the host; make each folder named root's and not group/other-writable (chown root: FOLDER; chmod go-w FOLDER), or manage the path elsewhere (README: security)")
}

/// The file whose `validate` step `id` is: a file's change has a step of its own only for its
/// validate (its content is written by the `stage` step).
fn validated_file(desired: &Desired, plan: &Plan, id: &str) -> Option<usize> {
    let change = plan.changes.get(id.parse::<usize>().ok()?)?;
    match change.action {
        Action::WriteFile(i) if desired.files[i].validate.is_some() => Some(i),
        _ => None,
    }
}

/// How a step is named in a phase or a failure: its change, or what the fixed steps do.
fn step_label(plan: &Plan, id: String) -> String {
    match id.as_str() {
        "stage" | "stage-apt" => "staging the changed files".into(),
        "rename" | "rename-apt" => "renaming the staged files into place".into(),
        "pending" => "recording the handlers to run".into(),
        _ => step_text(plan, &id).unwrap_or(id),
    }
}

/// The handler step `id` (`h0`) runs, if it is one.
fn step_handler<'p>(plan: &'p Plan, id: &str) -> Option<&'p str> {
    plan.handlers.get(id.strip_prefix('h')?.parse::<usize>().ok()?).map(String::as_str)
}

/// The description of change or handler step `id` (`3`, `h0`).
fn step_text(plan: &Plan, id: &str) -> Option<String> {
    if let Some(h) = id.strip_prefix('h') {
        return plan.handlers.get(h.parse::<usize>().ok()?).map(|n| format!("handler {n}"));
    }
    let change = plan.changes.get(id.parse::<usize>().ok()?)?;
    Some(format!("{} ({})", change.resource, change.reason))
}

/// Unified diffs for the files the plan writes (sensitive ones only named).
fn diffs(desired: &Desired, plan: &Plan, observed: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    for change in &plan.changes {
        let Action::WriteFile(i) = change.action else { continue };
        let f = &desired.files[i];
        if f.sensitive {
            out.push(format!("--- {0}\n+++ {0}\n(sensitive: content not shown)\n", f.dest));
            continue;
        }
        let state = observed.path(&f.dest);
        let old = match (&state.kind, &state.content) {
            (Kind::Missing, _) => Vec::new(),
            // Never what a symlink (or anything but a plain file) points at.
            (Kind::File, Some(c)) if c.len() <= probe::DIFF_LIMIT => c.clone(),
            (Kind::Link, _) => {
                out.push(format!("--- {0}\n+++ {0}\n(a symlink now: what it points at is not shown)\n", f.dest));
                continue;
            }
            _ => {
                out.push(format!("--- {0}\n+++ {0}\n(binary or large file changed)\n", f.dest));
                continue;
            }
        };
        match diff::unified(&f.dest, &old, &f.content) {
            Some(d) => out.push(d),
            None => out.push(format!("--- {0}\n+++ {0}\n(binary file changed)\n", f.dest)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::desired::{FileSpec, HandlerSpec, LinkSpec, Meta, Origin, sha256_hex};
    use std::sync::Arc;

    const STATE: &str = "/s";
    const NOW: Stamp = Stamp { secs: 1_800_000_000, nanos: 0 };

    /// `/etc/app.conf` ("v1\n", root's 0644, validated, notifying `reload`), with `links`.
    fn desired(links: Vec<LinkSpec>) -> Desired {
        let content = Arc::new(b"v1\n".to_vec());
        Desired {
            host: "web1".into(),
            files: vec![FileSpec {
                origin: Origin { role: "r".into(), line: 1 },
                dest: "/etc/app.conf".into(),
                sha256: sha256_hex(&content),
                content,
                meta: Meta { owner: None, group: None, mode: Some(0o644) },
                validate: Some("app --check %s".into()),
                sensitive: false,
                notify: vec!["reload".into()],
                apt_source: false,
            }],
            links,
            handlers: vec![HandlerSpec {
                origin: Origin { role: "r".into(), line: 2 },
                name: "reload".into(),
                run: "systemctl reload app".into(),
            }],
            ..Default::default()
        }
    }

    fn opts(check: bool) -> super::super::ConvergeOptions {
        super::super::ConvergeOptions {
            check,
            diff: false,
            lock_timeout: std::time::Duration::from_secs(1),
            timeout: None,
            what: "converge",
        }
    }

    /// One `find` record as the probe prints it (`%y %m - - %l %D %i %s %C@ %U %G %p`).
    fn rec(kind: char, mode: &str, uid: u32, ino: u64, path: &str) -> String {
        let fields = [&kind.to_string(), mode, "-", "-", "", "7", &ino.to_string(), "3", "1700000000.5000000000"];
        let mut r: String = fields.iter().map(|f| format!("{f}\0")).collect();
        r.push_str(&format!("{uid}\0{uid}\0{path}\0"));
        r
    }

    /// What the probe printed on a host whose state folder has `state_mode`, whose `/etc`
    /// is owned by `etc_uid`, with the file as `file` (a record, or nothing: missing) and
    /// the `sha256sum` line `hash`, if any.
    fn probe_output(state_mode: &str, etc_uid: u32, file: Option<&str>, hash: Option<&str>) -> String {
        let mut out = format!(
            "P\t{}{}{}",
            rec('d', state_mode, 0, 2, STATE),
            rec('d', "755", 0, 1, "/"),
            rec('d', "755", etc_uid, 3, "/etc")
        );
        if let Some(f) = file {
            out.push_str(f);
        }
        if let Some(h) = hash {
            out.push_str(&format!("{h}  /etc/app.conf\n"));
        }
        out.push('\n');
        out
    }

    /// Feeds `text` (as the reader splits it: one data line per `\n`) and `probe-end`;
    /// returns what the client said at `probe-end`.
    fn feed(c: &mut Client, text: &str) -> Result<Next> {
        for l in text.lines() {
            assert!(matches!(c.push(Some(Line::Data(l.into())))?, Next::Read), "{l:?}");
        }
        c.push(Some(Line::Marker(Marker::ProbeEnd)))
    }

    fn marker(c: &mut Client, m: Marker) -> Next {
        c.push(Some(Line::Marker(m))).unwrap()
    }

    /// A fresh host: the file is missing. The payload goes out; the apply's markers count
    /// the change and the handler; the end with status 0 is a success.
    #[test]
    fn a_fresh_host_gets_a_payload_and_its_steps_are_counted() {
        let d = desired(vec![]);
        let mut c = Client::new(&d, STATE, &opts(false), "n0", NOW);
        assert!(matches!(c.push(Some(Line::Marker(Marker::Ready))).unwrap(), Next::Read));
        let Next::Apply { payload, record_only } = feed(&mut c, &probe_output("700", 0, None, None)).unwrap() else {
            panic!("no payload")
        };
        assert!(!record_only && payload.len() > 1024);
        assert_eq!(c.run.plan.changes.len(), 1);
        assert!(
            matches!(marker(&mut c, Marker::Begin("stage".into())), Next::Begin { label: l, .. } if l == "staging the changed files")
        );
        assert!(
            matches!(marker(&mut c, Marker::Begin("0".into())), Next::Begin { label: l, .. } if l.starts_with("file /etc/app.conf"))
        );
        assert!(matches!(marker(&mut c, Marker::Passed("0".into())), Next::Step { ok: true, .. }));
        let wait = marker(&mut c, Marker::AptWait("812 apt-get".into()));
        assert!(matches!(wait, Next::Wait(p) if p == "waiting for the dpkg lock (held by 812 apt-get)"));
        assert!(matches!(
            marker(&mut c, Marker::Passed("h0".into())),
            Next::Step { ok: true, text: t, handler: Some(h) } if t == "handler reload" && h == "reload"
        ));
        assert!(matches!(c.push(Some(Line::Data("stray".into()))).unwrap(), Next::Read));
        assert!(matches!(c.push(None).unwrap(), Next::Exit));
        assert!(matches!(c.exit(0), End::Done));
        assert_eq!((c.run.changed, c.run.failed, &c.run.handlers_run), (1, 0, &vec!["reload".to_string()]));
    }

    /// The right file, hashed by the probe's `find`, no hash record yet: nothing to change,
    /// but the record is written (a payload with no step but that). With `--check`: the
    /// client finishes, nothing sent but the empty frame. A status other than 0 then is
    /// the session's to explain.
    #[test]
    fn a_no_op_writes_the_record_once_and_check_sends_nothing() {
        let d = desired(vec![]);
        let file = rec('f', "644", 0, 9, "/etc/app.conf");
        let out = probe_output("700", 0, Some(&file), Some(&d.files[0].sha256));
        let mut c = Client::new(&d, STATE, &opts(false), "n0", NOW);
        let Next::Apply { record_only, .. } = feed(&mut c, &out).unwrap() else { panic!("no payload") };
        assert!(record_only);
        assert!(c.run.plan.is_empty());

        let mut c = Client::new(&d, STATE, &opts(true), "n0", NOW);
        assert!(matches!(feed(&mut c, &out).unwrap(), Next::Finish));
        assert!(matches!(c.push(None).unwrap(), Next::Exit));
        assert!(matches!(c.exit(3), End::Status(3)));
        assert_eq!(c.run.changed, 0);
        // Check mode counts what would change.
        let mut c = Client::new(&d, STATE, &opts(true), "n0", NOW);
        assert!(matches!(feed(&mut c, &probe_output("700", 0, None, None)).unwrap(), Next::Finish));
        assert_eq!(c.run.changed, 1);
    }

    /// A file the probe left to the hash record, which does not vouch for it (there is
    /// none): its hash is asked for in a `hash` frame, and read from the answer.
    #[test]
    fn what_the_record_cannot_vouch_for_is_asked_for() {
        let d = desired(vec![]);
        let file = rec('f', "644", 0, 9, "/etc/app.conf");
        let mut c = Client::new(&d, STATE, &opts(true), "n0", NOW);
        let Next::Send(frame) = feed(&mut c, &probe_output("700", 0, Some(&file), None)).unwrap() else {
            panic!("no hash frame")
        };
        assert_eq!(frame, "hash\n/etc/app.conf\n\n");
        assert_eq!(c.asked(), ["/etc/app.conf"]);
        // An answer for a path not asked for does not parse.
        let mut other = Client::new(&d, STATE, &opts(true), "n0", NOW);
        feed(&mut other, &probe_output("700", 0, Some(&file), None)).unwrap();
        let e = feed(&mut other, &format!("{}  /etc/other\n", d.files[0].sha256)).err().unwrap();
        assert!(e.to_string().contains("does not parse"), "{e}");
        // The right hash: nothing to change.
        assert!(matches!(feed(&mut c, &format!("{}  /etc/app.conf\n", d.files[0].sha256)).unwrap(), Next::Finish));
        assert!(c.run.plan.is_empty());
    }

    /// Refusals: a state folder that is not 0700 (nothing is sent: the host writes
    /// nothing), one under a folder others can write, a plan acting in such a folder (an
    /// empty frame first); output the probe did not print; a stream that ends early.
    #[test]
    fn refusals_and_early_ends() {
        let d = desired(vec![]);
        let mut c = Client::new(&d, STATE, &opts(false), "n0", NOW);
        let Next::Refuse { frame: false, error } = feed(&mut c, &probe_output("755", 0, None, None)).unwrap() else {
            panic!("not refused")
        };
        assert!(error.to_string().contains("/s"), "{error}");

        let exposed = format!("P\t{}{}\n", rec('d', "700", 0, 2, STATE), rec('d', "777", 0, 1, "/"));
        let mut c = Client::new(&d, STATE, &opts(false), "n0", NOW);
        assert!(matches!(feed(&mut c, &exposed).unwrap(), Next::Refuse { frame: false, .. }));

        let link = LinkSpec {
            origin: Origin { role: "r".into(), line: 3 },
            path: "/etc/cur".into(),
            target: "/etc/app.conf".into(),
            notify: vec![],
        };
        let d2 = desired(vec![link]);
        let mut c = Client::new(&d2, STATE, &opts(false), "n0", NOW);
        let Next::Refuse { frame: true, error } = feed(&mut c, &probe_output("700", 33, None, None)).unwrap() else {
            panic!("not refused")
        };
        assert!(error.to_string().contains("refusing to act as root"), "{error}");

        let mut c = Client::new(&d, STATE, &opts(false), "n0", NOW);
        assert!(feed(&mut c, "Z\tsomething else\n").is_err());

        let mut c = Client::new(&d, STATE, &opts(false), "n0", NOW);
        assert!(matches!(c.push(Some(Line::Data("P\t".into()))).unwrap(), Next::Read));
        assert!(matches!(c.push(None).unwrap(), Next::EarlyEnd));
    }

    /// A failed step names its change and carries its output; a failed `validate` says the
    /// live file is unchanged and names the check.
    #[test]
    fn a_failed_step_and_a_refused_validate_are_named() {
        let d = desired(vec![]);
        for (step, what) in [
            ("0", "validate refused the new content of /etc/app.conf (exit 2)"),
            ("h0", "handler reload failed (exit 2)"),
        ] {
            let mut c = Client::new(&d, STATE, &opts(false), "n0", NOW);
            assert!(matches!(feed(&mut c, &probe_output("700", 0, None, None)).unwrap(), Next::Apply { .. }));
            assert!(matches!(
                marker(&mut c, Marker::Fail { step: step.into(), code: Some("2".into()) }),
                Next::Step { ok: false, .. }
            ));
            marker(&mut c, Marker::Out("bad line 3".into()));
            assert!(matches!(c.push(None).unwrap(), Next::Exit));
            let End::Failed(e) = c.exit(1) else { panic!("{step}: not failed") };
            let text = format!("{e:?}");
            assert!(e.to_string().contains(what), "{step}: {e}");
            assert!(text.contains("bad line 3"), "{step}: {text}");
            assert_eq!(c.run.failed, 1);
        }
    }
}
