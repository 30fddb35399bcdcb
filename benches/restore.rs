//! A decider's restore without the broker: N generated articles prepared and encoded as
//! fingerprint records (not timed), each decoded and decided quietly by an engine sized for N
//! at once (timed), as `worker::standby::Follower::restore` does with what it reads. What the
//! restore costs on the deciding thread alone; `scripts/bench-e2e` measures it through the
//! broker. `cargo bench --bench restore -- --articles N` (index.capacity = N).

use std::time::{Duration, Instant};
use syndic::config::CoreConfig;
use syndic::pipeline::log_record::{decode, encode};
use syndic::pipeline::messages::Prepared;
use syndic::tools::corpus::Generator;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let articles: usize = args
        .iter()
        .position(|a| a == "--articles")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut config = CoreConfig::default();
    config.index.capacity = articles;
    let mut engine = config.engine().expect("default config is valid");
    let mut preparer = engine.preparer();
    let now = chrono::Utc::now();
    engine.reserve(articles);
    let mut timed = Duration::ZERO;
    let mut decided = 0u64;
    let mut generated = Generator::new(81).take(articles).peekable();
    // Encoded a batch at a time, then decided back to back as a restore reads them: preparing
    // between decisions would evict the engine's lines from the caches and time that too.
    let mut batch: Vec<Vec<u8>> = Vec::new();
    while generated.peek().is_some() {
        batch.clear();
        for next in generated.by_ref().take(20_000) {
            if let Prepared::Article { article, fingerprint } = preparer.prepare(&next.line, now) {
                let mut record = Vec::new();
                encode(&article, &fingerprint, &mut record);
                batch.push(record);
            }
        }
        let started = Instant::now();
        for record in &batch {
            let (article, fingerprint) = decode(record).expect("encoded above");
            engine.decide_quietly(Prepared::Article { article, fingerprint });
        }
        timed += started.elapsed();
        decided += batch.len() as u64;
    }
    let peak = syndic::worker::metrics::process_memory("VmHWM").unwrap_or(0);
    println!(
        "restore in process: {decided} fingerprint records decoded and decided in {:.1} s ({:.2} µs each, {:.0}/s); {} held; peak RSS {} MB ({:.0} B per held article)",
        timed.as_secs_f64(),
        timed.as_secs_f64() * 1e6 / decided.max(1) as f64,
        decided as f64 / timed.as_secs_f64().max(1e-9),
        engine.index().len(),
        peak >> 20,
        peak as f64 / engine.index().len().max(1) as f64
    );
}
