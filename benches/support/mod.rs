//! What the benchmarks that run against a broker share: their command-line numbers and the
//! broker's address.

/// The number after `name` on the command line, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The broker: `SYNDIC_TEST_BROKERS`, else the one `scripts/kafka` starts.
pub fn brokers() -> String {
    std::env::var("SYNDIC_TEST_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}
