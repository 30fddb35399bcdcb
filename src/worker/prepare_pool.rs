//! The prepare pool: the stateless stages (parse, normalize, fingerprint) on threads of their
//! own, ahead of the engine, records coming out in the order they went in.

use crate::pipeline::prepare::{Prepared, Preparer};
use crate::worker::error::WorkerError;
use crate::worker::messages::{Consumed, PreparedRecord};
use std::time::Instant;

/// Records between the main task and the prepare thread, at most. Enough to keep the thread
/// busy while the main task produces; small enough that a shutdown drains it at once.
pub const PIPELINE_DEPTH: usize = 256;

/// The stateless stages (parse, normalize, fingerprint) on threads of their own, so that the
/// main task decides and produces one record while the next ones are prepared. Records are
/// dealt to the threads in turn and taken back in the same turn; each thread keeps its own
/// order, so records come out in the order they went in and decisions keep consumption order.
pub struct PreparePool {
    lanes: Vec<PrepareLane>,
    /// The lane the next record goes to, and the one the next prepared record comes from.
    next_in: usize,
    next_out: usize,
    /// The record after the one last handed out, when it was already prepared then: the
    /// engine starts its index lookups early ([`Engine::prefetch`]). Never waited for.
    ahead: Option<PreparedRecord>,
    /// Records sent and not yet taken back.
    held: usize,
}

/// One prepare thread's way in and out.
struct PrepareLane {
    /// `None` once closed: the thread then finishes what it holds and stops.
    input: Option<tokio::sync::mpsc::Sender<Consumed>>,
    output: tokio::sync::mpsc::Receiver<PreparedRecord>,
}

impl PreparePool {
    pub fn start(preparer: Preparer, threads: usize) -> Result<Self, WorkerError> {
        let lanes = (0..threads.max(1))
            .map(|n| {
                // Each channel holds the whole pipeline, so handing a record in never waits.
                let (input, mut to_prepare) = tokio::sync::mpsc::channel::<Consumed>(PIPELINE_DEPTH);
                let (prepared, output) = tokio::sync::mpsc::channel(PIPELINE_DEPTH);
                let mut preparer = preparer.clone();
                std::thread::Builder::new()
                    .name(format!("syndic-prepare-{n}"))
                    .spawn(move || {
                        while let Some(consumed) = to_prepare.blocking_recv() {
                            let started = Instant::now();
                            let result = preparer.prepare(&consumed.payload, consumed.ingest_time());
                            let record = PreparedRecord {
                                consumed,
                                prepared: result,
                                prepare_time: started.elapsed(),
                            };
                            if prepared.blocking_send(record).is_err() {
                                break;
                            }
                        }
                    })
                    .map_err(WorkerError::PrepareThread)?;
                Ok(PrepareLane {
                    input: Some(input),
                    output,
                })
            })
            .collect::<Result<Vec<_>, WorkerError>>()?;
        Ok(Self {
            lanes,
            next_in: 0,
            next_out: 0,
            ahead: None,
            held: 0,
        })
    }

    /// Hands a record to the next thread. The caller keeps fewer than [`PIPELINE_DEPTH`]
    /// records in the stage, so this never waits.
    pub fn send(&mut self, consumed: Consumed) -> Result<(), WorkerError> {
        let lane = &self.lanes[self.next_in];
        let input = lane.input.as_ref().ok_or(WorkerError::PrepareStopped)?;
        input.try_send(consumed).map_err(|_| WorkerError::PrepareStopped)?;
        self.next_in = (self.next_in + 1) % self.lanes.len();
        self.held += 1;
        Ok(())
    }

    /// The next prepared record, in the order records were sent; `None` once the stage is
    /// closed and empty. Cancel-safe: the turn moves on only when a record came out.
    pub async fn recv(&mut self) -> Option<PreparedRecord> {
        let prepared = match self.ahead.take() {
            Some(prepared) => prepared,
            None => self.lanes[self.next_out].output.recv().await?,
        };
        self.next_out = (self.next_out + 1) % self.lanes.len();
        self.held -= 1;
        if let Ok(next) = self.lanes[self.next_out].output.try_recv() {
            self.ahead = Some(next);
        }
        Some(prepared)
    }

    /// Records sent and not yet taken back.
    pub fn held(&self) -> usize {
        self.held
    }

    /// The record [`PreparePool::recv`] returns next, if it is prepared already.
    pub fn upcoming(&self) -> Option<&Prepared> {
        self.ahead.as_ref().map(|record| &record.prepared)
    }

    /// Lets the threads finish what they hold and stop; [`PreparePool::recv`] drains them.
    pub fn close(&mut self) {
        for lane in &mut self.lanes {
            lane.input = None;
        }
    }
}

/// The next prepared record; pending forever without a stage (passthrough), so that a
/// `select!` branch on it stays quiet.
pub async fn recv_prepared(stage: &mut Option<PreparePool>) -> Option<PreparedRecord> {
    match stage {
        Some(stage) => stage.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn article(n: i64) -> Consumed {
        Consumed {
            partition: (n % 3) as i32,
            offset: n,
            generation: 0,
            key: None,
            payload: format!(r#"{{"id":"a{n}","source":"s","body":"story number {n} in words"}}"#).into_bytes(),
            timestamp_millis: None,
            source: None,
        }
    }

    /// Records come out in the order they went in, across threads, and what `upcoming` shows
    /// is what the next `recv` returns: the engine prefetches for exactly that record.
    #[tokio::test]
    async fn the_stage_keeps_order_and_shows_the_record_it_returns_next() {
        let preparer = Preparer::new(
            &crate::pipeline::config::PipelineConfig::default(),
            crate::pipeline::normalize::rules::BoilerplateRules::builtin(),
        )
        .unwrap();
        let mut stage = PreparePool::start(preparer, 3).unwrap();
        const RECORDS: i64 = 200;
        for n in 0..RECORDS {
            stage.send(article(n)).unwrap();
        }
        assert_eq!(stage.held(), RECORDS as usize);
        stage.close();
        // Time to prepare them all, so that records are waiting ahead of each receive.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let id = |prepared: &Prepared| match prepared {
            Prepared::Article { article, .. } => article.id.clone(),
            Prepared::Invalid { invalid, .. } => panic!("a valid record was rejected: {invalid}"),
        };
        let mut shown: Option<String> = None;
        let mut offsets = Vec::new();
        let mut shown_count = 0;
        while let Some(PreparedRecord { consumed, prepared, .. }) = stage.recv().await {
            if let Some(shown) = shown.take() {
                assert_eq!(shown, id(&prepared));
                shown_count += 1;
            }
            assert_eq!(id(&prepared), format!("a{}", consumed.offset));
            offsets.push(consumed.offset);
            shown = stage.upcoming().map(id);
        }
        assert_eq!(offsets, (0..RECORDS).collect::<Vec<_>>());
        assert_eq!(stage.held(), 0, "every record taken back");
        assert!(shown.is_none(), "a record was shown but never returned");
        assert_eq!(
            shown_count,
            RECORDS - 1,
            "every record after the first was waiting ahead"
        );
    }
}
