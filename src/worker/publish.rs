//! Publishing each consumed record's outputs, and learning when the broker has them all.
//!
//! A record gets a sequence number when its outputs are sent; each of them carries that number
//! as librdkafka's delivery opaque, a plain integer. Nothing is kept per message: no future,
//! no box, no copy (librdkafka copies the payload once, when it is enqueued). The producer's
//! own polling thread reports deliveries through one channel, which the worker loop drains in
//! batches. A failed output comes back with its bytes and is sent again after a backoff while
//! its record stays incomplete, so the record's offset cannot be stored past it.
//!
//! The worker decides *which* outputs a record has (`worker.rs`); this module owns sending
//! them and counting their acknowledgements.

use crate::worker::clients::on_client_error;
use crate::worker::http::Health;
use crate::worker::log_limit::{Admit, LogLimit};
use crate::worker::metrics::Metrics;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tracing::warn;

/// Why publishing cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// librdkafka raised a fatal error (for the idempotent producer: it can no longer
    /// guarantee order and no duplicates, e.g. after the broker lost acknowledged data). Every
    /// later send fails, so retrying would spin forever.
    #[error("the producer hit a fatal error ({code:?}): {reason}; the worker stops so that it can be restarted, and records not committed are consumed again")]
    Fatal { code: RDKafkaErrorCode, reason: String },
    /// A story event could not be written (its canonical record could not be read back).
    #[error("{0}; the worker stops, and records not committed are consumed again after a restart")]
    Event(#[from] crate::pipeline::story::EventError),
}

/// The producer's fatal error, once it has one.
fn fatal_error(producer: &OutputProducer) -> Option<PublishError> {
    producer
        .client()
        .fatal_error()
        .map(|(code, reason)| PublishError::Fatal { code, reason })
}

/// One output of a record, borrowed: librdkafka copies it when it is enqueued.
pub struct Output<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    pub headers: Option<OwnedHeaders>,
}

/// An output that failed, with its bytes, to be sent again.
struct Returned {
    topic: String,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
    headers: Option<OwnedHeaders>,
}

impl Returned {
    /// Owned copies of an output's parts, kept to send it again.
    fn new(topic: &str, key: Option<&[u8]>, payload: &[u8], headers: Option<OwnedHeaders>) -> Self {
        Self {
            topic: topic.to_string(),
            key: key.map(<[u8]>::to_vec),
            payload: payload.to_vec(),
            headers,
        }
    }

    fn as_output(&self) -> Output<'_> {
        Output {
            topic: &self.topic,
            key: self.key.as_deref(),
            payload: &self.payload,
            headers: self.headers.clone(),
        }
    }
}

/// What the producer's polling thread reports about one output.
enum Report {
    Acked(u64),
    Failed {
        record: u64,
        error: KafkaError,
        output: Returned,
    },
}

/// The producer's context: turns librdkafka's delivery callbacks into reports on a channel.
pub struct DeliveryReports {
    reports: UnboundedSender<Report>,
    health: Arc<Health>,
}

impl ClientContext for DeliveryReports {
    fn error(&self, error: KafkaError, reason: &str) {
        on_client_error(&self.health, &error, reason);
    }
}

impl ProducerContext for DeliveryReports {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, record: usize) {
        let record = record as u64;
        let report = match result {
            Ok(_) => Report::Acked(record),
            Err((error, message)) => Report::Failed {
                record,
                error: error.clone(),
                output: Returned::new(
                    message.topic(),
                    message.key(),
                    message.payload().unwrap_or_default(),
                    message.headers().map(|h| h.detach()),
                ),
            },
        };
        // The receiver lives as long as the publisher that owns this producer.
        let _ = self.reports.send(report);
    }
}

pub type OutputProducer = ThreadedProducer<DeliveryReports>;

/// A consumed record whose outputs are on their way.
#[derive(Debug, Clone, Copy)]
pub struct InFlightRecord {
    pub partition: i32,
    pub offset: i64,
    /// The partition's assignment generation when the record was consumed.
    pub generation: u64,
    /// The input record's Kafka timestamp, for the end-to-end latency.
    pub input_millis: Option<i64>,
}

#[derive(Debug)]
struct Waiting {
    record: InFlightRecord,
    /// Outputs sent and not yet acknowledged.
    unacknowledged: u32,
    /// Failed deliveries so far, for the backoff.
    failures: u32,
}

const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Delivery reports taken from the channel per turn of the loop.
const REPORT_BATCH: usize = 1024;

/// Which records still wait for acknowledgements, by sequence number: the accounting behind
/// [`Publisher`], apart from Kafka so that it is tested alone.
#[derive(Debug, Default)]
pub struct Awaiting {
    /// Records from `first_seq` on; `None` once complete. Records complete roughly in order,
    /// so the front is trimmed as they do and the queue stays about as long as what is in
    /// flight.
    records: VecDeque<Option<Waiting>>,
    first_seq: u64,
    in_flight: usize,
}

impl Awaiting {
    /// Starts a record; returns its number.
    pub fn begin(&mut self, record: InFlightRecord) -> u64 {
        let seq = self.first_seq + self.records.len() as u64;
        self.records.push_back(Some(Waiting {
            record,
            unacknowledged: 0,
            failures: 0,
        }));
        self.in_flight += 1;
        seq
    }

    /// Record `seq` has one more output on its way.
    pub fn expect(&mut self, seq: u64) {
        if let Some(waiting) = self.get_mut(seq) {
            waiting.unacknowledged += 1;
        }
    }

    /// One output of record `seq` is acknowledged; returns the record once all of its are.
    /// Unknown numbers (an abandoned record's late report) change nothing.
    pub fn acknowledge(&mut self, seq: u64) -> Option<InFlightRecord> {
        let slot = self.records.get_mut(self.index_of(seq)?)?;
        let waiting = slot.as_mut()?;
        waiting.unacknowledged = waiting.unacknowledged.saturating_sub(1);
        if waiting.unacknowledged > 0 {
            return None;
        }
        let record = waiting.record;
        *slot = None;
        self.in_flight -= 1;
        while let Some(None) = self.records.front() {
            self.records.pop_front();
            self.first_seq += 1;
        }
        Some(record)
    }

    /// An output of record `seq` failed and will be sent again; returns the record's failures
    /// so far, for the backoff.
    pub fn failed(&mut self, seq: u64) -> u32 {
        match self.get_mut(seq) {
            Some(waiting) => {
                waiting.failures += 1;
                waiting.failures
            }
            None => 1,
        }
    }

    /// Records with outputs not yet all acknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Whether record `seq` still waits for acknowledgements.
    pub fn is_waiting(&self, seq: u64) -> bool {
        self.index_of(seq)
            .and_then(|i| self.records.get(i))
            .is_some_and(Option::is_some)
    }

    /// Forgets every record (the shutdown bound ran out); returns how many there were.
    pub fn abandon(&mut self) -> usize {
        let abandoned = self.in_flight;
        // Numbers are not reused: a late report of an abandoned record must match nothing.
        self.first_seq += self.records.len() as u64;
        self.records.clear();
        self.in_flight = 0;
        abandoned
    }

    /// Where record `seq` sits in the queue, if it can be there at all.
    fn index_of(&self, seq: u64) -> Option<usize> {
        usize::try_from(seq.checked_sub(self.first_seq)?).ok()
    }

    fn get_mut(&mut self, seq: u64) -> Option<&mut Waiting> {
        let index = self.index_of(seq)?;
        self.records.get_mut(index)?.as_mut()
    }

    #[cfg(test)]
    fn queue_len(&self) -> usize {
        self.records.len()
    }
}

/// Sends outputs and tells which records have all of theirs acknowledged.
pub struct Publisher {
    producer: OutputProducer,
    reports: UnboundedReceiver<Report>,
    awaiting: Awaiting,
    received: Vec<Report>,
    metrics: Arc<Metrics>,
    /// Outputs go out in transactions: one that fails is not sent again, since its
    /// transaction must abort and its record is consumed again (`transaction.rs`).
    transactional: bool,
    /// An output of the open transaction failed (refused before it was enqueued, or not
    /// delivered): the transaction must abort, not commit.
    transaction_failed: bool,
    /// "Sending it again" lines, shared by the retry tasks: an outage fails every output in
    /// flight, tens of thousands at a time.
    retry_lines: Arc<std::sync::Mutex<LogLimit>>,
}

impl Publisher {
    pub fn new(config: &ClientConfig, metrics: Arc<Metrics>, health: &Arc<Health>) -> KafkaResult<Self> {
        let (sender, reports) = tokio::sync::mpsc::unbounded_channel();
        let producer = config.create_with_context(DeliveryReports {
            reports: sender,
            health: health.clone(),
        })?;
        Ok(Self {
            producer,
            reports,
            awaiting: Awaiting::default(),
            received: Vec::with_capacity(REPORT_BATCH),
            metrics,
            transactional: false,
            transaction_failed: false,
            retry_lines: Arc::new(std::sync::Mutex::new(LogLimit::per_record())),
        })
    }

    /// From now on a failed output is not sent again: its transaction aborts instead.
    pub fn set_transactional(&mut self) {
        self.transactional = true;
    }

    /// Whether an output of the open transaction failed since the last call.
    pub fn take_transaction_failure(&mut self) -> bool {
        std::mem::take(&mut self.transaction_failed)
    }

    pub fn producer(&self) -> &OutputProducer {
        &self.producer
    }

    /// Records with outputs not yet all acknowledged.
    pub fn in_flight(&self) -> usize {
        self.awaiting.in_flight()
    }

    /// Starts a record; its outputs follow with [`Publisher::send`]. Returns its number.
    pub fn begin(&mut self, record: InFlightRecord) -> u64 {
        self.awaiting.begin(record)
    }

    /// Enqueues one output of record `seq`, waiting only while librdkafka's queue is full. An
    /// output librdkafka refuses (larger than the producer's `message.max.bytes`, say) is sent
    /// again from a task of its own, like one the broker refused: the record stays incomplete
    /// and the loop goes on, so one such output cannot stall the worker or its shutdown.
    pub async fn send(&mut self, seq: u64, output: Output<'_>) -> Result<(), PublishError> {
        self.awaiting.expect(seq);
        let (topic, key, payload) = (output.topic, output.key, output.payload);
        match enqueue(&self.producer, seq, output).await {
            Ok(()) => Ok(()),
            Err((error, headers)) => {
                if let Some(fatal) = fatal_error(&self.producer) {
                    return Err(fatal);
                }
                self.send_again(seq, error, Returned::new(topic, key, payload, headers));
                Ok(())
            }
        }
    }

    /// Waits for delivery reports and appends the records they complete to `done` (possibly
    /// none: a report may be one of several outputs, or a failure). Cancel-safe. Fails once
    /// the producer has a fatal error: its outputs can no longer be delivered.
    pub async fn completions(&mut self, done: &mut Vec<InFlightRecord>) -> Result<(), PublishError> {
        if self.reports.recv_many(&mut self.received, REPORT_BATCH).await == 0 {
            // Cannot happen while the producer (which holds the sender) lives; never spin.
            return std::future::pending().await;
        }
        let mut received = std::mem::take(&mut self.received);
        let mut result = Ok(());
        for report in received.drain(..) {
            match report {
                Report::Acked(seq) => done.extend(self.awaiting.acknowledge(seq)),
                Report::Failed { record, error, output } => match fatal_error(&self.producer) {
                    Some(fatal) => result = Err(fatal),
                    None => self.send_again(record, error, output),
                },
            }
        }
        self.received = received;
        result
    }

    /// Sends a failed output again after a backoff that doubles with the record's failures,
    /// on a task of its own so that the loop goes on meanwhile. The task keeps trying while
    /// librdkafka refuses the output, until the producer has a fatal error (which the loop
    /// learns from its own sends and delivery reports, and stops on).
    fn send_again(&mut self, seq: u64, error: KafkaError, output: Returned) {
        // A record forgotten meanwhile (abandoned at shutdown, or of an aborted transaction)
        // is consumed again: sending its output now would deliver it twice.
        if !self.awaiting.is_waiting(seq) {
            return;
        }
        if self.transactional {
            self.transaction_failed = true;
            warn!(topic = output.topic, %error, "output not acknowledged; its transaction will abort and its records be consumed again");
            self.metrics.produce_errors.with_label_values(&[&output.topic]).inc();
            return;
        }
        let failures = self.awaiting.failed(seq);
        let mut backoff = (Duration::from_millis(100) * 2u32.saturating_pow(failures.min(16) - 1)).min(MAX_BACKOFF);
        let producer = self.producer.clone();
        let metrics = self.metrics.clone();
        let lines = self.retry_lines.clone();
        tokio::spawn(async move {
            let mut error = error;
            loop {
                // A poisoned lock only means another retry task panicked mid-line: log anyway.
                let admit = lines.lock().map_or(
                    Admit {
                        show: true,
                        held_back: None,
                    },
                    |mut l| l.admit(Instant::now()),
                );
                if let Some(count) = admit.held_back {
                    warn!(count, "more outputs not acknowledged and sent again, not logged one by one (syndic_produce_retries_total counts them)");
                }
                if admit.show {
                    warn!(topic = output.topic, %error, backoff_ms = backoff.as_millis() as u64, "output not acknowledged; sending it again");
                }
                metrics.produce_errors.with_label_values(&[&output.topic]).inc();
                metrics.produce_retries.inc();
                tokio::time::sleep(backoff).await;
                match enqueue(&producer, seq, output.as_output()).await {
                    Ok(()) => return,
                    Err(_) if fatal_error(&producer).is_some() => return,
                    Err((refused, _)) => error = refused,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        });
    }

    /// Forgets records still unacknowledged (the shutdown bound ran out); returns how many.
    pub fn abandon(&mut self) -> usize {
        self.awaiting.abandon()
    }
}

/// Hands an output to librdkafka, waiting while its queue is full. Any other refusal comes
/// back with the error and the output's headers (librdkafka takes them only on success).
async fn enqueue(
    producer: &OutputProducer,
    seq: u64,
    output: Output<'_>,
) -> Result<(), (KafkaError, Option<OwnedHeaders>)> {
    let mut headers = output.headers;
    loop {
        let mut record = BaseRecord::with_opaque_to(output.topic, seq as usize).payload(output.payload);
        if let Some(key) = output.key {
            record = record.key(key);
        }
        if let Some(h) = headers.take() {
            record = record.headers(h);
        }
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), record)) => {
                headers = record.headers;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((error, record)) => return Err((error, record.headers)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64) -> InFlightRecord {
        InFlightRecord {
            partition: 0,
            offset,
            generation: 0,
            input_millis: None,
        }
    }

    /// Starts a record with `outputs` outputs sent.
    fn start(awaiting: &mut Awaiting, offset: i64, outputs: u32) -> u64 {
        let seq = awaiting.begin(record(offset));
        for _ in 0..outputs {
            awaiting.expect(seq);
        }
        seq
    }

    #[test]
    fn a_record_completes_only_when_every_output_is_acknowledged() {
        let mut awaiting = Awaiting::default();
        let seq = start(&mut awaiting, 7, 3);
        assert!(awaiting.acknowledge(seq).is_none());
        assert_eq!(awaiting.failed(seq), 1, "a failure is counted and the record waits on");
        assert!(awaiting.acknowledge(seq).is_none());
        assert_eq!(awaiting.in_flight(), 1);
        assert_eq!(awaiting.acknowledge(seq).map(|r| r.offset), Some(7));
        assert_eq!(awaiting.in_flight(), 0);
        assert!(awaiting.acknowledge(seq).is_none(), "a completed record completes once");
    }

    #[test]
    fn records_complete_in_any_order_and_the_queue_shrinks_behind_them() {
        let mut awaiting = Awaiting::default();
        let seqs: Vec<u64> = (0..100).map(|o| start(&mut awaiting, o, 2)).collect();
        // Acknowledge the back half first, then the front half, each output separately.
        let order: Vec<u64> = seqs[50..].iter().chain(&seqs[..50]).copied().collect();
        let mut done = Vec::new();
        for &seq in order.iter().chain(&order) {
            done.extend(awaiting.acknowledge(seq).map(|r| r.offset));
        }
        let expected: Vec<i64> = (50..100).chain(0..50).collect();
        assert_eq!(done, expected);
        assert_eq!(awaiting.in_flight(), 0);
        assert_eq!(awaiting.queue_len(), 0, "completed records are not kept");
        // Numbering goes on after the trimmed ones.
        assert_eq!(start(&mut awaiting, 100, 1), 100);
    }

    /// A publisher on rdkafka's in-process mock cluster: this test is about how syndic reacts
    /// to librdkafka's fatal state, which librdkafka's own test hook raises on demand.
    #[tokio::test]
    async fn a_fatal_producer_error_stops_publishing_instead_of_retrying_forever() {
        use rdkafka::mocking::MockCluster;
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("out", 1, 1).expect("topic");
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "0")
            .set("linger.ms", "0");
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let health = Arc::new(crate::worker::http::Health::default());
        let mut publisher = Publisher::new(&config, metrics, &health).expect("producer");
        let output = || Output {
            topic: "out",
            key: None,
            payload: b"decision",
            headers: None,
        };

        let seq = start(&mut publisher.awaiting, 0, 0);
        publisher.send(seq, output()).await.expect("sent");
        let mut done = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), async {
            while done.is_empty() {
                publisher.completions(&mut done).await.expect("no fatal error yet");
            }
        })
        .await
        .expect("delivered by the mock cluster");
        assert_eq!(done.len(), 1);

        let reason = c"raised by the test";
        // SAFETY: a live producer handle and a NUL-terminated reason, as librdkafka's testing
        // API requires; it only marks the handle as failed.
        unsafe {
            rdkafka::bindings::rd_kafka_test_fatal_error(
                publisher.producer().client().native_ptr(),
                rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                reason.as_ptr(),
            );
        }
        let seq = start(&mut publisher.awaiting, 1, 0);
        let error = tokio::time::timeout(Duration::from_secs(20), publisher.send(seq, output()))
            .await
            .expect("send returns instead of retrying forever")
            .expect_err("a fatal producer cannot send");
        assert!(
            matches!(error, PublishError::Fatal { .. }) && error.to_string().contains("raised by the test"),
            "{error}"
        );
    }

    #[test]
    fn a_late_report_of_an_abandoned_record_matches_nothing() {
        let mut awaiting = Awaiting::default();
        let old = start(&mut awaiting, 1, 1);
        assert_eq!(awaiting.abandon(), 1);
        let new = start(&mut awaiting, 2, 1);
        assert_ne!(old, new);
        assert!(awaiting.acknowledge(old).is_none());
        assert_eq!(awaiting.in_flight(), 1);
        assert_eq!(awaiting.acknowledge(new).map(|r| r.offset), Some(2));
    }
}
