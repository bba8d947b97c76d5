//! The probe: one shell script that prints the current state of every resource of a host's
//! run (paths, hashes, modes, owners, link targets, packages, units, command guards, pending
//! handlers), and the parser that reads its output back. It runs as part of the host's single
//! exec round trip; its cost on the host is a constant number of processes however many
//! files the roles have (one `find`, one `sha256sum`, one `dpkg-query`).

use std::collections::HashMap;

use super::desired::Desired;
use crate::shell::quote;

/// What a path is on the host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Kind {
    #[default]
    Missing,
    File,
    Dir,
    Link,
    Other,
}

/// The observed state of one path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathState {
    pub kind: Kind,
    pub mode: u32,
    pub owner: String,
    pub group: String,
    pub link_target: String,
    pub sha256: Option<String>,
    /// Current content, fetched only for `--diff` and only when it differs.
    pub content: Option<Vec<u8>>,
}

/// A systemd unit's state as `systemctl is-enabled` / `is-active` print it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitState {
    pub enabled: String,
    pub active: String,
}

/// Everything the probe saw.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub paths: HashMap<String, PathState>,
    /// Package name -> installed.
    pub packages: HashMap<String, bool>,
    pub units: HashMap<String, UnitState>,
    /// Command index -> its `unless` guard succeeded.
    pub unless_ok: HashMap<usize, bool>,
    /// Handlers notified by an earlier run that did not get to run them.
    pub pending_handlers: Vec<String>,
}

impl Observed {
    pub fn path(&self, p: &str) -> PathState {
        self.paths.get(p).cloned().unwrap_or_default()
    }
}

/// Files whose current content `--diff` needs: small, not sensitive.
pub const DIFF_LIMIT: usize = 256 * 1024;

/// The probe section of the host script. `$STATE` is the host's state folder.
pub fn script(desired: &Desired, with_diff: bool) -> String {
    let mut s = String::new();
    let paths = desired.probed_paths();
    if !paths.is_empty() {
        let list: Vec<String> = paths.iter().map(|p| quote(p)).collect();
        s.push_str(&format!(
            "find {} -maxdepth 0 -printf 'P\\t%y\\t%m\\t%u\\t%g\\t%l\\t%p\\n' 2>/dev/null\n",
            list.join(" ")
        ));
    }
    if !desired.files.is_empty() {
        let list: Vec<String> = desired.files.iter().map(|f| quote(&f.dest)).collect();
        // Its lines are recognised by their shape ("HASH  PATH"): no `sed` process to tag them.
        s.push_str(&format!("sha256sum {} 2>/dev/null\n", list.join(" ")));
    }
    if with_diff {
        for f in desired.files.iter().filter(|f| !f.sensitive && f.content.len() <= DIFF_LIMIT) {
            let q = quote(&f.dest);
            s.push_str(&format!(
                "if [ -f {q} ] && [ \"$(stat -c %s {q})\" -le {DIFF_LIMIT} ]; then h=$(sha256sum < {q}); \
                 [ \"${{h%% *}}\" = {sha} ] || printf 'X\\t%s\\t%s\\n' {q} \"$(base64 -w0 < {q})\"; fi\n",
                sha = f.sha256
            ));
        }
    }
    if !desired.packages.is_empty() {
        let names: Vec<String> = desired.packages.iter().map(|p| quote(&p.name)).collect();
        s.push_str(&format!(
            "dpkg-query -W -f='K\\t${{Package}}\\t${{db:Status-Abbrev}}\\n' {} 2>/dev/null\n",
            names.join(" ")
        ));
    }
    for svc in &desired.services {
        let q = quote(&svc.name);
        s.push_str(&format!(
            "printf 'S\\t%s\\t%s\\t%s\\n' {q} \"$(systemctl is-enabled {q} 2>/dev/null)\" \"$(systemctl is-active {q} 2>/dev/null)\"\n"
        ));
    }
    for (i, cmd) in desired.commands.iter().enumerate() {
        if let Some(unless) = &cmd.unless {
            s.push_str(&format!(
                "if ( {unless} ) >/dev/null 2>&1 </dev/null 9>&-; then echo 'U\t{i}\t1'; else echo 'U\t{i}\t0'; fi\n"
            ));
        }
    }
    s.push_str("if [ -f \"$STATE/pending-handlers\" ]; then while IFS= read -r h; do printf 'N\\t%s\\n' \"$h\"; done < \"$STATE/pending-handlers\"; fi\n");
    s
}

/// Parses the probe's output. Unknown lines are ignored (the remote shell may print banners).
pub fn parse(output: &str) -> Observed {
    let mut obs = Observed::default();
    for line in output.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["P", kind, mode, owner, group, target, path] => {
                let kind = match *kind {
                    "f" => Kind::File,
                    "d" => Kind::Dir,
                    "l" => Kind::Link,
                    _ => Kind::Other,
                };
                let entry = obs.paths.entry(path.to_string()).or_default();
                entry.kind = kind;
                entry.mode = u32::from_str_radix(mode, 8).unwrap_or(0);
                entry.owner = owner.to_string();
                entry.group = group.to_string();
                entry.link_target = target.to_string();
            }
            [line] if is_hash_line(line) => {
                // sha256sum prints "HASH  PATH".
                obs.paths.entry(line[66..].to_string()).or_default().sha256 = Some(line[..64].to_string());
            }
            ["X", path, b64] => {
                use data_encoding::BASE64;
                if let Ok(content) = BASE64.decode(b64.as_bytes()) {
                    obs.paths.entry(path.to_string()).or_default().content = Some(content);
                }
            }
            ["K", name, status] => {
                obs.packages.insert(name.to_string(), status.trim() == "ii");
            }
            ["S", name, enabled, active] => {
                obs.units
                    .insert(name.to_string(), UnitState { enabled: enabled.to_string(), active: active.to_string() });
            }
            ["U", idx, ok] => {
                if let Ok(i) = idx.parse() {
                    obs.unless_ok.insert(i, *ok == "1");
                }
            }
            ["N", name] if !name.is_empty() && !obs.pending_handlers.iter().any(|h| h == name) => {
                obs.pending_handlers.push(name.to_string());
            }
            _ => {}
        }
    }
    obs
}

/// `sha256sum`'s "HASH  PATH": 64 lowercase hex digits, two spaces, a path.
fn is_hash_line(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 66 && b[..64].iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) && &b[64..66] == b"  "
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_line_kind() {
        let hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let out = format!(
            "P\tf\t644\troot\troot\t\t/etc/a b\n\
                   {hash}  /etc/a b\n\
                   abc123  /etc/not-a-hash-line\n\
                   P\tl\t777\troot\troot\t/x/y\t/etc/link\n\
                   P\td\t2755\twww-data\tadm\t\t/srv\n\
                   K\tnginx\tii \nK\tcurl\tun \n\
                   S\tnginx\tenabled\tactive\n\
                   U\t0\t1\nN\treload nginx\nN\treload nginx\nbanner noise\n"
        );
        let obs = parse(&out);
        let a = obs.path("/etc/a b");
        assert_eq!((a.kind, a.mode, a.sha256.as_deref()), (Kind::File, 0o644, Some(hash)));
        assert_eq!(obs.path("/etc/not-a-hash-line").sha256, None);
        assert_eq!(obs.path("/etc/link").link_target, "/x/y");
        assert_eq!(obs.path("/srv").mode, 0o2755);
        assert_eq!(obs.path("/nope").kind, Kind::Missing);
        assert!(obs.packages["nginx"]);
        assert!(!obs.packages["curl"]);
        assert_eq!(obs.units["nginx"], UnitState { enabled: "enabled".into(), active: "active".into() });
        assert!(obs.unless_ok[&0]);
        assert_eq!(obs.pending_handlers, vec!["reload nginx"]);
    }
}
