//! `syndic replay`: a bounded, deterministic backfill of a topic's range.
//!
//! The range is resolved once at start (`--from`/`--to`: earliest, latest, offsets per
//! partition, or a time) and frozen, so a replay ends by itself while producers keep writing.
//! It reads by partition assignment with no consumer group: it commits nothing and leaves no
//! group behind. Records are merged across partitions in one defined order, (Kafka timestamp,
//! payload hash, partition, offset), and decided by one engine whose ingest time is the record's timestamp,
//! so two replays of a range write the same bytes. Its outputs go to topics of its own (a
//! suffix), to files, or to the live topics only when asked. A checkpoint file records how many
//! records of the merge order are written: an interrupted replay decides those again quietly
//! and goes on, writing what an uninterrupted one would.

use crate::config::CoreConfig;
use crate::pipeline::messages::{PlacedDecision, Position};
use crate::worker::clients::{client_config, create_topics, reach_cluster, GuardedContext};
use crate::worker::config::{KafkaConfig, Role};
use crate::worker::error::{client, kafka, WorkerError};
use crate::worker::http::Telemetry;
use crate::worker::messages::{ingest_time, Consumed, DecidedRecord, PreparedRecord};
use crate::worker::outputs::publish_decided;
use crate::worker::prepare_pool::{PreparePool, PIPELINE_DEPTH};
use crate::worker::publish::{InFlightRecord, Publisher};
use crate::worker::shutdown::Shutdown;
use chrono::{DateTime, Utc};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tracing::info;

/// One end of a replay's range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    Earliest,
    Latest,
    /// Offsets per partition (`0:1200,1:900`); partitions not named take the other end's
    /// default (the beginning for `--from`, the end for `--to`).
    Offsets(BTreeMap<i32, i64>),
    /// The first record at or after this time (`--to`: records before it).
    Time(DateTime<Utc>),
}

impl std::str::FromStr for Bound {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        match text {
            "earliest" => return Ok(Bound::Earliest),
            "latest" => return Ok(Bound::Latest),
            _ => {}
        }
        if let Ok(time) = DateTime::parse_from_rfc3339(text) {
            return Ok(Bound::Time(time.with_timezone(&Utc)));
        }
        let mut offsets = BTreeMap::new();
        for part in text.split(',') {
            let parsed = part
                .split_once(':')
                .and_then(|(p, o)| Some((p.trim().parse::<i32>().ok()?, o.trim().parse::<i64>().ok()?)));
            match parsed {
                Some((partition, offset)) if partition >= 0 && offset >= 0 => {
                    offsets.insert(partition, offset);
                }
                _ => {
                    return Err(format!(
                        "{text:?} is not a bound: give earliest, latest, offsets per partition such as 0:1200,1:900, or an RFC 3339 time such as 2026-12-01T00:00:00Z"
                    ))
                }
            }
        }
        Ok(Bound::Offsets(offsets))
    }
}

/// Where a replay writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// The configured output topics with this suffix (`.backfill`); empty means the live
    /// topics, which the caller allows only when asked.
    Topics { suffix: String },
    /// `decisions.jsonl`, `stories.jsonl` and `dead-letters.jsonl` in this directory.
    Files { dir: PathBuf },
}

/// What `syndic replay` was asked.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub input: ReplayInput,
    pub sink: Sink,
    /// The ingest time of records that carry none (lines of files): given, or the first
    /// start's, kept in the checkpoint.
    pub ingest_time: Option<DateTime<Utc>>,
    /// Where the checkpoint is kept; removed when the replay completes.
    pub checkpoint: PathBuf,
    /// How often outputs are flushed and the checkpoint written: what an interruption costs
    /// again, against a flush's pause.
    pub checkpoint_interval: Duration,
    /// A progress bar on a terminal; a log line every few seconds otherwise.
    pub progress_bar: bool,
    /// Threads that prepare while one decides (at least 1).
    pub threads: usize,
}

/// What a replay did.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct ReplaySummary {
    /// Records in the range.
    pub records: u64,
    /// Decided again quietly from a checkpoint (written by an earlier, interrupted run).
    pub resumed: u64,
    /// Decided and written by this run.
    pub written: u64,
    pub invalid: u64,
    /// Whether the whole range was written (false when shutdown stopped it first).
    pub complete: bool,
}

/// The range as resolved at the first start: `[start, end)` per partition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Range {
    topic: String,
    partitions: Vec<(i32, i64, i64)>,
}

impl Range {
    fn records(&self) -> u64 {
        self.partitions.iter().map(|&(_, s, e)| (e - s).max(0) as u64).sum()
    }
}

/// What the checkpoint file holds: the range and how far its merge order is written.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    range: Range,
    sink: String,
    /// Records of the merge order whose outputs are all written.
    done: u64,
    /// For a file sink, each file's length at `done` (what lies past it is cut on resume).
    file_lengths: BTreeMap<String, u64>,
    /// The ingest time of records that carry none, in Unix milliseconds.
    ingest_millis: i64,
}

/// Records a topic sink lets wait for their acknowledgements before it waits for them.
const MAX_UNACKNOWLEDGED: usize = 50_000;
/// A partition's buffered records over which it is paused, until it drains under a fifth.
const BUFFER_PAUSE: usize = 20_000;

/// Runs a replay to the end of its range, or until shutdown.
pub async fn replay(
    config: CoreConfig,
    options: ReplayOptions,
    mut shutdown: Shutdown,
    telemetry: Telemetry,
) -> Result<ReplaySummary, WorkerError> {
    let kafka_config = &config.kafka;
    let needs_cluster =
        matches!(options.input, ReplayInput::Topic { .. }) || matches!(options.sink, Sink::Topics { .. });
    if needs_cluster && !reach_cluster(kafka_config, &telemetry.health, &mut shutdown).await? {
        return Ok(ReplaySummary::default());
    }
    let sink_name = match &options.sink {
        Sink::Topics { suffix } => format!("topics{suffix}"),
        Sink::Files { dir } => format!("files:{}", dir.display()),
    };
    let (mut source, resolved) = Source::open(kafka_config, &options.input, &telemetry)?;
    let checkpoint = read_checkpoint(&options.checkpoint)?;
    let (range, resumed_from, lengths, ingest) = match checkpoint {
        Some(c) if c.range.topic == resolved.topic && c.sink == sink_name && same_start(&c.range, &resolved) => {
            info!(done = c.done, checkpoint = %options.checkpoint.display(), "resuming an interrupted replay: the records it wrote are decided again quietly");
            (c.range, c.done, c.file_lengths, ingest_time(Some(c.ingest_millis)))
        }
        Some(_) => {
            return Err(WorkerError::Replay(format!(
                "the checkpoint {} belongs to another replay (input, range or sink differ): remove it to start afresh, or give --checkpoint another path",
                options.checkpoint.display()
            )))
        }
        None => (resolved, 0, BTreeMap::new(), options.ingest_time.unwrap_or_else(Utc::now)),
    };
    source.start(&range, ingest)?;
    let total = range.records();
    info!(input = %range.topic, records = total, partitions = range.partitions.len(), "replaying a frozen range");
    let mut writer = match &options.sink {
        Sink::Topics { suffix } => {
            let mut out = kafka_config.clone();
            out.stories_topic.push_str(suffix);
            out.decisions_topic.push_str(suffix);
            out.dlq_topic.push_str(suffix);
            out.role = Role::Standalone;
            if !suffix.is_empty() {
                create_topics(&out, &telemetry.health).await?;
            }
            let publisher = Publisher::new(
                &crate::worker::clients::producer_config(&out)?,
                std::sync::Arc::new(telemetry.metrics.clone()),
                &telemetry.health,
            )
            .map_err(client("replay producer"))?;
            Writer::Topics(Box::new(TopicWriter {
                publisher,
                kafka: out,
                scratch: Vec::new(),
            }))
        }
        Sink::Files { dir } => Writer::Files(FileWriter::open(
            dir,
            &lengths,
            resumed_from > 0,
            match options.input {
                ReplayInput::Topic { .. } => Some(kafka_config.input_topic.clone()),
                ReplayInput::Files(_) => None,
            },
        )?),
    };

    let mut engine = config.engine()?;
    let mut summary = ReplaySummary {
        records: total,
        ..Default::default()
    };
    let mut progress = Progress::new((total > 0).then_some(total), options.progress_bar);
    let mut seq = 0u64;
    let mut last_checkpoint = Instant::now();
    // The stateless stages on threads of their own, records back in merge order.
    let mut pool = PreparePool::start(engine.preparer(), options.threads)?;
    let mut ended = false;
    loop {
        if shutdown.is_requested() {
            break;
        }
        if let Some(reason) = telemetry.health.refusal() {
            return Err(WorkerError::Refused(reason));
        }
        while !ended && pool.held() + 1 < PIPELINE_DEPTH {
            match source.next()? {
                Next::Record(record) => pool.send(record)?,
                Next::Wait => break,
                Next::End => ended = true,
            }
        }
        if pool.held() == 0 {
            if ended {
                summary.complete = true;
                break;
            }
            tokio::task::yield_now().await;
            continue;
        }
        let Some(PreparedRecord { consumed, prepared, .. }) = pool.recv().await else {
            return Err(WorkerError::PrepareStopped);
        };
        if seq < resumed_from {
            engine.decide_quietly(prepared);
            summary.resumed += 1;
        } else {
            let outcome = engine.decide(prepared);
            summary.invalid += u64::from(outcome.invalid.is_some());
            writer.write(DecidedRecord { consumed, outcome }).await?;
            summary.written += 1;
        }
        seq += 1;
        progress.set(seq);
        if last_checkpoint.elapsed() >= options.checkpoint_interval && seq > resumed_from {
            let lengths = writer.flush().await?;
            write_checkpoint(&options.checkpoint, &range, &sink_name, seq, lengths, ingest)?;
            last_checkpoint = Instant::now();
        }
    }
    let lengths = writer.flush().await?;
    if total == 0 {
        summary.records = seq;
    }
    progress.finish(&summary);
    if summary.complete {
        match std::fs::remove_file(&options.checkpoint) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(WorkerError::Replay(format!(
                    "cannot remove the checkpoint {}: {e}",
                    options.checkpoint.display()
                )))
            }
        }
    } else if seq > resumed_from {
        write_checkpoint(&options.checkpoint, &range, &sink_name, seq, lengths, ingest)?;
        info!(done = seq, checkpoint = %options.checkpoint.display(), "replay interrupted; run the same command again to resume");
    }
    Ok(summary)
}

/// What a replay reads.
#[derive(Debug, Clone)]
pub enum ReplayInput {
    /// A range of `kafka.input_topic`.
    Topic { from: Bound, to: Bound },
    /// Files, in order (see [`crate::tools::input`]).
    Files(Vec<crate::tools::input::Input>),
}

enum Next {
    Record(Consumed),
    /// Nothing yet: the fetcher is on its way.
    Wait,
    End,
}

/// Where the records come from: a topic's partitions merged, or files line by line.
enum Source {
    Topic {
        consumer: Box<BaseConsumer<GuardedContext>>,
        merge: Merge,
    },
    Files {
        lines: crate::tools::input::Lines,
        /// The time every line is given (records of a topic carry their own).
        ingest_millis: i64,
    },
}

impl Source {
    /// Opens the input and resolves its range (for files: their names).
    fn open(
        kafka_config: &KafkaConfig,
        input: &ReplayInput,
        telemetry: &Telemetry,
    ) -> Result<(Self, Range), WorkerError> {
        match input {
            ReplayInput::Topic { from, to } => {
                let settings = [
                    // librdkafka wants a group id to assign partitions; the replay never joins
                    // it, fetches its offsets or commits to it, so the broker never learns of it.
                    ("group.id", "syndic-replay-never-joined"),
                    ("enable.auto.commit", "false"),
                    ("enable.auto.offset.store", "false"),
                    ("enable.partition.eof", "false"),
                    ("isolation.level", "read_committed"),
                    crate::worker::clients::FETCH_QUEUE_BACKOFF,
                ];
                let consumer: BaseConsumer<GuardedContext> =
                    client_config(kafka_config, &settings, ("consumer", &kafka_config.consumer))?
                        .create_with_context(GuardedContext {
                            health: telemetry.health.clone(),
                        })
                        .map_err(client("replay consumer"))?;
                let range = resolve(&consumer, &kafka_config.input_topic, from, to)?;
                let merge = Merge::new(&range);
                Ok((
                    Source::Topic {
                        consumer: Box::new(consumer),
                        merge,
                    },
                    range,
                ))
            }
            ReplayInput::Files(inputs) => {
                let names: Vec<String> = inputs.iter().map(|i| i.name()).collect();
                let range = Range {
                    topic: format!("files:{}", names.join(",")),
                    partitions: Vec::new(),
                };
                Ok((
                    Source::Files {
                        lines: crate::tools::input::Lines::new(inputs.clone(), Default::default()),
                        ingest_millis: 0,
                    },
                    range,
                ))
            }
        }
    }

    /// Starts reading the range (the one kept in a checkpoint, when resuming); lines of files
    /// take `ingest` as their time.
    fn start(&mut self, range: &Range, ingest: DateTime<Utc>) -> Result<(), WorkerError> {
        if let Source::Files { ingest_millis, .. } = self {
            *ingest_millis = ingest.timestamp_millis();
        }
        if let Source::Topic { consumer, merge } = self {
            *merge = Merge::new(range);
            let mut tpl = TopicPartitionList::new();
            for &(partition, start, end) in &range.partitions {
                if start < end {
                    tpl.add_partition_offset(&range.topic, partition, Offset::Offset(start))
                        .map_err(kafka("assigning the range"))?;
                }
            }
            consumer.assign(&tpl).map_err(kafka("assigning the range"))?;
        }
        Ok(())
    }

    fn next(&mut self) -> Result<Next, WorkerError> {
        match self {
            Source::Topic { consumer, merge } => {
                if let Some(record) = merge.pop(consumer)? {
                    return Ok(Next::Record(record));
                }
                if merge.finished() {
                    return Ok(Next::End);
                }
                match consumer.poll(Duration::from_millis(50)) {
                    Some(Ok(message)) => merge.push(consumer, &message)?,
                    Some(Err(error)) => {
                        return Err(WorkerError::Replay(format!("cannot read {}: {error}", merge.topic)))
                    }
                    None => {}
                }
                Ok(match merge.pop(consumer)? {
                    Some(record) => Next::Record(record),
                    None => Next::Wait,
                })
            }
            Source::Files { lines, ingest_millis } => {
                let next = lines.next_line().map_err(|e| WorkerError::Replay(e.to_string()))?;
                let Some(crate::tools::input::Line { input, line_no, record }) = next else {
                    return Ok(Next::End);
                };
                Ok(Next::Record(Consumed {
                    partition: 0,
                    offset: line_no as i64,
                    generation: 0,
                    key: None,
                    payload: record.to_vec(),
                    timestamp_millis: Some(*ingest_millis),
                    source: Some(crate::worker::messages::Source {
                        topic: input.to_string(),
                        partition: 0,
                        offset: line_no as i64,
                    }),
                }))
            }
        }
    }
}

/// Whether a checkpoint's range starts where the new command's does (its end was frozen at the
/// first start and is kept).
fn same_start(kept: &Range, now: &Range) -> bool {
    let starts = |r: &Range| r.partitions.iter().map(|&(p, s, _)| (p, s)).collect::<Vec<_>>();
    starts(kept) == starts(now)
}

/// Resolves the bounds against the topic's partitions and their offsets now.
fn resolve(
    consumer: &BaseConsumer<GuardedContext>,
    topic: &str,
    from: &Bound,
    to: &Bound,
) -> Result<Range, WorkerError> {
    let timeout = Duration::from_secs(30);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(kafka("reading the replayed topic's metadata"))?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        return Err(WorkerError::Replay(format!(
            "the topic {topic} does not exist or has no partitions: check --input-topic and kafka.brokers"
        )));
    }
    let mut resolved = Vec::new();
    for &partition in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, timeout)
            .map_err(kafka("reading the replayed topic's offsets"))?;
        let at = |bound: &Bound, default: i64| -> Result<i64, WorkerError> {
            Ok(match bound {
                Bound::Earliest => low,
                Bound::Latest => high,
                Bound::Offsets(map) => map.get(&partition).copied().unwrap_or(default).clamp(low, high),
                Bound::Time(time) => offset_for_time(consumer, topic, partition, *time, high)?,
            })
        };
        let start = at(from, low)?;
        let end = at(to, high)?;
        resolved.push((partition, start, end.max(start)));
    }
    for bound in [from, to] {
        if let Bound::Offsets(map) = bound {
            if let Some(unknown) = map.keys().find(|p| !partitions.contains(p)) {
                return Err(WorkerError::Replay(format!(
                    "partition {unknown} is not a partition of {topic} (it has {}): check the offsets given",
                    partitions.len()
                )));
            }
        }
    }
    Ok(Range {
        topic: topic.to_string(),
        partitions: resolved,
    })
}

/// The first offset at or after `time` (the broker's offsets-for-times), `high` past the end.
fn offset_for_time(
    consumer: &BaseConsumer<GuardedContext>,
    topic: &str,
    partition: i32,
    time: DateTime<Utc>,
    high: i64,
) -> Result<i64, WorkerError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(time.timestamp_millis()))
        .map_err(kafka("asking for offsets by time"))?;
    let found = consumer
        .offsets_for_times(tpl, Duration::from_secs(30))
        .map_err(kafka("asking for offsets by time"))?;
    Ok(match found.find_partition(topic, partition).map(|p| p.offset()) {
        Some(Offset::Offset(offset)) => offset,
        _ => high,
    })
}

/// Merges the partitions' records in (timestamp, payload hash, partition, offset) order: a record is given
/// out once every partition not yet at its end has one buffered to compare it with.
struct Merge {
    /// Per partition: its buffered records, the next offset to take, and its end.
    partitions: BTreeMap<i32, Lane>,
    topic: String,
}

struct Lane {
    /// Records taken from the partition, each with the hash of its payload.
    buffered: VecDeque<(u64, Consumed)>,
    next: i64,
    end: i64,
    paused: bool,
}

impl Merge {
    fn new(range: &Range) -> Self {
        let partitions = range
            .partitions
            .iter()
            .map(|&(p, start, end)| {
                (
                    p,
                    Lane {
                        buffered: VecDeque::new(),
                        next: start,
                        end,
                        paused: false,
                    },
                )
            })
            .collect();
        Self {
            partitions,
            topic: range.topic.clone(),
        }
    }

    fn finished(&self) -> bool {
        self.partitions
            .values()
            .all(|l| l.next >= l.end && l.buffered.is_empty())
    }

    fn push(
        &mut self,
        consumer: &BaseConsumer<GuardedContext>,
        message: &rdkafka::message::BorrowedMessage<'_>,
    ) -> Result<(), WorkerError> {
        let Some(lane) = self.partitions.get_mut(&message.partition()) else {
            return Ok(());
        };
        // Past the frozen end, or a record already taken (a transaction marker's gap is fine).
        if message.offset() >= lane.end || message.offset() < lane.next {
            return Ok(());
        }
        let payload = message.payload().unwrap_or_default();
        lane.buffered.push_back((
            xxhash_rust::xxh3::xxh3_64(payload),
            Consumed {
                partition: message.partition(),
                offset: message.offset(),
                generation: 0,
                key: message.key().map(<[u8]>::to_vec),
                payload: payload.to_vec(),
                timestamp_millis: message.timestamp().to_millis(),
                source: None,
            },
        ));
        lane.next = message.offset() + 1;
        if lane.buffered.len() >= BUFFER_PAUSE && !lane.paused {
            lane.paused = true;
            self.pause(consumer, message.partition(), true)?;
        }
        Ok(())
    }

    fn pause(&self, consumer: &BaseConsumer<GuardedContext>, partition: i32, pause: bool) -> Result<(), WorkerError> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, partition);
        let result = if pause {
            consumer.pause(&tpl)
        } else {
            consumer.resume(&tpl)
        };
        result.map_err(kafka("pausing a partition of the replay"))
    }

    /// The next record in merge order, when it can be known. Records of the earliest time
    /// buffered go first, and among them the least (payload hash, partition, offset): so that
    /// the same records in a topic of another partition count come in the same order, a time's
    /// records are given out only once every partition has shown one past it (each
    /// partition's times rising, as one producer's or the broker's append times do).
    fn pop(&mut self, consumer: &BaseConsumer<GuardedContext>) -> Result<Option<Consumed>, WorkerError> {
        let time = |record: &Consumed| record.timestamp_millis.unwrap_or(-1);
        let mut earliest: Option<i64> = None;
        for lane in self.partitions.values() {
            match lane.buffered.front() {
                Some((_, head)) => earliest = Some(earliest.map_or(time(head), |t| t.min(time(head)))),
                // A partition with more to come and nothing buffered: its next record could
                // come first.
                None if lane.next < lane.end => return Ok(None),
                None => {}
            }
        }
        let Some(t) = earliest else {
            return Ok(None);
        };
        for lane in self.partitions.values() {
            // More of time `t` may follow in this partition (a paused one is not waited for:
            // its buffer is full of it).
            let shown_past = lane.buffered.back().is_some_and(|(_, last)| time(last) > t);
            if lane.next < lane.end && !shown_past && !lane.paused {
                return Ok(None);
            }
        }
        let mut best: Option<((u64, i32, i64), i32, usize)> = None;
        for (&partition, lane) in &self.partitions {
            for (i, (hash, record)) in lane.buffered.iter().enumerate() {
                if time(record) != t {
                    break;
                }
                let key = (*hash, partition, record.offset);
                if best.is_none_or(|(b, _, _)| key < b) {
                    best = Some((key, partition, i));
                }
            }
        }
        let Some((_, partition, index)) = best else {
            return Ok(None);
        };
        let Some(lane) = self.partitions.get_mut(&partition) else {
            return Ok(None);
        };
        let record = lane.buffered.remove(index).map(|(_, record)| record);
        if lane.paused && lane.buffered.len() < BUFFER_PAUSE / 5 {
            lane.paused = false;
            self.pause(consumer, partition, false)?;
        }
        Ok(record)
    }
}

enum Writer {
    Topics(Box<TopicWriter>),
    Files(FileWriter),
}

struct TopicWriter {
    publisher: Publisher,
    kafka: KafkaConfig,
    scratch: Vec<u8>,
}

impl Writer {
    async fn write(&mut self, record: DecidedRecord) -> Result<(), WorkerError> {
        match self {
            Writer::Topics(w) => {
                let seq = w.publisher.begin(InFlightRecord {
                    partition: record.consumed.partition,
                    offset: record.consumed.offset,
                    generation: 0,
                    input_millis: record.consumed.timestamp_millis,
                });
                publish_decided(&mut w.publisher, seq, &w.kafka, &record, &mut w.scratch).await?;
                // Delivery reports are taken at each checkpoint, or here once this many are
                // waiting. (Taking them after every record with a zero timeout cost a timer
                // tick, about a millisecond, per record.)
                if w.publisher.in_flight() >= MAX_UNACKNOWLEDGED {
                    return self.flush().await.map(|_| ());
                }
                Ok(())
            }
            Writer::Files(w) => w.write(&record),
        }
    }

    /// Waits until everything written so far is acknowledged or on disk; for files, returns
    /// their lengths.
    async fn flush(&mut self) -> Result<BTreeMap<String, u64>, WorkerError> {
        match self {
            Writer::Topics(w) => {
                let mut done = Vec::new();
                while w.publisher.in_flight() > 0 {
                    w.publisher.completions(&mut done).await?;
                    done.clear();
                }
                Ok(BTreeMap::new())
            }
            Writer::Files(w) => w.flush(),
        }
    }
}

/// The file sink: one JSON object per line, as `syndic dedup` writes them.
struct FileWriter {
    files: Vec<(&'static str, std::io::BufWriter<std::fs::File>)>,
    scratch: Vec<u8>,
    /// The topic replayed, or `None` for files, whose records' positions are input and line.
    topic: Option<String>,
}

const DECISIONS: usize = 0;
const STORIES: usize = 1;
const DEAD_LETTERS: usize = 2;

impl FileWriter {
    fn open(
        dir: &Path,
        lengths: &BTreeMap<String, u64>,
        resume: bool,
        topic: Option<String>,
    ) -> Result<Self, WorkerError> {
        let failed = |what: &str, e: std::io::Error| {
            WorkerError::Replay(format!(
                "cannot {what} in {}: {e} (check the directory and its permissions)",
                dir.display()
            ))
        };
        std::fs::create_dir_all(dir).map_err(|e| failed("create the output directory", e))?;
        let mut files = Vec::new();
        for name in ["decisions.jsonl", "stories.jsonl", "dead-letters.jsonl"] {
            let path = dir.join(name);
            let file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| failed("open an output file", e))?;
            // A fresh replay starts the files empty; a resumed one cuts what was written after
            // its checkpoint, which it writes again.
            let keep = if resume {
                lengths.get(name).copied().unwrap_or(0)
            } else {
                0
            };
            file.set_len(keep).map_err(|e| failed("cut an output file", e))?;
            let mut file = file;
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(keep))
                .map_err(|e| failed("seek an output file", e))?;
            files.push((name, std::io::BufWriter::with_capacity(1 << 20, file)));
        }
        Ok(Self {
            files,
            scratch: Vec::new(),
            topic,
        })
    }

    fn write(&mut self, record: &DecidedRecord) -> Result<(), WorkerError> {
        let failed =
            |e: std::io::Error| WorkerError::Replay(format!("cannot write an output file: {e} (check the disk)"));
        let outcome = &record.outcome;
        if let Some(invalid) = &outcome.invalid {
            let letter = serde_json::json!({
                "reason": invalid.code(),
                "error": invalid.to_string(),
                "partition": record.consumed.partition,
                "offset": record.consumed.offset,
                "record": String::from_utf8_lossy(&record.consumed.payload),
            });
            Self::line(&mut self.files[DEAD_LETTERS].1, &letter).map_err(failed)?;
        }
        let consumed = &record.consumed;
        let position = match (&self.topic, &consumed.source) {
            (Some(topic), _) => Position::Offset {
                topic,
                partition: consumed.partition,
                offset: consumed.offset,
            },
            (None, source) => Position::Line {
                input: source.as_ref().map_or("", |s| s.topic.as_str()),
                line: consumed.offset.unsigned_abs(),
            },
        };
        let placed = PlacedDecision {
            decision: &outcome.decision,
            position,
        };
        Self::line(&mut self.files[DECISIONS].1, &placed).map_err(failed)?;
        if let Some(event) = &outcome.event {
            self.scratch.clear();
            event
                .write_json(&mut self.scratch)
                .map_err(|e| WorkerError::Replay(format!("cannot write a story event: {e}")))?;
            self.scratch.push(b'\n');
            self.files[STORIES].1.write_all(&self.scratch).map_err(failed)?;
        }
        Ok(())
    }

    fn line(out: &mut std::io::BufWriter<std::fs::File>, value: &impl serde::Serialize) -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, value)?;
        out.write_all(b"\n")
    }

    fn flush(&mut self) -> Result<BTreeMap<String, u64>, WorkerError> {
        let mut lengths = BTreeMap::new();
        for (name, out) in &mut self.files {
            out.flush()
                .and_then(|()| out.get_ref().sync_data())
                .map_err(|e| WorkerError::Replay(format!("cannot write {name}: {e} (check the disk)")))?;
            let length = out
                .get_ref()
                .metadata()
                .map_err(|e| WorkerError::Replay(format!("cannot read the length of {name}: {e}")))?
                .len();
            lengths.insert(name.to_string(), length);
        }
        Ok(lengths)
    }
}

fn read_checkpoint(path: &Path) -> Result<Option<Checkpoint>, WorkerError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            WorkerError::Replay(format!(
                "the checkpoint {} cannot be read ({e}): remove it to start the replay afresh",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(WorkerError::Replay(format!(
            "cannot read the checkpoint {}: {e}",
            path.display()
        ))),
    }
}

/// Writes the checkpoint beside its final path and renames it there, so a crash mid-write
/// leaves the previous one.
fn write_checkpoint(
    path: &Path,
    range: &Range,
    sink: &str,
    done: u64,
    file_lengths: BTreeMap<String, u64>,
    ingest_time: DateTime<Utc>,
) -> Result<(), WorkerError> {
    let checkpoint = Checkpoint {
        range: range.clone(),
        sink: sink.to_string(),
        done,
        file_lengths,
        ingest_millis: ingest_time.timestamp_millis(),
    };
    let failed = |e: std::io::Error| {
        WorkerError::Replay(format!(
            "cannot write the checkpoint {}: {e} (check --checkpoint's directory)",
            path.display()
        ))
    };
    let partial = path.with_extension("partial");
    let bytes = serde_json::to_vec(&checkpoint).map_err(|e| WorkerError::Replay(e.to_string()))?;
    std::fs::write(&partial, bytes).map_err(failed)?;
    std::fs::rename(&partial, path).map_err(failed)
}

/// Progress: a bar with records, rate and ETA on a terminal; a log line every 5 s otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    /// `total`: the records of the range, when known (files are not counted ahead).
    fn new(total: Option<u64>, on_terminal: bool) -> Self {
        let bar = on_terminal.then(|| {
            let (bar, template) = match total {
                Some(total) => (
                    indicatif::ProgressBar::new(total),
                    "{bar:40} {pos}/{len} records  {per_sec}  ETA {eta}",
                ),
                None => (
                    indicatif::ProgressBar::new_spinner(),
                    "{spinner} {pos} records  {per_sec}",
                ),
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar
        });
        Self {
            bar,
            total,
            done: 0,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    fn set(&mut self, done: u64) {
        self.done = done;
        if let Some(bar) = &self.bar {
            if done % 256 == 0 {
                bar.set_position(done);
            }
        } else if self.last_line.elapsed() >= Duration::from_secs(5) {
            self.last_line = Instant::now();
            let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            match self.total {
                Some(total) => {
                    let eta = total.saturating_sub(done) as f64 / rate.max(1e-9);
                    info!(done, total, rate = rate as u64, eta_secs = eta as u64, "replaying");
                }
                None => info!(done, rate = rate as u64, "replaying"),
            }
        }
    }

    fn finish(&self, summary: &ReplaySummary) {
        if let Some(bar) = &self.bar {
            bar.set_position(self.done);
            bar.finish();
        }
        let secs = self.started.elapsed().as_secs_f64();
        info!(
            records = summary.records,
            written = summary.written,
            resumed = summary.resumed,
            invalid = summary.invalid,
            complete = summary.complete,
            secs = format!("{secs:.1}"),
            rate = (self.done as f64 / secs.max(1e-9)) as u64,
            "replay finished"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_parse_as_documented_and_a_bad_one_says_what_is_accepted() {
        assert_eq!("earliest".parse::<Bound>(), Ok(Bound::Earliest));
        assert_eq!("latest".parse::<Bound>(), Ok(Bound::Latest));
        assert_eq!(
            "0:1200, 1:900".parse::<Bound>(),
            Ok(Bound::Offsets(BTreeMap::from([(0, 1200), (1, 900)])))
        );
        let time = "2026-12-01T00:00:00Z".parse::<Bound>().unwrap();
        assert_eq!(time, Bound::Time(DateTime::from_timestamp(1_796_083_200, 0).unwrap()));
        for bad in ["yesterday", "0:-1", "a:1", "1:", ""] {
            let err = bad.parse::<Bound>().unwrap_err();
            assert!(err.contains("earliest, latest"), "{bad}: {err}");
        }
    }
}
