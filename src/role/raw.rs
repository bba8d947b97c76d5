//! `role.toml` exactly as written (serde, with spans for error messages). `load` checks it.

use serde::Deserialize;
use toml::Spanned;

/// One role file. Resources run in a fixed phase order (see `roles/README.md`); within a
/// phase, in the order written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    pub description: Option<String>,
    /// Roles applied before this one.
    #[serde(default)]
    pub depends: Vec<Spanned<String>>,
    /// Lowest-precedence vars.
    #[serde(default)]
    pub defaults: toml::Table,
    /// Ports the role listens on (for `microctl inventory --ports`).
    #[serde(default)]
    pub ports: Vec<Spanned<RawPort>>,
    #[serde(default)]
    pub apt_repository: Vec<Spanned<RawAptRepository>>,
    #[serde(default)]
    pub package: Vec<Spanned<RawPackage>>,
    #[serde(default)]
    pub directory: Vec<Spanned<RawDirectory>>,
    #[serde(default)]
    pub file: Vec<Spanned<RawFile>>,
    #[serde(default)]
    pub link: Vec<Spanned<RawLink>>,
    #[serde(default)]
    pub absent: Vec<Spanned<RawAbsent>>,
    #[serde(default)]
    pub service: Vec<Spanned<RawService>>,
    #[serde(default)]
    pub command: Vec<Spanned<RawCommand>>,
    #[serde(default)]
    pub handler: Vec<Spanned<RawHandler>>,
    #[serde(default)]
    pub user: Vec<Spanned<RawUser>>,
    #[serde(default)]
    pub authorized_key: Vec<Spanned<RawAuthorizedKey>>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawPort {
    pub port: u16,
    #[serde(default = "tcp")]
    pub proto: String,
    /// Who may connect: `any`, `self` (only the host itself), or a group name.
    #[serde(default = "any")]
    pub from: String,
    pub description: Option<String>,
}

fn tcp() -> String {
    "tcp".into()
}

fn any() -> String {
    "any".into()
}

/// A file mode written as a string (`"0644"`), or a TOML integer, which `resolve` refuses
/// (`mode = 644` is decimal) with the string it probably meant.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum RawMode {
    Text(String),
    Number(u32),
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawAptRepository {
    pub name: String,
    /// `deb [signed-by=...] URL SUITE COMPONENTS` is written from these.
    pub url: String,
    pub suite: String,
    #[serde(default)]
    pub components: Vec<String>,
    /// Keyring (binary `.gpg` or ASCII-armored `.asc`) in the top-level `files/` folder...
    pub key: Option<String>,
    /// ...or a URL the host downloads it from (as vendors' install docs do), verified
    /// against `key_fingerprint` before it is trusted.
    pub key_url: Option<String>,
    pub key_fingerprint: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawPackage {
    pub names: Vec<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawDirectory {
    pub path: String,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<RawMode>,
    #[serde(default)]
    pub notify: Vec<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    pub dest: String,
    /// A template in the role's `templates/` folder (minijinja).
    pub template: Option<String>,
    /// A static file in the top-level `files/` folder.
    pub src: Option<String>,
    /// Inline content (rendered as a template).
    pub content: Option<String>,
    /// The content is the microctl binary running this converge (a CI agent's copy).
    #[serde(default)]
    pub microctl_binary: bool,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<RawMode>,
    /// Command run on the staged file before it replaces the live one; `%s` is its path.
    pub validate: Option<String>,
    #[serde(default)]
    pub sensitive: bool,
    #[serde(default)]
    pub notify: Vec<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawLink {
    pub path: String,
    pub target: String,
    #[serde(default)]
    pub notify: Vec<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawAbsent {
    pub path: String,
    #[serde(default)]
    pub notify: Vec<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    pub name: String,
    pub enabled: Option<bool>,
    /// `started` or `stopped`.
    pub state: Option<String>,
    #[serde(default)]
    pub notify: Vec<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawCommand {
    pub name: String,
    pub run: String,
    /// Skip when this path exists.
    pub creates: Option<String>,
    /// Skip when this command succeeds.
    pub unless: Option<String>,
    #[serde(default)]
    pub notify: Vec<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawHandler {
    pub name: String,
    /// `restart`/`reload` this systemd service...
    pub service: Option<String>,
    pub action: Option<String>,
    /// ...or run this command.
    pub run: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub name: String,
    #[serde(default)]
    pub system: bool,
    pub shell: Option<String>,
    pub home: Option<String>,
    /// Supplementary groups, added to (never removed from, unless `exclusive_groups`).
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub exclusive_groups: bool,
    /// `present` (the default) or `absent`.
    pub state: Option<String>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawAuthorizedKey {
    pub user: String,
    /// A public key line (`TYPE BASE64 [COMMENT]`), templated.
    pub key: String,
    /// sshd options written before the key (`from="198.18.0.10"`).
    pub options: Option<String>,
    /// Names the line microctl manages (marker `microctl:ROLE/NAME`); default: the user.
    pub name: Option<String>,
    /// The user's file holds these keys alone.
    #[serde(default)]
    pub exclusive: bool,
    /// `present` (the default) or `absent`.
    pub state: Option<String>,
}
