//! The Kafka shell around the pipeline: consume raw articles in a consumer group, publish
//! decisions, story events and dead letters, and store input offsets only once everything
//! derived from a record is acknowledged by the broker. Its design (tasks, ordering, where
//! offsets are stored, how shutdown flows) is written up in `docs/worker.md`.
//!
//! In the order a record meets them:
//!
//! * [`config`]: the worker's settings (the `kafka` and `http` sections).
//! * [`clients`]: client settings, topic creation, the rebalance and statistics callbacks.
//! * [`run`]: the [`run::Worker`] and its loop, one method per `select!` arm.
//! * [`messages`]: the record as consumed, prepared and decided, as named types.
//! * [`prepare_pool`]: the stateless stages on threads of their own, order kept.
//! * [`outputs`] and [`publish`]: what a decided record publishes, and the producer that tells
//!   when the broker has acknowledged all of it.
//! * [`offsets`]: acknowledgements turned into committable offsets in input order, per
//!   assignment generation; [`transaction`]: outputs and offsets committed together instead
//!   (`kafka.exactly_once`).
//! * [`standby`]: a decider's view restored from the fingerprint topic at start, kept at the
//!   group's committed offset while another decides, caught up when it takes over;
//!   [`warm_up`]: a standalone worker's view rebuilt from the input; [`retention`]: the
//!   fingerprint topic's settings checked against what a restore reads.
//! * [`telemetry`], [`metrics`], [`http`]: events counted and logged in one place, the
//!   Prometheus registry, the `/metrics`, `/healthz` and `/readyz` endpoints; [`log_limit`]:
//!   per-record log lines rate-limited, the rest counted.
//! * [`shutdown`]: the signal that stops it all; [`error`]: what can stop it otherwise.
//! * [`replay`]: a bounded, deterministic backfill of a topic range, by assignment, into
//!   topics of its own or files, resumable from a checkpoint.
//! * [`demo`]: the worker against an in-process cluster.

pub mod clients;
pub mod config;
pub mod demo;
pub mod error;
pub mod http;
pub mod log_limit;
pub mod messages;
pub mod metrics;
pub mod offsets;
pub mod outputs;
pub mod prepare_pool;
pub mod publish;
pub mod replay;
pub mod retention;
pub mod run;
pub mod shutdown;
pub mod standby;
pub mod telemetry;
pub mod transaction;
pub mod warm_up;
