//! Evaluation: runs the engine over a labelled file and scores its clusters as pairs.
//!
//! The file is fed as `syndic dedup` feeds it, record by record through [`Engine::process`], in
//! its own order unless an [`Order`] says otherwise: what is scored is what users run. Sorting
//! by time is there for comparison only; a stream cannot be sorted.
//!
//! Input is JSONL articles with a `cluster` field (null or missing: a singleton), and optionally
//! a JSONL file of labelled pairs `{a, b, label}`. With pairs, a pair is positive when its label
//! is the positive label (`duplicate`) and predicted positive when both articles ended in one
//! story; without pairs, every pair of articles is scored against the clusters. The report lists
//! false positives and negatives with their direct scores, so tuning is quick. With pairs, it
//! also lists the negatives that were not merged but would pass verification: candidate finding
//! did not offer one for the other, or a closer match won, so a change of order, of timing or of
//! anchors can merge them. Precision measured without them looks safer than it is.

use crate::config::CoreConfig;
use crate::pipeline::decide::{is_copy, Evidence};
use crate::pipeline::fingerprint::hamming;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}:{line}: {message}")]
    Line { path: String, line: usize, message: String },
    #[error("pair {a}-{b} in {path} names an article that is not in the articles file")]
    UnknownArticle { path: String, a: String, b: String },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
}

/// The order articles are fed to the engine in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// As the file lists them: what `syndic dedup`, a crawl dump or a topic replay delivers.
    File,
    /// A seeded shuffle of the file (Fisher-Yates on [`crate::tools::corpus::Rng`]).
    Shuffle(u64),
    /// By `published_at`, undated articles last, ties in file order: for comparison only.
    SortByTime,
}

impl std::fmt::Display for Order {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Order::File => f.write_str("file order"),
            Order::Shuffle(seed) => write!(f, "shuffled with seed {seed}"),
            Order::SortByTime => f.write_str("sorted by published_at (undated last)"),
        }
    }
}

/// The report lists at most this many wrong pairs.
const MAX_LISTED_ERRORS: usize = 200;

/// One labelled pair.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct LabelledPair {
    pub a: String,
    pub b: String,
    pub label: String,
}

/// Scores and the pairs that went wrong.
#[derive(Debug, Default)]
pub struct Report {
    /// The order the articles were fed in.
    pub order: Option<Order>,
    /// How the articles were split over deciders (`None`: one).
    pub partitioning: Option<Partitioning>,
    pub articles: usize,
    pub invalid: usize,
    pub stories: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    /// Predicted-positive pairs by label (how many template negatives were merged, say).
    pub merged_by_label: BTreeMap<String, (usize, usize)>,
    /// Negative pairs not merged that verify as copies (with pairs only).
    pub at_risk: usize,
    pub errors: Vec<PairError>,
    /// The engine's decisions, in the order the articles were fed, each with its record's line
    /// number in the input (from 1): what `syndic dedup` writes.
    pub decisions: Vec<(u64, crate::pipeline::engine::Decision)>,
}

/// What a fingerprint topic partitioned by a key would decide: the articles split over
/// `deciders` engines, each with a view of its own, by a key of their fingerprint. Copies whose
/// keys differ are never compared; this measures what that costs (docs/state.md, "Scaling past
/// one decider").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partitioning {
    pub deciders: usize,
    pub key: PartitionKey,
}

/// The fingerprint key that picks an article's decider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionKey {
    /// The headline's key, or for an article without one its lead's smallest anchor.
    Title,
    /// The lead's smallest anchor (the first sentences' rarest words), or the exact hash of a
    /// text too short for one.
    Lead,
}

impl PartitionKey {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Title => "title",
            Self::Lead => "lead",
        }
    }
}

impl Partitioning {
    /// The decider of a prepared record; invalid records go to the first.
    pub fn decider_of(&self, prepared: &crate::pipeline::messages::Prepared) -> usize {
        let crate::pipeline::messages::Prepared::Article { fingerprint, .. } = prepared else {
            return 0;
        };
        let lead = || {
            fingerprint
                .lead_anchors
                .iter()
                .copied()
                .filter(|&a| a != crate::pipeline::index::NO_ANCHOR)
                .min()
                .map_or(fingerprint.exact, u64::from)
        };
        let key = match self.key {
            PartitionKey::Title => fingerprint.title.unwrap_or_else(lead),
            PartitionKey::Lead => lead(),
        };
        // Spread the key's bits before taking the remainder: anchors are small integers.
        let mixed = key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        (mixed % self.deciders.max(1) as u64) as usize
    }
}

/// Why a pair is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairErrorKind {
    FalsePositive,
    FalseNegative,
    /// A negative pair, not merged, that verifies: a false positive the index happened not to
    /// offer.
    AtRisk,
}

#[derive(Debug, Clone)]
pub struct PairError {
    pub a: String,
    pub b: String,
    pub label: String,
    pub kind: PairErrorKind,
    pub evidence: Evidence,
    pub hamming: u32,
    pub would_verify: bool,
}

impl Report {
    pub fn precision(&self) -> f64 {
        ratio(self.true_positives, self.true_positives + self.false_positives)
    }
    pub fn recall(&self) -> f64 {
        ratio(self.true_positives, self.true_positives + self.false_negatives)
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(order) = self.order {
            let _ = writeln!(out, "order: {order}");
        }
        if let Some(p) = self.partitioning {
            let _ = writeln!(
                out,
                "deciders: {}, each with a view of its own, articles split by {}",
                p.deciders,
                p.key.as_str()
            );
        }
        let _ = writeln!(
            out,
            "articles {}  invalid {}  stories {}",
            self.articles, self.invalid, self.stories
        );
        let _ = writeln!(
            out,
            "pairs: tp {}  fp {}  fn {}\nprecision {:.3}  recall {:.3}  f1 {:.3}",
            self.true_positives,
            self.false_positives,
            self.false_negatives,
            self.precision(),
            self.recall(),
            self.f1()
        );
        for (label, (merged, total)) in &self.merged_by_label {
            let _ = writeln!(out, "  {label:<20} merged {merged} of {total}");
        }
        if self.at_risk > 0 {
            let _ = writeln!(
                out,
                "  at risk: {} negative pairs pass verification; candidate finding or a closer match kept them apart (RISK below)",
                self.at_risk
            );
        }
        for e in &self.errors {
            let kind = match e.kind {
                PairErrorKind::FalsePositive => "FP",
                PairErrorKind::FalseNegative => "FN",
                PairErrorKind::AtRisk => "RISK",
            };
            let share = |overlap: Option<f64>| overlap.map_or("-".to_string(), |n| format!("{n:.2}"));
            let (numbers, names) = (share(e.evidence.numbers), share(e.evidence.names));
            let _ = writeln!(
                out,
                "{kind} {}-{} [{}] containment {:.3} longer {:.3} lead {:.2} unquoted {} numbers {numbers} names {names} headline {} hamming {} verifies {}",
                e.a,
                e.b,
                e.label,
                e.evidence.shorter_share,
                e.evidence.longer_share,
                e.evidence.lead_shared,
                share(e.evidence.unquoted_share),
                e.evidence.same_headline,
                e.hamming,
                e.would_verify
            );
        }
        out
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

struct Doc {
    /// The record's line number in the input, from 1.
    line: u64,
    id: String,
    cluster: Option<String>,
    body: Option<String>,
    title: Option<String>,
    record: Vec<u8>,
    /// `published_at` when the record has a readable one.
    time: Option<DateTime<Utc>>,
}

/// Reads the articles in `order`. A line that is not a JSON article is kept: the engine must
/// call it invalid, and the report counts it. A blank line is a record too, as in `syndic
/// dedup`; the end of the last line is not the start of another.
fn read_docs(articles: &[u8], order: Order) -> Vec<Doc> {
    let mut docs = Vec::new();
    let lines = articles
        .strip_suffix(b"\n")
        .unwrap_or(articles)
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|_| !articles.is_empty());
    for (i, line) in lines.enumerate() {
        let value: serde_json::Value = serde_json::from_slice(line).unwrap_or_default();
        let field = |k: &str| value.get(k).and_then(|v| v.as_str()).map(str::to_string);
        docs.push(Doc {
            line: i as u64 + 1,
            id: field("id").unwrap_or_else(|| format!("line {}", i + 1)),
            cluster: field("cluster"),
            body: field("body"),
            title: field("title"),
            record: line.to_vec(),
            time: field("published_at").and_then(|t| crate::pipeline::record::parse_timestamp(&t).ok()),
        });
    }
    match order {
        Order::File => {}
        Order::Shuffle(seed) => crate::tools::corpus::Rng::new(seed).shuffle(&mut docs),
        Order::SortByTime => docs.sort_by_key(|d| (d.time.is_none(), d.time)),
    }
    docs
}

/// Reads labelled pairs (JSONL).
pub fn read_pairs(path: &str, text: &str) -> Result<Vec<LabelledPair>, EvalError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| EvalError::Line {
                path: path.to_string(),
                line: i + 1,
                message: format!("not a pair {{a, b, label}}: {e}"),
            })
        })
        .collect()
}

/// Runs the engine over `articles` (JSONL text) fed in `order` and scores it.
pub fn evaluate(
    config: &CoreConfig,
    articles: &[u8],
    pairs: Option<(&str, Vec<LabelledPair>)>,
    positive_label: &str,
    order: Order,
    partitioning: Option<Partitioning>,
) -> Result<Report, EvalError> {
    let docs = read_docs(articles, order);
    let deciders = partitioning.map_or(1, |p| p.deciders.max(1));
    let mut engines = (0..deciders).map(|_| config.engine()).collect::<Result<Vec<_>, _>>()?;
    let mut preparer = config.engine()?.preparer();
    let mut story_of: HashMap<String, String> = HashMap::new();
    let mut report = Report {
        order: Some(order),
        partitioning,
        articles: docs.len(),
        ..Report::default()
    };
    for doc in &docs {
        // Ingest time as `syndic dedup` takes it: the clock. Preparing and then deciding is
        // what `Engine::process` does; the split between them is where a partitioned
        // fingerprint topic would route.
        let prepared = preparer.prepare(&doc.record, Utc::now());
        let decider = partitioning.map_or(0, |p| p.decider_of(&prepared));
        let Some(engine) = engines.get_mut(decider) else {
            continue;
        };
        let outcome = engine.decide(prepared);
        match &outcome.decision.story_id {
            Some(story) => {
                story_of.insert(doc.id.clone(), story.clone());
            }
            None => report.invalid += 1,
        }
        report.decisions.push((doc.line, outcome.decision));
    }
    report.stories = story_of.values().collect::<std::collections::HashSet<_>>().len();
    let cluster_mode = pairs.is_none();
    let pairs: Vec<LabelledPair> = match pairs {
        Some((path, pairs)) => {
            let known: std::collections::HashSet<&str> = docs.iter().map(|d| d.id.as_str()).collect();
            for p in &pairs {
                if !known.contains(p.a.as_str()) || !known.contains(p.b.as_str()) {
                    return Err(EvalError::UnknownArticle {
                        path: path.to_string(),
                        a: p.a.clone(),
                        b: p.b.clone(),
                    });
                }
            }
            pairs
        }
        None => {
            // Only pairs inside one story or one cluster can be tp, fp or fn; enumerating just
            // those keeps large generated corpora cheap to score.
            let mut groups: HashMap<(bool, &str), Vec<&str>> = HashMap::new();
            for d in &docs {
                if let Some(story) = story_of.get(&d.id) {
                    groups.entry((true, story)).or_default().push(&d.id);
                }
                if let Some(cluster) = &d.cluster {
                    groups.entry((false, cluster)).or_default().push(&d.id);
                }
            }
            let cluster_of: HashMap<&str, &str> = docs
                .iter()
                .filter_map(|d| Some((d.id.as_str(), d.cluster.as_deref()?)))
                .collect();
            let mut seen = std::collections::HashSet::new();
            let mut relevant = Vec::new();
            for members in groups.values() {
                for (i, a) in members.iter().enumerate() {
                    for b in &members[i + 1..] {
                        let key = if a < b { (*a, *b) } else { (*b, *a) };
                        if !seen.insert(key) {
                            continue;
                        }
                        let same = matches!((cluster_of.get(a), cluster_of.get(b)), (Some(x), Some(y)) if x == y);
                        relevant.push(LabelledPair {
                            a: key.0.to_string(),
                            b: key.1.to_string(),
                            label: if same { positive_label } else { "different" }.to_string(),
                        });
                    }
                }
            }
            // By article ids: the groups' hash order differs from run to run, and two runs must
            // list the same errors, the first MAX_LISTED_ERRORS of them among them.
            relevant.sort_unstable_by(|x, y| (&x.a, &x.b).cmp(&(&y.a, &y.b)));
            let positives = relevant.iter().filter(|p| p.label == positive_label).count();
            let all_pairs = docs.len() * docs.len().saturating_sub(1) / 2;
            report
                .merged_by_label
                .insert("different".to_string(), (0, all_pairs - positives));
            relevant
        }
    };
    let bodies: HashMap<&str, (&str, Option<&str>)> = docs
        .iter()
        .filter_map(|d| Some((d.id.as_str(), (d.body.as_deref()?, d.title.as_deref()))))
        .collect();
    // Fingerprints of the articles that listed pairs name, each computed once: with pairs,
    // every negative pair is checked.
    let mut fingerprints: HashMap<&str, crate::pipeline::fingerprint::Fingerprint> = HashMap::new();
    for pair in &pairs {
        let merged = matches!((story_of.get(&pair.a), story_of.get(&pair.b)), (Some(x), Some(y)) if x == y);
        let positive = pair.label == positive_label;
        let tally = report.merged_by_label.entry(pair.label.clone()).or_default();
        tally.0 += usize::from(merged);
        if !cluster_mode || positive {
            tally.1 += 1;
        }
        let kind = match (positive, merged) {
            (true, true) => {
                report.true_positives += 1;
                continue;
            }
            (false, true) => {
                report.false_positives += 1;
                PairErrorKind::FalsePositive
            }
            (true, false) => {
                report.false_negatives += 1;
                PairErrorKind::FalseNegative
            }
            (false, false) if cluster_mode => continue,
            (false, false) => PairErrorKind::AtRisk,
        };
        let (Some(&(a, title_a)), Some(&(b, title_b))) = (bodies.get(pair.a.as_str()), bodies.get(pair.b.as_str()))
        else {
            continue;
        };
        for (id, body, title) in [(pair.a.as_str(), a, title_a), (pair.b.as_str(), b, title_b)] {
            fingerprints
                .entry(id)
                .or_insert_with(|| engines[0].fingerprint_titled(body, title));
        }
        let (Some(fa), Some(fb)) = (fingerprints.get(pair.a.as_str()), fingerprints.get(pair.b.as_str())) else {
            continue;
        };
        let evidence = Evidence::between(fa.into(), fb.into());
        let would_verify = fa.tokens.min(fb.tokens) >= config.verify.min_tokens && is_copy(&evidence, &config.verify);
        if kind == PairErrorKind::AtRisk {
            if !would_verify {
                continue;
            }
            report.at_risk += 1;
        }
        if report.errors.len() < MAX_LISTED_ERRORS {
            report.errors.push(PairError {
                a: pair.a.clone(),
                b: pair.b.clone(),
                label: pair.label.clone(),
                kind,
                evidence,
                hamming: hamming(fa.simhash, fb.simhash),
                would_verify,
            });
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(id: &str, published_at: &str, body: &str) -> String {
        serde_json::json!({"id": id, "source": "example.com", "published_at": published_at, "body": body}).to_string()
    }

    #[test]
    fn lists_negatives_that_verify_but_were_kept_apart() {
        let story = "The central bank raised its key rate by 50 basis points to 7.25 percent on Thursday, \
            citing persistent inflation in services and a weaker currency, and said further moves \
            would depend on wage growth in the coming quarters, according to a statement.";
        let other = "Heavy rain flooded roads across the northern province on Sunday, closing two schools \
            and cutting power to about 3,000 homes, while emergency crews pumped water from basements \
            and the weather service warned of more storms before the end of the week.";
        // The same text eight days apart: the default window (7 days) keeps them apart.
        let articles = [
            article("a", "2024-11-01T10:00:00Z", story),
            article("b", "2024-11-09T10:00:00Z", story),
            article("c", "2024-11-09T11:00:00Z", other),
        ]
        .join("\n");
        let pairs = ["a-b", "a-c", "b-c"]
            .iter()
            .map(|p| LabelledPair {
                a: p[..1].to_string(),
                b: p[2..].to_string(),
                label: "different".to_string(),
            })
            .collect();
        let report = evaluate(
            &CoreConfig::default(),
            articles.as_bytes(),
            Some(("pairs", pairs)),
            "duplicate",
            Order::File,
            None,
        )
        .expect("the labelled file is valid");
        assert_eq!(report.false_positives, 0);
        assert_eq!(report.at_risk, 1);
        let listed: Vec<(&str, &str, PairErrorKind)> = report
            .errors
            .iter()
            .map(|e| (e.a.as_str(), e.b.as_str(), e.kind))
            .collect();
        assert_eq!(listed, [("a", "b", PairErrorKind::AtRisk)]);
        assert!(
            report
                .render()
                .contains("RISK a-b [different] containment 1.000 longer 1.000 lead 1.00 unquoted - numbers 1.00 names - headline false hamming 0 verifies true"),
            "{}",
            report.render()
        );
    }

    #[test]
    fn by_cluster_lists_errors_in_a_fixed_order() {
        // Every copy sits in a cluster of its own: each merged pair is a false positive.
        let articles: String = crate::tools::corpus::Generator::new(3)
            .take(300)
            .map(|generated| {
                let mut record: serde_json::Value = serde_json::from_slice(&generated.line).expect("generated JSON");
                record["cluster"] = serde_json::Value::Null;
                record.to_string() + "\n"
            })
            .collect();
        let run = || {
            let report = evaluate(
                &CoreConfig::default(),
                articles.as_bytes(),
                None,
                "duplicate",
                Order::File,
                None,
            )
            .expect("the generated file is valid");
            report
                .errors
                .iter()
                .map(|e| (e.a.clone(), e.b.clone()))
                .collect::<Vec<_>>()
        };
        let listed = run();
        assert!(listed.len() > 10, "the corpus has copies: {}", listed.len());
        assert!(listed.windows(2).all(|w| w[0] < w[1]), "listed by id");
        assert_eq!(listed, run());
    }

    /// Split over deciders, copies whose keys differ are never compared: fewer pairs are
    /// found, none that one decider did not find is made up, and one decider is no split.
    #[test]
    fn deciders_split_by_a_key_find_at_most_what_one_finds() {
        let articles: String = crate::tools::corpus::Generator::new(9)
            .take(2000)
            .map(|generated| String::from_utf8_lossy(&generated.line).into_owned() + "\n")
            .collect();
        let run = |partitioning| {
            evaluate(
                &CoreConfig::default(),
                articles.as_bytes(),
                None,
                "duplicate",
                Order::File,
                partitioning,
            )
            .expect("the generated file is valid")
        };
        let one = run(None);
        let same = run(Some(Partitioning {
            deciders: 1,
            key: PartitionKey::Lead,
        }));
        let stories = |report: &Report| {
            report
                .decisions
                .iter()
                .map(|(_, d)| (d.article_id.clone(), d.story_id.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(stories(&same), stories(&one), "one decider is no split");
        let split = run(Some(Partitioning {
            deciders: 8,
            key: PartitionKey::Lead,
        }));
        assert!(
            split.true_positives < one.true_positives,
            "{} of {} pairs found split by lead",
            split.true_positives,
            one.true_positives
        );
        assert_eq!(split.false_positives, 0);
    }
}
