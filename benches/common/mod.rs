//! What the criterion benches share: measurement times scaled by `KEEPWATCH_BENCH_SCALE`, and
//! the short configuration that keeps the suite to minutes on a 2-core machine.

use std::time::Duration;

use criterion::Criterion;

/// `ms` milliseconds, scaled by `KEEPWATCH_BENCH_SCALE` (default 1.0).
pub fn ms(ms: u64) -> Duration {
    let scale: f64 = std::env::var("KEEPWATCH_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    Duration::from_secs_f64(ms as f64 / 1000.0 * scale).max(Duration::from_millis(10))
}

/// Short measurements: the whole suite must run in minutes on a 2-core machine.
pub fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(ms(500))
        .measurement_time(ms(2000))
        .without_plots()
}
