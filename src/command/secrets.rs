//! `microctl secrets`: list, show, set (stdin), remove, edit ($EDITOR), recipients, rekey,
//! keygen (an SSH key pair: `secrets::keypair`).
//! The file format and encryption live in `secrets::store`; this only talks to the user.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use super::load_inventory;
use crate::cli::{GlobalArgs, SecretsCommand};
use crate::error::{Error, ErrorKind, Result};
use crate::inventory::Inventory;
use crate::report;
use crate::secrets::store::{self, Identities, SecretsFile};

pub fn run(global: &GlobalArgs, cmd: SecretsCommand) -> Result<i32> {
    let inv = load_inventory(global)?;
    let path = SecretsFile::path_for(&inv.path);
    match cmd {
        SecretsCommand::List => match SecretsFile::load(&path)? {
            Some(file) => {
                for name in file.secrets.keys() {
                    println!("{name}");
                }
            }
            // Nothing to list is not an error (stdout stays empty for scripts).
            None => {
                eprintln!("no secrets yet ({} does not exist): `microctl secrets set NAME` creates it", path.display())
            }
        },
        SecretsCommand::Show { name } => {
            let value = with_ids(&inv, |ids| SecretsFile::load_existing(&path)?.get(&name, ids))?;
            // The one place a value is printed, because it was asked for by name.
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(value.as_bytes());
            if std::io::stdout().is_terminal() && !value.ends_with('\n') {
                let _ = out.write_all(b"\n");
            }
        }
        SecretsCommand::Set { name } => {
            store::check_name(&name)?;
            let value = read_value(&name)?;
            if value.chars().count() < crate::secrets::redact::MIN_SECRET {
                return Err(Error::usage(format!(
                    "secret `{name}` is {} characters long: at least {} are needed",
                    value.chars().count(),
                    crate::secrets::redact::MIN_SECRET
                ))
                .hint("a value this short is weak, and in output it cannot be told apart from ordinary text, so it could only be masked as a word of its own; use a longer one"));
            }
            let mut file = match SecretsFile::load(&path)? {
                Some(f) => f,
                None => new_file(global, &path, &inv)?,
            };
            file.set(&name, &value)?;
            file.save()?;
            said(global, &format!("secret `{name}` set in {}", path.display()));
        }
        SecretsCommand::Remove { name } => {
            let mut file = SecretsFile::load_existing(&path)?;
            if file.secrets.remove(&name).is_none() {
                return Err(Error::usage(format!("there is no secret `{name}` in {}", path.display())));
            }
            file.save()?;
        }
        SecretsCommand::Edit => with_ids(&inv, |ids| edit(&path, ids))?,
        SecretsCommand::Keygen { name, force } => {
            store::check_name(&name)?;
            let mut file = match SecretsFile::load(&path)? {
                Some(f) => f,
                None => new_file(global, &path, &inv)?,
            };
            if file.secrets.contains_key(&name) && !force {
                return Err(Error::usage(format!("secret `{name}` already exists in {}", path.display()))
                    .hint("`microctl secrets keygen NAME --force` replaces it (rotation: converge then swaps the public key wherever an [[authorized_key]] uses it)"));
            }
            let private = crate::secrets::keypair::generate(&name)?;
            let public = crate::secrets::keypair::public_line(&private).map_err(|e| Error::new(ErrorKind::Io, e))?;
            file.set(&name, &private)?;
            file.save()?;
            println!("{public}");
            said(
                global,
                &format!(
                    "key pair `{name}` stored in {}: {{{{ {name} }}}} is the private key, {{{{ {name} | ssh_public_key }}}} the line above",
                    path.display()
                ),
            );
        }
        SecretsCommand::Recipients => {
            let file = SecretsFile::load_existing(&path)?;
            file.age_recipients()?;
            for r in &file.recipients {
                let mut parts = r.split_whitespace();
                let (kind, b64) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
                let fpr = russh::keys::parse_public_key_base64(b64)
                    .map(|k| crate::transport::known_hosts::fingerprint(&k))
                    .unwrap_or_else(|_| "?".into());
                println!("{kind} {fpr} {}", parts.collect::<Vec<_>>().join(" "));
            }
        }
        SecretsCommand::Rekey => {
            let mut file = SecretsFile::load_existing(&path)?;
            let n = with_ids(&inv, |ids| file.rekey(ids))?;
            file.save()?;
            said(global, &format!("{n} secrets re-encrypted to {} recipients", file.recipients.len()));
        }
    }
    Ok(0)
}

/// A confirmation of what the command did (`microctl: text` on stderr), not with `-q`.
fn said(global: &GlobalArgs, text: &str) {
    if !global.output.quiet() {
        report::notice(text);
    }
}

/// Runs `f` with the identities that decrypt, then prints what decrypting said (age's
/// messages, returned by `secrets`, never printed there).
fn with_ids<T>(inv: &Inventory, f: impl FnOnce(&Identities) -> Result<T>) -> Result<T> {
    let ids = Identities::find(&identities(inv))?;
    let result = f(&ids);
    for note in ids.take_notes() {
        report::notice(&note);
    }
    result
}

/// The identity files the inventory uses (they decrypt, and the first one's `.pub` is the
/// first recipient of a new file).
fn identities(inv: &Inventory) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for p in inv.hosts.iter().filter_map(|h| h.identity.clone()) {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// A new secrets file whose one recipient is the public key of the first identity found.
fn new_file(global: &GlobalArgs, path: &Path, inv: &Inventory) -> Result<SecretsFile> {
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()));
    let candidates = std::env::var_os(store::IDENTITY_ENV)
        .map(PathBuf::from)
        .into_iter()
        .chain(identities(inv))
        .chain(["id_ed25519", "id_rsa"].map(|n| home.join(".ssh").join(n)));
    for key in candidates {
        let public = PathBuf::from(format!("{}.pub", key.display()));
        // The `.pub` beside the key, else the public half derived from the key itself (a key
        // copied without its `.pub`, as CI secrets often are).
        let (line, from) = match std::fs::read_to_string(&public) {
            Ok(line) => (line.trim().to_string(), public.display().to_string()),
            Err(_) if key.is_file() => {
                let Ok(private) = crate::transport::load_key_file(&key) else { continue };
                let Ok(line) = private.public_key().to_openssh() else { continue };
                (line, format!("the public half of {}", key.display()))
            }
            Err(_) => continue,
        };
        std::fs::write(path, format!("recipients = [{}]\n", toml::Value::String(line)))
            .map_err(|e| Error::io("cannot create", path, e))?;
        said(global, &format!("created {} encrypted to {from}", path.display()));
        return SecretsFile::load_existing(path);
    }
    Err(Error::new(
        ErrorKind::Inventory,
        format!("no secrets file at {} and no public key to start one", path.display()),
    )
    .hint("create it with `recipients = [\"ssh-ed25519 AAAA... you@host\"]` (your .pub line)"))
}

/// The value from stdin: prompted without echo on a terminal, else read whole (one trailing
/// newline dropped, as `echo` and heredocs add one).
fn read_value(name: &str) -> Result<String> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("Value for secret `{name}`: "))
            .map_err(|e| Error::new(ErrorKind::Io, "cannot read the value").caused_by(e));
    }
    let mut value = String::new();
    std::io::stdin()
        .read_to_string(&mut value)
        .map_err(|e| Error::new(ErrorKind::Io, "cannot read the value from stdin (UTF-8 text)").caused_by(e))?;
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    Ok(value)
}

/// Removes the private temp dir however `edit` ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn edit(path: &Path, ids: &Identities) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let mut file = SecretsFile::load_existing(path)?;
    let old: BTreeMap<String, String> =
        file.secrets.keys().map(|n| Ok((n.clone(), file.get(n, ids)?))).collect::<Result<_>>()?;
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let dir = TempDir(base.join(format!("microctl-secrets-{}-{nanos}", std::process::id())));
    std::fs::DirBuilder::new().mode(0o700).create(&dir.0).map_err(|e| Error::io("cannot create", &dir.0, e))?;
    let tmp = dir.0.join("secrets.toml");
    let mut text = String::from("# name = \"value\"; save and quit to encrypt. Delete a line to remove a secret.\n");
    for (name, value) in &old {
        text.push_str(&format!("{name} = {}\n", toml::Value::String(value.clone())));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::io("cannot write", &tmp, e))?;
    let editor = std::env::var("VISUAL").or_else(|_| std::env::var("EDITOR")).unwrap_or_else(|_| "vi".into());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&tmp)
        .status()
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start the editor `{editor}`")).caused_by(e))?;
    if !status.success() {
        return Err(Error::new(ErrorKind::Io, format!("the editor `{editor}` failed; nothing changed")));
    }
    let edited = std::fs::read_to_string(&tmp).map_err(|e| Error::io("cannot read", &tmp, e))?;
    let table: toml::Table = toml::from_str(&edited).map_err(|e| {
        Error::new(ErrorKind::Usage, format!("the edited secrets are not valid TOML: {}", e.message().trim()))
            .hint("nothing changed; run `microctl secrets edit` again")
    })?;
    let mut new: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in table {
        store::check_name(&name)?;
        let Some(value) = value.as_str() else {
            return Err(Error::usage(format!("secret `{name}` must be a string")).hint("nothing changed"));
        };
        new.insert(name, value.to_string());
    }
    file.secrets.retain(|n, _| new.contains_key(n));
    for (name, value) in &new {
        if old.get(name) != Some(value) {
            file.set(name, value)?;
        }
    }
    file.save()
}
