//! The decider's view kept at its group's committed offset: restored at start from the
//! fingerprint topic, kept warm while another member of the group decides (a standby), and
//! brought up to the committed offset when the group hands this decider the partition (the
//! catch-up before it decides). See docs/state.md, "Standbys and failover".
//!
//! Deciding is deterministic given the fingerprint topic's order, so an engine that has decided
//! the records before offset `c` holds the state every decider holds there, whoever decided
//! them first. A standby therefore only ever reads up to the committed offset: what lies past
//! it may still be decided again by the active decider's successor, and that successor's state
//! must not have seen it yet. An engine that is ahead (a decider whose partition was revoked
//! while records were in flight) answers those records again with what they matched the first
//! time, so it needs no rebuild.

use crate::pipeline::engine::Engine;
use crate::pipeline::log_record;
use crate::pipeline::messages::Prepared;
use crate::worker::clients::{client_config, GuardedContext, FETCH_QUEUE_BACKOFF};
use crate::worker::config::KafkaConfig;
use crate::worker::error::{client, kafka, WorkerError};
use crate::worker::warm_up::committed_offsets_once_coordinated;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};
use tracing::warn;

/// The fingerprint topic's one partition.
const PARTITION: i32 = 0;
/// How long a read waits for the next record below its target before it concludes the record
/// is gone (deleted by retention).
const STALL: Duration = Duration::from_secs(30);
const TIMEOUT: Duration = Duration::from_secs(30);

/// Reads the fingerprint topic into a decider's engine, publishing nothing.
pub struct Follower {
    /// Assigned to the partition, never subscribed: it joins no group and commits nothing, but
    /// carries the deciders' `group.id`, so it can read their committed offset.
    consumer: BaseConsumer<GuardedContext>,
    topic: String,
    /// The next offset the engine has not decided.
    next: i64,
    /// Whether the consumer is assigned; it is not while this decider decides, so that its
    /// fetch queue holds nothing then.
    reading: bool,
}

/// What a catch-up did, for the log.
#[derive(Debug, Clone, Copy, Default)]
pub struct CaughtUp {
    pub from: i64,
    pub to: i64,
    pub records: u64,
    pub took: Duration,
}

impl Follower {
    /// A follower of `kafka.input_topic` (the fingerprint topic, for a decider) in the
    /// deciders' group `kafka.group_id`, with the engine restored: the last `capacity` records
    /// before the group's committed offset are decided again, which is exactly what the index
    /// held (it retains by arrival). With `restore` off it starts at the committed offset.
    pub async fn restore(
        engine: &mut Engine,
        kafka_config: &KafkaConfig,
        health: &std::sync::Arc<crate::worker::http::Health>,
        capacity: usize,
        restore: bool,
    ) -> Result<(Self, CaughtUp), WorkerError> {
        let settings = [
            ("group.id", kafka_config.group_id.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "false"),
            ("isolation.level", "read_committed"),
            FETCH_QUEUE_BACKOFF,
        ];
        let config = client_config(kafka_config, &settings, ("consumer", &kafka_config.consumer))?;
        let consumer: BaseConsumer<GuardedContext> = config
            .create_with_context(GuardedContext { health: health.clone() })
            .map_err(client("fingerprint-topic reader"))?;
        let topic = kafka_config.input_topic.clone();
        let metadata = consumer
            .fetch_metadata(Some(&topic), TIMEOUT)
            .map_err(kafka("reading the fingerprint topic's metadata"))?;
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| t.partitions().len());
        if partitions == 0 {
            return Err(WorkerError::FingerprintTopic(format!(
                "{topic} does not exist: create it with 1 partition and cleanup.policy=delete (or run with --create-topics, kafka.create_topics = true)"
            )));
        }
        if partitions != 1 {
            return Err(WorkerError::FingerprintTopic(format!(
                "{topic} has {partitions} partitions; the decider keeps one view of one ordered log: create it with exactly 1 partition (or set kafka.create_topics = true and let syndic create it)"
            )));
        }
        let mut follower = Self {
            consumer,
            topic,
            next: 0,
            reading: false,
        };
        let caught_up = follower.rebuild(engine, capacity, restore).await?;
        Ok((follower, caught_up))
    }

    /// Restores `engine`, which must be new, to the group's committed offset as at start:
    /// also after an aborted transaction, whose records the engine had decided.
    pub async fn rebuild(
        &mut self,
        engine: &mut Engine,
        capacity: usize,
        restore: bool,
    ) -> Result<CaughtUp, WorkerError> {
        self.pause()?;
        let committed = self.committed()?;
        let (low, _) = self.watermarks()?;
        self.next = if restore {
            committed.saturating_sub(capacity as i64).max(low)
        } else {
            committed
        };
        self.catch_up(engine, committed).await
    }

    /// The next offset the engine has not decided.
    pub fn next(&self) -> i64 {
        self.next
    }

    /// The engine decided `offset` itself (it is the active decider).
    pub fn decided(&mut self, offset: i64) {
        self.next = self.next.max(offset + 1);
    }

    /// The group's committed offset on the partition; where the group's consumer starts when
    /// none is committed (`auto.offset.reset = earliest`: the first record kept) otherwise.
    fn committed(&self) -> Result<i64, WorkerError> {
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition(&self.topic, PARTITION);
        let committed = committed_offsets_once_coordinated(&self.consumer, &wanted, TIMEOUT)
            .map_err(kafka("reading the deciders' committed offset"))?;
        match committed.find_partition(&self.topic, PARTITION).map(|e| e.offset()) {
            Some(Offset::Offset(offset)) => Ok(offset),
            _ => Ok(self.watermarks()?.0),
        }
    }

    fn watermarks(&self) -> Result<(i64, i64), WorkerError> {
        self.consumer
            .fetch_watermarks(&self.topic, PARTITION, TIMEOUT)
            .map_err(kafka("reading the fingerprint topic's offsets"))
    }

    /// Decides, publishing nothing, what the group has committed since the engine's position:
    /// a standby's turn, and a take-over's catch-up.
    pub async fn follow(&mut self, engine: &mut Engine) -> Result<CaughtUp, WorkerError> {
        let committed = self.committed()?;
        self.catch_up(engine, committed).await
    }

    /// Decides the records from `next` up to `target`, publishing nothing. Nothing to do when
    /// the engine is there already or ahead.
    pub async fn catch_up(&mut self, engine: &mut Engine, target: i64) -> Result<CaughtUp, WorkerError> {
        let started = Instant::now();
        let mut done = CaughtUp {
            from: self.next,
            to: self.next,
            ..CaughtUp::default()
        };
        if self.next >= target {
            return Ok(done);
        }
        // A restore into an empty engine knows how many records it decides.
        engine.reserve(usize::try_from(target - self.next).unwrap_or(0));
        if !self.reading {
            let mut assignment = TopicPartitionList::new();
            assignment
                .add_partition_offset(&self.topic, PARTITION, Offset::Offset(self.next))
                .map_err(kafka("assigning the fingerprint topic"))?;
            self.consumer
                .assign(&assignment)
                .map_err(kafka("assigning the fingerprint topic"))?;
            self.reading = true;
        }
        let mut last_record = Instant::now();
        while self.next < target {
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    last_record = Instant::now();
                    let offset = message.offset();
                    if offset < self.next {
                        continue;
                    }
                    // A gap is records deleted by retention, or a transaction's markers.
                    self.next = offset + 1;
                    if offset < target {
                        let (article, fingerprint) = log_record::decode(message.payload().unwrap_or_default())?;
                        engine.decide_quietly(Prepared::Article { article, fingerprint });
                        done.records += 1;
                    }
                }
                Some(Err(error)) => warn!(%error, topic = self.topic, "fingerprint topic read error; retrying"),
                None if self.position() >= target => {
                    // What is left below the target is a transaction's marker, not a record.
                    self.next = target;
                }
                None if last_record.elapsed() > STALL => {
                    // The broker has nothing more below the target: the rest is gone
                    // (retention).
                    let (_, high) = self.watermarks()?;
                    if high >= target {
                        warn!(
                            next = self.next,
                            target,
                            "records before the committed offset could not be read; the view continues without them"
                        );
                    }
                    self.next = target;
                }
                None => {}
            }
            tokio::task::yield_now().await;
        }
        done.to = self.next;
        done.took = started.elapsed();
        Ok(done)
    }

    /// Where the reader's fetch position is (past any transaction marker it skipped).
    fn position(&self) -> i64 {
        self.consumer
            .position()
            .ok()
            .and_then(|tpl| match tpl.find_partition(&self.topic, PARTITION)?.offset() {
                Offset::Offset(offset) => Some(offset),
                _ => None,
            })
            .unwrap_or(-1)
    }

    /// This decider decides from now on: stop reading, so the fetch queue holds nothing.
    pub fn pause(&mut self) -> Result<(), WorkerError> {
        if self.reading {
            self.consumer
                .unassign()
                .map_err(kafka("releasing the fingerprint topic reader"))?;
            self.reading = false;
        }
        Ok(())
    }
}
