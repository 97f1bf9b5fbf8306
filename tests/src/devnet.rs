//! Real validator processes for the end-to-end tests, started and stopped through the
//! same code path an operator uses (`pactum devnet up` / `down`), plus what the tests do
//! to them: kill -9, restart, load, and comparing what the nodes say.
//!
//! Every wait is bounded and says what it waited for when it gives up.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use pactum_certs::Role;
use pactum_certs::authority::{IssueRequest, issue_into_directory};
use pactum_certs::identity::certificates_from_pem;
use pactum_client::{
    NodeClient, Submission, Validators, encode_arguments, load_key, sign_payload, signed_call,
};
use pactum_runtime::clock::{Stopwatch, unix_seconds};
use pactum_types::crypto::Keypair;
use pactum_types::{Address, Encode, Hash, Payload};
use serde_json::Value;

/// The `pactum` binary built beside the test binaries (`target/release/pactum`).
pub fn pactum_binary() -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test knows its own path");
    let directory = test_binary.parent().and_then(Path::parent).expect("target/release/deps");
    let binary = directory.join("pactum");
    assert!(
        binary.exists(),
        "{} is missing: build it first (cargo build --release -p pactum)",
        binary.display()
    );
    binary
}

/// Polls `ready` every 100 ms until it holds, for at most `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let watch = Stopwatch::start();
    while !ready() {
        assert!(watch.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A local consortium in a temporary directory, stopped when dropped.
pub struct TestDevnet {
    directory: tempfile::TempDir,
    pub nodes: Vec<NodeClient>,
    p2p_base_port: u16,
    api_base_port: u16,
}

impl std::fmt::Debug for TestDevnet {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("TestDevnet").field("directory", &self.directory.path()).finish()
    }
}

impl TestDevnet {
    /// `pactum devnet up` with `validators` validators on ports from `base_port`; the
    /// validator numbered `byzantine` (1-based) runs with corrupted signatures.
    pub fn up(validators: usize, base_port: u16, byzantine: Option<usize>) -> Self {
        Self::up_edited(validators, base_port, byzantine, |_| {})
    }

    /// Like [`TestDevnet::up`], with validator `byzantine` (1-based) misbehaving as `mode`
    /// (`bad-signatures` or `equivocate`).
    pub fn up_byzantine(validators: usize, base_port: u16, byzantine: usize, mode: &str) -> Self {
        Self::up_with(validators, base_port, Some((byzantine, mode)), |_| {})
    }

    /// Like [`TestDevnet::up`], but `edit` may change the laid-out consortium (its
    /// genesis, say) before any validator starts.
    pub fn up_edited(
        validators: usize,
        base_port: u16,
        byzantine: Option<usize>,
        edit: impl FnOnce(&Path),
    ) -> Self {
        Self::up_with(validators, base_port, byzantine.map(|index| (index, "bad-signatures")), edit)
    }

    /// [`TestDevnet::up`], with each member's admin console on ports from
    /// `base_port + 200` (`pactum devnet up --console-base-port`).
    pub fn up_with_consoles(validators: usize, base_port: u16) -> Self {
        let devnet = Self::up_with(validators, base_port, None, |_| {});
        devnet.devnet(&[
            "devnet".into(),
            "up".into(),
            "--console-base-port".into(),
            (base_port + 200).to_string(),
        ]);
        devnet
    }

    fn up_with(
        validators: usize,
        base_port: u16,
        byzantine: Option<(usize, &str)>,
        edit: impl FnOnce(&Path),
    ) -> Self {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let plan = pactum_runtime::devnet::DevnetPlan {
            directory: directory.path().to_path_buf(),
            validators,
            chain_id: pactum_types::ChainId::new("pactum-devnet").unwrap(),
            p2p_base_port: base_port,
            api_base_port: base_port + 100,
            now: unix_seconds(),
        };
        pactum_runtime::devnet::prepare(&plan).expect("the devnet layout");
        edit(directory.path());
        let devnet = Self {
            nodes: (0..validators)
                .map(|index| {
                    NodeClient::new(&format!("http://127.0.0.1:{}", base_port + 100 + index as u16))
                })
                .collect(),
            directory,
            p2p_base_port: base_port,
            api_base_port: base_port + 100,
        };
        let mut arguments =
            vec!["devnet".to_string(), "up".into(), "--validators".into(), validators.to_string()];
        if let Some((index, mode)) = byzantine {
            arguments.push("--byzantine-for-tests".into());
            arguments.push(index.to_string());
            arguments.push("--byzantine-mode-for-tests".into());
            arguments.push(mode.into());
        }
        devnet.devnet(&arguments);
        devnet
    }

    pub fn directory(&self) -> &Path {
        self.directory.path()
    }

    /// Runs `pactum devnet ARGS --dir DIR --p2p-base-port P --api-base-port A` and asserts
    /// it succeeded.
    pub fn devnet(&self, arguments: &[String]) -> Output {
        let mut command = Command::new(pactum_binary());
        command.args(arguments).arg("--dir").arg(self.directory());
        if arguments.get(1).is_some_and(|command| command == "up") {
            command
                .args(["--p2p-base-port", &self.p2p_base_port.to_string()])
                .args(["--api-base-port", &self.api_base_port.to_string()]);
            // Consoles only when a test asks for them (it names their ports).
            if !arguments.iter().any(|argument| argument == "--console-base-port") {
                command.args(["--console-base-port", "0"]);
            }
        }
        let output = command.output().expect("pactum runs");
        assert!(
            output.status.success(),
            "pactum {arguments:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Starts the given validators (1-based) again if they are not running.
    pub fn start(&self, validators: &[usize]) {
        let mut arguments = vec!["devnet".to_string(), "up".into()];
        for validator in validators {
            arguments.push("--only".into());
            arguments.push(validator.to_string());
        }
        self.devnet(&arguments);
    }

    /// Stops the given validators (1-based) with SIGTERM; all of them when empty.
    pub fn stop(&self, validators: &[usize]) {
        let mut arguments = vec!["devnet".to_string(), "down".into()];
        for validator in validators {
            arguments.push("--only".into());
            arguments.push(validator.to_string());
        }
        self.devnet(&arguments);
    }

    /// Where validator `validator` (1-based) listens for its peers.
    pub fn peer_address(&self, validator: usize) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.p2p_base_port + validator as u16 - 1))
    }

    /// Where validator `validator` (1-based) serves its REST API.
    pub fn api_address(&self, validator: usize) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.api_base_port + validator as u16 - 1))
    }

    pub fn validator_directory(&self, validator: usize) -> PathBuf {
        self.directory().join("validators").join(format!("validator-{validator}"))
    }

    /// Runs `pactum chain verify` on the data directory of each of `validators` (stopped
    /// first by the caller) and returns what each printed; a failed audit fails the test.
    pub fn verify_chains(&self, validators: &[usize]) -> Vec<String> {
        validators
            .iter()
            .map(|validator| {
                let data = self.validator_directory(*validator).join("data");
                let output = Command::new(pactum_binary())
                    .args(["chain", "verify", "--data-dir"])
                    .arg(&data)
                    .output()
                    .expect("pactum runs");
                let stdout = String::from_utf8_lossy(&output.stdout).to_string();
                assert!(
                    output.status.success(),
                    "chain verify failed on validator-{validator}: {stdout}{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                stdout
            })
            .collect()
    }

    /// The process id of validator `validator` (1-based), from its pid file.
    fn pid(&self, validator: usize) -> String {
        let pid_file = self.validator_directory(validator).join("node.pid");
        std::fs::read_to_string(&pid_file).expect("the validator runs").trim().to_string()
    }

    /// Sends `signal` (`HUP`, `TERM`, ...) to validator `validator` (1-based).
    pub fn signal(&self, validator: usize, signal: &str) {
        let pid = self.pid(validator);
        let status =
            Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("kill runs");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// kill -9 of validator `validator` (1-based); returns once the process is gone.
    pub fn kill(&self, validator: usize) {
        let pid = self.pid(validator);
        self.signal(validator, "KILL");
        wait_until(
            &format!("validator-{validator} (pid {pid}) to die"),
            Duration::from_secs(10),
            || {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                stat.is_empty()
                    || stat
                        .rsplit(')')
                        .next()
                        .is_some_and(|rest| rest.trim_start().starts_with('Z'))
            },
        );
    }

    pub fn node(&self, validator: usize) -> &NodeClient {
        &self.nodes[validator - 1]
    }

    pub fn status(&self, validator: usize) -> Value {
        self.node(validator)
            .status()
            .unwrap_or_else(|error| panic!("validator-{validator}: {error}"))
    }

    pub fn height(&self, validator: usize) -> u64 {
        self.status(validator)["height"].as_u64().expect("a height")
    }

    /// The primary's validator number (1-based), as validator `asked` sees it.
    pub fn primary(&self, asked: usize) -> usize {
        let status = self.status(asked);
        let name = status["primary"].as_str().expect("a primary").to_string();
        name.trim_start_matches("validator-").parse().expect("validator-N")
    }

    /// The address the devnet deployed sample `name` at.
    pub fn contract(&self, name: &str) -> Address {
        let text = std::fs::read_to_string(self.directory().join("contracts.json")).unwrap();
        let contracts: Value = serde_json::from_str(&text).unwrap();
        let hex = contracts["contracts"][name].as_str().expect("the sample is deployed");
        Address(pactum_client::parse_hex_array(hex, "address").unwrap())
    }

    /// The devnet client: the deployer of the samples and the token's issuer.
    pub fn issuer(&self) -> Keypair {
        load_key(&self.directory().join("clients/devnet-client/private-key.pem")).unwrap()
    }

    /// Creates `count` client identities with certificates from member `organisation`'s
    /// CA (1-based) and enrols them; returns their keys once every enrolment committed.
    pub fn enrolled_clients(&self, organisation: usize, count: usize) -> Vec<Keypair> {
        self.enrolled_identities(organisation, count, Role::Client)
            .into_iter()
            .map(|(keypair, _)| keypair)
            .collect()
    }

    /// Creates `count` identities with `role` certificates from member `organisation`'s
    /// CA (1-based) and enrols them; returns each key and the directory holding its
    /// `certificate.pem` and `private-key.pem`, once every enrolment committed.
    pub fn enrolled_identities(
        &self,
        organisation: usize,
        count: usize,
        role: Role,
    ) -> Vec<(Keypair, PathBuf)> {
        let node = self.node(1);
        let authority = self.directory().join(format!("organisations/member-{organisation}"));
        let mut identities = Vec::new();
        let mut pending = Vec::new();
        for _ in 0..count {
            static CREATED: AtomicU64 = AtomicU64::new(0);
            let number = CREATED.fetch_add(1, Ordering::Relaxed);
            let name = format!("{}-{number}", role.as_str());
            let out = self.directory().join(format!("clients/{name}"));
            let request = IssueRequest {
                role,
                name: &name,
                subject_alt_names: &[],
                at: unix_seconds(),
                days: 30,
            };
            issue_into_directory(&authority, &request, &out).expect("a certificate");
            let keypair = load_key(&out.join("private-key.pem")).unwrap();
            let pem = std::fs::read(out.join("certificate.pem")).unwrap();
            let certificate_der = certificates_from_pem(&pem).unwrap().remove(0);
            let enrol = sign_payload(
                node,
                &keypair,
                Payload::EnrolIdentity { certificate_der },
                1_000_000,
                Some(0),
            )
            .unwrap();
            pending.push(node.submit(&enrol).expect("the enrolment is admitted"));
            identities.push((keypair, out));
        }
        for hash in pending {
            let answer = node.wait_committed(&hash, Duration::from_secs(60)).unwrap();
            assert_eq!(answer["receipt"]["status"], "success", "{answer}");
        }
        identities
    }

    /// Creates `count` client identities (certificates from the first member's CA),
    /// enrols them and mints each `amount` tokens; returns their keys.
    pub fn funded_senders(&self, count: usize, amount: u128) -> Vec<Keypair> {
        let node = self.node(1);
        let senders = self.enrolled_clients(1, count);
        let mut pending = Vec::new();
        let issuer = self.issuer();
        let token = self.contract("token");
        let first_nonce = node.next_nonce(&issuer.public_key()).unwrap();
        for (nonce, sender) in (first_nonce..).zip(&senders) {
            let input = encode_arguments(&[
                format!("account:{}", sender.public_key()),
                format!("u128:{amount}"),
            ])
            .unwrap();
            let mint = sign_payload(
                node,
                &issuer,
                Payload::CallContract { contract: token, method: "mint".into(), input },
                10_000_000,
                Some(nonce),
            )
            .unwrap();
            pending.push(node.submit(&mint).expect("the mint is admitted"));
        }
        for hash in pending {
            let answer = node.wait_committed(&hash, Duration::from_secs(60)).unwrap();
            assert_eq!(answer["receipt"]["status"], "success", "{answer}");
        }
        senders
    }

    /// Every validator in `validators` reports the same last block hash and state root at
    /// the same height; returns the height. Validators commit a block moments apart, so
    /// it first waits (at most 30 s) for their heights to meet, then compares.
    pub fn assert_agree(&self, validators: &[usize]) -> u64 {
        let mut statuses: Vec<Value> = Vec::new();
        wait_until(
            &format!("validators {validators:?} to reach one height"),
            Duration::from_secs(30),
            || {
                statuses = validators.iter().map(|validator| self.status(*validator)).collect();
                statuses.iter().all(|status| status["height"] == statuses[0]["height"])
            },
        );
        for (validator, status) in validators.iter().zip(&statuses) {
            for field in ["last_block_hash", "state_root"] {
                assert_eq!(
                    status[field], statuses[0][field],
                    "validator-{validator} and validator-{} disagree on {field}",
                    validators[0]
                );
            }
        }
        statuses[0]["height"].as_u64().unwrap()
    }

    /// Waits until every validator in `validators` is at least at `height` and they agree.
    pub fn wait_agree_at(&self, validators: &[usize], height: u64, timeout: Duration) {
        wait_until(
            &format!("validators {validators:?} to reach height {height} and agree"),
            timeout,
            || {
                let statuses: Vec<Value> = validators
                    .iter()
                    .filter_map(|validator| self.node(*validator).status().ok())
                    .collect();
                statuses.len() == validators.len()
                    && statuses.iter().all(|status| {
                        status["height"].as_u64().unwrap_or(0) >= height
                            && status["height"] == statuses[0]["height"]
                            && status["last_block_hash"] == statuses[0]["last_block_hash"]
                    })
            },
        );
    }

    /// The block hash at every height up to `height`, as `validator` serves them.
    pub fn block_hashes(&self, validator: usize, height: u64) -> Vec<String> {
        (1..=height)
            .map(|current| {
                let answer = self.node(validator).get(&format!("/v1/blocks/{current}")).unwrap();
                answer.into_success("GET /v1/blocks").unwrap()["hash"].as_str().unwrap().to_string()
            })
            .collect()
    }
}

impl Drop for TestDevnet {
    fn drop(&mut self) {
        let _ = Command::new(pactum_binary())
            .args(["devnet", "down", "--dir"])
            .arg(self.directory())
            .output();
    }
}

/// Open-loop token transfers: sender `i` offers each transfer first to validator
/// `i % n + 1`, and the same signed bytes to the others when that one cannot take it
/// (down, busy), as a client should. A transfer no validator takes is offered again at
/// the sender's next turn; nothing is ever signed twice for one nonce, so every accepted
/// transfer must commit. A transfer refused under an admission rule is a bug: the load
/// thread panics naming it.
pub struct Load {
    stop: Arc<AtomicBool>,
    accepted: Arc<std::sync::Mutex<Vec<Hash>>>,
    submitted: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Load {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Load").field("submitted", &self.submitted).finish()
    }
}

impl Load {
    /// At most `rate` transfers per second in total, for at most `limit` transfers.
    pub fn start(devnet: &TestDevnet, senders: Vec<Keypair>, rate: u64, limit: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
        let submitted = Arc::new(AtomicU64::new(0));
        let nodes = devnet.nodes.clone();
        let token = devnet.contract("token");
        let chain = nodes[0].chain_id().unwrap();
        let mut nonces: Vec<u64> = senders
            .iter()
            .map(|sender| nodes[0].next_nonce(&sender.public_key()).unwrap())
            .collect();
        let (thread_stop, thread_accepted, thread_submitted) =
            (Arc::clone(&stop), Arc::clone(&accepted), Arc::clone(&submitted));
        let thread = std::thread::spawn(move || {
            let validators = Validators::new(nodes.clone()).unwrap();
            let recipient = format!("address:{}", "77".repeat(32));
            let input = encode_arguments(&[recipient, "u128:1".into()]).unwrap();
            let interval = Duration::from_micros(1_000_000 / rate.max(1));
            let mut turn = 0usize;
            while !thread_stop.load(Ordering::Relaxed)
                && thread_submitted.load(Ordering::Relaxed) < limit
            {
                let index = turn % senders.len();
                turn += 1;
                let transfer = signed_call(
                    &chain,
                    &senders[index],
                    nonces[index],
                    token,
                    "transfer",
                    &input,
                    10_000_000,
                );
                let (_, submission) =
                    validators.submit_once(&transfer.to_bytes(), index % nodes.len());
                match submission {
                    Submission::Pending | Submission::Committed => {
                        nonces[index] += 1;
                        thread_accepted.lock().unwrap().push(transfer.hash());
                        thread_submitted.fetch_add(1, Ordering::Relaxed);
                    }
                    // No validator could take it now: the same transfer goes again at
                    // this sender's next turn.
                    Submission::Retry(_) => {}
                    Submission::Refused(error) => {
                        panic!("transfer {} was refused: {error}", transfer.hash())
                    }
                }
                std::thread::sleep(interval);
            }
        });
        Self { stop, accepted, submitted, thread: Some(thread) }
    }

    pub fn submitted(&self) -> u64 {
        self.submitted.load(Ordering::Relaxed)
    }

    /// Stops the load; the hashes of every transaction a node accepted.
    pub fn finish(mut self) -> Vec<Hash> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the load thread does not panic");
        }
        std::mem::take(&mut *self.accepted.lock().unwrap())
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
