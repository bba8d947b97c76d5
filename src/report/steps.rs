//! What `-vv` says about each host script microctl sends: a readable summary of its steps, in
//! the order the script takes them, built from the same settings the script is built from.
//! Not the script's text (hundreds of lines of fixed shell per host, the same every run: it is
//! in `src/remote/`, `src/apply/` and `src/deploy/`), and never a payload (a file's content, a
//! release tar, the env file). Commands from the inventory and roles are shown as written
//! there after rendering; the printer redacts secrets from them like from everything else.
//! Each domain writes its own summary (`apply::steps`, `deploy::steps`) with the shared
//! pieces here.

/// The session's first step on every host: the host lock.
pub fn lock(state_dir: &str, lock_wait_secs: u64) -> String {
    format!("take the host lock {state_dir} (if another run holds it: wait up to {lock_wait_secs}s)")
}

/// `text` on one line: a newline shows as `\n`, so a summary line stays one line.
pub fn one_line(text: &str) -> String {
    text.replace('\n', "\\n")
}
