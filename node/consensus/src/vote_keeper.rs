//! Votes per sequence number, and the thresholds they reach, each reported exactly once.
//!
//! - PREPAREs are kept per (sequence, view), one per sender; 2f matching ones from
//!   backups (with the PRE-PREPARE the caller holds) make the replica prepared (§4.2).
//! - COMMITs are kept per sequence, one per sender: the one of the highest view that
//!   sender voted in. 2f + 1 matching COMMITs of one view are a commit certificate: f + 1
//!   honest replicas prepared that batch, so no view can order anything else at that
//!   sequence number, whichever view this replica is in. That is how every decision is
//!   made, in the current view or learned from another.
//!
//! The keeper knows nothing of views entered or batches; the replica bounds what it
//! hands in (the window, the views it keeps) and prunes it at stable checkpoints.

use std::collections::{BTreeMap, BTreeSet};

use pactum_types::{Hash, Signature};

use crate::certificate::CommitCertificate;
use crate::config::Config;
use crate::ids::{ReplicaId, Sequence, SignerSignature, View};

/// What became of a vote handed to the keeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// A new vote.
    New,
    /// The same vote again.
    Duplicate,
    /// The sender already voted for another digest at that (sequence, view): evidence.
    Conflict,
    /// A COMMIT of a view below the one the sender's kept vote is from.
    Superseded,
}

#[derive(Debug, Default)]
pub(crate) struct VoteKeeper {
    prepares: BTreeMap<(Sequence, View), BTreeMap<ReplicaId, (Hash, Signature)>>,
    prepared_reported: BTreeSet<(Sequence, View)>,
    commits: BTreeMap<Sequence, BTreeMap<ReplicaId, (View, Hash, Signature)>>,
    committed_reported: BTreeSet<Sequence>,
    equivocation_reported: BTreeSet<(Sequence, View)>,
}

impl VoteKeeper {
    pub fn add_prepare(
        &mut self,
        sequence: Sequence,
        view: View,
        sender: ReplicaId,
        digest: Hash,
        signature: Signature,
    ) -> Recorded {
        let votes = self.prepares.entry((sequence, view)).or_default();
        match votes.get(&sender) {
            Some((existing, _)) if *existing == digest => Recorded::Duplicate,
            Some(_) => Recorded::Conflict,
            None => {
                votes.insert(sender, (digest, signature));
                Recorded::New
            }
        }
    }

    /// The 2f matching PREPAREs from backups of `view` for `digest`, the first time there
    /// are that many; `None` before and after.
    pub fn prepared(
        &mut self,
        config: &Config,
        sequence: Sequence,
        view: View,
        digest: Hash,
    ) -> Option<Vec<SignerSignature>> {
        if self.prepared_reported.contains(&(sequence, view)) {
            return None;
        }
        let primary = config.primary(view);
        let needed = config.quorum() - 1;
        let matching: Vec<SignerSignature> = self
            .prepares
            .get(&(sequence, view))?
            .iter()
            .filter(|(sender, (vote, _))| **sender != primary && *vote == digest)
            .map(|(sender, (_, signature))| (*sender, *signature))
            .take(needed)
            .collect();
        if matching.len() < needed {
            return None;
        }
        self.prepared_reported.insert((sequence, view));
        Some(matching)
    }

    /// Whether f + 1 distinct replicas prepared a digest other than `digest` at
    /// `(sequence, view)`, reported once: at least one of them is honest, and an honest
    /// replica prepares only what the primary pre-prepared to it, so the primary signed two
    /// different PRE-PREPAREs.
    pub fn equivocation_shown(
        &mut self,
        config: &Config,
        sequence: Sequence,
        view: View,
        digest: Hash,
    ) -> bool {
        let primary = config.primary(view);
        let against = self.prepares.get(&(sequence, view)).map_or(0, |votes| {
            votes
                .iter()
                .filter(|(sender, (vote, _))| **sender != primary && *vote != digest)
                .count()
        });
        against >= config.weak_quorum() && self.equivocation_reported.insert((sequence, view))
    }

    /// Records a COMMIT of any view; returns the commit certificate the first time 2f + 1
    /// replicas agree on one (view, digest) at `sequence`.
    pub fn add_commit(
        &mut self,
        config: &Config,
        sequence: Sequence,
        view: View,
        sender: ReplicaId,
        digest: Hash,
        signature: Signature,
    ) -> (Recorded, Option<CommitCertificate>) {
        let votes = self.commits.entry(sequence).or_default();
        let recorded = match votes.get(&sender) {
            Some((kept, existing, _)) if *kept == view && *existing == digest => {
                Recorded::Duplicate
            }
            Some((kept, _, _)) if *kept == view => Recorded::Conflict,
            Some((kept, _, _)) if *kept > view => Recorded::Superseded,
            _ => {
                votes.insert(sender, (view, digest, signature));
                Recorded::New
            }
        };
        if recorded != Recorded::New || self.committed_reported.contains(&sequence) {
            return (recorded, None);
        }
        let commits: Vec<SignerSignature> = votes
            .iter()
            .filter(|(_, (kept, vote, _))| *kept == view && *vote == digest)
            .map(|(sender, (_, _, signature))| (*sender, *signature))
            .take(config.quorum())
            .collect();
        if commits.len() < config.quorum() {
            return (recorded, None);
        }
        self.committed_reported.insert(sequence);
        (recorded, Some(CommitCertificate { view, sequence, digest, commits }))
    }

    /// Forgets everything at or below `sequence` (delivered, or below a stable checkpoint).
    pub fn forget_through(&mut self, sequence: Sequence) {
        let above = sequence.next();
        self.prepares = self.prepares.split_off(&(above, View::ZERO));
        self.prepared_reported = self.prepared_reported.split_off(&(above, View::ZERO));
        self.equivocation_reported = self.equivocation_reported.split_off(&(above, View::ZERO));
        self.commits = self.commits.split_off(&above);
        self.committed_reported = self.committed_reported.split_off(&above);
    }

    /// Forgets everything above `sequence` (past the epoch's last sequence number).
    pub fn forget_above(&mut self, sequence: Sequence) {
        let above = sequence.next();
        self.prepares.split_off(&(above, View::ZERO));
        self.prepared_reported.split_off(&(above, View::ZERO));
        self.equivocation_reported.split_off(&(above, View::ZERO));
        self.commits.split_off(&above);
        self.committed_reported.split_off(&above);
    }

    /// `sequence` is decided already (restored from the log): no certificate is reported
    /// for it again.
    pub fn mark_decided(&mut self, sequence: Sequence) {
        self.committed_reported.insert(sequence);
    }

    /// Forgets PREPAREs of views below `view` (a replica votes only in its current view).
    pub fn forget_prepares_below(&mut self, view: View) {
        self.prepares.retain(|(_, kept), _| *kept >= view);
        self.prepared_reported.retain(|(_, kept)| *kept >= view);
        self.equivocation_reported.retain(|(_, kept)| *kept >= view);
    }

    /// The lowest and highest sequence numbers the keeper holds votes for.
    pub fn sequence_range(&self) -> Option<(Sequence, Sequence)> {
        let low = [
            self.prepares.keys().next().map(|(sequence, _)| *sequence),
            self.commits.keys().next().copied(),
        ]
        .into_iter()
        .flatten()
        .min()?;
        let high = [
            self.prepares.keys().next_back().map(|(sequence, _)| *sequence),
            self.commits.keys().next_back().copied(),
        ]
        .into_iter()
        .flatten()
        .max()?;
        Some((low, high))
    }

    /// Views the keeper holds PREPAREs of.
    pub fn prepare_views(&self) -> BTreeSet<View> {
        self.prepares.keys().map(|(_, view)| *view).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            members: vec![0, 1, 2, 3],
            epoch: 0,
            start: Sequence::ZERO,
            start_digest: Hash::ZERO,
            chain: Hash::ZERO,
            checkpoint_interval: 2,
            watermark_window: 4,
            retransmit_interval_ms: 100,
            request_timeout_ms: 100,
            view_change_timeout_ms: 100,
            view_change_timeout_max_ms: 100,
            batch_requests_max: 1,
            batch_bytes_max: 100,
            batch_timeout_ms: 1,
            batch_weight_max: u64::MAX,
            weight_ahead_max: u64::MAX,
            timestamp_skew_max_ms: 10_000,
            delivery_backlog_max: 4,
            mutation: None,
        }
    }

    const D: Hash = Hash([1; 32]);
    const E: Hash = Hash([2; 32]);
    const SIGNATURE: Signature = Signature([0; 64]);

    #[test]
    fn a_commit_certificate_is_reported_once_and_only_for_one_view_and_digest() {
        let config = config();
        let mut keeper = VoteKeeper::default();
        let s = Sequence(1);
        assert_eq!(keeper.add_commit(&config, s, View(0), 0, D, SIGNATURE).1, None);
        assert_eq!(keeper.add_commit(&config, s, View(1), 1, D, SIGNATURE).1, None, "other view");
        assert_eq!(keeper.add_commit(&config, s, View(0), 2, E, SIGNATURE).1, None, "other digest");
        let (recorded, none) = keeper.add_commit(&config, s, View(0), 0, E, SIGNATURE);
        assert_eq!((recorded, none), (Recorded::Conflict, None));
        assert_eq!(keeper.add_commit(&config, s, View(0), 3, D, SIGNATURE).1, None);
        // Replica 1 moves its vote to view 0? No: a lower view never replaces a higher one.
        assert_eq!(keeper.add_commit(&config, s, View(0), 1, D, SIGNATURE).0, Recorded::Superseded);
        // Replica 2 votes again in view 1 for D: views 0 has 0 and 3, view 1 has 1 and 2.
        keeper.add_commit(&config, s, View(1), 2, D, SIGNATURE);
        let (_, certificate) = keeper.add_commit(&config, s, View(1), 3, D, SIGNATURE);
        let certificate = certificate.expect("three COMMITs of view 1 for D");
        assert_eq!((certificate.view, certificate.digest), (View(1), D));
        assert_eq!(
            certificate.commits.iter().map(|(replica, _)| *replica).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(keeper.add_commit(&config, s, View(1), 0, D, SIGNATURE).1, None, "once");
    }

    #[test]
    fn prepared_needs_2f_backups_and_is_reported_once() {
        let config = config();
        let mut keeper = VoteKeeper::default();
        let (s, v) = (Sequence(1), View(1));
        // Replica 1 is the primary of view 1: its PREPARE does not count.
        keeper.add_prepare(s, v, 1, D, SIGNATURE);
        keeper.add_prepare(s, v, 2, D, SIGNATURE);
        assert_eq!(keeper.prepared(&config, s, v, D), None);
        assert_eq!(keeper.add_prepare(s, v, 2, E, SIGNATURE), Recorded::Conflict);
        keeper.add_prepare(s, v, 3, D, SIGNATURE);
        assert_eq!(keeper.prepared(&config, s, v, E), None, "other digest");
        let prepares = keeper.prepared(&config, s, v, D).expect("2f backups");
        assert_eq!(prepares.iter().map(|(replica, _)| *replica).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(keeper.prepared(&config, s, v, D), None, "once");
        keeper.forget_through(s);
        assert_eq!(keeper.sequence_range(), None);
    }
}
