//! `syndic demo`: the real worker against an in-process Kafka (librdkafka's mock cluster), fed
//! with a generated sample, so a first run needs nothing installed. The mock cluster ignores
//! transactions and isolation levels; the integration tests use a real broker instead.

use crate::config::CoreConfig;
use crate::tools::corpus::Generator;
use crate::worker::clients::producer_config;
use crate::worker::error::WorkerError;
use crate::worker::http::Telemetry;
use crate::worker::run;
use crate::worker::shutdown;
use crate::worker::telemetry::WorkerSummary;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;

const PARTITIONS: i32 = 3;

/// The latest state of one story, as read back from the stories topic.
#[derive(Debug, Clone)]
pub struct StoryState {
    pub story_id: String,
    pub version: u64,
    pub canonical_source: String,
    pub canonical_title: String,
    /// Members who joined in all; `members` lists the latest the event carried.
    pub member_count: u64,
    pub members: Vec<String>,
}

#[derive(Debug)]
pub struct DemoReport {
    pub produced: usize,
    pub summary: WorkerSummary,
    pub stories: Vec<StoryState>,
}

fn mock_error(source: KafkaError) -> WorkerError {
    WorkerError::Kafka {
        context: "running the in-process Kafka",
        source,
    }
}

/// Runs the demo with `articles` generated records.
pub async fn run(articles: usize, telemetry: Telemetry) -> Result<DemoReport, WorkerError> {
    let cluster = MockCluster::new(1).map_err(mock_error)?;
    let mut config = CoreConfig::default();
    config.kafka.brokers = cluster.bootstrap_servers();
    config.kafka.group_id = "syndic-demo".to_string();
    config.kafka.stop_after_idle_secs = 2;
    for topic in [
        &config.kafka.input_topic,
        &config.kafka.stories_topic,
        &config.kafka.decisions_topic,
        &config.kafka.dlq_topic,
    ] {
        cluster.create_topic(topic, PARTITIONS, 1).map_err(mock_error)?;
    }
    // The one ordered log the decider reads (docs/state.md).
    cluster
        .create_topic(&config.kafka.fingerprints_topic, 1, 1)
        .map_err(mock_error)?;
    let producer: FutureProducer = producer_config(&config.kafka)?.create().map_err(mock_error)?;
    for record in Generator::new(42).with_invalid(true).take(articles) {
        let sent = FutureRecord::to(&config.kafka.input_topic)
            .key(&record.id)
            .payload(&record.line);
        producer
            .send(sent, Timeout::Never)
            .await
            .map_err(|(e, _)| mock_error(e))?;
    }
    let (_trigger, shutdown) = shutdown::channel();
    let summary = run::run_unchecked(config.clone(), shutdown, run::Mode::Dedup, telemetry).await?;
    let stories = read_stories(&config.kafka.brokers, &config.kafka.stories_topic)?;
    Ok(DemoReport {
        produced: articles,
        summary,
        stories,
    })
}

/// Reads the stories topic from the start and keeps each story's latest event.
fn read_stories(brokers: &str, topic: &str) -> Result<Vec<StoryState>, WorkerError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "syndic-demo-reader")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(mock_error)?;
    let mut tpl = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        tpl.add_partition_offset(topic, partition, Offset::Beginning)
            .map_err(mock_error)?;
    }
    consumer.assign(&tpl).map_err(mock_error)?;
    let mut latest: BTreeMap<String, StoryState> = BTreeMap::new();
    let mut quiet = 0;
    while quiet < 10 {
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            quiet += 1;
            continue;
        };
        quiet = 0;
        let message = message.map_err(mock_error)?;
        let Some(event) = message
            .payload()
            .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
        else {
            continue;
        };
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
        let state = StoryState {
            story_id: text(&event["story_id"]),
            version: event["version"].as_u64().unwrap_or(0),
            canonical_source: text(&event["canonical"]["source"]),
            canonical_title: text(&event["canonical"]["title"]),
            member_count: event["member_count"].as_u64().unwrap_or(0),
            members: event["members"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .map(|x| format!("{} ({})", text(&x["article_id"]), text(&x["source"])))
                        .collect()
                })
                .unwrap_or_default(),
        };
        let newer = latest.get(&state.story_id).is_none_or(|s| s.version < state.version);
        if newer {
            latest.insert(state.story_id.clone(), state);
        }
    }
    Ok(latest.into_values().collect())
}
