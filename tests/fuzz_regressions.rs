//! Every input a fuzz target once failed on (tests/data/fuzz/<target>/), replayed through the
//! target's checks on each test run, so a fixed crash stays fixed. `scripts/fuzz` finds them.

#[path = "../fuzz/checks.rs"]
#[allow(dead_code)]
mod checks;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(target);
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let data = std::fs::read(entry.path()).expect("a regression input is readable");
        check(&data);
        replayed += 1;
    }
    replayed
}

#[test]
fn saved_fuzz_inputs_pass_their_checks() {
    let replayed = replay("record", checks::record)
        + replay("normalize", checks::normalize)
        + replay("pipeline", checks::pipeline);
    // The hostile record of issue 27 (a field nested 100,000 deep) is one of them.
    assert!(replayed > 0, "tests/data/fuzz holds the saved inputs");
}
