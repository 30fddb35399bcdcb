//! syndic turns a stream of raw wire articles into canonical stories.
//!
//! Three layers, each a folder, and imports run only downwards:
//!
//! * [`pipeline`]: the pure core, in stage order (record, normalize, fingerprint, index,
//!   engine, story). No I/O runtime: testable and benchmarkable alone.
//! * [`worker`]: the Kafka shell (consume, prepare on a pool, decide, publish, commit in
//!   order) with its telemetry (metrics, HTTP endpoints) and shutdown.
//! * [`tools`]: evaluation on labelled files and the synthetic corpus generator.
//!
//! [`store`] keeps open stories' canonical records on local disk for the engine, behind the
//! pipeline's `CanonicalStore` trait, so that the pipeline itself does no file I/O.
//!
//! [`config`] reads the one configuration file (every tunable with its default) and hands each
//! layer its sections. `docs/architecture.md` draws the data path.

pub mod config;
pub mod pipeline;
pub mod store;
pub mod tools;
pub mod worker;
