//! The decision engine: `(fleet policy, snapshot, engine state, now) → decision + new state`.
//!
//! Pure: no I/O, no clock, no async. The daemon and the simulator call [`decide`] alike. The
//! caller keeps the returned [`EngineState`] only once the decision has been applied (the
//! daemon persists it), so a failed apply does not leave phantom scale events behind.
//!
//! One decision runs HPA's reconcile order, with Knative's panic mode and schedules added:
//! 1. each metric's recommendation ([`policy::hpa`]); the highest valid one wins;
//! 2. bounds: the fleet's `min_units`/`max_units` moved by open schedule windows;
//! 3. current capacity outside the bounds → straight to the bound (HPA's min/max check);
//! 4. an invalid or stale metric blocks a scale-down (and all invalid → hold);
//! 5. stabilization windows, then rate policies and bounds ([`policy::behavior`]);
//! 6. panic mode may raise the result at once and forbids lowering it ([`policy::panic`]); it
//!    follows the demand signals only (not scale-up-only latency signals);
//! 7. the result is split over the pools ([`policy::split`]); when spot launches fail, spot
//!    instances are warned, or (with `burst_on_demand`) demand bursts past the panic
//!    threshold, on-demand (with its warm pool) covers the spot units not in service (the spot
//!    fallback).
//!
//! With `[fleets.predictive]`, the forecast floor ([`policy::predictive`]) joins the bounds of
//! step 2 like a schedule floor: it can only raise capacity, and applies even when data is
//! missing (raising is always safe).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::config::Fleet;
use crate::model::{Snapshot, Timestamp, Units};
use crate::policy::behavior::{self, RateOutcome, ScaleEvent, TimedRecommendation};
use crate::policy::budget::{self, BudgetStep, Ledger, Spend};
use crate::policy::headroom::{self, SpotRisk};
use crate::policy::hpa::{self, CalcInput, MetricRecommendation, MetricStatus};
use crate::policy::panic::{self, PanicState, PanicStep};
use crate::policy::predictive::{self, ColdStarts, PredictiveStep};
use crate::policy::schedule::{self, Bounds};
use crate::policy::split::{self, PoolTarget};

/// What the engine remembers between decisions of one fleet; all of it must survive a restart
/// (the daemon persists it). `Default` is a freshly started engine.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineState {
    /// When this engine made its first decision; `None` before it.
    pub started_at: Option<Timestamp>,
    /// Recent unstabilized recommendations (for the stabilization windows).
    pub recommendations: Vec<TimedRecommendation>,
    /// Recent scale-ups (for the rate policies).
    pub scale_up_events: Vec<ScaleEvent>,
    /// Recent scale-downs (for the rate policies).
    pub scale_down_events: Vec<ScaleEvent>,
    /// Panic mode.
    pub panic: PanicState,
    /// The spot fallback.
    #[serde(default)]
    pub fallback: split::FallbackState,
    /// Launch → in-service times seen (the lead of the predictive floor and of the spot
    /// headroom), when either is on.
    #[serde(default)]
    pub cold_starts: ColdStarts,
    /// What the fleet has cost this month, when every pool has a price.
    #[serde(default)]
    pub ledger: Ledger,
    /// The fleet's own spot interruption record (for the spot headroom).
    #[serde(default)]
    pub spot_risk: SpotRisk,
}

/// The direction of a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// More capacity.
    ScaleUp,
    /// Less capacity.
    ScaleDown,
    /// No change.
    Hold,
}

/// One line of the explanation, shaped like a `kubectl describe hpa` condition.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Condition {
    /// `AbleToScale`, `ScalingActive`, `ScalingLimited`, `Panic`, `Schedule` or `FreshStart`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Whether the condition holds.
    pub status: bool,
    /// A CamelCase reason, HPA's where HPA has one (`ScaleDownStabilized`, `ScaleUpLimit`, …).
    pub reason: &'static str,
    /// A sentence for humans.
    pub message: String,
}

/// The capacity after each step, units; `None` where a step did not run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stages {
    /// Highest valid metric recommendation.
    pub metrics: Option<Units>,
    /// After the stabilization windows.
    pub stabilized: Option<Units>,
    /// After rate policies and bounds.
    pub rate_limited: Option<Units>,
    /// After panic mode.
    pub panic: Option<Units>,
}

/// A decision for one fleet, with everything that explains it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    /// Fleet name.
    pub fleet: String,
    /// When the decision was made.
    pub at: Timestamp,
    /// Desired units before the decision.
    pub current_units: Units,
    /// Desired units decided.
    pub desired_units: Units,
    /// Direction.
    pub action: Action,
    /// Units in service when deciding.
    pub in_service_units: Units,
    /// Units booting when deciding.
    pub pending_units: Units,
    /// Each metric's calculation.
    pub metrics: Vec<MetricRecommendation>,
    /// The metric whose recommendation won, if any.
    pub winning_metric: Option<String>,
    /// The bounds in force.
    pub bounds: Bounds,
    /// The capacity after each step.
    pub stages: Stages,
    /// Panic mode after this decision.
    pub panic: Option<PanicStep>,
    /// The predictive floor, when `[fleets.predictive]` is on.
    pub predictive: Option<PredictiveStep>,
    /// The spend ledger, when every pool has a price.
    pub spend: Option<Spend>,
    /// The budget's verdict, with `[fleets.budget]`.
    pub budget: Option<BudgetStep>,
    /// Spot units added beyond need to absorb interruptions (`spot_headroom_max_fraction`).
    pub spot_headroom_units: Units,
    /// Why: HPA-style conditions.
    pub conditions: Vec<Condition>,
    /// Desired units per pool.
    pub pools: Vec<PoolTarget>,
    /// One line for logs and humans.
    pub summary: String,
}

impl Decision {
    /// The condition of type `kind`, if present.
    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }

    /// Whether a condition with this reason is present.
    pub fn has_reason(&self, reason: &str) -> bool {
        self.conditions.iter().any(|c| c.reason == reason)
    }
}

fn cond(
    kind: &'static str,
    status: bool,
    reason: &'static str,
    message: impl Into<String>,
) -> Condition {
    Condition {
        kind,
        status,
        reason,
        message: message.into(),
    }
}

/// Decides the desired capacity of `fleet` at `now`. Returns the decision and the state to
/// keep once it is applied.
pub fn decide(
    fleet: &Fleet,
    snap: &Snapshot,
    state: &EngineState,
    now: Timestamp,
) -> (Decision, EngineState) {
    // The pools' total may include what on-demand covers for spot (the fallback): the fleet's
    // own desired capacity is the total less that cover.
    let current = state.fallback.own_capacity(snap.desired_units);
    let ready = snap.in_service_units();
    let mut st = state.clone();
    let mut conditions = Vec::new();
    if st.started_at.is_none() {
        // HPA seeds the scale-down window with the current size; KPA starts in panic.
        st.started_at = Some(now);
        st.recommendations = vec![TimedRecommendation {
            at: now,
            units: current,
        }];
        st.panic = PanicState::fresh_start(now, current);
        conditions.push(cond(
            "FreshStart",
            true,
            "NoHistory",
            "first decision of this engine: capacity will not go down until history is rebuilt",
        ));
    }

    let mut bounds = schedule::bounds(fleet, now);
    // Launch → in-service times: the predictive floor's lead and the spot headroom's.
    if fleet.predictive.is_some() || fleet.spot_headroom_max_fraction > 0.0 {
        st.cold_starts.observe(snap, now);
    }
    let predictive_step = fleet.predictive.as_ref().map(|cfg| {
        let step = predictive::step(cfg, snap.forecast.as_ref(), &st.cold_starts, now);
        conditions.push(predictive_condition(&step, &mut bounds, fleet.max_units));
        step
    });
    if !bounds.active_schedules.is_empty() {
        conditions.push(cond(
            "Schedule",
            true,
            "ScheduleActive",
            format!(
                "{} open: bounds {}..={} units",
                bounds.active_schedules.join(", "),
                bounds.min_units,
                bounds.max_units
            ),
        ));
    }

    let input = CalcInput {
        now,
        current_units: current,
        tolerance: fleet.tolerance,
    };
    let metrics: Vec<MetricRecommendation> = fleet
        .metrics
        .iter()
        .map(|m| hpa::recommend(m, snap, input))
        .collect();
    let invalid: Vec<&MetricRecommendation> = metrics
        .iter()
        .filter(|m| matches!(m.status, MetricStatus::Invalid(_)))
        .collect();
    let best = metrics
        .iter()
        .filter_map(|m| m.recommendation.map(|u| (u, m)))
        .fold(
            None,
            |acc: Option<(Units, &MetricRecommendation)>, (u, m)| match acc {
                Some((bu, _)) if bu >= u => acc,
                _ => Some((u, m)),
            },
        );
    let metric_units = best.map(|(u, _)| u);
    let winning_metric = best.map(|(_, m)| m.name.clone());
    match best {
        Some((u, m)) => conditions.push(cond(
            "ScalingActive",
            true,
            "ValidMetricFound",
            format!(
                "{} recommends {u} units ({} vs target {})",
                m.name,
                fmt_opt(m.current),
                m.target
            ),
        )),
        None if invalid.is_empty() => conditions.push(cond(
            "ScalingActive",
            true,
            "NoMetricOpinion",
            "every metric abstained: capacity stays as it is",
        )),
        None => {}
    }
    let held_for_data = !invalid.is_empty() && metric_units.is_none_or(|u| u < current);
    if !invalid.is_empty() {
        let names: Vec<String> = invalid
            .iter()
            .map(|m| match &m.status {
                MetricStatus::Invalid(why) => format!("{}: {why}", m.name),
                _ => m.name.clone(),
            })
            .collect();
        conditions.push(cond(
            "ScalingActive",
            !held_for_data,
            "InvalidMetrics",
            format!(
                "{} — {}",
                names.join("; "),
                if held_for_data {
                    "holding: no scale-down on missing or stale data"
                } else {
                    "scale-up still allowed"
                }
            ),
        ));
    }

    let mut stages = Stages {
        metrics: metric_units,
        ..Stages::default()
    };
    let mut panic_step = None;
    let desired = if current > fleet.max_units {
        conditions.push(cond(
            "ScalingLimited",
            true,
            "TooManyReplicas",
            "current capacity above max_units",
        ));
        fleet.max_units
    } else if held_for_data {
        if current < bounds.min_units {
            conditions.push(too_few());
        }
        current.max(bounds.min_units)
    } else if current > bounds.max_units {
        conditions.push(cond(
            "ScalingLimited",
            true,
            "TooManyReplicas",
            "current capacity above the schedule's ceiling",
        ));
        bounds.max_units
    } else {
        let proposal = metric_units.unwrap_or(current);
        let stabilized =
            behavior::stabilize(&st.recommendations, now, current, proposal, &fleet.behavior);
        record_recommendation(&mut st, fleet, now, proposal);
        stages.stabilized = Some(stabilized);
        conditions.push(if stabilized != proposal {
            let (reason, msg) = if proposal >= current {
                ("ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation")
            } else {
                ("ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation")
            };
            cond("AbleToScale", true, reason, msg)
        } else {
            cond("AbleToScale", true, "ReadyForNewScale", "recommended size matches current size")
        });
        let (rated, outcome) = behavior::rate_limit(
            current,
            stabilized,
            (bounds.min_units, bounds.max_units),
            &st.scale_up_events,
            &st.scale_down_events,
            &fleet.behavior,
            now,
        );
        stages.rate_limited = Some(rated);
        conditions.push(rate_condition(outcome));
        // Panic follows demand (load signals), as KPA follows concurrency; latency is a
        // lagging symptom of a backlog and no measure of how much capacity is needed.
        let demand = fleet
            .metrics
            .iter()
            .zip(&metrics)
            .filter(|(spec, _)| !spec.signal.scale_up_only())
            .filter_map(|(_, m)| m.recommendation)
            .max()
            .unwrap_or(current);
        let step = panic::observe(&mut st.panic, &fleet.panic, now, demand, ready);
        let after_panic = panic::apply(&mut st.panic, &fleet.panic, rated, demand, ready);
        stages.panic = Some(after_panic);
        panic_step = Some(step);
        if step.active {
            conditions.push(cond(
                "Panic",
                true,
                if step.over_threshold { "DemandOverThreshold" } else { "PanicWindow" },
                format!(
                    "demand is {:.1}× in-service capacity (threshold {:.1}×): scaling on it at once, never down, until {} s below the threshold",
                    step.demand_ratio, fleet.panic.threshold, fleet.panic.stable_window_secs
                ),
            ));
        }
        if current < bounds.min_units {
            // Below a floor (the fleet's, a schedule's or the forecast's): at least the floor,
            // and more if the metrics want more — HPA would jump to the floor alone and follow
            // the metrics a sync later.
            conditions.push(too_few());
        }
        after_panic.clamp(bounds.min_units, bounds.max_units)
    };
    let prices = budget::unit_prices(fleet);
    let spend = prices.as_ref().map(|p| {
        let warm = budget::warm_volumes_usd_per_hour(fleet);
        budget::accrue(&mut st.ledger, p, &warm, snap, now)
    });
    let budget_step = match (&fleet.budget, &prices) {
        (Some(b), Some(p)) => {
            let keep = current.max(bounds.min_units);
            let step = budget::limit(b, fleet, p, st.ledger.month_usd, now, keep, desired);
            if step.alert {
                let limited = step.allowed_units < step.wanted_units;
                conditions.push(cond(
                    "Budget",
                    true,
                    if limited {
                        "BudgetLimited"
                    } else {
                        "OverBudget"
                    },
                    format!(
                        "{} units would cost ${:.2}/h, over the {} cap of ${:.2}/h: {}",
                        step.wanted_units,
                        step.wanted_usd_per_hour,
                        step.cap_from,
                        step.cap_usd_per_hour,
                        if limited {
                            format!("scale-up capped at {} units", step.allowed_units)
                        } else {
                            "no scale-down for money: holding".to_string()
                        }
                    ),
                ));
            }
            Some(step)
        }
        _ => None,
    };
    let desired = budget_step.as_ref().map_or(desired, |b| b.allowed_units);
    record_event(&mut st, fleet, now, current, desired);

    let action = match desired.cmp(&current) {
        std::cmp::Ordering::Greater => Action::ScaleUp,
        std::cmp::Ordering::Less => Action::ScaleDown,
        std::cmp::Ordering::Equal => Action::Hold,
    };
    let mut pools = split::split(fleet, desired);
    let burst = fleet.burst_on_demand && panic_step.is_some_and(|p| p.over_threshold);
    if let Some(fb) = split::apply_fallback(fleet, snap, &mut st.fallback, now, burst, &mut pools) {
        conditions.push(cond(
            "MarketFallback",
            true,
            if fb.new_failures > 0 {
                "SpotLaunchesFailing"
            } else if fb.interrupted_units > 0 {
                "SpotInterrupted"
            } else if st.fallback.last_burst == Some(now) {
                "BurstOnOnDemand"
            } else {
                "SpotNotDelivered"
            },
            format!(
                "{} spot launches failed, {} spot units warned of interruption; on-demand covers {} units until spot has its units in service ({} now) and {} s pass without a failure or a notice",
                fb.new_failures, fb.interrupted_units, fb.covering_units, fb.spot_in_service_units, fleet.spot_fallback_hold_secs
            ),
        ));
    }
    let spot_headroom_units = if fleet.spot_headroom_max_fraction > 0.0 {
        let rate = st.spot_risk.observe(fleet, snap, now);
        let lead = st.cold_starts.p95_secs().unwrap_or(DEFAULT_LEAD_SECS);
        let spot: Units = pools
            .iter()
            .filter(|t| t.market == crate::model::Market::Spot)
            .map(|t| t.desired_units)
            .sum();
        let total: Units = pools.iter().map(|t| t.desired_units).sum();
        let mut extra =
            headroom::headroom_units(spot, rate, lead, fleet.spot_headroom_max_fraction)
                .min(fleet.max_units.saturating_sub(total));
        // The budget sheds the headroom first: none while it alerts, and only what fits.
        if let (Some(b), Some(p)) = (&budget_step, &prices) {
            let spot_price = fleet
                .pools
                .iter()
                .find(|p| p.market == crate::model::Market::Spot)
                .and_then(|sp| p.get(sp.name.as_str()).copied())
                .unwrap_or(0.0);
            let spare = b.cap_usd_per_hour - budget::cost_per_hour(fleet, p, desired);
            if b.alert {
                extra = 0;
            } else if spot_price > 0.0 {
                extra = extra.min((spare / spot_price).floor().max(0.0) as Units);
            }
        }
        if let Some(t) = pools
            .iter_mut()
            .find(|t| t.market == crate::model::Market::Spot)
            .filter(|_| extra > 0)
        {
            t.desired_units += extra;
            // Like the fallback's cover: not the fleet's own capacity.
            st.fallback.extra_units += extra;
            st.fallback.applied_total = total + extra;
            conditions.push(cond(
                "SpotHeadroom",
                true,
                "InterruptionRisk",
                format!(
                    "{rate:.3} interruptions per spot unit-hour (6 h half-life) × {lead:.0} s cold start: +{extra} spot units"
                ),
            ));
        }
        extra
    } else {
        0
    };
    let summary = summarize(
        action,
        current,
        desired,
        winning_metric.as_deref(),
        metric_units,
        &conditions,
    );
    let decision = Decision {
        fleet: fleet.name.clone(),
        at: now,
        current_units: current,
        desired_units: desired,
        action,
        in_service_units: ready,
        pending_units: snap.pending_units(),
        metrics,
        winning_metric,
        bounds,
        stages,
        panic: panic_step,
        predictive: predictive_step,
        spend,
        budget: budget_step,
        spot_headroom_units,
        conditions,
        pools,
        summary,
    };
    (decision, st)
}

/// Raises `bounds` to the predictive floor when it applies (the floor wins over a schedule's
/// ceiling, as schedule floors do; the fleet's `max_units` always holds), and explains it.
fn predictive_condition(step: &PredictiveStep, bounds: &mut Bounds, max_units: Units) -> Condition {
    let (Some(floor), Some(peak)) = (step.floor_units, step.peak_demand) else {
        return cond(
            "Predictive",
            false,
            "NoForecast",
            format!(
                "no forecast covers the next {:.0} s: reactive scaling only",
                step.lead_secs
            ),
        );
    };
    let what = format!(
        "forecast {peak:.1} at now + {:.0} s ({} lead, the p{:.0} within a minute of it) needs {floor} units",
        step.lead_secs,
        step.lead_from,
        100.0 * step.quantile
    );
    if !step.applied {
        return cond(
            "Predictive",
            false,
            "ForecastOnly",
            format!("{what}; reported, not applied (forecast_only)"),
        );
    }
    let floor = floor.min(max_units);
    if floor <= bounds.min_units {
        return cond(
            "Predictive",
            false,
            "ForecastBelowFloor",
            format!("{what}; the floor is already {}", bounds.min_units),
        );
    }
    bounds.min_units = floor;
    bounds.max_units = bounds.max_units.max(floor);
    cond(
        "Predictive",
        true,
        "ForecastFloor",
        format!("{what}: floor raised to {floor}"),
    )
}

/// The lead for the spot headroom before any cold start has been observed, seconds.
const DEFAULT_LEAD_SECS: f64 = 300.0;

fn too_few() -> Condition {
    cond(
        "ScalingLimited",
        true,
        "TooFewReplicas",
        "current capacity below the floor",
    )
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"))
}

fn rate_condition(outcome: RateOutcome) -> Condition {
    match outcome {
        RateOutcome::DesiredWithinRange => cond(
            "ScalingLimited",
            false,
            "DesiredWithinRange",
            "the desired count is within the acceptable range",
        ),
        RateOutcome::ScaleUpLimit => cond(
            "ScalingLimited",
            true,
            "ScaleUpLimit",
            "the desired replica count is increasing faster than the maximum scale rate",
        ),
        RateOutcome::TooManyReplicas => cond(
            "ScalingLimited",
            true,
            "TooManyReplicas",
            "the desired replica count is more than the maximum replica count",
        ),
        RateOutcome::ScaleDownLimit => cond(
            "ScalingLimited",
            true,
            "ScaleDownLimit",
            "the desired replica count is decreasing faster than the maximum scale rate",
        ),
        RateOutcome::TooFewReplicas => cond(
            "ScalingLimited",
            true,
            "TooFewReplicas",
            "the desired replica count is less than the minimum replica count",
        ),
    }
}

/// Keeps the recommendation for the stabilization windows; forgets what no window can see.
fn record_recommendation(st: &mut EngineState, fleet: &Fleet, now: Timestamp, units: Units) {
    let b = &fleet.behavior;
    let keep_secs = b
        .scale_up
        .stabilization_window_secs
        .max(b.scale_down.stabilization_window_secs) as f64;
    st.recommendations
        .retain(|r| r.at.plus_secs(keep_secs) > now);
    st.recommendations
        .push(TimedRecommendation { at: now, units });
}

/// Keeps the scale event for the rate policies; forgets what no policy period can see.
fn record_event(
    st: &mut EngineState,
    fleet: &Fleet,
    now: Timestamp,
    current: Units,
    desired: Units,
) {
    let b = &fleet.behavior;
    let prune = |events: &mut Vec<ScaleEvent>, period: u64| {
        events.retain(|e| e.at.plus_secs(period as f64) > now)
    };
    prune(&mut st.scale_up_events, b.scale_up.longest_period_secs());
    prune(
        &mut st.scale_down_events,
        b.scale_down.longest_period_secs(),
    );
    if desired > current {
        st.scale_up_events.push(ScaleEvent {
            at: now,
            change: desired - current,
        });
    } else if desired < current {
        st.scale_down_events.push(ScaleEvent {
            at: now,
            change: current - desired,
        });
    }
}

fn summarize(
    action: Action,
    current: Units,
    desired: Units,
    winner: Option<&str>,
    metric_units: Option<Units>,
    conditions: &[Condition],
) -> String {
    let mut s = match action {
        Action::ScaleUp => format!("scale up {current} → {desired} units"),
        Action::ScaleDown => format!("scale down {current} → {desired} units"),
        Action::Hold => format!("hold at {current} units"),
    };
    if let (Some(w), Some(u)) = (winner, metric_units) {
        let _ = write!(s, "; {w} wants {u}");
    }
    let limits: Vec<&str> = conditions
        .iter()
        .filter(|c| {
            c.status && c.kind != "ScalingActive" && c.reason != "ReadyForNewScale"
                || (c.kind == "ScalingActive" && !c.status)
        })
        .map(|c| c.reason)
        .collect();
    if !limits.is_empty() {
        let _ = write!(s, "; {}", limits.join(", "));
    }
    s
}
