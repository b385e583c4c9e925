//! Kubernetes HPA's replica calculation, one metric at a time (upstream
//! `pkg/controller/podautoscaler/replica_calculator.go`), in capacity units.
//!
//! Per-instance metrics follow `GetResourceReplicas` (Utilization) and `calcPlainMetricReplicas`
//! (AverageValue); fleet-level metrics follow `GetObjectMetricReplicas` /
//! `GetExternalMetricReplicas` (Value) and `GetExternalPerPodMetricReplicas` (AverageValue).
//! Instances are grouped as HPA groups pods: in service with a fresh sample (*ready*), in
//! service without one (*missing*), booting (*unready*), on their way out (*ignored*).
//!
//! Units: an instance of weight `w` counts as `w` replicas. A Utilization sample is averaged
//! with weight `w`; an AverageValue sample is a total for the instance, so the per-unit value
//! is Σ value / Σ w. With every weight 1 this is HPA exactly.
//!
//! Figures are compared as HPA compares the metrics APIs' quantities, in milli-values: a
//! sample truncated to a thousandth as the adapters that make floats quantities do, a target
//! rounded up to one as `Quantity.MilliValue()` does, a per-pod average divided in int64 as
//! `GetMetricUsageRatio` does — except the capacity model's own figures (`Figures`).
//!
//! Deviations, on purpose:
//! - A *scale-up-only* signal (P95 TTFT) abstains when at or below its target: a low latency
//!   does not say how many replicas would still be enough.
//! - A fleet-level `Value` metric with no instance in service scales the *status* (booting,
//!   in-service and interrupted: `Snapshot::status_units`) units instead of HPA's zero ready
//!   pods, which would recommend 0 while a queue builds during a cold start.
//! - Capacity that market placement put beyond the fleet's own (on-demand covering warned
//!   spot, spot headroom) is left out of the ready and status counts fleet-level metrics scale
//!   (`CalcInput::excluded_*`): it serves, but it is not the fleet's desired capacity, and
//!   counting it would turn a cover into a permanent scale-up (HPA's "within tolerance → keep
//!   the running pods").

use serde::Serialize;

use crate::config::{MetricSpec, Target};
use crate::model::{LifecycleState, Snapshot, Timestamp, Units};

/// Outcome of one metric's calculation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricRecommendation {
    /// The metric's name in the policy.
    pub name: String,
    /// Its signal, e.g. `queue_depth`.
    pub signal: &'static str,
    /// Valid, invalid (and why), or abstaining.
    pub status: MetricStatus,
    /// The observed figure compared with the target: the average across ready instances
    /// (per unit) for per-instance metrics, the value itself for fleet-level ones.
    pub current: Option<f64>,
    /// The target figure.
    pub target: f64,
    /// Observed ÷ target, as HPA's usage ratio.
    pub ratio: Option<f64>,
    /// Recommended capacity in units, when valid.
    pub recommendation: Option<Units>,
    /// Units in service with a fresh sample.
    pub ready_units: Units,
    /// Units in service without a fresh sample.
    pub missing_units: Units,
    /// Units still booting.
    pub unready_units: Units,
}

/// Whether a metric could be used.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum MetricStatus {
    /// It produced a recommendation.
    Valid,
    /// It could not be computed (no sample, stale, not a number): blocks any scale-down.
    Invalid(String),
    /// A scale-up-only signal below its target: no opinion.
    Abstain(String),
}

/// Everything one calculation needs besides the metric and the snapshot.
#[derive(Clone, Copy, Debug)]
pub struct CalcInput {
    /// Now.
    pub now: Timestamp,
    /// HPA's `currentReplicas`: the desired units currently set.
    pub current_units: Units,
    /// HPA's tolerance for a ratio above 1 (scale-up).
    pub tolerance: f64,
    /// HPA's tolerance for a ratio below 1 (scale-down): `behavior.scaleDown.tolerance`
    /// (Kubernetes 1.33's configurable tolerance), else the same as `tolerance`.
    pub tolerance_down: f64,
    /// Status units placement added beyond the fleet's own (left out of the status count).
    pub excluded_status_units: Units,
    /// In-service units placement added beyond the fleet's own (left out of the ready count).
    pub excluded_ready_units: Units,
    /// The capacity model, for `token_work`, with the time its waiting requests' work is spread
    /// over and the fleet's common rate window ([`crate::policy::capacity::WorkInput`]).
    pub work: Option<crate::policy::capacity::WorkInput>,
    /// Capacity counted per unit ÷ the profile's ([`crate::policy::capacity::Correction`]):
    /// capacity-model targets are scaled by it.
    pub correction: f64,
    /// `scale_down_utilization ÷ target_utilization`: a scale-down on a capacity-model target
    /// lands where the work would use this share of the target (1: at the target, as HPA).
    pub scale_down_share: f64,
    /// The fewest units whose prefill queue keeps its wait within the SLO's share
    /// ([`crate::policy::capacity::queueing_floor_units`]): a capacity-model scale-down goes
    /// no lower.
    pub queue_floor_units: Option<Units>,
    /// The latest latency sample shows the P95 prefill wait already over the queue's budget
    /// at this size ([`crate::policy::capacity::queue_over_budget`]): a capacity-model
    /// scale-down, which could only lengthen it, waits.
    pub queue_over_budget: bool,
}

impl CalcInput {
    /// A calculation at `now` from `current_units`, with `tolerance` and nothing excluded.
    pub fn new(now: Timestamp, current_units: Units, tolerance: f64) -> Self {
        CalcInput {
            now,
            current_units,
            tolerance,
            tolerance_down: tolerance,
            excluded_status_units: 0,
            excluded_ready_units: 0,
            work: None,
            correction: 1.0,
            scale_down_share: 1.0,
            queue_floor_units: None,
            queue_over_budget: false,
        }
    }
}

impl CalcInput {
    /// Whether a usage ratio is within the tolerance of its direction: no change. As upstream
    /// (≥ 1.33, `Tolerances.isWithin`) writes it, the band's edges included: `1.1 - 1.0` is
    /// 0.10000000000000009 in floating point, so the older `|1 - ratio| ≤ tolerance` scaled at a
    /// ratio of exactly 1.1 (55 % of a 50 % target), where today's HPA holds.
    fn within(&self, ratio: f64) -> bool {
        1.0 - self.tolerance_down <= ratio && ratio <= 1.0 + self.tolerance
    }
}

fn fresh(now: Timestamp, at: Timestamp, stale_after_secs: u64, value: f64) -> bool {
    crate::model::usable(now, at, stale_after_secs, value).is_ok()
}

/// Computes one metric's recommendation.
pub fn recommend(spec: &MetricSpec, snap: &Snapshot, input: CalcInput) -> MetricRecommendation {
    let target = if crate::policy::capacity::corrected(spec) {
        scale_target(spec.target, input.correction)
    } else {
        spec.target
    };
    let mut rec = MetricRecommendation {
        name: spec.name.clone(),
        signal: spec.signal.name(),
        status: MetricStatus::Valid,
        current: None,
        target: target.figure(),
        ratio: None,
        recommendation: None,
        ready_units: 0,
        missing_units: 0,
        unready_units: 0,
    };
    if !target.figure().is_finite() {
        rec.status = MetricStatus::Invalid(
            "target \"auto\" is unresolved: no capacity model (the reference type has no profile)"
                .into(),
        );
        return rec;
    }
    if spec.signal.per_instance() {
        per_instance(spec, target, snap, input, &mut rec);
    } else {
        fleet_level(spec, target, snap, input, &mut rec);
    }
    // A capacity-model scale-down goes only as far as keeps the work at or under the
    // scale-down utilisation: sized on the lower target, never below HPA's own answer.
    let down = input.scale_down_share;
    if crate::policy::capacity::corrected(spec) && down < 1.0 {
        if let Some(r) = rec.recommendation.filter(|r| *r < input.current_units) {
            let mut lower = rec.clone();
            let target = scale_target(target, down);
            if spec.signal.per_instance() {
                per_instance(spec, target, snap, input, &mut lower);
            } else {
                fleet_level(spec, target, snap, input, &mut lower);
            }
            let at_down = lower.recommendation.unwrap_or(r);
            // Nor below the fleet whose prefill queue keeps its wait within the SLO: a small
            // fleet queues more at the same utilisation.
            let queue_floor = input.queue_floor_units.unwrap_or(0);
            rec.recommendation = Some(if input.queue_over_budget {
                input.current_units
            } else {
                at_down.max(queue_floor).clamp(r, input.current_units)
            });
        }
    }
    if spec.signal.scale_up_only() && rec.status == MetricStatus::Valid {
        if let Some(r) = rec.ratio.filter(|r| *r <= 1.0 + input.tolerance) {
            rec.status = MetricStatus::Abstain(format!(
                "at {:.0} % of its target: a scale-up-only signal has no say below it",
                r * 100.0
            ));
            rec.recommendation = None;
        }
    }
    rec
}

/// One instance's contribution: its weight and its value (or none).
struct Point {
    weight: f64,
    value: f64,
}

/// HPA's usage ratio over a set of points, each valued in `figures`, and the average it
/// compares with the target, in the metric's own unit.
fn usage_ratio(target: Target, points: &[Point], figures: Figures) -> (f64, f64) {
    let weight: f64 = points.iter().map(|p| p.weight).sum();
    match target {
        // Weighted average of percentages, truncated to a whole percent as upstream's
        // `GetResourceUtilizationRatio` does (`int32(Σ usage × 100 ÷ Σ requests)`): 55.9 % of
        // a 50 % target is 55 %, within a 10 % tolerance.
        Target::Utilization { .. } => {
            let avg = (points.iter().map(|p| p.value * p.weight).sum::<f64>() / weight).trunc();
            (avg / target.figure(), avg)
        }
        // Total over units (upstream's `GetMetricUsageRatio`: Σ ÷ pods, in int64 milli-values).
        _ => {
            let total: f64 = points.iter().map(|p| p.value).sum();
            let avg = figures.average(total, weight);
            (avg / figures.target(target.figure()), figures.unit(avg))
        }
    }
}

/// How a metric's figures are compared: as HPA compares the metrics APIs' quantities, in
/// whole milli-values — every metric but the capacity model's — or exactly. `token_work`'s busy
/// units and an `"auto"` target are figures this engine computes; no Kubernetes quantity
/// stands behind them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Figures {
    Milli,
    Exact,
}

impl Figures {
    fn of(spec: &MetricSpec) -> Self {
        if spec.signal == crate::config::Signal::TokenWork || spec.auto_target {
            Figures::Exact
        } else {
            Figures::Milli
        }
    }

    /// A sample as the metrics APIs carry it: adapters (prometheus-adapter, KEDA) make a
    /// float a quantity with `NewMilliQuantity(int64(v × 1000))`, which truncates.
    fn sample(self, v: f64) -> f64 {
        match self {
            Figures::Milli => (v * 1000.0).trunc(),
            Figures::Exact => v,
        }
    }

    /// A target as HPA reads it from the spec, `Quantity.MilliValue()`: rounded up to a whole
    /// thousandth (`ScaledValue(Milli)`). The policy's figure is the decimal written in it, so
    /// one within floating point's error of a thousandth is that thousandth: 0.3 is 300m.
    fn target(self, v: f64) -> f64 {
        match self {
            Figures::Milli => {
                let x = v * 1000.0;
                if (x - x.round()).abs() < 1e-6 {
                    x.round()
                } else {
                    x.ceil()
                }
            }
            Figures::Exact => v,
        }
    }

    /// The average of a total over `weight` units: upstream divides in int64, truncating.
    fn average(self, total: f64, weight: f64) -> f64 {
        match self {
            Figures::Milli => (total / weight).floor(),
            Figures::Exact => total / weight,
        }
    }

    /// A figure back in the metric's own unit.
    fn unit(self, v: f64) -> f64 {
        match self {
            Figures::Milli => v / 1000.0,
            Figures::Exact => v,
        }
    }
}

/// `target` with its figure times `factor`.
fn scale_target(target: Target, factor: f64) -> Target {
    target.with_figure(target.figure() * factor)
}

/// An instance's sample of `spec`: the stored one, or for `token_work` the units its server's
/// load keeps busy through the capacity model.
fn sample_of(
    spec: &MetricSpec,
    inst: &crate::model::Instance,
    input: CalcInput,
) -> Option<(f64, Timestamp)> {
    if spec.signal == crate::config::Signal::TokenWork {
        let work = input.work?;
        let load = inst.load?;
        let busy = crate::policy::capacity::window_busy_units(&load, inst.weight_units, &work);
        return Some((busy, load.at));
    }
    inst.samples.get(&spec.name).map(|s| (s.value, s.at))
}

fn per_instance(
    spec: &MetricSpec,
    target: Target,
    snap: &Snapshot,
    input: CalcInput,
    rec: &mut MetricRecommendation,
) {
    let figures = Figures::of(spec);
    // Utilization averages percentages as they are (and truncates the average); other
    // targets compare totals in `figures`.
    let valued = |v: f64| match target {
        Target::Utilization { .. } => v,
        _ => figures.sample(v),
    };
    let mut ready = Vec::with_capacity(snap.instances.len());
    let mut missing_weights = Vec::new();
    let mut unready_weights = Vec::new();
    for inst in &snap.instances {
        let w = inst.weight_units;
        match inst.state {
            LifecycleState::Pending => unready_weights.push(w),
            LifecycleState::InService => match sample_of(spec, inst, input) {
                Some((value, at)) if fresh(input.now, at, spec.stale_after_secs, value) => ready
                    .push(Point {
                        weight: w as f64,
                        value: valued(value),
                    }),
                _ => missing_weights.push(w),
            },
            LifecycleState::Draining
            | LifecycleState::Terminating
            | LifecycleState::Interrupted => {}
        }
    }
    rec.ready_units = ready.iter().map(|p| p.weight as Units).sum();
    rec.missing_units = missing_weights.iter().sum();
    rec.unready_units = unready_weights.iter().sum();
    if ready.is_empty() {
        rec.status = MetricStatus::Invalid(if rec.missing_units > 0 {
            format!(
                "no fresh sample (≤ {} s old) from any of {} in-service units",
                spec.stale_after_secs, rec.missing_units
            )
        } else {
            "no instance in service to measure".to_string()
        });
        return;
    }
    let (usage, average) = usage_ratio(target, &ready, figures);
    rec.ratio = Some(usage);
    rec.current = Some(average);
    let current = input.current_units;
    let scale_up_with_unready = !unready_weights.is_empty() && usage > 1.0;
    if !scale_up_with_unready && missing_weights.is_empty() {
        rec.recommendation = Some(if input.within(usage) {
            current
        } else {
            (usage * rec.ready_units as f64).ceil() as Units
        });
        return;
    }

    // Fill in the missing and unready instances as HPA does, and recompute. At a ratio of
    // exactly 1 upstream leaves missing instances out altogether.
    let mut all = ready;
    if usage != 1.0 {
        let fill = |w: Units| Point {
            weight: w as f64,
            value: match (usage < 1.0, target) {
                // Scale-down: a missing instance counts as fully used (100 % or the target).
                (
                    true,
                    Target::Utilization {
                        average_utilization,
                    },
                ) => average_utilization.max(100.0),
                // Upstream fills in the target's milli-value.
                (true, t) => figures.target(t.figure()) * w as f64,
                // Scale-up: it counts as idle.
                (false, _) => 0.0,
            },
        };
        all.extend(missing_weights.iter().map(|&w| fill(w)));
    }
    if scale_up_with_unready {
        all.extend(unready_weights.iter().map(|&w| Point {
            weight: w as f64,
            value: 0.0,
        }));
    }
    let (new_usage, _) = usage_ratio(target, &all, figures);
    let flips = (usage < 1.0 && new_usage > 1.0) || (usage > 1.0 && new_usage < 1.0);
    if input.within(new_usage) || flips {
        rec.recommendation = Some(current);
        return;
    }
    let considered: f64 = all.iter().map(|p| p.weight).sum();
    let proposed = (new_usage * considered).ceil() as Units;
    if (new_usage < 1.0 && proposed > current) || (new_usage > 1.0 && proposed < current) {
        rec.recommendation = Some(current);
        return;
    }
    rec.recommendation = Some(proposed);
}

fn fleet_level(
    spec: &MetricSpec,
    target: Target,
    snap: &Snapshot,
    input: CalcInput,
    rec: &mut MetricRecommendation,
) {
    rec.ready_units = snap
        .in_service_units()
        .saturating_sub(input.excluded_ready_units);
    rec.unready_units = snap.pending_units();
    let status = snap
        .status_units()
        .saturating_sub(input.excluded_status_units);
    let sample = match snap.fleet_metrics.get(&spec.name) {
        None => {
            rec.status = MetricStatus::Invalid(match snap.metric_errors.get(&spec.name) {
                Some(why) => format!("its source failed: {why}"),
                None => "no sample in the snapshot".into(),
            });
            return;
        }
        Some(s) => match crate::model::usable(input.now, s.at, spec.stale_after_secs, s.value) {
            Err(why) => {
                rec.status = MetricStatus::Invalid(why.to_string());
                return;
            }
            Ok(()) => s.value,
        },
    };
    rec.current = Some(sample);
    match target {
        Target::AverageValue { average_value } => {
            // GetExternalPerPodMetricReplicas: compares with the *status* replicas, in
            // milli-values.
            let figures = Figures::of(spec);
            let (usage, per_unit) = (figures.sample(sample), figures.target(average_value));
            let ratio = usage / (per_unit * status as f64);
            rec.ratio = Some(ratio);
            rec.recommendation = Some(if !input.within(ratio) || status == 0 {
                (usage / per_unit).ceil() as Units
            } else {
                status
            });
        }
        Target::Value { value }
        | Target::Utilization {
            average_utilization: value,
        } => {
            // getUsageRatioReplicaCount, in milli-values.
            let figures = Figures::of(spec);
            let ratio = figures.sample(sample) / figures.target(value);
            rec.ratio = Some(ratio);
            rec.recommendation = Some(if input.current_units == 0 {
                ratio.ceil() as Units
            } else if input.within(ratio) {
                input.current_units
            } else {
                let base = if rec.ready_units > 0 {
                    rec.ready_units
                } else {
                    status
                };
                (ratio * base as f64).ceil() as Units
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Figures;

    /// Milli-values as HPA sees them: a sample truncated as an adapter's
    /// `NewMilliQuantity(int64(v × 1000))` does it, a target rounded up as
    /// `Quantity.MilliValue()` does — a decimal that is a whole thousandth staying one.
    #[test]
    fn samples_truncate_and_targets_round_up_to_milli_values() {
        // (figure, as a sample, as a target)
        let cases = [
            (0.3, 300.0, 300.0),
            (0.33, 330.0, 330.0),
            (7.0, 7000.0, 7000.0),
            (0.0011, 1.0, 2.0),
            (0.0005, 0.0, 1.0),
            (1.66666, 1666.0, 1667.0),
            (0.0, 0.0, 0.0),
        ];
        for (v, sample, target) in cases {
            assert_eq!(Figures::Milli.sample(v), sample, "sample {v}");
            assert_eq!(Figures::Milli.target(v), target, "target {v}");
            assert_eq!(Figures::Exact.sample(v), v);
            assert_eq!(Figures::Exact.target(v), v);
        }
    }
}
