//! Metrics and health as an operator sees them: a real Prometheus server scrapes `syndic run`
//! during an end-to-end run on the real broker, and the documented series, the alert rules and
//! the dashboard's expressions are checked through Prometheus's HTTP API.
//!
//! Needs `prometheus` on the PATH (scripts/test installs Debian's package) and the broker that
//! scripts/test starts.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use syndic::tools::corpus::Generator;

fn brokers() -> String {
    std::env::var("SYNDIC_TEST_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A bare HTTP GET: (status code, body).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // Prometheus answers chunked; its JSON fits in one chunk for these queries.
    let body = if response.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body.split_once("\r\n")
            .map(|(_, rest)| rest.rsplit_once("\r\n0\r\n").map_or(rest, |(b, _)| b).to_string())
            .unwrap_or(body)
    } else {
        body
    };
    Some((status, body))
}

fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The value of a scalar-ish query (sum of all returned samples), or None if it returned no data.
fn query(prometheus: u16, expr: &str) -> Option<f64> {
    let (status, body) = get(prometheus, &format!("/api/v1/query?query={}", encode(expr)))?;
    assert_eq!(status, 200, "query {expr} failed: {body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(json["status"], "success", "{expr}: {body}");
    let result = json["data"]["result"].as_array()?;
    if result.is_empty() {
        return None;
    }
    Some(
        result
            .iter()
            .filter_map(|r| r["value"][1].as_str()?.parse::<f64>().ok())
            .sum(),
    )
}

fn wait_for(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn prometheus_sees_the_documented_series_move_and_readiness_drops_on_sigterm() {
    let tag = format!("{}-{}", std::process::id(), chrono::Utc::now().timestamp_millis());
    let (input, group) = (format!("obs-in-{tag}"), format!("obs-group-{tag}"));
    let fingerprints = format!("obs-fingerprints-{tag}");
    let outputs = [
        format!("obs-stories-{tag}"),
        format!("obs-decisions-{tag}"),
        format!("obs-dlq-{tag}"),
    ];
    let records: Vec<_> = Generator::new(61).with_invalid(true).take(3000).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .create()
            .expect("admin");
        let topics: Vec<NewTopic> = std::iter::once(&input)
            .chain(&outputs)
            .map(|t| NewTopic::new(t, 2, TopicReplication::Fixed(1)))
            .chain([NewTopic::new(&fingerprints, 1, TopicReplication::Fixed(1))])
            .collect();
        for r in admin
            .create_topics(&topics, &AdminOptions::new())
            .await
            .expect("broker up: scripts/kafka start")
        {
            r.expect("topic created");
        }
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .create()
            .expect("producer");
        for r in &records {
            producer
                .send(
                    FutureRecord::to(&input).key(&r.id).payload(&r.line),
                    Duration::from_secs(30),
                )
                .await
                .expect("produced");
        }
    });

    let metrics_port = free_port();
    let worker = Command::new(env!("CARGO_BIN_EXE_syndic"))
        .args(["run"])
        .env("SYNDIC_KAFKA_BROKERS", brokers())
        .env("SYNDIC_KAFKA_GROUP_ID", &group)
        .env("SYNDIC_KAFKA_INPUT_TOPIC", &input)
        .env("SYNDIC_KAFKA_STORIES_TOPIC", &outputs[0])
        .env("SYNDIC_KAFKA_DECISIONS_TOPIC", &outputs[1])
        .env("SYNDIC_KAFKA_DLQ_TOPIC", &outputs[2])
        .env("SYNDIC_KAFKA_FINGERPRINTS_TOPIC", &fingerprints)
        .env("SYNDIC_HTTP_ADDRESS", format!("127.0.0.1:{metrics_port}"))
        .env("SYNDIC_HTTP_LINGER_AFTER_STOP_MS", "3000")
        .env("RUST_LOG", "syndic=info,rdkafka=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("syndic starts");
    let mut worker = Killed(worker);

    // A Prometheus of our own, scraping every second, with syndic's alert rules loaded.
    let dir = std::env::temp_dir().join(format!("syndic-prometheus-{tag}"));
    std::fs::create_dir_all(&dir).expect("prometheus dir");
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus/alerts.yml");
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [\"{rules}\"]\nscrape_configs:\n  - job_name: syndic\n    static_configs:\n      - targets: [\"127.0.0.1:{metrics_port}\"]\n"
        ),
    )
    .expect("prometheus config");
    let prometheus_port = free_port();
    let prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus on the PATH (apt-get install prometheus)");
    let _prometheus = Killed(prometheus);

    wait_for("syndic is ready", Duration::from_secs(60), || {
        get(metrics_port, "/readyz").is_some_and(|(s, _)| s == 200)
    });
    assert_eq!(get(metrics_port, "/healthz").map(|(s, _)| s), Some(200));
    let total = records.len() as f64;
    wait_for(
        "Prometheus saw every record consumed and decided",
        Duration::from_secs(120),
        || {
            // Both roles run: the fingerprint topic's records are counted under their topic.
            query(
                prometheus_port,
                &format!("sum(syndic_records_consumed_total{{topic=\"{input}\"}})"),
            ) == Some(total)
                && query(prometheus_port, "sum(syndic_decisions_total)") == Some(total)
        },
    );
    let invalid = records.iter().filter(|r| r.cluster.is_none()).count() as f64;
    assert_eq!(query(prometheus_port, "sum(syndic_dead_lettered_total)"), Some(invalid));
    assert_eq!(
        query(prometheus_port, "sum(syndic_decisions_total{verdict=\"invalid\"})"),
        Some(invalid)
    );
    assert!(query(prometheus_port, "sum(syndic_story_events_total)").is_some_and(|v| v > 0.0));
    assert!(query(prometheus_port, "sum(syndic_index_entries)").is_some_and(|v| v > 0.0));
    wait_for("consumer lag returned to 0", Duration::from_secs(60), || {
        query(prometheus_port, "sum(syndic_consumer_lag)") == Some(0.0)
    });

    // Every series named in docs/metrics.md is exported (histograms through their _count).
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).expect("docs/metrics.md");
    let documented: Vec<&str> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|name| name.starts_with("syndic_") || name.starts_with("process_"))
        .collect();
    assert!(documented.len() >= 15, "docs/metrics.md lists the series");
    for name in documented {
        let series = if doc.contains(&format!("`{name}` | histogram")) {
            format!("{name}_count")
        } else {
            name.to_string()
        };
        assert!(
            query(prometheus_port, &format!("count({series})")).is_some(),
            "{series} is documented but Prometheus has no such series"
        );
    }

    // Every dashboard expression and alert rule evaluates on the live data.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/grafana/syndic-dashboard.json"
        ))
        .expect("dashboard"),
    )
    .expect("dashboard JSON");
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            query(prometheus_port, expr); // asserts a successful evaluation
        }
    }
    let expected_rules = std::fs::read_to_string(rules)
        .expect("alert rules")
        .matches("- alert:")
        .count();
    wait_for(
        "Prometheus evaluated every alert rule without error",
        Duration::from_secs(30),
        || {
            let Some((200, body)) = get(prometheus_port, "/api/v1/rules") else {
                return false;
            };
            let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let rules: Vec<&serde_json::Value> = json["data"]["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|g| g["rules"].as_array().into_iter().flatten())
                .collect();
            rules.len() == expected_rules && rules.iter().all(|r| r["health"] == "ok")
        },
    );

    // SIGTERM: readiness drops before the process exits, and it exits 0.
    let pid = worker.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let mut saw_not_ready = false;
    let deadline = Instant::now() + Duration::from_secs(45);
    let status = loop {
        if let Some(status) = worker.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "syndic did not exit within 45 s of SIGTERM");
        saw_not_ready |= get(metrics_port, "/readyz").is_some_and(|(s, _)| s == 503);
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(saw_not_ready, "/readyz never answered 503 between SIGTERM and exit");
    assert!(status.success(), "syndic exited with {status} after SIGTERM");
    std::fs::remove_dir_all(&dir).ok();
}
