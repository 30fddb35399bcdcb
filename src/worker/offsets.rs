//! In-order offset tracking: which input offset may be stored, given which records are done.
//!
//! Records of a partition finish out of order (their outputs are acknowledged by the broker at
//! different times), but the offset stored for a partition must never pass a record that is
//! not finished: that is how a record whose output failed is retried instead of skipped while
//! later offsets move on (Vector's known gap). This module owns that rule and nothing else; it
//! knows no Kafka types, so it is tested alone.
//!
//! [`Ledger`] adds the assignment generations: a partition revoked and assigned again starts a
//! new generation, and records or acknowledgements of an earlier one touch nothing.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Default)]
struct PartitionState {
    /// Offsets consumed whose outputs are not acknowledged yet.
    pending: BTreeSet<i64>,
    /// One past the highest offset consumed.
    next: i64,
    /// The last offset handed out to store, to avoid storing the same value twice.
    stored: Option<i64>,
}

/// Tracks in-flight records per partition.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<i32, PartitionState>,
}

impl OffsetTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// A record was consumed and its outputs are on their way.
    pub fn begin(&mut self, partition: i32, offset: i64) {
        let state = self.partitions.entry(partition).or_insert_with(|| PartitionState {
            // Consumption of a partition starts at its committed offset: storing it again
            // would say nothing new.
            stored: Some(offset),
            ..PartitionState::default()
        });
        state.pending.insert(offset);
        state.next = state.next.max(offset + 1);
    }

    /// A record's outputs are all acknowledged. Returns the offset to store for its partition
    /// (the next offset to read), when that moved forward.
    pub fn complete(&mut self, partition: i32, offset: i64) -> Option<i64> {
        let state = self.partitions.get_mut(&partition)?;
        state.pending.remove(&offset);
        let committable = state.pending.first().copied().unwrap_or(state.next);
        if state.stored.is_some_and(|s| s >= committable) {
            return None;
        }
        state.stored = Some(committable);
        Some(committable)
    }

    /// Records still in flight, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.pending.len()).sum()
    }

    /// Forgets partitions this worker no longer owns (after a revocation).
    pub fn forget(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }
}

/// The offsets ledger the worker keeps: in-flight records per partition, and each
/// partition's assignment generation.
///
/// A generation is bumped when a partition is revoked: records and acknowledgements of an
/// earlier assignment must not touch the offsets of a later one (the new owner, or this worker
/// again after a reassignment, consumes them from the last commit).
#[derive(Debug, Default)]
pub struct Ledger {
    tracker: OffsetTracker,
    generations: HashMap<i32, u64>,
}

impl Ledger {
    pub fn new() -> Self {
        Self::default()
    }

    /// The partition's current assignment generation (0 until its first revocation).
    pub fn generation(&self, partition: i32) -> u64 {
        self.generations.get(&partition).copied().unwrap_or(0)
    }

    /// Whether a record consumed in `generation` still belongs to this worker's assignment.
    pub fn is_current(&self, partition: i32, generation: u64) -> bool {
        self.generation(partition) == generation
    }

    /// The partition was revoked: a new generation, and its in-flight records forgotten.
    pub fn revoke(&mut self, partition: i32) {
        *self.generations.entry(partition).or_default() += 1;
        self.tracker.forget(partition);
    }

    /// A record was consumed and its outputs are on their way.
    pub fn begin(&mut self, partition: i32, offset: i64) {
        self.tracker.begin(partition, offset);
    }

    /// A record's outputs are all acknowledged. Returns the offset to store for its partition
    /// when that moved forward, and `None` for a record of an earlier generation.
    pub fn complete(&mut self, partition: i32, offset: i64, generation: u64) -> Option<i64> {
        if !self.is_current(partition, generation) {
            return None;
        }
        self.tracker.complete(partition, offset)
    }

    /// Records in flight, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.tracker.in_flight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_failed_record_holds_back_the_offsets_after_it() {
        let mut t = OffsetTracker::new();
        for o in 10..15 {
            t.begin(0, o);
        }
        assert_eq!(t.complete(0, 11), None, "10 is not done: nothing may be stored");
        assert_eq!(t.complete(0, 12), None);
        assert_eq!(t.complete(0, 10), Some(13), "10, 11, 12 done: store 13");
        assert_eq!(t.complete(0, 14), None, "13 still pending");
        assert_eq!(t.complete(0, 13), Some(15));
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = OffsetTracker::new();
        t.begin(0, 5);
        t.begin(1, 7);
        assert_eq!(t.complete(1, 7), Some(8));
        assert_eq!(t.in_flight(), 1);
        t.forget(0);
        assert_eq!(t.complete(0, 5), None, "a forgotten partition stores nothing");
    }

    #[test]
    fn a_record_of_a_revoked_assignment_stores_nothing() {
        let mut ledger = Ledger::new();
        ledger.begin(2, 40);
        let old = ledger.generation(2);
        ledger.revoke(2);
        assert!(!ledger.is_current(2, old));
        ledger.begin(2, 40);
        assert_eq!(
            ledger.complete(2, 40, old),
            None,
            "an acknowledgement of the old assignment"
        );
        assert_eq!(ledger.complete(2, 40, ledger.generation(2)), Some(41));
    }

    proptest! {
        /// Whatever the completion order, the stored offset never passes an unfinished record,
        /// and once all are done it is one past the last.
        #[test]
        fn never_passes_an_unfinished_record(order in Just((0i64..60).collect::<Vec<_>>()).prop_shuffle()) {
            let mut t = OffsetTracker::new();
            for o in 0..60 { t.begin(3, o); }
            let mut done = std::collections::HashSet::new();
            let mut last = None;
            for o in order {
                done.insert(o);
                if let Some(stored) = t.complete(3, o) {
                    prop_assert!((0..stored).all(|x| done.contains(&x)), "stored {} with a gap", stored);
                    prop_assert!(last.is_none_or(|l| stored > l));
                    last = Some(stored);
                }
            }
            prop_assert_eq!(last, Some(60));
        }
    }
}
