//! HPA `behavior`: stabilization windows and rate policies (upstream
//! `horizontal.go`: `stabilizeRecommendationWithBehaviors`, `convertDesiredReplicasWithBehaviorRate`,
//! `calculateScaleUpLimitWithScalingRules`, `calculateScaleDownLimitWithBehaviors`).
//!
//! Both are pure functions of the recorded history; the engine owns the history and records
//! new entries.

use serde::{Deserialize, Serialize};

use crate::config::{Behavior, PolicyKind, ScalingRules, SelectPolicy};
use crate::model::{Timestamp, Units};

/// A recommendation (before stabilization) and when it was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedRecommendation {
    /// When.
    pub at: Timestamp,
    /// Recommended units.
    pub units: Units,
}

/// A change of desired capacity that was made, in units (always positive; the list it is in
/// says the direction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleEvent {
    /// When.
    pub at: Timestamp,
    /// Units added or removed.
    pub change: Units,
}

/// `true` when `at` is strictly after `now - window_secs` (Go's `After(cutoff)`).
pub(crate) fn within(at: Timestamp, now: Timestamp, window_secs: u64) -> bool {
    at.millis() > now.millis() - (window_secs as i64) * 1000
}

/// HPA's stabilization: scale-up uses the *lowest* recommendation of its window, scale-down the
/// *highest* of its window, the current recommendation included. Returns the stabilized units.
pub fn stabilize(
    history: &[TimedRecommendation],
    now: Timestamp,
    current: Units,
    desired: Units,
    behavior: &Behavior,
) -> Units {
    let mut up = desired;
    let mut down = desired;
    for r in history {
        if within(r.at, now, behavior.scale_up.stabilization_window_secs) {
            up = up.min(r.units);
        }
        if within(r.at, now, behavior.scale_down.stabilization_window_secs) {
            down = down.max(r.units);
        }
    }
    current.max(up).min(down)
}

/// Units added (or removed) by the events inside the last `period_secs`.
fn change_in_period(events: &[ScaleEvent], now: Timestamp, period_secs: u64) -> i64 {
    events
        .iter()
        .filter(|e| within(e.at, now, period_secs))
        .map(|e| e.change as i64)
        .sum()
}

/// Capacity at the start of a policy's period: current minus what was added plus what was
/// removed since then.
fn period_start(
    current: Units,
    up: &[ScaleEvent],
    down: &[ScaleEvent],
    now: Timestamp,
    period: u64,
) -> i64 {
    current as i64 - change_in_period(up, now, period) + change_in_period(down, now, period)
}

/// The highest capacity the scale-up rules allow now.
pub fn scale_up_limit(
    current: Units,
    up: &[ScaleEvent],
    down: &[ScaleEvent],
    rules: &ScalingRules,
    now: Timestamp,
) -> i64 {
    let pick: fn(i64, i64) -> i64 = match rules.select_policy {
        SelectPolicy::Disabled => return current as i64,
        SelectPolicy::Min => i64::min,
        SelectPolicy::Max => i64::max,
    };
    let proposals = rules.policies.iter().map(|p| {
        let start = period_start(current, up, down, now, p.period_secs);
        match p.kind {
            PolicyKind::Pods => start + p.value as i64,
            // Rounded up, so that a small group can always grow.
            PolicyKind::Percent => (start as f64 * (1.0 + p.value as f64 / 100.0)).ceil() as i64,
        }
    });
    proposals.reduce(pick).unwrap_or(current as i64)
}

/// The lowest capacity the scale-down rules allow now.
pub fn scale_down_limit(
    current: Units,
    up: &[ScaleEvent],
    down: &[ScaleEvent],
    rules: &ScalingRules,
    now: Timestamp,
) -> i64 {
    // For scale-down the policy allowing the *most* change gives the *lowest* limit.
    let pick: fn(i64, i64) -> i64 = match rules.select_policy {
        SelectPolicy::Disabled => return current as i64,
        SelectPolicy::Min => i64::max,
        SelectPolicy::Max => i64::min,
    };
    let proposals = rules.policies.iter().map(|p| {
        let start = period_start(current, up, down, now, p.period_secs);
        match p.kind {
            PolicyKind::Pods => start - p.value as i64,
            // Truncated toward zero, as Go's int32(float64) conversion.
            PolicyKind::Percent => (start as f64 * (1.0 - p.value as f64 / 100.0)) as i64,
        }
    });
    proposals.reduce(pick).unwrap_or(current as i64)
}

/// Which limit, if any, the rate step applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RateOutcome {
    /// Within range: `DesiredWithinRange`.
    DesiredWithinRange,
    /// Capped by the scale-up policies: `ScaleUpLimit`.
    ScaleUpLimit,
    /// Capped by `max`: `TooManyReplicas`.
    TooManyReplicas,
    /// Floored by the scale-down policies: `ScaleDownLimit`.
    ScaleDownLimit,
    /// Floored by `min`: `TooFewReplicas`.
    TooFewReplicas,
}

/// HPA's `convertDesiredReplicasWithBehaviorRate`: applies the rate policies and the bounds.
pub fn rate_limit(
    current: Units,
    desired: Units,
    (min, max): (Units, Units),
    up: &[ScaleEvent],
    down: &[ScaleEvent],
    behavior: &Behavior,
    now: Timestamp,
) -> (Units, RateOutcome) {
    if desired > current {
        let limit = scale_up_limit(current, up, down, &behavior.scale_up, now).max(current as i64);
        let (allowed, why) = if (max as i64) > limit {
            (limit as Units, RateOutcome::ScaleUpLimit)
        } else {
            (max, RateOutcome::TooManyReplicas)
        };
        if desired > allowed {
            return (allowed, why);
        }
    } else if desired < current {
        let limit =
            scale_down_limit(current, up, down, &behavior.scale_down, now).min(current as i64);
        let (allowed, why) = if (min as i64) < limit {
            (limit.max(0) as Units, RateOutcome::ScaleDownLimit)
        } else {
            (min, RateOutcome::TooFewReplicas)
        };
        if desired < allowed {
            return (allowed, why);
        }
    }
    (desired, RateOutcome::DesiredWithinRange)
}
