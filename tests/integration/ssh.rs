//! `microctl ssh` and `microctl ssh-config` through a three-hop chain (jenkins on loopback, web
//! and app in network namespaces this machine cannot route to): the remote command's output
//! and exit status come back, a PTY gets the local window size, and plain OpenSSH follows the
//! printed config through the same chain with strict host-key checking.

use std::process::{Command, Stdio};

use crate::support::*;

struct Chain {
    ws: Workspace,
    _net: PrivateNet,
    _servers: Vec<Sshd>,
    /// The address app sees the connection come from: web's end of the private link.
    web_private: String,
}

/// `line` run by `sh` on a pseudo-terminal of its own (`script`), as a user at a terminal would,
/// with the chain's HOME and no agent.
fn in_terminal(c: &Chain, line: &str) -> Command {
    let mut cmd = Command::new("script");
    cmd.args(["-qec", line, "/dev/null"]).env("HOME", c.ws.path("home")).env_remove("SSH_AUTH_SOCK");
    cmd
}

fn chain() -> Chain {
    let net = PrivateNet::create();
    let ws = Workspace::new();
    let jenkins = ws.sshd(SshdOptions::default());
    let web =
        ws.sshd(SshdOptions { netns: Some((net.jump_ns.clone(), net.jump_address.clone())), ..Default::default() });
    let app =
        ws.sshd(SshdOptions { netns: Some((net.target_ns.clone(), net.target_address.clone())), ..Default::default() });
    ws.known_hosts(&[&jenkins, &web, &app]);
    ws.inventory(&format!(
        "[hosts.jenkins]\naddress = \"127.0.0.1\"\nport = {}\n\
         [hosts.web]\naddress = \"{}\"\nvia = \"jenkins\"\n\
         [hosts.app]\naddress = \"{}\"\nvia = \"web\"\n",
        jenkins.port, net.jump_address, net.target_address
    ));
    let (prefix, _) = net.target_address.rsplit_once('.').unwrap();
    let web_private = format!("{prefix}.1");
    Chain { ws, _net: net, _servers: vec![jenkins, web, app], web_private }
}

#[test]
fn ssh_runs_a_command_through_a_three_hop_chain_and_passes_its_exit_status() {
    let c = chain();
    let run = c.ws.microctl(&["ssh", "app", "--", "echo from ${SSH_CONNECTION%% *}; echo err >&2"]);
    run.assert_code(0);
    assert_eq!(run.stdout, format!("from {}\n", c.web_private));
    assert_eq!(run.stderr, "err\n");
    c.ws.microctl(&["ssh", "app", "--", "exit 7"]).assert_code(7);
    c.ws.microctl(&["ssh", "app", "--", "kill -TERM $$"]).assert_code(128 + 15);
    let run = c.ws.microctl(&["ssh", "nope"]);
    run.assert_code(2);
    assert!(run.stderr.starts_with("error: no host `nope` in "), "{}", run.stderr);

    // The same host-key checks as every command: an unknown key on the first hop stops it there.
    std::fs::write(c.ws.path("known_hosts"), "").unwrap();
    let run = c.ws.microctl(&["ssh", "app", "--", "echo reached"]);
    run.assert_code(1);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.starts_with("error: cannot reach app: jump host jenkins failed"), "{}", run.stderr);
    // --accept-new records every hop's key, as it does for exec.
    c.ws.microctl(&["--accept-new", "ssh", "app", "--", "true"]).assert_code(0);
    assert_eq!(std::fs::read_to_string(c.ws.path("known_hosts")).unwrap().lines().count(), 3);
}

#[test]
fn ssh_gives_a_terminal_the_local_window_size() {
    let c = chain();
    let inv = c.ws.path("inventory.toml");
    let line = format!(
        "stty rows 33 cols 101; {} -i {} ssh app -- 'tty; stty size'",
        env!("CARGO_BIN_EXE_microctl"),
        inv.display()
    );
    let out = in_terminal(&c, &line).stdin(Stdio::null()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("33 101\n"), "{text}");

    // Output redirected: no PTY, the bytes as sent.
    let copy = c.ws.path("copy");
    let line = format!(
        "{} -i {} ssh app -- 'tty; printf \"a\\nb\\n\"' > {}",
        env!("CARGO_BIN_EXE_microctl"),
        inv.display(),
        copy.display()
    );
    let out = in_terminal(&c, &line).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "not a tty\na\nb\n");

    // An interactive shell: keys typed go to it, its exit status comes back.
    let line = format!("{} -i {} ssh app", env!("CARGO_BIN_EXE_microctl"), inv.display());
    let mut child = in_terminal(&c, &line).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    use std::io::Write as _;
    child.stdin.as_mut().unwrap().write_all(b"echo marker-$((6*7)); exit 3\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(text.contains("marker-42\n"), "{text}");
    assert_eq!(out.status.code(), Some(3), "{text}");
}

#[test]
fn plain_openssh_follows_the_printed_config_through_the_chain() {
    let c = chain();
    let run = c.ws.microctl(&["ssh-config", "app"]);
    run.assert_code(0);
    assert!(run.stdout.contains("Host app\n") && run.stdout.contains("  ProxyJump web\n"), "{}", run.stdout);
    assert!(run.stdout.contains("  StrictHostKeyChecking yes\n"), "{}", run.stdout);
    let cfg = c.ws.path("ssh_config");
    std::fs::write(&cfg, &run.stdout).unwrap();
    let ssh = |args: &[&str]| {
        Command::new("ssh")
            .arg("-F")
            .arg(&cfg)
            .args(args)
            .env("HOME", c.ws.path("home"))
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = ssh(&["app", "echo from ${SSH_CONNECTION%% *}"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("from {}\n", c.web_private), "{out:?}");
    assert_eq!(ssh(&["app", "true"]).status.code(), Some(0));
    assert_eq!(ssh(&["app", "exit 5"]).status.code(), Some(5));
    // scp takes the same config, chain and all.
    let copy = c.ws.path("copied");
    let out = Command::new("scp")
        .arg("-F")
        .arg(&cfg)
        .arg("app:/etc/hostname")
        .arg(&copy)
        .env("HOME", c.ws.path("home"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read("/etc/hostname").unwrap());
    // A host key that is not the recorded one is refused, as microctl refuses it.
    std::fs::write(c.ws.path("known_hosts"), "").unwrap();
    assert_eq!(ssh(&["app", "true"]).status.code(), Some(255));
}

/// Paths the inventory gives relative to itself, read with a relative `-i`, come out of
/// `ssh-config` absolute: plain `ssh -F` works from any other folder (it failed with "Host key
/// verification failed" when `UserKnownHostsFile` was relative), and `ssh -G` shows them so.
#[test]
fn ssh_config_paths_are_absolute_whatever_folder_it_ran_in() {
    let ws = Workspace::new();
    let a = ws.sshd(SshdOptions::default());
    ws.known_hosts(&[&a]);
    std::fs::copy(&ws.key.private, ws.path("id_deploy")).unwrap();
    std::fs::write(
        ws.path("inventory.toml"),
        format!(
            "[defaults]\nuser = \"root\"\nidentity = \"id_deploy\"\nknown_hosts = \"known_hosts\"\n\n\
             [hosts.a]\naddress = \"127.0.0.1\"\nport = {}\n",
            a.port
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_microctl"))
        .args(["-i", "inventory.toml", "ssh-config"])
        .current_dir(ws.dir.path())
        .env("HOME", ws.path("home"))
        .env_remove("MICROCTL_INVENTORY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let cfg = ws.path("ssh_config");
    std::fs::write(&cfg, &out.stdout).unwrap();
    let ssh = |args: &[&str]| {
        Command::new("ssh")
            .arg("-F")
            .arg(&cfg)
            .args(args)
            .current_dir("/")
            .env("HOME", ws.path("home"))
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = ssh(&["a", "echo", "hi"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n", "{out:?}");
    let g = String::from_utf8(ssh(&["-G", "a"]).stdout).unwrap();
    let id = ws.path("id_deploy");
    assert!(g.lines().any(|l| l == format!("identityfile {}", id.display())), "{g}");
    let kh = ws.path("known_hosts");
    assert!(g.lines().any(|l| l.starts_with(&format!("userknownhostsfile {}", kh.display()))), "{g}");
}
