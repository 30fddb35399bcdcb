//! The worker's Kafka clients: their settings (syndic's, then the operator's passthrough
//! properties), topic creation, and the consumer context that passes rebalances to the loop and
//! reports lag.

use crate::worker::config::{resolve_property, KafkaConfig, Role};
use crate::worker::error::{self, WorkerError};
use crate::worker::http::Health;
use crate::worker::metrics::Metrics;
use crate::worker::shutdown::Shutdown;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::ClientContext;
use std::collections::BTreeMap;
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tracing::{error, info, warn};

/// What the rebalance callback tells the worker loop.
pub enum GroupEvent {
    /// The partitions the group gave this worker (none for a standby decider).
    Assigned(Vec<i32>),
    Revoked(i32),
}

/// Passes rebalances from librdkafka's callback to the worker loop, and commits what is stored
/// before revoked partitions go.
pub struct WorkerContext {
    pub events: mpsc::Sender<GroupEvent>,
    pub metrics: Metrics,
    pub input_topic: String,
    pub health: Arc<Health>,
}

/// Hears librdkafka's error callback for a client that has no other context: logs as rdkafka
/// does, and turns a refusal by the cluster into the process's [`Health`] refusal.
pub struct GuardedContext {
    pub health: Arc<Health>,
}

impl ClientContext for GuardedContext {
    fn error(&self, error: KafkaError, reason: &str) {
        on_client_error(&self.health, &error, reason);
    }
}

impl rdkafka::consumer::ConsumerContext for GuardedContext {}

/// A client's error: a refusal where retrying cannot help (the credentials or the TLS
/// certificates are wrong: librdkafka would try again for ever, and the worker would look idle),
/// otherwise logged as rdkafka does and left to librdkafka's retries.
pub fn on_client_error(health: &Health, error: &KafkaError, reason: &str) {
    let refused = match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed) => true,
        // SSL errors also come from a broker going away mid-handshake; those retrying can mend.
        Some(RDKafkaErrorCode::SSL) => reason.contains("certificate"),
        _ => false,
    };
    if refused {
        let reason = format!(
            "the cluster refused this worker: {reason} (check the credentials and certificates in \
             [kafka.client]: sasl.mechanism, sasl.username, sasl.password, ssl.ca.location)"
        );
        error!("{reason}");
        health.refuse(reason);
    } else if matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure)
    ) {
        // librdkafka's own log says which broker failed; the worker reports the outage itself.
        tracing::debug!("librdkafka: {error}: {reason}");
    } else {
        error!("librdkafka: {error}: {reason}");
    }
}

impl ClientContext for WorkerContext {
    fn error(&self, error: KafkaError, reason: &str) {
        on_client_error(&self.health, &error, reason);
    }

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
            let labels = [self.input_topic.as_str(), label.as_str()];
            if let Some(lag) = lag_of(p) {
                self.metrics.consumer_lag.with_label_values(&labels).set(lag);
            }
            if p.committed_offset >= 0 {
                self.metrics
                    .committed_offset
                    .with_label_values(&labels)
                    .set(p.committed_offset);
            }
        }
    }
}

/// A partition's lag as librdkafka reports it; before anything is committed (a new deployment,
/// an empty topic) librdkafka says -1, so the lag is then the partition's records past its start,
/// where `auto.offset.reset = earliest` begins: 0 on an empty partition. `None` for a partition
/// this consumer does not read or whose offsets are not yet known.
fn lag_of(p: &rdkafka::statistics::Partition) -> Option<i64> {
    if p.consumer_lag >= 0 {
        return Some(p.consumer_lag);
    }
    (p.desired && p.hi_offset >= 0 && p.committed_offset < 0).then(|| (p.hi_offset - p.lo_offset.max(0)).max(0))
}

impl WorkerContext {
    fn assigned_partitions(&self) -> prometheus::IntGauge {
        self.metrics.assigned_partitions.with_label_values(&[&self.input_topic])
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
                    let label = p.partition().to_string();
                    let labels = [self.input_topic.as_str(), label.as_str()];
                    let _ = self.metrics.consumer_lag.remove_label_values(&labels);
                    let _ = self.metrics.committed_offset.remove_label_values(&labels);
                }
                // Eager rebalancing revokes everything; cooperative, only these.
                self.assigned_partitions().sub(partitions.count() as i64);
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
                let assigned = partitions.elements().iter().map(|p| p.partition()).collect();
                let _ = self.events.send(GroupEvent::Assigned(assigned));
                // Eager rebalancing assigns everything after revoking it; cooperative adds.
                self.assigned_partitions().add(partitions.count() as i64);
                info!(partitions = partitions.count(), "partitions assigned")
            }
            Rebalance::Error(error) => warn!(%error, "rebalance error"),
        }
    }
}

/// A client configuration: `bootstrap.servers`, syndic's settings, the operator's
/// `[kafka.client]` properties, then the client kind's own (`own`: `[kafka.consumer]` or
/// `[kafka.producer]`); a later one wins. `${env:...}` and `${file:...}` values are read here.
pub fn client_config(
    kafka: &KafkaConfig,
    settings: &[(&str, &str)],
    own: (&'static str, &BTreeMap<String, String>),
) -> Result<ClientConfig, WorkerError> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.brokers);
    for (key, value) in settings {
        config.set(*key, *value);
    }
    for (section, properties) in [("client", &kafka.client), own] {
        for (key, value) in properties {
            config.set(key, resolve_property(section, key, value)?);
        }
    }
    Ok(config)
}

/// librdkafka stops fetching a partition for `fetch.queue.backoff.ms` (1 s by default) whenever
/// its prefetch queue is full. A worker behind its input (a backfill, a replay, a restart
/// after an outage) fills that queue at once, empties it in well under a second, and then
/// waits for the rest of the second with nothing to do (BENCHMARKS.md, end to end). At 100 ms
/// the queue (64 MB by default) is refilled long before it runs dry.
pub const FETCH_QUEUE_BACKOFF: (&str, &str) = ("fetch.queue.backoff.ms", "100");

pub fn consumer_config(kafka: &KafkaConfig) -> Result<ClientConfig, WorkerError> {
    // A transactional worker commits its offsets inside its transactions, never on its own.
    let auto_commit = if kafka.transactional() { "false" } else { "true" };
    // A transactional decider aborts when its partition is revoked, and restores its view: a
    // standby joining must not take the partition away and give it back (eager rebalancing).
    let assignment = if kafka.transactional() && kafka.role == Role::Decide {
        "cooperative-sticky"
    } else {
        "range,roundrobin"
    };
    let settings = [
        ("partition.assignment.strategy", assignment),
        FETCH_QUEUE_BACKOFF,
        ("group.id", kafka.group_id.as_str()),
        ("enable.auto.commit", auto_commit),
        ("auto.commit.interval.ms", "1000"),
        // Offsets are stored by the worker only when a record is complete.
        ("enable.auto.offset.store", "false"),
        ("auto.offset.reset", "earliest"),
        ("enable.partition.eof", "false"),
        ("session.timeout.ms", "10000"),
        ("isolation.level", "read_committed"),
        ("statistics.interval.ms", "5000"),
    ];
    client_config(kafka, &settings, ("consumer", &kafka.consumer))
}

/// The producer's settings. A prepare worker's outputs are nearly all fingerprint records,
/// which it writes uncompressed: with lz4 the two stages ran at 0.68-0.71x the standalone
/// worker's throughput on this 2-core machine, uncompressed at 0.81-0.86x (BENCHMARKS.md, "End
/// to end"), for more bytes in the topic (about 4.2 KB per ~3 KB article). `compression.type`
/// in `[kafka.producer]` overrides both.
pub fn producer_config(kafka: &KafkaConfig) -> Result<ClientConfig, WorkerError> {
    let compression = if kafka.role == Role::Prepare { "none" } else { "lz4" };
    let mut settings = vec![
        ("enable.idempotence", "true"),
        ("acks", "all"),
        ("linger.ms", "5"),
        ("compression.type", compression),
        // Never give up on an output while the broker is away: a record is retried, not lost.
        ("message.timeout.ms", "0"),
    ];
    let transactional_id;
    if kafka.transactional() {
        // Unique per process: since KIP-447 a zombie is fenced by the consumer group's
        // generation, not by a transactional id tied to partitions.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        transactional_id = format!(
            "{}.{}.{}-{nanos}",
            kafka.group_id,
            kafka.role.as_str(),
            std::process::id()
        );
        settings.push(("transactional.id", transactional_id.as_str()));
        // A worker that dies leaves its transaction open, and read_committed readers (the
        // decider) wait behind it until the broker aborts it after this timeout: 10 s, as
        // Kafka Streams sets under exactly-once (librdkafka's default is a minute).
        settings.push(("transaction.timeout.ms", "10000"));
        // An output must be delivered within its transaction: one that is not is retried
        // by aborting the transaction and consuming its records again.
        settings.push(("message.timeout.ms", "9000"));
    }
    client_config(kafka, &settings, ("producer", &kafka.producer))
}

/// Waits until the cluster answers a metadata request with this worker's client properties, so
/// that a worker that cannot connect says so within seconds: a refusal (credentials,
/// certificates) ends the wait with its reason, an unreachable cluster is logged every few
/// seconds with what was tried, and shutdown ends the wait at once (`Ok(false)`).
pub async fn reach_cluster(
    kafka: &KafkaConfig,
    health: &Arc<Health>,
    shutdown: &mut Shutdown,
) -> Result<bool, WorkerError> {
    let consumer: Arc<BaseConsumer<GuardedContext>> = Arc::new(
        client_config(kafka, &[], ("consumer", &kafka.consumer))?
            .create_with_context(GuardedContext { health: health.clone() })
            .map_err(error::client("connection probe"))?,
    );
    let started = std::time::Instant::now();
    let mut next_report = Duration::from_secs(5);
    loop {
        let probe = consumer.clone();
        let attempt = tokio::task::spawn_blocking(move || {
            let answer = probe.fetch_metadata(None, Duration::from_secs(1)).map(|_| ());
            // Serves the client's queued error events, which is where a refusal shows.
            let _ = probe.poll(Duration::ZERO);
            answer
        });
        let answer = tokio::select! {
            answer = attempt => answer.map_err(|e| WorkerError::TaskFailed(e.to_string()))?,
            () = shutdown.requested() => return Ok(false),
        };
        if let Some(reason) = health.refusal() {
            return Err(WorkerError::Refused(reason));
        }
        match answer {
            Ok(()) => return Ok(true),
            Err(error) if started.elapsed() >= next_report => {
                warn!(
                    brokers = %kafka.brokers,
                    waited_secs = started.elapsed().as_secs(),
                    %error,
                    "cannot reach the Kafka cluster yet; still trying (check kafka.brokers, the network, and security.protocol in [kafka.client])"
                );
                next_report += Duration::from_secs(5);
            }
            Err(_) => {}
        }
    }
}

/// An admin client of the cluster, for topic creation and settings.
pub fn admin_client(kafka: &KafkaConfig, health: &Arc<Health>) -> Result<AdminClient<GuardedContext>, WorkerError> {
    client_config(kafka, &[], ("client", &BTreeMap::new()))?
        .create_with_context(GuardedContext { health: health.clone() })
        .map_err(error::client("admin client"))
}

/// Creates the configured topics that do not exist yet (the stories topic compacted).
pub async fn create_topics(kafka: &KafkaConfig, health: &Arc<Health>) -> Result<(), WorkerError> {
    let admin = admin_client(kafka, health)?;
    let replication = || TopicReplication::Fixed(kafka.topic_replication);
    let topics = [
        NewTopic::new(&kafka.input_topic, kafka.topic_partitions, replication()),
        NewTopic::new(&kafka.stories_topic, kafka.topic_partitions, replication()).set("cleanup.policy", "compact"),
        NewTopic::new(&kafka.decisions_topic, kafka.topic_partitions, replication()),
        NewTopic::new(&kafka.dlq_topic, kafka.topic_partitions, replication()),
    ]
    .into_iter()
    // One partition: the one order of everything to decide (docs/state.md).
    .chain((kafka.role != Role::Standalone).then(|| NewTopic::new(&kafka.fingerprints_topic, 1, replication())))
    .collect::<Vec<_>>();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&topics, &options)
        .await
        .map_err(error::kafka("creating topics"))?;
    for result in results {
        match result {
            Ok(topic) => info!(topic, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(WorkerError::CreateTopic { topic, code }),
        }
    }
    Ok(())
}
