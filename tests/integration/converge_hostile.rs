//! Converge on a hostile host (issue 12, items 5-7), against real sshd: a symlink whose target
//! text forges probe lines, a symlink swapped in between probe and apply, `--diff` on a
//! symlinked path, a state folder others could read, a run killed mid-upload, a path with
//! `\`, shell snippets ending in comments, `%%` in validate, and input errors exiting 2.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::converge::Fleet;
use crate::converge_safety::spawn_converge;
use crate::support::*;

fn sha256_hex(data: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

const TWO_FILES: &str = r#"
[[file]]
dest = "{{ root }}/etc/a.conf"
content = "a\n"

[[file]]
dest = "{{ root }}/etc/b.conf"
content = "b\n"
"#;

/// A symlink at a managed path whose target text holds a newline and then what the old
/// probe read as "b.conf is a file with the right hash" (old and new record shapes): b.conf
/// is still written, and a.conf replaced by a file.
#[test]
fn a_forged_symlink_probe_still_writes_the_file() {
    let fleet = Fleet::new(1, TWO_FILES);
    let etc = fleet.root(0).join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let b = etc.join("b.conf");
    let hash = sha256_hex(b"b\n");
    let forged = format!(
        "x\nP\tf\t644\troot\troot\t\t{b}\n{hash}  {b}\nf\x00644\x00root\x00root\x00\x00{b}\x00\n",
        b = b.display()
    );
    let forged = forged.replace('\0', "");
    std::os::unix::fs::symlink(&forged, etc.join("a.conf")).unwrap();
    let run = fleet.converge(&[]);
    run.assert_code(0);
    assert_eq!(std::fs::read_to_string(&b).unwrap(), "b\n");
    assert_eq!(std::fs::read_to_string(etc.join("a.conf")).unwrap(), "a\n");
    assert!(!std::fs::symlink_metadata(etc.join("a.conf")).unwrap().file_type().is_symlink());
    assert_eq!(run.host("h0")["changed"], 2, "{}", run.stdout);
}

/// Between the probe and the owner/mode fix, an earlier step (a validate) swaps the managed
/// file for a symlink to a root-owned 0600 secret: the fix is refused, the secret untouched.
#[test]
fn a_symlink_swapped_in_before_the_mode_fix_is_not_followed() {
    let role = r#"
[[file]]
dest = "{{ root }}/etc/a.conf"
content = "a {{ v }}\n"
validate = "rm -f {{ root }}/etc/b.conf && ln -s {{ root }}/secret {{ root }}/etc/b.conf && test -f %s"

[[file]]
dest = "{{ root }}/etc/b.conf"
content = "b\n"
owner = "nobody"
group = "nogroup"
mode = "0644"
"#;
    let fleet = Fleet::new(1, role);
    let root = fleet.root(0);
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/b.conf"), "b\n").unwrap();
    std::fs::set_permissions(root.join("etc/b.conf"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let secret = root.join("secret");
    std::fs::write(&secret, "SECRET_KEY=1\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = fleet.converge(&["-e", "v=1"]);
    run.assert_code(1);
    let err = &run.host("h0")["error"];
    assert_eq!(
        err["task"],
        format!(
            "file {} (mode 0600 -> 0644, owner root -> nobody, group root -> nogroup)",
            root.join("etc/b.conf").display()
        ),
        "{err}"
    );
    let meta = std::fs::metadata(&secret).unwrap();
    assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o7777), (0, 0, 0o600), "the secret was touched");
    assert!(std::fs::symlink_metadata(root.join("etc/b.conf")).unwrap().file_type().is_symlink());
}

/// A managed path that is a symlink to a secret: `--diff` (text and JSON) shows no byte of it.
#[test]
fn diff_never_shows_what_a_symlink_points_at() {
    let fleet = Fleet::new(1, TWO_FILES);
    let etc = fleet.root(0).join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let secret = fleet.root(0).join("microblog.env");
    std::fs::write(&secret, "SECRET_KEY=hunter2\n").unwrap();
    std::os::unix::fs::symlink(&secret, etc.join("a.conf")).unwrap();
    std::fs::write(etc.join("b.conf"), "old b\n").unwrap();
    let run = fleet.converge(&["--check", "--diff"]);
    run.assert_code(3);
    assert!(!run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"), "{}", run.stdout);
    let diffs = run.host("h0")["diffs"].to_string();
    assert!(diffs.contains("a symlink now: what it points at is not shown"), "{diffs}");
    assert!(diffs.contains("-old b"), "the plain file's diff is still shown: {diffs}");
    let roles = fleet.ws.path("roles");
    let text = fleet.ws.microctl(&["--roles-dir", roles.to_str().unwrap(), "converge", "--check", "--diff"]);
    assert!(!text.stdout.contains("hunter2") && !text.stderr.contains("hunter2"), "{}", text.stdout);
}

/// A managed path that is a FIFO, another a symlink to /dev/zero: the probe never opens
/// either (it used to hash every destination, blocking on the FIFO with the host lock held),
/// `--diff` says what they were, and converge replaces both with the files, in bounded time.
#[test]
fn a_fifo_or_a_link_to_a_device_at_a_managed_path_is_replaced_not_read() {
    let fleet = Fleet::new(1, TWO_FILES);
    let etc = fleet.root(0).join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(etc.join("a.conf")).status().unwrap().success());
    std::os::unix::fs::symlink("/dev/zero", etc.join("b.conf")).unwrap();
    let roles = fleet.ws.path("roles");
    let args = ["--roles-dir", roles.to_str().unwrap(), "converge", "--json", "--diff"];
    let run = fleet.ws.microctl_within(&args, Duration::from_secs(60));
    run.assert_code(0);
    assert_eq!(run.host("h0")["changed"], 2, "{}", run.stdout);
    let diffs = run.host("h0")["diffs"].to_string();
    assert!(diffs.contains("(binary or large file changed)"), "{diffs}");
    assert!(diffs.contains("a symlink now"), "{diffs}");
    for (name, content) in [("a.conf", "a\n"), ("b.conf", "b\n")] {
        let p = etc.join(name);
        assert!(std::fs::symlink_metadata(&p).unwrap().file_type().is_file(), "{name}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), content);
    }
}

/// An existing state folder that others can read is refused before anything happens.
#[test]
fn a_state_folder_that_is_not_root_0700_is_refused() {
    let fleet = Fleet::new(1, TWO_FILES);
    let state = fleet.root(0).join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = fleet.converge(&[]);
    run.assert_code(1);
    let msg = run.host("h0")["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains(&format!("refusing state folder {}", state.display())), "{msg}");
    assert!(!fleet.root(0).join("etc/a.conf").exists());
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    fleet.converge(&[]).assert_code(0);
}

/// A state folder anyone can write (0777), where someone planted `lock`, `lock.owner`,
/// `pending-handlers` and a stale `stage.x` as symlinks to a root-owned file: refused (the
/// client reads the folder's mode from the probe), and nothing written, created or removed
/// through the links or in the folder; in `--check` too. Made 0700 (links removed), it works,
/// and the hash record they planted too (their own `hashes` folder vouching that a.conf, which
/// they changed, is right) vouches for nothing: a.conf is written.
#[test]
fn a_world_writable_state_folder_with_planted_links_is_refused_and_untouched() {
    let fleet = Fleet::new(1, TWO_FILES);
    let state = fleet.root(0).join("state");
    std::fs::create_dir_all(&state).unwrap();
    let target = fleet.root(0).join("precious");
    std::fs::write(&target, "precious\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let planted = ["lock", "lock.owner", "pending-handlers", "stage.x"];
    for name in planted {
        std::os::unix::fs::symlink(&target, state.join(name)).unwrap();
    }
    let a_conf = fleet.root(0).join("etc/a.conf");
    std::fs::create_dir_all(a_conf.parent().unwrap()).unwrap();
    std::fs::write(&a_conf, "x\n").unwrap();
    let m = std::fs::metadata(&a_conf).unwrap();
    let hashes = state.join("hashes");
    std::fs::create_dir(&hashes).unwrap();
    let entry = format!("{}_{}_2_{}.{:09}0_{}", m.dev(), m.ino(), m.ctime(), m.ctime_nsec(), sha256_hex(b"a\n"));
    std::fs::write(hashes.join(entry), "").unwrap();
    std::fs::write(hashes.join("T_9999999999.5000000000"), "").unwrap();
    std::fs::set_permissions(&hashes, std::fs::Permissions::from_mode(0o700)).unwrap();
    sh(&format!("chown -R 65534:65534 {}", hashes.display()));
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let listing = || {
        let mut names: Vec<String> =
            std::fs::read_dir(&state).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    };
    let before = listing();
    for args in [&[][..], &["--check"][..]] {
        let run = fleet.converge(args);
        run.assert_code(1);
        let msg = run.host("h0")["error"]["message"].as_str().unwrap().to_string();
        assert!(msg.contains(&format!("refusing state folder {}", state.display())), "{msg}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n", "{args:?}");
        let meta = std::fs::metadata(&target).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o600);
        assert_eq!(meta.uid(), 0);
        assert_eq!(listing(), before, "{args:?}");
        assert_eq!(std::fs::read_to_string(&a_conf).unwrap(), "x\n", "{args:?}");
    }
    for name in planted {
        std::fs::remove_file(state.join(name)).unwrap();
    }
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    fleet.converge(&[]).assert_code(0);
    assert_eq!(std::fs::read_to_string(fleet.root(0).join("etc/a.conf")).unwrap(), "a\n");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
}

/// Killing the client while a sensitive file is uploading leaves none of its bytes outside
/// the state folder (not in /tmp, not in /var/tmp, not beside the destination), no staged
/// payload, and no lock note naming a run that is gone.
#[test]
fn a_run_killed_during_upload_leaves_no_sensitive_bytes_behind() {
    let role = "[[file]]\ndest = \"{{ root }}/etc/big.env\"\nsrc = \"big.env\"\nsensitive = true\nmode = \"0600\"\n";
    let fleet = Fleet::new(1, role);
    let marker = format!("SENSITIVE-{}-{}", std::process::id(), Instant::now().elapsed().as_nanos());
    let line = format!("{marker} {}\n", "x".repeat(100));
    std::fs::create_dir_all(fleet.ws.path("files")).unwrap();
    std::fs::write(fleet.ws.path("files/big.env"), line.repeat(600_000)).unwrap();
    let state = fleet.root(0).join("state");
    let mut killed = false;
    for _ in 0..5 {
        let mut child = spawn_converge(&fleet, &[]);
        let t = Instant::now();
        let staging = loop {
            let stage = std::fs::read_dir(&state)
                .ok()
                .and_then(|d| d.flatten().find(|e| e.file_name().to_string_lossy().starts_with("stage.")));
            if stage.is_some() || t.elapsed() > Duration::from_secs(20) || child.try_wait().unwrap().is_some() {
                break stage.is_some();
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let _ = child.kill();
        let _ = child.wait();
        if staging && !fleet.root(0).join("etc/big.env").exists() {
            killed = true;
            break;
        }
        let _ = std::fs::remove_file(fleet.root(0).join("etc/big.env"));
    }
    assert!(killed, "never caught the run mid-upload");
    // The host script sees its stdin end and cleans up; wait until it let go of the lock.
    sh(&format!("timeout 20 flock {} true", state.display()));
    assert_eq!(std::fs::read_to_string(state.join("lock.owner")).unwrap(), "", "stale lock note");
    let ws = fleet.ws.dir.path().file_name().unwrap().to_string_lossy().into_owned();
    let found = sh(&format!("grep -rlsF -D skip --exclude-dir={ws} -- {marker} /tmp /var/tmp || true"));
    assert_eq!(found.trim(), "", "payload bytes outside the state folder");
    let found = sh(&format!(
        "grep -rlsF -D skip --exclude-dir=files --exclude-dir=state -- {marker} {} || true",
        fleet.ws.dir.path().display()
    ));
    assert_eq!(found.trim(), "", "payload bytes beside the destination");
    let staged: Vec<_> = std::fs::read_dir(&state).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(staged.iter().all(|n| !n.to_string_lossy().starts_with("stage.")), "{staged:?}");
    // The next run completes.
    fleet.converge(&[]).assert_code(0);
    assert_eq!(std::fs::metadata(fleet.root(0).join("etc/big.env")).unwrap().len(), line.len() as u64 * 600_000);
}

/// A path with `\` (GNU sha256sum escapes its line) is not rewritten on every run; an
/// `unless` ending in a comment works; validate's `%%` is a literal `%`.
#[test]
fn backslash_paths_comments_and_percent_escapes() {
    let role = r#"
[[file]]
dest = '{{ root }}/etc/back\slash.conf'
content = "x\n"
validate = "printf '%%s\\n' ok | grep -qx ok && grep -q x %s"

[[command]]
name = "once"
run = "echo ran >> {{ root }}/once.log"
unless = "test -e {{ root }}/once.log # ran already"
"#;
    let fleet = Fleet::new(1, role);
    fleet.converge(&[]).assert_code(0);
    assert_eq!(std::fs::read_to_string(fleet.root(0).join("etc/back\\slash.conf")).unwrap(), "x\n");
    let second = fleet.converge(&[]);
    second.assert_code(0);
    assert_eq!(second.host("h0")["changed"], 0, "{}", second.stdout);
    assert_eq!(std::fs::read_to_string(fleet.root(0).join("once.log")).unwrap(), "ran\n");
    let roles = fleet.ws.path("roles");
    fleet.ws.microctl(&["--roles-dir", roles.to_str().unwrap(), "check"]).assert_code(0);
}

/// `check` runs `sh -n` on every snippet: a broken one is a role error naming role.toml's
/// line and field (exit 2), and converge would not have got that far either.
#[test]
fn check_finds_shell_syntax_errors_in_snippets() {
    let role = "[[command]]\nname = \"x\"\nrun = \"true\"\nunless = \"if test -e /x; then true\"\n";
    let fleet = Fleet::new(1, role);
    let roles = fleet.ws.path("roles");
    let run = fleet.ws.microctl(&["--roles-dir", roles.to_str().unwrap(), "check"]);
    run.assert_code(2);
    let toml = roles.join("site/role.toml");
    assert!(
        run.stderr.contains(&format!("error: {}:1:1: `command.unless` is not valid sh: ", toml.display())),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("field: command.unless"), "{}", run.stderr);
}

/// A template render error or a template that is not UTF-8 exits 2 (README: input errors),
/// and converge connects nowhere.
#[test]
fn render_and_encoding_errors_exit_2() {
    let fleet = Fleet::new(1, "[[file]]\ndest = \"{{ root }}/etc/g\"\ntemplate = \"greeting.conf.j2\"\n");
    let template = fleet.ws.path("roles/site/templates/greeting.conf.j2");
    std::fs::write(&template, "{{ undefined_thing }}\n").unwrap();
    let run = fleet.converge(&[]);
    run.assert_code(2);
    assert!(run.stdout.contains("undefined variable"), "{}", run.stdout);
    std::fs::write(&template, b"ok\n\xff\xfe\n").unwrap();
    let roles = fleet.ws.path("roles");
    let run = fleet.ws.microctl(&["--roles-dir", roles.to_str().unwrap(), "converge"]);
    run.assert_code(2);
    assert!(
        run.stderr
            .contains(&format!("{}:2:1: not UTF-8: byte 0xff is not part of a UTF-8 character", template.display())),
        "{}",
        run.stderr
    );
    std::fs::write(fleet.ws.path("roles/site/role.toml"), b"# \xff\n").unwrap();
    let run = fleet.ws.microctl(&["--roles-dir", roles.to_str().unwrap(), "check"]);
    run.assert_code(2);
    assert!(run.stderr.contains("role.toml:1:3: not UTF-8: byte 0xff"), "{}", run.stderr);
    assert!(!Path::new(&fleet.root(0).join("state")).exists(), "nothing was attempted");
}

/// Issue #20 item 7, against real sshd: a file the app user (`nobody`) owns, written by
/// converge. The app user dirties its page through a shared `mmap` (storing the byte it
/// holds: the write fault moves ctime), converge runs (a no-op that reads the file and
/// writes the hash record), then the app user stores another byte through the page that is
/// already dirty: the content changes, ctime does not (asserted: the attack happened). The
/// hash record never vouches for a file others than root can write: `--check` sees the
/// change (exit 3) and converge puts the content back. (Before the fix the record vouched
/// for it: `--check` exited 0.)
#[test]
fn a_file_changed_through_a_dirty_shared_mmap_page_is_seen() {
    let role = r#"
[[file]]
dest = "{{ root }}/etc/app.conf"
content = "config v1\n"
owner = "nobody"
group = "nogroup"
mode = "0644"
"#;
    let fleet = Fleet::new(1, role);
    // The attacker must reach the file: the workspace is root's 0700.
    std::fs::set_permissions(fleet.ws.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    fleet.converge(&[]).assert_code(0);
    let conf = fleet.root(0).join("etc/app.conf");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "config v1\n");
    let att = fleet.root(0).join("att");
    std::fs::create_dir(&att).unwrap();
    sh(&format!("chown nobody:nogroup {}", att.display()));
    let python = "import mmap, os, sys, time\n\
        f = open(sys.argv[1], 'r+b'); m = mmap.mmap(f.fileno(), 0)\n\
        m[0:1] = m[0:1]\n\
        open(sys.argv[2] + '/dirty', 'w').close()\n\
        t = time.time()\n\
        while not os.path.exists(sys.argv[2] + '/go'):\n\
        \x20   if time.time() - t > 30: sys.exit(1)\n\
        \x20   time.sleep(0.01)\n\
        m[0:1] = b'C'\n\
        open(sys.argv[2] + '/stored', 'w').close()\n";
    assert!(Path::new("/usr/bin/python3").exists(), "python3 is needed (Debian package python3)");
    let mut attacker = std::process::Command::new("runuser")
        .args(["-u", "nobody", "--", "/usr/bin/python3", "-c", python])
        .arg(&conf)
        .arg(&att)
        .spawn()
        .unwrap();
    let wait_for = |name: &str| {
        let t = Instant::now();
        while !att.join(name).exists() {
            assert!(t.elapsed() < Duration::from_secs(30), "the attacker never wrote {name}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for("dirty");
    // A no-op that reads the file (its ctime moved) and records the hashes again.
    let run = fleet.converge(&[]);
    run.assert_code(0);
    assert_eq!(run.host("h0")["changed"], 0, "{}", run.stdout);
    let before = std::fs::metadata(&conf).unwrap();
    std::fs::write(att.join("go"), "").unwrap();
    wait_for("stored");
    assert!(attacker.wait().unwrap().success());
    let after = std::fs::metadata(&conf).unwrap();
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "Config v1\n", "the attacker's store landed");
    assert_eq!(
        (after.ctime(), after.ctime_nsec(), after.ino()),
        (before.ctime(), before.ctime_nsec(), before.ino()),
        "ctime moved: the page was written back in between, the attack did not happen"
    );
    fleet.converge(&["--check"]).assert_code(3);
    let run = fleet.converge(&[]);
    run.assert_code(0);
    assert_eq!(run.host("h0")["changed"], 1, "{}", run.stdout);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "config v1\n");
}

/// Issue #20 item 15, against real sshd: a state folder below a folder the app user
/// (`nobody`) owns could be swapped after it was checked: converge (and `--check`) refuse the
/// host, naming the folder, its owner and mode and what to do, having written nothing. Under
/// root's folders it works.
#[test]
fn a_state_folder_below_a_folder_others_can_write_is_refused() {
    let fleet = Fleet::new(1, TWO_FILES);
    let root = fleet.root(0);
    std::fs::create_dir_all(root.join("state")).unwrap();
    std::fs::set_permissions(root.join("state"), std::fs::Permissions::from_mode(0o700)).unwrap();
    sh(&format!("chown nobody:nogroup {}", root.display()));
    for args in [&[][..], &["--check"][..]] {
        let run = fleet.converge(args);
        run.assert_code(1);
        let err = &run.host("h0")["error"];
        let msg = err["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("refusing state folder {}/state", root.display()))
                && msg.contains(&format!("folder {} is owned by uid 65534", root.display())),
            "{err}"
        );
        assert!(err["hint"].as_str().unwrap().contains("chmod go-w"), "{err}");
        assert!(!root.join("etc").exists(), "{args:?}: written");
        let names: Vec<_> = std::fs::read_dir(root.join("state")).unwrap().collect();
        assert!(names.is_empty(), "{args:?}: {names:?} written in the state folder");
    }
    sh(&format!("chown root:root {}", root.display()));
    fleet.converge(&[]).assert_code(0);
    assert_eq!(std::fs::read_to_string(root.join("etc/a.conf")).unwrap(), "a\n");
}

/// Issue #20 items 2/3, what converge refuses, against real sshd: in the app's folder
/// `shared` (nobody's) a file is written the guarded way, but a file one folder deeper (the
/// folder it would stage in is nobody's too), a directory, a link or a removal there are
/// refused: the host fails naming each path, the folder, its owner, and what to do, and
/// nothing is written on the host, not even the allowed file.
#[test]
fn changes_below_a_folder_others_can_write_are_refused_by_name() {
    let role = r#"
[[file]]
dest = "{{ root }}/shared/ok.conf"
content = "ok\n"

[[file]]
dest = "{{ root }}/shared/deep/x.conf"
content = "x\n"

[[directory]]
path = "{{ root }}/shared/cache"

[[link]]
path = "{{ root }}/shared/current"
target = "/etc/hostname"

[[absent]]
path = "{{ root }}/shared/old"
"#;
    let fleet = Fleet::new(1, role);
    let root = fleet.root(0);
    let shared = root.join("shared");
    std::fs::create_dir_all(shared.join("deep")).unwrap();
    std::fs::write(shared.join("old"), "old\n").unwrap();
    sh(&format!("chown -R nobody:nogroup {}", shared.display()));
    for args in [&[][..], &["--check"][..]] {
        let run = fleet.converge(args);
        run.assert_code(1);
        let err = &run.host("h0")["error"];
        assert!(err["message"].as_str().unwrap().contains("refusing to act as root in folders"), "{err}");
        let detail = err["detail"].as_str().unwrap();
        let s = shared.display();
        for line in [
            format!("file {s}/deep/x.conf: folder {s} is owned by uid 65534"),
            format!("directory {s}/cache: folder {s} is owned by uid 65534"),
            format!("link {s}/current: folder {s} is owned by uid 65534"),
            format!("absent {s}/old: folder {s} is owned by uid 65534"),
        ] {
            assert!(detail.contains(&line), "{line}\n{detail}");
        }
        assert!(!detail.contains("ok.conf"), "{detail}");
        assert!(err["hint"].as_str().unwrap().contains("nothing was written"), "{err}");
        assert!(!shared.join("ok.conf").exists() && !shared.join("deep/x.conf").exists(), "{args:?}");
        assert_eq!(std::fs::read_to_string(shared.join("old")).unwrap(), "old\n", "{args:?}");
        assert!(!shared.join("cache").exists() && !shared.join("current").exists(), "{args:?}");
    }
}
