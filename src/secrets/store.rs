//! The secrets file, `secrets.toml` next to the inventory: a list of `recipients` (the team's
//! SSH public keys, ed25519 or RSA, one per member or CI agent) and, under `[secrets]`, one
//! age-encrypted, ASCII-armored value per name. Names stay readable (so `check` and code
//! review see what exists), values are encrypted to every recipient; each plaintext starts
//! with its own name, so a value moved to another name is refused when decrypted.
//! Decryption uses SSH private keys microctl already uses (see [`Identities`]).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use age::secrecy::SecretString;
use serde::Deserialize;

use crate::error::{Error, ErrorKind, Result, line_col};

/// Environment variable naming an extra identity (private key) that decrypts secrets.
pub const IDENTITY_ENV: &str = "MICROCTL_SECRETS_IDENTITY";

/// The secrets file's name, next to the inventory.
pub const FILE_NAME: &str = "secrets.toml";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    recipients: Vec<toml::Spanned<String>>,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
}

/// The secrets file as stored: recipients and encrypted values.
pub struct SecretsFile {
    pub path: PathBuf,
    /// Public key lines, as written.
    pub recipients: Vec<String>,
    recipient_lines: Vec<usize>,
    /// Name -> armored age ciphertext.
    pub secrets: BTreeMap<String, String>,
}

/// A valid secret name: it is also a TOML bare key and a var-like word.
pub fn check_name(name: &str) -> Result<()> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Ok(());
    }
    Err(Error::usage(format!("invalid secret name `{name}`"))
        .hint("use letters, digits, `_` and `-`, e.g. grafana_admin_password"))
}

impl SecretsFile {
    /// The secrets file of the inventory at `inventory`.
    pub fn path_for(inventory: &Path) -> PathBuf {
        inventory.parent().unwrap_or(Path::new(".")).join(FILE_NAME)
    }

    /// Reads the file; `None` if it does not exist.
    pub fn load(path: &Path) -> Result<Option<SecretsFile>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("cannot read secrets file", path, e)),
        };
        let raw: RawFile = toml::from_str(&text).map_err(|e| {
            let (line, col) = line_col(&text, e.span().unwrap_or(0..0).start);
            Error::new(ErrorKind::Inventory, format!("invalid secrets file: {}", e.message().trim()))
                .at_file(path)
                .at_line(line, col)
                .hint("it holds `recipients = [\"ssh-ed25519 AAAA... name\"]` and a [secrets] table; see README.md, Secrets")
        })?;
        let recipient_lines = raw.recipients.iter().map(|r| line_col(&text, r.span().start).0).collect();
        Ok(Some(SecretsFile {
            path: path.to_path_buf(),
            recipients: raw.recipients.into_iter().map(|r| r.into_inner()).collect(),
            recipient_lines,
            secrets: raw.secrets,
        }))
    }

    /// Reads the file, which must exist.
    pub fn load_existing(path: &Path) -> Result<SecretsFile> {
        SecretsFile::load(path)?.ok_or_else(|| {
            Error::new(ErrorKind::Inventory, format!("no secrets file at {}", path.display())).hint(
                "`microctl secrets set NAME` creates it, encrypted to your key; then add your team's public keys to `recipients` and run `microctl secrets rekey` (README.md, Secrets)",
            )
        })
    }

    /// The recipients as age recipients; a line that is not an SSH ed25519/RSA public key
    /// is an error naming its line.
    pub fn age_recipients(&self) -> Result<Vec<age::ssh::Recipient>> {
        if self.recipients.is_empty() {
            return Err(Error::new(ErrorKind::Inventory, "the secrets file has no recipients")
                .at_file(&self.path)
                .field("recipients")
                .hint(
                    "add your SSH public key line (and your team's, and the CI agent's deploy key) to `recipients`",
                ));
        }
        // Every recipient, also one added in code since the file was read (it has no line).
        self.recipients
            .iter()
            .enumerate()
            .map(|(i, r)| {
                age::ssh::Recipient::from_str(r.trim()).map_err(|e| {
                    let err = Error::new(
                        ErrorKind::Inventory,
                        format!("recipient is not an SSH ed25519 or RSA public key: {e:?}"),
                    )
                    .at_file(&self.path)
                    .field("recipients")
                    .hint("paste a whole line of a .pub file, e.g. \"ssh-ed25519 AAAA... alice@laptop\"");
                    match self.recipient_lines.get(i) {
                        Some(line) => err.at_line(*line, 1),
                        None => err,
                    }
                })
            })
            .collect()
    }

    /// Encrypts `value` for `name` to every recipient (replacing any old value).
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        check_name(name)?;
        let recipients = self.age_recipients()?;
        let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot encrypt secret `{name}`")).caused_by(e))?;
        let mut out = Vec::new();
        let armored = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
            .and_then(|armor| {
                let mut w = encryptor.wrap_output(armor)?;
                w.write_all(plaintext(name, value).as_bytes())?;
                w.finish()?.finish()
            })
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot encrypt secret `{name}`")).caused_by(e));
        armored?;
        self.secrets.insert(name.to_string(), String::from_utf8(out).expect("armor is ASCII"));
        Ok(())
    }

    /// Decrypts the value of `name`.
    pub fn get(&self, name: &str, ids: &Identities) -> Result<String> {
        let Some(armored) = self.secrets.get(name) else {
            return Err(Error::new(ErrorKind::Inventory, format!("secret `{name}` is not in {}", self.path.display()))
                .hint(format!("set it with `microctl secrets set {name}` (the value is read from stdin)")));
        };
        let cannot =
            || Error::new(ErrorKind::Inventory, format!("cannot decrypt secret `{name}` in {}", self.path.display()));
        let decryptor = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(armored.as_bytes()))
            .map_err(|e| cannot().caused_by(e))?;
        let mut reader = decryptor.decrypt(ids.keys.iter().map(|k| k.as_ref())).map_err(|e| {
            cannot().caused_by(e).hint(format!(
                "none of your keys ({}) is a recipient of it: ask a teammate to add your public key to `recipients` and run `microctl secrets rekey`, or set {IDENTITY_ENV} to a key that is",
                ids.describe()
            ))
        })?;
        let mut text = String::new();
        reader.read_to_string(&mut text).map_err(|e| cannot().caused_by(e))?;
        let header = format!("microctl-secret {name}\n");
        match text.strip_prefix(&header) {
            Some(value) => Ok(value.to_string()),
            None => {
                Err(cannot()
                    .hint("the value was encrypted for another name: the file was edited by hand; set it again"))
            }
        }
    }

    /// The secrets not encrypted to exactly the current recipients (one was added or removed
    /// since they were set), read offline from the age headers' SSH key tags.
    pub fn stale(&self) -> Vec<String> {
        let mut want: Vec<String> = self.recipients.iter().filter_map(|r| ssh_tag(r)).collect();
        want.sort();
        let mut out = Vec::new();
        for (name, armored) in &self.secrets {
            let mut have = stanza_tags(armored);
            have.sort();
            if have != want {
                out.push(name.clone());
            }
        }
        out
    }

    /// Re-encrypts every value to the current recipients.
    pub fn rekey(&mut self, ids: &Identities) -> Result<usize> {
        let names: Vec<String> = self.secrets.keys().cloned().collect();
        let values = names.iter().map(|n| self.get(n, ids)).collect::<Result<Vec<_>>>()?;
        for (name, value) in names.iter().zip(values) {
            self.set(name, &value)?;
        }
        Ok(names.len())
    }

    /// Writes the file atomically (a temp file renamed over it).
    pub fn save(&self) -> Result<()> {
        let mut text = String::from(
            "# Secrets for this inventory, managed by `microctl secrets` (README.md, Secrets).\n\
             # Each value is age-encrypted to every key in `recipients`; names are readable.\n\
             # Add a teammate: append their SSH public key line, then `microctl secrets rekey`.\n",
        );
        text.push_str("recipients = [\n");
        for r in &self.recipients {
            text.push_str(&format!("  {},\n", toml::Value::String(r.clone())));
        }
        text.push_str("]\n\n[secrets]\n");
        for (name, armored) in &self.secrets {
            text.push_str(&format!("{name} = \"\"\"\n{}\"\"\"\n", armored.trim_end().to_string() + "\n"));
        }
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
        std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.path)).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::io("cannot write secrets file", &self.path, e)
        })
    }
}

/// age's tag for an SSH recipient: the first 4 bytes of SHA-256 of the wire-format key.
fn ssh_tag(public_line: &str) -> Option<String> {
    use sha2::Digest;
    let blob = public_line.split_whitespace().nth(1)?;
    let wire = data_encoding::BASE64.decode(blob.as_bytes()).ok()?;
    Some(data_encoding::BASE64_NOPAD.encode(&sha2::Sha256::digest(&wire)[..4]))
}

/// The SSH key tags of an armored age file's recipient stanzas (`-> ssh-ed25519 TAG ...`).
fn stanza_tags(armored: &str) -> Vec<String> {
    let mut binary = Vec::new();
    if age::armor::ArmoredReader::new(armored.as_bytes()).read_to_end(&mut binary).is_err() {
        return vec![];
    }
    let header_end = binary.windows(4).position(|w| w == b"\n---").unwrap_or(binary.len());
    String::from_utf8_lossy(&binary[..header_end])
        .lines()
        .filter_map(|l| l.strip_prefix("-> "))
        .filter_map(|l| {
            let mut f = l.split(' ');
            matches!(f.next(), Some("ssh-ed25519" | "ssh-rsa")).then(|| f.next().map(str::to_string)).flatten()
        })
        .collect()
}

fn plaintext(name: &str, value: &str) -> String {
    format!("microctl-secret {name}\n{value}")
}

/// The SSH private keys that may decrypt: `MICROCTL_SECRETS_IDENTITY`, the inventory's
/// identity files, then ~/.ssh/id_ed25519 and ~/.ssh/id_rsa. Encrypted keys are unlocked with
/// `MICROCTL_KEY_PASSPHRASE` or a prompt on a terminal.
pub struct Identities {
    keys: Vec<Box<dyn age::Identity>>,
    paths: Vec<PathBuf>,
    skipped: Vec<String>,
    /// What age said while decrypting (`Passphrase::display_message`), for the caller to print.
    notes: Arc<Mutex<Vec<String>>>,
}

impl Identities {
    pub fn find(inventory_identities: &[PathBuf]) -> Result<Identities> {
        Identities::find_with(inventory_identities, true)
    }

    /// Like [`Identities::find`], but an encrypted key is unlocked only by
    /// `MICROCTL_KEY_PASSPHRASE`, never a prompt (masking `exec` output asks nothing).
    pub fn find_without_prompt(inventory_identities: &[PathBuf]) -> Result<Identities> {
        Identities::find_with(inventory_identities, false)
    }

    fn find_with(inventory_identities: &[PathBuf], prompt: bool) -> Result<Identities> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os(IDENTITY_ENV) {
            candidates.push(PathBuf::from(p));
        }
        candidates.extend(inventory_identities.iter().cloned());
        let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()));
        candidates.extend(["id_ed25519", "id_rsa"].map(|n| home.join(".ssh").join(n)));
        let mut ids = Identities { keys: Vec::new(), paths: Vec::new(), skipped: Vec::new(), notes: Arc::default() };
        for path in candidates {
            if ids.paths.contains(&path) || !path.exists() {
                continue;
            }
            // A key OpenSSH would refuse (readable by others) is skipped, and said so.
            if let Err(p) = crate::transport::identity::check(&path) {
                ids.skipped.push(p.message(&path));
                continue;
            }
            let parsed = std::fs::File::open(&path).and_then(|f| {
                age::ssh::Identity::from_buffer(std::io::BufReader::new(f), Some(path.display().to_string()))
            });
            let id = match parsed {
                Ok(age::ssh::Identity::Unsupported(_)) => {
                    ids.skipped.push(format!("{} (only ed25519 and RSA keys decrypt)", path.display()));
                    continue;
                }
                Ok(id) => id,
                Err(e) => {
                    ids.skipped.push(format!("{}: {e}", path.display()));
                    continue;
                }
            };
            ids.keys.push(Box::new(id.with_callbacks(Passphrase { notes: ids.notes.clone(), prompt })));
            ids.paths.push(path);
        }
        Ok(ids)
    }

    /// What decrypting said so far (age's messages), each once: the caller prints them.
    pub fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock().expect("notes lock"))
    }

    fn describe(&self) -> String {
        let mut parts: Vec<String> = self.paths.iter().map(|p| p.display().to_string()).collect();
        if parts.is_empty() {
            parts.push("none found".into());
        }
        parts.extend(self.skipped.iter().map(|s| format!("skipped: {s}")));
        parts.join(", ")
    }
}

/// Unlocks encrypted SSH keys like `transport`: the passphrase variable, else a prompt (when
/// `prompt`). What age wants shown is kept in `notes` (returned by `Identities::take_notes`),
/// never printed here.
#[derive(Clone)]
struct Passphrase {
    notes: Arc<Mutex<Vec<String>>>,
    prompt: bool,
}

impl age::Callbacks for Passphrase {
    fn display_message(&self, message: &str) {
        self.notes.lock().expect("notes lock").push(message.to_string());
    }

    fn confirm(&self, _: &str, _: &str, _: Option<&str>) -> Option<bool> {
        None
    }

    fn request_public_string(&self, _: &str) -> Option<String> {
        None
    }

    fn request_passphrase(&self, description: &str) -> Option<SecretString> {
        if let Ok(p) = std::env::var(crate::transport::PASSPHRASE_ENV) {
            return Some(SecretString::from(p));
        }
        use std::io::IsTerminal;
        if !self.prompt || !std::io::stdin().is_terminal() {
            return None;
        }
        rpassword::prompt_password(format!("{description}: ")).ok().map(SecretString::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keygen(dir: &Path, name: &str, kind: &str) -> (PathBuf, String) {
        let path = dir.join(name);
        let ok = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(ok.success());
        let public = std::fs::read_to_string(path.with_extension("pub")).unwrap().trim().to_string();
        (path, public)
    }

    /// A recipient added in code (as `secrets keygen` and the lab add the agent's key) is
    /// encrypted to like one read from the file (it used to be dropped: no line for it).
    #[test]
    fn a_recipient_added_in_code_can_read_what_is_set_next() {
        let dir = tempfile::tempdir().unwrap();
        let (_, alice_pub) = keygen(dir.path(), "alice", "ed25519");
        let (bob, bob_pub) = keygen(dir.path(), "bob", "ed25519");
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, format!("recipients = [\"{alice_pub}\"]\n")).unwrap();
        let mut file = SecretsFile::load_existing(&path).unwrap();
        file.recipients.push(bob_pub);
        file.set("token", "t0k3n").unwrap();
        assert!(file.stale().is_empty(), "encrypted to both");
        let ids = Identities::find(std::slice::from_ref(&bob)).unwrap();
        assert_eq!(file.get("token", &ids).unwrap(), "t0k3n");
        // A bad line added in code is an error too, with no line number to give.
        file.recipients.push("ssh-ed25519 not-base64".into());
        let err = file.set("token", "x").unwrap_err();
        assert!(err.message.contains("not an SSH ed25519 or RSA public key"), "{err}");
    }

    #[test]
    fn values_round_trip_for_every_recipient_and_only_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, alice_pub) = keygen(dir.path(), "alice", "ed25519");
        let (bob, bob_pub) = keygen(dir.path(), "bob", "rsa");
        let (eve, _) = keygen(dir.path(), "eve", "ed25519");
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, format!("recipients = [\"{alice_pub}\", \"{bob_pub}\"]\n")).unwrap();
        let mut file = SecretsFile::load_existing(&path).unwrap();
        let value = "p@ss 'w\"ord' $HOME\nsecond line";
        file.set("db_password", value).unwrap();
        file.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("p@ss") && text.contains("db_password = \"\"\"\n-----BEGIN AGE ENCRYPTED FILE-----"),
            "{text}"
        );
        let mut file = SecretsFile::load_existing(&path).unwrap();
        assert!(file.stale().is_empty());
        file.recipients.pop();
        assert_eq!(file.stale(), ["db_password"], "a removed recipient still reads it");
        file.recipients.push(bob_pub.clone());
        for key in [&alice, &bob] {
            let ids = Identities::find(std::slice::from_ref(key)).unwrap();
            assert_eq!(file.get("db_password", &ids).unwrap(), value);
        }
        // HOME with no keys, only eve's key: refused, saying which keys were tried.
        let ids = Identities { keys: vec![], paths: vec![], skipped: vec![], notes: Arc::default() };
        assert!(file.get("db_password", &ids).is_err());
        let eve_ids = Identities::find(std::slice::from_ref(&eve));
        let err = file.get("db_password", &eve_ids.unwrap()).unwrap_err();
        assert!(err.hint.as_deref().unwrap().contains("eve"), "{err}");
        // A value moved to another name is refused.
        let mut moved = SecretsFile::load_existing(&path).unwrap();
        let armored = moved.secrets["db_password"].clone();
        moved.secrets.insert("other".into(), armored);
        let ids = Identities::find(std::slice::from_ref(&alice)).unwrap();
        assert!(moved.get("other", &ids).unwrap_err().hint.clone().unwrap().contains("another name"));
        // A key readable by others is skipped, and the error says so.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&alice, std::fs::Permissions::from_mode(0o644)).unwrap();
        let ids = Identities::find(std::slice::from_ref(&alice)).unwrap();
        let err = file.get("db_password", &ids).unwrap_err();
        assert!(err.hint.as_deref().unwrap().contains("skipped: UNPROTECTED PRIVATE KEY FILE"), "{err}");
    }

    #[test]
    fn a_bad_recipient_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "recipients = [\n  \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHUvcrEZWFZytH4m1Nw1EawlHaFbHrnR6KWIg8dMWY9f a\",\n  \"not a key\",\n]\n").unwrap();
        let mut file = SecretsFile::load_existing(&path).unwrap();
        let err = file.set("x", "y").unwrap_err();
        assert_eq!((err.file.as_deref(), err.line), (Some(path.as_path()), Some(3)), "{err}");
    }
}
