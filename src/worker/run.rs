//! The consume-prepare-decide-publish loop: a [`Worker`] and its `select!` loop, one method
//! per arm.
//!
//! The main task consumes, hands each record to the prepare pool (the stateless stages: parse,
//! normalize, fingerprint), takes the prepared records back in the same order and runs the
//! engine's stateful part on them (single-threaded by design), so records are decided in
//! consumption order and their outputs are *enqueued* to the producer in that order: a story's
//! events reach the stories topic in version order. The [`Publisher`] counts each record's
//! acknowledgements; when they are all in (acks=all, idempotent producer) the record is
//! complete, and the offsets [`Ledger`] turns completions into the highest offset that passes
//! no unfinished record, which is stored for the next commit. An output that fails is sent again
//! with backoff until it is acknowledged; later records may finish meanwhile, but the stored
//! offset waits for it. See `docs/worker.md`.

use crate::config::CoreConfig;
use crate::pipeline::engine::Engine;
use crate::pipeline::log_record;
use crate::pipeline::messages::Prepared;
use crate::worker::clients::{consumer_config, create_topics, producer_config, GroupEvent, WorkerContext};
use crate::worker::config::{KafkaConfig, Role};
use crate::worker::error::{client, kafka, WorkerError};
use crate::worker::http::Telemetry;
use crate::worker::messages::{Consumed, DecidedRecord, PreparedRecord};
use crate::worker::offsets::Ledger;
use crate::worker::outputs::{publish_decided, publish_fingerprint, source_of};
use crate::worker::prepare_pool::{recv_prepared, PreparePool, PIPELINE_DEPTH};
use crate::worker::publish::{InFlightRecord, Output, PublishError, Publisher};
use crate::worker::shutdown::Shutdown;
use crate::worker::standby::Follower;
use crate::worker::telemetry::{WorkerEvents, WorkerSummary};
use crate::worker::transaction::{Committed, Transaction};
use crate::worker::warm_up::warm_up;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::Producer;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// What the worker does with each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The product: run the engine, publish decisions, story events and dead letters.
    Dedup,
    /// The benchmark baseline: copy each record to the decisions topic, same clients, same
    /// offset handling, no processing.
    Passthrough,
}

/// How long a take-over tries to catch up while the broker does not answer, before the worker
/// stops: within the consumer's `max.poll.interval.ms` (5 minutes by default).
const TAKE_OVER_RETRIES: Duration = Duration::from_secs(120);

/// Whether a follower's error may pass once the broker answers again: a client error (a
/// timeout, no coordinator yet, the broker down), not a missing topic or a bad record.
fn passes(error: &WorkerError) -> bool {
    matches!(error, WorkerError::Kafka { .. })
}

/// Runs the worker until shutdown (or idleness, when configured). Returns what it did.
pub async fn run(config: CoreConfig, shutdown: Shutdown, telemetry: Telemetry) -> Result<WorkerSummary, WorkerError> {
    run_in_mode(config, shutdown, Mode::Dedup, telemetry).await
}

/// Runs the worker until shutdown, idleness (when configured) or a fatal producer error, in
/// the chosen [`Mode`]; then drains, commits and returns what it did. The role `both` runs a
/// prepare worker and a decider side by side ([`run_both`]). A refusal by the cluster (wrong
/// credentials or certificates) stops it at once with the reason: nothing was committed that
/// was not done, so at least once holds.
pub async fn run_in_mode(
    config: CoreConfig,
    shutdown: Shutdown,
    mode: Mode,
    telemetry: Telemetry,
) -> Result<WorkerSummary, WorkerError> {
    let health = telemetry.health.clone();
    tokio::select! {
        result = run_checked(config, shutdown, mode, telemetry) => result,
        reason = health.refused() => Err(WorkerError::Refused(reason)),
    }
}

async fn run_checked(
    config: CoreConfig,
    shutdown: Shutdown,
    mode: Mode,
    telemetry: Telemetry,
) -> Result<WorkerSummary, WorkerError> {
    let mut config = config;
    let mut shutdown = shutdown;
    if !crate::worker::clients::reach_cluster(&config.kafka, &telemetry.health, &mut shutdown).await? {
        tracing::info!("stopped before the Kafka cluster answered");
        return Ok(WorkerSummary::default());
    }
    if mode == Mode::Dedup && config.kafka.role != Role::Standalone {
        // Before the check, which reads the fingerprint topic's settings.
        if config.kafka.create_topics {
            create_topics(&config.kafka, &telemetry.health).await?;
            config.kafka.create_topics = false;
        }
        crate::worker::retention::check(
            &config.kafka,
            &telemetry.health,
            config.index.capacity,
            config.index.window_secs,
        )
        .await?;
    }
    run_unchecked(config, shutdown, mode, telemetry).await
}

/// [`run_in_mode`] without the fingerprint topic's settings checked: for the demo's in-process
/// cluster, which does not answer the request that reads them.
pub async fn run_unchecked(
    config: CoreConfig,
    shutdown: Shutdown,
    mode: Mode,
    telemetry: Telemetry,
) -> Result<WorkerSummary, WorkerError> {
    if mode == Mode::Dedup && config.kafka.role == Role::Both {
        return run_both(config, shutdown, telemetry).await;
    }
    run_one(config, shutdown, mode, telemetry).await
}

async fn run_one(
    config: CoreConfig,
    shutdown: Shutdown,
    mode: Mode,
    telemetry: Telemetry,
) -> Result<WorkerSummary, WorkerError> {
    let mut worker = Worker::start(config, mode, telemetry).await?;
    let failure = worker.run(shutdown).await?;
    worker.finish(failure).await
}

/// The default role: a prepare worker and a decider in one process, each on a task of its own
/// (a decider that catches up must not hold up preparing), sharing the endpoints; the process
/// is ready when both are. Shutdown reaches both; a worker that stops with an error stops the
/// other, so the process exits instead of running half.
async fn run_both(config: CoreConfig, shutdown: Shutdown, telemetry: Telemetry) -> Result<WorkerSummary, WorkerError> {
    let (trigger, inner) = crate::worker::shutdown::channel();
    let trigger = Arc::new(trigger);
    let spawn = |role: Role, telemetry: Telemetry| {
        let mut config = config.clone();
        config.kafka.role = role;
        config.kafka.create_topics = false;
        let (inner, trigger) = (inner.clone(), trigger.clone());
        tokio::spawn(async move {
            let result = run_one(config, inner, Mode::Dedup, telemetry).await;
            if result.is_err() {
                trigger.fire();
            }
            result
        })
    };
    let prepare = spawn(Role::Prepare, telemetry.clone());
    let decide = spawn(Role::Decide, telemetry.for_part(1));
    let mut outer = shutdown;
    let forward = async {
        outer.requested().await;
        trigger.fire();
    };
    let joined = async { tokio::join!(prepare, decide) };
    tokio::pin!(joined);
    let (prepare, decide) = tokio::select! {
        results = &mut joined => results,
        () = forward => joined.await,
    };
    let task = |result: Result<_, tokio::task::JoinError>| result.map_err(|e| WorkerError::TaskFailed(e.to_string()));
    let (prepare, decide) = (task(prepare)?, task(decide)?);
    let (prepare, decide) = (prepare?, decide?);
    Ok(WorkerSummary::of_both(prepare, decide))
}

/// One worker: its clients, the engine, and the ledgers that let it commit only what is done.
pub struct Worker {
    /// Topics and limits; the output topics are named in every record's outputs. For the
    /// decide role, `input_topic` and `group_id` are the fingerprint topic and its group.
    kafka: KafkaConfig,
    /// Which stages this worker runs.
    role: Role,
    /// The pipeline's stateful part, fed one prepared record at a time in consumption order.
    engine: Engine,
    /// The stateless stages on threads of their own; `None` in passthrough mode.
    pool: Option<PreparePool>,
    consumer: StreamConsumer<WorkerContext>,
    /// Assignments and revocations, sent by the rebalance callback.
    group_events: mpsc::Receiver<GroupEvent>,
    publisher: Publisher,
    /// In-flight records per partition and assignment generation: what may be stored.
    ledger: Ledger,
    events: WorkerEvents,
    /// Readiness of this worker's part of the process.
    telemetry: Telemetry,
    /// A decider's reader of the fingerprint topic: its restore at start, its view kept warm
    /// while another decider decides, its catch-up when it takes over. `None` in other roles.
    follower: Option<Follower>,
    /// A decider that holds the fingerprint partition (the others stand by).
    active: bool,
    last_follow: Instant,
    /// The settings the engine was made from: a transactional decider whose transaction aborts
    /// makes a new one and restores it.
    config: CoreConfig,
    /// The open transaction of a worker with `kafka.exactly_once`; `None`:
    /// offsets are stored once a record's outputs are acknowledged, and committed by librdkafka.
    transaction: Option<Transaction>,
    /// Rewinds after aborted transactions so far: a record consumed before one is dropped.
    rewinds: u64,
    /// Readiness needs a producer that reaches the broker; checked when the group assigns us.
    producer_reaches_broker: bool,
    /// The consumer's last answer was a refusal (no authorization, the topic missing, an
    /// undecodable record), since when: not ready, and not idle, until a record comes again.
    refused_input: Option<Instant>,
    /// Whether the group currently gives this worker partitions. After a revocation (a lost
    /// assignment during a broker outage, say) the worker is waiting to rejoin, not idle: the
    /// records it consumed but could not commit come back after the reassignment.
    assigned: bool,
    /// Zero: never stop for idleness.
    idle_limit: Duration,
    last_record: Instant,
    // Reused buffers.
    completed: Vec<InFlightRecord>,
    scratch: Vec<u8>,
}

/// Whether the loop goes on after an arm.
enum Turn {
    Continue,
    Stop,
    /// Publishing cannot go on: the worker commits what is complete and returns the error.
    Failed(PublishError),
}

impl From<Result<(), PublishError>> for Turn {
    fn from(result: Result<(), PublishError>) -> Self {
        match result {
            Ok(()) => Turn::Continue,
            Err(error) => Turn::Failed(error),
        }
    }
}

impl Worker {
    /// Creates topics (when configured), rebuilds the engine's state (when configured), and
    /// joins the group.
    async fn start(config: CoreConfig, mode: Mode, telemetry: Telemetry) -> Result<Self, WorkerError> {
        let role = config.kafka.role;
        let mut kafka_config = config.kafka.clone();
        if kafka_config.create_topics {
            create_topics(&kafka_config, &telemetry.health).await?;
        }
        if role == Role::Decide {
            // The decide role consumes the fingerprint topic in a group of its own.
            kafka_config.input_topic = kafka_config.fingerprints_topic.clone();
            kafka_config.group_id = format!("{}.decide", kafka_config.group_id);
        }
        let events = WorkerEvents::new(&telemetry.metrics, &kafka_config);
        let mut engine = config.engine()?;
        let mut follower = None;
        let capacity = config.index.capacity;
        match (mode, role) {
            (Mode::Dedup, Role::Standalone) if kafka_config.warm_up => {
                let started = Instant::now();
                let replayed = warm_up(&mut engine, &kafka_config, &telemetry.health, config.index.window_secs).await?;
                events.warmed_up(replayed, started.elapsed(), &engine);
            }
            (Mode::Dedup, Role::Decide) => {
                let (reader, restored) = Follower::restore(
                    &mut engine,
                    &kafka_config,
                    &telemetry.health,
                    capacity,
                    kafka_config.warm_up,
                )
                .await?;
                events.restored(&restored, &engine);
                follower = Some(reader);
            }
            // The prepare role is stateless: nothing to rebuild.
            _ => {}
        }
        let mut publisher = Publisher::new(
            &producer_config(&kafka_config)?,
            events.metrics().clone(),
            &telemetry.health,
        )
        .map_err(client("producer"))?;
        let transaction = if mode == Mode::Dedup && kafka_config.transactional() {
            publisher.set_transactional();
            let interval = Duration::from_millis(kafka_config.transaction_interval_ms);
            Some(Transaction::start(publisher.producer(), interval)?)
        } else {
            None
        };
        let (group_tx, group_events) = mpsc::channel();
        let consumer: StreamConsumer<WorkerContext> = consumer_config(&kafka_config)?
            .create_with_context(WorkerContext {
                events: group_tx,
                metrics: telemetry.metrics.clone(),
                input_topic: kafka_config.input_topic.clone(),
                health: telemetry.health.clone(),
            })
            .map_err(client("consumer"))?;
        consumer
            .subscribe(&[&kafka_config.input_topic])
            .map_err(kafka("subscribing to the input topic"))?;
        events.started(&kafka_config);
        let pool = match (mode, role) {
            (Mode::Dedup, Role::Standalone | Role::Prepare) => Some(PreparePool::start(
                engine.preparer(),
                kafka_config.prepare_thread_count(),
            )?),
            _ => None,
        };
        Ok(Self {
            idle_limit: Duration::from_secs(kafka_config.stop_after_idle_secs),
            kafka: kafka_config,
            role,
            engine,
            pool,
            consumer,
            group_events,
            publisher,
            ledger: Ledger::new(),
            events,
            telemetry,
            follower,
            active: false,
            last_follow: Instant::now(),
            transaction,
            rewinds: 0,
            config,
            producer_reaches_broker: false,
            refused_input: None,
            assigned: false,
            last_record: Instant::now(),
            completed: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// The loop: until shutdown is requested or the input is idle (`None`), or publishing
    /// cannot go on (the error, for [`Worker::finish`]). Periodic work runs on a timer rather
    /// than on every turn: the loop turns several times per record, and clock reads and timer
    /// set-ups there show in profiles.
    async fn run(&mut self, mut shutdown: Shutdown) -> Result<Option<PublishError>, WorkerError> {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            self.apply_group_events().await?;
            let can_consume = self.can_consume();
            let preparing = self.preparing();
            let turn = tokio::select! {
                biased;
                _ = shutdown.requested() => Turn::Stop,
                _ = tick.tick() => self.on_tick().await?,
                result = self.publisher.completions(&mut self.completed), if self.publisher.in_flight() > 0 => {
                    self.complete_acknowledged();
                    result.into()
                }
                Some(record) = recv_prepared(&mut self.pool), if preparing > 0 => {
                    self.decide_and_publish(record).await.into()
                }
                message = self.consumer.recv(), if can_consume => {
                    let consumed = message.map(|m| self.own(&m));
                    self.on_consumed(consumed).await?
                }
            };
            match turn {
                Turn::Continue => {}
                Turn::Stop => return Ok(None),
                Turn::Failed(error) => return Ok(Some(error)),
            }
        }
    }

    /// Records in the pool and in flight stay under `kafka.max_in_flight`, and the pool under
    /// its depth.
    fn can_consume(&self) -> bool {
        let preparing = self.preparing();
        let pool_full = self.pool.is_some() && preparing >= PIPELINE_DEPTH;
        self.publisher.in_flight() + preparing < self.kafka.max_in_flight && !pool_full
    }

    /// Records handed to the prepare pool and not taken back yet.
    fn preparing(&self) -> usize {
        self.pool.as_ref().map_or(0, PreparePool::held)
    }

    async fn apply_group_events(&mut self) -> Result<(), WorkerError> {
        while let Ok(event) = self.group_events.try_recv() {
            match event {
                GroupEvent::Revoked(partition) => {
                    self.assigned = false;
                    self.active = false;
                    self.ledger.revoke(partition);
                    // Its records' outputs must not commit without their offsets, which the
                    // group no longer takes from this member: abort, consume again.
                    if self.transaction.as_ref().is_some_and(|t| t.covers(partition)) {
                        self.commit_transaction(Some("a partition it covers was revoked"))
                            .await?;
                    }
                }
                // Idleness counts from joining the group, not from start-up.
                GroupEvent::Assigned(partitions) => {
                    self.assigned = true;
                    // The topic exists now (a refusal before may have been its creation racing
                    // the subscription); a refusal that lasts comes again from the fetches.
                    self.refused_input = None;
                    self.last_record = Instant::now();
                    if !self.producer_reaches_broker {
                        let client = self.publisher.producer().client();
                        self.producer_reaches_broker = client.fetch_metadata(None, Duration::from_secs(5)).is_ok();
                    }
                    self.take_over_or_stand_by(&partitions).await?;
                    self.telemetry.set_ready(self.producer_reaches_broker);
                }
            }
        }
        Ok(())
    }

    /// A decider given the fingerprint partition first brings its view up to the group's
    /// committed offset, where the group's consumer starts; one given nothing stands by.
    async fn take_over_or_stand_by(&mut self, partitions: &[i32]) -> Result<(), WorkerError> {
        let Some(follower) = self.follower.as_mut() else {
            return Ok(());
        };
        if partitions.is_empty() {
            // Incremental (cooperative) rebalancing tells an active decider of no new
            // partitions too: it goes on deciding.
            if !self.active {
                self.events.standing_by(follower.next());
            }
            return Ok(());
        }
        // The partition often comes back right after a broker outage, while the coordinator
        // is not answering yet: the catch-up is tried again for a while, as the consumer would.
        let started = Instant::now();
        let caught_up = loop {
            match follower.follow(&mut self.engine).await {
                Ok(caught_up) => break caught_up,
                Err(error) if passes(&error) && started.elapsed() < TAKE_OVER_RETRIES => {
                    warn!(%error, "cannot catch up with the fingerprint topic to take over; trying again in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(error) => return Err(error),
            }
        };
        follower.pause()?;
        self.active = true;
        self.events.took_over(&caught_up);
        Ok(())
    }

    /// A standby decider's view follows what the active one commits, once a second.
    async fn follow(&mut self) -> Result<(), WorkerError> {
        let Some(follower) = self.follower.as_mut() else {
            return Ok(());
        };
        if self.active || self.last_follow.elapsed() < Duration::from_secs(1) {
            return Ok(());
        }
        let followed = match follower.follow(&mut self.engine).await {
            Ok(followed) => followed,
            Err(error) if passes(&error) => {
                // The broker away: the view waits, and the next second tries again.
                warn!(%error, "a standby cannot follow the active decider now; trying again in a second");
                self.last_follow = Instant::now();
                return Ok(());
            }
            Err(error) => return Err(error),
        };
        self.last_follow = Instant::now();
        // A standby is idle only when the active decider is: the log it follows grows.
        if followed.records > 0 {
            self.last_record = self.last_follow;
        }
        Ok(())
    }

    /// Commits the open transaction (aborts it when `abort`, or when an output failed); after
    /// an abort, every assigned partition is consumed again from its committed offset.
    async fn commit_transaction(&mut self, abort: Option<&str>) -> Result<(), WorkerError> {
        let failed = self.publisher.take_transaction_failure();
        let abort = abort.or(failed.then_some("an output was not written"));
        let Some(transaction) = self.transaction.as_mut() else {
            return Ok(());
        };
        let group = self.consumer.group_metadata();
        let committed = transaction.commit(self.publisher.producer(), group, &self.kafka.input_topic, abort)?;
        if let Committed::Aborted(reason) = committed {
            self.events.transaction_aborted(&reason);
            self.rewind();
            self.restore_view().await?;
        }
        Ok(())
    }

    /// A decider's view after an aborted transaction: it decided records whose outputs are
    /// gone, so a new engine is restored to the committed offset (deciding them again on their
    /// turn must publish them in full, which a view that has seen them would not).
    async fn restore_view(&mut self) -> Result<(), WorkerError> {
        let Some(follower) = self.follower.as_mut() else {
            return Ok(());
        };
        let mut engine = self.config.engine()?;
        let restored = follower
            .rebuild(&mut engine, self.config.index.capacity, self.kafka.warm_up)
            .await?;
        follower.pause()?;
        self.engine = engine;
        self.events.restored(&restored, &self.engine);
        Ok(())
    }

    /// After an abort: what was consumed since the last commit is forgotten (records in the
    /// pool are dropped as of an earlier generation, outputs in flight abandoned) and each
    /// assigned partition is read again from its committed offset.
    fn rewind(&mut self) {
        self.rewinds += 1;
        self.publisher.abandon();
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        let committed = self
            .consumer
            .committed_offsets(assignment.clone(), Duration::from_secs(30))
            .unwrap_or(assignment);
        for element in committed.elements() {
            let partition = element.partition();
            self.ledger.revoke(partition);
            let from = match element.offset() {
                Offset::Offset(offset) => Offset::Offset(offset),
                _ => Offset::Beginning,
            };
            if let Err(error) = self
                .consumer
                .seek(element.topic(), partition, from, Duration::from_secs(10))
            {
                warn!(partition, %error, "cannot rewind after an aborted transaction; the partition's next owner reads it again");
            }
        }
    }

    /// Gauges and progress, a standby's view, a transaction's commit, and the idle check.
    async fn on_tick(&mut self) -> Result<Turn, WorkerError> {
        self.follow().await?;
        if self.transaction.as_ref().is_some_and(Transaction::due) {
            // A revocation the consumer has seen but this loop not yet must abort the
            // transaction first: committed now, with the group's new generation, it would
            // commit records of partitions that another member reads again.
            self.apply_group_events().await?;
            self.commit_transaction(None).await?;
        }
        let engine = (self.role != Role::Prepare).then_some(&self.engine);
        self.events.tick(engine, self.ledger.in_flight(), self.preparing());
        // An input that cannot be read is not an idle one: stopping with success would say
        // that everything was done.
        if let Some(since) = self.refused_input {
            if !self.idle_limit.is_zero() && since.elapsed() >= self.idle_limit {
                let error = self.events.consume_error().unwrap_or("unknown").to_string();
                return Err(WorkerError::InputRefused(error));
            }
        }
        let idle = !self.idle_limit.is_zero()
            && self.publisher.in_flight() == 0
            && self.preparing() == 0
            && self.assigned
            && self.last_record.elapsed() >= self.idle_limit;
        if !idle {
            return Ok(Turn::Continue);
        }
        // librdkafka can know the assignment is lost (the broker restarted and forgot the
        // member) before the revocation reaches this loop. Stopping then, the final commit
        // fails and the records come back after a restart; as after a revocation, the worker
        // waits for the next assignment instead, consumes them again and commits.
        if self.consumer.assignment_lost() {
            info!("input idle, but the group assignment was lost; waiting to rejoin before stopping");
            self.assigned = false;
            Ok(Turn::Continue)
        } else {
            info!(idle_secs = self.idle_limit.as_secs(), "input idle; stopping");
            Ok(Turn::Stop)
        }
    }

    /// A message as the worker keeps it, with its partition's current generation.
    fn own(&self, message: &BorrowedMessage<'_>) -> Consumed {
        Consumed {
            partition: message.partition(),
            offset: message.offset(),
            generation: self.ledger.generation(message.partition()),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
            timestamp_millis: message.timestamp().to_millis(),
            source: if self.role == Role::Decide {
                source_of(message.headers())
            } else {
                None
            },
        }
    }

    /// A consumed record goes to the pool (or, in passthrough, straight to the decisions
    /// topic); a consume error is retried after a pause.
    async fn on_consumed(&mut self, consumed: KafkaResult<Consumed>) -> Result<Turn, WorkerError> {
        let mut consumed = match consumed {
            Ok(consumed) => consumed,
            Err(error) => {
                if self.events.consume_failed(&error) {
                    self.refused_input.get_or_insert_with(Instant::now);
                    self.telemetry.set_ready(false);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                return Ok(Turn::Continue);
            }
        };
        if self.refused_input.take().is_some() {
            self.telemetry.set_ready(self.producer_reaches_broker);
        }
        // The assignment this record comes from may have arrived with it (the rebalance
        // callback runs inside the consumer's poll): it is applied first, and a decider's view
        // is brought to the committed offset before the record is decided.
        let rewinds = self.rewinds;
        self.apply_group_events().await?;
        if self.rewinds != rewinds {
            // An aborted transaction rewound the partitions to their committed offsets: this
            // record comes again from there, and deciding it now too would decide it twice.
            return Ok(Turn::Continue);
        }
        consumed.generation = self.ledger.generation(consumed.partition);
        self.last_record = Instant::now();
        self.events.consumed();
        if self.role == Role::Decide {
            if let Some(follower) = self.follower.as_mut() {
                // Records the view has not seen (none, unless the group's consumer skipped
                // ahead) are decided first, publishing nothing.
                if consumed.offset > follower.next() {
                    follower.catch_up(&mut self.engine, consumed.offset).await?;
                    follower.pause()?;
                }
                follower.decided(consumed.offset);
            }
            // A fingerprint record is prepared already: read back, it goes straight to the
            // engine. One syndic did not write stops the worker, uncommitted, with the reason.
            let started = Instant::now();
            let (article, fingerprint) = log_record::decode(&consumed.payload)?;
            // The record as received stands in for the fingerprint record from here: the engine
            // may still reject the article (no words left), and its dead letter is the article.
            let mut consumed = consumed;
            consumed.payload.clear();
            consumed.payload.extend_from_slice(article.raw.as_bytes());
            let record = PreparedRecord {
                consumed,
                prepared: Prepared::Article { article, fingerprint },
                prepare_time: started.elapsed(),
            };
            return Ok(self.decide_and_publish(record).await.into());
        }
        match &mut self.pool {
            Some(pool) => {
                pool.send(consumed)?;
            }
            None => {
                let seq = self.begin(&consumed);
                let copy = Output {
                    topic: &self.kafka.decisions_topic,
                    key: consumed.key.as_deref(),
                    payload: &consumed.payload,
                    headers: None,
                };
                return Ok(self.publisher.send(seq, copy).await.into());
            }
        }
        Ok(Turn::Continue)
    }

    /// Runs the engine on the next prepared record and publishes its outputs. A record of a
    /// partition revoked while it was prepared is dropped: its next owner consumes it from the
    /// last commit, so deciding it here would decide it twice.
    async fn decide_and_publish(&mut self, record: PreparedRecord) -> Result<(), PublishError> {
        if let Some(upcoming) = self.pool.as_ref().and_then(PreparePool::upcoming) {
            self.engine.prefetch(upcoming);
        }
        let PreparedRecord {
            consumed,
            prepared,
            prepare_time,
        } = record;
        if !self.ledger.is_current(consumed.partition, consumed.generation) {
            self.events.dropped_revoked(&consumed);
            return Ok(());
        }
        if self.role == Role::Prepare {
            if let Prepared::Article { article, fingerprint } = &prepared {
                self.scratch.clear();
                log_record::encode(article, fingerprint, &mut self.scratch);
                let seq = self.begin(&consumed);
                return publish_fingerprint(&mut self.publisher, seq, &self.kafka, &consumed, &self.scratch).await;
            }
            // An invalid record is decided here: its dead letter and decision need no state.
        }
        let started = Instant::now();
        let outcome = self.engine.decide(prepared);
        let decided = DecidedRecord { consumed, outcome };
        self.events.decided(&decided, prepare_time + started.elapsed());
        let seq = self.begin(&decided.consumed);
        publish_decided(&mut self.publisher, seq, &self.kafka, &decided, &mut self.scratch).await
    }

    /// Starts a record in both ledgers: its offset waits in the offsets ledger, and the
    /// publisher counts its acknowledgements. Returns the record's number for its outputs.
    fn begin(&mut self, consumed: &Consumed) -> u64 {
        self.ledger.begin(consumed.partition, consumed.offset);
        if let Some(transaction) = self.transaction.as_mut() {
            transaction.add(consumed.partition, consumed.offset);
        }
        self.publisher.begin(consumed.in_flight())
    }

    /// Records whose outputs are all acknowledged: store the offset each lets its partition
    /// reach.
    fn complete_acknowledged(&mut self) {
        let mut completed = std::mem::take(&mut self.completed);
        for record in completed.drain(..) {
            self.events.completed(&record);
            let Some(next) = self.ledger.complete(record.partition, record.offset, record.generation) else {
                continue;
            };
            if self.transaction.is_some() {
                continue; // the offsets go with the transaction
            }
            let mut tpl = TopicPartitionList::new();
            if tpl
                .add_partition_offset(&self.kafka.input_topic, record.partition, Offset::Offset(next))
                .is_ok()
            {
                if let Err(error) = self.consumer.store_offsets(&tpl) {
                    // The partition was revoked meanwhile; its new owner consumes from the last commit.
                    debug!(partition = record.partition, next, %error, "offset not stored");
                }
            }
        }
        self.completed = completed;
    }

    /// Everything in the pool decided and published, everything in flight acknowledged.
    async fn drain(&mut self) -> Result<(), PublishError> {
        if let Some(pool) = self.pool.as_mut() {
            pool.close();
        }
        while let Some(record) = match self.pool.as_mut() {
            Some(pool) => pool.recv().await,
            None => None,
        } {
            self.decide_and_publish(record).await?;
        }
        while self.publisher.in_flight() > 0 {
            let result = self.publisher.completions(&mut self.completed).await;
            self.complete_acknowledged();
            result?;
        }
        Ok(())
    }

    /// Shutdown: no more fetching; finish what is in the pool and in flight within the bound,
    /// then commit. After a fatal producer error there is nothing to finish: no output can be
    /// delivered any more.
    async fn finish(mut self, mut failure: Option<PublishError>) -> Result<WorkerSummary, WorkerError> {
        self.telemetry.set_ready(false);
        let mut bound_reached = false;
        if failure.is_none() {
            let bound = Duration::from_secs(self.kafka.shutdown_timeout_secs);
            match tokio::time::timeout(bound, self.drain()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => failure = Some(error),
                Err(_) => bound_reached = true,
            }
        }
        if failure.is_some() || bound_reached {
            self.events.summary.abandoned = (self.publisher.abandon() + self.preparing()) as u64;
        }
        if bound_reached {
            warn!(
                abandoned = self.events.summary.abandoned,
                "shutdown bound reached; unconfirmed records will be consumed again after restart"
            );
        }
        if failure.is_none() {
            if let Err(error) = self.publisher.producer().flush(Timeout::After(Duration::from_secs(5))) {
                warn!(%error, "producer flush incomplete");
            }
        }
        if self.transaction.is_some() {
            // What was drained commits with its offsets (after any revocation seen meanwhile,
            // which aborts it); after a failure it aborts.
            if let Err(error) = self.apply_group_events().await {
                warn!(%error, "applying the last rebalance failed");
            }
            let abort = (failure.is_some() || bound_reached).then_some("stopping with records unfinished");
            if let Err(error) = self.commit_transaction(abort).await {
                warn!(%error, "the last transaction did not commit; its records will be consumed again");
            }
            self.events.stopped();
            return match failure {
                Some(error) => Err(error.into()),
                None => Ok(self.events.summary),
            };
        }
        // Only complete records' offsets were stored, so this commit is right after a failure too.
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => warn!(%error, "final commit failed; the last records will be consumed again"),
        }
        self.events.stopped();
        match failure {
            Some(error) => Err(error.into()),
            None => Ok(self.events.summary),
        }
    }
}
