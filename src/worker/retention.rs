//! The fingerprint topic's settings, checked at start: it is the decider's log (docs/state.md),
//! so it must keep what a restore reads, and it cannot be compacted (compaction deletes records
//! a restore reads).

use crate::worker::clients::admin_client;
use crate::worker::config::KafkaConfig;
use crate::worker::error::{kafka, WorkerError};
use rdkafka::admin::{AdminOptions, ResourceSpecifier};
use std::time::Duration;
use tracing::warn;

/// About what one fingerprint record takes in the log: 4,134 B on generated ~3.1 KB articles
/// (BENCHMARKS.md, "Deciding from the fingerprint log"), rounded up.
const RECORD_BYTES: i64 = 4_200;

/// The settings that decide what the fingerprint topic keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    /// `retention.ms`; -1 keeps records for ever.
    pub retention_ms: i64,
    /// `retention.bytes` per partition; -1 has no bound.
    pub retention_bytes: i64,
    pub compacted: bool,
}

/// What to change so that the topic keeps what the decider restores: the last `capacity`
/// records, which arrive over about `window_secs` in a steady feed. A compacted topic is an
/// error: it would delete records a restore reads, and refuses keyless ones, which the prepare
/// role would retry for ever.
pub fn advice(
    topic: &str,
    settings: LogSettings,
    capacity: usize,
    window_secs: i64,
) -> Result<Vec<String>, WorkerError> {
    if settings.compacted {
        return Err(WorkerError::FingerprintTopic(format!(
            "{topic} has cleanup.policy=compact, which deletes fingerprint records a restore reads: set cleanup.policy=delete"
        )));
    }
    let mut advice = Vec::new();
    let needed_bytes = (capacity as i64).saturating_mul(RECORD_BYTES);
    if settings.retention_bytes >= 0 && settings.retention_bytes < needed_bytes {
        advice.push(format!(
            "{topic} keeps {} bytes (retention.bytes), under the {needed_bytes} that index.capacity = {capacity} records take (about {RECORD_BYTES} B each): a restart would restore fewer articles than the index held; set retention.bytes to -1 or at least {needed_bytes}",
            settings.retention_bytes
        ));
    }
    let window_ms = window_secs.saturating_mul(1000);
    if settings.retention_ms >= 0 && settings.retention_ms < window_ms {
        advice.push(format!(
            "{topic} keeps records {} ms (retention.ms), under index.window_secs ({window_ms} ms): a restart would forget articles still compared; set retention.ms to -1 or at least {window_ms}",
            settings.retention_ms
        ));
    }
    Ok(advice)
}

/// Reads the fingerprint topic's settings and warns with what to change ([`advice`]).
pub async fn check(
    kafka_config: &KafkaConfig,
    health: &std::sync::Arc<crate::worker::http::Health>,
    capacity: usize,
    window_secs: i64,
) -> Result<(), WorkerError> {
    let topic = kafka_config.fingerprints_topic.as_str();
    let admin = admin_client(kafka_config, health)?;
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &options)
        .await
        .map_err(kafka("reading the fingerprint topic's settings"))?;
    let Some(Ok(resource)) = results.into_iter().next() else {
        warn!(
            topic,
            "cannot read the fingerprint topic's settings; create it with one partition"
        );
        return Ok(());
    };
    let number = |name: &str, default: i64| {
        resource
            .get(name)
            .and_then(|e| e.value.as_deref())
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let settings = LogSettings {
        retention_ms: number("retention.ms", -1),
        retention_bytes: number("retention.bytes", -1),
        compacted: resource
            .get("cleanup.policy")
            .and_then(|e| e.value.as_deref())
            .is_some_and(|v| v.contains("compact")),
    };
    for line in advice(topic, settings, capacity, window_secs)? {
        warn!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOREVER: LogSettings = LogSettings {
        retention_ms: -1,
        retention_bytes: -1,
        compacted: false,
    };

    #[test]
    fn a_log_that_keeps_what_a_restore_reads_needs_no_advice() {
        assert!(advice("fp", FOREVER, 1_000_000, 604_800).unwrap().is_empty());
        let enough = LogSettings {
            retention_ms: 1_209_600_000,
            retention_bytes: 5_000_000_000,
            ..FOREVER
        };
        assert!(advice("fp", enough, 1_000_000, 604_800).unwrap().is_empty());
    }

    #[test]
    fn too_short_a_log_gets_the_values_to_set_and_a_compacted_one_is_refused() {
        let short = LogSettings {
            retention_ms: 3_600_000,
            retention_bytes: 1_000_000,
            ..FOREVER
        };
        let advice_given = advice("fp", short, 1_000_000, 604_800).unwrap();
        assert_eq!(advice_given.len(), 2);
        assert!(advice_given[0].contains("at least 4200000000"), "{}", advice_given[0]);
        assert!(advice_given[1].contains("at least 604800000"), "{}", advice_given[1]);
        let compacted = LogSettings {
            compacted: true,
            ..FOREVER
        };
        let error = advice("fp", compacted, 10, 60).unwrap_err().to_string();
        assert!(error.contains("cleanup.policy=delete"), "{error}");
    }
}
