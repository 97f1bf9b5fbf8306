//! The attack test (issue 9): four validator processes under an honest load, measured
//! first alone and then while, at the same time,
//!
//! - an anonymous HTTP caller opens hundreds of event streams and reads them slowly,
//!   asks for the largest `/v1/chain` pages and runs maximal queries in a loop, from
//!   addresses of its own (127.0.0.x, x ≥ 10);
//! - an enrolled client of another organisation floods transactions of a billion gas
//!   each, calling a contract that spins until its gas runs out;
//! - an anonymous caller holds the peer ports with connections that never start TLS;
//! - validator 4 (never the primary here) floods the others with validly signed, useless
//!   COMMITs.
//!
//! It checks what must hold: honest transactions keep committing, the honest validators'
//! view does not change, and they agree. It prints the honest throughput with and
//! without the attack, and what each part of the attack achieved: figures, not
//! assertions (`docs/benchmarks.md`). `ATTACK_PHASE_SECONDS` (default 20) sets how long
//! each phase loads the ledger; `ATTACK_PARTS` (default all: `streams,chain,queries,heavy,
//! peers,flood`) which parts of the attack run.

#![allow(
    clippy::disallowed_methods,
    reason = "the attack runs on the wall clock, as the validators it attacks do"
)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pactum_client::{NodeClient, query_body, sign_payload, signed_call};
use pactum_tests::devnet::{Load, TestDevnet};
use pactum_types::crypto::Keypair;
use pactum_types::{Address, Payload, limits};
use serde_json::Value;

const HONEST_RATE: u64 = 200;
const HONEST_VALIDATORS: [usize; 3] = [1, 2, 3];
const BYZANTINE: usize = 4;
const BASE_PORT: u16 = 24_000;
const EVENT_STREAMS: usize = 400;

/// Whether the part of the attack named `part` runs (`ATTACK_PARTS`).
fn part(part: &str) -> bool {
    std::env::var("ATTACK_PARTS")
        .map_or(true, |parts| parts.split(',').any(|named| named.trim() == part))
}

fn phase_seconds() -> u64 {
    std::env::var("ATTACK_PHASE_SECONDS").ok().and_then(|text| text.parse().ok()).unwrap_or(20)
}

/// A contract whose every call loops until its gas runs out.
fn spinner() -> Vec<u8> {
    wat::parse_str(
        r#"(module
  (memory (export "memory") 1)
  (func (export "pactum_init"))
  (func (export "pactum_call") (loop $spin (br $spin))))"#,
    )
    .expect("the WAT parses")
}

/// A TCP connection to `to` from `source` (an address of this host's loopback).
fn connect_from(source: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(source, 0).into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(2))?;
    Ok(socket.into())
}

fn attacker_address(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// One HTTP/1.1 request on its own connection from `source`; the status and how many
/// bytes the answer had.
fn http(source: IpAddr, to: SocketAddr, request: &str) -> std::io::Result<(u16, usize)> {
    let mut stream = connect_from(source, to)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let status = std::str::from_utf8(&answer[..answer.len().min(12)])
        .ok()
        .and_then(|line| line.get(9..12))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok((status, answer.len()))
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: pactum\r\nConnection: close\r\n\r\n")
}

fn post_json(path: &str, body: &Value) -> String {
    let body = body.to_string();
    format!(
        "POST {path} HTTP/1.1\r\nHost: pactum\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// Sends `request` from `source` to the honest validators' APIs in turn until `stop`,
/// telling `counted` the answer's size when it was 200 and `None` otherwise (then it
/// waits 10 ms before the next).
fn repeat_request(
    stop: &AtomicBool,
    apis: &[SocketAddr],
    source: IpAddr,
    request: &str,
    counted: impl Fn(Option<usize>),
) {
    let mut turn = 0usize;
    while !stop.load(Ordering::Relaxed) {
        turn += 1;
        let to = apis[turn % HONEST_VALIDATORS.len()];
        match http(source, to, request) {
            Ok((200, bytes)) => counted(Some(bytes)),
            _ => {
                counted(None);
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// What each part of the attack did, counted as it went.
#[derive(Default)]
struct Tally {
    streams_open: AtomicU64,
    streams_refused: AtomicU64,
    stream_bytes: AtomicU64,
    chain_pages: AtomicU64,
    chain_bytes: AtomicU64,
    chain_refused: AtomicU64,
    queries: AtomicU64,
    queries_refused: AtomicU64,
    heavy_accepted: AtomicU64,
    heavy_refused: AtomicU64,
    peer_connections_held: AtomicU64,
    peer_connections_refused: AtomicU64,
}

fn count(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

struct Attack {
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    threads: Vec<JoinHandle<()>>,
    flood_switch: std::path::PathBuf,
}

impl Attack {
    fn start(devnet: &TestDevnet, heavy: Keypair, spin: Address) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let apis: Vec<SocketAddr> =
            (1..=4).map(|validator| devnet.api_address(validator)).collect();
        let peers: Vec<SocketAddr> =
            (1..=4).map(|validator| devnet.peer_address(validator)).collect();
        let mut threads = Vec::new();
        let spawn = |threads: &mut Vec<JoinHandle<()>>, body: Box<dyn FnOnce() + Send>| {
            threads.push(std::thread::spawn(body));
        };

        // Hundreds of event streams, spread over the honest validators and over ten
        // addresses (each address within the per-address connection cap), read slowly.
        if part("streams") {
            let (stop, tally, apis) = (Arc::clone(&stop), Arc::clone(&tally), apis.clone());
            spawn(
                &mut threads,
                Box::new(move || {
                    let mut streams = Vec::new();
                    for index in 0..EVENT_STREAMS {
                        let source = attacker_address(10 + (index % 10) as u8);
                        let to = apis[index % HONEST_VALIDATORS.len()];
                        let opened = connect_from(source, to).and_then(|mut stream| {
                            stream.write_all(get("/v1/events").as_bytes())?;
                            stream.set_read_timeout(Some(Duration::from_millis(5)))?;
                            Ok(stream)
                        });
                        if let Ok(stream) = opened {
                            streams.push(stream);
                        }
                    }
                    let mut buffer = vec![0u8; 4096];
                    let mut refused = vec![false; streams.len()];
                    while !stop.load(Ordering::Relaxed) {
                        for (stream, refused) in streams.iter_mut().zip(refused.iter_mut()) {
                            if let Ok(read) = stream.read(&mut buffer) {
                                if read > 0
                                    && !*refused
                                    && !buffer.starts_with(b"HTTP/1.1 200")
                                    && buffer.starts_with(b"HTTP/1.1 ")
                                {
                                    *refused = true;
                                }
                                tally.stream_bytes.fetch_add(read as u64, Ordering::Relaxed);
                            }
                        }
                        let refused_now = refused.iter().filter(|refused| **refused).count();
                        tally.streams_refused.store(refused_now as u64, Ordering::Relaxed);
                        tally
                            .streams_open
                            .store((streams.len() - refused_now) as u64, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }),
            );
        }

        // The largest `/v1/chain` pages, two callers.
        let page = format!("/v1/chain?from=1&limit={}", limits::API_CHAIN_PAGE_BLOCKS_MAX);
        for caller in (0..2u8).filter(|_| part("chain")) {
            let (stop, tally, apis, request) =
                (Arc::clone(&stop), Arc::clone(&tally), apis.clone(), get(&page));
            spawn(
                &mut threads,
                Box::new(move || {
                    repeat_request(&stop, &apis, attacker_address(20 + caller), &request, |ok| {
                        match ok {
                            Some(bytes) => {
                                tally.chain_pages.fetch_add(1, Ordering::Relaxed);
                                tally.chain_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                            }
                            None => {
                                tally.chain_refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    });
                }),
            );
        }

        // Maximal queries (the query gas cap, all of it spent spinning), two callers.
        let body = query_body(None, spin, "spin", &[], limits::QUERY_GAS_MAX, None, 0);
        for caller in (0..2u8).filter(|_| part("queries")) {
            let (stop, tally, apis, request) = (
                Arc::clone(&stop),
                Arc::clone(&tally),
                apis.clone(),
                post_json("/v1/query", &body),
            );
            spawn(
                &mut threads,
                Box::new(move || {
                    repeat_request(&stop, &apis, attacker_address(30 + caller), &request, |ok| {
                        let counter =
                            if ok.is_some() { &tally.queries } else { &tally.queries_refused };
                        counter.fetch_add(1, Ordering::Relaxed);
                    });
                }),
            );
        }

        // A billion gas a transaction from one enrolled client of member 2.
        if part("heavy") {
            let (stop, tally) = (Arc::clone(&stop), Arc::clone(&tally));
            let nodes: Vec<NodeClient> =
                HONEST_VALIDATORS.iter().map(|validator| devnet.node(*validator).clone()).collect();
            spawn(
                &mut threads,
                Box::new(move || {
                    let chain = nodes[0].chain_id().unwrap();
                    let mut nonce = nodes[0].next_nonce(&heavy.public_key()).unwrap();
                    let gas = limits::TRANSACTION_GAS_MAX;
                    let mut turn = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        turn += 1;
                        let call = signed_call(&chain, &heavy, nonce, spin, "spin", &[], gas);
                        if nodes[turn % nodes.len()].submit(&call).is_ok() {
                            nonce += 1;
                            tally.heavy_accepted.fetch_add(1, Ordering::Relaxed);
                        } else {
                            tally.heavy_refused.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }),
            );
        }

        // Peer ports held with connections that never start TLS, from twelve addresses,
        // each opened again as soon as the validator closes it.
        if part("peers") {
            let (stop, tally) = (Arc::clone(&stop), Arc::clone(&tally));
            spawn(
                &mut threads,
                Box::new(move || {
                    let mut held: Vec<(usize, u8, TcpStream)> = Vec::new();
                    let wanted = limits::PENDING_HANDSHAKES_PER_ADDRESS_MAX;
                    while !stop.load(Ordering::Relaxed) {
                        held.retain_mut(|(_, _, stream)| {
                            stream.set_nonblocking(true).is_ok()
                                && matches!(stream.read(&mut [0u8; 1]), Err(ref error) if error.kind() == std::io::ErrorKind::WouldBlock)
                        });
                        for (peer, to) in peers.iter().enumerate() {
                            for last in 40..52u8 {
                                let have = held
                                    .iter()
                                    .filter(|(p, l, _)| *p == peer && *l == last)
                                    .count();
                                for _ in have..wanted {
                                    match connect_from(attacker_address(last), *to) {
                                        Ok(stream) => held.push((peer, last, stream)),
                                        Err(_) => {
                                            tally
                                                .peer_connections_refused
                                                .fetch_add(1, Ordering::Relaxed);
                                        }
                                    }
                                }
                            }
                        }
                        tally.peer_connections_held.store(held.len() as u64, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }),
            );
        }

        // Validator 4 floods the others with useless signed COMMITs.
        let flood_switch = devnet
            .validator_directory(BYZANTINE)
            .join("data")
            .join(pactum_runtime::FLOOD_SWITCH_FILE);
        if part("flood") {
            std::fs::write(&flood_switch, b"on").expect("the flood switch");
        }
        Self { stop, tally, threads, flood_switch }
    }

    fn stop(self) -> Arc<Tally> {
        let _ = std::fs::remove_file(&self.flood_switch);
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("an attack thread does not panic");
        }
        self.tally
    }
}

/// Honest transfers at [`HONEST_RATE`] for the phase; every accepted one must commit.
/// Returns (committed, seconds from the first submission until the last commit).
fn honest_phase(devnet: &TestDevnet, senders: Vec<Keypair>) -> (usize, f64) {
    let started = Instant::now();
    let load = Load::start(devnet, senders, HONEST_RATE, u64::MAX);
    std::thread::sleep(Duration::from_secs(phase_seconds()));
    let accepted = load.finish();
    for hash in &accepted {
        let answer = devnet
            .node(1)
            .wait_committed(hash, Duration::from_secs(180))
            .unwrap_or_else(|error| panic!("honest transfer {hash} did not commit: {error}"));
        assert_eq!(answer["receipt"]["status"], "success", "{answer}");
    }
    (accepted.len(), started.elapsed().as_secs_f64())
}

fn views(devnet: &TestDevnet) -> Vec<u64> {
    HONEST_VALIDATORS
        .iter()
        .map(|validator| devnet.status(*validator)["view"].as_u64().expect("a view"))
        .collect()
}

#[test]
fn an_attack_on_every_entry_point_at_once_does_not_stop_honest_commits_or_change_the_view() {
    let devnet = TestDevnet::up_byzantine(4, BASE_PORT, BYZANTINE, "flood-useless");
    // Each phase has senders of its own, as many as the other's.
    let mut alone_senders = devnet.funded_senders(16, 1_000_000_000);
    let attacked_senders = alone_senders.split_off(8);
    let heavy = devnet.enrolled_clients(2, 1).remove(0);
    let node = devnet.node(1);
    let deploy = sign_payload(
        node,
        &heavy,
        Payload::DeployContract { code: spinner(), init_input: Vec::new() },
        10_000_000,
        None,
    )
    .unwrap();
    let spin = pactum_client::deployed_address(&heavy.public_key(), deploy.unsigned.nonce);
    let hash = node.submit(&deploy).expect("the spinner's deployment is admitted");
    let answer = node.wait_committed(&hash, Duration::from_secs(60)).unwrap();
    assert_eq!(answer["receipt"]["status"], "success", "{answer}");

    let (alone, alone_seconds) = honest_phase(&devnet, alone_senders);
    let views_before = views(&devnet);
    let height_before = devnet.height(1);

    let attack = Attack::start(&devnet, heavy, spin);
    let (attacked, attacked_seconds) = honest_phase(&devnet, attacked_senders);
    let height_attacked = devnet.height(1);
    let views_during = views(&devnet);
    let tally = attack.stop();

    let alone_rate = alone as f64 / alone_seconds;
    let attacked_rate = attacked as f64 / attacked_seconds;
    println!("attack: honest load {HONEST_RATE}/s offered for {} s per phase", phase_seconds());
    println!(
        "attack: without the attack {alone} transfers committed in {alone_seconds:.1} s = {alone_rate:.0}/s"
    );
    println!(
        "attack: under the attack   {attacked} transfers committed in {attacked_seconds:.1} s = {attacked_rate:.0}/s ({:+.0}%), {} blocks",
        (attacked_rate / alone_rate - 1.0) * 100.0,
        height_attacked - height_before
    );
    println!(
        "attack: event streams open {} (refused {}, {} bytes read); /v1/chain pages {} ({} MB, refused {}); maximal queries {} (refused {})",
        count(&tally.streams_open),
        count(&tally.streams_refused),
        count(&tally.stream_bytes),
        count(&tally.chain_pages),
        count(&tally.chain_bytes) / 1_000_000,
        count(&tally.chain_refused),
        count(&tally.queries),
        count(&tally.queries_refused),
    );
    println!(
        "attack: billion-gas transactions accepted {} (refused {}); peer-port connections held {} (refused {}); flood {} signed COMMITs/s to each validator",
        count(&tally.heavy_accepted),
        count(&tally.heavy_refused),
        count(&tally.peer_connections_held),
        count(&tally.peer_connections_refused),
        if part("flood") { pactum_runtime::FLOOD_MESSAGES_PER_SECOND } else { 0 },
    );
    for validator in HONEST_VALIDATORS {
        let text = devnet.node(validator).get_text("/metrics").unwrap();
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| {
                line.starts_with("pactum_view_changes_total")
                    || line.starts_with("pactum_peer_frames_dropped_total")
                    || line.starts_with("pactum_evidence_total")
                    || line.starts_with("pactum_transport_rejections_total")
            })
            .collect();
        println!("attack: validator-{validator}: {}", lines.join("; "));
    }

    assert!(attacked > 0, "no honest transfer committed under the attack");
    assert_eq!(views_during, views_before, "the attack caused a view change");
    devnet.assert_agree(&HONEST_VALIDATORS);
}
