//! Fit + forecast of the next hour on 14 days of 1-minute data (target under 1 s): our
//! combined forecaster (augurs MSTL with daily and weekly seasons + the brief's rule) on the
//! ServeGen m-small trace, against the seasonal-naive forecast as the same-run baseline.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use llm_autoscaler::forecast::{Combined, Forecaster, SeasonalNaive};
use llm_autoscaler::sim::traffic::{parse_trace, Trace};

fn bench(c: &mut Criterion) {
    let dir = std::env::var("LLM_AUTOSCALER_TRACES")
        .unwrap_or_else(|_| format!("{}/../shared/traces", env!("CARGO_MANIFEST_DIR")));
    let path = format!("{dir}/servegen_m-small_per_minute.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let Trace::PerMinute(series) = parse_trace(&path, &text).unwrap() else {
        panic!("per-minute trace expected")
    };
    let history = &series[..14 * 1440];
    let mut g = c.benchmark_group("forecast_14d_1min");
    g.sample_size(10);
    g.bench_function("baseline_seasonal_naive", |b| {
        b.iter(|| SeasonalNaive.forecast(black_box(history), 60).unwrap())
    });
    g.bench_function("combined_fit_and_forecast", |b| {
        b.iter(|| {
            Combined::default()
                .forecast(black_box(history), 60)
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
