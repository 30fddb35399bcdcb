//! Configuration of the pipeline core: every tunable, its default, and loading from TOML.
//!
//! Unknown keys are errors that name the key, so a typo never silently falls back to a
//! default. `config/syndic.toml` documents each key with its default value.

use crate::fingerprint::FingerprintConfig;
use crate::index::IndexConfig;
use crate::rules::{BoilerplateRules, RulesError};
use crate::story::StoryConfig;
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
    #[error("config value {key} = {value} is out of range: {expected}")]
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
    /// When both texts carry at least two numbers, the minimum share of the smaller set of
    /// numbers found in the other: recurring templates differ in their figures.
    pub min_number_overlap: f64,
    /// When both texts name three or more people, places or organisations, the minimum share
    /// of the smaller set of names found in the other (a regional press release adapted for
    /// another city is another story).
    pub min_name_overlap: f64,
    /// Texts shorter than this many words match only exact copies: a few words are not enough
    /// evidence ("See all photos (18)" against "See all photos (9)").
    pub min_tokens: u32,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            min_containment: 0.40,
            min_number_overlap: 0.6,
            min_name_overlap: 0.3,
            min_tokens: 25,
        }
    }
}

/// Everything the core engine needs.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CoreConfig {
    pub input: InputConfig,
    pub normalize: NormalizeConfig,
    pub fingerprint: FingerprintConfig,
    pub index: IndexConfig,
    pub verify: VerifyConfig,
    pub stories: StoryConfig,
}

impl CoreConfig {
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, path)
    }

    /// Checks ranges that the types alone do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let range = |key, value: String, expected| Err(ConfigError::Range { key, value, expected });
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
        if !(1..=8).contains(&self.fingerprint.simhash_shingle) || !(1..=8).contains(&self.fingerprint.sketch_shingle) {
            return range(
                "fingerprint.*_shingle",
                format!("{:?}", self.fingerprint),
                "1 to 8 words",
            );
        }
        if self.fingerprint.sketch_size < 8 || self.fingerprint.sketch_size < self.index.anchors {
            return range(
                "fingerprint.sketch_size",
                self.fingerprint.sketch_size.to_string(),
                "at least 8 and at least index.anchors",
            );
        }
        for (key, value) in [
            ("verify.min_containment", self.verify.min_containment),
            ("verify.min_number_overlap", self.verify.min_number_overlap),
            ("verify.min_name_overlap", self.verify.min_name_overlap),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return range(key, value.to_string(), "a fraction from 0 to 1");
            }
        }
        if self.input.max_record_bytes == 0 {
            return range("input.max_record_bytes", "0".into(), "a positive number of bytes");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_file_is_the_default() {
        let shipped =
            CoreConfig::from_toml(include_str!("../config/syndic.toml"), Path::new("config/syndic.toml")).unwrap();
        assert_eq!(shipped, CoreConfig::default());
    }

    #[test]
    fn an_unknown_key_is_named_in_the_error() {
        let err = CoreConfig::from_toml("[index]\nradius = 3\n", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("radius"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_rejected_with_the_key() {
        let err = CoreConfig::from_toml("[verify]\nmin_containment = 1.5\n", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("verify.min_containment"), "{err}");
    }
}
