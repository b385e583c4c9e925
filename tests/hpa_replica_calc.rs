//! HPA's per-metric replica calculation, table-driven. Cases are upstream's
//! (`replica_calculator_test.go`, the HPA walkthrough, KEDA's docs) restated in units: an
//! instance is a pod, `Pending` an unready pod, `Terminating` a pod being deleted.

mod common;

use common::*;
use llm_autoscaler::model::LifecycleState::{self, *};
use llm_autoscaler::policy::hpa::{recommend, CalcInput, MetricStatus};

struct Case {
    name: &'static str,
    signal: &'static str,
    target: &'static str,
    current: u32,
    /// (state, sample) per instance.
    instances: Vec<(LifecycleState, Option<f64>)>,
    /// Fleet-level sample.
    fleet_value: Option<f64>,
    want: Option<u32>,
}

fn util(pct: u32) -> &'static str {
    Box::leak(format!("{{ type = \"Utilization\", average_utilization = {pct} }}").into_boxed_str())
}
fn avg(v: f64) -> &'static str {
    Box::leak(format!("{{ type = \"AverageValue\", average_value = {v} }}").into_boxed_str())
}
fn value(v: f64) -> &'static str {
    Box::leak(format!("{{ type = \"Value\", value = {v} }}").into_boxed_str())
}
fn ready(vals: &[f64]) -> Vec<(LifecycleState, Option<f64>)> {
    vals.iter().map(|v| (InService, Some(*v))).collect()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "walkthrough: 50 replicas at 90 % vs 75 % → 60",
            signal: "gpu_utilization",
            target: util(75),
            current: 50,
            instances: ready(&[90.0; 50]),
            fleet_value: None,
            want: Some(60),
        },
        Case {
            name: "ScaleUp: 30/50/70 % vs 30 % → 5",
            signal: "gpu_utilization",
            target: util(30),
            current: 3,
            instances: ready(&[30.0, 50.0, 70.0]),
            fleet_value: None,
            want: Some(5),
        },
        Case {
            name: "ScaleUpUnreadyLessScale: unready counts 0 % → 4",
            signal: "gpu_utilization",
            target: util(30),
            current: 3,
            instances: vec![
                (Pending, None),
                (InService, Some(50.0)),
                (InService, Some(70.0)),
            ],
            fleet_value: None,
            want: Some(4),
        },
        Case {
            name: "ScaleDown: 10/30/50/25/25 % vs 50 % → 3",
            signal: "gpu_utilization",
            target: util(50),
            current: 5,
            instances: ready(&[10.0, 30.0, 50.0, 25.0, 25.0]),
            fleet_value: None,
            want: Some(3),
        },
        Case {
            name: "ScaleDownIgnoresUnreadyPods → 2",
            signal: "gpu_utilization",
            target: util(50),
            current: 5,
            instances: vec![
                (InService, Some(10.0)),
                (InService, Some(30.0)),
                (InService, Some(50.0)),
                (Pending, None),
                (Pending, None),
            ],
            fleet_value: None,
            want: Some(2),
        },
        Case {
            name: "ScaleDownIgnoresDeletionPods (older upstream: 3 ready, 2 deleted) → 2",
            signal: "gpu_utilization",
            target: util(50),
            current: 5,
            instances: vec![
                (InService, Some(10.0)),
                (InService, Some(30.0)),
                (InService, Some(50.0)),
                (Terminating, Some(25.0)),
                (Draining, Some(25.0)),
            ],
            fleet_value: None,
            want: Some(2),
        },
        Case {
            name: "Tolerance: 100/105/95 % of target → no change",
            signal: "gpu_utilization",
            target: util(50),
            current: 3,
            instances: ready(&[50.0, 52.5, 47.5]),
            fleet_value: None,
            want: Some(3),
        },
        Case {
            name: "55.5 % truncates to 55 % (upstream's whole percent): on the band's edge, within → 3",
            signal: "gpu_utilization",
            target: util(50),
            current: 3,
            instances: ready(&[55.5, 55.5, 55.5]),
            fleet_value: None,
            want: Some(3),
        },
        Case {
            name: "AverageValue in whole thousandths (upstream's int64 milli average): 1m, 1m, 2m \
                   vs 1m averages 1m, not 1.33m → no change",
            signal: "queue_depth",
            target: avg(0.001),
            current: 3,
            instances: ready(&[0.001, 0.001, 0.002]),
            fleet_value: None,
            want: Some(3),
        },
        Case {
            name: "AverageValue: 20, 21, 21 vs 20 averages 20.666 (truncated) → within → 3",
            signal: "queue_depth",
            target: avg(20.0),
            current: 3,
            instances: ready(&[20.0, 21.0, 21.0]),
            fleet_value: None,
            want: Some(3),
        },
        Case {
            name: "just outside tolerance (56 %, ×1.12) → scales",
            signal: "gpu_utilization",
            target: util(50),
            current: 3,
            instances: ready(&[56.0, 56.0, 56.0]),
            fleet_value: None,
            want: Some(4),
        },
        Case {
            name: "MissingMetricsNoChangeEq → 2",
            signal: "gpu_utilization",
            target: util(100),
            current: 2,
            instances: vec![(InService, Some(100.0)), (InService, None)],
            fleet_value: None,
            want: Some(2),
        },
        Case {
            name: "MissingMetricsNoChangeGt: missing counts 0 % in scale-up → 2",
            signal: "gpu_utilization",
            target: util(100),
            current: 2,
            instances: vec![(InService, Some(190.0)), (InService, None)],
            fleet_value: None,
            want: Some(2),
        },
        Case {
            name: "MissingMetricsNoChangeLt: missing counts 100 % in scale-down → 2",
            signal: "gpu_utilization",
            target: util(100),
            current: 2,
            instances: vec![(InService, Some(60.0)), (InService, None)],
            fleet_value: None,
            want: Some(2),
        },
        Case {
            name: "missing counts 0 % on a scale-up: 100 % and one missing vs 50 % → 1.0, within → 2",
            signal: "gpu_utilization",
            target: util(50),
            current: 2,
            instances: vec![(InService, Some(100.0)), (InService, None)],
            fleet_value: None,
            want: Some(2),
        },
        Case {
            name: "missing flips direction → current",
            signal: "queue_depth",
            target: avg(10.0),
            current: 4,
            instances: vec![
                (InService, Some(12.0)),
                (InService, None),
                (InService, None),
                (InService, None),
            ],
            fleet_value: None,
            want: Some(4),
        },
        Case {
            name: "missing at target on scale-down (AverageValue)",
            signal: "queue_depth",
            target: avg(10.0),
            current: 4,
            instances: vec![
                (InService, Some(0.0)),
                (InService, Some(0.0)),
                (InService, Some(0.0)),
                (InService, None),
            ],
            fleet_value: None,
            want: Some(1),
        },
        Case {
            name: "ScaleUpCM (pods AverageValue) 20k/10k/30k vs 15k → 4",
            signal: "queue_depth",
            target: avg(15000.0),
            current: 3,
            instances: ready(&[20000.0, 10000.0, 30000.0]),
            fleet_value: None,
            want: Some(4),
        },
        Case {
            name: "ToleranceCM → 3",
            signal: "queue_depth",
            target: avg(20000.0),
            current: 3,
            instances: ready(&[20000.0, 21000.0, 21000.0]),
            fleet_value: None,
            want: Some(3),
        },
        Case {
            name: "all pods unready → invalid",
            signal: "queue_depth",
            target: avg(5.0),
            current: 3,
            instances: vec![(Pending, None), (Pending, None)],
            fleet_value: None,
            want: None,
        },
        Case {
            name: "no samples at all → invalid",
            signal: "queue_depth",
            target: avg(5.0),
            current: 2,
            instances: vec![(InService, None), (InService, None)],
            fleet_value: None,
            want: None,
        },
        Case {
            name: "ScaleUpCMExternal (Value) 8600 vs 4400, 1 ready → 2",
            signal: "custom_fleet",
            target: value(4400.0),
            current: 1,
            instances: ready(&[0.0]),
            fleet_value: Some(8600.0),
            want: Some(2),
        },
        Case {
            name: "ScaleDownCMExternal (Value) 8600 vs 14334, 5 ready → 3",
            signal: "custom_fleet",
            target: value(14334.0),
            current: 5,
            instances: ready(&[0.0; 5]),
            fleet_value: Some(8600.0),
            want: Some(3),
        },
        Case {
            name: "ToleranceCMExternal → current",
            signal: "custom_fleet",
            target: value(8888.0),
            current: 3,
            instances: ready(&[0.0; 3]),
            fleet_value: Some(8600.0),
            want: Some(3),
        },
        Case {
            name: "ScaleUpPerPodCMExternal 8600 / 2150 → 4",
            signal: "external_queue_depth",
            target: avg(2150.0),
            current: 3,
            instances: ready(&[0.0; 3]),
            fleet_value: Some(8600.0),
            want: Some(4),
        },
        Case {
            name: "ScaleDownPerPodCMExternal 8600 / 2867 → 3",
            signal: "external_queue_depth",
            target: avg(2867.0),
            current: 5,
            instances: ready(&[0.0; 5]),
            fleet_value: Some(8600.0),
            want: Some(3),
        },
        Case {
            name: "KEDA: queue 20, threshold 5 → 4",
            signal: "external_queue_depth",
            target: avg(5.0),
            current: 1,
            instances: ready(&[0.0]),
            fleet_value: Some(20.0),
            want: Some(4),
        },
        Case {
            name: "scale from zero on an external queue",
            signal: "external_queue_depth",
            target: avg(5.0),
            current: 0,
            instances: vec![],
            fleet_value: Some(12.0),
            want: Some(3),
        },
        Case {
            name: "fleet Value with nothing in service scales live units",
            signal: "custom_fleet",
            target: value(10.0),
            current: 2,
            instances: vec![(Pending, None), (Pending, None)],
            fleet_value: Some(40.0),
            want: Some(8),
        },
        Case {
            name: "external metric missing → invalid",
            signal: "external_queue_depth",
            target: avg(5.0),
            current: 2,
            instances: ready(&[0.0; 2]),
            fleet_value: None,
            want: None,
        },
        Case {
            name: "TTFT over target scales up",
            signal: "ttft_p95_secs",
            target: value(2.0),
            current: 4,
            instances: ready(&[0.0; 4]),
            fleet_value: Some(3.0),
            want: Some(6),
        },
        Case {
            name: "TTFT under target abstains",
            signal: "ttft_p95_secs",
            target: value(2.0),
            current: 4,
            instances: ready(&[0.0; 4]),
            fleet_value: Some(0.4),
            want: None,
        },
        // The rest of upstream's replica_calculator_test.go (and horizontal_test.go's
        // calculation cases) that units can state; not stated: container metrics, CPU
        // requests, the CPU initialization period (docs/engine.md, deviations), a target over
        // 100 % (MissingMetricsScaleDownTargetOver100: a GPU is at most 100 % busy, and the
        // policy file refuses one).
        Case {
            name: "ScaleUpUnreadyNoScale: 40 % ready, two unready at 0 → flips → 3",
            signal: "gpu_utilization",
            target: util(30),
            current: 3,
            instances: vec![
                (InService, Some(40.0)),
                (Pending, Some(50.0)),
                (Pending, Some(70.0)),
            ],
            fleet_value: None,
            want: Some(3),
        },
        Case {
            name: "ScaleUpIgnoresFailedPods: failed pods left out → 4",
            signal: "gpu_utilization",
            target: util(30),
            current: 2,
            instances: vec![
                (InService, Some(50.0)),
                (InService, Some(70.0)),
                (Terminating, None),
                (Terminating, None),
            ],
            fleet_value: None,
            want: Some(4),
        },
        Case {
            name: "ScaleUpIgnoresDeletionPods: pods being deleted left out → 4",
            signal: "gpu_utilization",
            target: util(30),
            current: 2,
            instances: vec![
                (InService, Some(50.0)),
                (InService, Some(70.0)),
                (Terminating, None),
                (Draining, None),
            ],
            fleet_value: None,
            want: Some(4),
        },
        Case {
            name: "ScaleUpCMObject (Value) 20k vs 15k, 3 ready → 4",
            signal: "custom_fleet",
            target: value(15000.0),
            current: 3,
            instances: ready(&[0.0; 3]),
            fleet_value: Some(20000.0),
            want: Some(4),
        },
        Case {
            name: "ScaleUpCMPerPodObject (AverageValue) 20k / (5k × 3) → 4",
            signal: "external_queue_depth",
            target: avg(5000.0),
            current: 3,
            instances: ready(&[0.0; 3]),
            fleet_value: Some(20000.0),
            want: Some(4),
        },
        Case {
            name: "ScaleUpCMObjectIgnoresUnreadyPods: 50k vs 10k × 1 ready → 5 (not 15)",
            signal: "custom_fleet",
            target: value(10000.0),
            current: 3,
            instances: vec![(Pending, None), (InService, Some(0.0)), (Pending, None)],
            fleet_value: Some(50000.0),
            want: Some(5),
        },
        Case {
            name: "ScaleUpCMExternalIgnoresUnreadyPods: 8600 vs 4400 × 1 ready → 2 (not 6)",
            signal: "custom_fleet",
            target: value(4400.0),
            current: 3,
            instances: vec![(Pending, None), (InService, Some(0.0)), (Pending, None)],
            fleet_value: Some(8600.0),
            want: Some(2),
        },
        Case {
            name: "ScaleDownCM (pods AverageValue) 5 × 12k vs 20k → 3",
            signal: "queue_depth",
            target: avg(20000.0),
            current: 5,
            instances: ready(&[12000.0; 5]),
            fleet_value: None,
            want: Some(3),
        },
        Case {
            name: "ScaleDownPerPodCMObject 6000 / (2000 × 5) → 3",
            signal: "external_queue_depth",
            target: avg(2000.0),
            current: 5,
            instances: ready(&[0.0; 5]),
            fleet_value: Some(6000.0),
            want: Some(3),
        },
        Case {
            name: "ScaleDownCMObject (Value) 12k vs 20k × 5 → 3",
            signal: "custom_fleet",
            target: value(20000.0),
            current: 5,
            instances: ready(&[0.0; 5]),
            fleet_value: Some(12000.0),
            want: Some(3),
        },
        Case {
            name: "ScaleDownExcludeUnscheduledPods: 1 ready at 10 %, 4 pending → 1",
            signal: "gpu_utilization",
            target: util(50),
            current: 5,
            instances: vec![
                (InService, Some(10.0)),
                (Pending, None),
                (Pending, None),
                (Pending, None),
                (Pending, None),
            ],
            fleet_value: None,
            want: Some(1),
        },
        Case {
            name: "ScaleDownIgnoresFailedPods: 5 ready + 2 failed → 3",
            signal: "gpu_utilization",
            target: util(50),
            current: 5,
            instances: vec![
                (InService, Some(10.0)),
                (InService, Some(30.0)),
                (InService, Some(50.0)),
                (InService, Some(25.0)),
                (InService, Some(25.0)),
                (Terminating, None),
                (Terminating, None),
            ],
            fleet_value: None,
            want: Some(3),
        },
        Case {
            name: "ScaleDownIgnoresDeletionPods (current upstream: 5 ready + 2 deleted) → 3",
            signal: "gpu_utilization",
            target: util(50),
            current: 5,
            instances: vec![
                (InService, Some(10.0)),
                (InService, Some(30.0)),
                (InService, Some(50.0)),
                (InService, Some(25.0)),
                (InService, Some(25.0)),
                (Terminating, None),
                (Draining, None),
            ],
            fleet_value: None,
            want: Some(3),
        },
        Case {
            name: "ToleranceCMObject 20666 vs 20000 → 3",
            signal: "custom_fleet",
            target: value(20000.0),
            current: 3,
            instances: ready(&[0.0; 3]),
            fleet_value: Some(20666.0),
            want: Some(3),
        },
        Case {
            name: "TolerancePerPodCMObject 20166 / (5000 × 4) → 4",
            signal: "external_queue_depth",
            target: avg(5000.0),
            current: 4,
            instances: ready(&[0.0; 4]),
            fleet_value: Some(20166.0),
            want: Some(4),
        },
        Case {
            name: "TolerancePerPodCMExternal 8600 / (2900 × 3) → 3",
            signal: "external_queue_depth",
            target: avg(2900.0),
            current: 3,
            instances: ready(&[0.0; 3]),
            fleet_value: Some(8600.0),
            want: Some(3),
        },
        Case {
            name: "SuperfluousMetrics: 400/950/300/700 % vs 100 % → 24",
            signal: "gpu_utilization",
            target: util(100),
            current: 4,
            instances: ready(&[400.0, 950.0, 300.0, 700.0]),
            fleet_value: None,
            want: Some(24),
        },
        Case {
            name: "MissingMetrics: 40 %, 9.5 %, two missing at 100 % on scale-down → 3",
            signal: "gpu_utilization",
            target: util(100),
            current: 4,
            instances: vec![
                (InService, Some(40.0)),
                (InService, Some(9.5)),
                (InService, None),
                (InService, None),
            ],
            fleet_value: None,
            want: Some(3),
        },
        Case {
            name: "PlainMetric MissingMetricsNoChangeEq: ratio exactly 1, missing left out → 5",
            signal: "queue_depth",
            target: avg(20000.0),
            current: 5,
            instances: vec![
                (InService, Some(20000.0)),
                (InService, Some(19000.0)),
                (InService, Some(21000.0)),
                (InService, None),
                (InService, None),
            ],
            fleet_value: None,
            want: Some(5),
        },
        Case {
            name: "MissingMetricsUnreadyChange: missing at 100 % flips 0.9 → 1.45 → 3",
            signal: "gpu_utilization",
            target: util(50),
            current: 3,
            instances: vec![
                (Pending, Some(10.0)),
                (InService, Some(45.0)),
                (InService, None),
            ],
            fleet_value: None,
            want: Some(3),
        },
        Case {
            name: "MissingMetricsUnreadyScaleUp: unready and missing at 0 → 4",
            signal: "gpu_utilization",
            target: util(50),
            current: 3,
            instances: vec![
                (Pending, Some(10.0)),
                (InService, Some(200.0)),
                (InService, None),
            ],
            fleet_value: None,
            want: Some(4),
        },
        Case {
            name: "MissingMetricsUnreadyScaleDown: unready out, missing at 100 % → 3",
            signal: "gpu_utilization",
            target: util(50),
            current: 4,
            instances: vec![
                (Pending, Some(10.0)),
                (InService, Some(10.0)),
                (InService, Some(10.0)),
                (InService, None),
            ],
            fleet_value: None,
            want: Some(3),
        },
        Case {
            name: "DuringRollingUpdateWithMaxSurge: 3 instances for 2, proposal 3 > 2 on a scale-down → 2",
            signal: "gpu_utilization",
            target: util(50),
            current: 2,
            instances: vec![
                (InService, Some(10.0)),
                (InService, Some(10.0)),
                (InService, None),
            ],
            fleet_value: None,
            want: Some(2),
        },
        Case {
            name: "DuringRollingUpdateWithMaxSurgeCM → 2",
            signal: "queue_depth",
            target: avg(17000.0),
            current: 2,
            instances: vec![
                (InService, Some(10000.0)),
                (InService, Some(10000.0)),
                (InService, None),
            ],
            fleet_value: None,
            want: Some(2),
        },
        Case {
            name: "ComputedToleranceAlg: 50 % vs 56 % (0.893, out of tolerance) → 9",
            signal: "gpu_utilization",
            target: util(56),
            current: 10,
            instances: ready(&[50.0; 10]),
            fleet_value: None,
            want: Some(9),
        },
        Case {
            name: "ComputedToleranceAlg: 50 % vs 55 % (0.909, in tolerance) → 10",
            signal: "gpu_utilization",
            target: util(55),
            current: 10,
            instances: ready(&[50.0; 10]),
            fleet_value: None,
            want: Some(10),
        },
        // horizontal_test.go
        Case {
            name: "MoreReplicasThanSpecNoScale: 5 instances for 4 at target → 4",
            signal: "gpu_utilization",
            target: util(50),
            current: 4,
            instances: ready(&[50.0; 5]),
            fleet_value: None,
            want: Some(4),
        },
        Case {
            name: "MissingReports: desired 4, one instance at 100 % vs 50 % → 2",
            signal: "gpu_utilization",
            target: util(50),
            current: 4,
            instances: ready(&[100.0]),
            fleet_value: None,
            want: Some(2),
        },
        Case {
            name: "ScaleUpFromZeroCMObject (Value): current 0 → ceil(20k / 15k) = 2",
            signal: "custom_fleet",
            target: value(15000.0),
            current: 0,
            instances: vec![],
            fleet_value: Some(20000.0),
            want: Some(2),
        },
        Case {
            name: "ScaleUpFromZeroIgnoresToleranceCMObject: ratio 1 at current 0 → 1",
            signal: "custom_fleet",
            target: value(1000.0),
            current: 0,
            instances: vec![],
            fleet_value: Some(1000.0),
            want: Some(1),
        },
        Case {
            name: "ScaleDownToZeroCMExternal (Value): 0 vs 14400 → 0",
            signal: "custom_fleet",
            target: value(14400.0),
            current: 5,
            instances: ready(&[0.0; 5]),
            fleet_value: Some(0.0),
            want: Some(0),
        },
        Case {
            name: "ScaleUpCMExternal (controller) 8600 vs 6666 × 3 → 4",
            signal: "custom_fleet",
            target: value(6666.0),
            current: 3,
            instances: ready(&[0.0; 3]),
            fleet_value: Some(8600.0),
            want: Some(4),
        },
        Case {
            name: "ToleranceCMExternal (controller) 8600 vs 8666, current 4 → 4",
            signal: "custom_fleet",
            target: value(8666.0),
            current: 4,
            instances: ready(&[0.0; 4]),
            fleet_value: Some(8600.0),
            want: Some(4),
        },
    ]
}

/// A snapshot of `current` units with these instances (and a fleet-level sample), all at `now`.
fn snapshot(
    current: u32,
    instances: &[(LifecycleState, Option<f64>)],
    fleet_value: Option<f64>,
    now: llm_autoscaler::model::Timestamp,
) -> llm_autoscaler::model::Snapshot {
    let mut s = snap(current, &[], now);
    for (i, (state, v)) in instances.iter().enumerate() {
        s.instances.push(inst(i, *state, *v, now));
    }
    match fleet_value {
        Some(v) => with_fleet_metric(s, v, now),
        None => s,
    }
}

#[test]
fn upstream_replica_calculation_cases() {
    let now = t(0);
    let mut failures = Vec::new();
    for c in cases() {
        let f = fleet_with_metric(c.signal, c.target, "");
        let s = snapshot(c.current, &c.instances, c.fleet_value, now);
        let got = recommend(&f.metrics[0], &s, CalcInput::new(now, c.current, 0.1));
        if got.recommendation != c.want {
            failures.push(format!(
                "{}: want {:?}, got {:?} ({:?})",
                c.name, c.want, got.recommendation, got.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn stale_samples_count_as_missing_and_stale_fleet_metric_is_invalid() {
    let now = t(100);
    let f = fleet_with_metric("queue_depth", avg(5.0), "stale_after_secs = 30");
    // Two fresh samples at 10 (ratio 2) and one 31 s old: it counts as missing (0 % on scale-up).
    let mut s = snap(3, &[Some(10.0), Some(10.0)], now);
    s.instances.push(inst(2, InService, Some(10.0), t(69)));
    let r = recommend(&f.metrics[0], &s, CalcInput::new(now, 3, 0.1));
    assert_eq!(r.missing_units, 1);
    assert_eq!(r.ready_units, 2);
    assert_eq!(r.recommendation, Some(4)); // (10+10+0)/3/5 = 1.33 × 3 = 4

    let f = fleet_with_metric("external_queue_depth", avg(5.0), "stale_after_secs = 30");
    let s = with_fleet_metric(snap(3, &[Some(0.0); 3], now), 100.0, t(60));
    let r = recommend(&f.metrics[0], &s, CalcInput::new(now, 3, 0.1));
    assert!(
        matches!(r.status, MetricStatus::Invalid(ref why) if why.contains("stale")),
        "{:?}",
        r.status
    );
    assert_eq!(r.recommendation, None);
}

#[test]
fn non_finite_and_negative_samples_are_not_used() {
    let now = t(0);
    let f = fleet_with_metric("queue_depth", avg(5.0), "");
    let s = snap(2, &[Some(f64::NAN), Some(-3.0)], now);
    let r = recommend(&f.metrics[0], &s, CalcInput::new(now, 2, 0.1));
    assert!(matches!(r.status, MetricStatus::Invalid(_)));
}

#[test]
fn weighted_instances_count_their_units() {
    let now = t(0);
    let f = fleet_with_metric("queue_depth", avg(5.0), "");
    // One 4-unit instance with 40 waiting: 10 per unit vs target 5 → ratio 2 → 8 units.
    let mut s = snap(4, &[Some(40.0)], now);
    s.instances[0].weight_units = 4;
    let r = recommend(&f.metrics[0], &s, CalcInput::new(now, 4, 0.1));
    assert_eq!(r.ready_units, 4);
    assert_eq!(r.recommendation, Some(8));
}

/// Freshness is judged both ways: a sample stamped ahead of now by more than the skew
/// allowance is as unusable as a stale one (issue: frozen data stamped +1 h read as fresh).
#[test]
fn freshness_table_covers_stale_future_and_bad_numbers() {
    use llm_autoscaler::model::{usable, Unusable, FUTURE_SKEW_ALLOWANCE_SECS};
    let now = t(1000);
    let allowance = FUTURE_SKEW_ALLOWANCE_SECS as i64;
    // (age: seconds before now — negative is the future, value, usable?)
    let cases: &[(i64, f64, bool)] = &[
        (0, 1.0, true),
        (30, 1.0, true),
        (31, 1.0, false),
        (-allowance, 1.0, true),
        (-allowance - 1, 1.0, false),
        (-3600, 1.0, false),
        (0, f64::NAN, false),
        (0, -1.0, false),
        (0, f64::INFINITY, false),
    ];
    for &(age, value, want) in cases {
        let got = usable(now, t(1000 - age), 30, value);
        assert_eq!(got.is_ok(), want, "age {age} s, value {value}: {got:?}");
        if age < -allowance && value.is_finite() {
            assert!(matches!(got, Err(Unusable::Future { .. })), "{got:?}");
        }
    }
}

#[test]
fn future_stamped_samples_count_as_missing_and_future_fleet_metric_is_invalid() {
    let now = t(100);
    let f = fleet_with_metric("queue_depth", avg(5.0), "");
    // Two instances say 10 now; a third's sample is stamped an hour ahead: missing.
    let mut s = snap(3, &[Some(10.0), Some(10.0)], now);
    s.instances.push(inst(2, InService, Some(0.0), t(3700)));
    let r = recommend(&f.metrics[0], &s, CalcInput::new(now, 3, 0.1));
    assert_eq!((r.missing_units, r.ready_units), (1, 2));

    let f = fleet_with_metric("external_queue_depth", avg(5.0), "");
    let s = with_fleet_metric(snap(3, &[Some(0.0); 3], now), 0.0, t(3700));
    let r = recommend(&f.metrics[0], &s, CalcInput::new(now, 3, 0.1));
    assert!(
        matches!(r.status, MetricStatus::Invalid(ref why) if why.contains("future")),
        "{:?}",
        r.status
    );
}

/// Kubernetes ≥ 1.33's per-direction tolerances (`replica_calculator_test.go`:
/// `TestReplicaCalcResourceTolerance` and the "outside configurable 1% tolerance" subtests),
/// and the band's edges, within it as `Tolerances.isWithin` writes it — `(1 - down) ≤ ratio ≤
/// (1 + up)` — where `1.1 - 1.0` is 0.10000000000000009 in floating point: the older
/// `|1 - ratio| ≤ tolerance` (ours until now) scaled at exactly ×1.1.
#[test]
fn upstream_tolerance_cases() {
    let now = t(0);
    // (name, signal, target, current, instances, fleet value, (scale-up, scale-down) tolerance, want)
    let cases = vec![
        (
            "Resource: outside 0 % tolerance (101 %)",
            "gpu_utilization",
            util(100),
            3,
            ready(&[101.0; 3]),
            None,
            (0.0, 0.0),
            Some(4),
        ),
        (
            "Resource: within 200 % scale-up tolerance",
            "gpu_utilization",
            util(100),
            3,
            ready(&[190.0; 3]),
            None,
            (2.0, 0.1),
            Some(3),
        ),
        (
            "Resource: outside 8 % scale-up tolerance",
            "gpu_utilization",
            util(100),
            3,
            ready(&[109.0; 3]),
            None,
            (0.08, 2.0),
            Some(4),
        ),
        (
            "Resource: within 36 % scale-down tolerance",
            "gpu_utilization",
            util(100),
            3,
            ready(&[65.0; 3]),
            None,
            (0.1, 0.36),
            Some(3),
        ),
        (
            "Resource: outside 34 % scale-down tolerance",
            "gpu_utilization",
            util(100),
            3,
            ready(&[65.0; 3]),
            None,
            (0.1, 0.34),
            Some(2),
        ),
        (
            "Pods: outside 1 %",
            "queue_depth",
            avg(20000.0),
            3,
            ready(&[20000.0, 21000.0, 21000.0]),
            None,
            (0.01, 0.1),
            Some(4),
        ),
        (
            "Object: outside 1 %",
            "custom_fleet",
            value(20000.0),
            3,
            ready(&[0.0; 3]),
            Some(20666.0),
            (0.01, 0.1),
            Some(4),
        ),
        (
            "ObjectPerPod: outside 1 %",
            "external_queue_depth",
            avg(5000.0),
            4,
            ready(&[0.0; 4]),
            Some(20208.0),
            (0.01, 0.1),
            Some(5),
        ),
        (
            "External: outside 1 %",
            "custom_fleet",
            value(8800.0),
            3,
            ready(&[0.0; 3]),
            Some(8900.0),
            (0.01, 0.1),
            Some(4),
        ),
        (
            "ExternalPerPod: outside 1 %",
            "external_queue_depth",
            avg(2800.0),
            3,
            ready(&[0.0; 3]),
            Some(8600.0),
            (0.01, 0.1),
            Some(4),
        ),
        (
            "+10 % edge, Utilization 55 vs 50",
            "gpu_utilization",
            util(50),
            3,
            ready(&[55.0; 3]),
            None,
            (0.1, 0.1),
            Some(3),
        ),
        (
            "+10 % edge, AverageValue 11 vs 10",
            "queue_depth",
            avg(10.0),
            3,
            ready(&[11.0; 3]),
            None,
            (0.1, 0.1),
            Some(3),
        ),
        (
            "+10 % edge, fleet AverageValue 33 / (10 × 3)",
            "external_queue_depth",
            avg(10.0),
            3,
            ready(&[0.0; 3]),
            Some(33.0),
            (0.1, 0.1),
            Some(3),
        ),
        (
            "+5 % edge, 20 × 21 vs 20",
            "queue_depth",
            avg(20.0),
            20,
            ready(&[21.0; 20]),
            None,
            (0.05, 0.05),
            Some(20),
        ),
        (
            "-5 % edge, 20 × 19 vs 20",
            "queue_depth",
            avg(20.0),
            20,
            ready(&[19.0; 20]),
            None,
            (0.05, 0.05),
            Some(20),
        ),
    ];
    for (name, signal, target, current, instances, fleet_value, (up, down), want) in cases {
        let f = fleet_with_metric(signal, target, "");
        let s = snapshot(current, &instances, fleet_value, now);
        let input = CalcInput {
            tolerance: up,
            tolerance_down: down,
            ..CalcInput::new(now, current, up)
        };
        let got = recommend(&f.metrics[0], &s, input);
        assert_eq!(got.recommendation, want, "{name}: {:?}", got.status);
    }
}
