//! Fit + forecast of the next hour on 14 days of 1-minute data (target under 300 ms): our
//! ensemble (every candidate fitted, then combined with learnt weights) on the ServeGen m-small
//! trace, against the seasonal-naive forecast as the same-run baseline.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use llm_autoscaler::forecast::ensemble::{members, Adaptive};
use llm_autoscaler::forecast::{Forecaster, SeasonalNaive};
use llm_autoscaler::sim::traffic::{parse_trace, Trace};

#[path = "../tests/common/traces.rs"]
mod traces;

fn bench(c: &mut Criterion) {
    // The trace is not in the repository (tests/common/traces.rs): without it, nothing to time.
    let Some(dir) = traces::shared_traces("benches/forecast.rs") else {
        return;
    };
    let path = dir.join("servegen_m-small_per_minute.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let path = path.display().to_string();
    let Trace::PerMinute(series) = parse_trace(&path, &text).unwrap() else {
        panic!("per-minute trace expected")
    };
    let history = &series[..14 * 1440];
    let mut g = c.benchmark_group("forecast_14d_1min");
    g.sample_size(10);
    g.bench_function("baseline_seasonal_naive", |b| {
        b.iter(|| SeasonalNaive.forecast(black_box(history), 60).unwrap())
    });
    // Weights learnt once (as the daemon's warm-up does); each refit is then this.
    let mut learnt = Adaptive::new(0.9);
    learnt.warm_up(history, 0, 60, 360, 28);
    g.bench_function("ensemble_fit_and_forecast", |b| {
        b.iter(|| {
            let mut a = learnt.clone();
            a.combine(members(black_box(history), 60, 0.9), history.len() as i64)
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
