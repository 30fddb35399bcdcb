//! End-to-end throughput and latency through a real Kafka broker: syndic against a passthrough
//! baseline that consumes and produces the same records with the same clients and offset
//! handling but no processing. Run it with `scripts/bench-e2e` (which starts the broker).
//!
//! Sides, in one run: `passthrough`; `standalone` (one process, its own view); `replay` (a
//! backfill of the whole input into `.replay` topics, `syndic replay`); `both` (the
//! default role: prepare and decide through the fingerprint topic) with 1, 2 and 3 replicas,
//! each replica a worker of its own in this process. CPU seconds are this process's (user and
//! system) while the workers ran, per record: the broker's are not in them.
//!
//! * Throughput: N generated ~3 KB articles are produced first; the worker then drains them.
//!   Rate = outputs / (last output append time - first output append time).
//! * Latency: the worker runs while M articles are produced at a steady rate below capacity;
//!   latency = broker append time of the decision (acks=all, so about when it was
//!   acknowledged) - create time of the input record.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::arg;
use syndic::config::CoreConfig;
use syndic::tools::corpus::Generator;
use syndic::worker::config::Role;
use syndic::worker::run::{self, Mode};

mod support;

const PARTITIONS: i32 = 3;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn create_topics(brokers: &str, topics: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| {
            NewTopic::new(t, PARTITIONS, TopicReplication::Fixed(1)).set("message.timestamp.type", "LogAppendTime")
        })
        .collect();
    for r in admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .expect("broker reachable: scripts/kafka start")
    {
        r.expect("topic created");
    }
}

/// Produces `n` generated records, `rate` per second (0 = as fast as possible).
async fn produce(brokers: &str, topic: &str, n: usize, rate: u64) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .create()
        .expect("producer");
    let started = Instant::now();
    let mut pending = Vec::with_capacity(10_000);
    for (i, record) in Generator::new(77).take(n).enumerate() {
        if rate > 0 {
            let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
        }
        let mut out = FutureRecord::to(topic)
            .key(&record.id)
            .payload(&record.line)
            .timestamp(now_ms());
        loop {
            match producer.send_result(out) {
                Ok(delivery) => break pending.push(delivery),
                Err((_, back)) => {
                    out = back;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
        if pending.len() == 10_000 {
            for d in pending.drain(..) {
                d.await.expect("not canceled").expect("delivered");
            }
        }
    }
    for d in pending {
        d.await.expect("not canceled").expect("delivered");
    }
}

/// (key, timestamp) of every record of a topic.
fn read_timestamps(brokers: &str, topic: &str) -> Vec<(String, i64)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "syndic-bench-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let ends: Vec<i64> = (0..PARTITIONS)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(20))
                .expect("watermarks")
                .1
        })
        .collect();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut next = vec![0i64; PARTITIONS as usize];
    let mut out = Vec::new();
    while next.iter().zip(&ends).any(|(n, e)| n < e) {
        let Some(m) = consumer.poll(Duration::from_millis(500)) else {
            // Transaction markers are never returned: the position passes them.
            if let Ok(positions) = consumer.position() {
                for e in positions.elements() {
                    if let (Offset::Offset(o), Some(n)) = (e.offset(), next.get_mut(e.partition() as usize)) {
                        *n = (*n).max(o);
                    }
                }
            }
            continue;
        };
        let m = m.expect("message");
        next[m.partition() as usize] = m.offset() + 1;
        let key = m
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default();
        out.push((key, m.timestamp().to_millis().unwrap_or(0)));
    }
    out
}

fn config(brokers: &str, tag: &str) -> CoreConfig {
    let mut config = CoreConfig::default();
    config.kafka.brokers = brokers.to_string();
    config.kafka.group_id = format!("bench-{tag}");
    config.kafka.input_topic = format!("bench-in-{tag}");
    config.kafka.decisions_topic = format!("bench-decisions-{tag}");
    config.kafka.stories_topic = format!("bench-stories-{tag}");
    config.kafka.dlq_topic = format!("bench-dlq-{tag}");
    config.kafka.fingerprints_topic = format!("bench-fingerprints-{tag}");
    config.kafka.stop_after_idle_secs = 5;
    config.kafka.prepare_threads = arg("--prepare-threads", 0) as usize;
    // `--exactly-once`: the prepare role writes in transactions (kafka.exactly_once).
    config.kafka.exactly_once = std::env::args().any(|a| a == "--exactly-once");
    // `--consumer KEY=VALUE` and `--producer KEY=VALUE` (repeatable) pass librdkafka properties
    // to both sides, e.g. `--consumer fetch.queue.backoff.ms=1000` to see librdkafka's default.
    let args: Vec<String> = std::env::args().collect();
    // `--store memory|disk`: where open stories keep their canonical records (store.canonical_records).
    if let Some(store) = args.windows(2).find(|p| p[0] == "--store").map(|p| p[1].clone()) {
        config.store.canonical_records = store;
    }
    for pair in args.windows(2) {
        let table = match pair[0].as_str() {
            "--consumer" => &mut config.kafka.consumer,
            "--producer" => &mut config.kafka.producer,
            _ => continue,
        };
        match pair[1].split_once('=') {
            Some((key, value)) => {
                table.insert(key.to_string(), value.to_string());
            }
            None => panic!("{} takes KEY=VALUE, got {:?}", pair[0], pair[1]),
        }
    }
    config
}

async fn topics_for(config: &CoreConfig) {
    let k = &config.kafka;
    create_topics(
        &k.brokers,
        &[&k.input_topic, &k.decisions_topic, &k.stories_topic, &k.dlq_topic],
    )
    .await;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &k.brokers)
        .create()
        .expect("admin client");
    // The one ordered log of the default role: one partition.
    let log = NewTopic::new(&k.fingerprints_topic, 1, TopicReplication::Fixed(1));
    for r in admin
        .create_topics([&log], &AdminOptions::new())
        .await
        .expect("broker reachable")
    {
        r.expect("fingerprint topic created");
    }
}

/// CPU seconds (user and system) this process has used (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and
    // 13th, in clock ticks (100 per second on Linux).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs `replicas` workers of one side side by side until all stop; returns the input records
/// they consumed.
async fn run_side(config: &CoreConfig, mode: Mode, replicas: usize) -> u64 {
    let workers: Vec<_> = (0..replicas)
        .map(|_| {
            let (trigger, shutdown) = syndic::worker::shutdown::channel();
            let worker = tokio::spawn(run::run_in_mode(config.clone(), shutdown, mode, telemetry()));
            (trigger, worker)
        })
        .collect();
    let mut consumed = 0;
    for (_trigger, worker) in workers {
        consumed += worker.await.expect("joined").expect("worker ran").consumed;
    }
    consumed
}

const REPLAY_SUFFIX: &str = ".replay";

/// `syndic replay` of the whole input into topics of its own; returns the records replayed.
async fn replay_side(config: &CoreConfig) -> u64 {
    use syndic::worker::replay::{Bound, ReplayInput, ReplayOptions, Sink};
    let options = ReplayOptions {
        input: ReplayInput::Topic {
            from: Bound::Earliest,
            to: Bound::Latest,
        },
        sink: Sink::Topics {
            suffix: REPLAY_SUFFIX.to_string(),
        },
        ingest_time: None,
        checkpoint: std::env::temp_dir().join(format!("syndic-bench-replay-{}.json", now_ms())),
        checkpoint_interval: Duration::from_secs(1),
        progress_bar: false,
        threads: std::thread::available_parallelism().map_or(1, usize::from),
    };
    let (_trigger, shutdown) = syndic::worker::shutdown::channel();
    let summary = syndic::worker::replay::replay(config.clone(), options, shutdown, telemetry())
        .await
        .expect("replay ran");
    summary.written
}

/// Deletes the topics of a finished phase: each run writes gigabytes to new topics, and a few
/// runs without this fill the disk under the broker.
async fn delete_topics_of(config: &CoreConfig) {
    let k = &config.kafka;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &k.brokers)
        .create()
        .expect("admin client");
    let replayed = [&k.decisions_topic, &k.stories_topic, &k.dlq_topic].map(|t| format!("{t}{REPLAY_SUFFIX}"));
    let topics = [
        &*k.input_topic,
        &*k.decisions_topic,
        &*k.stories_topic,
        &*k.dlq_topic,
        &*k.fingerprints_topic,
        &*replayed[0],
        &*replayed[1],
        &*replayed[2],
    ];
    if let Err(e) = admin.delete_topics(&topics, &AdminOptions::new()).await {
        eprintln!("could not delete the benchmark's topics {topics:?}: {e}; `scripts/kafka reset` frees the space");
    }
}

fn telemetry() -> syndic::worker::http::Telemetry {
    syndic::worker::http::Telemetry::new().expect("metrics register")
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let brokers = support::brokers();
    let n = arg("--articles", 1_000_000) as usize;
    let m = arg("--latency-articles", 60_000) as usize;
    let rate = arg("--rate", 4_000);
    let run_id = now_ms();
    println!("end-to-end benchmark: {n} articles for throughput; {m} at {rate}/s for latency; broker {brokers}");
    // `--only NAME` runs one side (passthrough, standalone, both-1, both-2, both-3), for
    // profiling.
    let args: Vec<String> = std::env::args().collect();
    let only = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let sides = [
        ("passthrough", Mode::Passthrough, Role::Standalone, 1),
        ("standalone", Mode::Dedup, Role::Standalone, 1),
        ("replay", Mode::Dedup, Role::Standalone, 1),
        ("both-1", Mode::Dedup, Role::Both, 1),
        ("both-2", Mode::Dedup, Role::Both, 2),
        ("both-3", Mode::Dedup, Role::Both, 3),
    ];
    let mut baseline = None;
    for (name, mode, role, replicas) in sides {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let mut c = config(&brokers, &format!("{name}-tput-{run_id}"));
        c.kafka.role = role;
        topics_for(&c).await;
        let t = Instant::now();
        produce(&brokers, &c.kafka.input_topic, n, 0).await;
        let produce_secs = t.elapsed().as_secs_f64();
        // A mark for profilers (`perf record -a` from here on sees the throughput phase only).
        println!("{name:<12} input produced; draining it");
        let cpu_before = cpu_seconds();
        let (consumed, decisions) = if name == "replay" {
            (
                replay_side(&c).await,
                format!("{}{REPLAY_SUFFIX}", c.kafka.decisions_topic),
            )
        } else {
            (run_side(&c, mode, replicas).await, c.kafka.decisions_topic.clone())
        };
        let cpu = cpu_seconds() - cpu_before;
        let outputs = read_timestamps(&brokers, &decisions);
        let first = outputs.iter().map(|o| o.1).min().unwrap_or(0);
        let last = outputs.iter().map(|o| o.1).max().unwrap_or(0);
        let throughput = outputs.len() as f64 / ((last - first).max(1) as f64 / 1000.0);
        let ratio = match (name, baseline) {
            ("standalone", _) => {
                baseline = Some(throughput);
                String::new()
            }
            (_, Some(b)) if mode == Mode::Dedup => format!("  {:.2} x standalone", throughput / b),
            _ => String::new(),
        };
        println!(
            "{name:<12} throughput {throughput:>9.0} records/s{ratio}  ({} outputs in {:.1} s; {:.1} CPU µs/record in the workers; input produced at {:.0}/s; consumed {consumed})",
            outputs.len(),
            (last - first) as f64 / 1000.0,
            cpu * 1e6 / outputs.len().max(1) as f64,
            n as f64 / produce_secs,
        );
        if name == "both-1" {
            // What a decider started again does first: restore its view from the fingerprint
            // topic (the last index.capacity records before its group's committed offset).
            let mut decide = c.kafka.clone();
            decide.input_topic = decide.fingerprints_topic.clone();
            decide.group_id = format!("{}.decide", decide.group_id);
            let mut engine = c.engine().expect("engine");
            let cpu_before = cpu_seconds();
            let (_, restored) = syndic::worker::standby::Follower::restore(
                &mut engine,
                &decide,
                &telemetry().health,
                c.index.capacity,
                true,
            )
            .await
            .expect("restored");
            println!(
                "{name:<12} restore of a decider: {} fingerprint records in {:.1} s ({:.0}/s; {:.1} CPU s), {} indexed",
                restored.records,
                restored.took.as_secs_f64(),
                restored.records as f64 / restored.took.as_secs_f64().max(1e-9),
                cpu_seconds() - cpu_before,
                engine.index().len()
            );
        }
        delete_topics_of(&c).await;

        if m == 0 || replicas > 1 || name == "replay" {
            continue;
        }
        let mut c = config(&brokers, &format!("{name}-lat-{run_id}"));
        c.kafka.role = role;
        // Idle time counts from joining the group, which comes before the first record here.
        c.kafka.stop_after_idle_secs = 15;
        topics_for(&c).await;
        let (_trigger, shutdown) = syndic::worker::shutdown::channel();
        let worker = tokio::spawn(run::run_in_mode(c.clone(), shutdown, mode, telemetry()));
        tokio::time::sleep(Duration::from_secs(4)).await; // join the group first
        produce(&brokers, &c.kafka.input_topic, m, rate).await;
        worker.await.expect("joined").expect("worker ran");
        let inputs: HashMap<String, i64> = read_timestamps(&brokers, &c.kafka.input_topic).into_iter().collect();
        let mut latencies: Vec<i64> = read_timestamps(&brokers, &c.kafka.decisions_topic)
            .into_iter()
            .filter_map(|(key, ts)| inputs.get(&key).map(|t0| ts - t0))
            .collect();
        delete_topics_of(&c).await;
        latencies.sort_unstable();
        println!(
            "{name:<12} latency at {rate}/s: p50 {} ms  p99 {} ms  max {} ms  ({} records)",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.last().copied().unwrap_or(0),
            latencies.len()
        );
    }
}
