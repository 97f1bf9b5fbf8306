//! The devnet's admin consoles: one `pactum admin serve` per member organisation, with a
//! console certificate (ECDSA P-256) from the member's CA and the member's enrolled admin
//! key (`docs/console.md`).

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use pactum_certs::Role;
use pactum_certs::authority::{
    CERTIFICATE_FILE, IssueRequest, PRIVATE_KEY_FILE, issue_server_into_directory,
};

use crate::clock::{self, Stopwatch};
use crate::devnet::{DeployedContracts, running_pid_in, signal};

/// How long a console gets to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// What identifies a console process in its command line.
const MARKER: &str = "admin\0serve";

/// A running console.
pub struct ConsoleInfo {
    pub organisation: String,
    pub url: String,
    pub token_file: PathBuf,
}

fn console_directory(directory: &Path, member: usize) -> PathBuf {
    directory.join("consoles").join(format!("member-{member}"))
}

/// Starts the console of every member with an enrolled admin key that is not running yet;
/// member m's on 127.0.0.1:(base_port + m − 1), talking to validator m.
pub fn start(
    directory: &Path,
    executable: &Path,
    deployed: &DeployedContracts,
    apis: &[String],
    base_port: u16,
) -> anyhow::Result<Vec<ConsoleInfo>> {
    let mut consoles = Vec::new();
    for (organisation, admin_key) in &deployed.admin_keys {
        let Some(member) = organisation
            .strip_prefix("Member ")
            .and_then(|number| number.parse::<usize>().ok())
            .filter(|member| (1..=apis.len()).contains(member))
        else {
            continue;
        };
        let console = console_directory(directory, member);
        let tls = console.join("tls");
        if !tls.join(CERTIFICATE_FILE).exists() {
            let request = IssueRequest {
                role: Role::Admin,
                name: &format!("console-member-{member}"),
                subject_alt_names: &["127.0.0.1".into(), "localhost".into()],
                at: clock::unix_seconds() - 60,
                days: 365,
            };
            let authority = directory.join("organisations").join(format!("member-{member}"));
            issue_server_into_directory(&authority, &request, &tls)
                .with_context(|| format!("issuing the console certificate of {organisation}"))?;
        }
        let port = base_port
            .checked_add(u16::try_from(member - 1).unwrap_or(u16::MAX))
            .context("the console port is past 65535")?;
        let address = format!("127.0.0.1:{port}");
        let data = console.join("data");
        if member == 1 {
            keep_samples_administrator(&data, deployed)?;
        }
        let pid_file = console.join("console.pid");
        let token_file = data.join("login-token");
        if running_pid_in(&pid_file, MARKER).is_none() {
            let _ = std::fs::remove_file(&token_file);
            let log_path = console.join("console.log");
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .with_context(|| format!("opening {}", log_path.display()))?;
            let mut child = Command::new(executable)
                .args(["admin", "serve", "--node", &apis[member - 1], "--listen", &address])
                .arg("--admin-key")
                .arg(admin_key)
                .arg("--data-dir")
                .arg(&data)
                .arg("--tls-certificate")
                .arg(tls.join(CERTIFICATE_FILE))
                .arg("--tls-key")
                .arg(tls.join(PRIVATE_KEY_FILE))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .process_group(0)
                .spawn()
                .with_context(|| format!("starting the console of {organisation}"))?;
            std::fs::write(&pid_file, format!("{}\n", child.id()))?;
            let watch = Stopwatch::start();
            while !token_file.exists() || std::net::TcpStream::connect(&address).is_err() {
                if watch.elapsed() > START_TIMEOUT || child.try_wait()?.is_some() {
                    bail!(
                        "the console of {organisation} did not start; see {}",
                        log_path.display()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        consoles.push(ConsoleInfo {
            organisation: organisation.clone(),
            url: format!("https://{address}/"),
            token_file,
        });
    }
    Ok(consoles)
}

/// Gives the first member's console the devnet client as the identity `devnet-client`:
/// it deployed the sample contracts, so it administers them (registers supply-chain
/// parties and healthcare providers) from the console's application pages.
fn keep_samples_administrator(data: &Path, deployed: &DeployedContracts) -> anyhow::Result<()> {
    use pactum_admin::identities::Identities;
    let identities = Identities::open(data.join("identities"))?;
    if identities.load("devnet-client").is_ok() {
        return Ok(());
    }
    let read = |path: &Path| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let certificate = read(&deployed.client_certificate)?;
    let key = read(&deployed.client_key)?;
    let identity = Identities::check("devnet-client", &certificate, &key)
        .map_err(|reason| anyhow::anyhow!("the devnet client as a console identity: {reason}"))?;
    identities.save(&identity, &certificate, &key).map_err(|reason| anyhow::anyhow!(reason))
}

/// Prints each console's address and current login token.
pub fn print(consoles: &[ConsoleInfo]) {
    if consoles.is_empty() {
        return;
    }
    println!(
        "\nadmin consoles (docs/console.md; each login token works once, the next one is written to its file):"
    );
    for console in consoles {
        let token = std::fs::read_to_string(&console.token_file).unwrap_or_default();
        println!(
            "  {:<9} {}  login token {}  ({})",
            console.organisation,
            console.url,
            token.trim(),
            console.token_file.display()
        );
    }
}

/// Stops every running console of the devnet in `directory`.
pub fn stop(directory: &Path) {
    let Ok(entries) = std::fs::read_dir(directory.join("consoles")) else { return };
    for entry in entries.flatten() {
        let pid_file = entry.path().join("console.pid");
        if let Some(pid) = running_pid_in(&pid_file, MARKER) {
            signal(pid, "TERM");
            let watch = Stopwatch::start();
            while running_pid_in(&pid_file, MARKER).is_some() && watch.elapsed() < START_TIMEOUT {
                std::thread::sleep(Duration::from_millis(50));
            }
            println!("stopped the console in {} (pid {pid})", entry.path().display());
        }
        let _ = std::fs::remove_file(&pid_file);
    }
}
