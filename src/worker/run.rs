//! The consume-process-produce loop.
//!
//! The main task consumes, hands each record to a prepare thread (the stateless stages:
//! parse, normalize, fingerprint), takes the prepared records back in the same order and runs
//! the engine's stateful part on them (single-threaded by design), so records are decided in
//! consumption order and their outputs are *enqueued* to the producer in that order: a story's
//! events reach the stories topic in version order. The [`Publisher`] counts each record's
//! acknowledgements; when they are all in (acks=all, idempotent producer) the record is
//! complete, and [`OffsetTracker`] turns completions into the highest offset that passes no
//! unfinished record, which is stored for the next commit. An output that fails is sent again
//! with backoff until it is acknowledged; later records may finish meanwhile, but the stored
//! offset waits for it. See `docs/worker.md`.

use crate::config::{ConfigError, CoreConfig, KafkaConfig};
use crate::pipeline::engine::{Engine, Outcome, Verdict};
use crate::pipeline::prepare::{Prepared, Preparer};
use crate::worker::http::Telemetry;
use crate::worker::metrics::{process_memory, Metrics};
use crate::worker::offsets::OffsetTracker;
use crate::worker::publish::{InFlightRecord, Output, PublishError, Publisher};
use crate::worker::shutdown::Shutdown;
use chrono::{DateTime, Utc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::Producer;
use rdkafka::statistics::Statistics;
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{context}: {source} (check kafka.brokers and that the broker is up)")]
    Kafka {
        context: &'static str,
        #[source]
        source: KafkaError,
    },
    #[error("cannot create topic {topic}: {code} (check the broker's ACLs and kafka.topic_partitions / kafka.topic_replication)")]
    CreateTopic { topic: String, code: RDKafkaErrorCode },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot start the prepare thread: {0} (check the process's thread limit)")]
    PrepareThread(#[source] std::io::Error),
    #[error("the prepare thread stopped unexpectedly; restart the worker (uncommitted records are consumed again)")]
    PrepareStopped,
    #[error(transparent)]
    Publish(#[from] PublishError),
}

fn kafka(context: &'static str) -> impl FnOnce(KafkaError) -> WorkerError {
    move |source| WorkerError::Kafka { context, source }
}

/// What a run did, for the summary line and the demo.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct WorkerSummary {
    pub consumed: u64,
    pub new_story: u64,
    pub duplicate: u64,
    pub exact_duplicate: u64,
    pub dead_lettered: u64,
    pub story_events: u64,
    /// Records whose outputs were confirmed and whose offsets may be committed.
    pub completed: u64,
    /// Records still unconfirmed when the shutdown bound ran out (consumed again on restart).
    pub abandoned: u64,
}

/// What the rebalance callback tells the worker loop.
enum GroupEvent {
    Assigned,
    Revoked(i32),
}

/// Passes rebalances from librdkafka's callback to the worker loop, and commits what is stored
/// before revoked partitions go.
struct WorkerContext {
    events: mpsc::Sender<GroupEvent>,
    metrics: Metrics,
    input_topic: String,
}

impl ClientContext for WorkerContext {
    /// librdkafka statistics (every `statistics.interval.ms`): lag and committed offsets.
    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.input_topic) else {
            return;
        };
        for (partition, p) in &topic.partitions {
            if *partition < 0 {
                continue; // librdkafka's internal "unassigned" partition
            }
            let label = partition.to_string();
            if p.consumer_lag >= 0 {
                self.metrics
                    .consumer_lag
                    .with_label_values(&[&label])
                    .set(p.consumer_lag);
            }
            if p.committed_offset >= 0 {
                self.metrics
                    .committed_offset
                    .with_label_values(&[&label])
                    .set(p.committed_offset);
            }
        }
    }
}

impl ConsumerContext for WorkerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.metrics.rebalances.inc();
        match rebalance {
            Rebalance::Revoke(partitions) => {
                for p in partitions.elements() {
                    let _ = self.events.send(GroupEvent::Revoked(p.partition()));
                    // Lag of a partition this worker no longer owns is its new owner's to report.
                    let _ = self
                        .metrics
                        .consumer_lag
                        .remove_label_values(&[&p.partition().to_string()]);
                    let _ = self
                        .metrics
                        .committed_offset
                        .remove_label_values(&[&p.partition().to_string()]);
                }
                self.metrics.assigned_partitions.set(0);
                match consumer.commit_consumer_state(CommitMode::Sync) {
                    Ok(()) => info!(
                        partitions = partitions.count(),
                        "partitions revoked; committed what was done"
                    ),
                    Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {
                        info!(
                            partitions = partitions.count(),
                            "partitions revoked; nothing new to commit"
                        )
                    }
                    Err(error) => {
                        warn!(%error, "partitions revoked; commit failed, their records will be consumed again")
                    }
                }
            }
            Rebalance::Assign(partitions) => {
                let _ = self.events.send(GroupEvent::Assigned);
                self.metrics.assigned_partitions.set(partitions.count() as i64);
                info!(partitions = partitions.count(), "partitions assigned")
            }
            Rebalance::Error(error) => warn!(%error, "rebalance error"),
        }
    }
}

/// A client configuration: `bootstrap.servers`, syndic's settings, then the operator's
/// passthrough properties, which win.
fn client_config(
    brokers: &str,
    settings: &[(&str, &str)],
    passthrough: &std::collections::BTreeMap<String, String>,
) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (key, value) in settings {
        config.set(*key, *value);
    }
    for (key, value) in passthrough {
        config.set(key, value);
    }
    config
}

/// librdkafka stops fetching a partition for `fetch.queue.backoff.ms` (1 s by default) whenever
/// its prefetch queue is full. A worker behind its input (a backfill, a replay, a restart
/// after an outage) fills that queue at once, empties it in well under a second, and then
/// waits for the rest of the second with nothing to do: on the end-to-end benchmark the
/// default held syndic to 22,000 records/s and the passthrough baseline to 45,000/s. At
/// 100 ms the queue (64 MB by default) is refilled long before it runs dry.
const FETCH_QUEUE_BACKOFF: (&str, &str) = ("fetch.queue.backoff.ms", "100");

fn consumer_config(kafka: &KafkaConfig) -> ClientConfig {
    let settings = [
        FETCH_QUEUE_BACKOFF,
        ("group.id", kafka.group_id.as_str()),
        ("enable.auto.commit", "true"),
        ("auto.commit.interval.ms", "1000"),
        // Offsets are stored by the worker only when a record is complete.
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        ("enable.partition.eof", "false"),
        ("session.timeout.ms", "10000"),
        ("isolation.level", "read_committed"),
        ("statistics.interval.ms", "5000"),
    ];
    client_config(&kafka.brokers, &settings, &kafka.consumer)
}

pub fn producer_config(kafka: &KafkaConfig) -> ClientConfig {
    let settings = [
        ("enable.idempotence", "true"),
        ("acks", "all"),
        ("linger.ms", "5"),
        ("compression.type", "lz4"),
        // Never give up on an output while the broker is away: a record is retried, not lost.
        ("message.timeout.ms", "0"),
    ];
    client_config(&kafka.brokers, &settings, &kafka.producer)
}

/// Creates the configured topics that do not exist yet (the stories topic compacted).
pub async fn create_topics(kafka: &KafkaConfig) -> Result<(), WorkerError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .create()
        .map_err(self::kafka("creating the admin client"))?;
    let replication = || TopicReplication::Fixed(kafka.topic_replication);
    let topics = [
        NewTopic::new(&kafka.input_topic, kafka.topic_partitions, replication()),
        NewTopic::new(&kafka.stories_topic, kafka.topic_partitions, replication()).set("cleanup.policy", "compact"),
        NewTopic::new(&kafka.decisions_topic, kafka.topic_partitions, replication()),
        NewTopic::new(&kafka.dlq_topic, kafka.topic_partitions, replication()),
    ];
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&topics, &options)
        .await
        .map_err(self::kafka("creating topics"))?;
    for result in results {
        match result {
            Ok(topic) => info!(topic, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(WorkerError::CreateTopic { topic, code }),
        }
    }
    Ok(())
}

/// The source headers every decision and dead letter carries.
fn source_headers(kafka: &KafkaConfig, consumed: &Consumed, capacity: usize) -> OwnedHeaders {
    OwnedHeaders::new_with_capacity(capacity)
        .insert(Header {
            key: "syndic.source.topic",
            value: Some(kafka.input_topic.as_bytes()),
        })
        .insert(Header {
            key: "syndic.source.partition",
            value: Some(consumed.partition.to_string().as_bytes()),
        })
        .insert(Header {
            key: "syndic.source.offset",
            value: Some(consumed.offset.to_string().as_bytes()),
        })
}

/// Sends a decided record's outputs, in order: the dead letter (if invalid), the decision, the
/// story event (if any). `scratch` is reused for serializing, so a record allocates no buffer
/// of its own: librdkafka copies each payload when it is enqueued.
async fn publish(
    publisher: &mut Publisher,
    tracker: &mut OffsetTracker,
    kafka: &KafkaConfig,
    consumed: &Consumed,
    outcome: &Outcome,
    scratch: &mut Vec<u8>,
) -> Result<(), PublishError> {
    let seq = begin(publisher, tracker, consumed);
    if let Some(invalid) = &outcome.invalid {
        let headers = source_headers(kafka, consumed, 5)
            .insert(Header {
                key: "syndic.reason",
                value: Some(invalid.code()),
            })
            .insert(Header {
                key: "syndic.error",
                value: Some(&invalid.to_string()),
            });
        let output = Output {
            topic: &kafka.dlq_topic,
            key: consumed.key.as_deref(),
            payload: &consumed.payload,
            headers: Some(headers),
        };
        publisher.send(seq, output).await?;
    }
    scratch.clear();
    // Serializing our own plain structs into a Vec cannot fail; an empty payload would still
    // be delivered and counted.
    let _ = serde_json::to_writer(&mut *scratch, &outcome.decision);
    let output = Output {
        topic: &kafka.decisions_topic,
        key: outcome.decision.article_id.as_deref().map(str::as_bytes),
        payload: scratch,
        headers: Some(source_headers(kafka, consumed, 3)),
    };
    publisher.send(seq, output).await?;
    if let Some(event) = &outcome.event {
        scratch.clear();
        let _ = event.write_json(scratch);
        let output = Output {
            topic: &kafka.stories_topic,
            key: Some(event.story_id.as_bytes()),
            payload: scratch,
            headers: None,
        };
        publisher.send(seq, output).await?;
    }
    Ok(())
}

/// A consumed record, owned so that it can wait in the pipeline and cross to the prepare thread.
struct Consumed {
    partition: i32,
    offset: i64,
    /// The partition's assignment generation when it was consumed.
    generation: u64,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    timestamp_millis: Option<i64>,
}

/// Starts a record in both ledgers: its offset waits in the tracker, and the publisher counts
/// its acknowledgements. Returns the record's number for its outputs.
fn begin(publisher: &mut Publisher, tracker: &mut OffsetTracker, consumed: &Consumed) -> u64 {
    tracker.begin(consumed.partition, consumed.offset);
    publisher.begin(consumed.in_flight())
}

impl Consumed {
    fn in_flight(&self) -> InFlightRecord {
        InFlightRecord {
            partition: self.partition,
            offset: self.offset,
            generation: self.generation,
            input_millis: self.timestamp_millis,
        }
    }
}

/// Records between the main task and the prepare thread, at most. Enough to keep the thread
/// busy while the main task produces; small enough that a shutdown drains it at once.
const PIPELINE_DEPTH: usize = 256;

/// The stateless stages (parse, normalize, fingerprint) on threads of their own, so that the
/// main task decides and produces one record while the next ones are prepared. Records are
/// dealt to the threads in turn and taken back in the same turn; each thread keeps its own
/// order, so records come out in the order they went in and decisions keep consumption order.
struct PrepareStage {
    lanes: Vec<PrepareLane>,
    /// The lane the next record goes to, and the one the next prepared record comes from.
    next_in: usize,
    next_out: usize,
    /// The record after the one last handed out, when it was already prepared then: the
    /// engine starts its index lookups early ([`Engine::prefetch`]). Never waited for.
    ahead: Option<(Consumed, Prepared, Duration)>,
}

/// One prepare thread's way in and out.
struct PrepareLane {
    /// `None` once closed: the thread then finishes what it holds and stops.
    input: Option<tokio::sync::mpsc::Sender<Consumed>>,
    output: tokio::sync::mpsc::Receiver<(Consumed, Prepared, Duration)>,
}

impl PrepareStage {
    fn start(preparer: Preparer, threads: usize) -> Result<Self, WorkerError> {
        let lanes = (0..threads.max(1))
            .map(|n| {
                // Each channel holds the whole pipeline, so handing a record in never waits.
                let (input, mut to_prepare) = tokio::sync::mpsc::channel::<Consumed>(PIPELINE_DEPTH);
                let (prepared, output) = tokio::sync::mpsc::channel(PIPELINE_DEPTH);
                let mut preparer = preparer.clone();
                std::thread::Builder::new()
                    .name(format!("syndic-prepare-{n}"))
                    .spawn(move || {
                        while let Some(consumed) = to_prepare.blocking_recv() {
                            let started = Instant::now();
                            let result = preparer.prepare(&consumed.payload, ingest_time(consumed.timestamp_millis));
                            if prepared.blocking_send((consumed, result, started.elapsed())).is_err() {
                                break;
                            }
                        }
                    })
                    .map_err(WorkerError::PrepareThread)?;
                Ok(PrepareLane {
                    input: Some(input),
                    output,
                })
            })
            .collect::<Result<Vec<_>, WorkerError>>()?;
        Ok(Self {
            lanes,
            next_in: 0,
            next_out: 0,
            ahead: None,
        })
    }

    /// Hands a record to the next thread. The caller keeps fewer than [`PIPELINE_DEPTH`]
    /// records in the stage, so this never waits.
    fn send(&mut self, consumed: Consumed) -> Result<(), WorkerError> {
        let lane = &self.lanes[self.next_in];
        let input = lane.input.as_ref().ok_or(WorkerError::PrepareStopped)?;
        input.try_send(consumed).map_err(|_| WorkerError::PrepareStopped)?;
        self.next_in = (self.next_in + 1) % self.lanes.len();
        Ok(())
    }

    /// The next prepared record, in the order records were sent; `None` once the stage is
    /// closed and empty. Cancel-safe: the turn moves on only when a record came out.
    async fn recv(&mut self) -> Option<(Consumed, Prepared, Duration)> {
        let prepared = match self.ahead.take() {
            Some(prepared) => prepared,
            None => self.lanes[self.next_out].output.recv().await?,
        };
        self.next_out = (self.next_out + 1) % self.lanes.len();
        if let Ok(next) = self.lanes[self.next_out].output.try_recv() {
            self.ahead = Some(next);
        }
        Some(prepared)
    }

    /// The record [`PrepareStage::recv`] returns next, if it is prepared already.
    fn upcoming(&self) -> Option<&Prepared> {
        self.ahead.as_ref().map(|(_, prepared, _)| prepared)
    }

    /// Lets the threads finish what they hold and stop; [`PrepareStage::recv`] drains them.
    fn close(&mut self) {
        for lane in &mut self.lanes {
            lane.input = None;
        }
    }
}

/// The next prepared record; pending forever without a stage (passthrough), so that a
/// `select!` branch on it stays quiet.
async fn recv_prepared(stage: &mut Option<PrepareStage>) -> Option<(Consumed, Prepared, Duration)> {
    match stage {
        Some(stage) => stage.recv().await,
        None => std::future::pending().await,
    }
}

/// The partition's current assignment generation (0 until its first revocation).
fn generation_of(generations: &HashMap<i32, u64>, partition: i32) -> u64 {
    generations.get(&partition).copied().unwrap_or(0)
}

/// The series counted for every record, resolved once at start: `with_label_values` hashes
/// its labels and takes a lock on each call, which is several calls per record otherwise.
/// Resolving them also exports every label value at 0, so dashboards and alerts see the series
/// before the first event.
struct RecordSeries {
    metrics: std::sync::Arc<Metrics>,
    consumed: prometheus::IntCounter,
    decisions: Vec<(&'static str, prometheus::IntCounter)>,
    dead_lettered: Vec<(&'static str, prometheus::IntCounter)>,
    story_events: Vec<(&'static str, prometheus::IntCounter)>,
}

impl RecordSeries {
    fn new(metrics: &Metrics, kafka: &KafkaConfig) -> Self {
        let resolve = |family: &prometheus::IntCounterVec, labels: &[&'static str]| {
            labels
                .iter()
                .map(|&label| (label, family.with_label_values(&[label])))
                .collect::<Vec<_>>()
        };
        for topic in [&kafka.stories_topic, &kafka.decisions_topic, &kafka.dlq_topic] {
            metrics.produce_errors.with_label_values(&[topic]);
        }
        Self {
            consumed: metrics.records_consumed.with_label_values(&[&kafka.input_topic]),
            decisions: resolve(&metrics.decisions, &Verdict::ALL.map(|v| v.as_str())),
            dead_lettered: resolve(&metrics.dead_lettered, &crate::pipeline::record::InvalidRecord::CODES),
            story_events: resolve(
                &metrics.story_events,
                &crate::pipeline::story::EventKind::ALL.map(|k| k.as_str()),
            ),
            metrics: std::sync::Arc::new(metrics.clone()),
        }
    }
}

/// Adds one to the series with `label` in `resolved`, or in `family` for a label not resolved.
fn count(resolved: &[(&'static str, prometheus::IntCounter)], family: &prometheus::IntCounterVec, label: &str) {
    match resolved.iter().find(|(l, _)| *l == label) {
        Some((_, counter)) => counter.inc(),
        None => family.with_label_values(&[label]).inc(),
    }
}

/// Runs the engine's stateful part on a prepared record, counts the decision in the metrics
/// and the summary, logs it, and returns the record with the records to produce. `None` for a
/// record of a partition revoked while it was being prepared: its next owner consumes it from
/// the last commit, so deciding it here would decide it twice.
fn decide(
    engine: &mut Engine,
    generations: &HashMap<i32, u64>,
    (consumed, prepared, prepare_time): (Consumed, Prepared, Duration),
    upcoming: Option<&Prepared>,
    series: &RecordSeries,
    summary: &mut WorkerSummary,
) -> Option<(Consumed, Outcome)> {
    if let Some(upcoming) = upcoming {
        engine.prefetch(upcoming);
    }
    if generation_of(generations, consumed.partition) != consumed.generation {
        debug!(
            partition = consumed.partition,
            offset = consumed.offset,
            "record of a revoked partition dropped before deciding"
        );
        return None;
    }
    let started = Instant::now();
    let outcome = engine.decide(prepared);
    let metrics = &series.metrics;
    metrics
        .processing_seconds
        .observe((prepare_time + started.elapsed()).as_secs_f64());
    let (partition, offset) = (consumed.partition, consumed.offset);
    count(&series.decisions, &metrics.decisions, outcome.decision.verdict.as_str());
    if let Some(invalid) = &outcome.invalid {
        count(&series.dead_lettered, &metrics.dead_lettered, invalid.code());
    }
    if let Some(event) = &outcome.event {
        count(&series.story_events, &metrics.story_events, event.kind.as_str());
    }
    match outcome.decision.verdict {
        Verdict::NewStory => summary.new_story += 1,
        Verdict::Duplicate => summary.duplicate += 1,
        Verdict::ExactDuplicate => summary.exact_duplicate += 1,
        Verdict::Invalid => summary.dead_lettered += 1,
    }
    summary.story_events += u64::from(outcome.event.is_some());
    match &outcome.invalid {
        Some(invalid) => {
            warn!(partition, offset, reason = invalid.code(), error = %invalid, "invalid record sent to the dead-letter topic")
        }
        None => debug!(
            partition,
            offset,
            article_id = outcome.decision.article_id.as_deref(),
            story_id = outcome.decision.story_id.as_deref(),
            verdict = outcome.decision.verdict.as_str(),
            "processed"
        ),
    }
    Some((consumed, outcome))
}

fn ingest_time(message_millis: Option<i64>) -> DateTime<Utc> {
    message_millis
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_else(Utc::now)
}

/// How long a starting worker waits for its group's coordinator. On a new cluster the
/// consumer-offsets topic is created at the first group's first request, and until its
/// partitions have leaders the broker answers "not coordinator" (seen for several seconds on
/// a single KRaft broker); a worker that gave up then exited at its first start.
const COORDINATOR_WAIT: Duration = Duration::from_secs(60);

/// The group's committed offsets for `wanted`, asked again while the coordinator is not ready
/// (for up to [`COORDINATOR_WAIT`]); any other error is returned at once.
fn committed_offsets_once_coordinated(
    consumer: &BaseConsumer,
    wanted: &TopicPartitionList,
    timeout: Duration,
) -> Result<TopicPartitionList, KafkaError> {
    let deadline = Instant::now() + COORDINATOR_WAIT;
    let mut warned = false;
    loop {
        match consumer.committed_offsets(wanted.clone(), timeout) {
            Err(e) if coordinator_not_ready(&e) && Instant::now() < deadline => {
                if !warned {
                    warn!(error = %e, "the group's coordinator is not ready yet (a new cluster creates it on first use); asking again");
                    warned = true;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            other => return other,
        }
    }
}

/// Whether `error` says the group's coordinator is moving or loading: worth asking again.
fn coordinator_not_ready(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::CoordinatorLoadInProgress
                | RDKafkaErrorCode::CoordinatorNotAvailable
        )
    )
}

/// Rebuilds the engine's state from the input log before consuming: reads each partition from
/// the first record of the last window (by Kafka timestamp) up to the group's committed offset,
/// through the engine, publishing nothing. A restarted worker then remembers the window as the
/// one before it did, and a record processed again after a crash gets the decision and story id
/// it got the first time (exactly so within a partition; see docs/worker.md).
async fn warm_up(engine: &mut Engine, kafka_config: &KafkaConfig, window_secs: i64) -> Result<u64, WorkerError> {
    let settings = [
        ("group.id", kafka_config.group_id.as_str()),
        ("enable.auto.commit", "false"),
        ("enable.partition.eof", "false"),
        FETCH_QUEUE_BACKOFF,
    ];
    let config = client_config(&kafka_config.brokers, &settings, &kafka_config.consumer);
    let consumer: BaseConsumer = config.create().map_err(kafka("creating the warm-up consumer"))?;
    let topic = kafka_config.input_topic.as_str();
    let timeout = Duration::from_secs(30);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(kafka("reading input topic metadata"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut wanted = TopicPartitionList::new();
    for &p in &partitions {
        wanted.add_partition(topic, p);
    }
    let committed =
        committed_offsets_once_coordinated(&consumer, &wanted, timeout).map_err(kafka("reading committed offsets"))?;
    let since = Utc::now().timestamp_millis() - window_secs.saturating_mul(1000);
    let starts = consumer
        .offsets_for_timestamp(since, timeout)
        .ok()
        .filter(|_| !partitions.is_empty());
    let mut ends: std::collections::HashMap<i32, i64> = std::collections::HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        let Some(Offset::Offset(end)) = committed.find_partition(topic, p).map(|e| e.offset()) else {
            continue;
        };
        let (low, _) = consumer
            .fetch_watermarks(topic, p, timeout)
            .map_err(kafka("reading watermarks"))?;
        let start = match starts
            .as_ref()
            .and_then(|s| s.find_partition(topic, p))
            .map(|e| e.offset())
        {
            Some(Offset::Offset(o)) => o,
            _ => low,
        }
        .max(low);
        if start < end {
            ends.insert(p, end);
            assignment
                .add_partition_offset(topic, p, Offset::Offset(start))
                .map_err(kafka("assigning for warm-up"))?;
        }
    }
    if ends.is_empty() {
        return Ok(0);
    }
    consumer.assign(&assignment).map_err(kafka("assigning for warm-up"))?;
    let mut replayed = 0u64;
    let mut last_message = Instant::now();
    while !ends.is_empty() {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(message)) => {
                last_message = Instant::now();
                let p = message.partition();
                let Some(&end) = ends.get(&p) else { continue };
                if message.offset() < end {
                    engine.process(
                        message.payload().unwrap_or_default(),
                        ingest_time(message.timestamp().to_millis()),
                    );
                    replayed += 1;
                }
                if message.offset() + 1 >= end {
                    ends.remove(&p);
                }
            }
            Some(Err(error)) => warn!(%error, "warm-up read error; retrying"),
            None if last_message.elapsed() > timeout => {
                // Records below the committed offset vanished (retention): nothing more to read.
                warn!(
                    partitions = ends.len(),
                    "warm-up stopped short: records before the committed offset are gone"
                );
                break;
            }
            None => {}
        }
        tokio::task::yield_now().await;
    }
    Ok(replayed)
}

/// What the worker does with each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The product: run the engine, publish decisions, story events and dead letters.
    Dedup,
    /// The benchmark baseline: copy each record to the decisions topic, same clients, same
    /// offset handling, no processing.
    Passthrough,
}

/// Runs the worker until shutdown (or idleness, when configured). Returns what it did.
pub async fn run(config: CoreConfig, shutdown: Shutdown, telemetry: Telemetry) -> Result<WorkerSummary, WorkerError> {
    run_in_mode(config, shutdown, Mode::Dedup, telemetry).await
}

/// [`run`], choosing the [`Mode`].
pub async fn run_in_mode(
    config: CoreConfig,
    mut shutdown: Shutdown,
    mode: Mode,
    telemetry: Telemetry,
) -> Result<WorkerSummary, WorkerError> {
    let series = RecordSeries::new(&telemetry.metrics, &config.kafka);
    let metrics = series.metrics.clone();
    let kafka_config = config.kafka.clone();
    if kafka_config.create_topics {
        create_topics(&kafka_config).await?;
    }
    let window_secs = config.index.window_secs;
    let mut engine = config.engine()?;
    if mode == Mode::Dedup && kafka_config.warm_up {
        let started = Instant::now();
        let replayed = warm_up(&mut engine, &kafka_config, window_secs).await?;
        info!(
            replayed,
            secs = started.elapsed().as_secs_f64(),
            indexed = engine.index().len(),
            "state rebuilt from the input log"
        );
    }
    let mut publisher =
        Publisher::new(&producer_config(&kafka_config), metrics.clone()).map_err(kafka("creating the producer"))?;
    // Readiness needs a producer that reaches the broker; checked when the group assigns us.
    let mut producer_reaches_broker = false;
    let (group_tx, group_rx) = mpsc::channel();
    let consumer: StreamConsumer<WorkerContext> = consumer_config(&kafka_config)
        .create_with_context(WorkerContext {
            events: group_tx,
            metrics: telemetry.metrics.clone(),
            input_topic: kafka_config.input_topic.clone(),
        })
        .map_err(kafka("creating the consumer"))?;
    consumer
        .subscribe(&[&kafka_config.input_topic])
        .map_err(kafka("subscribing to the input topic"))?;
    info!(
        brokers = kafka_config.brokers,
        group = kafka_config.group_id,
        input = kafka_config.input_topic,
        stories = kafka_config.stories_topic,
        decisions = kafka_config.decisions_topic,
        dlq = kafka_config.dlq_topic,
        "worker started"
    );

    let mut summary = WorkerSummary::default();
    let mut tracker = OffsetTracker::new();
    let mut completed: Vec<InFlightRecord> = Vec::new();
    let mut scratch: Vec<u8> = Vec::new();
    // Bumped when a partition is revoked: records and completions of an earlier assignment
    // must not touch the offsets of a later one (the new owner, or this worker again after a
    // reassignment, consumes them from the last commit).
    let mut generations: HashMap<i32, u64> = HashMap::new();
    let mut stage = match mode {
        Mode::Dedup => Some(PrepareStage::start(
            engine.preparer(),
            kafka_config.prepare_thread_count(),
        )?),
        Mode::Passthrough => None,
    };
    let mut in_pipeline = 0usize;
    let idle_limit = Duration::from_secs(kafka_config.stop_after_idle_secs);
    let mut last_record = Instant::now();
    // Whether the group currently gives this worker partitions. After a revocation (a lost
    // assignment during a broker outage, say) the worker is waiting to rejoin, not idle: the
    // records it consumed but could not commit come back after the reassignment.
    let mut assigned = false;
    let mut consume_errors = 0u32;
    let mut last_progress = Instant::now();
    let mut last_gauges = Instant::now();
    // Set when publishing cannot go on (a fatal producer error): the loop stops and the worker
    // returns it after committing what is complete.
    let mut failure: Option<PublishError> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    // A record's outputs are all acknowledged: store the offset it lets the partition reach.
    let complete = |tracker: &mut OffsetTracker,
                    summary: &mut WorkerSummary,
                    generations: &HashMap<i32, u64>,
                    record: InFlightRecord| {
        summary.completed += 1;
        if let Some(millis) = record.input_millis {
            let lag_ms = (Utc::now().timestamp_millis() - millis).max(0);
            metrics.end_to_end_seconds.observe(lag_ms as f64 / 1000.0);
        }
        let InFlightRecord {
            partition,
            offset,
            generation,
            ..
        } = record;
        if generation_of(generations, partition) != generation {
            return;
        }
        let Some(next) = tracker.complete(partition, offset) else {
            return;
        };
        let mut tpl = TopicPartitionList::new();
        if tpl
            .add_partition_offset(&kafka_config.input_topic, partition, Offset::Offset(next))
            .is_ok()
        {
            if let Err(error) = consumer.store_offsets(&tpl) {
                // The partition was revoked meanwhile; its new owner consumes from the last commit.
                debug!(partition, next, %error, "offset not stored");
            }
        }
    };

    loop {
        while let Ok(event) = group_rx.try_recv() {
            match event {
                GroupEvent::Revoked(partition) => {
                    assigned = false;
                    *generations.entry(partition).or_default() += 1;
                    tracker.forget(partition);
                }
                // Idleness counts from joining the group, not from start-up.
                GroupEvent::Assigned => {
                    assigned = true;
                    last_record = Instant::now();
                    if !producer_reaches_broker {
                        let client = publisher.producer().client();
                        producer_reaches_broker = client.fetch_metadata(None, Duration::from_secs(5)).is_ok();
                    }
                    telemetry.health.set_ready(producer_reaches_broker);
                }
            }
        }
        let pipeline_full = stage.as_ref().is_some_and(|_| in_pipeline >= PIPELINE_DEPTH);
        let can_consume = publisher.in_flight() + in_pipeline < kafka_config.max_in_flight && !pipeline_full;
        tokio::select! {
            biased;
            _ = shutdown.requested() => break,
            // Periodic work, and the idle check, on a timer rather than on every turn: the loop
            // turns several times per record, and clock reads and timer set-ups there show in
            // profiles.
            _ = tick.tick() => {
                if last_gauges.elapsed() >= Duration::from_secs(1) {
                    metrics.in_flight.set((tracker.in_flight() + in_pipeline) as i64);
                    metrics.preparing.set(in_pipeline as i64);
                    metrics.index_entries.set(engine.index().len() as i64);
                    metrics.index_bytes.set(engine.index().heap_bytes() as i64);
                    metrics.index_evictions.set(engine.index().evicted_total() as i64);
                    Metrics::raise_to(&metrics.headline_matches, engine.counters().headline_matches);
                    Metrics::raise_to(&metrics.dated_ahead, engine.counters().dated_ahead);
                    metrics.stories_open.set(engine.open_stories() as i64);
                    if let Some(resident) = process_memory("VmRSS") {
                        metrics.resident_memory.set(resident as i64);
                    }
                    last_gauges = Instant::now();
                }
                if last_progress.elapsed() >= Duration::from_secs(10) {
                    info!(
                        consumed = summary.consumed,
                        completed = summary.completed,
                        in_flight = tracker.in_flight(),
                        dead_lettered = summary.dead_lettered,
                        "progress"
                    );
                    last_progress = Instant::now();
                }
                if !idle_limit.is_zero() && publisher.in_flight() == 0 && in_pipeline == 0 && assigned && last_record.elapsed() >= idle_limit {
                    // librdkafka can know the assignment is lost (the broker restarted and
                    // forgot the member) before the revocation reaches this loop. Stopping
                    // then, the final commit fails and the records come back after a restart;
                    // as after a revocation, the worker waits for the next assignment instead,
                    // consumes them again and commits.
                    if consumer.assignment_lost() {
                        info!("input idle, but the group assignment was lost; waiting to rejoin before stopping");
                        assigned = false;
                    } else {
                        info!(idle_secs = idle_limit.as_secs(), "input idle; stopping");
                        break;
                    }
                }
            }
            result = publisher.completions(&mut completed), if publisher.in_flight() > 0 => {
                for record in completed.drain(..) {
                    complete(&mut tracker, &mut summary, &generations, record);
                }
                if let Err(error) = result {
                    failure = Some(error);
                    break;
                }
            }
            Some(prepared) = recv_prepared(&mut stage), if in_pipeline > 0 => {
                in_pipeline -= 1;
                let upcoming = stage.as_ref().and_then(PrepareStage::upcoming);
                if let Some((consumed, outcome)) = decide(&mut engine, &generations, prepared, upcoming, &series, &mut summary) {
                    if let Err(error) = publish(&mut publisher, &mut tracker, &kafka_config, &consumed, &outcome, &mut scratch).await {
                        failure = Some(error);
                        break;
                    }
                }
            }
            message = consumer.recv(), if can_consume => {
                let message = match message {
                    Ok(message) => message,
                    Err(error) => {
                        // One warning per outage, not one per retry.
                        consume_errors += 1;
                        if consume_errors == 1 {
                            if error.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition) {
                                warn!(
                                    %error,
                                    topic = kafka_config.input_topic,
                                    "the input topic does not exist: create it, or set kafka.create_topics = true; the worker subscribes to it once librdkafka sees it (topic.metadata.refresh.interval.ms, 5 minutes by default)"
                                );
                            } else {
                                warn!(%error, "cannot consume; retrying until the broker is back");
                            }
                        } else {
                            debug!(%error, consume_errors, "still cannot consume");
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                if consume_errors > 0 {
                    info!(failed_attempts = consume_errors, "consuming again");
                    consume_errors = 0;
                }
                last_record = Instant::now();
                summary.consumed += 1;
                series.consumed.inc();
                let consumed = Consumed {
                    partition: message.partition(),
                    offset: message.offset(),
                    generation: generation_of(&generations, message.partition()),
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().unwrap_or_default().to_vec(),
                    timestamp_millis: message.timestamp().to_millis(),
                };
                drop(message);
                match &mut stage {
                    Some(stage) => {
                        stage.send(consumed)?;
                        in_pipeline += 1;
                    }
                    None => {
                        let seq = begin(&mut publisher, &mut tracker, &consumed);
                        let copy = Output {
                            topic: &kafka_config.decisions_topic,
                            key: consumed.key.as_deref(),
                            payload: &consumed.payload,
                            headers: None,
                        };
                        if let Err(error) = publisher.send(seq, copy).await {
                            failure = Some(error);
                            break;
                        }
                    }
                }
            }
        }
    }

    // Shutdown: no more fetching; finish what is in the pipeline and in flight within the
    // bound, then commit. After a fatal producer error there is nothing to finish: no output
    // can be delivered any more.
    telemetry.health.set_ready(false);
    let mut bound_reached = false;
    if failure.is_none() {
        let bound = Duration::from_secs(kafka_config.shutdown_timeout_secs);
        let drained = tokio::time::timeout(bound, async {
            if let Some(stage) = stage.as_mut() {
                stage.close();
                while let Some(prepared) = stage.recv().await {
                    in_pipeline -= 1;
                    let upcoming = stage.upcoming();
                    if let Some((consumed, outcome)) =
                        decide(&mut engine, &generations, prepared, upcoming, &series, &mut summary)
                    {
                        publish(
                            &mut publisher,
                            &mut tracker,
                            &kafka_config,
                            &consumed,
                            &outcome,
                            &mut scratch,
                        )
                        .await?;
                    }
                }
            }
            while publisher.in_flight() > 0 {
                let result = publisher.completions(&mut completed).await;
                for record in completed.drain(..) {
                    complete(&mut tracker, &mut summary, &generations, record);
                }
                result?;
            }
            Ok::<(), PublishError>(())
        })
        .await;
        match drained {
            Ok(Ok(())) => {}
            Ok(Err(error)) => failure = Some(error),
            Err(_) => bound_reached = true,
        }
    }
    if failure.is_some() || bound_reached {
        summary.abandoned = (publisher.abandon() + in_pipeline) as u64;
    }
    if bound_reached {
        warn!(
            abandoned = summary.abandoned,
            "shutdown bound reached; unconfirmed records will be consumed again after restart"
        );
    }
    if failure.is_none() {
        if let Err(error) = publisher.producer().flush(Timeout::After(Duration::from_secs(5))) {
            warn!(%error, "producer flush incomplete");
        }
    }
    // Only complete records' offsets were stored, so this commit is right after a failure too.
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => warn!(%error, "final commit failed; the last records will be consumed again"),
    }
    info!(
        consumed = summary.consumed,
        completed = summary.completed,
        abandoned = summary.abandoned,
        new_story = summary.new_story,
        duplicate = summary.duplicate,
        exact_duplicate = summary.exact_duplicate,
        dead_lettered = summary.dead_lettered,
        "worker stopped"
    );
    if let Some(error) = failure {
        return Err(error.into());
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_coordinator_that_is_not_ready_is_asked_again_and_nothing_else_is() {
        for code in [
            RDKafkaErrorCode::NotCoordinator,
            RDKafkaErrorCode::CoordinatorLoadInProgress,
            RDKafkaErrorCode::CoordinatorNotAvailable,
        ] {
            assert!(coordinator_not_ready(&KafkaError::MetadataFetch(code)), "{code:?}");
        }
        for code in [
            RDKafkaErrorCode::UnknownTopicOrPartition,
            RDKafkaErrorCode::GroupAuthorizationFailed,
        ] {
            assert!(!coordinator_not_ready(&KafkaError::MetadataFetch(code)), "{code:?}");
        }
    }

    fn article(n: i64) -> Consumed {
        Consumed {
            partition: (n % 3) as i32,
            offset: n,
            generation: 0,
            key: None,
            payload: format!(r#"{{"id":"a{n}","source":"s","body":"story number {n} in words"}}"#).into_bytes(),
            timestamp_millis: None,
        }
    }

    /// Records come out in the order they went in, across threads, and what `upcoming` shows
    /// is what the next `recv` returns: the engine prefetches for exactly that record.
    #[tokio::test]
    async fn the_stage_keeps_order_and_shows_the_record_it_returns_next() {
        let preparer = Preparer::new(
            &crate::pipeline::config::PipelineConfig::default(),
            crate::pipeline::normalize::rules::BoilerplateRules::builtin(),
        )
        .unwrap();
        let mut stage = PrepareStage::start(preparer, 3).unwrap();
        const RECORDS: i64 = 200;
        for n in 0..RECORDS {
            stage.send(article(n)).unwrap();
        }
        stage.close();
        // Time to prepare them all, so that records are waiting ahead of each receive.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let id = |prepared: &Prepared| match prepared {
            Prepared::Article { article, .. } => article.id.clone(),
            Prepared::Invalid { invalid, .. } => panic!("a valid record was rejected: {invalid}"),
        };
        let mut shown: Option<String> = None;
        let mut offsets = Vec::new();
        let mut shown_count = 0;
        while let Some((consumed, prepared, _)) = stage.recv().await {
            if let Some(shown) = shown.take() {
                assert_eq!(shown, id(&prepared));
                shown_count += 1;
            }
            assert_eq!(id(&prepared), format!("a{}", consumed.offset));
            offsets.push(consumed.offset);
            shown = stage.upcoming().map(id);
        }
        assert_eq!(offsets, (0..RECORDS).collect::<Vec<_>>());
        assert!(shown.is_none(), "a record was shown but never returned");
        assert_eq!(
            shown_count,
            RECORDS - 1,
            "every record after the first was waiting ahead"
        );
    }
}
