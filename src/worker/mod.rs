//! The Kafka shell around the pipeline: consume raw articles in a consumer group, publish
//! decisions, story events and dead letters, and store input offsets only once everything
//! derived from a record is acknowledged by the broker.
//!
//! [`run`] is the consume-prepare-decide-publish loop; its design (tasks, ordering, where
//! offsets are stored, how shutdown flows) is written up in `docs/worker.md`. [`publish`] sends
//! each record's outputs and tells when the broker has acknowledged all of them; [`offsets`]
//! turns those acknowledgements into committable offsets in input order. [`http`] and
//! [`metrics`] are the telemetry an operator reads, [`shutdown`] the signal that stops it all,
//! and [`demo`] runs the worker against an in-process cluster.

pub mod demo;
pub mod http;
pub mod metrics;
pub mod offsets;
pub mod publish;
pub mod run;
pub mod shutdown;
