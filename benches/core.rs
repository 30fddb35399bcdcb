//! Throughput of the pipeline core, stage by stage and whole, and memory per indexed article.
//!
//! Run: `cargo bench --bench core` (all), or name a group: `cargo bench --bench core -- index`.
//! Figures and the machine they came from are in BENCHMARKS.md.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use syndic::config::CoreConfig;
use syndic::pipeline::fingerprint::{FingerprintConfig, Fingerprinter};
use syndic::pipeline::index::postings::prefetch_line;
use syndic::pipeline::index::{EntryKeys, EventSpan, IndexConfig, NearDupIndex, Slot};
use syndic::pipeline::normalize::rules::BoilerplateRules;
use syndic::pipeline::normalize::{Normalized, Normalizer, Scratch};
use syndic::tools::corpus::{Generator, Rng};

fn bodies(n: usize) -> Vec<String> {
    Generator::new(17)
        .take(n)
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.line).expect("generated records are JSON");
            v["body"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

fn stages(c: &mut Criterion) {
    let records: Vec<Vec<u8>> = Generator::new(17).take(2000).map(|r| r.line).collect();
    let now = chrono::Utc::now();
    let mut group = c.benchmark_group("stages-parse");
    group.throughput(Throughput::Bytes(records.iter().map(Vec::len).sum::<usize>() as u64));
    group.bench_function("parse 2000 records", |b| {
        b.iter(|| {
            for r in &records {
                black_box(syndic::pipeline::record::parse(r, &Default::default(), now).is_ok());
            }
        })
    });
    // Its share of parsing: the scan for the input limits, which every record passes first.
    group.bench_function("input limits scan of 2000 records", |b| {
        let limits = Default::default();
        b.iter(|| {
            for r in &records {
                black_box(syndic::pipeline::record::check_shape(r, &limits).is_ok());
            }
        })
    });
    group.finish();
    let bodies = bodies(2000);
    let bytes: usize = bodies.iter().map(String::len).sum();
    let normalizer = Normalizer::new(BoilerplateRules::builtin());
    let mut group = c.benchmark_group("stages");
    group.throughput(Throughput::Bytes(bytes as u64));
    let mut scratch = Scratch::default();
    let mut out = Normalized::default();
    group.bench_function("normalize 2000 articles", |b| {
        b.iter(|| {
            for body in &bodies {
                normalizer.normalize_into(body, &mut scratch, &mut out);
                black_box(&out);
            }
        })
    });
    let bare = Normalizer::new(BoilerplateRules::none());
    group.bench_function("normalize 2000 articles, no boilerplate rules", |b| {
        b.iter(|| {
            for body in &bodies {
                bare.normalize_into(body, &mut scratch, &mut out);
                black_box(&out);
            }
        })
    });
    let normalized: Vec<Normalized> = bodies
        .iter()
        .map(|b| {
            // With the text, for the reference below.
            let mut n = Normalized {
                keep_text: true,
                ..Normalized::default()
            };
            normalizer.normalize_into(b, &mut scratch, &mut n);
            n
        })
        .collect();
    let fingerprinter = Fingerprinter::new(FingerprintConfig::default());
    let mut fp_scratch = syndic::pipeline::fingerprint::Scratch::default();
    group.bench_function("fingerprint 2000 articles (simhash + sketch)", |b| {
        b.iter(|| {
            for n in &normalized {
                black_box(fingerprinter.fingerprint_normalized(n, &mut fp_scratch));
            }
        })
    });
    group.bench_function("simhash crate 2000 articles (reference)", |b| {
        b.iter(|| {
            for n in &normalized {
                black_box(simhash::simhash(&n.text));
            }
        })
    });
    group.finish();
}

/// Anchor keys per article with the default configuration (7 anchors, 1 lead anchor and the
/// headline).
const ANCHOR_KEYS: usize = 9;

/// What the engine keeps of each entry for the index (`syndic::pipeline::index::EntryKeys`): its anchor
/// keys, which in the engine are the first values of the entry's sketch, an allocation of its
/// own behind the entry, as here.
#[derive(Default)]
#[allow(clippy::vec_box, reason = "the keys sit behind a pointer as in the engine")]
struct KeptKeys(Vec<Box<[u32; ANCHOR_KEYS]>>);

impl EntryKeys for KeptKeys {
    fn anchor_keys(&self, slot: Slot, keys: &mut [u32]) {
        keys.copy_from_slice(&self.0[slot as usize][..]);
    }

    fn prefetch(&self, slot: Slot, depth: u32) {
        // Depth 1: where the keys are; depth 0: the keys.
        match (self.0.get(slot as usize), depth) {
            (Some(entry), 0) => prefetch_line(&**entry),
            (Some(entry), _) => prefetch_line(entry),
            (None, _) => {}
        }
    }
}

impl KeptKeys {
    fn insert(&mut self, index: &mut NearDupIndex, simhash: u64, anchors: &[u32; ANCHOR_KEYS], t: i64) {
        let span = Some(EventSpan { from: t, until: t });
        let slot = index.insert(simhash, anchors, span, self) as usize;
        if slot == self.0.len() {
            self.0.push(Box::new(*anchors));
        } else {
            *self.0[slot] = *anchors;
        }
    }

    fn bytes_per_entry() -> usize {
        std::mem::size_of::<[u32; ANCHOR_KEYS]>()
    }
}

/// An index filled with `size` random entries, one second apart, whose capacity is exactly
/// `size` entries: each insert in the benchmark evicts one, so the size stays put. A table may
/// still be growing when the index reaches `size`, holding both its parts while its postings
/// move; the index is churned at its size until that is done, so that the benchmarks measure
/// it settled. Returns the next event time.
fn filled_index(size: usize, rng: &mut Rng) -> (NearDupIndex, KeptKeys, i64) {
    let config = IndexConfig {
        capacity: size,
        ..IndexConfig::default()
    };
    assert_eq!(config.anchor_keys(), ANCHOR_KEYS);
    let mut index = NearDupIndex::new(config);
    let mut keys = KeptKeys::default();
    let mut evicted = Vec::new();
    let mut anchors = [0u32; ANCHOR_KEYS];
    let mut t = 0;
    while t < size as i64 || index.is_growing() {
        if t == size as i64 {
            eprintln!(
                "index of {size} entries, a table growing: {:.1} bytes/article",
                index.heap_bytes() as f64 / index.len() as f64
            );
        }
        anchors.iter_mut().for_each(|a| *a = rng.next_u64() as u32);
        index.make_room_for_one(&mut evicted, &keys);
        keys.insert(&mut index, rng.next_u64(), &anchors, t);
        t += 1;
    }
    (index, keys, t)
}

/// What the engine does in the index per article: make room, look up, insert.
fn index_step(
    (index, keys): &mut (NearDupIndex, KeptKeys),
    simhash: u64,
    anchors: &[u32; ANCHOR_KEYS],
    t: i64,
    candidates: &mut Vec<Slot>,
    evicted: &mut Vec<Slot>,
) {
    candidates.clear();
    evicted.clear();
    index.make_room_for_one(evicted, keys);
    index.candidates(simhash, anchors, Some(EventSpan { from: t, until: t }), candidates);
    keys.insert(index, simhash, anchors, t);
    black_box(&candidates);
}

fn index(c: &mut Criterion) {
    let mut group = c.benchmark_group("index");
    for size in [1_000_000usize, 10_000_000] {
        // Built on first use, so that running another group does not pay for it.
        let mut built: Option<((NearDupIndex, KeptKeys), Rng)> = None;
        let t = std::cell::Cell::new(0);
        let mut candidates = Vec::new();
        let mut evicted = Vec::new();
        let mut anchors = [0u32; ANCHOR_KEYS];
        let build = || {
            let mut rng = Rng::new(size as u64);
            let (index, keys, next) = filled_index(size, &mut rng);
            t.set(next);
            eprintln!(
                "index of {size} entries, settled: {:.1} bytes/article (SimHash tables {:.1}, anchors {:.1}); \
                 the {} bytes of anchor keys per article are the caller's",
                index.heap_bytes() as f64 / index.len() as f64,
                index.simhash_heap_bytes() as f64 / index.len() as f64,
                index.anchor_heap_bytes() as f64 / index.len() as f64,
                KeptKeys::bytes_per_entry(),
            );
            ((index, keys), rng)
        };
        group.throughput(Throughput::Elements(1));
        // A lookup alone, as a reader of the index sees it: the index does not change.
        group.bench_function(format!("query at {size} entries"), |b| {
            let ((index, _), rng) = built.get_or_insert_with(build);
            b.iter(|| {
                anchors.iter_mut().for_each(|a| *a = rng.next_u64() as u32);
                candidates.clear();
                index.candidates(rng.next_u64(), &anchors, None, &mut candidates);
                black_box(&candidates);
            })
        });
        // The engine's decide loop with other work between lookups (publishing, in the Kafka
        // worker), without and with the next article's cells requested one article ahead
        // (`NearDupIndex::prefetch`), as the worker does when the next record is prepared.
        for prefetch in [false, true] {
            let name = if prefetch { ", next prefetched" } else { "" };
            group.bench_function(
                format!("query+insert between other work{name} at {size} entries"),
                |b| {
                    let (index, rng) = built.get_or_insert_with(build);
                    let mut next = (rng.next_u64(), [0u32; ANCHOR_KEYS]);
                    b.iter(|| {
                        let (simhash, anchors) = next;
                        next.0 = rng.next_u64();
                        next.1.iter_mut().for_each(|a| *a = rng.next_u64() as u32);
                        if prefetch {
                            index.0.prefetch(next.0, &next.1, &index.1);
                        }
                        // About half a microsecond of work that touches no memory.
                        black_box((0..black_box(1500u64)).fold(1u64, |a, x| a.wrapping_mul(x | 1)));
                        index_step(index, simhash, &anchors, t.get(), &mut candidates, &mut evicted);
                        t.set(t.get() + 1);
                    })
                },
            );
        }
        // The same in a tight loop.
        group.bench_function(format!("query+insert at {size} entries"), |b| {
            let (index, rng) = built.get_or_insert_with(build);
            b.iter(|| {
                anchors.iter_mut().for_each(|a| *a = rng.next_u64() as u32);
                let simhash = rng.next_u64();
                index_step(index, simhash, &anchors, t.get(), &mut candidates, &mut evicted);
                t.set(t.get() + 1);
            })
        });
    }
    group.finish();
}

fn whole_core(c: &mut Criterion) {
    const N: usize = 20_000;
    let records: Vec<Vec<u8>> = Generator::new(23).take(N).map(|r| r.line).collect();
    let avg = records.iter().map(Vec::len).sum::<usize>() / N;
    let mut group = c.benchmark_group("core");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));
    let now = chrono::Utc::now();
    group.bench_function(format!("engine.process {N} articles (~{avg} B)"), |b| {
        b.iter_batched(
            || CoreConfig::default().engine().expect("default config is valid"),
            |mut engine| {
                for r in &records {
                    black_box(engine.process(r, now));
                }
                engine
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
    let mut engine = CoreConfig::default().engine().expect("default config is valid");
    for r in &records {
        engine.process(r, now);
    }
    let live = engine.index().len() as f64;
    eprintln!(
        "after {N} articles: index {:.1} bytes/article, verification sketches {:.1} bytes/article",
        engine.index().heap_bytes() as f64 / live,
        engine.sketch_bytes() as f64 / live
    );
}

/// The decide role's work from the fingerprint topic (docs/state.md): reading a fingerprint
/// record back, and deciding from read-back records (a restore or a standby replays that).
fn from_log(c: &mut Criterion) {
    use syndic::pipeline::log_record::{decode, encode};
    use syndic::pipeline::messages::Prepared;
    const N: usize = 20_000;
    let now = chrono::Utc::now();
    let mut preparer = CoreConfig::default()
        .engine()
        .expect("default config is valid")
        .preparer();
    let log: Vec<Vec<u8>> = Generator::new(23)
        .take(N)
        .filter_map(|r| match preparer.prepare(&r.line, now) {
            Prepared::Article { article, fingerprint } => {
                let mut bytes = Vec::new();
                encode(&article, &fingerprint, &mut bytes);
                Some(bytes)
            }
            Prepared::Invalid { .. } => None,
        })
        .collect();
    let avg = log.iter().map(Vec::len).sum::<usize>() / log.len();
    let mut group = c.benchmark_group("log");
    group.sample_size(10);
    group.throughput(Throughput::Elements(log.len() as u64));
    group.bench_function(format!("decode {} fingerprint records (~{avg} B)", log.len()), |b| {
        b.iter(|| {
            for bytes in &log {
                black_box(decode(bytes).expect("encoded above"));
            }
        })
    });
    group.bench_function(format!("decode and decide {} fingerprint records", log.len()), |b| {
        b.iter_batched(
            || CoreConfig::default().engine().expect("default config is valid"),
            |mut engine| {
                for bytes in &log {
                    let (article, fingerprint) = decode(bytes).expect("encoded above");
                    black_box(engine.decide(Prepared::Article { article, fingerprint }));
                }
                engine
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, stages, index, whole_core, from_log);
criterion_main!(benches);
