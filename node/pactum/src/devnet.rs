//! `pactum devnet`: a local consortium of validator processes on loopback.
//!
//! `up` lays out the consortium (a CA per member, certificates, genesis, node configs;
//! reused when present), starts every validator that is not running as its own process,
//! waits for their APIs and connections, and the first time enrols a devnet client and
//! deploys the sample contracts, waiting for those blocks to commit. `down` stops the
//! validators with SIGTERM (SIGKILL after a grace period). State persists across down and
//! up.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use pactum_certs::Role;
use pactum_certs::authority::{IssueRequest, issue_into_directory};
use pactum_certs::identity::certificates_from_pem;
use pactum_runtime::devnet::{DevnetPlan, prepare};
use pactum_types::{ChainId, Payload};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::{self, Stopwatch};
use pactum_client::{NodeClient, deployed_address, encode_arguments, load_key, sign_payload};

/// The devnet's default directory.
pub const DEFAULT_DIRECTORY: &str = ".pactum/devnet";
/// How long a validator gets to stop after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(20);
/// How long `up` waits for APIs, connections and the first commits.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// Gas for the devnet's own deployments.
const DEPLOY_GAS: u64 = 500_000_000;
/// The sample contracts `up` deploys, with their init arguments.
const SAMPLES: [(&str, &[&str]); 4] = [
    ("token", &["string:Devnet Token"]),
    ("supply-chain", &[]),
    ("healthcare", &[]),
    ("escrow", &[]),
];

#[derive(Debug, Args)]
pub struct DevnetArgs {
    #[command(subcommand)]
    command: DevnetCommand,
}

#[derive(Debug, Subcommand)]
enum DevnetCommand {
    /// Start (or restart) the local consortium and deploy the sample contracts once.
    Up {
        /// Validators, one member organisation each (at least 4).
        #[arg(long, default_value_t = 4)]
        validators: usize,
        #[arg(long, default_value = DEFAULT_DIRECTORY)]
        dir: PathBuf,
        /// Validator i (1-based) accepts peers on 127.0.0.1:(p2p-base-port + i - 1).
        #[arg(long, default_value_t = 8601)]
        p2p_base_port: u16,
        /// Validator i (1-based) serves its REST API on 127.0.0.1:(api-base-port + i - 1).
        #[arg(long, default_value_t = 8701)]
        api_base_port: u16,
        /// Member i's (1-based) admin console listens on
        /// https://127.0.0.1:(console-base-port + i - 1); 0 starts no consoles.
        #[arg(long, default_value_t = 8801)]
        console_base_port: u16,
        /// Start only these validators (1-based; repeatable), if they are not running.
        #[arg(long)]
        only: Vec<usize>,
        /// Test-only: start validator N (1-based) with a Byzantine behaviour.
        #[arg(long, hide = true)]
        byzantine_for_tests: Option<usize>,
        /// Test-only: which Byzantine behaviour (default: bad signatures).
        #[arg(long, hide = true, value_enum, default_value = "bad-signatures")]
        byzantine_mode_for_tests: crate::node::ByzantineArgument,
    },
    /// Stop the local consortium's validators (all, or `--only` these).
    Down {
        #[arg(long, default_value = DEFAULT_DIRECTORY)]
        dir: PathBuf,
        #[arg(long)]
        only: Vec<usize>,
    },
    /// Show which validators run and each one's height.
    Status {
        #[arg(long, default_value = DEFAULT_DIRECTORY)]
        dir: PathBuf,
    },
}

/// What `up` deployed, kept in `DIR/contracts.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeployedContracts {
    /// The devnet client's key file (the deployer, and the token's issuer).
    pub client_key: PathBuf,
    pub client_certificate: PathBuf,
    /// Sample name -> contract address (hex).
    pub contracts: std::collections::BTreeMap<String, String>,
    /// Organisation -> the key file of its enrolled admin, which signs governance.
    #[serde(default)]
    pub admin_keys: std::collections::BTreeMap<String, PathBuf>,
}

pub fn run(arguments: DevnetArgs) -> anyhow::Result<ExitCode> {
    match arguments.command {
        DevnetCommand::Up {
            validators,
            dir,
            p2p_base_port,
            api_base_port,
            console_base_port,
            only,
            byzantine_for_tests,
            byzantine_mode_for_tests,
        } => {
            let plan = DevnetPlan {
                directory: dir,
                validators,
                chain_id: ChainId::new("pactum-devnet")?,
                p2p_base_port,
                api_base_port,
                now: clock::unix_seconds(),
            };
            let byzantine = byzantine_for_tests.map(|index| (index, byzantine_mode_for_tests));
            up(&plan, &only, console_base_port, byzantine)
        }
        DevnetCommand::Down { dir, only } => down(&dir, &only),
        DevnetCommand::Status { dir } => status(&dir),
    }
}

pub(crate) fn validator_directory(directory: &Path, index: usize) -> PathBuf {
    directory.join("validators").join(format!("validator-{}", index + 1))
}

fn pid_file(directory: &Path, index: usize) -> PathBuf {
    validator_directory(directory, index).join("node.pid")
}

/// The validator's process id, if it is running.
pub(crate) fn running_pid(directory: &Path, index: usize) -> Option<u32> {
    running_pid_in(&pid_file(directory, index), "node.json")
}

/// The process id in `pid_file`, if that process is running and its command line holds
/// `marker` (so a reused process id is not mistaken for ours).
pub(crate) fn running_pid_in(pid_file: &Path, marker: &str) -> Option<u32> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    let command_line = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let ours = String::from_utf8_lossy(&command_line).contains(marker);
    // A killed validator's cmdline can be read until it is reaped, so only its threads
    // tell whether it still holds its data directory.
    (ours && process_alive(pid)).then_some(pid)
}

/// Whether any thread of process `pid` is still live. The main thread of a killed
/// multi-threaded process turns zombie before its other threads have exited and before
/// its files (the RocksDB lock among them) are closed, so a zombie main thread alone does
/// not mean the process is gone.
fn process_alive(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // The state follows the command name, which is in parentheses and may hold any
        // character: take what follows the last ')'.
        let state = stat.rsplit(')').next().and_then(|rest| rest.trim_start().chars().next());
        state.is_some_and(|state| !matches!(state, 'Z' | 'X' | 'x'))
    })
}

fn selected(only: &[usize], index: usize) -> bool {
    only.is_empty() || only.contains(&(index + 1))
}

fn up(
    plan: &DevnetPlan,
    only: &[usize],
    console_base_port: u16,
    byzantine: Option<(usize, crate::node::ByzantineArgument)>,
) -> anyhow::Result<ExitCode> {
    let devnet = prepare(plan).context("laying out the devnet")?;
    let directory = &plan.directory;
    if devnet.created {
        println!(
            "created a {}-validator consortium in {}",
            devnet.genesis.validators.len(),
            directory.display()
        );
    }
    let executable = std::env::current_exe().context("finding the pactum executable")?;
    let mut started = Vec::new();
    for (index, config) in devnet.node_configs.iter().enumerate() {
        if !selected(only, index) {
            continue;
        }
        if let Some(pid) = running_pid(directory, index) {
            println!("validator-{} is already running (pid {pid})", index + 1);
            continue;
        }
        let log_path = validator_directory(directory, index).join("node.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut command = Command::new(&executable);
        command.args(["node", "run", "--config"]).arg(config);
        if let Some((byzantine, mode)) = byzantine
            && byzantine == index + 1
        {
            command.args(["--byzantine-for-tests", mode.name()]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: stopping `devnet up` does not stop the validators.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting validator-{}", index + 1))?;
        std::fs::write(pid_file(directory, index), format!("{}\n", child.id()))?;
        println!(
            "started validator-{} (pid {}), log {}",
            index + 1,
            child.id(),
            log_path.display()
        );
        started.push((index, child));
    }

    let apis: Vec<String> = devnet
        .genesis
        .validators
        .iter()
        .map(|validator| format!("http://{}", validator.api_address))
        .collect();
    let watch = Stopwatch::start();
    for (index, api) in apis.iter().enumerate() {
        if !selected(only, index) {
            continue;
        }
        let mut child = started.iter_mut().find(|(started, _)| *started == index);
        wait_for(&watch, &format!("validator-{} to serve {api}", index + 1), || {
            // A validator that exits while starting (its data directory locked, a bad
            // configuration) is reported at once, not after the start timeout.
            if let Some((_, child)) = child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                let log_path = validator_directory(directory, index).join("node.log");
                bail!(
                    "validator-{} exited while starting ({status}); the end of {}:\n{}",
                    index + 1,
                    log_path.display(),
                    log_tail(&log_path, 10)
                );
            }
            Ok(NodeClient::new(api).get("/healthz").is_ok_and(|answer| answer.is_success()))
        })?;
    }
    let contracts_path = directory.join("contracts.json");
    if !contracts_path.exists() {
        // The first start: every validator must be up and connected before the devnet's
        // own transactions go in.
        for (index, api) in apis.iter().enumerate() {
            wait_for(&watch, &format!("validator-{} to connect to its peers", index + 1), || {
                let status = NodeClient::new(api).status()?;
                let validators = status["validators"].as_array().cloned().unwrap_or_default();
                Ok(validators.iter().all(|validator| validator["connected"] == Value::Bool(true)))
            })?;
        }
        let (deployed, height) = deploy_samples(directory, &NodeClient::new(&apis[0]))?;
        // Every validator has executed the samples' blocks before the devnet is called
        // up: a client reading any of them then sees the contracts and the deployer's
        // nonce as they are. (A test's Byzantine validator may never execute them.)
        for (index, api) in apis.iter().enumerate() {
            if byzantine.is_some_and(|(byzantine, _)| byzantine == index + 1) {
                continue;
            }
            wait_for(
                &watch,
                &format!("validator-{} to execute block {height}", index + 1),
                || Ok(NodeClient::new(api).status()?["height"].as_u64() >= Some(height)),
            )?;
        }
        std::fs::write(&contracts_path, serde_json::to_string_pretty(&deployed)?)?;
    }
    let deployed: DeployedContracts = serde_json::from_str(
        &std::fs::read_to_string(&contracts_path)
            .with_context(|| format!("reading {}", contracts_path.display()))?,
    )?;
    let consoles = if console_base_port == 0 {
        Vec::new()
    } else {
        crate::devnet_consoles::start(directory, &executable, &deployed, &apis, console_base_port)?
    };
    print_summary(directory, &apis, &deployed);
    crate::devnet_consoles::print(&consoles);
    Ok(ExitCode::SUCCESS)
}

/// The last `lines` lines of the file at `path` (empty if it cannot be read).
fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `ready` until it says yes, fails, or the start timeout passes. `Ok(false)` and
/// transient errors of a validator not yet serving are the same; an error from the
/// closure that is not about reaching a validator ends the wait.
fn wait_for(
    watch: &Stopwatch,
    what: &str,
    mut ready: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    loop {
        match ready() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(error) if error.downcast_ref::<pactum_client::ClientError>().is_some() => {}
            Err(error) => return Err(error),
        }
        if watch.elapsed() > START_TIMEOUT {
            bail!(
                "timed out after {} s waiting for {what}; see the validators' node.log files",
                START_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Enrols the devnet client (certificate from the first member's CA) and deploys the
/// sample contracts from it, waiting for each block to commit. Returns them with the
/// height of the last one's block.
fn deploy_samples(directory: &Path, node: &NodeClient) -> anyhow::Result<(DeployedContracts, u64)> {
    let client_directory = directory.join("clients").join("devnet-client");
    let (keypair, answer) = enrol_identity(directory, node, 1, Role::Client, &client_directory)?;
    let client_key = client_directory.join("private-key.pem");
    let client_certificate = client_directory.join("certificate.pem");
    println!("enrolled devnet-client ({}) in block {}", keypair.public_key(), answer["height"]);
    // One admin per member organisation, for `pactum gov`.
    let mut admin_keys = std::collections::BTreeMap::new();
    let mut member = 1;
    while directory.join("organisations").join(format!("member-{member}")).exists() {
        let admin_directory = directory.join("clients").join(format!("admin-member-{member}"));
        let (admin, answer) =
            enrol_identity(directory, node, member, Role::Admin, &admin_directory)?;
        println!(
            "enrolled admin-member-{member} ({}) in block {}",
            admin.public_key(),
            answer["height"]
        );
        admin_keys.insert(format!("Member {member}"), admin_directory.join("private-key.pem"));
        member += 1;
    }
    let mut height = answer["height"].as_u64().unwrap_or(0);
    let mut contracts = std::collections::BTreeMap::new();
    for (name, init) in SAMPLES {
        let code = pactum_contract_wasm::by_name(name)
            .ok_or_else(|| anyhow!("no sample contract {name}"))?
            .to_vec();
        let init_arguments: Vec<String> = init.iter().map(ToString::to_string).collect();
        let init_input = encode_arguments(&init_arguments)?;
        let nonce = node.next_nonce(&keypair.public_key())?;
        let transaction = sign_payload(
            node,
            &keypair,
            Payload::DeployContract { code, init_input },
            DEPLOY_GAS,
            Some(nonce),
        )?;
        let hash = node.submit(&transaction)?;
        let answer = node.wait_committed(&hash, START_TIMEOUT)?;
        check_success(&answer, &format!("deploying {name}"))?;
        let address = deployed_address(&keypair.public_key(), nonce);
        println!("deployed {name} at {address} (block {})", answer["height"]);
        height = height.max(answer["height"].as_u64().unwrap_or(0));
        contracts.insert(name.to_string(), address.to_string());
    }
    Ok((DeployedContracts { client_key, client_certificate, contracts, admin_keys }, height))
}

/// Issues (once) a `role` certificate from member `member`'s CA into `out`, named after
/// the directory, and enrols its key; the key and the enrolment's commit answer.
fn enrol_identity(
    directory: &Path,
    node: &NodeClient,
    member: usize,
    role: Role,
    out: &Path,
) -> anyhow::Result<(pactum_types::Keypair, Value)> {
    let name = out.file_name().and_then(|name| name.to_str()).unwrap_or("identity").to_string();
    let authority = directory.join("organisations").join(format!("member-{member}"));
    let certificate = out.join("certificate.pem");
    if !certificate.exists() {
        let request = IssueRequest {
            role,
            name: &name,
            subject_alt_names: &[],
            at: clock::unix_seconds(),
            days: 365,
        };
        issue_into_directory(&authority, &request, out)
            .with_context(|| format!("issuing the certificate of {name}"))?;
    }
    let keypair = load_key(&out.join("private-key.pem"))?;
    let pem = std::fs::read(&certificate)?;
    let certificate_der = certificates_from_pem(&pem)?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("{} holds no certificate", certificate.display()))?;
    let enrol =
        sign_payload(node, &keypair, Payload::EnrolIdentity { certificate_der }, 1_000_000, None)?;
    let hash = node.submit(&enrol)?;
    let answer = node.wait_committed(&hash, START_TIMEOUT)?;
    check_success(&answer, &format!("enrolling {name}"))?;
    Ok((keypair, answer))
}

fn check_success(answer: &Value, what: &str) -> anyhow::Result<()> {
    let status = &answer["receipt"]["status"];
    if status != "success" {
        bail!("{what} failed: receipt {}", answer["receipt"]);
    }
    Ok(())
}

fn print_summary(directory: &Path, apis: &[String], deployed: &DeployedContracts) {
    println!("\nthe devnet is up ({}):", directory.display());
    for (index, api) in apis.iter().enumerate() {
        println!("  validator-{}  {api}", index + 1);
    }
    println!("\nsample contracts:");
    for (name, address) in &deployed.contracts {
        println!("  {name:<13} {address}");
    }
    let token = deployed.contracts.get("token").cloned().unwrap_or_default();
    let key = deployed.client_key.display();
    // The commands name this very executable, so they work as typed whether or not
    // `pactum` is on the PATH.
    let pactum = std::env::current_exe()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|_| "pactum".into());
    println!("\ntry:");
    println!("  {pactum} chain show --node {}", apis[0]);
    println!("  curl -s {}/v1/status", apis[1 % apis.len()]);
    println!("  {pactum} contract query {token} name --returns string --node {}", apis[0]);
    println!(
        "  {pactum} contract call {token} mint account:$({pactum} keys show --key {key} --public) u128:1000 --key {key} --node {}",
        apis[0]
    );
    println!("  curl -N {}/v1/events", apis[0]);
    if let Some(admin) = deployed.admin_keys.values().next() {
        println!("\ngovernance (an enrolled admin key per member, docs/governance.md):");
        for (organisation, key) in &deployed.admin_keys {
            println!("  {organisation:<9} {}", key.display());
        }
        println!("  {pactum} gov list --node {}", apis[0]);
        println!("  curl -s {}/v1/consortium", apis[0]);
        println!(
            "  {pactum} gov propose --title \"Revoke the devnet client\" --revoke-certificate {} --key {} --node {}",
            deployed.client_certificate.display(),
            admin.display(),
            apis[0]
        );
    }
    println!("  {pactum} devnet down --dir {}", directory.display());
}

fn down(directory: &Path, only: &[usize]) -> anyhow::Result<ExitCode> {
    if only.is_empty() {
        crate::devnet_consoles::stop(directory);
    }
    let validators = count_validators(directory)?;
    let mut stopping = Vec::new();
    for index in 0..validators {
        if !selected(only, index) {
            continue;
        }
        match running_pid(directory, index) {
            Some(pid) => {
                signal(pid, "TERM");
                stopping.push((index, pid));
            }
            None => println!("validator-{} is not running", index + 1),
        }
    }
    let watch = Stopwatch::start();
    for (index, pid) in stopping {
        while running_pid(directory, index).is_some() && watch.elapsed() < STOP_GRACE {
            std::thread::sleep(Duration::from_millis(100));
        }
        if running_pid(directory, index).is_some() {
            eprintln!(
                "validator-{} did not stop within {} s; killing it",
                index + 1,
                STOP_GRACE.as_secs()
            );
            signal(pid, "KILL");
        }
        let _ = std::fs::remove_file(pid_file(directory, index));
        println!("stopped validator-{} (pid {pid})", index + 1);
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
}

fn count_validators(directory: &Path) -> anyhow::Result<usize> {
    let validators = directory.join("validators");
    let entries = std::fs::read_dir(&validators)
        .with_context(|| format!("{} holds no devnet", directory.display()))?;
    Ok(entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("node.json").exists())
        .count())
}

fn status(directory: &Path) -> anyhow::Result<ExitCode> {
    let genesis = pactum_runtime::Genesis::load(&directory.join("genesis.json"))
        .with_context(|| format!("{} holds no devnet", directory.display()))?;
    for (index, validator) in genesis.validators.iter().enumerate() {
        let api = format!("http://{}", validator.api_address);
        match running_pid(directory, index) {
            Some(pid) => {
                let height = NodeClient::new(&api)
                    .status()
                    .map(|status| status["height"].to_string())
                    .unwrap_or_else(|error| format!("(no answer: {error})"));
                println!("validator-{}  pid {pid:<8} {api}  height {height}", index + 1);
            }
            None => println!("validator-{}  stopped", index + 1),
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_process_is_not_alive_even_before_it_is_reaped() {
        let mut child = Command::new("sleep").arg("30").spawn().expect("sleep runs");
        let pid = child.id();
        assert!(process_alive(pid));
        child.kill().expect("SIGKILL is delivered");
        // Not reaped yet: its main thread is a zombie, which `/proc` still lists.
        let watch = Stopwatch::start();
        while process_alive(pid) {
            assert!(watch.elapsed() < Duration::from_secs(10), "{pid} survived SIGKILL");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(std::fs::metadata(format!("/proc/{pid}")).is_ok(), "reaped too early");
        child.wait().expect("reaped");
        assert!(!process_alive(pid));
    }
}
