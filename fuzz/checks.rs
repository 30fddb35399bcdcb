//! What each fuzz target checks, shared by the targets (fuzz/fuzz_targets) and by the replay of
//! every saved crash on each test run (tests/fuzz_regressions.rs). Each panics on a defect.

use std::sync::OnceLock;
use syndic::pipeline::config::{InputConfig, PipelineConfig};
use syndic::pipeline::engine::{Engine, Verdict};
use syndic::pipeline::normalize::rules::BoilerplateRules;
use syndic::pipeline::normalize::Normalizer;
use syndic::pipeline::record;

fn rules() -> &'static BoilerplateRules {
    static RULES: OnceLock<BoilerplateRules> = OnceLock::new();
    RULES.get_or_init(BoilerplateRules::builtin)
}

/// The record parser never panics, and a record it accepts is within the input limits, so
/// the story event that carries it can be read by any JSON reader.
pub fn record(data: &[u8]) {
    let limits = InputConfig::default();
    let Ok(article) = record::parse(data, &limits, chrono::DateTime::UNIX_EPOCH) else {
        return;
    };
    assert!(record::check_shape(article.raw.as_bytes(), &limits).is_ok());
    // serde_json recurses to 128 levels; the depth limit (64) keeps every record under it.
    let value: serde_json::Value =
        serde_json::from_str(&article.raw).expect("an accepted record is JSON a recursive reader takes");
    assert!(value.is_object());
    assert!(!article.id.trim().is_empty());
}

/// The normalizer with the default rules never panics on any text.
pub fn normalize(data: &[u8]) {
    static NORMALIZER: OnceLock<Normalizer> = OnceLock::new();
    let normalizer = NORMALIZER.get_or_init(|| Normalizer::new(rules().clone()));
    let text = String::from_utf8_lossy(data);
    let (_, explained) = normalizer.explain(&text);
    let normalized = normalizer.normalize(&text);
    let _ = (explained, normalized);
}

/// The whole pipeline, one record per line: every record gets exactly one decision, invalid
/// exactly when it has a reason, and every decision and story event is JSON a recursive reader
/// takes. A line that does not start with `{` becomes the body (its first words the headline)
/// of a valid article, so the fuzzer reaches normalization, the index and verification.
pub fn pipeline(data: &[u8]) {
    let mut config = PipelineConfig::default();
    // Small, so eviction and story closing happen within one input.
    config.index.capacity = 16;
    let mut engine = Engine::new(config, rules().clone()).expect("the default settings are valid");
    let time = chrono::DateTime::UNIX_EPOCH;
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let record = if line.first() == Some(&b'{') {
            line.to_vec()
        } else {
            let text = String::from_utf8_lossy(line);
            let title: String = text.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
            let article = serde_json::json!({
                "id": format!("f{i}"), "source": format!("s{}", i % 3), "title": title, "body": text,
            });
            serde_json::to_vec(&article).expect("a JSON value serializes")
        };
        let outcome = engine.process(&record, time);
        let decision = &outcome.decision;
        assert_eq!(decision.verdict == Verdict::Invalid, outcome.invalid.is_some());
        assert_eq!(decision.verdict == Verdict::Invalid, decision.story_id.is_none());
        let json = serde_json::to_vec(decision).expect("a decision serializes");
        serde_json::from_slice::<serde_json::Value>(&json).expect("a decision is JSON");
        if let Some(event) = &outcome.event {
            let mut out = Vec::new();
            event.write_json(&mut out).expect("an event serializes");
            serde_json::from_slice::<serde_json::Value>(&out).expect("a story event is JSON a recursive reader takes");
        }
    }
    assert_eq!(engine.counters().records as usize, lines.len());
}
