//! The probe: one shell script that prints the current state of every resource of a host's
//! run (paths, hashes, modes, owners, link targets, packages, units, command guards, pending
//! handlers), and the parser that reads its output back. It runs as part of the host's single
//! exec round trip; its cost on the host is a constant number of processes however many
//! files the roles have (one `find`, one `sha256sum`, one `dpkg-query`).

use std::collections::HashMap;

use super::desired::Desired;
use super::hashes;
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
    /// Device, inode, size and ctime (what the hash record is checked against).
    pub stat: Stat,
    /// The owner's user and group ids.
    pub uid: u32,
    pub gid: u32,
    /// The hash came from the hash record (`plan::hashes`), not from reading the file now.
    pub vouched: bool,
    /// Current content, fetched only for `--diff` and only when it differs.
    pub content: Option<Vec<u8>>,
}

/// The fields of a path's `stat` that tell whether it changed since the hash record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub ctime: Stamp,
}

/// A timestamp as `find` prints it (`%C@`, `%T@`: seconds and a fraction), to the nanosecond.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp {
    pub secs: i64,
    pub nanos: u32,
}

impl Stamp {
    /// `SECS.FRACTION` (GNU find prints ten fraction digits; the tenth is always 0).
    pub fn parse(text: &str) -> Option<Stamp> {
        let (secs, frac) = text.split_once('.')?;
        if secs.is_empty() || frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let secs: i64 = secs.parse().ok()?;
        let mut nanos = 0u32;
        for i in 0..9 {
            nanos = nanos * 10 + frac.as_bytes().get(i).map_or(0, |b| u32::from(b - b'0'));
        }
        Some(Stamp { secs, nanos })
    }
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
    /// The lines of the host's hash record (`H` lines), judged by `plan::hashes` once the
    /// state folder is known to be ours.
    pub record: Vec<String>,
    /// The login user's id (the state folder's owner), once the client checked that folder:
    /// trusted like root (`plan::trust`).
    pub login_uid: Option<u32>,
    /// Users, groups and key files (`plan::users`).
    pub users: super::users::ObservedUsers,
    /// The facts' fingerprint line (`crate::facts`), when the roles read `facts`.
    pub facts_fingerprint: Option<String>,
    /// The hash the live firewall table carries (`crate::firewall`; empty: none), when the
    /// host's firewall is on.
    pub firewall: Option<String>,
}

impl Observed {
    pub fn path(&self, p: &str) -> PathState {
        self.paths.get(p).cloned().unwrap_or_default()
    }

    /// The state folder `dir` (the probe's first record) is a folder with mode exactly 0700
    /// (not a symlink: `find` does not follow it; its owner the host script checked).
    pub fn state_folder_ok(&self, dir: &str) -> bool {
        self.paths.get(dir).is_some_and(|s| s.kind == Kind::Dir && s.mode == 0o700)
    }
}

/// Files whose current content `--diff` needs: small, not sensitive.
pub const DIFF_LIMIT: usize = 256 * 1024;

/// The probe section of the host script. `$STATE` is the host's state folder.
///
/// Every field a user or another process can influence is framed so it cannot forge a line:
/// `find` prints its records NUL-separated after a `P<TAB>` tag (a symlink target may hold
/// newlines and tabs, never a NUL), ended by one newline, with the `sha256sum` lines find runs
/// for the regular files among them in between; `sha256sum`'s escaped lines (a
/// path with `\`) are unescaped; `--diff` content is base64 and read with `dd
/// iflag=nofollow`, so it never comes from behind a symlink.
pub fn script(desired: &Desired, state_dir: &str, with_diff: bool) -> String {
    let mut s = String::new();
    let mut paths = desired.probed_paths();
    // The state folder's own record comes first (`$STATE`, never hashed: a folder): the
    // client refuses the host unless it is a folder with mode 0700 (see `state_folder_ok`).
    // Then every folder above a probed path or the state folder (`plan::trust` judges who
    // can write there), by name, never hashed.
    let probed: std::collections::HashSet<&str> = paths.iter().copied().collect();
    let folders: std::collections::BTreeSet<String> = paths
        .iter()
        .copied()
        .chain([state_dir])
        .flat_map(super::trust::ancestors)
        .filter(|a| !probed.contains(a.as_str()))
        .collect();
    let list: Vec<String> = paths.iter().map(|p| quote(p)).chain(folders.iter().map(|p| quote(p))).collect();
    paths.extend(folders.iter().map(String::as_str));
    // `sha256sum` runs from `find`, on the file destinations that are regular files (never
    // a FIFO, a device or a symlink to one: opening or reading those can block forever) and
    // that the host's hash record cannot vouch for (`hashes::LIST_SH` set T0 and `-o -inum N...`:
    // a file whose inode is listed there and whose ctime is not newer than T0 is left to the
    // client, `plan::hashes`). Its lines ("HASH  PATH") come between the records: GNU find
    // flushes its own output before it runs the batch. Other probed paths (dirs, links,
    // `absent`, `creates`) are left out by name, so a big file there is not read.
    let hash = if desired.files.is_empty() {
        String::new()
    } else {
        s.push_str(&hashes::LIST_SH);
        let dests: std::collections::HashSet<&str> = desired.files.iter().map(|f| f.dest.as_str()).collect();
        let mut others: Vec<String> =
            paths.iter().filter(|p| !dests.contains(*p)).map(|p| format!("-path {}", quote(&glob_escape(p)))).collect();
        // The hash record's `T_` entry (`$HT`, a starting point for its ctime) is never read.
        others.push(format!("-path {}", quote(&hashes::t_entry(&glob_escape(state_dir)))));
        let skip = format!("! '(' {} ')' ", others.join(" -o "));
        format!(" {skip}-type f {} -exec sha256sum -- {{}} +", hashes::FIND_UNVOUCHED)
    };
    // Owner and group names only when a resource manages one (each name costs `find` an NSS
    // lookup); `-` otherwise, never compared.
    let metas = || desired.dirs.iter().map(|d| &d.meta).chain(desired.files.iter().map(|f| &f.meta));
    let owner = if metas().any(|m| m.owner.is_some()) { "%u" } else { "-" };
    let group = if metas().any(|m| m.group.is_some()) { "%g" } else { "-" };
    // The hash record's folder and `T_` entry come second and third (where there are files).
    let (record, names) = if desired.files.is_empty() { ("", "") } else { (hashes::FIND_STARTS, "%s") };
    let names_arg = if names.is_empty() { "" } else { " \"$H\"" };
    s.push_str(&format!(
        "printf '{names}P\\t'{names_arg}; find \"$STATE\"{record}{}{} -maxdepth 0 -printf '%y\\0%m\\0{owner}\\0{group}\\0%l\\0%D\\0%i\\0%s\\0%C@\\0%U\\0%G\\0%p\\0'{hash} 2>/dev/null; echo\n",
        if list.is_empty() { "" } else { " " },
        list.join(" ")
    ));
    if with_diff {
        for f in desired.files.iter().filter(|f| !f.sensitive && f.content.len() <= DIFF_LIMIT) {
            let q = quote(&f.dest);
            s.push_str(&format!(
                "if [ -f {q} ] && [ ! -L {q} ]; then case \"$(sha256sum < {q})\" in {sha}*) ;; *) printf 'X\\t%s\\t' {q}; \
                 dd if={q} iflag=nofollow,nonblock bs={} count=1 2>/dev/null | base64 -w0; echo ;; esac; fi\n",
                DIFF_LIMIT + 1,
                sha = f.sha256
            ));
        }
    }
    // The firewall's own `nftables` is checked by its part, below, from `nft` itself.
    let own_nft = crate::firewall::owns_package(desired);
    let names: Vec<String> =
        desired.packages.iter().filter(|p| !(own_nft && p.name == "nftables")).map(|p| quote(&p.name)).collect();
    if !names.is_empty() {
        s.push_str(&format!(
            "dpkg-query -W -f='K\\t${{Package}}\\t${{db:Status-Abbrev}}\\n' {} 2>/dev/null\n",
            names.join(" ")
        ));
    }
    if desired.facts_fingerprint.is_some() {
        s.push_str(&crate::facts::gather::FINGERPRINT_SH);
    }
    if desired.firewall.is_some() {
        s.push_str(if own_nft { crate::firewall::PROBE_WITH_PACKAGE_SH } else { crate::firewall::PROBE_SH });
    }
    s.push_str(&super::users::probe_script(desired));
    for svc in &desired.services {
        let q = quote(&svc.name);
        s.push_str(&format!(
            "printf 'S\\t%s\\t%s\\t%s\\n' {q} \"$(systemctl is-enabled {q} 2>/dev/null)\" \"$(systemctl is-active {q} 2>/dev/null)\"\n"
        ));
    }
    for (i, cmd) in desired.commands.iter().enumerate() {
        if let Some(unless) = &cmd.unless {
            // Its own bounded `sh -c` (crate::remote::bounded): it may end in a `# comment`, hang.
            s.push_str(&format!(
                "if {} >/dev/null 2>&1 </dev/null 9>&-; then echo 'U\t{i}\t1'; else echo 'U\t{i}\t0'; fi\n",
                crate::remote::bounded(unless)
            ));
        }
    }
    // Read before the client has seen the folder's mode: never through a symlink or from a FIFO.
    s.push_str("if [ -f \"$STATE/pending-handlers\" ] && [ ! -L \"$STATE/pending-handlers\" ]; then while IFS= read -r h; do printf 'N\\t%s\\n' \"$h\"; done < \"$STATE/pending-handlers\"; fi\n");
    s
}

/// Parses the probe's output (everything between `ready` and `probe-end`, lines joined by
/// `\n`). Anything that is not exactly what the probe prints is an error: the host fails
/// rather than be planned from output it did not mean.
pub fn parse(output: &str) -> Result<Observed, String> {
    let mut obs = Observed::default();
    // The hash record's lines, kept as they are: judged only once the state folder is ours.
    let (record, mut rest) = hashes::parse_listing(output)?;
    obs.record = record;
    if let Some(mut r) = rest.strip_prefix("P\t") {
        loop {
            if let Some(after) = r.strip_prefix('\n') {
                rest = after;
                break;
            }
            if r.as_bytes().get(1) != Some(&0) {
                // Not a record (its one-letter type and a NUL): a `sha256sum` line.
                let (line, tail) = r.split_once('\n').ok_or("a hash line is cut short")?;
                let (hash, path) = hash_line(line).ok_or_else(|| bad(line))?;
                obs.paths.entry(path).or_default().sha256 = Some(hash.to_string());
                r = tail;
                continue;
            }
            let mut f = [""; 12];
            for field in f.iter_mut() {
                let (value, tail) = r.split_once('\0').ok_or("a path record is cut short")?;
                *field = value;
                r = tail;
            }
            let [kind, mode, owner, group, target, dev, ino, size, ctime, uid, gid, path] = f;
            let kind = match kind {
                "f" => Kind::File,
                "d" => Kind::Dir,
                "l" => Kind::Link,
                k if k.len() == 1 => Kind::Other,
                k => return Err(format!("a path record has type `{k}`")),
            };
            let entry = obs.paths.entry(path.to_string()).or_default();
            entry.kind = kind;
            entry.mode = u32::from_str_radix(mode, 8).map_err(|_| format!("{path} has mode `{mode}`"))?;
            entry.owner = owner.to_string();
            entry.group = group.to_string();
            entry.link_target = target.to_string();
            let number = |v: &str| v.parse::<u64>().map_err(|_| format!("{path} has a stat field `{v}`"));
            entry.uid = uid.parse().map_err(|_| format!("{path} has owner id `{uid}`"))?;
            entry.gid = gid.parse().map_err(|_| format!("{path} has group id `{gid}`"))?;
            entry.stat = Stat {
                dev: number(dev)?,
                ino: number(ino)?,
                size: number(size)?,
                ctime: Stamp::parse(ctime).ok_or_else(|| format!("{path} has ctime `{ctime}`"))?,
            };
        }
    }
    for line in rest.lines() {
        let (tag, fields) = line.split_once('\t').unwrap_or((line, ""));
        match tag {
            "X" => {
                use data_encoding::BASE64;
                let (path, b64) = fields.split_once('\t').ok_or_else(|| bad(line))?;
                let content = BASE64.decode(b64.as_bytes()).map_err(|_| bad(line))?;
                obs.paths.entry(path.to_string()).or_default().content = Some(content);
            }
            "K" => {
                let (name, status) = fields.split_once('\t').ok_or_else(|| bad(line))?;
                obs.packages.insert(name.to_string(), status.trim() == "ii");
            }
            "S" => {
                let v: Vec<&str> = fields.split('\t').collect();
                let [name, enabled, active] = v.as_slice() else { return Err(bad(line)) };
                obs.units
                    .insert(name.to_string(), UnitState { enabled: enabled.to_string(), active: active.to_string() });
            }
            "U" => match fields.split_once('\t') {
                Some((i, ok @ ("0" | "1"))) => {
                    obs.unless_ok.insert(i.parse().map_err(|_| bad(line))?, ok == "1");
                }
                _ => return Err(bad(line)),
            },
            "F" if obs.facts_fingerprint.is_none() => obs.facts_fingerprint = Some(fields.to_string()),
            "FW" if obs.firewall.is_none() => obs.firewall = Some(fields.to_string()),
            "N" => {
                if !fields.is_empty() && !obs.pending_handlers.iter().any(|h| h == fields) {
                    obs.pending_handlers.push(fields.to_string());
                }
            }
            _ => {
                if !super::users::parse_record(&mut obs.users, tag, fields)? {
                    return Err(bad(line));
                }
            }
        }
    }
    Ok(obs)
}

/// `p` as a `find -path` pattern that matches only itself.
fn glob_escape(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for c in p.chars() {
        if matches!(c, '\\' | '*' | '?' | '[') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub(super) fn bad(line: &str) -> String {
    format!("unexpected probe output `{}`", line.escape_debug())
}

/// `sha256sum`'s "HASH  PATH", or `\HASH  PATH` with `\\` and `\n` escaped in PATH (GNU
/// coreutils escapes the line of a name holding `\`, newline or CR).
pub(crate) fn hash_line(line: &str) -> Option<(&str, String)> {
    let (escaped, line) = match line.strip_prefix('\\') {
        Some(l) => (true, l),
        None => (false, line),
    };
    let b = line.as_bytes();
    if !(b.len() > 66 && b[..64].iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) && &b[64..66] == b"  ") {
        return None;
    }
    let raw = &line[66..];
    if !escaped {
        return Some((&line[..64], raw.to_string()));
    }
    let mut path = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            path.push(c);
            continue;
        }
        match chars.next()? {
            '\\' => path.push('\\'),
            'n' => path.push('\n'),
            'r' => path.push('\r'),
            _ => return None,
        }
    }
    Some((&line[..64], path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::desired::*;
    use crate::plan::hashes::LIST_SH;
    use std::sync::Arc;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn parses_every_record_kind() {
        let out = format!(
            "P\tf\x00644\x00root\x00root\x00\x001\x002\x003\x001.5\x000\x000\x00/etc/a b\x00l\x00777\x00root\x00root\x00/x/y\x001\x002\x003\x001.5\x000\x000\x00/etc/link\x00\
             {HASH}  /etc/a b\n\
             d\x002755\x00www-data\x00adm\x00\x001\x002\x003\x001.5\x000\x000\x00/srv\x00\
             \\{HASH}  /etc/back\\\\slash\n\n\
             K\tnginx\tii \nK\tcurl\tun \n\
             S\tnginx\tenabled\tactive\n\
             U\t0\t1\nN\treload nginx\nN\treload nginx\nX\t/etc/a b\taGk=\n"
        );
        let obs = parse(&out).unwrap();
        let a = obs.path("/etc/a b");
        assert_eq!((a.kind, a.mode, a.sha256.as_deref()), (Kind::File, 0o644, Some(HASH)));
        assert_eq!(a.content.as_deref(), Some(&b"hi"[..]));
        assert_eq!(obs.path("/etc/back\\slash").sha256.as_deref(), Some(HASH));
        assert_eq!(obs.path("/etc/link").link_target, "/x/y");
        assert_eq!(obs.path("/srv").mode, 0o2755);
        assert_eq!(obs.path("/nope").kind, Kind::Missing);
        assert!(obs.packages["nginx"]);
        assert!(!obs.packages["curl"]);
        assert_eq!(obs.units["nginx"], UnitState { enabled: "enabled".into(), active: "active".into() });
        assert!(obs.unless_ok[&0]);
        assert_eq!(obs.pending_handlers, vec!["reload nginx"]);
    }

    /// Output the probe did not mean fails the host: stray lines, cut records, bad fields.
    #[test]
    fn refuses_what_does_not_parse() {
        for out in [
            "banner noise\n".to_string(),
            "P\tf\x00644\x00root\n".to_string(),
            "P\tf\x00rw\x00root\x00root\x00\x001\x002\x003\x001.5\x000\x000\x00/a\x00\n".to_string(),
            "P\tfile\x00644\x00root\x00root\x00\x001\x002\x003\x001.5\x000\x000\x00/a\x00\n".to_string(),
            format!("{}  /short-hash\n", &HASH[..60]),
            format!("\\{HASH}  /bad\\qescape\n"),
            format!("P\t\\{HASH}  /bad\\qescape\n\n"),
            format!("P\t{HASH}  /a\n"),
            format!("P\t{HASH}  /a"),
            "U\t0\tyes\n".into(),
            "X\t/a\tnot base64!\n".into(),
            "S\tnginx\tenabled\n".into(),
        ] {
            assert!(parse(&out).is_err(), "{out:?} parsed");
        }
        assert!(parse("").is_ok());
    }

    /// A symlink whose target text holds a newline and a fake "right hash" line and a fake
    /// package line: the record keeps it as the link target, nothing else is believed.
    #[test]
    fn a_forged_symlink_target_is_only_a_target() {
        let forged = format!("x\n{HASH}  /etc/managed\nK\tnginx\tii \n");
        let out = format!("P\tl\x00777\x00u\x00u\x00{forged}\x001\x002\x003\x001.5\x000\x000\x00/etc/managed\x00\n");
        let obs = parse(&out).unwrap();
        let m = obs.path("/etc/managed");
        assert_eq!((m.kind, m.sha256, m.link_target.as_str()), (Kind::Link, None, forged.as_str()));
        assert!(obs.packages.is_empty());
    }

    fn desired(root: &str) -> Desired {
        let o = || Origin { role: "r".into(), line: 1 };
        let content = Arc::new(b"test".to_vec());
        let file = |dest: String| FileSpec {
            origin: o(),
            dest,
            sha256: sha256_hex(&content),
            content: content.clone(),
            meta: Meta::default(),
            validate: None,
            sensitive: false,
            notify: vec![],
            apt_source: false,
        };
        Desired {
            host: "h".into(),
            files: vec![
                file(format!("{root}/managed")),
                file(format!("{root}/back\\slash")),
                file(format!("{root}/plain")),
            ],
            commands: vec![CommandSpec {
                origin: o(),
                name: "c".into(),
                run: "true".into(),
                creates: None,
                unless: Some("true # a trailing comment".into()),
                notify: vec![],
                early: false,
            }],
            ..Default::default()
        }
    }

    /// The real probe under sh and dash, on a folder where one managed path is a symlink
    /// whose target text forges a "present, right hash" line, one has a `\` in its name and
    /// one differs (--diff content): parsed back exactly, the forgery stays a link target,
    /// and a diff never shows what is behind the symlink.
    #[test]
    fn real_probe_under_sh_and_dash_cannot_be_forged() {
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_str().unwrap();
            let d = desired(root);
            let secret = dir.path().join("secret");
            std::fs::write(&secret, "SECRET_KEY=1\n").unwrap();
            let forged = format!("{}\n{HASH}  {root}/managed\n", secret.display());
            std::os::unix::fs::symlink(&forged, format!("{root}/managed")).unwrap();
            std::fs::write(format!("{root}/back\\slash"), "test").unwrap();
            std::fs::write(format!("{root}/plain"), "old\n").unwrap();
            let script = format!("STATE={root}/state\nTIMEOUT=60\n{}", script(&d, &format!("{root}/state"), true));
            let out = std::process::Command::new(shell).arg("-c").arg(&script).output().unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            let obs = parse(&text).unwrap_or_else(|e| panic!("{shell}: {e}: {text:?}"));
            let m = obs.path(&format!("{root}/managed"));
            assert_eq!((m.kind, m.link_target.as_str(), m.content), (Kind::Link, forged.as_str(), None), "{shell}");
            assert_ne!(m.sha256.as_deref(), Some(d.files[0].sha256.as_str()), "{shell}");
            assert_eq!(obs.path(&format!("{root}/back\\slash")).sha256.as_deref(), Some(d.files[1].sha256.as_str()));
            assert_eq!(obs.path(&format!("{root}/plain")).content.as_deref(), Some(&b"old\n"[..]), "{shell}");
            assert!(obs.unless_ok[&0], "{shell}: a trailing comment in `unless`");
            assert!(!text.contains("SECRET_KEY"), "{shell}: {text}");
            let plan = crate::plan::plan(&d, &obs);
            let written: Vec<_> =
                plan.changes.iter().filter(|c| matches!(c.action, crate::plan::Action::WriteFile(_))).collect();
            assert_eq!(written.len(), 2, "{shell}: managed (a link) and plain are written: {:?}", plan.changes);
        }
    }

    #[test]
    fn script_is_exact() {
        let d = desired("/r");
        assert_eq!(
            script(&d, "/s", false),
            format!(
                "{LIST_SH}printf '%sP\\t' \"$H\"; find \"$STATE\" \"$STATE/hashes\" \"$HT\" '/r/back\\slash' /r/managed /r/plain / /r -maxdepth 0 \
                 -printf '%y\\0%m\\0-\\0-\\0%l\\0%D\\0%i\\0%s\\0%C@\\0%U\\0%G\\0%p\\0' ! '(' -path / -o -path /r -o -path '/s/hashes/T_*' ')' -type f \
                 '(' -newerct \"@$T0\" -o ! '(' -false \"$@\" ')' ')' -exec sha256sum -- {{}} + 2>/dev/null; echo\n\
                 if MICROCTL_SNIPPET='true # a trailing comment' timeout -k 5 \"$TIMEOUT\" /bin/sh -c 'eval \"unset MICROCTL_SNIPPET; $MICROCTL_SNIPPET\"' >/dev/null 2>&1 </dev/null 9>&-; then echo 'U\t0\t1'; else echo 'U\t0\t0'; fi\n\
                 if [ -f \"$STATE/pending-handlers\" ] && [ ! -L \"$STATE/pending-handlers\" ]; then \
                 while IFS= read -r h; do printf 'N\\t%s\\n' \"$h\"; done < \"$STATE/pending-handlers\"; fi\n"
            )
        );
        // Paths that are not file destinations are never hashed (named as exact patterns);
        // owner and group names only when a resource manages one.
        let mut d = desired("/r");
        d.files.truncate(1);
        d.files[0].meta.owner = Some("www-data".into());
        d.commands[0].creates = Some("/r/big[1]*?\\x".into());
        assert!(script(&d, "/s[1]", false).starts_with(&format!(
            "{LIST_SH}printf '%sP\\t' \"$H\"; find \"$STATE\" \"$STATE/hashes\" \"$HT\" '/r/big[1]*?\\x' /r/managed / /r -maxdepth 0 \
             -printf '%y\\0%m\\0%u\\0-\\0%l\\0%D\\0%i\\0%s\\0%C@\\0%U\\0%G\\0%p\\0' \
             ! '(' -path '/r/big\\[1]\\*\\?\\\\x' -o -path / -o -path /r -o -path '/s\\[1]/hashes/T_*' ')' -type f '(' -newerct \"@$T0\" -o ! '(' -false \"$@\" ')' ')' \
             -exec sha256sum -- {{}} + 2>/dev/null; echo\n"
        )));
        // Nothing to probe: still the state folder's record, and no hash record is read.
        assert!(script(&Desired::default(), "/s", false).starts_with(
            "printf 'P\\t'; find \"$STATE\" / -maxdepth 0 -printf '%y\\0%m\\0-\\0-\\0%l\\0%D\\0%i\\0%s\\0%C@\\0%U\\0%G\\0%p\\0' 2>/dev/null; echo\n"
        ));
    }

    /// The real probe under sh and dash prints the state folder's record, which the client
    /// accepts only for a folder with mode exactly 0700 (not 0755, 0777, 1700, not a symlink
    /// to a good folder, not a file, not missing); and it reads pending handlers from a
    /// plain file only, never through a symlink planted there.
    #[test]
    fn state_folder_record_is_checked() {
        use std::os::unix::fs::PermissionsExt;
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let state = dir.path().join("state");
            let st = state.to_str().unwrap();
            let secret = dir.path().join("secret");
            std::fs::write(&secret, "SECRET_KEY=1\n").unwrap();
            let probe = |state: &str| {
                let script =
                    format!("STATE={}\nTIMEOUT=60\n{}", quote(state), script(&desired("/nonexistent"), state, false));
                let out = std::process::Command::new(shell).arg("-c").arg(&script).output().unwrap();
                let text = String::from_utf8(out.stdout).unwrap();
                assert!(!text.contains("SECRET"), "{shell}: {text}");
                parse(&text).unwrap_or_else(|e| panic!("{shell}: {e}: {text:?}"))
            };
            assert!(!probe(st).state_folder_ok(st), "{shell}: missing");
            std::fs::write(&state, "").unwrap();
            assert!(!probe(st).state_folder_ok(st), "{shell}: a file");
            std::fs::remove_file(&state).unwrap();
            std::fs::create_dir(&state).unwrap();
            std::os::unix::fs::symlink(&secret, state.join("pending-handlers")).unwrap();
            for (mode, ok) in [(0o700, true), (0o755, false), (0o777, false), (0o1700, false), (0o701, false)] {
                std::fs::set_permissions(&state, std::fs::Permissions::from_mode(mode)).unwrap();
                let obs = probe(st);
                assert_eq!(obs.state_folder_ok(st), ok, "{shell}: {mode:o}");
                assert!(obs.pending_handlers.is_empty(), "{shell}: read through a symlink");
            }
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&state, &link).unwrap();
            assert!(!probe(link.to_str().unwrap()).state_folder_ok(link.to_str().unwrap()), "{shell}: a symlink");
            std::fs::remove_file(state.join("pending-handlers")).unwrap();
            std::fs::write(state.join("pending-handlers"), "reload nginx\n").unwrap();
            assert_eq!(probe(st).pending_handlers, ["reload nginx"], "{shell}");
        }
    }

    /// The real probe (with `--diff`) under sh and dash, where one managed path is a FIFO
    /// and one a symlink to /dev/zero, beside a `creates` path that is a regular file: it
    /// ends (nothing opens the FIFO or reads /dev/zero), the FIFO is a special file and the
    /// link a link, neither hashed nor diffed; only the file destination is hashed.
    #[test]
    fn real_probe_under_sh_and_dash_never_opens_a_fifo_or_a_device() {
        for shell in ["sh", "dash"] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_str().unwrap();
            let mut d = desired(root);
            let creates = format!("{root}/big[1]*");
            d.commands[0].creates = Some(creates.clone());
            std::fs::write(&creates, "x").unwrap();
            let fifo = format!("{root}/managed");
            assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
            std::os::unix::fs::symlink("/dev/zero", format!("{root}/back\\slash")).unwrap();
            std::fs::write(format!("{root}/plain"), "old\n").unwrap();
            let script = format!("STATE={root}/state\nTIMEOUT=60\n{}", script(&d, &format!("{root}/state"), true));
            let out = std::process::Command::new("timeout").args(["20", shell, "-c", &script]).output().unwrap();
            assert_ne!(out.status.code(), Some(124), "{shell}: the probe hung");
            let text = String::from_utf8(out.stdout).unwrap();
            let obs = parse(&text).unwrap_or_else(|e| panic!("{shell}: {e}: {text:?}"));
            let m = obs.path(&fifo);
            assert_eq!((m.kind, m.sha256, m.content), (Kind::Other, None, None), "{shell}");
            let z = obs.path(&format!("{root}/back\\slash"));
            assert_eq!((z.kind, z.link_target.as_str(), z.sha256), (Kind::Link, "/dev/zero", None), "{shell}");
            let plain = obs.path(&format!("{root}/plain"));
            assert_eq!(plain.sha256.as_deref(), Some(sha256_hex(b"old\n").as_str()), "{shell}");
            assert_eq!(plain.content.as_deref(), Some(&b"old\n"[..]), "{shell}");
            let c = obs.path(&creates);
            assert_eq!((c.kind, c.sha256), (Kind::File, None), "{shell}: a `creates` path is not read");
            let plan = crate::plan::plan(&d, &obs);
            let written = plan.changes.iter().filter(|c| matches!(c.action, crate::plan::Action::WriteFile(_))).count();
            assert_eq!(written, 3, "{shell}: {:?}", plan.changes);
        }
    }
}
