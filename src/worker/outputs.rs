//! What a decided record publishes, in order: its dead letter (if invalid), its decision, its
//! story event (if any), the first two with headers naming the input record.

use crate::worker::config::KafkaConfig;
use crate::worker::messages::{Consumed, DecidedRecord, Source};
use crate::worker::publish::{Output, PublishError, Publisher};
use rdkafka::message::{Header, OwnedHeaders};

/// The source headers every decision, dead letter and fingerprint record carries: the input
/// record's topic, partition and offset.
pub fn source_headers(kafka: &KafkaConfig, consumed: &Consumed, capacity: usize) -> OwnedHeaders {
    let (topic, partition, offset) = match &consumed.source {
        Some(source) => (source.topic.as_str(), source.partition, source.offset),
        None => (kafka.input_topic.as_str(), consumed.partition, consumed.offset),
    };
    OwnedHeaders::new_with_capacity(capacity)
        .insert(Header {
            key: SOURCE_TOPIC,
            value: Some(topic.as_bytes()),
        })
        .insert(Header {
            key: SOURCE_PARTITION,
            value: Some(partition.to_string().as_bytes()),
        })
        .insert(Header {
            key: SOURCE_OFFSET,
            value: Some(offset.to_string().as_bytes()),
        })
}

pub const SOURCE_TOPIC: &str = "syndic.source.topic";
pub const SOURCE_PARTITION: &str = "syndic.source.partition";
pub const SOURCE_OFFSET: &str = "syndic.source.offset";

/// The input position a fingerprint record's headers name; `None` when they do not.
pub fn source_of(headers: Option<&rdkafka::message::BorrowedHeaders>) -> Option<Source> {
    use rdkafka::message::Headers;
    let headers = headers?;
    let value = |key: &str| {
        headers
            .iter()
            .find(|h| h.key == key)
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_string)
    };
    Some(Source {
        topic: value(SOURCE_TOPIC)?,
        partition: value(SOURCE_PARTITION)?.parse().ok()?,
        offset: value(SOURCE_OFFSET)?.parse().ok()?,
    })
}

/// Sends a prepared article's fingerprint record (record number `seq`) to the fingerprint
/// topic, keyless (the topic has one partition), with the input record's position.
pub async fn publish_fingerprint(
    publisher: &mut Publisher,
    seq: u64,
    kafka: &KafkaConfig,
    consumed: &Consumed,
    record: &[u8],
) -> Result<(), PublishError> {
    let output = Output {
        topic: &kafka.fingerprints_topic,
        // The input record's key, which the decider's dead letters carry on (the topic has one
        // partition: the key places nothing).
        key: consumed.key.as_deref(),
        payload: record,
        headers: Some(source_headers(kafka, consumed, 3)),
    };
    publisher.send(seq, output).await
}

/// Sends a decided record's outputs (record number `seq`), in order: the dead letter (if
/// invalid), the decision, the story event (if any). `scratch` is reused for serializing, so a record allocates no buffer
/// of its own: librdkafka copies each payload when it is enqueued.
pub async fn publish_decided(
    publisher: &mut Publisher,
    seq: u64,
    kafka: &KafkaConfig,
    record: &DecidedRecord,
    scratch: &mut Vec<u8>,
) -> Result<(), PublishError> {
    let DecidedRecord { consumed, outcome } = record;
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
        event.write_json(scratch)?;
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
