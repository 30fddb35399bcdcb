//! syndic turns a stream of raw wire articles into canonical stories.
//!
//! The pipeline core is pure Rust with no I/O runtime, so it can be tested and benchmarked alone;
//! the CLI (and the Kafka worker) are thin shells around [`engine::Engine`]. The modules follow
//! the stages an article passes through, in order:
//!
//! 1. [`article`]: parse and validate one raw record (bad records get a typed reason).
//! 2. [`normalize`]: HTML left by scrapers decoded ([`markup`]), Unicode folding, hard-wrap
//!    repair, boilerplate stripping driven by the rules in [`rules`] (kept as data in
//!    `config/boilerplate.toml`) and tokenization.
//! 3. [`fingerprint`]: exact xxh3 hash, 64-bit SimHash and the verification [`sketch`].
//! 4. [`index`]: Hamming-radius search over SimHashes without scanning, within a time window;
//!    its postings are kept in [`postings`].
//! 5. [`story`]: clusters, canonical copy selection and story events.
//!
//! [`prepare`] groups the stateless stages 1 to 3, which may run on another thread ahead of the
//! stateful ones; [`engine`] runs all the stages for one record; [`config`] holds every tunable with its default;
//! [`eval`] scores the engine on labelled data; [`corpus`] generates synthetic syndication
//! corpora for tests and benchmarks.

pub mod article;
pub mod config;
pub mod corpus;
pub mod engine;
pub mod eval;
pub mod fingerprint;
pub mod http;
pub mod index;
pub mod kafka;
pub mod markup;
pub mod metrics;
pub mod normalize;
pub mod offsets;
pub mod postings;
pub mod prepare;
pub mod rules;
pub mod shutdown;
pub mod sketch;
pub mod story;
