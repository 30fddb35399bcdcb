//! Prometheus metrics: every series syndic exports, registered in one place.
//!
//! Names are prefixed `syndic_`, but for the process's resident memory, which carries the name
//! every Prometheus client gives it (`process_resident_memory_bytes`), so that dashboards and
//! alerts written for any service read it. Label values come from small fixed sets (verdicts,
//! reason codes, event kinds, configured topics, partition numbers), never from article ids,
//! urls or sources. docs/metrics.md lists each series with its type, labels and meaning.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// All of syndic's series. Cheap to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub records_consumed: IntCounterVec,
    pub decisions: IntCounterVec,
    pub dead_lettered: IntCounterVec,
    pub story_events: IntCounterVec,
    pub produce_errors: IntCounterVec,
    pub produce_retries: IntCounter,
    pub processing_seconds: Histogram,
    pub end_to_end_seconds: Histogram,
    pub consumer_lag: IntGaugeVec,
    pub committed_offset: IntGaugeVec,
    pub rebalances: IntCounter,
    pub consume_errors: IntCounterVec,
    pub assigned_partitions: IntGaugeVec,
    pub in_flight: IntGauge,
    pub preparing: IntGauge,
    pub index_entries: IntGauge,
    pub index_bytes: IntGauge,
    pub index_evictions: IntGauge,
    pub headline_matches: IntCounter,
    pub dated_ahead: IntCounter,
    pub stories_open: IntGauge,
    pub resident_memory: IntGauge,
}

/// A memory figure of this process from `/proc/self/status` (Linux), in bytes: `VmRSS` for
/// what it holds now, `VmHWM` for the most it held. `None` elsewhere.
pub fn process_memory(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib << 10)
}

#[derive(Debug, thiserror::Error)]
#[error("registering metric series failed (a duplicate name is a bug): {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, MetricsError> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let gauge = |name: &str, help: &str| -> Result<IntGauge, MetricsError> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec, MetricsError> {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| -> Result<Histogram, MetricsError> {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
            registry.register(Box::new(h.clone()))?;
            Ok(h)
        };
        let counter = |name: &str, help: &str| -> Result<IntCounter, MetricsError> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let build_info = IntGaugeVec::new(
            Opts::new("syndic_build_info", "Always 1; labels name the running build."),
            &["version", "git_sha"],
        )?;
        registry.register(Box::new(build_info.clone()))?;
        build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("SYNDIC_GIT_SHA").unwrap_or("unknown"),
            ])
            .set(1);
        let metrics = Self {
            records_consumed: counter_vec("syndic_records_consumed_total", "Input records consumed.", &["topic"])?,
            decisions: counter_vec("syndic_decisions_total", "Decisions made, by verdict.", &["verdict"])?,
            dead_lettered: counter_vec(
                "syndic_dead_lettered_total",
                "Records sent to the dead-letter topic, by reason.",
                &["reason"],
            )?,
            story_events: counter_vec(
                "syndic_story_events_total",
                "Story events published, by kind.",
                &["kind"],
            )?,
            produce_errors: counter_vec(
                "syndic_produce_errors_total",
                "Outputs the broker did not acknowledge (each is retried).",
                &["topic"],
            )?,
            produce_retries: counter("syndic_produce_retries_total", "Outputs sent again after an error.")?,
            processing_seconds: histogram(
                "syndic_processing_seconds",
                "Time to run one record through the engine.",
                prometheus::exponential_buckets(0.000_005, 2.0, 14)?,
            )?,
            end_to_end_seconds: histogram(
                "syndic_end_to_end_seconds",
                "From the input record's Kafka timestamp to all its outputs acknowledged.",
                prometheus::exponential_buckets(0.001, 2.0, 20)?,
            )?,
            consumer_lag: gauge_vec(
                "syndic_consumer_lag",
                "Records behind the end of each assigned partition, by topic (the input, or the fingerprint topic for the decider; librdkafka statistics).",
                &["topic", "partition"],
            )?,
            committed_offset: gauge_vec(
                "syndic_committed_offset",
                "Last committed offset of each assigned partition, by topic (librdkafka statistics).",
                &["topic", "partition"],
            )?,
            rebalances: counter(
                "syndic_rebalances_total",
                "Consumer group rebalances seen (assignments and revocations).",
            )?,
            consume_errors: counter_vec(
                "syndic_consume_errors_total",
                "Errors the consumer returned instead of a record, by kind: `refused` (the input cannot be read until a setting changes; the worker is not ready) or `transient`.",
                &["kind"],
            )?,
            assigned_partitions: gauge_vec(
                "syndic_assigned_partitions",
                "Partitions of each consumed topic currently assigned to this worker (a standby decider: 0).",
                &["topic"],
            )?,
            in_flight: gauge(
                "syndic_in_flight_records",
                "Records consumed whose outputs are not all acknowledged yet.",
            )?,
            preparing: gauge(
                "syndic_preparing_records",
                "Consumed records in the prepare stage (parse, normalize, fingerprint), at most 256: near the top, that stage is the bottleneck; near zero, deciding and producing are.",
            )?,
            index_entries: gauge(
                "syndic_index_entries",
                "Articles in the near-duplicate index (at most index.capacity).",
            )?,
            index_bytes: gauge("syndic_index_bytes", "Heap bytes of the near-duplicate index.")?,
            index_evictions: gauge(
                "syndic_index_evictions",
                "Articles evicted from the index since start (a count that only grows).",
            )?,
            headline_matches: counter(
                "syndic_headline_matches_total",
                "Duplicates joined under one headline whose text alone fell short of verify.min_containment.",
            )?,
            dated_ahead: counter(
                "syndic_dated_ahead_total",
                "Articles dated more than index.max_ahead_secs after they arrived, compared as undated ones.",
            )?,
            stories_open: gauge(
                "syndic_stories_open",
                "Stories with at least one article in the index.",
            )?,
            resident_memory: gauge(
                "process_resident_memory_bytes",
                "Resident memory of the process in bytes (Linux: VmRSS).",
            )?,
            registry,
        };
        // Both kinds exist from the start, so that an alert on them has a series to read.
        for kind in ["refused", "transient"] {
            metrics.consume_errors.with_label_values(&[kind]);
        }
        Ok(metrics)
    }

    /// Raises `counter` to `total`, a count the engine keeps: counters only go up, and the
    /// engine's totals are read once a second rather than counted where they happen.
    pub fn raise_to(counter: &IntCounter, total: u64) {
        counter.inc_by(total.saturating_sub(counter.get()));
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_exported_with_the_prefix() {
        let m = Metrics::new().unwrap();
        m.decisions.with_label_values(&["new_story"]).inc();
        m.records_consumed.with_label_values(&["articles.raw"]).inc();
        m.dead_lettered.with_label_values(&["invalid_json"]).inc();
        m.story_events.with_label_values(&["story_created"]).inc();
        m.produce_errors.with_label_values(&["stories"]).inc();
        m.consumer_lag.with_label_values(&["articles.raw", "0"]).set(3);
        m.committed_offset.with_label_values(&["articles.raw", "0"]).set(3);
        m.assigned_partitions.with_label_values(&["articles.raw"]).set(1);
        let text = m.render();
        for name in [
            "syndic_build_info",
            "syndic_records_consumed_total",
            "syndic_decisions_total",
            "syndic_dead_lettered_total",
            "syndic_story_events_total",
            "syndic_produce_errors_total",
            "syndic_produce_retries_total",
            "syndic_processing_seconds_bucket",
            "syndic_end_to_end_seconds_bucket",
            "syndic_consumer_lag",
            "syndic_committed_offset",
            "syndic_rebalances_total",
            "syndic_consume_errors_total",
            "syndic_assigned_partitions",
            "syndic_in_flight_records",
            "syndic_preparing_records",
            "syndic_index_entries",
            "syndic_index_bytes",
            "syndic_index_evictions",
            "syndic_headline_matches_total",
            "syndic_dated_ahead_total",
            "syndic_stories_open",
            "process_resident_memory_bytes",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
        assert!(text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .all(|l| l.starts_with("syndic_") || l.starts_with("process_resident_memory_bytes ")));
    }

    #[test]
    fn the_process_memory_is_read_where_the_system_tells_it() {
        let (now, peak) = (process_memory("VmRSS"), process_memory("VmHWM"));
        if cfg!(target_os = "linux") {
            let (now, peak) = (now.expect("VmRSS on Linux"), peak.expect("VmHWM on Linux"));
            assert!(now > 1 << 20 && peak >= now, "resident {now}, peak {peak}");
        }
        assert_eq!(process_memory("NoSuchField"), None);
    }
}
