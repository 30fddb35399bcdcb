//! The worker's settings, beside the worker: how it connects, what it reads and writes (the
//! `kafka` section), and where it serves its telemetry (`http`). Plain data; `crate::config`
//! reads them from the config file with the other sections and checks their ranges.

use serde::{Deserialize, Serialize};

/// Which stages a worker runs (docs/state.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Both roles in one process, through the fingerprint topic: raw articles in, decisions and
    /// story events out. Any number of replicas share one dedup view: their prepare halves
    /// split the input, and one decide half (the group's) decides while the others stand by.
    #[default]
    Both,
    /// Raw articles in; fingerprint records out to `fingerprints_topic`, and for invalid
    /// records their dead letter and decision. Stateless: any number may run in one group.
    Prepare,
    /// Fingerprint records in (consumer group `<group_id>.decide`); decisions and story events
    /// out. One decider holds the one dedup view; others in its group stand by, their view
    /// kept at the group's committed offset, and take over when it fails.
    Decide,
    /// The whole pipeline in one process with a view of its own and no fingerprint topic: one
    /// replica only (replicas in one group would each see only their partitions). The baseline
    /// the benchmarks compare with.
    Standalone,
}

/// How the Kafka worker connects and what it reads and writes. Plain data: the core ignores it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Consumer group of the workers.
    pub group_id: String,
    pub input_topic: String,
    /// Story events, keyed by story id (make it compacted to keep each story's latest state).
    pub stories_topic: String,
    /// One decision per input record, keyed by article id.
    pub decisions_topic: String,
    /// Invalid records, unchanged, with the reason in headers.
    pub dlq_topic: String,
    /// Which stages this worker runs: `both`, `prepare`, `decide` or `standalone` (see [`Role`]).
    pub role: Role,
    /// Fingerprint records, from the prepare role to the decide role, one partition: the one
    /// order of everything to decide.
    pub fingerprints_topic: String,
    /// Create missing topics at start.
    pub create_topics: bool,
    pub topic_partitions: i32,
    pub topic_replication: i32,
    /// Records consumed but not yet acknowledged end to end; consumption pauses at this bound.
    pub max_in_flight: usize,
    /// Threads for the stateless stages (parse, normalize, fingerprint), ahead of the one
    /// that decides and produces. 0 = one per two cores, at least 1 and at most 8: the
    /// deciding thread, librdkafka's threads and (on a shared machine) the broker need the
    /// rest.
    pub prepare_threads: usize,
    /// On SIGTERM/SIGINT, how long to finish in-flight records before giving up on them
    /// (their offsets are then not stored, so they are consumed again after a restart).
    pub shutdown_timeout_secs: u64,
    /// Exit once no record arrived for this long (0 = never): for backfills and the demo.
    pub stop_after_idle_secs: u64,
    /// At start, rebuild the dedup state up to the committed offsets (publishing nothing), so
    /// a restart remembers what came before: from the last `index.capacity` fingerprint
    /// records (roles `both` and `decide`) or from the input's last window (`standalone`).
    pub warm_up: bool,
    /// Exactly once (docs/state.md): each worker's outputs and its input offsets are committed
    /// in one Kafka transaction every `transaction_interval_ms`, so a worker killed or fenced
    /// writes nothing twice that a `read_committed` reader sees; a decider whose transaction
    /// aborts restores its view to the committed offset.
    pub exactly_once: bool,
    /// How often a transactional worker commits (milliseconds): records become visible to
    /// `read_committed` readers only then.
    pub transaction_interval_ms: u64,
    /// Extra librdkafka consumer properties, passed through as given.
    pub consumer: std::collections::BTreeMap<String, String>,
    /// Extra librdkafka producer properties, passed through as given.
    pub producer: std::collections::BTreeMap<String, String>,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Both => "both",
            Self::Prepare => "prepare",
            Self::Decide => "decide",
            Self::Standalone => "standalone",
        }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".to_string(),
            group_id: "syndic".to_string(),
            input_topic: "articles.raw".to_string(),
            stories_topic: "stories".to_string(),
            decisions_topic: "decisions".to_string(),
            dlq_topic: "articles.dlq".to_string(),
            role: Role::Both,
            fingerprints_topic: "syndic.fingerprints".to_string(),
            create_topics: false,
            topic_partitions: 3,
            topic_replication: 1,
            max_in_flight: 20_000,
            prepare_threads: 0,
            shutdown_timeout_secs: 30,
            stop_after_idle_secs: 0,
            warm_up: true,
            exactly_once: false,
            transaction_interval_ms: 100,
            consumer: Default::default(),
            producer: Default::default(),
        }
    }
}

impl KafkaConfig {
    /// Whether this worker writes in transactions: the prepare and decide roles with
    /// `exactly_once` (role `both` runs one of each).
    pub fn transactional(&self) -> bool {
        self.exactly_once && matches!(self.role, Role::Prepare | Role::Decide)
    }

    /// `prepare_threads` with 0 resolved for this machine.
    pub fn prepare_thread_count(&self) -> usize {
        match self.prepare_threads {
            0 => {
                let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
                (cores / 2).clamp(1, 8)
            }
            n => n,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Where `/metrics`, `/healthz` and `/readyz` are served; empty turns them off.
    pub address: String,
    /// After the worker stopped, keep serving (not ready) this long so that a last scrape sees
    /// the final counters.
    pub linger_after_stop_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            address: "0.0.0.0:9898".to_string(),
            linger_after_stop_ms: 0,
        }
    }
}
