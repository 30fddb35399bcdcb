//! Configuration of the pipeline core: every tunable, its default, and loading from TOML.
//!
//! Unknown keys are errors that name the key, so a typo never silently falls back to a
//! default. `config/syndic.toml` documents each key with its default value.

use crate::pipeline::config::{InputConfig, InvalidSetting, PipelineConfig, VerifyConfig};
use crate::pipeline::engine::Engine;
use crate::pipeline::fingerprint::FingerprintConfig;
use crate::pipeline::index::IndexConfig;
use crate::pipeline::normalize::rules::{BoilerplateRules, RulesError};
use crate::pipeline::story::StoryConfig;
pub use crate::store::StoreConfig;
pub use crate::worker::config::{HttpConfig, KafkaConfig};
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
    #[error(transparent)]
    Range(#[from] InvalidSetting),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Secret(#[from] crate::worker::config::SecretError),
    #[error("kafka.{section}.\"{key}\" is refused by librdkafka: {message} (the properties are librdkafka's: https://github.com/confluentinc/librdkafka/blob/master/CONFIGURATION.md)")]
    KafkaProperty {
        section: &'static str,
        key: String,
        message: String,
    },
    #[error("boilerplate rules file {path}: {source}")]
    Rules {
        path: PathBuf,
        #[source]
        source: RulesError,
    },
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NormalizeConfig {
    /// Boilerplate rules file; empty means the rules built into the binary
    /// (a copy of `config/boilerplate.toml`).
    pub rules_file: Option<PathBuf>,
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

/// Everything syndic reads from its config file: the pipeline's sections ([`CoreConfig::pipeline`]),
/// `normalize` (where the rules file is), the worker's `kafka` and `http`, `log`, and `store`
/// (where stories' canonical records are kept).
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
    pub store: StoreConfig,
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
    "store",
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
        self.pipeline().validate()?;
        let range = |key, value: String, expected| Err(ConfigError::Range(InvalidSetting { key, value, expected }));
        if self.kafka.brokers.split(',').all(|b| b.trim().is_empty()) {
            return range(
                "kafka.brokers",
                format!("{:?}", self.kafka.brokers),
                "host:port of one or more brokers, comma-separated (e.g. \"b1:9092,b2:9092\")",
            );
        }
        if self.kafka.topic_partitions < 1 {
            return range(
                "kafka.topic_partitions",
                self.kafka.topic_partitions.to_string(),
                "at least 1",
            );
        }
        if self.kafka.topic_replication < 1 && self.kafka.topic_replication != -1 {
            return range(
                "kafka.topic_replication",
                self.kafka.topic_replication.to_string(),
                "at least 1, or -1 for the broker's default",
            );
        }
        if self.kafka.shutdown_timeout_secs == 0 {
            return range(
                "kafka.shutdown_timeout_secs",
                "0".into(),
                "at least 1 (seconds to finish in-flight records at shutdown)",
            );
        }
        if !is_log_filter(&self.log.level) {
            return range(
                "log.level",
                format!("{:?}", self.log.level),
                "a level (trace, debug, info, warn, error, off) or comma-separated target=level directives, e.g. \"info\" or \"syndic=debug,rdkafka=warn\"",
            );
        }
        if self.kafka.max_in_flight == 0 {
            return range("kafka.max_in_flight", "0".into(), "at least 1");
        }
        if !(10..=5_000).contains(&self.kafka.transaction_interval_ms) {
            // Under 10 ms the commits take the worker's time; a transaction must commit well
            // within its 10 s timeout.
            return range(
                "kafka.transaction_interval_ms",
                self.kafka.transaction_interval_ms.to_string(),
                "10 to 5000 (milliseconds; 100 by default)",
            );
        }
        if self.kafka.prepare_threads > 64 {
            return range(
                "kafka.prepare_threads",
                self.kafka.prepare_threads.to_string(),
                "0 (one per two cores) to 64",
            );
        }
        if !["disk", "memory"].contains(&self.store.canonical_records.as_str()) {
            return range(
                "store.canonical_records",
                format!("{:?}", self.store.canonical_records),
                "\"disk\" or \"memory\"",
            );
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return range("log.format", self.log.format.clone(), "\"text\" or \"json\"");
        }
        let kafka = &self.kafka;
        let topics = [
            ("kafka.input_topic", &kafka.input_topic),
            ("kafka.stories_topic", &kafka.stories_topic),
            ("kafka.decisions_topic", &kafka.decisions_topic),
            ("kafka.dlq_topic", &kafka.dlq_topic),
            ("kafka.fingerprints_topic", &kafka.fingerprints_topic),
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
        self.check_client_properties()
    }

    /// Each passthrough property's reference can be read and librdkafka itself takes it (its
    /// message names what it expects), so that a typo stops `check-config`, not `run` later.
    fn check_client_properties(&self) -> Result<(), ConfigError> {
        for (section, properties) in self.kafka.property_sections() {
            for (key, value) in properties {
                let value = crate::worker::config::resolve_property(section, key, value)?;
                let mut one = rdkafka::ClientConfig::new();
                one.set(key, value);
                if let Err(error) = one.create_native_config() {
                    let message = match error {
                        rdkafka::error::KafkaError::ClientConfig(_, message, _, _) => message,
                        other => other.to_string(),
                    };
                    return Err(ConfigError::KafkaProperty {
                        section,
                        key: key.clone(),
                        message,
                    });
                }
            }
        }
        Ok(())
    }

    /// This config as `check-config` prints it: secret properties replaced.
    pub fn redacted(&self) -> CoreConfig {
        CoreConfig {
            kafka: self.kafka.redacted(),
            ..self.clone()
        }
    }

    /// The sections the pipeline reads.
    pub fn pipeline(&self) -> PipelineConfig {
        PipelineConfig {
            input: self.input.clone(),
            fingerprint: self.fingerprint,
            index: self.index,
            verify: self.verify,
            stories: self.stories.clone(),
        }
    }

    /// An engine with these settings and the rules they name (read from disk when
    /// `normalize.rules_file` is set).
    pub fn engine(&self) -> Result<Engine, ConfigError> {
        self.validate()?;
        let mut engine = Engine::new(self.pipeline(), self.rules()?)?;
        engine.set_canonical_store(self.store.canonical_store()?);
        Ok(engine)
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
/// Whether `filter` is a level or `target=level` directives: `tracing`'s own parser takes any
/// word as a target, so a misspelt level such as "loud" would pass it and silence every log.
fn is_log_filter(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let is_level = |word: &str| LEVELS.contains(&word.trim().to_ascii_lowercase().as_str());
    !filter.trim().is_empty()
        && filter.split(',').all(|directive| match directive.split_once('=') {
            Some((target, level)) => !target.trim().is_empty() && is_level(level),
            None => is_level(directive),
        })
}

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
    fn settings_that_cannot_work_are_refused_with_the_key_and_what_it_takes() {
        let check = |toml: &str| CoreConfig::from_toml(toml, Path::new("x.toml")).map(|_| ());
        for (toml, key) in [
            ("[log]\nlevel = \"loud\"\n", "log.level"),
            ("[log]\nlevel = \"syndic=loud\"\n", "log.level"),
            ("[log]\nlevel = \"\"\n", "log.level"),
            ("[kafka]\nbrokers = \"\"\n", "kafka.brokers"),
            ("[kafka]\nbrokers = \" , \"\n", "kafka.brokers"),
            ("[kafka]\ntopic_partitions = 0\n", "kafka.topic_partitions"),
            ("[kafka]\ntopic_replication = 0\n", "kafka.topic_replication"),
            ("[kafka]\nshutdown_timeout_secs = 0\n", "kafka.shutdown_timeout_secs"),
        ] {
            let err = check(toml).expect_err(toml).to_string();
            assert!(err.contains(key), "{toml}: {err}");
        }
        for fine in [
            "[log]\nlevel = \"debug\"\n",
            "[log]\nlevel = \"syndic=debug,rdkafka=warn\"\n",
            "[kafka]\ntopic_replication = -1\n",
        ] {
            check(fine).expect(fine);
        }
    }

    #[test]
    fn librdkafka_properties_are_checked_by_librdkafka_and_the_key_is_named() {
        let check = |toml: &str| CoreConfig::from_toml(toml, Path::new("x.toml")).map(|_| ());
        let err = check("[kafka.client]\n\"sasl.mechanismz\" = \"PLAIN\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("kafka.client.\"sasl.mechanismz\"") && err.contains("No such configuration property"),
            "{err}"
        );
        let err = check("[kafka.consumer]\n\"session.timeout.ms\" = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("kafka.consumer.\"session.timeout.ms\""), "{err}");
        let err = check("[kafka.producer]\n\"sasl.password\" = \"${env:SYNDIC_TEST_UNSET_43}\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("SYNDIC_TEST_UNSET_43"), "{err}");
        check("[kafka.client]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"SCRAM-SHA-512\"\n")
            .expect("this build has TLS and SCRAM");
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
