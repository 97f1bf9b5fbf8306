//! The node's counters, gauges and the commit-latency histogram, rendered as Prometheus
//! text for `GET /metrics`. Plain atomics: every stage updates them without a lock.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use pactum_mempool::RejectionCode;

/// Upper bounds of the commit-latency buckets, in seconds.
pub const COMMIT_LATENCY_BUCKETS_SECONDS: [f64; 12] =
    [0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0];

#[derive(Debug, Default)]
pub struct Metrics {
    pub height: AtomicU64,
    pub view: AtomicU64,
    /// The epoch of the validator set (ADR 0021).
    pub epoch: AtomicU64,
    pub view_changes: AtomicU64,
    pub stable_checkpoint: AtomicU64,
    pub blocks_committed: AtomicU64,
    pub transactions_committed: AtomicU64,
    pub admissions: AtomicU64,
    pub rejections: [AtomicU64; RejectionCode::ALL.len()],
    pub requests_refused: AtomicU64,
    /// Transactions the replica relayed to the primary after its request timer expired.
    pub requests_relayed: AtomicU64,
    pub state_transfers: AtomicU64,
    /// State transfers that gave up (no peer served blocks that check out); the replica
    /// asks again.
    pub state_transfers_failed: AtomicU64,
    /// Synced writes of the consensus log (one per group of consensus steps).
    pub consensus_log_writes: AtomicU64,
    /// Consensus messages the transport refused to queue (a peer's queue full).
    pub consensus_sends_dropped: AtomicU64,
    /// Gossip frames the transport refused to queue (a peer's queue full).
    pub gossip_frames_dropped: AtomicU64,
    /// Synced writes of the mempool log (one per admission batch with client transactions).
    pub mempool_log_syncs: AtomicU64,
    /// Microseconds spent in synced mempool-log writes.
    pub mempool_log_sync_micros: AtomicU64,
    /// Mempool log writes that failed (the batch's clients were told to retry).
    pub mempool_log_failures: AtomicU64,
    /// Transactions re-admitted from the mempool log at start.
    pub mempool_recovered: AtomicU64,
    /// Transactions dropped after waiting too long behind a missing nonce.
    pub transactions_expired: AtomicU64,
    /// Resubmissions of a transaction already committed (answered with its place).
    pub resubmitted_committed: AtomicU64,
    latency_buckets: [AtomicU64; COMMIT_LATENCY_BUCKETS_SECONDS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    evidence: Mutex<BTreeMap<&'static str, u64>>,
    /// Peer frames dropped unread (not evidence: an honest peer's late answer too).
    dropped: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn record_rejection(&self, code: RejectionCode) {
        self.rejections[code.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts evidence of `kind` (also used for frames that do not decode).
    pub fn record_evidence(&self, kind: &'static str) {
        *self.evidence.lock().expect("metrics lock is never poisoned").entry(kind).or_default() +=
            1;
    }

    /// Counts a peer frame of `kind` dropped unread.
    pub fn record_dropped(&self, kind: &'static str) {
        *self.dropped.lock().expect("metrics lock is never poisoned").entry(kind).or_default() += 1;
    }

    pub fn evidence_total(&self) -> u64 {
        self.evidence.lock().expect("metrics lock is never poisoned").values().sum()
    }

    pub fn evidence_counts(&self) -> BTreeMap<&'static str, u64> {
        self.evidence.lock().expect("metrics lock is never poisoned").clone()
    }

    pub fn record_commit_latency(&self, seconds: f64) {
        for (bound, bucket) in COMMIT_LATENCY_BUCKETS_SECONDS.iter().zip(&self.latency_buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// Prometheus text exposition. `mempool` is the pending count; `peers` each peer's
    /// name and whether it is connected.
    pub fn render(
        &self,
        mempool: usize,
        peers: &[(String, bool)],
        peer_rejections: &[(&'static str, u64)],
    ) -> String {
        let mut out = String::new();
        let load = |value: &AtomicU64| value.load(Ordering::Relaxed);
        let mut gauge = |name: &str, help: &str, kind: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        gauge("pactum_height", "Height of the last executed block.", "gauge", load(&self.height));
        gauge("pactum_view", "Current PBFT view.", "gauge", load(&self.view));
        gauge("pactum_epoch", "Current validator-set epoch.", "gauge", load(&self.epoch));
        gauge(
            "pactum_view_changes_total",
            "Views this node entered after the first.",
            "counter",
            load(&self.view_changes),
        );
        gauge(
            "pactum_stable_checkpoint",
            "Sequence number of the last stable checkpoint.",
            "gauge",
            load(&self.stable_checkpoint),
        );
        gauge(
            "pactum_blocks_committed_total",
            "Blocks executed and committed by this node.",
            "counter",
            load(&self.blocks_committed),
        );
        gauge(
            "pactum_transactions_committed_total",
            "Transactions in blocks committed by this node.",
            "counter",
            load(&self.transactions_committed),
        );
        gauge("pactum_mempool_transactions", "Pending transactions.", "gauge", mempool as u64);
        gauge(
            "pactum_admissions_total",
            "Transactions admitted to the mempool.",
            "counter",
            load(&self.admissions),
        );
        gauge(
            "pactum_consensus_requests_refused_total",
            "Transactions the replica's request queue refused (retried later).",
            "counter",
            load(&self.requests_refused),
        );
        gauge(
            "pactum_consensus_requests_relayed_total",
            "Transactions relayed to the primary because a backup's request timer expired.",
            "counter",
            load(&self.requests_relayed),
        );
        gauge(
            "pactum_state_transfers_total",
            "State transfers completed.",
            "counter",
            load(&self.state_transfers),
        );
        gauge(
            "pactum_state_transfers_failed_total",
            "State transfers that gave up (the replica asks again).",
            "counter",
            load(&self.state_transfers_failed),
        );
        gauge(
            "pactum_consensus_log_writes_total",
            "Synced writes of the consensus log (one per group of consensus steps).",
            "counter",
            load(&self.consensus_log_writes),
        );
        gauge(
            "pactum_gossip_frames_dropped_total",
            "Gossip frames a peer's full send queue refused.",
            "counter",
            load(&self.gossip_frames_dropped),
        );
        gauge(
            "pactum_consensus_sends_dropped_total",
            "Consensus messages a peer's full send queue refused (retransmission repeats them).",
            "counter",
            load(&self.consensus_sends_dropped),
        );
        gauge(
            "pactum_mempool_log_syncs_total",
            "Synced writes of the mempool log (one per admission batch with client transactions).",
            "counter",
            load(&self.mempool_log_syncs),
        );
        gauge(
            "pactum_mempool_log_sync_microseconds_total",
            "Time spent in synced mempool-log writes, in microseconds (divide by the syncs for the mean).",
            "counter",
            load(&self.mempool_log_sync_micros),
        );
        gauge(
            "pactum_mempool_log_failures_total",
            "Mempool log writes that failed; their clients were told to retry.",
            "counter",
            load(&self.mempool_log_failures),
        );
        gauge(
            "pactum_mempool_recovered_total",
            "Transactions re-admitted from the mempool log when the node started.",
            "counter",
            load(&self.mempool_recovered),
        );
        gauge(
            "pactum_transactions_expired_total",
            "Transactions dropped after waiting too long behind a missing nonce.",
            "counter",
            load(&self.transactions_expired),
        );
        gauge(
            "pactum_resubmitted_committed_total",
            "Resubmissions of an already committed transaction (answered with its place).",
            "counter",
            load(&self.resubmitted_committed),
        );
        let _ = writeln!(
            out,
            "# HELP pactum_rejections_total Transactions refused at admission, by rule.\n\
             # TYPE pactum_rejections_total counter"
        );
        for code in RejectionCode::ALL {
            let _ = writeln!(
                out,
                "pactum_rejections_total{{reason=\"{}\"}} {}",
                code.as_str(),
                load(&self.rejections[code.index()])
            );
        }
        let _ = writeln!(
            out,
            "# HELP pactum_evidence_total Byzantine or out-of-place input from peers, by kind.\n\
             # TYPE pactum_evidence_total counter"
        );
        for (kind, count) in self.evidence_counts() {
            let _ = writeln!(out, "pactum_evidence_total{{kind=\"{kind}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "# HELP pactum_peer_frames_dropped_total Peer frames dropped unread: a block request while one is served, blocks nobody asked for.\n\
             # TYPE pactum_peer_frames_dropped_total counter"
        );
        let dropped = self.dropped.lock().expect("metrics lock is never poisoned").clone();
        for (kind, count) in dropped {
            let _ = writeln!(out, "pactum_peer_frames_dropped_total{{kind=\"{kind}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "# HELP pactum_peer_connected Whether this node holds a live connection to the peer.\n\
             # TYPE pactum_peer_connected gauge"
        );
        for (peer, connected) in peers {
            let _ =
                writeln!(out, "pactum_peer_connected{{peer=\"{peer}\"}} {}", u8::from(*connected));
        }
        let _ = writeln!(
            out,
            "# HELP pactum_peer_rejections_total Connections refused by the transport, by reason.\n\
             # TYPE pactum_peer_rejections_total counter"
        );
        for (reason, count) in peer_rejections {
            let _ = writeln!(out, "pactum_peer_rejections_total{{reason=\"{reason}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "# HELP pactum_commit_latency_seconds From admission at this node to commit.\n\
             # TYPE pactum_commit_latency_seconds histogram"
        );
        for (bound, bucket) in COMMIT_LATENCY_BUCKETS_SECONDS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "pactum_commit_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                load(bucket)
            );
        }
        let count = load(&self.latency_count);
        let _ = writeln!(out, "pactum_commit_latency_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = load(&self.latency_sum_micros) as f64 / 1e6;
        let _ = writeln!(out, "pactum_commit_latency_seconds_sum {sum}");
        let _ = writeln!(out, "pactum_commit_latency_seconds_count {count}");
        out
    }
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `pactum_certificate_expiry_seconds`, one sample per watched certificate: the seconds
/// until it expires at `now` (negative once expired).
pub fn render_certificate_expiry(
    out: &mut String,
    certificates: &[crate::expiry::WatchedCertificate],
    now: i64,
) {
    let _ = writeln!(
        out,
        "# HELP pactum_certificate_expiry_seconds Seconds until a certificate this validator \
         depends on expires (negative once expired).\n\
         # TYPE pactum_certificate_expiry_seconds gauge"
    );
    for certificate in certificates {
        let _ = writeln!(
            out,
            "pactum_certificate_expiry_seconds{{kind=\"{}\",name=\"{}\",organisation=\"{}\",serial=\"{}\"}} {}",
            certificate.kind.as_str(),
            label(&certificate.name),
            label(&certificate.organisation),
            label(&certificate.serial),
            certificate.seconds_left(now)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_expiry_is_one_labelled_gauge_per_certificate() {
        let certificate = crate::expiry::WatchedCertificate {
            kind: crate::expiry::CertificateKind::MemberCa,
            name: "Org \"A\"".into(),
            organisation: "Org \"A\"".into(),
            serial: "4d01".into(),
            not_after: 1_000,
        };
        let mut out = String::new();
        render_certificate_expiry(&mut out, &[certificate], 1_500);
        assert!(
            out.contains(
                "pactum_certificate_expiry_seconds{kind=\"member_ca\",name=\"Org \\\"A\\\"\",organisation=\"Org \\\"A\\\"\",serial=\"4d01\"} -500"
            ),
            "{out}"
        );
    }

    #[test]
    fn the_histogram_is_cumulative_and_rejections_are_labelled() {
        let metrics = Metrics::default();
        metrics.record_commit_latency(0.04);
        metrics.record_commit_latency(0.6);
        metrics.record_rejection(RejectionCode::BadSignature);
        metrics.record_evidence("bad_signature");
        let text = metrics.render(3, &[("validator-2".into(), true)], &[("unknown_issuer", 2)]);
        assert!(text.contains("pactum_peer_rejections_total{reason=\"unknown_issuer\"} 2"));
        assert!(text.contains("pactum_commit_latency_seconds_bucket{le=\"0.05\"} 1"), "{text}");
        assert!(text.contains("pactum_commit_latency_seconds_bucket{le=\"1\"} 2"), "{text}");
        assert!(text.contains("pactum_commit_latency_seconds_count 2"));
        assert!(text.contains("pactum_rejections_total{reason=\"bad_signature\"} 1"));
        assert!(text.contains("pactum_evidence_total{kind=\"bad_signature\"} 1"));
        assert!(text.contains("pactum_peer_connected{peer=\"validator-2\"} 1"));
        assert!(text.contains("pactum_mempool_transactions 3"));
    }
}
