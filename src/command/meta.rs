//! `microctl completions SHELL` and `microctl man [SUBCOMMAND]`: generated from the clap
//! definitions, so they always match the binary; each man page adds ENVIRONMENT, EXIT STATUS,
//! FILES, EXAMPLES and SEE ALSO naming only pages `man --dir` writes.

use std::io::Write;

use crate::cli::{CompletionsArgs, ManArgs, command};
use crate::error::{Error, ErrorKind, Result};

/// The shell's registration of dynamic completion: at each TAB the shell runs
/// `COMPLETE=SHELL microctl -- WORDS...` (clap_complete's `CompleteEnv`, answered in `crate::run`),
/// so host, group and deploy names come from the inventory of the line being completed.
pub fn completions(args: CompletionsArgs) -> Result<i32> {
    let name = args.shell.to_string();
    let shells = clap_complete::env::Shells::builtins();
    let shell = shells.completer(&name).ok_or_else(|| Error::usage(format!("no dynamic completion for {name}")))?;
    let mut out = Vec::new();
    shell
        .write_registration("COMPLETE", "microctl", "microctl", "microctl", &mut out)
        .map_err(|e| Error::new(ErrorKind::Io, "cannot write the completion script").caused_by(e))?;
    let _ = std::io::stdout().write_all(&out);
    Ok(0)
}

/// The variables microctl reads, for every page's ENVIRONMENT.
const ENVIRONMENT: &[(&str, &str)] = &[
    ("MICROCTL_INVENTORY", "The inventory file, when -i is not given (default: inventory.toml)."),
    ("MICROCTL_ROLES", "The roles folder, when --roles-dir is not given (default: roles/ beside the inventory)."),
    ("MICROCTL_KEY_PASSPHRASE", "The passphrase of an encrypted identity file (else a prompt on a terminal)."),
    ("MICROCTL_SECRETS_IDENTITY", "The private key that decrypts secrets.toml, tried first."),
    ("MICROCTL_HEARTBEAT_SECS", "Seconds between the heartbeats of a long step without a terminal (default 30)."),
    ("MICROCTL_LAB_DIR", "The lab's folder (default /var/lib/microctl-lab)."),
    (
        "NO_COLOR, CLICOLOR_FORCE",
        "Colour under --color auto: off when NO_COLOR is set, on when CLICOLOR_FORCE is not 0.",
    ),
];

/// Exit statuses, for every page's EXIT STATUS.
const EXIT_STATUS: &[(&str, &str)] = &[
    ("0", "Every host succeeded."),
    ("1", "A host failed or was unreachable (the others still ran)."),
    ("2", "Usage, inventory, role or template error: nothing was attempted."),
    ("3", "converge --check found changes pending (and nothing failed)."),
    (
        "130, 143",
        "Interrupted by SIGINT (Ctrl-C) or SIGTERM: no further host started, the remote steps under way were stopped.",
    ),
];

const FILES: &[(&str, &str)] = &[
    ("inventory.toml", "Hosts, groups, vars, jump chains and [deploy.NAME] tables."),
    ("secrets.toml", "Secrets beside the inventory, encrypted to the team's SSH public keys."),
    ("roles/", "One folder per role: role.toml and templates/ (beside the inventory)."),
    (
        "/var/lib/microctl",
        "The state folder on each host (state_dir): the host lock, staged payloads, pending handlers, the hash record.",
    ),
];

/// Examples per page (`""`: the top page).
fn examples(page: &str) -> &'static [&'static str] {
    match page {
        "" => &[
            "microctl check",
            "microctl converge --check --diff",
            "microctl deploy app",
            "microctl exec all -- uptime",
        ],
        "converge" => {
            &["microctl converge", "microctl converge web --check --diff", "microctl converge -l app -e workers:=4"]
        }
        "deploy" => &[
            "microctl deploy app",
            "microctl deploy app app2",
            "microctl deploy app --list",
            "microctl deploy app --rollback",
        ],
        "exec" => &[
            "microctl exec all -- uptime",
            "microctl exec 'web*,!web3' -- df -h /",
            "microctl exec app --sudo -- systemctl restart gunicorn",
        ],
        "check" => &["microctl check", "microctl check --json"],
        "inventory" => &["microctl inventory", "microctl inventory --ports app"],
        "ssh" => &["microctl ssh app", "microctl ssh app -- journalctl -u gunicorn -n 50"],
        "ssh-config" => &["microctl ssh-config > ~/.ssh/microctl.conf"],
        "secrets" => &[
            "microctl secrets set db_password",
            "microctl secrets list",
            "microctl secrets rekey",
            "microctl secrets keygen deploy_key",
        ],
        "lab" => &["microctl lab up", "microctl lab status", "microctl lab down"],
        "completions" => &["microctl completions bash > /etc/bash_completion.d/microctl"],
        "man" => &["microctl man exec | man -l -", "microctl man --dir /usr/local/share/man/man1"],
        _ => &[],
    }
}

/// The roff of one section of term/text pairs.
fn section(title: &str, rows: &[(&str, &str)]) -> String {
    let mut out = format!(".SH \"{title}\"\n");
    for (term, text) in rows {
        out.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff_escape(term), roff_escape(text)));
    }
    out
}

/// Text safe in roff: backslashes doubled, a leading `.` or `'` guarded, dashes kept literal.
fn roff_escape(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') { format!("\\&{t}") } else { t }
}

/// The page of `sub` (`None`: microctl(1)), with clap_mangen's sections and ours.
fn page(sub: Option<&str>) -> Result<Vec<u8>> {
    let top = command();
    let cmd = match sub {
        None => top,
        Some(name) => {
            let found = top.get_subcommands().find(|c| c.get_name() == name).cloned().ok_or_else(|| {
                let names: Vec<&str> = top.get_subcommands().map(|c| c.get_name()).collect();
                Error::usage(format!("no subcommand `{name}`")).hint(format!("one of: {}", names.join(", ")))
            })?;
            // Named as the page is: microctl-exec(1).
            found
                .display_name(format!("microctl-{name}"))
                .bin_name(format!("microctl {name}"))
                .version(env!("MICROCTL_VERSION"))
        }
    };
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    let io = |e: std::io::Error| Error::new(ErrorKind::Io, "cannot render the man page").caused_by(e);
    man.render_title(&mut out).map_err(io)?;
    man.render_name_section(&mut out).map_err(io)?;
    man.render_synopsis_section(&mut out).map_err(io)?;
    man.render_description_section(&mut out).map_err(io)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out).map_err(io)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut out).map_err(io)?;
    }
    let mut extra = section("ENVIRONMENT", ENVIRONMENT);
    extra.push_str(&section("EXIT STATUS", EXIT_STATUS));
    extra.push_str(&section("FILES", FILES));
    extra.push_str(".SH EXAMPLES\n");
    for e in examples(sub.unwrap_or("")) {
        extra.push_str(&format!(".PP\n.nf\n{}\n.fi\n", roff_escape(e)));
    }
    extra.push_str(".SH \"SEE ALSO\"\n");
    let pages: Vec<String> = match sub {
        None => command()
            .get_subcommands()
            .map(|c| format!("\\fBmicroctl\\-{}\\fR(1)", roff_escape(c.get_name())))
            .collect(),
        Some(_) => vec!["\\fBmicroctl\\fR(1)".into()],
    };
    extra.push_str(&format!("{}, \\fBssh\\fR(1), \\fBsystemd.exec\\fR(5)\n", pages.join(", ")));
    out.extend_from_slice(extra.as_bytes());
    man.render_version_section(&mut out).map_err(io)?;
    Ok(out)
}

pub fn man(args: ManArgs) -> Result<i32> {
    let Some(dir) = args.dir else {
        let text = page(args.subcommand.as_deref())?;
        let _ = std::io::stdout().write_all(&text);
        return Ok(0);
    };
    let write = |name: &str, text: Vec<u8>| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io("cannot write", &path, e))
    };
    write("microctl.1", page(None)?)?;
    for sub in command().get_subcommands() {
        let name = sub.get_name().to_string();
        write(&format!("microctl-{name}.1"), page(Some(&name))?)?;
    }
    Ok(0)
}
