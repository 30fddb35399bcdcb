//! Exactly-once output (EOS v2, KIP-447) for the prepare role: a record's outputs and its input
//! offset are committed in one Kafka transaction, or neither is. The worker adds each record
//! whose outputs it sent; every `transaction_interval_ms` the open transaction gets the next
//! input offset of each partition it covers, with the consumer's group metadata (so a member
//! the group has moved on from is fenced), and commits. A transaction that cannot commit is
//! aborted, and the worker consumes its records again from the committed offsets: a
//! `read_committed` reader never sees an aborted output, so nothing is seen twice.
//!
//! librdkafka's transaction calls block (they wait for the coordinator and flush the
//! producer); they run in `block_in_place`, so the runtime's other tasks go on meanwhile.

use crate::worker::error::{kafka, WorkerError};
use crate::worker::publish::OutputProducer;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long a transaction call may wait for the coordinator.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The open transaction: which input records it covers.
pub struct Transaction {
    /// The next input offset of each partition whose records' outputs are in it.
    offsets: BTreeMap<i32, i64>,
    opened: Instant,
    interval: Duration,
}

/// How a commit ended.
#[derive(Debug)]
pub enum Committed {
    /// Nothing to commit.
    Empty,
    /// Its outputs and input offsets are visible to `read_committed` readers.
    Done,
    /// The transaction was aborted: its records must be consumed again.
    Aborted(String),
}

impl Transaction {
    /// Registers the producer with the transaction coordinator (fencing an earlier producer of
    /// the same id) and opens the first transaction.
    pub fn start(producer: &OutputProducer, interval: Duration) -> Result<Self, WorkerError> {
        tokio::task::block_in_place(|| {
            producer
                .init_transactions(TIMEOUT)
                .map_err(kafka("starting transactions (kafka.exactly_once)"))?;
            producer.begin_transaction().map_err(kafka("opening a transaction"))
        })?;
        Ok(Self::opened_now(interval))
    }

    fn opened_now(interval: Duration) -> Self {
        Self {
            offsets: BTreeMap::new(),
            opened: Instant::now(),
            interval,
        }
    }

    /// Record `offset` of `partition` has its outputs in this transaction.
    pub fn add(&mut self, partition: i32, offset: i64) {
        let next = self.offsets.entry(partition).or_insert(offset + 1);
        *next = (*next).max(offset + 1);
    }

    /// Whether it holds records of `partition`.
    pub fn covers(&self, partition: i32) -> bool {
        self.offsets.contains_key(&partition)
    }

    /// Whether it holds records and has been open for the interval.
    pub fn due(&self) -> bool {
        !self.offsets.is_empty() && self.opened.elapsed() >= self.interval
    }

    /// Commits what it holds with the input offsets, or aborts it for `abort`'s reason or when
    /// the commit fails; then opens the next. A fatal error (this producer was
    /// fenced, say) stops the worker.
    pub fn commit(
        &mut self,
        producer: &OutputProducer,
        group: Option<ConsumerGroupMetadata>,
        topic: &str,
        abort: Option<&str>,
    ) -> Result<Committed, WorkerError> {
        if self.offsets.is_empty() && abort.is_none() {
            return Ok(Committed::Empty);
        }
        let offsets = std::mem::take(&mut self.offsets);
        let outcome = if let Some(reason) = abort {
            Err(reason.to_string())
        } else {
            tokio::task::block_in_place(|| commit_with_offsets(producer, group, topic, &offsets))
        };
        let result = match outcome {
            Ok(()) => Committed::Done,
            Err(reason) => {
                tokio::task::block_in_place(|| producer.abort_transaction(TIMEOUT))
                    .map_err(kafka("aborting a transaction"))?;
                Committed::Aborted(reason)
            }
        };
        tokio::task::block_in_place(|| producer.begin_transaction()).map_err(kafka("opening a transaction"))?;
        self.opened = Instant::now();
        Ok(result)
    }
}

/// Sends the offsets into the open transaction and commits it. An error that requires an abort
/// comes back as its text; a fatal one as the worker's error text too (the abort that follows
/// fails, and stops the worker).
fn commit_with_offsets(
    producer: &OutputProducer,
    group: Option<ConsumerGroupMetadata>,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
) -> Result<(), String> {
    let group = group.ok_or("the consumer has no group metadata yet")?;
    let mut tpl = TopicPartitionList::new();
    for (&partition, &next) in offsets {
        tpl.add_partition_offset(topic, partition, Offset::Offset(next))
            .map_err(|e| e.to_string())?;
    }
    let text = |e: KafkaError| e.to_string();
    producer
        .send_offsets_to_transaction(&tpl, &group, TIMEOUT)
        .map_err(text)?;
    producer.commit_transaction(TIMEOUT).map_err(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_commits_the_offset_after_the_last_record_of_each_partition_it_covers() {
        let mut transaction = Transaction::opened_now(Duration::ZERO);
        assert!(!transaction.due(), "an empty transaction has nothing to commit");
        for (partition, offset) in [(0, 7), (2, 3), (0, 5), (0, 8)] {
            transaction.add(partition, offset);
        }
        assert!(transaction.due());
        assert!(transaction.covers(0) && transaction.covers(2) && !transaction.covers(1));
        assert_eq!(transaction.offsets, BTreeMap::from([(0, 9), (2, 4)]));
        let mut slow = Transaction::opened_now(Duration::from_secs(3600));
        slow.add(0, 1);
        assert!(!slow.due(), "not before its interval");
    }
}
