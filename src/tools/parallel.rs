//! The file commands on all cores: lines are read on one thread, prepared (parse, normalize,
//! fingerprint) in batches on several, and handed back in input order, so that one engine
//! decides them exactly as it would one by one. Batches are dealt to the threads in turn and
//! taken back in the same turn, as the worker's prepare pool does with records.

use crate::pipeline::prepare::{Prepared, Preparer};
use crate::tools::input::{for_each_line, Input, InputError};
use chrono::{DateTime, Utc};
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

/// Lines per batch: enough that handing a batch over costs little beside preparing it (about
/// 5 ms of work), few enough that the engine never waits long for the first.
const BATCH: usize = 256;
/// Batches queued per thread each way.
const QUEUED: usize = 4;

/// A prepared line of the input.
pub struct PreparedLine {
    /// The input it came from and its line number there.
    pub input: Arc<str>,
    pub line_no: u64,
    pub prepared: Prepared,
}

/// A line as read, with its ingest time.
struct ReadLine {
    input: Arc<str>,
    line_no: u64,
    raw: Vec<u8>,
    ingest: DateTime<Utc>,
}

/// Calls `decide` with every non-blank line of `inputs`, prepared on `threads` threads, in
/// input order. `ingest_time` gives each line its ingest time as it is read. Stops at the
/// first error of reading or of `decide`.
pub fn prepare_lines<E>(
    inputs: &[Input],
    read: &Arc<AtomicU64>,
    preparer: &Preparer,
    threads: usize,
    ingest_time: impl Fn() -> DateTime<Utc> + Send,
    mut decide: impl FnMut(PreparedLine) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<InputError> + Send,
{
    let threads = threads.max(1);
    std::thread::scope(|scope| {
        let mut to_prepare: Vec<SyncSender<Vec<ReadLine>>> = Vec::with_capacity(threads);
        let mut prepared: Vec<Receiver<Vec<PreparedLine>>> = Vec::with_capacity(threads);
        for n in 0..threads {
            let (batch_in, batches) = sync_channel::<Vec<ReadLine>>(QUEUED);
            let (done, batch_out) = sync_channel::<Vec<PreparedLine>>(QUEUED);
            let mut preparer = preparer.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("syndic-prepare-{n}"))
                .spawn_scoped(scope, move || {
                    for batch in batches {
                        let out = batch
                            .into_iter()
                            .map(|line| PreparedLine {
                                prepared: preparer.prepare(&line.raw, line.ingest),
                                input: line.input,
                                line_no: line.line_no,
                            })
                            .collect();
                        // The engine stopped (an error): nothing more to prepare.
                        if done.send(out).is_err() {
                            return;
                        }
                    }
                });
            if let Err(error) = spawned {
                return Err(E::from(InputError::Thread(error)));
            }
            to_prepare.push(batch_in);
            prepared.push(batch_out);
        }
        let reader = std::thread::Builder::new()
            .name("syndic-read".to_string())
            .spawn_scoped(scope, move || -> Result<(), E> {
                let mut batch = Vec::with_capacity(BATCH);
                let mut turn = 0usize;
                let mut names: Option<(String, Arc<str>)> = None;
                let result = for_each_line::<E>(inputs, read, |name, line_no, raw| {
                    let input = match &names {
                        Some((known, shared)) if known == name => shared.clone(),
                        _ => {
                            let shared: Arc<str> = Arc::from(name);
                            names = Some((name.to_string(), shared.clone()));
                            shared
                        }
                    };
                    batch.push(ReadLine {
                        input,
                        line_no,
                        raw: raw.to_vec(),
                        ingest: ingest_time(),
                    });
                    if batch.len() == BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        if to_prepare[turn % threads].send(full).is_err() {
                            // The engine stopped; its error is the one reported.
                            return Ok(());
                        }
                        turn += 1;
                    }
                    Ok(())
                });
                if !batch.is_empty() {
                    let _ = to_prepare[turn % threads].send(batch);
                }
                // Dropping the senders ends the prepare threads once they are done.
                drop(to_prepare);
                result
            });
        let reader = match reader {
            Ok(reader) => reader,
            Err(error) => return Err(E::from(InputError::Thread(error))),
        };
        let mut turn = 0usize;
        let mut decided = Ok(());
        // A thread's channel closes only after the reader stopped, and the reader deals in
        // turn: the first closed channel in turn is the end of the input.
        'batches: while let Ok(batch) = prepared[turn % threads].recv() {
            for line in batch {
                if let Err(error) = decide(line) {
                    decided = Err(error);
                    break 'batches;
                }
            }
            turn += 1;
        }
        drop(prepared);
        let read_result = reader.join().unwrap_or(Ok(()));
        decided.and(read_result)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CoreConfig;

    #[test]
    fn lines_come_back_in_input_order_prepared_as_one_thread_prepares_them() {
        let dir = std::env::temp_dir().join(format!("syndic-parallel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("corpus.jsonl");
        let mut text = Vec::new();
        for record in crate::tools::corpus::Generator::new(3).with_invalid(true).take(1_500) {
            text.extend_from_slice(&record.line);
            text.push(b'\n');
        }
        std::fs::write(&path, &text).unwrap();
        let inputs = vec![Input::File(path)];
        let preparer = CoreConfig::default().engine().unwrap().preparer();
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let run = |threads| {
            let mut seen = Vec::new();
            prepare_lines::<InputError>(
                &inputs,
                &Default::default(),
                &preparer,
                threads,
                || at,
                |line| {
                    seen.push((line.line_no, format!("{:?}", line.prepared)));
                    Ok(())
                },
            )
            .unwrap();
            seen
        };
        let one = run(1);
        assert_eq!(one.len(), 1_500);
        assert!(one.windows(2).all(|w| w[0].0 < w[1].0), "input order");
        assert_eq!(run(3), one, "three threads give what one gives, in the same order");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
