//! The `syndic` binary as a user runs it.

use std::process::Command;

fn syndic() -> Command {
    Command::new(env!("CARGO_BIN_EXE_syndic"))
}

/// `syndic dedup` of `input` into `output` (story events) and `decisions`, with `extra` options.
fn dedup(
    input: impl AsRef<std::ffi::OsStr>,
    output: impl AsRef<std::ffi::OsStr>,
    decisions: impl AsRef<std::ffi::OsStr>,
    extra: &[&str],
) -> std::process::Output {
    syndic()
        .arg("dedup")
        .args(extra)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .arg("--decisions")
        .arg(decisions)
        .output()
        .unwrap()
}

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_bundled_sample_is_what_the_generator_makes() {
    let out = syndic()
        .args(["generate", "--articles", "300", "--seed", "42", "--with-invalid"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let bundled = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample.jsonl")).unwrap();
    assert!(
        out.stdout == bundled,
        "regenerate tests/data/sample.jsonl with the command in README.md"
    );
}

#[test]
fn dedup_writes_one_decision_per_record_in_order_and_events_per_story_change() {
    let dir = std::env::temp_dir().join(format!("syndic-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (events, decisions) = (dir.join("stories.jsonl"), dir.join("decisions.jsonl"));
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample.jsonl");
    let out = dedup(sample, &events, &decisions, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("300 records"), "summary missing: {stderr}");
    if cfg!(target_os = "linux") {
        assert!(stderr.contains("peak resident memory"), "memory missing: {stderr}");
    }

    let input: Vec<&[u8]> = std::fs::read(sample)
        .unwrap()
        .leak()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let decisions = lines(&decisions);
    assert_eq!(decisions.len(), input.len());
    let mut invalid = 0;
    for (record, decision) in input.iter().zip(&decisions) {
        let verdict = decision["verdict"].as_str().unwrap();
        if verdict == "invalid" {
            invalid += 1;
            assert!(decision["reason"].as_str().is_some_and(|r| !r.is_empty()));
            continue;
        }
        let record: serde_json::Value = serde_json::from_slice(record).unwrap();
        assert_eq!(decision["article_id"], record["id"], "decisions keep input order");
        assert!(decision["story_id"].as_str().unwrap().starts_with("st-"));
        if verdict == "duplicate" {
            assert!(decision["matched_article_id"].is_string() && decision["score"].is_number());
        }
    }
    assert!(invalid > 0, "the sample carries invalid records");
    let events = lines(&events);
    let created = events.iter().filter(|e| e["kind"] == "story_created").count();
    let new_stories = decisions.iter().filter(|d| d["verdict"] == "new_story").count();
    assert_eq!(created, new_stories);
    assert!(events.iter().all(|e| e["canonical"]["id"] == e["canonical_article_id"]));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_line_gets_one_decision_at_its_position_and_hostile_lines_are_refused_with_a_reason() {
    let dir = std::env::temp_dir().join(format!("syndic-cli-lines-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let article = |id: &str, extra: &str| {
        format!(
            r#"{{"id":"{id}","source":"s","body":"The ministry said on Monday that the new bridge will open in May after two years of work.","extra":{extra}}}"#
        )
    };
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let input = [
        article("a", "1"),
        String::new(),
        " \t ".to_string(),
        article("b", &nested),
        article("c", "2"),
    ]
    .join("\n");
    let path = dir.join("in.jsonl");
    std::fs::write(&path, format!("{input}\n")).unwrap();
    let (events, decisions) = (dir.join("events.jsonl"), dir.join("decisions.jsonl"));
    let out = dedup(&path, &events, &decisions, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let decisions = lines(&decisions);
    let seen: Vec<(u64, &str, &str)> = decisions
        .iter()
        .map(|d| {
            assert_eq!(d["position"]["input"], path.display().to_string());
            (
                d["position"]["line"].as_u64().unwrap(),
                d["verdict"].as_str().unwrap(),
                d["reason_code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "new_story", ""),
            (2, "invalid", "empty_record"),
            (3, "invalid", "empty_record"),
            (4, "invalid", "too_deep"),
            (5, "exact_duplicate", ""),
        ]
    );
    let events = std::fs::read_to_string(&events).unwrap();
    assert!(
        !events.contains("[[["),
        "a refused record is never carried into an event"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("5 records"), "{stderr}");
    assert!(
        stderr.contains(":4: invalid record:") && stderr.contains("input.max_depth"),
        "{stderr}"
    );

    // Timing the engine alone: both outputs to /dev/null. An empty input gives a summary of
    // nothing, with no memory share per article.
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, b"").unwrap();
    for input in [&path, &empty] {
        let out = dedup(input, "/dev/null", "/dev/null", &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("KB per indexed article"), "{stderr}");
    }
    let same = dir.join("same.jsonl");
    let out = dedup(&path, &same, &same, &[]);
    assert!(!out.status.success(), "two streams into one file are refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("must differ"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn eval_scores_a_labelled_file() {
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample.jsonl");
    let out = syndic().args(["eval", "--input", sample]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = String::from_utf8_lossy(&out.stdout);
    let precision: f64 = report
        .split("precision ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(precision > 0.95, "{report}");
}

/// `eval` scores what users run: the same decisions as `dedup` on the same file, in its own
/// order; `--shuffle` feeds another order and says which.
#[test]
fn eval_makes_the_decisions_dedup_makes_and_names_its_order() {
    let dir = std::env::temp_dir().join(format!("syndic-cli-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample.jsonl");
    let (from_dedup, from_eval) = (dir.join("dedup.jsonl"), dir.join("eval.jsonl"));
    let deduped = dedup(sample, "/dev/null", &from_dedup, &[]);
    assert!(deduped.status.success(), "{}", String::from_utf8_lossy(&deduped.stderr));
    let eval = syndic()
        .args(["eval", "--input", sample, "--decisions"])
        .arg(&from_eval)
        .output()
        .unwrap();
    assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
    assert!(String::from_utf8_lossy(&eval.stdout).starts_with("order: file order\n"));
    let (a, b) = (lines(&from_dedup), lines(&from_eval));
    assert!(a.iter().any(|d| d["verdict"] == "duplicate"), "the sample has copies");
    assert_eq!(a, b);
    let shuffled = syndic()
        .args(["eval", "--input", sample, "--shuffle", "7", "--decisions"])
        .arg(&from_eval)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&shuffled.stdout).starts_with("order: shuffled with seed 7\n"));
    let c = lines(&from_eval);
    assert_eq!(c.len(), a.len());
    assert_ne!(
        c.iter().map(|d| &d["article_id"]).collect::<Vec<_>>(),
        a.iter().map(|d| &d["article_id"]).collect::<Vec<_>>(),
        "another order"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// `explain --pair` prints the evidence of a duplicate decision and agrees with it.
#[test]
fn explain_pair_shows_why_two_articles_were_merged_or_not() {
    let dir = std::env::temp_dir().join(format!("syndic-cli-pair-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample.jsonl");
    let decisions = dir.join("decisions.jsonl");
    let deduped = dedup(sample, "/dev/null", &decisions, &[]);
    assert!(deduped.status.success());
    let decisions = lines(&decisions);
    let duplicate = decisions
        .iter()
        .find(|d| d["verdict"] == "duplicate")
        .expect("the sample has copies");
    let evidence = &duplicate["evidence"];
    assert!(
        evidence["shorter_share"].is_number() && evidence["lead_shared"].is_number(),
        "{duplicate}"
    );
    let (a, b) = (
        duplicate["article_id"].as_str().unwrap(),
        duplicate["matched_article_id"].as_str().unwrap(),
    );
    let out = syndic()
        .args(["explain", "--input", sample, "--pair", a, b])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("verdict: a copy"), "{text}");
    assert!(
        text.contains(&format!("{:.3}", evidence["shorter_share"].as_f64().unwrap())),
        "{text}"
    );
    let founder = decisions.iter().find(|d| d["verdict"] == "new_story").unwrap()["article_id"]
        .as_str()
        .unwrap();
    let apart = syndic()
        .args(["explain", "--input", sample, "--pair", a, founder])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&apart.stdout).contains("verdict: not a copy"));
    let missing = syndic()
        .args(["explain", "--input", sample, "--pair", a, "no-such-id"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no valid article with id \"no-such-id\""));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn explain_names_the_rule_behind_every_removal_and_reports_bad_records() {
    use std::io::Write as _;
    let mut child = syndic()
        .args(["explain", "--input", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = concat!(
        r#"{"id":"a1","source":"news.az","body":"+ ↺ − 16 px\n\nThe president received the delegation, News.Az reports, citing AZERTAC.\n\nThe sides discussed trade.\n\nNews.Az"}"#,
        "\n",
        r#"{"id":7,"source":"s","body":"b"}"#,
        "\n"
    );
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("article a1 (news.az), line 1: 4 paragraphs, 2 dropped, 9 tokens"),
        "{report}"
    );
    assert!(
        report.contains(r#"dropped  by "font-size widget (+ ↺ - 16 px)": + ↺ - 16 px"#),
        "{report}"
    );
    assert!(
        report.contains(r#"stripped by "attribution closing a sentence: "#)
            && report.contains(r#"": ", News.Az reports, citing AZERTAC.""#),
        "{report}"
    );
    assert!(
        report.contains("tokens: the president received the delegation the sides discussed trade"),
        "{report}"
    );
    assert!(
        report.contains("line 2: invalid record: field `id` must be a string, got a number"),
        "{report}"
    );
}

#[test]
fn a_config_with_an_unknown_key_fails_with_the_key_named() {
    let path = std::env::temp_dir().join(format!("syndic-bad-{}.toml", std::process::id()));
    std::fs::write(&path, "[index]\nwindow = 5\n").unwrap();
    let out = syndic()
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("window"));
    let ok = syndic()
        .args([
            "check-config",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/syndic.toml"),
        ])
        .output()
        .unwrap();
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("min_containment"));
}

/// The README's first command: the whole worker on an in-process mock cluster. Kafka's own
/// promises are tested on the real broker (tests/kafka.rs); this checks that the command runs
/// and that every record is accounted for.
#[test]
fn the_demo_runs_and_accounts_for_every_record() {
    let out = syndic().arg("demo").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout.lines().last().unwrap_or_default();
    // The summary reads "articles N  stories N  new N  duplicates N  exact duplicates N ...".
    let count = |label: &str| -> u64 {
        summary
            .split(&format!("{label} "))
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count for {label:?} in {summary:?}"))
    };
    let articles = count("articles");
    assert!(articles > 0, "{summary}");
    assert_eq!(count("confirmed"), articles, "{summary}");
    assert_eq!(
        count("new") + count("duplicates") + count("exact duplicates") + count("dead-lettered"),
        articles,
        "every article is new, a copy or dead-lettered: {summary}"
    );
    assert!(count("dead-lettered") > 0, "the demo sample has bad records: {summary}");
}

#[test]
fn dedup_reads_a_directory_of_gzip_and_zstd_files_as_the_same_articles_uncompressed() {
    use std::io::Write;
    let dir = std::env::temp_dir().join(format!("syndic-cli-inputs-{}", std::process::id()));
    let parts = dir.join("parts");
    std::fs::create_dir_all(&parts).unwrap();
    let sample = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample.jsonl")).unwrap();
    let records: Vec<&[u8]> = sample.split_inclusive(|&b| b == b'\n').collect();
    let (first, second) = records.split_at(records.len() / 2);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&first.concat()).unwrap();
    std::fs::write(parts.join("1.jsonl.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(
        parts.join("2.jsonl.zst"),
        zstd::encode_all(&second.concat()[..], 3).unwrap(),
    )
    .unwrap();
    let run = |input: &std::path::Path, name: &str| {
        let decisions = dir.join(format!("{name}.decisions.jsonl"));
        let events = dir.join(format!("{name}.stories.jsonl"));
        let out = dedup(input, &events, &decisions, &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (lines(&decisions), std::fs::read(&events).unwrap())
    };
    let plain = run(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample.jsonl")),
        "plain",
    );
    let packed = run(&parts, "packed");
    assert!(!plain.0.is_empty());
    // The same decisions, at other positions: the parts are other files.
    let unplaced = |decisions: &[serde_json::Value]| {
        decisions
            .iter()
            .map(|d| {
                let mut d = d.clone();
                d.as_object_mut().map(|o| o.remove("position"));
                d
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(unplaced(&plain.0), unplaced(&packed.0), "the same decisions");
    assert!(plain.1 == packed.1, "the same story events");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn replay_of_files_needs_no_broker_and_writes_the_same_bytes_twice_and_dedup_s_decisions() {
    let dir = std::env::temp_dir().join(format!("syndic-cli-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sample.jsonl");
    let replay = |name: &str| {
        let out_dir = dir.join(name);
        let out = syndic()
            .args([
                "replay",
                "--input",
                sample,
                "--ingest-time",
                "2026-12-01T00:00:00Z",
                "--output-dir",
            ])
            .arg(&out_dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        ["decisions.jsonl", "stories.jsonl", "dead-letters.jsonl"].map(|f| std::fs::read(out_dir.join(f)).unwrap())
    };
    let (first, second) = (replay("a"), replay("b"));
    assert!(first == second, "two replays of the same files write the same bytes");
    assert!(!first[2].is_empty(), "the sample's invalid records are dead-lettered");
    let decisions = dir.join("dedup.decisions.jsonl");
    let out = dedup(sample, "/dev/null", &decisions, &[]);
    assert!(out.status.success());
    assert_eq!(
        lines(&decisions),
        lines(&dir.join("a").join("decisions.jsonl")),
        "a replay of a file decides as dedup does"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dedup_and_replay_write_the_same_bytes_on_one_thread_and_on_three() {
    let dir = std::env::temp_dir().join(format!("syndic-cli-threads-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let corpus = dir.join("corpus.jsonl");
    let out = syndic()
        .args([
            "generate",
            "--articles",
            "4000",
            "--seed",
            "8",
            "--with-invalid",
            "--output",
        ])
        .arg(&corpus)
        .output()
        .unwrap();
    assert!(out.status.success());
    let run = |threads: &str| {
        let (events, decisions) = (
            dir.join(format!("events-{threads}")),
            dir.join(format!("decisions-{threads}")),
        );
        let out = dedup(&corpus, &events, &decisions, &["--threads", threads]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let replayed = dir.join(format!("replay-{threads}"));
        let out = syndic()
            .args([
                "replay",
                "--threads",
                threads,
                "--ingest-time",
                "2026-12-01T00:00:00Z",
                "--input",
            ])
            .arg(&corpus)
            .arg("--output-dir")
            .arg(&replayed)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (
            std::fs::read(decisions).unwrap(),
            std::fs::read(replayed.join("stories.jsonl")).unwrap(),
        )
    };
    let one = run("1");
    assert!(!one.0.is_empty() && !one.1.is_empty());
    assert!(
        one == run("3"),
        "the same decisions and story events on one thread and on three"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A worker whose brokers do not answer says so within seconds, naming them, and a SIGTERM
/// during that wait ends it at once (no broker is needed: nothing listens on port 9).
#[test]
fn an_unreachable_cluster_is_logged_with_its_brokers_and_sigterm_ends_the_wait() {
    let log = std::env::temp_dir().join(format!("syndic-cli-unreachable-{}.log", std::process::id()));
    let mut worker = syndic()
        .arg("run")
        .env("SYNDIC_KAFKA_BROKERS", "127.0.0.1:9")
        .env("SYNDIC_HTTP_ADDRESS", "")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let said = |what: &str| std::fs::read_to_string(&log).unwrap_or_default().contains(what);
    let mut waited = 0;
    while !said("cannot reach the Kafka cluster yet") {
        assert!(waited < 600, "nothing logged about the unreachable cluster in 60 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    }
    assert!(said("127.0.0.1:9"), "the brokers tried are named");
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Within shutdown_timeout_secs (30 by default); the worker returns at once in practice.
    let mut waited = 0;
    let status = loop {
        if let Some(status) = worker.try_wait().unwrap() {
            break status;
        }
        assert!(waited < 300, "SIGTERM did not end the wait for the cluster within 30 s");
        std::thread::sleep(std::time::Duration::from_millis(100));
        waited += 1;
    };
    assert!(status.success(), "a stop asked for is a clean exit: {status}");
    std::fs::remove_file(&log).ok();
}
