//! One decision for a fleet with 100 instances under the example policy (`token_work` through
//! the capacity model and `kv_cache_usage`, the forecast not learned yet), after a realistic
//! history. Target ≤ 50 µs.
//!
//! Baseline measured in the same run: cloning the snapshot the decision reads, i.e. the cost
//! of merely touching the input once. The ratio decide ÷ clone is what to compare across
//! machines.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use llm_autoscaler::engine::{decide, EngineState};
use llm_autoscaler::model::{Instance, LifecycleState, Sample, ServerLoad, Snapshot, Timestamp};

fn snapshot(now: Timestamp, load: f64) -> Snapshot {
    let at = now.plus_secs(-5.0);
    let instances = (0..100)
        .map(|i| {
            let mut samples = BTreeMap::new();
            for (name, v) in [
                ("queue_depth", load),
                ("kv_cache_usage", 70.0),
                ("concurrency", 20.0 + load),
                ("request_rate", 5.0 + 0.1 * load),
            ] {
                samples.insert(
                    name.to_string(),
                    Sample {
                        value: v + (i % 7) as f64,
                        at,
                    },
                );
            }
            Instance {
                id: format!("i-{i:05}"),
                pool: if i < 20 {
                    "on-demand".into()
                } else {
                    "spot".into()
                },
                weight_units: 1,
                state: if i % 25 == 0 {
                    LifecycleState::Pending
                } else {
                    LifecycleState::InService
                },
                samples,
                load: Some(ServerLoad {
                    prompt_tokens_per_sec: 2000.0 + 300.0 * load + (i % 7) as f64,
                    generation_tokens_per_sec: 600.0 + 90.0 * load,
                    requests_per_sec: 4.0 + 0.5 * load,
                    waiting: load,
                    running: 20.0 + load,
                    kv_cache_fraction: 0.5,
                    window_secs: 60.0,
                    at,
                }),
            }
        })
        .collect();
    let mut fleet_metrics = BTreeMap::new();
    fleet_metrics.insert(
        "external_queue_depth".to_string(),
        Sample { value: 300.0, at },
    );
    Snapshot {
        desired_units: 100,
        instances,
        fleet_metrics,
        pool_desired_units: BTreeMap::new(),
        pool_failed_launches: BTreeMap::new(),
        ..Snapshot::default()
    }
}

fn bench(c: &mut Criterion) {
    let cfg = llm_autoscaler::cost::load_policy(Path::new("config/example.toml"))
        .expect("example policy");
    let mut fleet = cfg.fleets[0].clone();
    fleet.max_units = 400;
    assert_eq!(fleet.metrics.len(), 2);
    let t0 = Timestamp::parse_rfc3339("2026-11-30T10:00:00Z").unwrap();
    // Ten minutes of history at 15 s ticks.
    let mut state = EngineState::default();
    for k in 0..40 {
        let now = t0.plus_secs(-600.0 + 15.0 * k as f64);
        let (_, st) = decide(&fleet, &snapshot(now, 3.0 + (k % 5) as f64), &state, now);
        state = st;
    }
    let snap = snapshot(t0, 4.0);
    let mut g = c.benchmark_group("decide_example_policy_100_instances");
    g.bench_function("baseline_clone_snapshot", |b| {
        b.iter(|| black_box(black_box(&snap).clone()))
    });
    g.bench_function("decide", |b| {
        b.iter(|| decide(black_box(&fleet), black_box(&snap), black_box(&state), t0))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
