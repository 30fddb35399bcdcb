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
    /// librdkafka properties for every client this worker makes (consumers, producers, the
    /// admin client): where security goes (`security.protocol`, `ssl.*`, `sasl.*`). A value
    /// `${env:NAME}` or `${file:PATH}` is read from the environment or a file when a client is
    /// made, so that secrets need not sit in the config file.
    pub client: std::collections::BTreeMap<String, String>,
    /// Extra librdkafka consumer properties, passed through as given (over `client`).
    pub consumer: std::collections::BTreeMap<String, String>,
    /// Extra librdkafka producer properties, passed through as given (over `client`).
    pub producer: std::collections::BTreeMap<String, String>,
}

/// Why a property's `${env:...}` or `${file:...}` reference could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("kafka.{section}.\"{key}\" names the environment variable {name}, which is not set: set it, or give the value in the file")]
    MissingEnv {
        section: &'static str,
        key: String,
        name: String,
    },
    #[error("kafka.{section}.\"{key}\" names the file {path}, which cannot be read ({source}): check the path and its permissions")]
    File {
        section: &'static str,
        key: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A property's value with a `${env:NAME}` or `${file:PATH}` reference read. A file's value is
/// its content without the trailing newline that editors and `kubectl create secret` add.
pub fn resolve_property(section: &'static str, key: &str, value: &str) -> Result<String, SecretError> {
    let reference = value.strip_prefix("${").and_then(|v| v.strip_suffix('}'));
    match reference.and_then(|r| r.split_once(':')) {
        Some(("env", name)) => std::env::var(name).map_err(|_| SecretError::MissingEnv {
            section,
            key: key.to_string(),
            name: name.to_string(),
        }),
        Some(("file", path)) => match std::fs::read_to_string(path) {
            Ok(text) => Ok(text
                .strip_suffix('\n')
                .unwrap_or(&text)
                .trim_end_matches('\r')
                .to_string()),
            Err(source) => Err(SecretError::File {
                section,
                key: key.to_string(),
                path: path.to_string(),
                source,
            }),
        },
        _ => Ok(value.to_string()),
    }
}

/// Whether a librdkafka property holds a secret: never printed, never logged.
pub fn is_secret(key: &str) -> bool {
    [
        "password",
        "secret",
        "sasl.oauthbearer.config",
        "sasl.jaas.config",
        "ssl.key.pem",
        "ssl_key",
    ]
    .iter()
    .any(|part| key.contains(part))
}

/// Whether a value is a reference to the environment or a file (safe to print).
fn is_reference(value: &str) -> bool {
    value.starts_with("${env:") || value.starts_with("${file:")
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
            client: Default::default(),
            consumer: Default::default(),
            producer: Default::default(),
        }
    }
}

impl KafkaConfig {
    /// The client properties by section, in the order they apply (later wins).
    pub fn property_sections(&self) -> [(&'static str, &std::collections::BTreeMap<String, String>); 3] {
        [
            ("client", &self.client),
            ("consumer", &self.consumer),
            ("producer", &self.producer),
        ]
    }

    /// This config with every secret property's value replaced, unless it is a reference to
    /// the environment or a file: what `check-config` prints.
    pub fn redacted(&self) -> KafkaConfig {
        let redact = |map: &std::collections::BTreeMap<String, String>| {
            map.iter()
                .map(|(k, v)| {
                    let shown = if is_secret(k) && !is_reference(v) {
                        "<redacted>".to_string()
                    } else {
                        v.clone()
                    };
                    (k.clone(), shown)
                })
                .collect()
        };
        KafkaConfig {
            client: redact(&self.client),
            consumer: redact(&self.consumer),
            producer: redact(&self.producer),
            ..self.clone()
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_reads_the_environment_or_a_file_and_says_which_key_when_it_cannot() {
        std::env::set_var("SYNDIC_TEST_SECRET_REFERENCE", "from-env");
        assert_eq!(
            resolve_property("client", "sasl.password", "${env:SYNDIC_TEST_SECRET_REFERENCE}").unwrap(),
            "from-env"
        );
        let file = std::env::temp_dir().join(format!("syndic-secret-{}", std::process::id()));
        std::fs::write(&file, "from-file\n").unwrap();
        let reference = format!("${{file:{}}}", file.display());
        assert_eq!(
            resolve_property("client", "sasl.password", &reference).unwrap(),
            "from-file"
        );
        std::fs::remove_file(&file).unwrap();
        let missing = resolve_property("client", "sasl.password", &reference)
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("kafka.client.\"sasl.password\"") && missing.contains("cannot be read"),
            "{missing}"
        );
        let unset = resolve_property("producer", "sasl.password", "${env:SYNDIC_TEST_UNSET_42}")
            .unwrap_err()
            .to_string();
        assert!(
            unset.contains("SYNDIC_TEST_UNSET_42") && unset.contains("not set"),
            "{unset}"
        );
        // Anything else is a value as it stands.
        assert_eq!(resolve_property("client", "k", "${plain").unwrap(), "${plain");
    }

    #[test]
    fn secrets_are_redacted_but_references_and_other_properties_are_shown() {
        let mut kafka = KafkaConfig::default();
        kafka.client.insert("sasl.password".into(), "hunter2".into());
        kafka.client.insert("sasl.username".into(), "syndic".into());
        kafka
            .producer
            .insert("ssl.key.password".into(), "${env:KEY_PASSWORD}".into());
        kafka
            .consumer
            .insert("sasl.oauthbearer.client.secret".into(), "s3cret".into());
        let shown = kafka.redacted();
        assert_eq!(shown.client["sasl.password"], "<redacted>");
        assert_eq!(shown.client["sasl.username"], "syndic");
        assert_eq!(shown.producer["ssl.key.password"], "${env:KEY_PASSWORD}");
        assert_eq!(shown.consumer["sasl.oauthbearer.client.secret"], "<redacted>");
    }
}
