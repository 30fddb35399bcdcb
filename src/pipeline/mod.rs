//! The pure pipeline: one raw record in, one decision and its story events out.
//!
//! No tokio, Kafka, HTTP, metrics registry or file I/O lives here (tests/layout.rs checks the
//! imports), so every stage can be tested and benchmarked alone and every shell (the CLI, the
//! Kafka worker, the tools) drives the same code. The stages, in the order a record meets them:
//!
//! 1. [`record`]: parse and validate one raw record into an article, or a typed reason why not.
//! 2. [`normalize`]: markup decoding, Unicode folding, hard-wrap repair, boilerplate removal
//!    driven by rules kept as data, tokenization.
//! 3. [`fingerprint`]: exact hash, SimHash, the verification sketch, the lead and headline keys.
//! 4. [`index`]: the near-duplicate index over SimHash blocks and anchors, bounded by arrival
//!    and compared by event time.
//! 5. [`decide`] and [`engine`]: each candidate weighed ([`decide::judge`]), the best one
//!    joined, one decision per record ([`engine::Decision`]).
//! 6. [`story`]: clusters, the canonical copy and the story events.
//!
//! [`messages`] names what passes between them; [`log_record`] is a prepared article as the
//! fingerprint topic keeps it. [`prepare`] groups stages 1 to 3, which need no shared state and may run on other threads
//! ahead of the engine.

pub mod config;
pub mod decide;
pub mod engine;
pub mod fingerprint;
pub mod index;
pub mod log_record;
pub mod messages;
pub mod normalize;
pub mod prepare;
pub mod record;
pub mod story;
