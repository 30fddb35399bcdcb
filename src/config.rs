//! Configuration of the pipeline core: every tunable, its default, and loading from TOML.
//!
//! Unknown keys are errors that name the key, so a typo never silently falls back to a
//! default. `config/syndic.toml` documents each key with its default value.

use crate::pipeline::fingerprint::FingerprintConfig;
use crate::pipeline::index::IndexConfig;
use crate::pipeline::normalize::rules::{BoilerplateRules, RulesError};
use crate::pipeline::story::StoryConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config value {key} = {value} is not accepted; expected {expected}")]
    Range {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("boilerplate rules file {path}: {source}")]
    Rules {
        path: PathBuf,
        #[source]
        source: RulesError,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// Records larger than this are rejected as `oversize`.
    pub max_record_bytes: usize,
}

impl Default for InputConfig {
    fn default() -> Self {
        Self {
            max_record_bytes: 1 << 20,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NormalizeConfig {
    /// Boilerplate rules file; empty means the rules built into the binary
    /// (a copy of `config/boilerplate.toml`).
    pub rules_file: Option<PathBuf>,
}

/// When a candidate counts as a copy. Defaults chosen with `syndic eval` (BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifyConfig {
    /// Minimum estimated share of the shorter text's shingles found in the longer one.
    pub min_containment: f64,
    /// The same, for two articles under one headline (see `fingerprint::title_key`): a wire
    /// story's write-thru keeps its headline while paragraphs are added and rewritten. Used
    /// when lower than `min_containment`, and only when the numbers or the names could be
    /// compared (and agree).
    pub min_containment_same_title: f64,
    /// The share of the longer text that two texts which do not start alike must share (see
    /// `min_containment_new_lead`). Texts that start alike need not: a truncation or a teaser
    /// is the start of its original, while a recap, a shared block or a shared quote sits
    /// beside a lead of its own.
    pub min_longer_share: f64,
    /// The share of the longer text's lead (its first 30 shingles) found in the shorter text's
    /// start (its first 60) that says the two start alike.
    pub min_lead_shared: f64,
    /// Two texts that do not start alike are copies only when this share of the shorter (and
    /// `min_longer_share` of the longer) is shared, or their figures could be compared (and
    /// agree): a copy with a rewritten lead keeps most of its text and its figures, a block or
    /// a quote that two stories share is under half of each, beside figures of their own.
    pub min_containment_new_lead: f64,
    /// Two texts that do not start alike are not copies when the longer one's first sentence
    /// has more than this many figures and names that the shorter lacks: a recap opens with
    /// the new event's own before it repeats the older text; a wire's update opens with the
    /// same story's.
    pub max_new_lead_facts: u32,
    /// When both texts carry at least two numbers, the minimum share of the smaller set of
    /// numbers found in the other: recurring templates differ in their figures.
    pub min_number_overlap: f64,
    /// When both texts name three or more people, places or organisations, the minimum share
    /// of the smaller set of names found in the other (a regional press release adapted for
    /// another city is another story).
    pub min_name_overlap: f64,
    /// Texts shorter than this many tokens match only exact copies: a few words are not enough
    /// evidence ("See all photos (18)" against "See all photos (9)"). A token is a word, or a
    /// letter in scripts written without spaces (Chinese, Japanese, Thai).
    pub min_tokens: u32,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            min_containment: 0.40,
            min_containment_same_title: 0.25,
            min_longer_share: 0.38,
            min_lead_shared: 0.4,
            min_containment_new_lead: 0.55,
            max_new_lead_facts: 3,
            min_number_overlap: 0.6,
            min_name_overlap: 0.3,
            min_tokens: 25,
        }
    }
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
    /// At start, rebuild the dedup state by reading the last window of the input up to the
    /// committed offsets (publishing nothing), so a restart remembers what came before.
    pub warm_up: bool,
    /// Extra librdkafka consumer properties, passed through as given.
    pub consumer: std::collections::BTreeMap<String, String>,
    /// Extra librdkafka producer properties, passed through as given.
    pub producer: std::collections::BTreeMap<String, String>,
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
            create_topics: false,
            topic_partitions: 3,
            topic_replication: 1,
            max_in_flight: 20_000,
            prepare_threads: 0,
            shutdown_timeout_secs: 30,
            stop_after_idle_secs: 0,
            warm_up: true,
            consumer: Default::default(),
            producer: Default::default(),
        }
    }
}

impl KafkaConfig {
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
pub struct LogConfig {
    /// `text` for people, `json` for log pipelines.
    pub format: String,
    /// Default filter when `RUST_LOG` is not set, e.g. `info` or `syndic=debug,rdkafka=warn`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".to_string(),
            level: "info".to_string(),
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

/// Everything syndic reads from its config file. The core engine uses the first six sections.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CoreConfig {
    pub input: InputConfig,
    pub normalize: NormalizeConfig,
    pub fingerprint: FingerprintConfig,
    pub index: IndexConfig,
    pub verify: VerifyConfig,
    pub stories: StoryConfig,
    pub kafka: KafkaConfig,
    pub log: LogConfig,
    pub http: HttpConfig,
}

/// Sections that `SYNDIC_<SECTION>_<KEY>` environment variables may override.
const SECTIONS: &[&str] = &[
    "input",
    "normalize",
    "fingerprint",
    "index",
    "verify",
    "stories",
    "kafka",
    "log",
    "http",
];

/// Applies `SYNDIC_<SECTION>_<KEY>=value` overrides to a parsed config table. Values are read
/// as TOML scalars when they parse as one (`3`, `true`, `0.4`), else as strings. Variables
/// whose section is not a config section (such as `SYNDIC_CACHE`) are not config overrides.
pub fn apply_env_overrides(table: &mut toml::Table, vars: impl IntoIterator<Item = (String, String)>) -> Vec<String> {
    let mut applied = Vec::new();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("SYNDIC_") else {
            continue;
        };
        let rest = rest.to_lowercase();
        let Some(section) = SECTIONS.iter().find(|s| rest.starts_with(&format!("{s}_"))) else {
            continue;
        };
        let key = &rest[section.len() + 1..];
        let parsed = format!("v = {value}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .filter(|v| !v.is_table())
            .unwrap_or_else(|| toml::Value::String(value.clone()));
        let section_table = table
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let Some(section_table) = section_table.as_table_mut() {
            section_table.insert(key.to_string(), parsed);
        }
        applied.push(name);
    }
    applied
}

impl CoreConfig {
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        Self::from_toml_with_env(text, path, std::iter::empty())
    }

    /// Parses `text`, applies `SYNDIC_<SECTION>_<KEY>` overrides from `vars`, validates.
    pub fn from_toml_with_env(
        text: &str,
        path: &Path,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let parse_error = |message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| parse_error(e.to_string()))?;
        let applied = apply_env_overrides(&mut table, vars);
        let config: Self = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| {
            if applied.is_empty() {
                parse_error(e.to_string())
            } else {
                parse_error(format!("{e} (environment overrides applied: {})", applied.join(", ")))
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Loads a file (or the defaults when `path` is `None`) with the process's `SYNDIC_*`
    /// environment overrides.
    pub fn load_with_env(path: Option<&Path>) -> Result<Self, ConfigError> {
        let (text, shown) = match path {
            Some(path) => (
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?,
                path.to_path_buf(),
            ),
            None => (String::new(), PathBuf::from("<defaults>")),
        };
        Self::from_toml_with_env(&text, &shown, std::env::vars())
    }

    /// Checks ranges that the types alone do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let range = |key, value: String, expected| Err(ConfigError::Range { key, value, expected });
        // The messages below spell these limits out.
        const _: () = assert!(
            crate::pipeline::index::MAX_ANCHORS == 32
                && crate::pipeline::fingerprint::LEAD_ANCHORS == 2
                && crate::pipeline::fingerprint::sketch::MAX_SHINGLES == 4096
        );
        if self.index.simhash_radius > 7 {
            return range(
                "index.simhash_radius",
                self.index.simhash_radius.to_string(),
                "0 to 7 (probes grow with the square of the radius)",
            );
        }
        if self.index.window_secs <= 0 {
            return range(
                "index.window_secs",
                self.index.window_secs.to_string(),
                "a positive number of seconds",
            );
        }
        if self.index.capacity == 0 {
            return range(
                "index.capacity",
                self.index.capacity.to_string(),
                "at least 1 article (about 4.5 KB of memory each; size it to the articles that arrive within index.window_secs)",
            );
        }
        if self.index.max_ahead_secs < 0 {
            return range(
                "index.max_ahead_secs",
                self.index.max_ahead_secs.to_string(),
                "zero or a positive number of seconds",
            );
        }
        if !(1..=8).contains(&self.fingerprint.simhash_shingle) || !(1..=8).contains(&self.fingerprint.sketch_shingle) {
            return range(
                "fingerprint.*_shingle",
                format!("{:?}", self.fingerprint),
                "1 to 8 words",
            );
        }
        if self.index.anchors > crate::pipeline::index::MAX_ANCHORS {
            return range(
                "index.anchors",
                self.index.anchors.to_string(),
                "0 to 32 (each is one more table probe per article)",
            );
        }
        if self.index.lead_anchors > crate::pipeline::fingerprint::LEAD_ANCHORS {
            return range("index.lead_anchors", self.index.lead_anchors.to_string(), "0 to 2");
        }
        // The upper bound keeps sketches (4 bytes per value, per indexed article) sane.
        if self.fingerprint.sketch_size < 8
            || self.fingerprint.sketch_size < self.index.anchors
            || self.fingerprint.sketch_size > crate::pipeline::fingerprint::sketch::MAX_SHINGLES
        {
            return range(
                "fingerprint.sketch_size",
                self.fingerprint.sketch_size.to_string(),
                "8 to 4096, and at least index.anchors",
            );
        }
        for (key, value) in [
            ("verify.min_containment", self.verify.min_containment),
            (
                "verify.min_containment_same_title",
                self.verify.min_containment_same_title,
            ),
            ("verify.min_number_overlap", self.verify.min_number_overlap),
            ("verify.min_name_overlap", self.verify.min_name_overlap),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return range(key, value.to_string(), "a fraction from 0 to 1");
            }
        }
        if !(1..=100_000).contains(&self.stories.max_event_members) {
            return range(
                "stories.max_event_members",
                self.stories.max_event_members.to_string(),
                "1 to 100000 (a story event carries that many members, about 200 bytes each)",
            );
        }
        if self.kafka.max_in_flight == 0 {
            return range("kafka.max_in_flight", "0".into(), "at least 1");
        }
        if self.kafka.prepare_threads > 64 {
            return range(
                "kafka.prepare_threads",
                self.kafka.prepare_threads.to_string(),
                "0 (one per two cores) to 64",
            );
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return range("log.format", self.log.format.clone(), "\"text\" or \"json\"");
        }
        if self.input.max_record_bytes == 0 {
            return range("input.max_record_bytes", "0".into(), "a positive number of bytes");
        }
        let kafka = &self.kafka;
        let topics = [
            ("kafka.input_topic", &kafka.input_topic),
            ("kafka.stories_topic", &kafka.stories_topic),
            ("kafka.decisions_topic", &kafka.decisions_topic),
            ("kafka.dlq_topic", &kafka.dlq_topic),
        ];
        for (key, topic) in topics {
            if !is_topic_name(topic) {
                return range(
                    key,
                    format!("{topic:?}"),
                    "a Kafka topic name: 1 to 249 letters, digits, '.', '_' or '-', and not \".\" or \"..\"",
                );
            }
        }
        // Writing an output to the input topic would feed the worker its own output.
        for (key, topic) in &topics[1..] {
            if *topic == &kafka.input_topic {
                return range(key, format!("{topic:?}"), "a topic other than kafka.input_topic");
            }
        }
        Ok(())
    }

    /// The boilerplate rules this configuration names.
    pub fn rules(&self) -> Result<BoilerplateRules, ConfigError> {
        match &self.normalize.rules_file {
            None => Ok(BoilerplateRules::builtin()),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                BoilerplateRules::from_toml(&text).map_err(|source| ConfigError::Rules {
                    path: path.clone(),
                    source,
                })
            }
        }
    }
}

/// Whether Kafka accepts `name` as a topic name (its `Topic.validate`): checked at start so that
/// a typo fails with the key that holds it, not as produce errors retried forever.
fn is_topic_name(name: &str) -> bool {
    (1..=249).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_file_is_the_default() {
        let shipped =
            CoreConfig::from_toml(include_str!("../config/syndic.toml"), Path::new("config/syndic.toml")).unwrap();
        assert_eq!(shipped, CoreConfig::default());
    }

    /// config/syndic.toml documents every key: each one the defaults serialize to is in it.
    #[test]
    fn the_shipped_config_file_names_every_key() {
        let shipped = include_str!("../config/syndic.toml");
        let defaults = toml::to_string(&CoreConfig::default()).unwrap();
        for line in defaults.lines() {
            if let Some((key, _)) = line.split_once(" = ") {
                assert!(
                    shipped.lines().any(|l| l.starts_with(&format!("{key} = "))),
                    "config/syndic.toml does not document {key}"
                );
            }
        }
    }

    #[test]
    fn an_unknown_key_is_named_in_the_error() {
        let err = CoreConfig::from_toml("[index]\nradius = 3\n", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("radius"), "{err}");
    }

    #[test]
    fn environment_overrides_reach_any_section_and_typos_are_named() {
        let vars = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        let config = CoreConfig::from_toml_with_env(
            "[kafka]\nbrokers = \"a:1\"\n",
            Path::new("x.toml"),
            vars(&[
                ("SYNDIC_KAFKA_BROKERS", "b:2"),
                ("SYNDIC_VERIFY_MIN_CONTAINMENT", "0.5"),
                ("SYNDIC_CACHE", "/tmp"),
            ]),
        )
        .unwrap();
        assert_eq!(config.kafka.brokers, "b:2");
        assert_eq!(config.verify.min_containment, 0.5);
        let err = CoreConfig::from_toml_with_env("", Path::new("x.toml"), vars(&[("SYNDIC_KAFKA_BROKER", "b:2")]))
            .unwrap_err();
        assert!(
            err.to_string().contains("broker") && err.to_string().contains("SYNDIC_KAFKA_BROKER"),
            "{err}"
        );
    }

    #[test]
    fn topic_names_kafka_would_refuse_or_a_loop_back_to_the_input_are_rejected() {
        let check = |toml: &str| CoreConfig::from_toml(toml, Path::new("x.toml")).map(|_| ());
        let err = check("[kafka]\nstories_topic = \"my stories\"\n").unwrap_err();
        assert!(err.to_string().contains("kafka.stories_topic"), "{err}");
        let err = check("[kafka]\ninput_topic = \"\"\n").unwrap_err();
        assert!(err.to_string().contains("kafka.input_topic"), "{err}");
        assert!(check(&format!("[kafka]\ndlq_topic = \"{}\"\n", "d".repeat(250))).is_err());
        let err = check("[kafka]\ninput_topic = \"articles\"\ndecisions_topic = \"articles\"\n").unwrap_err();
        assert!(
            err.to_string().contains("kafka.decisions_topic")
                && err.to_string().contains("other than kafka.input_topic"),
            "{err}"
        );
        check("[kafka]\ninput_topic = \"raw.articles_v2-eu\"\n").expect("a valid name");
    }

    #[test]
    fn out_of_range_values_are_rejected_with_the_key() {
        let err = CoreConfig::from_toml("[verify]\nmin_containment = 1.5\n", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("verify.min_containment"), "{err}");
        for (toml, key) in [
            ("[index]\nlead_anchors = 3\n", "index.lead_anchors"),
            ("[index]\nanchors = 33\n", "index.anchors"),
        ] {
            let err = CoreConfig::from_toml(toml, Path::new("x.toml")).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
        CoreConfig::from_toml("[index]\nanchors = 32\nlead_anchors = 0\n", Path::new("x.toml")).expect("in range");
    }
}
