//! The Kafka shell around the core engine: consume raw articles in a consumer group, publish
//! decisions, story events and dead letters, and store input offsets only once everything
//! derived from a record is acknowledged by the broker.
//!
//! [`worker`] is the consume-process-produce loop; its design (tasks, ordering, where offsets
//! are stored, how shutdown flows) is written up in `docs/worker.md`. [`publish`] sends each
//! record's outputs and tells when the broker has acknowledged all of them.

pub mod demo;
pub mod publish;
pub mod worker;
