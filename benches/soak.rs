//! Soak run through a real Kafka broker: `syndic run` (the default role, as deployed) fed at a
//! fixed rate for N minutes with 1% bad records, through a clean restart, a kill -9 and a
//! broker stop and start. At the end it checks that every input record got a decision, every
//! bad one a dead letter and no good one, that memory stayed flat once the window filled, and
//! lists every warning and error the worker logged. Run it with `scripts/soak`.
//!
//! Arguments: `--minutes M` (30), `--rate R` records/s (200), `--capacity C` (index.capacity,
//! 50,000, so the window fills in minutes), `--outage-secs S` (20).

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{arg, brokers};
use syndic::tools::corpus::Generator;

mod support;

const PARTITIONS: i32 = 3;

/// The topics and group of this run.
struct Names {
    tag: String,
    input: String,
    decisions: String,
    dlq: String,
    group: String,
}

impl Names {
    fn new() -> Self {
        let tag = format!("soak-{}", chrono::Utc::now().timestamp());
        Self {
            input: format!("{tag}-in"),
            decisions: format!("{tag}-decisions"),
            dlq: format!("{tag}-dlq"),
            group: format!("{tag}-group"),
            tag,
        }
    }

    fn env(&self, capacity: u64) -> Vec<(&'static str, String)> {
        vec![
            ("SYNDIC_KAFKA_BROKERS", brokers()),
            ("SYNDIC_KAFKA_GROUP_ID", self.group.clone()),
            ("SYNDIC_KAFKA_INPUT_TOPIC", self.input.clone()),
            ("SYNDIC_KAFKA_STORIES_TOPIC", format!("{}-stories", self.tag)),
            ("SYNDIC_KAFKA_DECISIONS_TOPIC", self.decisions.clone()),
            ("SYNDIC_KAFKA_DLQ_TOPIC", self.dlq.clone()),
            ("SYNDIC_KAFKA_FINGERPRINTS_TOPIC", format!("{}-fingerprints", self.tag)),
            ("SYNDIC_KAFKA_CREATE_TOPICS", "true".to_string()),
            ("SYNDIC_INDEX_CAPACITY", capacity.to_string()),
            ("SYNDIC_HTTP_ADDRESS", "127.0.0.1:0".to_string()),
            ("RUST_LOG", "syndic=info,rdkafka=warn".to_string()),
            ("NO_COLOR", "1".to_string()),
        ]
    }
}

/// One incarnation of the worker, its log in a file of its own.
struct Worker {
    child: Child,
    log: std::path::PathBuf,
}

fn start_worker(names: &Names, capacity: u64, n: usize) -> Worker {
    let log = std::env::temp_dir().join(format!("{}-worker-{n}.log", names.tag));
    let file = std::fs::File::create(&log).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_syndic"))
        .arg("run")
        .envs(names.env(capacity))
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("syndic starts");
    eprintln!("soak: worker {n} (pid {}) logs to {}", child.id(), log.display());
    Worker { child, log }
}

fn signal(child: &Child, name: &str) {
    let _ = Command::new("kill").args([name, &child.id().to_string()]).status();
}

fn kafka_script(action: &str) {
    let status = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka"))
        .arg(action)
        .status()
        .expect("scripts/kafka runs");
    assert!(status.success(), "scripts/kafka {action} failed");
}

fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// A bad record of one of the kinds a poisoned topic carries, by turn.
fn bad_record(n: u64) -> Vec<u8> {
    match n % 5 {
        0 => b"{not json".to_vec(),
        1 => Vec::new(),
        2 => format!(
            r#"{{"id":"d{n}","source":"s","body":"b","x":{}{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        )
        .into_bytes(),
        3 => br#"{"source":"s","body":"no id"}"#.to_vec(),
        _ => b"\xff\xfe not utf-8".to_vec(),
    }
}

async fn create_input(names: &Names) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .expect("admin client");
    let topic = NewTopic::new(&names.input, PARTITIONS, TopicReplication::Fixed(1));
    for r in admin
        .create_topics(&[topic], &AdminOptions::new())
        .await
        .expect("broker reachable: scripts/kafka start")
    {
        r.expect("input topic created");
    }
}

/// Produces at `rate` per second until `until`; every hundredth record is bad. Returns the
/// keys of the bad records. The producer rides out the broker's outage (it retries for up to
/// ten minutes) and so does the schedule: records due during it go out when it ends.
async fn produce(input: String, rate: u64, until: Instant) -> (u64, HashSet<String>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("linger.ms", "5")
        .set("message.timeout.ms", "600000")
        .create()
        .expect("producer");
    let started = Instant::now();
    let mut bad = HashSet::new();
    let mut pending = Vec::new();
    let mut n = 0u64;
    let mut articles = Generator::new(20261207);
    while Instant::now() < until {
        let due = started + Duration::from_secs_f64(n as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let (key, payload) = if n % 100 == 99 {
            let key = format!("bad-{n}");
            bad.insert(key.clone());
            (key, bad_record(n / 100))
        } else {
            let record = articles.next().expect("the generator is endless");
            (record.id, record.line)
        };
        let mut out = FutureRecord::to(&input).key(&key).payload(&payload);
        loop {
            match producer.send_result(out) {
                Ok(delivery) => break pending.push(delivery),
                Err((_, back)) => {
                    out = back;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        if pending.len() >= 1000 {
            for d in pending.drain(..) {
                d.await.expect("not canceled").expect("delivered");
            }
        }
        n += 1;
    }
    for d in pending {
        d.await.expect("not canceled").expect("delivered");
    }
    (n, bad)
}

/// Every record of `topic` up to its end: its key and input position (its own, or the one its
/// `syndic.source.*` headers name).
fn read_topic(topic: &str) -> Vec<(Option<String>, (i32, i64))> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("reader");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .expect("metadata");
    let partitions: Vec<i32> = metadata.topics()[0].partitions().iter().map(|p| p.id()).collect();
    let mut ends = HashMap::new();
    let mut list = TopicPartitionList::new();
    for &p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(30))
            .expect("watermarks");
        if high > low {
            ends.insert(p, high);
            list.add_partition_offset(topic, p, Offset::Beginning)
                .expect("partition");
        }
    }
    consumer.assign(&list).expect("assign");
    let mut out = Vec::new();
    let mut done = HashSet::new();
    while done.len() < ends.len() {
        let Some(message) = consumer.poll(Duration::from_secs(5)) else {
            continue;
        };
        let message = message.expect("read");
        let mut position = (message.partition(), message.offset());
        if let Some(headers) = message.headers() {
            let value = |key: &str| {
                headers
                    .iter()
                    .find(|h| h.key == key)
                    .and_then(|h| std::str::from_utf8(h.value?).ok()?.parse::<i64>().ok())
            };
            if let (Some(p), Some(o)) = (value("syndic.source.partition"), value("syndic.source.offset")) {
                position = (p as i32, o);
            }
        }
        out.push((message.key().map(|k| String::from_utf8_lossy(k).into_owned()), position));
        if message.offset() + 1 >= ends[&message.partition()] {
            done.insert(message.partition());
        }
    }
    out
}

/// Whether the group has committed the whole input.
fn drained(names: &Names) -> bool {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .set("group.id", &names.group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("group reader");
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition(&names.input, p);
    }
    let Ok(committed) = consumer.committed_offsets(list, Duration::from_secs(10)) else {
        return false;
    };
    (0..PARTITIONS).all(|p| {
        let high = consumer
            .fetch_watermarks(&names.input, p, Duration::from_secs(10))
            .map_or(i64::MAX, |(_, h)| h);
        matches!(committed.find_partition(&names.input, p).map(|e| e.offset()), Some(Offset::Offset(o)) if o >= high)
    })
}

/// WARN and ERROR lines of the logs, by message (the text after the log target).
fn warnings(logs: &[std::path::PathBuf]) -> BTreeMap<(String, String), usize> {
    let mut seen = BTreeMap::new();
    for log in logs {
        // Plain text: the workers run with NO_COLOR set.
        for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
            let level = if line.contains(" ERROR ") {
                "ERROR"
            } else if line.contains(" WARN ") {
                "WARN"
            } else {
                continue;
            };
            // The message without its fields (`key=value` from the first on), so one kind of
            // line is one row.
            let message = line.split_once(": ").map_or(line, |(_, m)| m);
            let words: Vec<&str> = message.split(' ').take_while(|w| !w.contains('=')).collect();
            let message: String = words.join(" ").chars().take(110).collect();
            *seen.entry((level.to_string(), message)).or_insert(0) += 1;
        }
    }
    seen
}

#[tokio::main]
async fn main() {
    let minutes = arg("--minutes", 30);
    let rate = arg("--rate", 200);
    let capacity = arg("--capacity", 50_000);
    let outage = Duration::from_secs(arg("--outage-secs", 20));
    // The outage stops and starts the broker of scripts/kafka, not a cluster named elsewhere.
    assert!(
        std::env::var("SYNDIC_TEST_BROKERS").is_err(),
        "the soak stops and starts the broker of scripts/kafka; unset SYNDIC_TEST_BROKERS"
    );
    let names = Names::new();
    create_input(&names).await;
    let total = Duration::from_secs(minutes * 60);
    let started = Instant::now();
    let at = |share: f64| started + total.mul_f64(share);
    eprintln!(
        "soak: {minutes} min at {rate}/s (1% bad), index.capacity {capacity}, topics {}-*",
        names.tag
    );

    let producing = tokio::spawn(produce(names.input.clone(), rate, at(1.0)));

    // The chaos, at fixed shares of the run: a clean restart, a kill -9, a broker outage.
    let mut logs = Vec::new();
    let mut exits = Vec::new();
    let mut memory: Vec<(f64, u64)> = Vec::new();
    let mut worker = start_worker(&names, capacity, 0);
    let mut incarnation = 0;
    let schedule = [(0.25, "restart"), (0.45, "kill -9"), (0.60, "broker outage")];
    let mut next = 0;
    let sample = |worker: &Worker, memory: &mut Vec<(f64, u64)>| {
        if let Some(rss) = resident_bytes(worker.child.id()) {
            memory.push((started.elapsed().as_secs_f64(), rss));
        }
    };
    while Instant::now() < at(1.0) {
        tokio::time::sleep(Duration::from_secs(10)).await;
        sample(&worker, &mut memory);
        let Some(&(share, what)) = schedule.get(next) else {
            continue;
        };
        if Instant::now() < at(share) {
            continue;
        }
        next += 1;
        eprintln!("soak: {what} at {:.0} s", started.elapsed().as_secs_f64());
        match what {
            "restart" | "kill -9" => {
                signal(&worker.child, if what == "restart" { "-TERM" } else { "-KILL" });
                let status = worker.child.wait().expect("worker ends");
                exits.push(format!("{what}: {status}"));
                logs.push(worker.log.clone());
                incarnation += 1;
                worker = start_worker(&names, capacity, incarnation);
            }
            _ => {
                kafka_script("stop");
                tokio::time::sleep(outage).await;
                kafka_script("start");
            }
        }
    }
    let (produced, bad) = producing.await.expect("producer task");
    eprintln!("soak: produced {produced}; waiting for the group to commit all of it");
    let drain_started = Instant::now();
    while !drained(&names) {
        assert!(
            drain_started.elapsed() < Duration::from_secs(600),
            "the worker did not commit the whole input within 10 minutes of the end"
        );
        sample(&worker, &mut memory);
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    signal(&worker.child, "-TERM");
    let status = worker.child.wait().expect("worker ends");
    exits.push(format!("end: {status}"));
    logs.push(worker.log.clone());

    // Accounting: every input position decided, bad ones dead-lettered, good ones not.
    let input = read_topic(&names.input);
    let decisions = read_topic(&names.decisions);
    let dead = read_topic(&names.dlq);
    let mut decided: HashMap<(i32, i64), usize> = HashMap::new();
    for (_, position) in &decisions {
        *decided.entry(*position).or_insert(0) += 1;
    }
    let lettered: HashSet<(i32, i64)> = dead.iter().map(|(_, p)| *p).collect();
    let bad_positions: HashSet<(i32, i64)> = input
        .iter()
        .filter(|(k, _)| k.as_ref().is_some_and(|k| bad.contains(k)))
        .map(|(_, p)| *p)
        .collect();
    let undecided = input.iter().filter(|(_, p)| !decided.contains_key(p)).count();
    let repeated: usize = decided.values().map(|&n| n.saturating_sub(1)).sum();
    let bad_not_lettered = bad_positions.difference(&lettered).count();
    let good_lettered = lettered.difference(&bad_positions).count();

    // Memory once the window filled (capacity / rate after the last restart) to the end.
    let last_start = at(0.45).duration_since(started).as_secs_f64();
    let filled = last_start + capacity as f64 / rate as f64;
    let after: Vec<u64> = memory.iter().filter(|(t, _)| *t >= filled).map(|(_, m)| *m).collect();
    let mb = |b: u64| b as f64 / (1 << 20) as f64;

    println!("## Soak: {minutes} min at {rate}/s, index.capacity {capacity}");
    println!();
    println!("| check | result |");
    println!("| --- | --- |");
    println!(
        "| input records | {} ({} bad, {produced} produced) |",
        input.len(),
        bad_positions.len()
    );
    println!("| input records without a decision | {undecided} |");
    println!("| decisions repeated (at least once, after kill -9) | {repeated} |");
    println!("| bad records without a dead letter | {bad_not_lettered} |");
    println!("| good records dead-lettered | {good_lettered} |");
    println!("| drained after the producer stopped | {drain_secs:.0} s |");
    println!("| worker exits | {} |", exits.join("; "));
    if let (Some(first), Some(last)) = (after.first(), after.last()) {
        let max = after.iter().max().copied().unwrap_or(0);
        println!(
            "| resident memory after the window filled ({} samples from {filled:.0} s) | first {:.0} MB, last {:.0} MB, max {:.0} MB: last/first {:.2} |",
            after.len(),
            mb(*first),
            mb(*last),
            mb(max),
            *last as f64 / *first as f64
        );
    }
    println!();
    println!("| level | logged message (fields left out) | lines |");
    println!("| --- | --- | --- |");
    for ((level, message), count) in warnings(&logs) {
        println!("| {level} | {} | {count} |", message.replace('|', "\\|"));
    }
    let memory_log = std::env::temp_dir().join(format!("{}-memory.tsv", names.tag));
    let lines: Vec<String> = memory.iter().map(|(t, m)| format!("{t:.0}\t{m}")).collect();
    let _ = std::fs::write(&memory_log, lines.join("\n"));
    println!();
    println!("memory samples: {}", memory_log.display());
    assert_eq!(undecided, 0, "every input record gets a decision");
    assert_eq!(bad_not_lettered, 0, "every bad record is dead-lettered");
    assert_eq!(good_lettered, 0, "no good record is dead-lettered");
}
