//! The local lab: the four microblog hosts (jenkins, web, monitoring, app) as real systemd
//! machines under systemd-nspawn, each in its own network namespace and cgroup, on addresses in
//! 198.18.0.0/15 only; app sits on a private net this machine has no interface on, so it is
//! reachable only through web. The system plumbing is a shell script (`lab.sh`, with the
//! per-host `supervisor.sh` and the image's `customize.sh`); this module checks prerequisites,
//! runs it, writes the lab inventory, and waits until every host's systemd is up, over SSH.

mod files;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::inventory::Inventory;
use crate::transport::{ConnectOptions, Pool};
pub use files::hosts;

const LAB_SH: &str = include_str!("lab.sh");
const SUPERVISOR_SH: &str = include_str!("supervisor.sh");
const CUSTOMIZE_SH: &str = include_str!("customize.sh");
/// The lab app's requirements: their wheels are baked into the image.
const REQUIREMENTS: &str = include_str!("../../examples/microblog-lite/requirements.txt");

/// Identifies the image recipe: a change rebuilds the base image.
fn recipe() -> String {
    let all = [LAB_SH, CUSTOMIZE_SH, REQUIREMENTS].concat();
    crate::plan::desired::sha256_hex(all.as_bytes())[..16].to_string()
}

/// The lab's folder: `MICROCTL_LAB_DIR`, default /var/lib/microctl-lab.
pub fn dir() -> PathBuf {
    std::env::var_os("MICROCTL_LAB_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/lib/microctl-lab"))
}

fn lab_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Lab, message)
}

/// Root, and the commands the lab runs, with the Debian packages that provide them.
pub fn check_prerequisites() -> Result<()> {
    // SAFETY-free check of the effective uid through /proc (no libc dependency).
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    if euid != Some("0") {
        return Err(lab_error("the lab needs root (network namespaces, mounts, containers)").hint("run it with sudo"));
    }
    let needs = [
        ("debootstrap", "debootstrap"),
        ("systemd-nspawn", "systemd-container"),
        ("ip", "iproute2"),
        ("ssh-keygen", "openssh-client"),
        ("ssh", "openssh-client"),
        ("python3", "python3-pip"),
    ];
    let missing: Vec<&str> = needs.iter().filter(|(cmd, _)| !on_path(cmd)).map(|(_, pkg)| *pkg).collect();
    if !missing.is_empty() {
        let mut pkgs = missing.clone();
        pkgs.dedup();
        return Err(lab_error(format!("missing programs for the lab: install {}", pkgs.join(" ")))
            .hint(format!("apt-get install -y {}", pkgs.join(" "))));
    }
    Ok(())
}

fn on_path(cmd: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .any(|d| d.join(cmd).is_file())
}

/// Writes the scripts (atomically: a running supervisor keeps reading its old copy).
fn write_scripts(lab: &Path) -> Result<()> {
    let scripts = lab.join("scripts");
    std::fs::create_dir_all(&scripts).map_err(|e| Error::io("cannot create", &scripts, e))?;
    let files = [
        ("lab.sh", LAB_SH),
        ("supervisor.sh", SUPERVISOR_SH),
        ("customize.sh", CUSTOMIZE_SH),
        ("requirements.txt", REQUIREMENTS),
    ];
    for (name, text) in files {
        let path = scripts.join(name);
        let tmp = scripts.join(format!(".{name}.new"));
        std::fs::write(&tmp, text).map_err(|e| Error::io("cannot write", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io("cannot write", &path, e))?;
    }
    Ok(())
}

fn run_script(lab: &Path, action: &str, app2: bool) -> Result<()> {
    let names: Vec<&str> = hosts(app2).iter().map(|h| h.name).collect();
    let status = Command::new("bash")
        .arg(lab.join("scripts/lab.sh"))
        .arg(action)
        .env("MICROCTL_LAB_DIR", lab)
        .env("MICROCTL_LAB_HOSTS", names.join(" "))
        .env("MICROCTL_LAB_RECIPE", recipe())
        .status()
        .map_err(|e| lab_error("cannot run bash").caused_by(e))?;
    if status.success() {
        Ok(())
    } else {
        Err(lab_error(format!("lab {action} failed ({status})"))
            .hint("see the messages above; `microctl lab down` cleans up a half-up lab"))
    }
}

/// Marks a lab run with the second app host (`lab up --app2`).
const APP2_MARK: &str = "app2";

/// Does the lab run the second app host?
pub fn has_app2() -> bool {
    dir().join(APP2_MARK).exists()
}

/// `lab up [--app2]`: image, hosts, network, containers; then the inventory; then wait for
/// systemd. With `app2`, a second app host (private net, reached through web, group `app`).
pub fn up(app2: bool) -> Result<PathBuf> {
    check_prerequisites()?;
    let lab = dir();
    write_scripts(&lab)?;
    let mark = lab.join(APP2_MARK);
    if app2 {
        std::fs::write(&mark, "").map_err(|e| Error::io("cannot write", &mark, e))?;
    } else if mark.exists() {
        std::fs::remove_file(&mark).map_err(|e| Error::io("cannot remove", &mark, e))?;
    }
    let t = Instant::now();
    run_script(&lab, "up", app2)?;
    let inventory = write_user_files(&lab, app2)?;
    wait_running(&inventory, Duration::from_secs(120))?;
    eprintln!("lab: up in {:.1}s", t.elapsed().as_secs_f64());
    Ok(inventory)
}

/// `lab down [--fresh]`: stop everything, remove every netns, bridge, veth, route, rule, cgroup
/// and mount the lab made; `--fresh` also forgets the hosts' changes (the image stays cached).
pub fn down(fresh: bool) -> Result<()> {
    check_prerequisites()?;
    let lab = dir();
    if !lab.join("scripts/lab.sh").exists() {
        write_scripts(&lab)?;
    }
    run_script(&lab, "down", true)?;
    if fresh {
        run_script(&lab, "fresh", true)?;
    }
    Ok(())
}

fn write_user_files(lab: &Path, app2: bool) -> Result<PathBuf> {
    let lab_s = lab.display().to_string();
    let mut keys = Vec::new();
    for h in hosts(app2) {
        let ssh = lab.join("hosts").join(h.name).join("root/etc/ssh");
        let mut lines = Vec::new();
        for kind in ["ed25519", "ecdsa", "rsa"] {
            let p = ssh.join(format!("ssh_host_{kind}_key.pub"));
            lines.push(
                std::fs::read_to_string(&p).map_err(|e| Error::io("cannot read host key", &p, e))?.trim().to_string(),
            );
        }
        keys.push((h, lines));
    }
    write_secrets(lab)?;
    // The app to deploy: this checkout's example, when `lab up` runs from the repository.
    let app =
        std::env::current_dir().map(|d| d.join("examples/microblog-lite")).ok().filter(|p| p.join("VERSION").is_file());
    let deploy = app.map(|a| files::deploy_section(&a.display().to_string())).unwrap_or_default();
    let files = [
        ("known_hosts", files::known_hosts(&keys)),
        ("inventory.toml", files::inventory(&lab_s, false, app2) + &deploy),
        ("inventory-full.toml", files::inventory(&lab_s, true, app2)),
    ];
    for (name, text) in files {
        let p = lab.join(name);
        std::fs::write(&p, text).map_err(|e| Error::io("cannot write", &p, e))?;
    }
    // Plain OpenSSH's view of the same hosts: what `microctl ssh-config` prints for the lab.
    let inventory = lab.join("inventory.toml");
    let inv = crate::inventory::Inventory::load(&inventory)?;
    let p = lab.join("ssh_config");
    let text = crate::login::config::render(&inv, &inv.hosts)?;
    std::fs::write(&p, text).map_err(|e| Error::io("cannot write", &p, e))?;
    Ok(inventory)
}

/// LAB/secrets.toml, encrypted to the lab's own key, with a random value for each secret the
/// lab inventories refer to; values already set are kept (so sessions survive a `lab up`). A
/// plain `secret_key` file from older labs is moved in and removed.
fn write_secrets(lab: &Path) -> Result<()> {
    use crate::secrets::SecretsFile;
    let path = lab.join(crate::secrets::store::FILE_NAME);
    let public = lab.join("id_ed25519.pub");
    let key = std::fs::read_to_string(&public).map_err(|e| Error::io("cannot read", &public, e))?;
    let mut file = match SecretsFile::load(&path)? {
        Some(f) => f,
        None => {
            std::fs::write(&path, format!("recipients = [{}]\n", toml::Value::String(key.trim().to_string())))
                .map_err(|e| Error::io("cannot write", &path, e))?;
            SecretsFile::load_existing(&path)?
        }
    };
    let old = lab.join("secret_key");
    for name in files::SECRETS {
        if file.secrets.contains_key(name) {
            continue;
        }
        let value = match std::fs::read_to_string(&old) {
            Ok(v) if name == "secret_key" => v.trim().to_string(),
            _ => random_hex()?,
        };
        file.set(name, &value)?;
    }
    // The jenkins agent's key pair: it logs in with it and decrypts with it, so its public
    // half is a recipient (the values are encrypted to it again when it was not yet).
    if !file.secrets.contains_key(files::DEPLOY_KEY) {
        file.set(files::DEPLOY_KEY, &crate::secrets::keypair::generate(files::DEPLOY_KEY)?)?;
    }
    let ids = crate::secrets::Identities::find_without_prompt(&[lab.join("id_ed25519")])?;
    let agent = crate::secrets::keypair::public_line(&file.get(files::DEPLOY_KEY, &ids)?)
        .map_err(|e| lab_error(format!("the lab's deploy key: {e}")))?;
    if !file.recipients.contains(&agent) {
        // Written and read again, as a user adding the line to the file before `rekey`.
        file.recipients.push(agent);
        file.save()?;
        file = SecretsFile::load_existing(&path)?;
    }
    if !file.stale().is_empty() {
        file.rekey(&ids)?;
    }
    file.save()?;
    let _ = std::fs::remove_file(&old);
    Ok(())
}

/// 32 random bytes as hex.
fn random_hex() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| lab_error("cannot read /dev/urandom").caused_by(e))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Waits until every host answers over SSH (app through web) and its systemd is `running`.
fn wait_running(inventory: &Path, timeout: Duration) -> Result<()> {
    let inv = Arc::new(Inventory::load(inventory)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| lab_error("runtime").caused_by(e))?;
    rt.block_on(async {
        let deadline = Instant::now() + timeout;
        // The lab's inventory holds exactly its hosts.
        let mut pending: Vec<Arc<crate::inventory::Host>> = inv.hosts.clone();
        let mut last: Option<Error> = None;
        while !pending.is_empty() {
            if Instant::now() > deadline {
                let names: Vec<&str> = pending.iter().map(|h| h.name.as_str()).collect();
                let mut e = lab_error(format!("hosts not up after {timeout:?}: {}", names.join(", ")));
                if let Some(cause) = last {
                    e = e.caused_by(cause);
                }
                return Err(e.hint("see LAB/hosts/HOST/console.log; `microctl lab down` then `lab up` retries"));
            }
            // A fresh pool each round: a connection refused while sshd starts is not cached.
            let pool = Pool::new(inv.clone(), ConnectOptions::default());
            let mut still = Vec::new();
            for host in &pending {
                let name = &host.name;
                let state = match pool.connect(host).await {
                    Ok(conn) => {
                        conn.exec(
                            "systemctl is-system-running --wait; systemctl --failed --no-legend --plain",
                            &[],
                            |_| {},
                        )
                        .await
                    }
                    Err(e) => Err(e),
                };
                match state {
                    Ok(out) => {
                        let text = String::from_utf8_lossy(&out.stdout).into_owned();
                        let first = text.lines().next().unwrap_or("").trim().to_string();
                        match first.as_str() {
                            "running" => eprintln!("lab: {name} is running"),
                            "degraded" => {
                                return Err(lab_error(format!("{name} booted degraded"))
                                    .host(name.clone())
                                    .detail(text));
                            }
                            _ => still.push(host.clone()),
                        }
                    }
                    Err(e) => {
                        last = Some(e);
                        still.push(host.clone());
                    }
                }
            }
            pool.close_all().await;
            pending = still;
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Ok(())
    })
}

/// `lab status`: per host, whether its container runs and its address.
pub fn status() -> Result<Vec<(String, bool, String)>> {
    let lab = dir();
    Ok(hosts(has_app2())
        .iter()
        .map(|h| {
            let pid = std::fs::read_to_string(lab.join("hosts").join(h.name).join("nspawn.pid")).unwrap_or_default();
            let running = !pid.trim().is_empty() && Path::new(&format!("/proc/{}", pid.trim())).exists();
            (h.name.to_string(), running, h.address().to_string())
        })
        .collect())
}
