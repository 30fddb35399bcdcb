//! The `syndic` command line: a thin shell around the library.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use syndic::config::CoreConfig;

#[derive(Parser)]
#[command(name = "syndic", version, about = "Near-duplicate detection for wire articles: one canonical story per syndication cluster.", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Deduplicate JSONL articles from a file or stdin: story events to --output, one decision
    /// per input record (in input order) to --decisions, a summary to stderr.
    Dedup {
        /// Articles, one JSON object per line: files, directories (their files in name order),
        /// or `-` for stdin; each plain, gzip or zstd compressed (told by its first bytes).
        #[arg(long, num_args = 1.., default_value = "-")]
        input: Vec<String>,
        /// Story events as JSONL (`-` for stdout).
        #[arg(long, default_value = "-")]
        output: String,
        /// Decisions as JSONL (`-` for stdout).
        #[arg(long)]
        decisions: String,
        /// Configuration file (TOML); built-in defaults when omitted, see config/syndic.toml.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Threads that prepare (parse, normalize, fingerprint) while one decides, in input
        /// order: the output is the same for any number. 0: one per core.
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Score the engine on labelled articles: pair precision, recall, F1, and the errors. The
    /// articles are fed as `syndic dedup` feeds them, in the file's own order unless --shuffle
    /// or --sort-by-time says otherwise.
    Eval {
        /// Articles as JSONL, each with a `cluster` field (null: a singleton).
        #[arg(long)]
        input: PathBuf,
        /// Feed the articles in a shuffled order, from this seed: a figure that holds in one
        /// order only is not a result.
        #[arg(long, conflicts_with = "sort_by_time")]
        shuffle: Option<u64>,
        /// Feed the articles sorted by published_at (undated last), for comparison: a stream
        /// cannot be sorted, so this is not what `dedup`, `run` or `replay` do.
        #[arg(long)]
        sort_by_time: bool,
        /// Write the decisions, one per article in the order fed, as `syndic dedup` does.
        #[arg(long)]
        decisions: Option<String>,
        /// Labelled pairs as JSONL `{a, b, label}`; without it all pairs are scored by cluster.
        #[arg(long)]
        pairs: Option<PathBuf>,
        /// The pair label that means "copies".
        #[arg(long, default_value = "duplicate")]
        positive_label: String,
        /// Split the articles over this many deciders, each with a view of its own, as a
        /// fingerprint topic partitioned by --partition-by would: measures the copies that
        /// splitting the decider misses (docs/state.md, "Scaling past one decider").
        #[arg(long, default_value_t = 1)]
        deciders: usize,
        /// The fingerprint key that picks an article's decider with --deciders: `title` (the
        /// headline's key) or `lead` (the lead's smallest anchor).
        #[arg(long, default_value = "title", value_parser = ["title", "lead"])]
        partition_by: String,
        /// Configuration file (TOML); built-in defaults when omitted, see config/syndic.toml.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write a deterministic synthetic corpus of wire stories, copies and template look-alikes.
    Generate {
        /// Number of articles.
        #[arg(long, default_value_t = 1000)]
        articles: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Include invalid records (a few percent), as a firehose would.
        #[arg(long)]
        with_invalid: bool,
        /// Output JSONL (`-` for stdout).
        #[arg(long, default_value = "-")]
        output: String,
    },
    /// Run the Kafka worker: consume articles, publish decisions, story events and dead
    /// letters, store offsets only after the broker acknowledged every output. Stops cleanly on
    /// SIGTERM/SIGINT. Settings: the config file, then SYNDIC_<SECTION>_<KEY> environment
    /// variables (e.g. SYNDIC_KAFKA_BROKERS), then these flags.
    Run {
        /// Configuration file (TOML); built-in defaults when omitted, see config/syndic.toml.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Kafka bootstrap servers (kafka.brokers).
        #[arg(long)]
        brokers: Option<String>,
        /// Consumer group (kafka.group_id).
        #[arg(long)]
        group_id: Option<String>,
        /// Create missing topics at start (kafka.create_topics).
        #[arg(long)]
        create_topics: bool,
        /// Exit once no record arrived for this many seconds (kafka.stop_after_idle_secs); for backfills.
        #[arg(long)]
        stop_after_idle_secs: Option<u64>,
        /// Which stages to run (kafka.role): `both` (the default: raw articles to decisions through
        /// the fingerprint topic; any number of replicas share one dedup view), `prepare` (raw
        /// articles to fingerprint records; scale it with the input's partitions), `decide`
        /// (fingerprint records to decisions; one decides, the others stand by) or
        /// `standalone` (one process with a view of its own; one replica only). See
        /// docs/state.md.
        #[arg(long, value_parser = ["both", "prepare", "decide", "standalone"])]
        role: Option<String>,
    },
    /// Backfill: decide a range of a topic again, with a dedup view of its own, and exit at the
    /// range's end. The range is frozen at start, so producers writing on do not prolong it. It
    /// reads by assignment: no consumer group is joined, committed to or left behind, so the
    /// live workers are untouched. Partitions are merged in (Kafka timestamp, payload hash,
    /// partition, offset) order and an undated article takes its record's timestamp: two
    /// replays of a range write the same bytes, whatever the topic's partition count. Say where it writes: --output-suffix (topics of its own), --output-dir
    /// (files), or --allow-live-output. Interrupted (SIGTERM, a crash), the same command
    /// resumes from its checkpoint and writes what an uninterrupted run would. A progress bar
    /// on a terminal, a log line every 5 s otherwise. See docs/worker.md, "Replays".
    Replay {
        /// Configuration file (TOML); built-in defaults when omitted, see config/syndic.toml.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Kafka bootstrap servers (kafka.brokers).
        #[arg(long)]
        brokers: Option<String>,
        /// Topic to replay (kafka.input_topic).
        #[arg(long, conflicts_with = "input")]
        input_topic: Option<String>,
        /// Replay files instead of a topic: JSONL files, directories (their files in name
        /// order), plain, gzip or zstd; with --output-dir no broker is needed.
        #[arg(long, num_args = 1.., conflicts_with_all = ["from", "to"])]
        input: Vec<String>,
        /// The ingest time of lines of files (an undated article's date): an RFC 3339 time, so
        /// that two replays of the same files write the same bytes; the first start's time when
        /// omitted (kept in the checkpoint).
        #[arg(long, requires = "input")]
        ingest_time: Option<chrono::DateTime<chrono::FixedOffset>>,
        /// Start of the range: earliest, latest, offsets per partition (0:1200,1:900), or an
        /// RFC 3339 time (the first record at or after it, by the broker's offsets-for-times).
        #[arg(long, default_value = "earliest")]
        from: syndic::worker::replay::Bound,
        /// End of the range, exclusive, in the same forms (a time: the records before it).
        /// `latest` is the end offsets when the replay starts.
        #[arg(long, default_value = "latest")]
        to: syndic::worker::replay::Bound,
        /// Write to the configured output topics with this suffix (created when missing), e.g.
        /// `.backfill`: kafka.decisions_topic + suffix, and so on.
        #[arg(long, conflicts_with = "output_dir")]
        output_suffix: Option<String>,
        /// Write decisions.jsonl, stories.jsonl and dead-letters.jsonl into this directory.
        #[arg(long)]
        output_dir: Option<PathBuf>,
        /// Write into the live output topics (the ones `run` writes), which live consumers read.
        #[arg(long)]
        allow_live_output: bool,
        /// The checkpoint file (default: checkpoint.json in --output-dir, or
        /// syndic-replay-<topic><suffix>.checkpoint.json here); removed once the range is done.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// How often outputs are flushed and the checkpoint written, in milliseconds.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
        checkpoint_interval_ms: u64,
        /// Threads that prepare (parse, normalize, fingerprint) while one decides, in merge
        /// order: the output is the same for any number. 0: one per core.
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Serve /metrics, /healthz and /readyz on this address; none by default, so that a
        /// replay runs beside a live worker on the same host.
        #[arg(long)]
        http_address: Option<String>,
    },
    /// Run the worker against an in-process Kafka on a generated sample and print the stories:
    /// needs nothing installed.
    Demo {
        /// Articles to generate (some invalid, to show the dead-letter path).
        #[arg(long, default_value_t = 300)]
        articles: usize,
    },
    /// Show what normalization does to each article: which boilerplate rule dropped which
    /// paragraph, which spans were stripped, and the tokens left to match on. For writing and
    /// checking rules (config/boilerplate.toml) before scoring them with `eval`. With --pair,
    /// show instead why two articles of the file are or are not copies.
    Explain {
        /// Articles, one JSON object per line (`-` for stdin).
        #[arg(long, default_value = "-")]
        input: String,
        /// Two article ids: print the evidence verification weighs for them (shared share of
        /// each text, where the shared part sits, quotes, figures, names, headline, dates)
        /// and the verdict it gives.
        #[arg(long, num_args = 2, value_names = ["A", "B"])]
        pair: Option<Vec<String>>,
        /// Configuration file (TOML); its `normalize.rules_file` is the rules explained.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate a configuration file (with SYNDIC_* overrides) and print the effective
    /// configuration.
    CheckConfig {
        /// Configuration file (TOML); built-in defaults when omitted, see config/syndic.toml.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn load_config(path: &Option<PathBuf>) -> Result<CoreConfig> {
    Ok(CoreConfig::load_with_env(path.as_deref())?)
}

fn init_logging(config: &syndic::config::LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs the Kafka worker with the metrics and health endpoints until it stops.
fn run_worker(config: CoreConfig) -> Result<()> {
    config.validate()?;
    init_logging(&config.log);
    runtime()?.block_on(async {
        let telemetry = syndic::worker::http::Telemetry::new()?;
        if !config.http.address.is_empty() {
            syndic::worker::http::serve(&config.http.address, telemetry.clone()).await?;
        }
        let (trigger, shutdown) = syndic::worker::shutdown::channel();
        tokio::spawn(trigger.fire_on_signals());
        let linger = std::time::Duration::from_millis(config.http.linger_after_stop_ms);
        syndic::worker::run::run(config, shutdown, telemetry).await?;
        tokio::time::sleep(linger).await;
        anyhow::Ok(())
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Writes one line of a decisions file: the decision and the input line it is about.
fn write_decision(
    out: &mut impl Write,
    decision: &syndic::pipeline::messages::Decision,
    input: &str,
    line: u64,
) -> Result<()> {
    let placed = syndic::pipeline::messages::PlacedDecision {
        decision,
        position: syndic::pipeline::messages::Position::Line { input, line },
    };
    serde_json::to_writer(&mut *out, &placed)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Whether `path` is a device such as /dev/null, which two outputs may share.
fn is_device(path: &str) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device())
}

fn open_output(path: &str) -> Result<Box<dyn Write>> {
    if path == "-" {
        Ok(Box::new(BufWriter::new(std::io::stdout().lock())))
    } else {
        let file = std::fs::File::create(path).with_context(|| format!("cannot create output {path}"))?;
        Ok(Box::new(BufWriter::with_capacity(1 << 20, file)))
    }
}

/// Calls `f` with each record of the JSONL `input` (`-` for stdin; plain, gzip or zstd) and its
/// line number: every line without its line end, blank ones too, as `dedup` reads them.
fn for_each_record(input: &str, mut f: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
    use syndic::tools::input;
    let inputs = input::expand(&[input.to_string()])?;
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    input::for_each_line::<anyhow::Error>(&inputs, &read, |_, line_no, record| f(line_no, record))
}

fn dedup(input: &[String], output: &str, decisions: &str, threads: usize, config: CoreConfig) -> Result<()> {
    use syndic::tools::input;
    let mut engine = config.engine()?;
    if decisions == output && !is_device(output) {
        anyhow::bail!(
            "--output and --decisions must differ (both are {decisions}): the two streams would be interleaved in one file; name two files, or /dev/null for the one you do not need"
        );
    }
    let inputs = input::expand(input)?;
    let mut events = open_output(output)?;
    let mut decisions_out = open_output(decisions)?;
    let started = std::time::Instant::now();
    let mut event_json = Vec::new();
    let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut progress = ByteProgress::new(input::total_bytes(&inputs));
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let preparer = engine.preparer();
    const SHOWN_INVALID: u64 = 20;
    let mut invalid_shown = 0u64;
    syndic::tools::parallel::prepare_lines::<anyhow::Error>(
        &inputs,
        &read,
        &preparer,
        threads,
        chrono::Utc::now,
        |line| {
            let outcome = engine.decide(line.prepared);
            if let Some(reason) = &outcome.decision.reason {
                // The first few in full; a file of bad lines would otherwise bury the summary.
                invalid_shown += 1;
                if invalid_shown <= SHOWN_INVALID {
                    eprintln!("syndic: {}:{}: invalid record: {reason}", line.input, line.line_no);
                }
            }
            progress.update(&read, engine.counters().records);
            write_decision(&mut decisions_out, &outcome.decision, &line.input, line.line_no)?;
            if let Some(event) = &outcome.event {
                event_json.clear();
                event.write_json(&mut event_json)?;
                event_json.push(b'\n');
                events.write_all(&event_json)?;
            }
            Ok(())
        },
    )?;
    events.flush()?;
    decisions_out.flush()?;
    progress.finish();
    let c = engine.counters();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "syndic: {} records in {:.2}s ({:.0}/s): {} new stories, {} duplicates ({} by their headline), {} exact duplicates, {} invalid; {} open stories, {} indexed, {:.1} candidates verified per article",
        c.records,
        secs,
        c.records as f64 / secs.max(1e-9),
        c.new_story,
        c.duplicate,
        c.headline_matches,
        c.exact_duplicate,
        c.invalid,
        engine.open_stories(),
        engine.index().len(),
        c.candidates_checked as f64 / c.records.max(1) as f64
    );
    if invalid_shown > SHOWN_INVALID {
        eprintln!(
            "syndic: {} more invalid records not shown; each has its reason and position in the decisions output",
            invalid_shown - SHOWN_INVALID
        );
    }
    let indexed = engine.index().len();
    if let Some(peak) = syndic::worker::metrics::process_memory("VmHWM") {
        // What sizing a deployment needs: the window's articles, each story's canonical
        // record as received, and the allocator's slack (BENCHMARKS.md, "Whole engine:
        // memory by retention"). Below some thousands of articles the share would be mostly
        // the process's own megabytes, so it is left out.
        let share = if indexed >= 10_000 {
            format!(", {:.1} KB per indexed article", peak as f64 / 1024.0 / indexed as f64)
        } else {
            String::new()
        };
        eprintln!("syndic: peak resident memory {} MB{share}", peak >> 20);
    }
    if c.dated_ahead > 0 {
        eprintln!(
            "syndic: {} articles were dated more than index.max_ahead_secs after they arrived (the clock, for this command) and were compared as undated articles, with every held one; articles dated later than today on purpose need a larger index.max_ahead_secs",
            c.dated_ahead
        );
    }
    Ok(())
}

/// Progress over bytes read: a bar on a terminal, a line every 5 s otherwise, nothing for
/// standard input (its size is unknown) unless on a terminal.
struct ByteProgress {
    bar: Option<indicatif::ProgressBar>,
    total: Option<u64>,
    last_line: std::time::Instant,
    started: std::time::Instant,
}

impl ByteProgress {
    fn new(total: Option<u64>) -> Self {
        let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
            let bar = match total {
                Some(total) => indicatif::ProgressBar::new(total),
                None => indicatif::ProgressBar::new_spinner(),
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes}  {bytes_per_sec}  ETA {eta}  {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Self {
            bar,
            total,
            last_line: std::time::Instant::now(),
            started: std::time::Instant::now(),
        }
    }

    fn update(&mut self, read: &std::sync::atomic::AtomicU64, records: u64) {
        if records % 512 != 0 {
            return;
        }
        let bytes = read.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_position(bytes);
            bar.set_message(format!("{records} records"));
        } else if let Some(total) = self.total.filter(|_| self.last_line.elapsed().as_secs() >= 5) {
            self.last_line = std::time::Instant::now();
            let share = bytes as f64 / total.max(1) as f64;
            let eta = self.started.elapsed().as_secs_f64() * (1.0 - share) / share.max(1e-9);
            eprintln!(
                "syndic: {records} records, {:.0}% of the input read, about {eta:.0} s left",
                share * 100.0
            );
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn explain(input: &str, config: &CoreConfig) -> Result<()> {
    let explainer = syndic::tools::explain::RulesExplainer::new(config.rules()?, config.input.clone());
    let mut out = BufWriter::new(std::io::stdout().lock());
    for_each_record(input, |line_no, record| {
        Ok(explainer.explain(line_no, record, &mut out)?)
    })?;
    out.flush()?;
    Ok(())
}

/// `syndic explain --pair A B`: the evidence for two articles of `input` and the verdict.
fn explain_pair(input: &str, a: &str, b: &str, config: CoreConfig) -> Result<()> {
    let mut pair = syndic::tools::explain::PairExplainer::new(config.engine()?.preparer(), a, b);
    for_each_record(input, |line_no, record| {
        pair.offer(line_no, record);
        Ok(())
    })?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    pair.report(&config.pipeline(), &mut out)
        .with_context(|| format!("explaining {a} and {b} in {input}"))?;
    out.flush()?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // The whole cause chain on one line, without a backtrace; our errors already quote
            // their source, so a cause whose text is already there is not repeated.
            let mut message = error.to_string();
            for cause in error.chain().skip(1) {
                let cause = cause.to_string();
                if !message.contains(&cause) {
                    message = format!("{message}: {cause}");
                }
            }
            eprintln!("syndic: error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Dedup {
            input,
            output,
            decisions,
            config,
            threads,
        } => dedup(&input, &output, &decisions, threads, load_config(&config)?),
        Command::Eval {
            input,
            shuffle,
            sort_by_time,
            decisions,
            pairs,
            positive_label,
            deciders,
            partition_by,
            config,
        } => {
            let order = match (shuffle, sort_by_time) {
                (Some(seed), _) => syndic::tools::eval::Order::Shuffle(seed),
                (None, true) => syndic::tools::eval::Order::SortByTime,
                (None, false) => syndic::tools::eval::Order::File,
            };
            let config = load_config(&config)?;
            let articles = std::fs::read(&input).with_context(|| format!("cannot read {}", input.display()))?;
            let pairs = match &pairs {
                Some(path) => {
                    let text =
                        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
                    let name = path.display().to_string();
                    let parsed = syndic::tools::eval::read_pairs(&name, &text)?;
                    Some((name, parsed))
                }
                None => None,
            };
            let report = syndic::tools::eval::evaluate(
                &config,
                &articles,
                pairs.as_ref().map(|(n, p)| (n.as_str(), p.clone())),
                &positive_label,
                order,
                (deciders > 1).then_some(syndic::tools::eval::Partitioning {
                    deciders,
                    key: match partition_by.as_str() {
                        "lead" => syndic::tools::eval::PartitionKey::Lead,
                        _ => syndic::tools::eval::PartitionKey::Title,
                    },
                }),
            )?;
            if let Some(path) = &decisions {
                let mut out = open_output(path)?;
                let input = input.display().to_string();
                for (line, decision) in &report.decisions {
                    write_decision(&mut out, decision, &input, *line)?;
                }
                out.flush()?;
            }
            print!("{}", report.render());
            Ok(())
        }
        Command::Generate {
            articles,
            seed,
            with_invalid,
            output,
        } => {
            let mut out = open_output(&output)?;
            let corpus = syndic::tools::corpus::Generator::new(seed).with_invalid(with_invalid);
            for record in corpus.take(articles) {
                out.write_all(&record.line)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            Ok(())
        }
        Command::Run {
            config,
            brokers,
            group_id,
            create_topics,
            stop_after_idle_secs,
            role,
        } => {
            let mut config = load_config(&config)?;
            if let Some(brokers) = brokers {
                config.kafka.brokers = brokers;
            }
            if let Some(group_id) = group_id {
                config.kafka.group_id = group_id;
            }
            config.kafka.create_topics |= create_topics;
            if let Some(secs) = stop_after_idle_secs {
                config.kafka.stop_after_idle_secs = secs;
            }
            if let Some(role) = role {
                config.kafka.role = match role.as_str() {
                    "prepare" => syndic::worker::config::Role::Prepare,
                    "decide" => syndic::worker::config::Role::Decide,
                    "standalone" => syndic::worker::config::Role::Standalone,
                    _ => syndic::worker::config::Role::Both,
                };
            }
            run_worker(config)
        }
        Command::Replay {
            config,
            brokers,
            input_topic,
            input,
            ingest_time,
            from,
            to,
            output_suffix,
            output_dir,
            allow_live_output,
            checkpoint,
            checkpoint_interval_ms,
            threads,
            http_address,
        } => {
            use syndic::worker::replay::{ReplayInput, ReplayOptions, Sink};
            let mut config = load_config(&config)?;
            if let Some(brokers) = brokers {
                config.kafka.brokers = brokers;
            }
            if let Some(topic) = input_topic {
                config.kafka.input_topic = topic;
            }
            config.validate()?;
            let sink = match (output_dir, output_suffix) {
                (Some(dir), _) => Sink::Files { dir },
                (None, Some(suffix)) if !suffix.is_empty() => Sink::Topics { suffix },
                _ if allow_live_output => Sink::Topics { suffix: String::new() },
                _ => anyhow::bail!(
                    "say where the replay writes: --output-suffix .backfill (topics of its own), --output-dir DIR (files), or --allow-live-output (the live topics, which live consumers read)"
                ),
            };
            let checkpoint = checkpoint.unwrap_or_else(|| match &sink {
                Sink::Files { dir } => dir.join("checkpoint.json"),
                Sink::Topics { suffix } => PathBuf::from(format!(
                    "syndic-replay-{}{suffix}.checkpoint.json",
                    config.kafka.input_topic
                )),
            });
            let input = if input.is_empty() {
                ReplayInput::Topic { from, to }
            } else {
                ReplayInput::Files(syndic::tools::input::expand(&input)?)
            };
            let options = ReplayOptions {
                input,
                ingest_time: ingest_time.map(|t| t.with_timezone(&chrono::Utc)),
                sink,
                checkpoint,
                checkpoint_interval: std::time::Duration::from_millis(checkpoint_interval_ms),
                progress_bar: std::io::IsTerminal::is_terminal(&std::io::stderr()),
                threads: match threads {
                    0 => std::thread::available_parallelism().map_or(1, usize::from),
                    n => n,
                },
            };
            init_logging(&config.log);
            let summary = runtime()?.block_on(async {
                let telemetry = syndic::worker::http::Telemetry::new()?;
                if let Some(address) = http_address.filter(|a| !a.is_empty()) {
                    syndic::worker::http::serve(&address, telemetry.clone()).await?;
                }
                telemetry.health.set_ready(true);
                let (trigger, shutdown) = syndic::worker::shutdown::channel();
                tokio::spawn(trigger.fire_on_signals());
                anyhow::Ok(syndic::worker::replay::replay(config, options, shutdown, telemetry).await?)
            })?;
            eprintln!(
                "syndic: replay of {} records: {} written, {} decided again from the checkpoint, {} invalid",
                summary.records, summary.written, summary.resumed, summary.invalid
            );
            if !summary.complete {
                anyhow::bail!("replay interrupted before the end of its range; run the same command again to resume");
            }
            Ok(())
        }
        Command::Demo { articles } => {
            init_logging(&syndic::config::LogConfig {
                level: "error".to_string(),
                ..Default::default()
            });
            let report = runtime()?.block_on(async {
                let telemetry = syndic::worker::http::Telemetry::new()?;
                let address = syndic::config::HttpConfig::default().address;
                // The endpoints serve during the demo too; a taken port only costs them.
                if let Err(error) = syndic::worker::http::serve(&address, telemetry.clone()).await {
                    eprintln!("syndic: {error}");
                }
                anyhow::Ok(syndic::worker::demo::run(articles, telemetry).await?)
            })?;
            let s = report.summary;
            println!(
                "syndic demo: the worker ran against an in-process Kafka with {} generated articles\n",
                report.produced
            );
            let mut stories = report.stories.clone();
            stories.sort_by(|a, b| b.member_count.cmp(&a.member_count).then(a.story_id.cmp(&b.story_id)));
            println!("largest stories (canonical source: title; members):");
            for story in stories.iter().take(8) {
                let title: String = story.canonical_title.chars().take(60).collect();
                println!(
                    "  {} v{}  {}: {title}",
                    story.story_id, story.version, story.canonical_source
                );
                println!("      {}", story.members.join(", "));
            }
            println!(
                "\narticles {}  stories {}  new {}  duplicates {}  exact duplicates {}  dead-lettered {}  confirmed {}",
                s.consumed,
                report.stories.len(),
                s.new_story,
                s.duplicate,
                s.exact_duplicate,
                s.dead_lettered,
                s.completed
            );
            Ok(())
        }
        Command::Explain { input, pair, config } => match pair.as_deref() {
            Some([a, b]) => explain_pair(&input, a, b, load_config(&config)?),
            _ => explain(&input, &load_config(&config)?),
        },
        Command::CheckConfig { config } => {
            let config = load_config(&config)?;
            config.rules()?;
            print!("{}", toml::to_string_pretty(&config.redacted())?);
            Ok(())
        }
    }
}
