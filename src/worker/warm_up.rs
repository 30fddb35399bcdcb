//! Warm-up of a standalone worker: the engine's state rebuilt from the input log before the
//! worker consumes, so a restarted worker remembers the window it had (see docs/worker.md for
//! its limits). Also the wait for a new cluster's group coordinator, which the deciders share.

use crate::pipeline::engine::Engine;
use crate::worker::clients::{client_config, GuardedContext, FETCH_QUEUE_BACKOFF};
use crate::worker::config::KafkaConfig;
use crate::worker::error::{client, kafka, WorkerError};
use crate::worker::messages::ingest_time;
use chrono::Utc;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};
use tracing::warn;

/// How long a starting worker waits for its group's coordinator. On a new cluster the
/// consumer-offsets topic is created at the first group's first request, and until its
/// partitions have leaders the broker answers "not coordinator" (seen for several seconds on
/// a single KRaft broker); a worker that gave up then exited at its first start.
const COORDINATOR_WAIT: Duration = Duration::from_secs(60);

/// The group's committed offsets for `wanted`, asked again while the coordinator is not ready
/// (for up to [`COORDINATOR_WAIT`]); any other error is returned at once.
pub(crate) fn committed_offsets_once_coordinated(
    consumer: &BaseConsumer<GuardedContext>,
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

/// Rebuilds a standalone worker's state from the input before consuming, publishing nothing:
/// reads each partition from the first raw record of the last `window_secs` (by Kafka
/// timestamp) up to the group's committed offset. A restarted worker then remembers the window
/// as the one before it did, and a record processed again after a crash gets the decision and
/// story id it got the first time (exactly so within a partition; see docs/worker.md). The
/// deciders restore from the fingerprint topic instead ([`crate::worker::standby`]).
pub async fn warm_up(
    engine: &mut Engine,
    kafka_config: &KafkaConfig,
    health: &std::sync::Arc<crate::worker::http::Health>,
    window_secs: i64,
) -> Result<u64, WorkerError> {
    let settings = [
        ("group.id", kafka_config.group_id.as_str()),
        ("enable.auto.commit", "false"),
        ("enable.partition.eof", "false"),
        FETCH_QUEUE_BACKOFF,
    ];
    let config = client_config(kafka_config, &settings, ("consumer", &kafka_config.consumer))?;
    let consumer: BaseConsumer<GuardedContext> = config
        .create_with_context(GuardedContext { health: health.clone() })
        .map_err(client("warm-up consumer"))?;
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
                    let payload = message.payload().unwrap_or_default();
                    engine.process(payload, ingest_time(message.timestamp().to_millis()));
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
}
