//! The worker's events, each counted in the metrics, in the run's summary and logged in one
//! place: a record consumed, decided, completed; consuming failing and resuming; the periodic
//! gauges and progress line; the worker stopping.

use crate::pipeline::engine::{Engine, Verdict};
use crate::worker::config::KafkaConfig;
use crate::worker::log_limit::LogLimit;
use crate::worker::messages::{Consumed, DecidedRecord};
use crate::worker::metrics::{process_memory, Metrics};
use crate::worker::publish::InFlightRecord;
use crate::worker::standby::CaughtUp;
use chrono::Utc;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, error, info, warn};

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

impl WorkerSummary {
    /// One summary of a process running both roles: input records counted where they came in
    /// (the prepare worker), verdicts where they were made (invalid records at either).
    pub fn of_both(prepare: Self, decide: Self) -> Self {
        Self {
            consumed: prepare.consumed,
            new_story: decide.new_story,
            duplicate: decide.duplicate,
            exact_duplicate: decide.exact_duplicate,
            dead_lettered: prepare.dead_lettered + decide.dead_lettered,
            story_events: decide.story_events,
            completed: prepare.completed,
            abandoned: prepare.abandoned + decide.abandoned,
        }
    }
}

/// How often the gauges are set and the progress line is written.
const GAUGES_EVERY: Duration = Duration::from_secs(1);
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// The worker's metrics, summary and log lines.
///
/// The series counted for every record are resolved once at start: `with_label_values` hashes
/// its labels and takes a lock on each call, which is several calls per record otherwise.
/// Resolving them also exports every label value at 0, so dashboards and alerts see the series
/// before the first event.
pub struct WorkerEvents {
    metrics: Arc<Metrics>,
    input_topic: String,
    consumed: prometheus::IntCounter,
    decisions: Vec<(&'static str, prometheus::IntCounter)>,
    dead_lettered: Vec<(&'static str, prometheus::IntCounter)>,
    story_events: Vec<(&'static str, prometheus::IntCounter)>,
    /// Failed consume attempts in a row: one warning per outage, not one per retry.
    consume_errors: u32,
    last_consume_error: Option<String>,
    last_gauges: Instant,
    last_progress: Instant,
    /// Dead letters are logged a few per window, the rest counted.
    dead_letter_lines: LogLimit,
    pub summary: WorkerSummary,
}

impl WorkerEvents {
    pub fn new(metrics: &Metrics, kafka: &KafkaConfig) -> Self {
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
            metrics: Arc::new(metrics.clone()),
            input_topic: kafka.input_topic.clone(),
            consume_errors: 0,
            last_consume_error: None,
            last_gauges: Instant::now(),
            last_progress: Instant::now(),
            dead_letter_lines: LogLimit::per_record(),
            summary: WorkerSummary::default(),
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn started(&self, kafka: &KafkaConfig) {
        info!(
            brokers = kafka.brokers,
            group = kafka.group_id,
            input = kafka.input_topic,
            stories = kafka.stories_topic,
            decisions = kafka.decisions_topic,
            dlq = kafka.dlq_topic,
            "worker started"
        );
    }

    /// A decider's view restored from the fingerprint topic at start.
    pub fn restored(&self, restored: &CaughtUp, engine: &Engine) {
        info!(
            from = restored.from,
            to = restored.to,
            records = restored.records,
            secs = restored.took.as_secs_f64(),
            indexed = engine.index().len(),
            "view restored from the fingerprint topic"
        );
    }

    /// The group gave this decider nothing: another decides.
    pub fn standing_by(&self, next: i64) {
        info!(
            at = next,
            "standing by: another decider holds the fingerprint topic; this view follows its commits"
        );
    }

    /// The group gave this decider the fingerprint partition; its view was brought to the
    /// committed offset first.
    pub fn took_over(&self, caught_up: &CaughtUp) {
        info!(
            from = caught_up.to,
            caught_up = caught_up.records,
            secs = caught_up.took.as_secs_f64(),
            "deciding: the view was brought to the group's committed offset"
        );
    }

    /// A transaction was aborted; its records are consumed again.
    pub fn transaction_aborted(&self, reason: &str) {
        warn!(
            reason,
            "transaction aborted; its records are consumed again from the committed offsets"
        );
    }

    pub fn warmed_up(&self, replayed: u64, took: Duration, engine: &Engine) {
        info!(
            replayed,
            secs = took.as_secs_f64(),
            indexed = engine.index().len(),
            "state rebuilt from the input log"
        );
    }

    /// A record came in after `consume_errors` failed attempts, or at once.
    pub fn consumed(&mut self) {
        if self.consume_errors > 0 {
            info!(failed_attempts = self.consume_errors, "consuming again");
            self.consume_errors = 0;
        }
        self.summary.consumed += 1;
        self.consumed.inc();
    }

    /// The consumer returned an error instead of a record. Says whether it is a refusal: the
    /// input cannot be read until a setting changes (no authorization, the topic missing, a
    /// record this build cannot decode), as opposed to an outage that retrying outlasts.
    pub fn consume_failed(&mut self, error: &KafkaError) -> bool {
        let refused = matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::GroupAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed
                    | RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::UnknownTopic
                    | RDKafkaErrorCode::BadCompression
                    | RDKafkaErrorCode::NotImplemented
                    | RDKafkaErrorCode::UnsupportedCompressionType
                    | RDKafkaErrorCode::UnsupportedForMessageFormat
            )
        );
        let kind = if refused { "refused" } else { "transient" };
        self.metrics.consume_errors.with_label_values(&[kind]).inc();
        self.last_consume_error = Some(error.to_string());
        self.consume_errors += 1;
        if self.consume_errors > 1 {
            debug!(%error, consume_errors = self.consume_errors, "still cannot consume");
        } else if error.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownTopicOrPartition) {
            warn!(
                %error,
                topic = self.input_topic,
                "the input topic does not exist: create it, or set kafka.create_topics = true; the worker subscribes to it once librdkafka sees it (topic.metadata.refresh.interval.ms, 5 minutes by default)"
            );
        } else if refused {
            error!(%error, "cannot read the input: the worker is not ready until this is mended (check the topic, its ACLs for this principal, and the producers' compression.type)");
        } else {
            warn!(%error, "cannot consume; retrying until the broker is back");
        }
        refused
    }

    /// The consumer's last error, while it has returned no record since.
    pub fn consume_error(&self) -> Option<&str> {
        (self.consume_errors > 0)
            .then_some(self.last_consume_error.as_deref())
            .flatten()
    }

    /// A record of a partition revoked while it was being prepared: its next owner consumes it
    /// from the last commit, so it is not decided here.
    pub fn dropped_revoked(&self, consumed: &Consumed) {
        debug!(
            partition = consumed.partition,
            offset = consumed.offset,
            "record of a revoked partition dropped before deciding"
        );
    }

    /// The engine decided a record; `took` is its prepare and decide time.
    pub fn decided(&mut self, record: &DecidedRecord, took: Duration) {
        let DecidedRecord { consumed, outcome } = record;
        let metrics = &self.metrics;
        metrics.processing_seconds.observe(took.as_secs_f64());
        count(&self.decisions, &metrics.decisions, outcome.decision.verdict.as_str());
        if let Some(invalid) = &outcome.invalid {
            count(&self.dead_lettered, &metrics.dead_lettered, invalid.code());
        }
        if let Some(event) = &outcome.event {
            count(&self.story_events, &metrics.story_events, event.kind.as_str());
        }
        let summary = &mut self.summary;
        match outcome.decision.verdict {
            Verdict::NewStory => summary.new_story += 1,
            Verdict::Duplicate => summary.duplicate += 1,
            Verdict::ExactDuplicate => summary.exact_duplicate += 1,
            Verdict::Invalid => summary.dead_lettered += 1,
        }
        summary.story_events += u64::from(outcome.event.is_some());
        let (partition, offset) = (consumed.partition, consumed.offset);
        match &outcome.invalid {
            Some(invalid) => {
                let admit = self.dead_letter_lines.admit(Instant::now());
                self.dead_letters_held_back(admit.held_back);
                if admit.show {
                    warn!(partition, offset, reason = invalid.code(), error = %invalid, "invalid record sent to the dead-letter topic")
                }
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
    }

    /// The count of dead letters not logged one by one in a window, if any.
    fn dead_letters_held_back(&self, held_back: Option<u64>) {
        if let Some(count) = held_back {
            warn!(
                count,
                window_secs = self.dead_letter_lines.window().as_secs(),
                "more invalid records sent to the dead-letter topic, not logged one by one (syndic_dead_lettered_total counts them by reason)"
            );
        }
    }

    /// Every output of a record was acknowledged.
    pub fn completed(&mut self, record: &InFlightRecord) {
        self.summary.completed += 1;
        if let Some(millis) = record.input_millis {
            let lag_ms = (Utc::now().timestamp_millis() - millis).max(0);
            self.metrics.end_to_end_seconds.observe(lag_ms as f64 / 1000.0);
        }
    }

    /// The gauges (every second) and the progress line (every ten), called on each tick. The
    /// engine's gauges come from the worker that holds the view (`None` from a prepare worker,
    /// whose engine only prepares).
    pub fn tick(&mut self, engine: Option<&Engine>, in_flight: usize, preparing: usize) {
        if self.last_gauges.elapsed() >= GAUGES_EVERY {
            let metrics = &self.metrics;
            metrics.in_flight.set((in_flight + preparing) as i64);
            metrics.preparing.set(preparing as i64);
            if let Some(engine) = engine {
                metrics.index_entries.set(engine.index().len() as i64);
                metrics.index_bytes.set(engine.index().heap_bytes() as i64);
                metrics.index_evictions.set(engine.index().evicted_total() as i64);
                Metrics::raise_to(&metrics.headline_matches, engine.counters().headline_matches);
                Metrics::raise_to(&metrics.dated_ahead, engine.counters().dated_ahead);
                metrics.stories_open.set(engine.open_stories() as i64);
            }
            if let Some(resident) = process_memory("VmRSS") {
                metrics.resident_memory.set(resident as i64);
            }
            self.last_gauges = Instant::now();
            let held_back = self.dead_letter_lines.roll(Instant::now());
            self.dead_letters_held_back(held_back);
        }
        if self.last_progress.elapsed() >= PROGRESS_EVERY {
            let summary = &self.summary;
            info!(
                consumed = summary.consumed,
                completed = summary.completed,
                in_flight,
                dead_lettered = summary.dead_lettered,
                "progress"
            );
            self.last_progress = Instant::now();
        }
    }

    pub fn stopped(&mut self) {
        let held_back = self.dead_letter_lines.drain();
        self.dead_letters_held_back(held_back);
        let summary = &self.summary;
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
    }
}

/// Adds one to the series with `label` in `resolved`, or in `family` for a label not resolved.
fn count(resolved: &[(&'static str, prometheus::IntCounter)], family: &prometheus::IntCounterVec, label: &str) {
    match resolved.iter().find(|(l, _)| *l == label) {
        Some((_, counter)) => counter.inc(),
        None => family.with_label_values(&[label]).inc(),
    }
}
