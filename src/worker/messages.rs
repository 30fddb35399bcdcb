//! The records that travel between the worker's stages, each a named type: as consumed, as
//! prepared by the stateless stages, as decided by the engine.

use crate::pipeline::engine::Outcome;
use crate::pipeline::prepare::Prepared;
use crate::worker::publish::InFlightRecord;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// A consumed record, owned so that it can wait in the pipeline and cross to a prepare thread.
#[derive(Debug)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    /// The partition's assignment generation when it was consumed.
    pub generation: u64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub timestamp_millis: Option<i64>,
    /// Where the article came in, for a fingerprint record (its `syndic.source.*` headers):
    /// the decide role's outputs name the input record, not the fingerprint record.
    pub source: Option<Source>,
}

/// An input record's position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl Consumed {
    /// What the publisher and the offsets ledger keep of it while its outputs are in flight.
    pub fn in_flight(&self) -> InFlightRecord {
        InFlightRecord {
            partition: self.partition,
            offset: self.offset,
            generation: self.generation,
            input_millis: self.timestamp_millis,
        }
    }

    /// The time an undated article is given: its Kafka timestamp.
    pub fn ingest_time(&self) -> DateTime<Utc> {
        ingest_time(self.timestamp_millis)
    }
}

/// A record's Kafka timestamp as its ingest time; now, for a record without one.
pub fn ingest_time(message_millis: Option<i64>) -> DateTime<Utc> {
    message_millis
        .and_then(DateTime::from_timestamp_millis)
        .unwrap_or_else(Utc::now)
}

/// A consumed record with what the stateless stages made of it, and how long they took.
#[derive(Debug)]
pub struct PreparedRecord {
    pub consumed: Consumed,
    pub prepared: Prepared,
    pub prepare_time: Duration,
}

/// A record the engine decided, with the outputs to publish for it.
#[derive(Debug)]
pub struct DecidedRecord {
    pub consumed: Consumed,
    pub outcome: Outcome,
}
