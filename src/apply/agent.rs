//! Converge's part of the host session (`host.sh`): after the session holds the lock, the
//! probe section runs, then `probe-end`, then the payload frame is read and its `apply.sh`
//! run (or the script exits when the frame is empty). Lock, framing and markers are
//! `crate::remote`'s.

/// The fixed tail of converge's session body.
pub const HOST_SH: &str = include_str!("host.sh");

/// Converge's session body: the probe section (see `plan::probe::script`), then `host.sh`.
pub fn body(probe: &str) -> String {
    format!("{probe}{HOST_SH}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::{self, Privilege};
    use std::io::Write;
    use std::process::{Command, Stdio};

    /// The whole converge session script under the real sh and dash, behind a banner with no
    /// newline: empty payload, then a payload whose apply.sh reports a step.
    #[test]
    fn host_script_runs_under_sh_and_dash() {
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let state = dir.path().join("state");
            let spec = remote::test_spec(state.to_str().unwrap(), "n0", 1);
            let script = remote::script(&spec, &body("echo probe-line\n"));
            let run = |payload: &[u8]| {
                let mut input = remote::frame(script.as_bytes());
                input.extend_from_slice(&remote::frame(payload));
                let cmd = format!("printf 'Welcome to prod-host! '; {}", remote::bootstrap(Privilege::AsLogin));
                let mut child = Command::new(shell)
                    .arg("-c")
                    .arg(cmd)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                child.stdin.take().unwrap().write_all(&input).unwrap();
                let out = child.wait_with_output().unwrap();
                (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
            };
            let (code, out) = run(b"");
            assert_eq!(code, Some(0), "{shell}: {out}");
            assert_eq!(out, "Welcome to prod-host! n0 start\nn0 ready\nprobe-line\nn0 probe-end\n", "{shell}");
            assert!(state.join("lock").exists());
            // The lock is free again: its owner line is emptied (by the shell, without a process).
            assert_eq!(std::fs::read_to_string(state.join("lock.owner")).unwrap(), "");

            let mut tar = tar::Builder::new(Vec::new());
            let apply = format!("{}{}mark passed 0\n", remote::MARK_SH, crate::apply::script::APPLY_SH);
            let mut h = tar::Header::new_gnu();
            h.set_size(apply.len() as u64);
            h.set_mode(0o600);
            h.set_cksum();
            tar.append_data(&mut h, "apply.sh", apply.as_bytes()).unwrap();
            let (code, out) = run(&tar.into_inner().unwrap());
            assert_eq!(code, Some(0), "{shell}: {out}");
            assert!(out.ends_with("n0 probe-end\nn0 passed\t0\n"), "{shell}: {out}");
        }
    }
}
