//! What can stop the worker, each error saying what to check.

use crate::config::ConfigError;
use crate::worker::publish::PublishError;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{context}: {source} (check kafka.brokers and that the broker is up)")]
    Kafka {
        context: &'static str,
        #[source]
        source: KafkaError,
    },
    #[error("cannot create the {what}: {source} (check the librdkafka properties in [kafka.client], [kafka.consumer] and [kafka.producer]: security.protocol, ssl.*, sasl.*)")]
    Client {
        what: &'static str,
        #[source]
        source: KafkaError,
    },
    #[error("{0}")]
    Refused(String),
    #[error("replay: {0}")]
    Replay(String),
    #[error("the input could not be read for the whole idle limit: {0} (check the topic, its ACLs for this principal, and the producers' compression.type)")]
    InputRefused(String),
    #[error(transparent)]
    Secret(#[from] crate::worker::config::SecretError),
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
    #[error("the fingerprint topic cannot serve: {0}")]
    FingerprintTopic(String),
    #[error("a worker task stopped unexpectedly: {0}; restart the worker (uncommitted records are consumed again)")]
    TaskFailed(String),
    #[error("cannot read a record of the fingerprint topic: {0}")]
    LogRecord(#[from] crate::pipeline::log_record::LogRecordError),
}

/// Wraps a client error with what the worker was doing.
pub fn kafka(context: &'static str) -> impl FnOnce(KafkaError) -> WorkerError {
    move |source| WorkerError::Kafka { context, source }
}

/// Wraps an error creating a client, which comes from its properties, not from the broker.
pub fn client(what: &'static str) -> impl FnOnce(KafkaError) -> WorkerError {
    move |source| WorkerError::Client { what, source }
}
