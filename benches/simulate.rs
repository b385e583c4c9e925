//! Simulator throughput: simulated requests per wall-clock second on one core (target ≥ 2
//! million), for the policy alone on six hours of the `periodic` scenario.
//!
//! Baseline measured in the same run: generating the same request stream without simulating
//! it. The ratio simulate ÷ generate says what the fleet model costs on top of the traffic.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use llm_autoscaler::config;
use llm_autoscaler::sim::{self, scenario, traffic::Traffic, SimSetup};

fn setup() -> SimSetup {
    let s = scenario::builtin("periodic", 1).unwrap();
    let cfg = config::load(Path::new("config/example.toml")).unwrap();
    let traffic = Traffic {
        source: s.source,
        scale: 1.0,
        seed: 1,
        duration_secs: 6.0 * 3600.0,
    };
    let mut setup = SimSetup::new(
        "periodic",
        traffic,
        s.spot,
        s.epoch,
        cfg.fleets[0].clone(),
        "example",
    );
    setup.baselines = false;
    setup
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let n = s.traffic.requests().count() as u64;
    let mut g = c.benchmark_group("simulate_periodic_6h");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.bench_function("baseline_generate_requests", |b| {
        b.iter(|| black_box(s.traffic.requests().fold(0u32, |a, r| a ^ r.output_tokens)))
    });
    g.bench_function("simulate_policy", |b| {
        b.iter(|| black_box(sim::simulate(s.clone(), &mut |_| {}).unwrap().ours.cost_usd))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
