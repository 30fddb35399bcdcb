//! What the Kafka worker promises, checked against a real Apache Kafka broker.
//!
//! `scripts/test` starts one (`scripts/kafka start`); set SYNDIC_TEST_BROKERS to use another.
//! Tests run one at a time (the outage test stops the broker), each on topics and a consumer
//! group of its own, and drive the `syndic run` binary as an operator would.

use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use syndic::config::CoreConfig;
use syndic::tools::corpus::Generator;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// An input record: its key and payload.
type InputRecord = (Option<String>, Vec<u8>);

fn brokers() -> String {
    std::env::var("SYNDIC_TEST_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

fn admin() -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("admin client")
}

/// A consumer in `group` that commits nothing: the tests' reader.
fn reader(group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// Where `consumer` reads `partition` of `topic` next (past transaction markers and aborted
/// records, which a `read_committed` reader never returns); 0 before it has read.
fn position_of(consumer: &BaseConsumer, topic: &str, partition: i32) -> i64 {
    consumer
        .position()
        .ok()
        .and_then(|tpl| match tpl.find_partition(topic, partition)?.offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        })
        .unwrap_or(0)
}

/// The input position a record's `syndic.source.*` headers name.
fn source_position(headers: &HashMap<String, Vec<u8>>) -> (i32, i64) {
    let value = |key: &str| String::from_utf8_lossy(&headers[key]).into_owned();
    (
        value("syndic.source.partition").parse().expect("a partition"),
        value("syndic.source.offset").parse().expect("an offset"),
    )
}

struct Setup {
    name: String,
    input: String,
    stories: String,
    decisions: String,
    dlq: String,
    /// The fingerprint topic of the default role, one partition.
    fingerprints: String,
    group: String,
    partitions: i32,
}

impl Setup {
    fn new(name: &str, partitions: i32) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let tag = format!("{name}-{}-{nanos}", std::process::id());
        let setup = Self {
            name: name.to_string(),
            input: format!("in-{tag}"),
            stories: format!("stories-{tag}"),
            decisions: format!("decisions-{tag}"),
            dlq: format!("dlq-{tag}"),
            fingerprints: format!("fingerprints-{tag}"),
            group: format!("group-{tag}"),
            partitions,
        };
        runtime().block_on(setup.create_topics());
        setup
    }

    async fn create_topics(&self) {
        let admin = admin();
        let topics: Vec<NewTopic> = [&self.input, &self.stories, &self.decisions, &self.dlq]
            .iter()
            .map(|t| NewTopic::new(t, self.partitions, TopicReplication::Fixed(1)))
            .chain([NewTopic::new(&self.fingerprints, 1, TopicReplication::Fixed(1))])
            .collect();
        let options = AdminOptions::new()
            .operation_timeout(Some(Duration::from_secs(20)))
            .request_timeout(Some(Duration::from_secs(20)));
        let results = admin.create_topics(&topics, &options).await.unwrap_or_else(|e| {
            panic!(
                "no Kafka broker answers at {}: start one with `scripts/kafka start` ({e})",
                brokers()
            )
        });
        for r in results {
            r.expect("topic created");
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SYNDIC_KAFKA_BROKERS", brokers()),
            ("SYNDIC_KAFKA_GROUP_ID", self.group.clone()),
            ("SYNDIC_KAFKA_INPUT_TOPIC", self.input.clone()),
            ("SYNDIC_KAFKA_STORIES_TOPIC", self.stories.clone()),
            ("SYNDIC_KAFKA_DECISIONS_TOPIC", self.decisions.clone()),
            ("SYNDIC_KAFKA_DLQ_TOPIC", self.dlq.clone()),
            ("SYNDIC_KAFKA_FINGERPRINTS_TOPIC", self.fingerprints.clone()),
            ("RUST_LOG", "syndic=info,rdkafka=warn".to_string()),
            // Any free port: several workers may run at once.
            ("SYNDIC_HTTP_ADDRESS", "127.0.0.1:0".to_string()),
        ]
    }

    /// Starts `syndic run`; its log goes to a file named after the test, shown on failure.
    fn spawn_worker(&self, label: &str, idle_secs: u64, extra_env: &[(&str, &str)]) -> Worker {
        self.spawn_worker_with_config(label, idle_secs, extra_env, None)
    }

    /// [`Setup::spawn_worker`] with a config file holding `config_toml`, for settings that have
    /// no environment override (the librdkafka passthrough tables).
    fn spawn_worker_with_config(
        &self,
        label: &str,
        idle_secs: u64,
        extra_env: &[(&str, &str)],
        config_toml: Option<&str>,
    ) -> Worker {
        let log = std::env::temp_dir().join(format!("syndic-{}-{label}.log", self.name));
        let file = std::fs::File::create(&log).expect("log file");
        eprintln!("worker {label} logs to {}", log.display());
        let mut args = vec![
            "run".to_string(),
            "--stop-after-idle-secs".to_string(),
            idle_secs.to_string(),
        ];
        if let Some(text) = config_toml {
            let path = std::env::temp_dir().join(format!("syndic-{}-{label}.toml", self.name));
            std::fs::write(&path, text).expect("config file written");
            args.extend(["--config".to_string(), path.display().to_string()]);
        }
        Worker(
            Command::new(env!("CARGO_BIN_EXE_syndic"))
                .args(&args)
                .envs(self.env())
                .envs(extra_env.iter().copied())
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .expect("syndic binary starts"),
        )
    }

    fn produce(&self, records: &[(Option<String>, Vec<u8>)]) {
        self.produce_compressed(records, "lz4");
    }

    /// [`Setup::produce`] with the batches compressed by `codec` (a `compression.type`).
    fn produce_compressed(&self, records: &[(Option<String>, Vec<u8>)], codec: &str) {
        runtime().block_on(async {
            let producer: FutureProducer = ClientConfig::new()
                .set("bootstrap.servers", brokers())
                .set("linger.ms", "20")
                .set("compression.type", codec)
                .create()
                .expect("producer");
            for chunk in records.chunks(5000) {
                let mut pending = Vec::new();
                for (key, payload) in chunk {
                    let mut record = FutureRecord::to(&self.input).payload(&payload[..]);
                    if let Some(key) = key {
                        record = record.key(key.as_str());
                    }
                    loop {
                        match producer.send_result(record) {
                            Ok(delivery) => {
                                pending.push(delivery);
                                break;
                            }
                            Err((_, back)) => {
                                record = back;
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                        }
                    }
                }
                for delivery in pending {
                    delivery
                        .await
                        .expect("delivery not canceled")
                        .expect("input record delivered");
                }
            }
        });
    }

    /// Produces `records` 1,000 at a time with `pause` after each: input that keeps arriving
    /// while a test kills workers.
    fn trickle(&self, records: &[InputRecord], pause: Duration) {
        for chunk in records.chunks(1_000) {
            self.produce(chunk);
            std::thread::sleep(pause);
        }
    }

    fn consumer(&self, group: &str) -> BaseConsumer {
        reader(group)
    }

    fn end_offsets(&self, topic: &str) -> Vec<i64> {
        self.end_offsets_of(topic, self.partitions)
    }

    fn end_offsets_of(&self, topic: &str, partitions: i32) -> Vec<i64> {
        let consumer = self.consumer("syndic-test-reader");
        (0..partitions)
            .map(|p| {
                consumer
                    .fetch_watermarks(topic, p, Duration::from_secs(20))
                    .expect("watermarks")
                    .1
            })
            .collect()
    }

    fn committed(&self) -> Vec<i64> {
        let consumer = self.consumer(&self.group);
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.partitions {
            tpl.add_partition(&self.input, p);
        }
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(20))
            .expect("committed offsets");
        (0..self.partitions)
            .map(|p| match committed.find_partition(&self.input, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => 0,
            })
            .collect()
    }

    /// The deciders' committed offset on the fingerprint topic (0 when none).
    fn decider_committed(&self) -> i64 {
        let consumer = self.consumer(&format!("{}.decide", self.group));
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.fingerprints, 0);
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(20))
            .expect("committed offsets");
        match committed.find_partition(&self.fingerprints, 0).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => 0,
        }
    }

    /// Every message of a topic, in partition and offset order.
    fn read_all(&self, topic: &str) -> Vec<Record> {
        let ends = self.end_offsets(topic);
        let consumer = self.consumer("syndic-test-reader");
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .expect("partition");
        }
        consumer.assign(&tpl).expect("assign");
        let mut out = Vec::new();
        let mut next = vec![0i64; self.partitions as usize];
        let deadline = Instant::now() + Duration::from_secs(120);
        while next.iter().zip(&ends).any(|(n, e)| n < e) {
            assert!(Instant::now() < deadline, "could not read {topic} to its end");
            let Some(message) = consumer.poll(Duration::from_millis(200)) else {
                // Transaction markers and aborted records are never returned: the reader's
                // position passes them.
                for (p, n) in next.iter_mut().enumerate() {
                    *n = (*n).max(position_of(&consumer, topic, p as i32));
                }
                continue;
            };
            let message = message.expect("read message");
            next[message.partition() as usize] = message.offset() + 1;
            let mut headers = HashMap::new();
            if let Some(h) = message.headers() {
                for header in h.iter() {
                    headers.insert(
                        header.key.to_string(),
                        header.value.map(<[u8]>::to_vec).unwrap_or_default(),
                    );
                }
            }
            out.push(Record {
                partition: message.partition(),
                offset: message.offset(),
                key: message.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                headers,
            });
        }
        out.sort_by_key(|r| (r.partition, r.offset));
        out
    }

    fn decisions(&self) -> Vec<serde_json::Value> {
        self.read_all(&self.decisions)
            .iter()
            .map(|r| serde_json::from_slice(&r.payload).expect("decision is JSON"))
            .collect()
    }

    fn decisions_count(&self) -> i64 {
        self.end_offsets(&self.decisions).iter().sum()
    }
}

/// A `syndic` process a test started, killed when the test ends however it ends: a failed
/// assertion must not leave workers running into the next tests.
struct Worker(Child);

impl std::ops::Deref for Worker {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Worker {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[derive(Debug)]
struct Record {
    partition: i32,
    offset: i64,
    key: Option<String>,
    payload: Vec<u8>,
    headers: HashMap<String, Vec<u8>>,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn generated(n: usize, seed: u64) -> Vec<(Option<String>, Vec<u8>)> {
    Generator::new(seed).take(n).map(|r| (Some(r.id), r.line)).collect()
}

/// `n` generated records with a few invalid ones among them, produced without keys (spread
/// round-robin, as many producers do).
fn keyless_with_invalid(n: usize, seed: u64) -> Vec<InputRecord> {
    Generator::new(seed)
        .with_invalid(true)
        .take(n)
        .map(|r| (None, r.line))
        .collect()
}

fn wait_success(child: &mut Child, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "{what} exited with {status}");
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not exit within {within:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sends SIGTERM, as an orchestrator stopping the worker would.
fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM {} failed", child.id());
}

fn wait_until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Every input article has a decision, and the committed offsets reached the end of the input.
fn assert_all_accounted_for(setup: &Setup, ids: &HashSet<String>) -> Vec<serde_json::Value> {
    let decisions = setup.decisions();
    let decided: HashSet<String> = decisions
        .iter()
        .filter_map(|d| d["article_id"].as_str().map(str::to_string))
        .collect();
    let missing: Vec<&String> = ids.difference(&decided).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} articles have no decision, e.g. {missing:?}",
        ids.difference(&decided).count()
    );
    assert_eq!(
        setup.committed(),
        setup.end_offsets(&setup.input),
        "committed offsets must reach the end of the input"
    );
    decisions
}

#[test]
fn end_to_end_the_topics_hold_what_the_core_engine_decides() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::new("e2e", 1);
    let records = generated(3000, 31);
    setup.produce(&records);
    // Three prepare threads: the comparison below, record by record in partition order, fails
    // if the stage hands records back out of consumption order.
    let mut worker = setup.spawn_worker("a", 4, &[("SYNDIC_KAFKA_PREPARE_THREADS", "3")]);
    wait_success(&mut worker, Duration::from_secs(180), "worker");

    let ids: HashSet<String> = records.iter().filter_map(|(k, _)| k.clone()).collect();
    let decisions = assert_all_accounted_for(&setup, &ids);
    assert_eq!(
        decisions.len(),
        records.len(),
        "one decision per record, no duplicates in a clean run"
    );

    let mut engine = CoreConfig::default().engine().expect("engine");
    let now = chrono::Utc::now();
    for ((_, payload), decision) in records.iter().zip(&decisions) {
        let expected = engine.process(payload, now).decision;
        assert_eq!(decision["article_id"].as_str(), expected.article_id.as_deref());
        assert_eq!(decision["verdict"].as_str(), Some(expected.verdict.as_str()));
        assert_eq!(decision["story_id"].as_str(), expected.story_id.as_deref());
    }

    // The latest event of each story lists exactly the articles whose decisions name it.
    let mut latest: HashMap<String, serde_json::Value> = HashMap::new();
    for record in setup.read_all(&setup.stories) {
        let event: serde_json::Value = serde_json::from_slice(&record.payload).expect("event is JSON");
        assert_eq!(
            record.key.as_deref(),
            event["story_id"].as_str(),
            "stories are keyed by story id"
        );
        let id = event["story_id"].as_str().unwrap_or_default().to_string();
        if latest
            .get(&id)
            .is_none_or(|e| e["version"].as_u64() < event["version"].as_u64())
        {
            latest.insert(id, event);
        }
    }
    let mut from_decisions: HashMap<String, HashSet<String>> = HashMap::new();
    for d in &decisions {
        from_decisions
            .entry(d["story_id"].as_str().unwrap_or_default().to_string())
            .or_default()
            .insert(d["article_id"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(latest.len(), from_decisions.len());
    for (story, event) in &latest {
        let members: HashSet<String> = event["members"]
            .as_array()
            .expect("members")
            .iter()
            .map(|m| m["article_id"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(&members, &from_decisions[story], "members of {story}");
    }
}

#[test]
fn bad_records_go_to_the_dead_letter_topic_with_their_reason_and_offsets_pass_them() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::new("dlq", 1);
    let valid = |id: &str| {
        format!(r#"{{"id":"{id}","source":"trend.az","published_at":"2024-05-01","body":"Kazakhstan and Uzbekistan signed a protocol on trade, the ministry said on Monday in Astana."}}"#).into_bytes()
    };
    let oversize = format!(r#"{{"id":"big","source":"s","body":"{}"}}"#, "word ".repeat(8000)).into_bytes();
    let cases: Vec<(Vec<u8>, Option<&str>)> = vec![
        (valid("v1"), None),
        (b"\xff\xfe{\"id\":\"x\"}".to_vec(), Some("invalid_utf8")),
        (b"{not json".to_vec(), Some("invalid_json")),
        (b"[1,2,3]".to_vec(), Some("not_an_object")),
        (br#"{"source":"s","body":"b"}"#.to_vec(), Some("missing_field")),
        (br#"{"id":5,"source":"s","body":"b"}"#.to_vec(), Some("wrong_type")),
        (
            "{\"id\":\"e\",\"source\":\"news.az\",\"body\":\"+ \u{21BA} \u{2212} 16 px\"}"
                .as_bytes()
                .to_vec(),
            Some("empty_body"),
        ),
        (oversize, Some("oversize")),
        (
            br#"{"id":"t","source":"s","body":"b","published_at":"yesterday"}"#.to_vec(),
            Some("bad_timestamp"),
        ),
        (Vec::new(), Some("empty_record")),
        (b" \r\n\t".to_vec(), Some("empty_record")),
        // A valid article with a field nested 1,000 deep: refused, never carried into an event.
        (
            format!(
                r#"{{"id":"deep","source":"s","body":"Trade rose by a tenth in May.","x":{}{}}}"#,
                "[".repeat(1000),
                "]".repeat(1000)
            )
            .into_bytes(),
            Some("too_deep"),
        ),
        (
            format!(
                r#"{{"id":"wide","source":"s","body":"Trade rose by a tenth in May.","x":{{{}}}}}"#,
                (0..60).map(|i| format!(r#""k{i}":0"#)).collect::<Vec<_>>().join(",")
            )
            .into_bytes(),
            Some("too_many_fields"),
        ),
        (
            format!(r#"{{"id":"long","source":"s","body":"{}"}}"#, "w".repeat(20_001)).into_bytes(),
            Some("string_too_long"),
        ),
        (valid("v2"), None),
    ];
    let records: Vec<(Option<String>, Vec<u8>)> = cases
        .iter()
        .enumerate()
        .map(|(i, (p, _))| (Some(format!("key-{i}")), p.clone()))
        .collect();
    setup.produce(&records);
    let mut worker = setup.spawn_worker(
        "a",
        4,
        &[
            ("SYNDIC_INPUT_MAX_RECORD_BYTES", "30000"),
            ("SYNDIC_INPUT_MAX_FIELDS", "50"),
            ("SYNDIC_INPUT_MAX_STRING_BYTES", "20000"),
        ],
    );
    wait_success(&mut worker, Duration::from_secs(120), "worker");
    assert!(
        setup
            .read_all(&setup.stories)
            .iter()
            .all(|e| !e.payload.windows(3).any(|w| w == b"[[[")),
        "a refused record is never carried into a story event"
    );
    // A few dead letters are logged one by one, the rest as a count: a poisoned topic must not
    // flood the log. Every one is accounted for.
    let log = log_of(&setup, "a");
    let shown = log.matches("invalid record sent to the dead-letter topic").count();
    let held_back: usize = log
        .lines()
        .filter(|l| l.contains("not logged one by one"))
        .filter_map(|l| {
            l.split("count=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    let bad = cases.iter().filter(|(_, code)| code.is_some()).count();
    assert!(
        held_back > 0 && shown + held_back == bad,
        "{shown} shown, {held_back} counted of {bad}: {log}"
    );

    // The prepare stage dead-letters what it cannot parse, the decider what has no words left:
    // in input order once sorted by the input position each names.
    let mut dead = setup.read_all(&setup.dlq);
    dead.sort_by_key(|letter| source_position(&letter.headers));
    let expected: Vec<(i64, &str)> = cases
        .iter()
        .enumerate()
        .filter_map(|(i, (_, code))| code.map(|c| (i as i64, c)))
        .collect();
    assert_eq!(dead.len(), expected.len(), "one dead letter per bad record");
    for (letter, (offset, code)) in dead.iter().zip(&expected) {
        assert_eq!(
            letter
                .headers
                .get("syndic.reason")
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .as_deref(),
            Some(*code)
        );
        assert!(
            letter.headers.get("syndic.error").is_some_and(|e| !e.is_empty()),
            "the error message travels too"
        );
        assert_eq!(
            letter.headers.get("syndic.source.offset"),
            Some(&offset.to_string().into_bytes())
        );
        assert_eq!(
            letter.headers.get("syndic.source.topic"),
            Some(&setup.input.clone().into_bytes())
        );
        assert_eq!(
            letter.payload, cases[*offset as usize].0,
            "the record is dead-lettered unchanged"
        );
        assert_eq!(
            letter.key.as_deref(),
            Some(format!("key-{offset}").as_str()),
            "with its key, whichever stage dead-lettered it"
        );
    }
    let mut decisions: Vec<(i64, serde_json::Value)> = setup
        .read_all(&setup.decisions)
        .iter()
        .map(|r| {
            let decision = serde_json::from_slice(&r.payload).expect("decision is JSON");
            (source_position(&r.headers).1, decision)
        })
        .collect();
    decisions.sort_by_key(|(offset, _)| *offset);
    assert_eq!(decisions.len(), cases.len(), "every record gets a decision");
    assert_eq!(decisions[0].1["verdict"].as_str(), Some("new_story"));
    assert_eq!(
        decisions.last().and_then(|(_, d)| d["article_id"].as_str()),
        Some("v2"),
        "records after bad ones are processed"
    );
    assert_eq!(
        setup.committed(),
        vec![cases.len() as i64],
        "the committed offset passes all of them"
    );
}

/// Sets a topic's `max.message.bytes`: a story event larger than it is refused by the broker
/// with a permanent error, which is how the next test makes one output fail on demand.
fn set_max_message_bytes(topic: &str, bytes: usize) {
    runtime().block_on(async {
        let admin = admin();
        let value = bytes.to_string();
        let config = AlterConfig::new(ResourceSpecifier::Topic(topic)).set("max.message.bytes", &value);
        let results = admin
            .alter_configs([&config], &AdminOptions::new())
            .await
            .expect("alter configs");
        for result in results {
            result.expect("topic config altered");
        }
    });
}

/// Twenty small articles with, at the returned offset, one of about 300 KB whose story event
/// no 64 KB limit admits: hex words barely compress.
fn twenty_small_and_one_big() -> (Vec<InputRecord>, usize) {
    let article = |id: &str, body: &str| {
        (
            Some(id.to_string()),
            serde_json::json!({"id": id, "source": "trend.az", "published_at": "2024-05-01", "body": body})
                .to_string()
                .into_bytes(),
        )
    };
    let mut rng = syndic::tools::corpus::Rng::new(11);
    let mut records: Vec<InputRecord> = (0..20)
        .map(|i| {
            let body = format!(
                "Report {i}: the ministry of region {i} published figures {} and {} on Monday.",
                rng.next_u64(),
                rng.next_u64()
            );
            article(&format!("small-{i}"), &body)
        })
        .collect();
    let big_body: Vec<String> = (0..20_000).map(|_| format!("{:x}", rng.next_u64())).collect();
    let big_offset = 10;
    records.insert(big_offset, article("big", &big_body.join(" ")));
    (records, big_offset)
}

/// Whether the stories topic holds an event whose canonical article is `id`.
fn has_story_event_of(setup: &Setup, id: &str) -> bool {
    setup.read_all(&setup.stories).iter().any(|r| {
        serde_json::from_slice::<serde_json::Value>(&r.payload)
            .is_ok_and(|event| event["canonical_article_id"].as_str() == Some(id))
    })
}

#[test]
fn an_output_the_broker_refuses_is_sent_again_and_holds_back_its_offset() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::new("refused", 1);
    set_max_message_bytes(&setup.stories, 64 * 1024);
    let (records, big_offset) = twenty_small_and_one_big();
    setup.produce(&records);

    // One message per produce batch: the broker refuses a whole batch, and the other records'
    // events must not share the big one's fate for this test to show them completing.
    let one_per_batch = "[kafka.producer]\n\"batch.num.messages\" = \"1\"\n";
    let mut worker = setup.spawn_worker_with_config("a", 4, &[], Some(one_per_batch));
    wait_until("every record is decided", Duration::from_secs(60), || {
        setup.decisions_count() == records.len() as i64
    });
    // Several auto-commit intervals while the big story event keeps being refused.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        worker.try_wait().expect("wait").is_none(),
        "the worker keeps sending the refused output instead of finishing"
    );
    // The story event is the decider's output: its offset on the fingerprint topic (where every
    // record here is one, in input order) is the one held back.
    let committed = setup.decider_committed();
    assert_eq!(
        committed, big_offset as i64,
        "the committed offset reaches the record whose output was refused and stops there, though every later record was decided"
    );
    assert!(
        !has_story_event_of(&setup, "big"),
        "the broker refused the big story event so far"
    );

    set_max_message_bytes(&setup.stories, 4 * 1024 * 1024);
    wait_success(
        &mut worker,
        Duration::from_secs(60),
        "worker once the broker accepts the output",
    );
    assert_eq!(
        setup.decider_committed(),
        records.len() as i64,
        "the offset passes it once it is delivered"
    );
    assert!(
        has_story_event_of(&setup, "big"),
        "the refused story event was sent again and delivered"
    );
}

#[test]
fn an_output_the_producer_refuses_stalls_neither_the_worker_nor_its_shutdown() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::new("too-big", 1);
    let (records, big_offset) = twenty_small_and_one_big();
    setup.produce(&records);

    // librdkafka itself refuses a message over the producer's message.max.bytes, before any
    // broker sees it. Such an output used to be retried inside the loop, which then stopped
    // consuming and ignored SIGTERM. Here it is the big article's fingerprint record (it carries
    // the article as received): the prepare stage holds back the input's offset, and every
    // other record is decided.
    let small_limit = "[kafka.producer]\n\"message.max.bytes\" = \"65536\"\n\"batch.size\" = \"65536\"\n";
    let mut worker = setup.spawn_worker_with_config(
        "a",
        60,
        &[("SYNDIC_KAFKA_SHUTDOWN_TIMEOUT_SECS", "5")],
        Some(small_limit),
    );
    wait_until(
        "every record but the big one is decided",
        Duration::from_secs(60),
        || setup.decisions_count() == records.len() as i64 - 1,
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        setup.committed()[0],
        big_offset as i64,
        "the refused record holds its offset"
    );
    terminate(&worker);
    wait_success(&mut worker, Duration::from_secs(30), "worker after SIGTERM");
    assert_eq!(
        setup.committed()[0],
        big_offset as i64,
        "nothing past the refused record is committed"
    );

    // With the producer's default limit a restarted worker consumes it again and delivers it.
    let mut worker = setup.spawn_worker("b", 4, &[]);
    wait_success(&mut worker, Duration::from_secs(60), "restarted worker");
    assert_eq!(setup.committed(), vec![records.len() as i64]);
    assert!(has_story_event_of(&setup, "big"));
}

#[test]
fn a_worker_killed_mid_stream_loses_nothing_after_restart() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // One partition: processing order is then the log's order in both runs, which is what
    // makes story ids reproducible across the restart (docs/worker.md).
    let setup = Setup::new("crash", 1);
    let records = generated(100_000, 47);
    setup.produce(&records);
    let ids: HashSet<String> = records.iter().filter_map(|(k, _)| k.clone()).collect();

    let mut first = setup.spawn_worker("first", 30, &[]);
    wait_until(
        "the first worker decided 25,000 records",
        Duration::from_secs(300),
        || setup.decisions_count() >= 25_000,
    );
    first.kill().expect("kill -9");
    first.wait().expect("reaped");
    let committed_at_crash: i64 = setup.committed().iter().sum();
    let decided_at_crash = setup.decisions_count();
    let fingerprinted_at_crash = setup.end_offsets_of(&setup.fingerprints, 1)[0];
    let decider_committed_at_crash = setup.decider_committed();
    assert!(
        committed_at_crash < records.len() as i64,
        "the crash must come mid-stream"
    );

    let mut second = setup.spawn_worker("second", 6, &[]);
    wait_success(&mut second, Duration::from_secs(300), "restarted worker");
    let decisions = assert_all_accounted_for(&setup, &ids);

    // Records decided twice can only be those fingerprinted after the input's last commit
    // (prepared again) and those decided after the decider's last commit (decided again).
    let repeated = decisions.len() as i64 - records.len() as i64;
    let bound = (fingerprinted_at_crash - committed_at_crash) + (decided_at_crash - decider_committed_at_crash);
    assert!(repeated >= 0);
    assert!(
        repeated <= bound,
        "{repeated} records decided twice, but only {bound} were fingerprinted or decided after the last commits"
    );

    // The restarted decider restored its view from the fingerprint topic, so a record decided
    // twice got the same verdict and story id both times.
    let mut first_seen: HashMap<String, (String, String)> = HashMap::new();
    let mut checked = 0;
    for d in &decisions {
        let id = d["article_id"].as_str().unwrap_or_default().to_string();
        let now = (
            d["story_id"].as_str().unwrap_or_default().to_string(),
            d["verdict"].as_str().unwrap_or_default().to_string(),
        );
        match first_seen.get(&id) {
            Some(before) => {
                assert_eq!(before, &now, "article {id} was decided differently after the restart");
                checked += 1;
            }
            None => {
                first_seen.insert(id, now);
            }
        }
    }
    assert_eq!(checked as i64, repeated);
    assert!(
        std::fs::read_to_string(std::env::temp_dir().join("syndic-crash-second.log"))
            .is_ok_and(|log| log.contains("view restored from the fingerprint topic")),
        "the restarted worker says it restored its view"
    );
}

fn kafka_script(action: &str) {
    let status = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka"))
        .arg(action)
        .status()
        .expect("scripts/kafka runs");
    assert!(status.success(), "scripts/kafka {action} failed");
}

#[test]
fn the_worker_rides_out_a_broker_outage() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        std::env::var("SYNDIC_TEST_BROKERS").is_err(),
        "the outage test stops and starts the broker of scripts/kafka; unset SYNDIC_TEST_BROKERS"
    );
    let setup = Setup::new("outage", 3);
    let records = generated(20_000, 53);
    setup.produce(&records);
    let ids: HashSet<String> = records.iter().filter_map(|(k, _)| k.clone()).collect();
    // Idle exit must not come during the 10 s outage (plus restart).
    let mut worker = setup.spawn_worker("a", 25, &[]);
    wait_until("the worker decided 2,000 records", Duration::from_secs(120), || {
        setup.decisions_count() >= 2_000
    });
    kafka_script("stop");
    std::thread::sleep(Duration::from_secs(10));
    kafka_script("start");
    assert!(
        worker.try_wait().expect("wait").is_none(),
        "the worker must survive the outage"
    );
    wait_success(&mut worker, Duration::from_secs(300), "worker after the outage");
    assert_all_accounted_for(&setup, &ids);
}

#[test]
fn a_second_worker_joining_and_leaving_loses_nothing() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::new("rebalance", 3);
    let records = generated(40_000, 59);
    setup.produce(&records);
    let ids: HashSet<String> = records.iter().filter_map(|(k, _)| k.clone()).collect();
    let mut first = setup.spawn_worker("first", 10, &[("SYNDIC_KAFKA_MAX_IN_FLIGHT", "500")]);
    wait_until(
        "the first worker decided 3,000 records",
        Duration::from_secs(120),
        || setup.decisions_count() >= 3_000,
    );
    let mut second = setup.spawn_worker("second", 60, &[("SYNDIC_KAFKA_MAX_IN_FLIGHT", "500")]);
    std::thread::sleep(Duration::from_secs(8));
    // SIGTERM: the second worker finishes what it holds, commits, leaves the group, exits 0.
    terminate(&second);
    wait_success(&mut second, Duration::from_secs(45), "second worker after SIGTERM");
    wait_success(&mut first, Duration::from_secs(300), "first worker");
    assert_all_accounted_for(&setup, &ids);
}

/// Runs `syndic replay` with `args` over the setup's input; its log goes to a file named after
/// `label`.
fn replay(setup: &Setup, label: &str, args: &[&str]) -> Worker {
    let log = std::env::temp_dir().join(format!("syndic-{}-{label}.log", setup.name));
    Worker(
        Command::new(env!("CARGO_BIN_EXE_syndic"))
            .arg("replay")
            .args(args)
            .envs(setup.env())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("syndic replay runs"),
    )
}

fn replay_files(dir: &std::path::Path) -> Vec<Vec<u8>> {
    ["decisions.jsonl", "stories.jsonl", "dead-letters.jsonl"]
        .iter()
        .map(|name| std::fs::read(dir.join(name)).unwrap_or_default())
        .collect()
}

fn group_names() -> HashSet<String> {
    let consumer = reader("group-lister");
    consumer
        .fetch_group_list(None, Duration::from_secs(10))
        .expect("group list")
        .groups()
        .iter()
        .map(|g| g.name().to_string())
        .collect()
}

#[test]
fn replay_is_bounded_deterministic_resumable_and_leaves_the_live_group_alone() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::new("replay", 3);
    let records = keyless_with_invalid(12_000, 67);
    setup.produce(&records);
    // A live worker has decided the input and committed.
    let mut worker = setup.spawn_worker("live", 4, &[]);
    wait_success(&mut worker, Duration::from_secs(180), "live worker");
    let live_committed = setup.committed();
    let live_decisions = setup.decisions_count();
    let groups_before = group_names();
    let dir = std::env::temp_dir().join(format!("syndic-replay-{}", setup.input));

    // No sink named: refused, with what to say.
    let mut refused = replay(&setup, "refused", &[]);
    let status = refused.wait().expect("wait");
    assert!(!status.success());
    assert!(
        log_of(&setup, "refused").contains("--output-suffix"),
        "the refusal says what to give"
    );

    // Two replays of the whole range into files write the same bytes.
    let (a, b) = (dir.join("a"), dir.join("b"));
    for out in [&a, &b] {
        let mut run = replay(&setup, "files", &["--output-dir", out.to_str().expect("path")]);
        wait_success(&mut run, Duration::from_secs(180), "replay to files");
    }
    let first = replay_files(&a);
    assert_eq!(
        first[0].iter().filter(|&&b| b == b'\n').count(),
        records.len(),
        "one decision per record of the range"
    );
    assert!(
        !first[1].is_empty() && !first[2].is_empty(),
        "story events and dead letters written"
    );
    assert!(
        first == replay_files(&b),
        "two replays of one range write the same bytes"
    );
    assert!(
        !a.join("checkpoint.json").exists(),
        "a complete replay removes its checkpoint"
    );

    // Killed mid-range, then run again: it resumes and writes what the uninterrupted one did.
    let c = dir.join("c");
    let args = [
        "--output-dir",
        c.to_str().expect("path"),
        "--checkpoint-interval-ms",
        "50",
    ];
    let mut run = replay(&setup, "killed", &args);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !c.join("checkpoint.json").exists() {
        assert!(Instant::now() < deadline, "the replay wrote no checkpoint");
        std::thread::sleep(Duration::from_millis(2));
    }
    run.kill().expect("kill -9");
    let _ = run.wait();
    let mut run = replay(&setup, "resumed", &["--output-dir", c.to_str().expect("path")]);
    wait_success(&mut run, Duration::from_secs(180), "resumed replay");
    assert!(log_of(&setup, "resumed").contains("resuming an interrupted replay"));
    assert!(
        first == replay_files(&c),
        "a resumed replay writes what an uninterrupted one did"
    );

    // A bounded range by offsets, into topics of its own.
    let mut run = replay(
        &setup,
        "topics",
        &[
            "--from",
            "0:100,1:100,2:100",
            "--to",
            "0:400,1:400,2:400",
            "--output-suffix",
            ".backfill",
        ],
    );
    wait_success(&mut run, Duration::from_secs(180), "replay to topics");
    let backfill = format!("{}.backfill", setup.decisions);
    let written: i64 = setup.end_offsets(&backfill).iter().sum();
    // Keyless records are spread in sticky batches, so the partitions are uneven.
    let in_range: i64 = setup
        .end_offsets(&setup.input)
        .iter()
        .map(|&end| end.min(400) - end.min(100))
        .sum();
    assert!(in_range > 0, "the range holds records");
    assert_eq!(
        written, in_range,
        "one decision per record of the range [100, 400) of each partition"
    );

    // The live side is untouched: its outputs, its group's offsets, and no group was added.
    assert_eq!(
        setup.decisions_count(),
        live_decisions,
        "nothing written to the live decisions topic"
    );
    assert_eq!(
        setup.committed(),
        live_committed,
        "the live group's offsets are untouched"
    );
    let added: Vec<String> = group_names().difference(&groups_before).cloned().collect();
    assert!(
        added.iter().all(|g| g == "group-lister"),
        "a replay leaves no consumer group behind: {added:?}"
    );

    // A replay of a topic that does not exist ends at once, non-zero, naming it.
    let missing = format!("{}-missing", setup.input);
    let out_dir = dir.join("missing");
    let mut worker = replay(
        &setup,
        "missing",
        &[
            "--input-topic",
            &missing,
            "--output-dir",
            &out_dir.display().to_string(),
        ],
    );
    let status = loop {
        if let Some(status) = worker.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!status.success(), "a replay of a missing topic must fail");
    let log = log_of(&setup, "missing");
    assert!(log.contains(&missing) && log.contains("does not exist"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every message of partition 0 of `topic` (the fingerprint topic has one), in offset order,
/// with the input position its `syndic.source.*` headers name.
fn read_partition_zero(topic: &str) -> Vec<(Vec<u8>, (i32, i64))> {
    let consumer = reader("syndic-test-reader");
    let (_, end) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(20))
        .expect("watermarks");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while position_of(&consumer, topic, 0) < end {
        assert!(Instant::now() < deadline, "could not read {topic} to its end");
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("read message");
            let headers: HashMap<String, Vec<u8>> = message
                .headers()
                .expect("source headers")
                .iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec).unwrap_or_default()))
                .collect();
            out.push((
                message.payload().unwrap_or_default().to_vec(),
                source_position(&headers),
            ));
        }
    }
    out
}

/// Two prepare workers over a 6-partition input produced without keys feed one fingerprint
/// partition, and one decider decides it: every input record gets exactly one decision naming
/// its input position, the input's offsets are committed to its end, and the decisions are the
/// engine's over the fingerprint topic's order: one dedup view, whatever the input's
/// partitioning.
#[test]
fn prepare_workers_feed_one_decider_through_the_fingerprint_topic() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::new("roles", 6);
    let fingerprints = setup.fingerprints.clone();
    let records = keyless_with_invalid(4000, 37);
    setup.produce(&records);
    let prepare = [("SYNDIC_KAFKA_ROLE", "prepare")];
    let decide = [("SYNDIC_KAFKA_ROLE", "decide")];
    let mut workers = vec![
        ("prepare one", setup.spawn_worker("prepare-1", 6, &prepare)),
        ("prepare two", setup.spawn_worker("prepare-2", 6, &prepare)),
        ("decider", setup.spawn_worker("decide", 6, &decide)),
    ];
    for (what, worker) in &mut workers {
        wait_success(worker, Duration::from_secs(180), what);
    }

    assert_the_decider_decided_the_log(&setup, &fingerprints, records.len(), Repeats::None);
}

/// Whether a run may decide a record twice (a worker was killed): then every decision of it
/// must carry the same content.
#[derive(Clone, Copy, PartialEq)]
enum Repeats {
    None,
    SameContent,
}

/// What the engine decides over the fingerprint records of `log`, in its order: the reference
/// a decider's outputs are checked against.
fn engine_over_log(log: &[(Vec<u8>, (i32, i64))]) -> Vec<syndic::pipeline::messages::Outcome> {
    use syndic::pipeline::messages::Prepared;
    let mut engine = CoreConfig::default().engine().expect("engine");
    log.iter()
        .map(|(bytes, _)| {
            let (article, fingerprint) = syndic::pipeline::log_record::decode(bytes).expect("a fingerprint record");
            engine.decide(Prepared::Article { article, fingerprint })
        })
        .collect()
}

/// Every input record has a decision naming its position (exactly one in a clean run), the
/// input's offsets are committed to its end, every decision of a fingerprint record is the
/// engine's over the fingerprint topic's order (from its first record), and every dead letter
/// matches an invalid decision.
fn assert_the_decider_decided_the_log(setup: &Setup, fingerprints: &str, produced: usize, repeats: Repeats) {
    // Decisions per input record, each naming where the record came in.
    let inputs: HashSet<(i32, i64)> = setup
        .read_all(&setup.input)
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    assert_eq!(inputs.len(), produced);
    let header = |r: &Record, key: &str| String::from_utf8_lossy(&r.headers[key]).into_owned();
    let mut at_position: HashMap<(i32, i64), Vec<serde_json::Value>> = HashMap::new();
    for record in &setup.read_all(&setup.decisions) {
        assert_eq!(header(record, "syndic.source.topic"), setup.input);
        at_position
            .entry(source_position(&record.headers))
            .or_default()
            .push(serde_json::from_slice(&record.payload).expect("decision is JSON"));
    }
    assert_eq!(at_position.len(), inputs.len(), "every input record has a decision");
    if repeats == Repeats::None {
        assert!(
            at_position.values().all(|d| d.len() == 1),
            "no record decided twice in a clean run"
        );
    }
    assert_eq!(setup.committed(), setup.end_offsets(&setup.input));

    // The decider's decisions are the engine's over the fingerprint topic's order.
    let log = read_partition_zero(fingerprints);
    let logged: HashSet<(i32, i64)> = log.iter().map(|(_, position)| *position).collect();
    if repeats == Repeats::None {
        assert_eq!(
            logged.len(),
            log.len(),
            "one fingerprint record per input record at most"
        );
    }
    for (position, decisions) in &at_position {
        if !logged.contains(position) {
            assert!(
                decisions.iter().all(|d| d["verdict"] == "invalid"),
                "a record the prepare role decided: {position:?}"
            );
        }
    }
    let mut duplicates = 0;
    let mut expected_events: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    for ((_, position), outcome) in log.iter().zip(engine_over_log(&log)) {
        if let Some(event) = &outcome.event {
            let mut json = Vec::new();
            event.write_json(&mut json).expect("an event");
            expected_events.entry(event.story_id.clone()).or_default().push(json);
        }
        let expected = outcome.decision;
        for decision in &at_position[position] {
            assert_eq!(decision["article_id"].as_str(), expected.article_id.as_deref());
            assert_eq!(
                decision["verdict"].as_str(),
                Some(expected.verdict.as_str()),
                "{position:?}"
            );
            assert_eq!(
                decision["story_id"].as_str(),
                expected.story_id.as_deref(),
                "{position:?}"
            );
        }
        duplicates += usize::from(at_position[position][0]["verdict"] == "duplicate");
    }
    assert!(duplicates > 300, "the generated copies were found: {duplicates}");

    // Each story's events are the engine's over the log, byte for byte, in order: versions from
    // 1 without a gap, a story continued across a restart or a failover under its id with the
    // next version. A record decided twice publishes the same bytes again.
    let mut published: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    for record in setup.read_all(&setup.stories) {
        let story = record.key.clone().expect("story events are keyed by story id");
        published.entry(story).or_default().push(record.payload);
    }
    assert_eq!(
        published.len(),
        expected_events.len(),
        "every story the engine made was published"
    );
    for (story, events) in &published {
        let expected = &expected_events[story];
        let mut versions = HashSet::new();
        for event in events {
            let value: serde_json::Value = serde_json::from_slice(event).expect("event is JSON");
            let version = value["version"].as_u64().expect("a version") as usize;
            assert!(
                version >= 1 && expected.get(version - 1) == Some(event),
                "story {story} version {version}: {}",
                String::from_utf8_lossy(event)
            );
            versions.insert(version);
        }
        assert_eq!(versions.len(), expected.len(), "story {story}: a version is missing");
        if repeats == Repeats::None {
            assert!(
                events == expected,
                "story {story}: its events were published once each, in order"
            );
        }
    }

    // Dead letters: one per invalid record; the decider's (articles with no words left) carry
    // the article as received, not its fingerprint record.
    let invalid: HashSet<&(i32, i64)> = at_position
        .iter()
        .filter(|(_, d)| d[0]["verdict"] == "invalid")
        .map(|(position, _)| position)
        .collect();
    let dead = setup.read_all(&setup.dlq);
    let dead_at: HashSet<(i32, i64)> = dead.iter().map(|r| source_position(&r.headers)).collect();
    assert_eq!(dead_at.len(), invalid.len());
    if repeats == Repeats::None {
        assert_eq!(dead.len(), invalid.len());
    }
    for record in &dead {
        let position = source_position(&record.headers);
        assert!(invalid.contains(&position), "{position:?}");
        if logged.contains(&position) {
            let article: serde_json::Value = serde_json::from_slice(&record.payload).expect("the article as received");
            assert!(article["id"].is_string(), "{position:?}");
        }
    }
}

/// A decider stopped and started again restores its view from the fingerprint topic: the
/// copies that arrive after the restart join the stories of originals decided before it, as if
/// it had never stopped.
#[test]
fn a_restarted_decider_restores_its_view_from_the_fingerprint_topic() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::new("restore", 3);
    let fingerprints = setup.fingerprints.clone();
    let records: Vec<InputRecord> = Generator::new(43).take(3000).map(|r| (None, r.line)).collect();
    let env = |role: &'static str| [("SYNDIC_KAFKA_ROLE", role)];
    let (before, after) = records.split_at(1500);
    for (round, half) in [before, after].into_iter().enumerate() {
        setup.produce(half);
        let mut prepare = setup.spawn_worker(&format!("prepare-{round}"), 5, &env("prepare"));
        let mut decide = setup.spawn_worker(&format!("decide-{round}"), 5, &env("decide"));
        wait_success(&mut prepare, Duration::from_secs(180), "prepare worker");
        wait_success(&mut decide, Duration::from_secs(180), "decider");
    }
    assert_the_decider_decided_the_log(&setup, &fingerprints, records.len(), Repeats::None);
    // That check covered what a restart must keep: stories founded before it that copies
    // after it joined, whose events (compared byte for byte there) continue their versions.
    let mut founded_before = HashSet::new();
    let mut continued = 0;
    for (i, outcome) in engine_over_log(&read_partition_zero(&fingerprints))
        .into_iter()
        .enumerate()
    {
        if let Some(event) = outcome.event {
            if i < before.len() {
                founded_before.insert(event.story_id);
            } else {
                continued += usize::from(founded_before.contains(&event.story_id));
            }
        }
    }
    assert!(
        continued > 20,
        "copies after the restart joined stories from before it: {continued}"
    );
    // The fingerprint topic keeps records for the broker's default week, under the decider's
    // 7-day window by nothing: no advice. Shortened, the decider says what to set.
    let log = std::env::temp_dir().join("syndic-restore-decide-1.log");
    let text = std::fs::read_to_string(&log).expect("decider log");
    assert!(!text.contains("retention"), "{text}");
}

/// A fingerprint topic that keeps too little for a restore gets advice naming the setting and
/// the value; a compacted one, which refuses keyless records, stops the worker with the fix.
#[test]
fn the_fingerprint_topic_settings_are_checked_at_start() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::new("retention", 1);
    let fingerprints = setup.fingerprints.clone();
    let alter = |key: &str, value: &str| {
        runtime().block_on(async {
            let admin = admin();
            let config = AlterConfig::new(ResourceSpecifier::Topic(&fingerprints)).set(key, value);
            for result in admin
                .alter_configs([&config], &AdminOptions::new())
                .await
                .expect("alter configs")
            {
                result.expect("topic config altered");
            }
        })
    };
    alter("retention.bytes", "1000000");
    let env = [("SYNDIC_KAFKA_ROLE", "decide")];
    let mut decider = setup.spawn_worker("short", 2, &env);
    wait_success(&mut decider, Duration::from_secs(60), "decider");
    let text = std::fs::read_to_string(std::env::temp_dir().join("syndic-retention-short.log")).expect("decider log");
    assert!(
        text.contains("set retention.bytes to -1 or at least 4200000000"),
        "{text}"
    );

    alter("cleanup.policy", "compact");
    let mut decider = setup.spawn_worker("compacted", 2, &env);
    let status = decider.wait().expect("decider exits");
    assert!(!status.success(), "a compacted fingerprint topic must stop the worker");
    let text =
        std::fs::read_to_string(std::env::temp_dir().join("syndic-retention-compacted.log")).expect("decider log");
    assert!(text.contains("set cleanup.policy=delete"), "{text}");

    // A fingerprint topic that does not exist stops the worker with what to do.
    let missing = [("SYNDIC_KAFKA_FINGERPRINTS_TOPIC", "no-such-fingerprints")];
    let mut worker = setup.spawn_worker("missing", 2, &missing);
    let status = worker.wait().expect("worker exits");
    assert!(!status.success(), "a missing fingerprint topic must stop the worker");
    let text = log_of(&setup, "missing");
    assert!(
        text.contains("no-such-fingerprints does not exist: create it"),
        "{text}"
    );
}

/// The share of the generated copies' pairs (articles of one labelled cluster) that the
/// decisions put in one story.
fn copy_pairs_found(generated: &[syndic::tools::corpus::Record], story_of: &HashMap<String, String>) -> f64 {
    let mut by_cluster: HashMap<&str, HashMap<&str, usize>> = HashMap::new();
    for record in generated {
        if let (Some(cluster), Some(story)) = (&record.cluster, story_of.get(&record.id)) {
            *by_cluster
                .entry(cluster.as_str())
                .or_default()
                .entry(story.as_str())
                .or_default() += 1;
        }
    }
    let pairs = |n: usize| (n * n.saturating_sub(1) / 2) as f64;
    let (mut found, mut all) = (0.0, 0.0);
    for stories in by_cluster.values() {
        all += pairs(stories.values().sum());
        found += stories.values().map(|&n| pairs(n)).sum::<f64>();
    }
    found / all.max(1.0)
}

/// Three workers in the default role, over an input of 6 partitions produced without keys,
/// share one dedup view: every record is decided once, as the engine decides the fingerprint
/// topic's order, and the copies found are as many as one process finds over the input's own
/// order. (Each worker with a view of its own found a third of them.)
#[test]
fn three_workers_in_the_default_role_share_one_dedup_view() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::new("three", 6);
    let generated: Vec<_> = Generator::new(71).take(20_000).collect();
    let records: Vec<InputRecord> = generated.iter().map(|r| (None, r.line.clone())).collect();
    setup.produce(&records);
    let mut workers: Vec<Worker> = (1..=3).map(|i| setup.spawn_worker(&format!("w{i}"), 8, &[])).collect();
    for worker in &mut workers {
        wait_success(worker, Duration::from_secs(300), "worker");
    }
    // The first worker to join decides alone until the others' join moves the fingerprint
    // partition (seen: 3 s in, 15,871 records decided): the records after its last commit are
    // decided again by the next decider, at least once, and must carry the same content.
    assert_the_decider_decided_the_log(&setup, &setup.fingerprints, records.len(), Repeats::SameContent);

    let story_of: HashMap<String, String> = setup
        .decisions()
        .iter()
        .filter_map(|d| {
            Some((
                d["article_id"].as_str()?.to_string(),
                d["story_id"].as_str()?.to_string(),
            ))
        })
        .collect();
    let mut engine = CoreConfig::default().engine().expect("engine");
    let now = chrono::Utc::now();
    let one_process: HashMap<String, String> = records
        .iter()
        .filter_map(|(_, payload)| {
            let decision = engine.process(payload, now).decision;
            Some((decision.article_id?, decision.story_id?))
        })
        .collect();
    let (three, one) = (
        copy_pairs_found(&generated, &story_of),
        copy_pairs_found(&generated, &one_process),
    );
    eprintln!("copy pairs found: three workers {three:.3}, one process {one:.3}");
    assert!(
        three >= one - 0.01,
        "three workers found {three:.3} of the copy pairs, one process {one:.3}"
    );
}

/// A worker's log as text, without the terminal's colour codes.
fn log_of(setup: &Setup, label: &str) -> String {
    let path = std::env::temp_dir().join(format!("syndic-{}-{label}.log", setup.name));
    let raw = std::fs::read_to_string(path).unwrap_or_default();
    let mut text = String::with_capacity(raw.len());
    let mut rest = raw.as_str();
    while let Some(start) = rest.find('\u{1b}') {
        text.push_str(&rest[..start]);
        rest = rest[start..].find('m').map_or("", |end| &rest[start + end + 1..]);
    }
    text.push_str(rest);
    text
}

/// When the last line of `log` that contains `what` was written.
fn logged_at(log: &str, what: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let line = log.lines().rev().find(|l| l.contains(what))?;
    let stamp = line.split_whitespace().next()?;
    Some(chrono::DateTime::parse_from_rfc3339(stamp).ok()?.to_utc())
}

/// The decider whose log says it decides now (its last role line is "deciding").
fn deciding(setup: &Setup, labels: [&'static str; 2]) -> Option<&'static str> {
    labels.into_iter().find(|label| {
        let log = log_of(setup, label);
        let last = |what: &str| log.rfind(what);
        last("deciding:").is_some_and(|d| last("standing by").is_none_or(|s| s < d))
    })
}

/// kill -9 of the active decider, then of a prepare worker, mid-stream: the standby decider
/// takes over the fingerprint topic from the group's committed offset with its view kept warm,
/// the other prepare worker takes the input's partitions over, nothing is lost, and every
/// record decided twice carries the same decision both times, the engine's over the
/// fingerprint topic's order.
#[test]
fn killing_the_active_decider_and_a_prepare_worker_loses_nothing_and_changes_no_decision() {
    failover("failover", false);
}

/// [`killing_the_active_decider_and_a_prepare_worker_loses_nothing_and_changes_no_decision`]
/// with `kafka.exactly_once`: a `read_committed` reader sees every record decided exactly once.
#[test]
fn exactly_once_killing_the_active_decider_and_a_prepare_worker_decides_each_record_once() {
    failover("failover-eos", true);
}

/// kill -9 of the active decider, then of a prepare worker, while the input keeps arriving;
/// with `exactly_once`, nothing may be decided twice.
fn failover(name: &str, exactly_once: bool) {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::new(name, 3);
    let eos = if exactly_once { "true" } else { "false" };
    let records = keyless_with_invalid(40_000, 73);
    // The input keeps arriving during both kills: 5,000 records at once, then 1,000 a
    // second.
    let (first, rest) = records.split_at(5_000);
    setup.produce(first);
    let prepare = [
        ("SYNDIC_KAFKA_ROLE", "prepare"),
        ("SYNDIC_KAFKA_MAX_IN_FLIGHT", "2000"),
        ("SYNDIC_KAFKA_EXACTLY_ONCE", eos),
    ];
    let decide = [
        ("SYNDIC_KAFKA_ROLE", "decide"),
        ("SYNDIC_KAFKA_MAX_IN_FLIGHT", "2000"),
        ("SYNDIC_KAFKA_EXACTLY_ONCE", eos),
    ];
    let mut prepare_a = setup.spawn_worker("prepare-a", 20, &prepare);
    let mut prepare_b = setup.spawn_worker("prepare-b", 20, &prepare);
    let mut deciders = HashMap::from([
        ("decide-a", setup.spawn_worker("decide-a", 20, &decide)),
        ("decide-b", setup.spawn_worker("decide-b", 20, &decide)),
    ]);
    let (standby, killed_at, took_over) = std::thread::scope(|scope| {
        // Slow enough that the input is still arriving after the failover (about 11 s) when
        // the prepare worker is killed.
        scope.spawn(|| setup.trickle(rest, Duration::from_secs(1)));

        wait_until(
            "8,000 records decided, and one decider stands by",
            Duration::from_secs(180),
            || {
                setup.decisions_count() >= 8_000
                    && ["decide-a", "decide-b"]
                        .iter()
                        .any(|label| log_of(&setup, label).contains("standing by"))
                    && deciding(&setup, ["decide-a", "decide-b"]).is_some()
            },
        );
        let active = deciding(&setup, ["decide-a", "decide-b"]).expect("one decider says it decides");
        let standby = if active == "decide-a" { "decide-b" } else { "decide-a" };
        let mut killed = deciders.remove(active).expect("the active decider");
        killed.kill().expect("kill -9 the active decider");
        let killed_at = chrono::Utc::now();
        killed.wait().expect("reaped");
        assert!(
            setup.decider_committed() < records.len() as i64,
            "the decider's kill must come mid-stream"
        );
        wait_until("the standby took over", Duration::from_secs(120), || {
            logged_at(&log_of(&setup, standby), "deciding:").is_some_and(|at| at > killed_at)
        });
        let took_over = logged_at(&log_of(&setup, standby), "deciding:").unwrap_or(killed_at);

        wait_until("20,000 records decided", Duration::from_secs(180), || {
            setup.decisions_count() >= 20_000
        });
        prepare_a.kill().expect("kill -9 a prepare worker");
        prepare_a.wait().expect("reaped");
        assert!(
            setup.committed().iter().sum::<i64>() < records.len() as i64,
            "the prepare worker's kill must come mid-stream"
        );
        let mut standby_worker = deciders.remove(standby).expect("the standby");
        wait_success(&mut prepare_b, Duration::from_secs(300), "the prepare worker left");
        wait_success(
            &mut standby_worker,
            Duration::from_secs(300),
            "the decider that took over",
        );
        (standby, killed_at, took_over)
    });

    let repeats = if exactly_once {
        Repeats::None
    } else {
        Repeats::SameContent
    };
    assert_the_decider_decided_the_log(&setup, &setup.fingerprints, records.len(), repeats);
    let log = log_of(&setup, standby);
    assert!(log.contains("standing by"), "the standby stood by first");
    let line = log
        .lines()
        .find(|l| l.contains("deciding:") && logged_at(l, "deciding:").is_some_and(|at| at > killed_at))
        .unwrap_or_default();
    eprintln!(
        "failover: the standby decided {:.1} s after the kill: {line}",
        (took_over - killed_at).as_seconds_f64()
    );
}

/// With `kafka.exactly_once`, prepare workers write in transactions: one killed mid-stream
/// leaves aborted outputs that `read_committed` readers never see, so every input record has
/// exactly one fingerprint record (or, invalid, one decision and one dead letter) and one
/// decision, though the input records after its last commit were prepared twice.
#[test]
fn exactly_once_a_prepare_worker_killed_mid_stream_writes_nothing_twice() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::new("eos", 3);
    let records = keyless_with_invalid(30_000, 79);
    let (first, rest) = records.split_at(5_000);
    setup.produce(first);
    let prepare = [
        ("SYNDIC_KAFKA_ROLE", "prepare"),
        ("SYNDIC_KAFKA_EXACTLY_ONCE", "true"),
        ("SYNDIC_KAFKA_MAX_IN_FLIGHT", "2000"),
    ];
    let mut prepare_a = setup.spawn_worker("prepare-a", 20, &prepare);
    let mut prepare_b = setup.spawn_worker("prepare-b", 20, &prepare);
    let mut decider = setup.spawn_worker("decide", 20, &[("SYNDIC_KAFKA_ROLE", "decide")]);
    std::thread::scope(|scope| {
        scope.spawn(|| setup.trickle(rest, Duration::from_millis(300)));
        wait_until("8,000 records decided", Duration::from_secs(180), || {
            setup.decisions_count() >= 8_000
        });
        prepare_a.kill().expect("kill -9 a prepare worker");
        prepare_a.wait().expect("reaped");
    });
    assert!(
        setup.committed().iter().sum::<i64>() < records.len() as i64,
        "the kill must come mid-stream"
    );
    wait_success(&mut prepare_b, Duration::from_secs(300), "the prepare worker left");
    wait_success(&mut decider, Duration::from_secs(300), "the decider");
    assert_the_decider_decided_the_log(&setup, &setup.fingerprints, records.len(), Repeats::None);
}

#[test]
fn input_in_every_compression_codec_is_decided_and_outputs_can_be_zstd() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::new("codecs", 2);
    let records = generated(1_000, 61);
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    for (chunk, codec) in records.chunks(200).zip(codecs) {
        setup.produce_compressed(chunk, codec);
    }
    let config = "[kafka.producer]\n\"compression.type\" = \"zstd\"\n";
    let mut worker = setup.spawn_worker_with_config("a", 4, &[], Some(config));
    wait_success(&mut worker, Duration::from_secs(120), "worker");
    let ids: HashSet<String> = records.iter().filter_map(|(k, _)| k.clone()).collect();
    let decisions = assert_all_accounted_for(&setup, &ids);
    assert_eq!(
        decisions.len(),
        records.len(),
        "one decision per record, whatever its codec"
    );
}

/// The CA the development broker's TLS listeners present (scripts/kafka).
fn test_ca() -> String {
    std::env::var("SYNDIC_TEST_CA").unwrap_or_else(|_| {
        let cache = std::env::var("SYNDIC_CACHE").unwrap_or_else(|_| format!("{}/.cache", env!("CARGO_MANIFEST_DIR")));
        format!("{cache}/kafka/run-9092/tls/ca.pem")
    })
}

fn secure_listener(variable: &str, port: u16) -> String {
    std::env::var(variable).unwrap_or_else(|_| format!("127.0.0.1:{port}"))
}

#[test]
fn the_worker_runs_over_tls_and_sasl_scram_and_stops_at_once_on_a_wrong_password() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::new("secure", 2);
    let (tls, sasl) = (
        secure_listener("SYNDIC_TEST_SSL_BROKERS", 9094),
        secure_listener("SYNDIC_TEST_SASL_BROKERS", 9095),
    );
    let ca = test_ca();
    assert!(
        std::path::Path::new(&ca).exists(),
        "no test CA at {ca}: start the broker with scripts/kafka start"
    );

    // TLS only.
    let first = generated(300, 71);
    setup.produce(&first);
    let config = format!("[kafka.client]\n\"security.protocol\" = \"SSL\"\n\"ssl.ca.location\" = \"{ca}\"\n");
    let mut worker = setup.spawn_worker_with_config("tls", 4, &[("SYNDIC_KAFKA_BROKERS", tls.as_str())], Some(&config));
    wait_success(&mut worker, Duration::from_secs(120), "worker over TLS");
    let mut ids: HashSet<String> = first.iter().filter_map(|(k, _)| k.clone()).collect();
    assert_all_accounted_for(&setup, &ids);

    // SASL/SCRAM over TLS, the password from the environment.
    let second = generated(300, 72);
    setup.produce(&second);
    let sasl_config = |password_variable: &str| {
        format!(
            "[kafka.client]\n\"security.protocol\" = \"SASL_SSL\"\n\"ssl.ca.location\" = \"{ca}\"\n\
             \"sasl.mechanism\" = \"SCRAM-SHA-256\"\n\"sasl.username\" = \"syndic\"\n\
             \"sasl.password\" = \"${{env:{password_variable}}}\"\n"
        )
    };
    let env = [
        ("SYNDIC_KAFKA_BROKERS", sasl.as_str()),
        ("TEST_KAFKA_PASSWORD", "syndic-secret"),
    ];
    let mut worker = setup.spawn_worker_with_config("sasl", 4, &env, Some(&sasl_config("TEST_KAFKA_PASSWORD")));
    wait_success(&mut worker, Duration::from_secs(120), "worker over SASL_SSL");
    ids.extend(second.iter().filter_map(|(k, _)| k.clone()));
    assert_all_accounted_for(&setup, &ids);
    assert!(
        !log_of(&setup, "sasl").contains("syndic-secret"),
        "the password must never be logged"
    );

    // A wrong password: a clear error and a non-zero exit within seconds, not a silent retry.
    let env = [
        ("SYNDIC_KAFKA_BROKERS", sasl.as_str()),
        ("TEST_KAFKA_PASSWORD", "wrong"),
    ];
    let mut worker = setup.spawn_worker_with_config("wrong", 4, &env, Some(&sasl_config("TEST_KAFKA_PASSWORD")));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = worker.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "a worker with a wrong password still runs after 30 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!status.success(), "a refused worker must exit non-zero");
    let log = log_of(&setup, "wrong");
    assert!(
        log.contains("the cluster refused this worker") && log.contains("sasl.password"),
        "the error says what was refused and what to check: {log}"
    );
}

/// The status code and body of a GET on the worker's endpoints, if it answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    Some((status, body.to_string()))
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    http_get(port, path).map(|(status, _)| status)
}

fn http_body(port: u16, path: &str) -> Option<String> {
    http_get(port, path).map(|(_, body)| body)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// An alert on lag must have a series to read from the first minute of a new deployment.
#[test]
fn lag_is_exported_from_assignment_on_and_is_zero_on_an_empty_partition() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::new("lag", 2);
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let env = [
        ("SYNDIC_KAFKA_ROLE", "standalone"),
        ("SYNDIC_HTTP_ADDRESS", address.as_str()),
    ];
    let mut worker = setup.spawn_worker("a", 60, &env);
    let series = |partition: i32| {
        format!(
            "syndic_consumer_lag{{partition=\"{partition}\",topic=\"{}\"}} 0",
            setup.input
        )
    };
    wait_until("a lag of 0 on both empty partitions", Duration::from_secs(45), || {
        http_body(port, "/metrics").is_some_and(|m| m.contains(&series(0)) && m.contains(&series(1)))
    });
    terminate(&worker);
    wait_success(&mut worker, Duration::from_secs(30), "worker");
}

#[test]
fn a_worker_that_cannot_read_its_input_is_not_ready_and_never_exits_as_if_idle() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let setup = Setup::new("unreadable", 1);
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let missing = format!("{}-missing", setup.input);
    let env = [
        ("SYNDIC_KAFKA_INPUT_TOPIC", missing.as_str()),
        ("SYNDIC_KAFKA_ROLE", "standalone"),
        ("SYNDIC_HTTP_ADDRESS", address.as_str()),
    ];
    let mut worker = setup.spawn_worker("a", 3, &env);
    let mut saw_not_ready = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = worker.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "a worker whose input topic is missing still runs after 60 s"
        );
        assert_ne!(
            http_status(port, "/readyz"),
            Some(200),
            "a worker that cannot read its input is not ready"
        );
        saw_not_ready |= http_status(port, "/readyz") == Some(503);
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(saw_not_ready, "/readyz never answered 503");
    assert!(
        !status.success(),
        "an unreadable input must not end the worker as an idle one did"
    );
    let log = log_of(&setup, "a");
    assert!(
        log.contains("could not be read") && log.contains("UnknownTopicOrPartition"),
        "the error names what failed: {log}"
    );
}

/// Produces `records` keyless to `topic`, record `i` with the timestamp `timestamp(i)`.
fn produce_timed(topic: &str, records: &[InputRecord], timestamp: impl Fn(usize) -> i64) {
    runtime().block_on(async {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers())
            .set("linger.ms", "20")
            .create()
            .expect("producer");
        // `send_result` enqueues at once (`send` would wait for each delivery in turn).
        let deliveries: Vec<_> = records
            .iter()
            .enumerate()
            .map(|(i, (_, payload))| {
                let record = FutureRecord::<(), _>::to(topic)
                    .payload(&payload[..])
                    .timestamp(timestamp(i));
                producer.send_result(record).map_err(|(e, _)| e).expect("enqueued")
            })
            .collect();
        for delivery in deliveries {
            delivery.await.expect("not canceled").expect("input record delivered");
        }
    });
}

#[test]
fn replays_of_the_same_records_in_one_partition_or_three_write_the_same_decisions_and_stories() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let records = keyless_with_invalid(3_000, 73);
    // Ten records share each millisecond, so the merge's tie-break is exercised.
    let base = chrono::Utc::now().timestamp_millis() - 3_600_000;
    let mut outputs = Vec::new();
    for partitions in [1, 3] {
        let setup = Setup::new(&format!("replay-parts-{partitions}"), partitions);
        produce_timed(&setup.input, &records, |i| base + (i / 10) as i64);
        let dir = std::env::temp_dir().join(format!("syndic-replay-parts-{}", setup.input));
        let mut run = replay(&setup, "parts", &["--output-dir", dir.to_str().expect("path")]);
        wait_success(&mut run, Duration::from_secs(120), "replay");
        let files = replay_files(&dir);
        // Decisions name their record's place (topic, partition, offset), which differs
        // between the two topics; the rest must be the same.
        let decisions: Vec<serde_json::Value> = String::from_utf8_lossy(&files[0])
            .lines()
            .map(|line| {
                let mut decision: serde_json::Value = serde_json::from_str(line).expect("a decision is JSON");
                let place = decision.as_object_mut().and_then(|d| d.remove("position"));
                assert!(place.is_some_and(|p| p["topic"] == setup.input.as_str()), "{line}");
                decision
            })
            .collect();
        outputs.push((decisions, files[1].clone()));
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(!outputs[0].0.is_empty());
    assert!(
        outputs[0] == outputs[1],
        "a topic of 1 partition and one of 3 holding the same records replay to the same decisions and story events"
    );
}
