//! The stages of one decision, in the order [`super::decide`] runs them. Each stage is a method
//! that takes the units of the stage before, returns its own units and records a typed
//! condition; what a stage needs from the fleet, the snapshot and the state is in [`Ladder`].

use std::fmt::Write as _;

use super::{
    Action, CapacityStep, Condition, ConditionType, Decision, EngineState, Reason, Stages,
};
use crate::config::{Fleet, PredictiveMode};
use crate::model::{Snapshot, Timestamp, Units};
use crate::placement::{self, PlaceInput};
use crate::policy::behavior::{self, RateOutcome, ScaleEvent, TimedRecommendation};
use crate::policy::budget::{self, BudgetStep, Spend};
use crate::policy::capacity;
use crate::policy::flaps::KeptAfterFlaps;
use crate::policy::hpa::{self, CalcInput, MetricRecommendation, MetricStatus};
use crate::policy::panic::{self, PanicState, PanicStep};
use crate::policy::predictive::{self, PredictiveStep};
use crate::policy::schedule::{self, Bounds};

/// One decision in progress.
pub struct Ladder<'a> {
    fleet: &'a Fleet,
    snap: &'a Snapshot,
    now: Timestamp,
    /// The state being built for the next decision.
    st: EngineState,
    /// The fleet's own desired units before the decision (HPA's `currentReplicas`).
    pub current: Units,
    /// Units in service that are the fleet's own (placement's extras left out).
    ready: Units,
    calc: CalcInput,
    conditions: Vec<Condition>,
    stages: Stages,
    panic_step: Option<PanicStep>,
    predictive_step: Option<PredictiveStep>,
    spend: Option<Spend>,
    budget_step: Option<BudgetStep>,
    scale_down_window_secs: u64,
    /// What a release below the level recent flaps bought back kept (its `units`: what the
    /// release goes to at least), when that window governed it.
    kept_after_flaps: Option<KeptAfterFlaps>,
    ramp_step: Option<crate::policy::ramp::RampStep>,
    /// The work estimate's relative noise from the requests counted (scale-down and ramp).
    count_noise: f64,
    /// The requests the in-service servers had over the last minute (ramp-ahead's surge test).
    requests: Option<f64>,
    /// How long no request has reached the servers, seconds, while that silence is held
    /// through with no forecast floor to hold it ([`Ladder::hold`]).
    silence_held_secs: Option<f64>,
}

/// The metrics stage's outcome.
pub struct Metrics {
    /// Each metric's calculation.
    pub all: Vec<MetricRecommendation>,
    /// The highest valid recommendation.
    pub units: Option<Units>,
    /// Its metric.
    pub winner: Option<String>,
    /// Metrics that could not be computed.
    pub invalid: usize,
    /// The highest recommendation of the demand (not scale-up-only) signals: what panic
    /// follows.
    pub demand: Option<Units>,
}

impl<'a> Ladder<'a> {
    /// Starts a decision: the fleet's own capacity, the fresh-start seed, cold starts seen.
    pub fn start(
        fleet: &'a Fleet,
        snap: &'a Snapshot,
        state: &EngineState,
        now: Timestamp,
    ) -> Self {
        let mut st = state.clone();
        let current = st.market.own_capacity(snap);
        let extras = st.market.extras(snap, current);
        let ready = snap.in_service_units().saturating_sub(extras.ready_units);
        let mut conditions = Vec::new();
        if st.started_at.is_none() {
            conditions.push(fresh_start(&mut st, fleet, now, current, ready));
        }
        // Launch → in-service times: the lead of the predictive floor, the spot headroom and
        // ramp-ahead.
        let ramp = fleet.capacity.ramp_ahead && fleet.capacity.model.is_some();
        if fleet.predictive.is_some() || fleet.spot_headroom_max_fraction > 0.0 || ramp {
            st.cold_starts.observe(snap, now);
        }
        let correction = capacity::learn(&mut st.correction, fleet, snap, current, now);
        capacity::observe_queue(&mut st.correction, fleet, snap, now);
        let queueing_since = st.correction.queueing_since;
        let settled = rates_settled(&st, now);
        let count_noise = capacity::work_noise(snap);
        let noise = capacity::upper_noise(count_noise, st.ramp.relative_noise());
        let scale_down_share = capacity::scale_down_share(fleet, noise);
        let queue_over_budget = capacity::queue_over_budget(fleet, snap, now);
        let queue_floor_units = fleet.capacity.model.and_then(|m| {
            let slo = fleet.slo.ttft_p95_secs;
            capacity::queueing_floor_units(&m, snap, slo, &st.correction, noise, fleet.max_units)
        });
        if let (Some(p), Some(m)) = (&fleet.predictive, fleet.capacity.model) {
            if p.demand_per_unit.is_none() && settled {
                let (per_min, busy) = capacity::settled_demand(&m, snap);
                let busy = busy / correction;
                let u = fleet.capacity.target_utilization;
                predictive::learn_demand_per_unit(&mut st.demand_per_unit, per_min, busy, u);
            }
        }
        Ladder {
            fleet,
            snap,
            now,
            st,
            current,
            ready,
            calc: CalcInput {
                now,
                current_units: current,
                tolerance: fleet.behavior.scale_up.tolerance.unwrap_or(fleet.tolerance),
                tolerance_down: fleet
                    .behavior
                    .scale_down
                    .tolerance
                    .unwrap_or(fleet.tolerance),
                excluded_status_units: extras.status_units,
                excluded_ready_units: extras.ready_units,
                work: fleet.capacity.model.map(|model| capacity::WorkInput {
                    model,
                    backlog_horizon_secs: capacity::backlog_horizon_secs(
                        fleet,
                        snap,
                        queueing_since,
                        now,
                    ),
                    fleet_window_secs: capacity::fleet_window_secs(snap),
                }),
                correction,
                scale_down_share,
                queue_floor_units,
                queue_over_budget,
            },
            conditions,
            stages: Stages::default(),
            panic_step: None,
            predictive_step: None,
            spend: None,
            budget_step: None,
            scale_down_window_secs: fleet.behavior.scale_down.stabilization_window_secs,
            kept_after_flaps: None,
            ramp_step: None,
            count_noise,
            requests: capacity::request_activity(snap),
            silence_held_secs: None,
        }
    }

    /// Stage 1: the bounds in force — the fleet's, moved by open schedules and raised by the
    /// forecast floor.
    pub fn bounds(&mut self) -> Bounds {
        let mut bounds = schedule::bounds(self.fleet, self.now);
        let silent_secs = predictive::silence_held(
            predictive::observe_silence(&mut self.st.silence, self.requests, self.now),
            self.fleet.silence_hold_mins,
        )
        .filter(|_| !self.demand_read_upstream());
        // With no forecast floor to hold it (no `[fleets.predictive]`, no forecast yet, no
        // demand per unit, or `forecast_only`), a silence is held like missing data
        // ([`Ladder::hold`]).
        self.silence_held_secs = silent_secs;
        if let Some(cfg) = &self.fleet.predictive {
            let per_unit = cfg.demand_per_unit.or(self.st.demand_per_unit);
            let step = predictive::step(
                cfg,
                per_unit,
                self.calc.tolerance,
                self.snap.forecast.as_ref(),
                &self.st.cold_starts,
                silent_secs,
                self.now,
            );
            self.conditions.push(predictive_condition(
                &step,
                &mut bounds,
                self.fleet.max_units,
            ));
            if step.applied {
                self.silence_held_secs = None;
            }
            self.predictive_step = Some(step);
        }
        if !bounds.active_schedules.is_empty() {
            self.conditions.push(Condition::holds(
                ConditionType::Schedule,
                Reason::ScheduleActive,
                format!(
                    "{} open: bounds {}..={} units",
                    bounds.active_schedules.join(", "),
                    bounds.min_units,
                    bounds.max_units
                ),
            ));
        }
        bounds
    }

    /// Stage 2: every metric's recommendation; the highest valid one wins.
    pub fn metrics(&mut self) -> Metrics {
        let all: Vec<MetricRecommendation> = self
            .fleet
            .metrics
            .iter()
            .map(|m| hpa::recommend(m, self.snap, self.calc))
            .collect();
        let best = all
            .iter()
            .filter_map(|m| m.recommendation.map(|u| (u, m)))
            .fold(
                None,
                |acc: Option<(Units, &MetricRecommendation)>, (u, m)| match acc {
                    Some((bu, _)) if bu >= u => acc,
                    _ => Some((u, m)),
                },
            );
        let invalid: Vec<&MetricRecommendation> = all
            .iter()
            .filter(|m| matches!(m.status, MetricStatus::Invalid(_)))
            .collect();
        match best {
            Some((u, m)) => self.conditions.push(Condition::holds(
                ConditionType::ScalingActive,
                Reason::ValidMetricFound,
                format!(
                    "{} recommends {u} units ({} vs target {})",
                    m.name,
                    m.current
                        .map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}")),
                    m.target
                ),
            )),
            None if invalid.is_empty() => self.conditions.push(Condition::holds(
                ConditionType::ScalingActive,
                Reason::NoMetricOpinion,
                "every metric abstained: capacity stays as it is",
            )),
            None => {}
        }
        let demand = self
            .fleet
            .metrics
            .iter()
            .zip(&all)
            .filter(|(spec, _)| !spec.signal.scale_up_only())
            .filter_map(|(_, m)| m.recommendation)
            .max();
        let mut units = best.map(|(u, _)| u);
        let mut winner = best.map(|(_, m)| m.name.clone());
        if let Some(r) = self.ramp(&all).filter(|r| units.is_some_and(|u| *r > u)) {
            units = Some(r);
            let sized = self.ramp_step.is_some_and(|s| s.units.is_some());
            if !sized {
                let step = self.ramp_step.expect("set with a hold");
                self.conditions.push(Condition::holds(
                    ConditionType::Ramp,
                    Reason::WorkRising,
                    format!(
                        "work rising {:.2} units a minute (fit R² {:.2}): {r} units, what it needs one cold start on, are not released",
                        step.slope_units_per_min, step.r2
                    ),
                ));
            }
            winner = Some(if sized { "ramp-ahead" } else { "work-rising" }.into());
        }
        self.stages.metrics = units;
        Metrics {
            winner,
            units,
            invalid: invalid.len(),
            demand,
            all,
        }
    }

    /// Ramp-ahead ([`crate::policy::ramp`]) on the capacity-model metrics' demand in units;
    /// the units it recommends, when the rise is steady.
    fn ramp(&mut self, all: &[MetricRecommendation]) -> Option<Units> {
        // The demand of the units in service, those that did not report (a failed scrape, a
        // server's first minute) taken at the reporting ones' average: they serve their share
        // of the load balancer's requests all the same. Read as idle, one server not reporting
        // was a drop in the demand that stayed in the fit for five minutes and could release
        // what the rise's hold kept.
        let demand = self
            .fleet
            .metrics
            .iter()
            .zip(all)
            .filter(|(spec, m)| capacity::corrected(spec) && m.status == MetricStatus::Valid)
            .filter_map(|(_, m)| {
                m.ratio
                    .map(|r| r * (m.ready_units + m.missing_units) as f64)
            })
            .filter(|d| d.is_finite())
            .reduce(f64::max)?;
        let lead = self.lead_secs();
        let step = self
            .st
            .ramp
            .observe(self.now, demand, self.requests, lead, self.count_noise);
        if !self.fleet.capacity.ramp_ahead || !rates_settled(&self.st, self.now) {
            return None;
        }
        self.ramp_step = Some(step);
        let Some(units) = step.units_beyond(self.current, self.calc.tolerance) else {
            // Not steady enough to size ahead, but rising: what the rise will need is not
            // released (the caller says so when it bites).
            return step.hold_units.map(|h| h.min(self.current));
        };
        self.conditions.push(Condition::holds(
            ConditionType::Ramp,
            Reason::RampAhead,
            format!(
                "work rising {:.2} units a minute (fit R² {:.2}): {:.1} units now, {units} a cold start ({:.0} s) and half the rate window ahead",
                step.slope_units_per_min, step.r2, step.demand_units, step.lead_secs
            ),
        ));
        Some(units)
    }

    /// Stage 3: capacity outside the bounds goes to the bound; missing or stale data holds
    /// (no scale-down), and so does a silence no forecast floor holds. `None` when the decision
    /// goes on to the next stages.
    pub fn hold(&mut self, metrics: &Metrics, bounds: &Bounds) -> Option<Units> {
        let current = self.current;
        let held = metrics.invalid > 0 && metrics.units.is_none_or(|u| u < current);
        let silence_held = self
            .silence_held_secs
            .filter(|_| metrics.units.is_none_or(|u| u < current));
        if metrics.invalid > 0 {
            self.conditions.push(invalid_condition(&metrics.all, held));
        }
        let limited = |why: &str| {
            Condition::holds(ConditionType::ScalingLimited, Reason::TooManyReplicas, why)
        };
        if current > self.fleet.max_units {
            self.conditions
                .push(limited("current capacity above max_units"));
            Some(self.fleet.max_units)
        } else if held {
            if current < bounds.min_units {
                self.conditions.push(too_few());
            }
            Some(current.max(bounds.min_units))
        } else if current > bounds.max_units {
            self.conditions
                .push(limited("current capacity above the schedule's ceiling"));
            Some(bounds.max_units)
        } else if let Some(silent) = silence_held {
            // No request at the servers reads as zero work, but nothing says the demand went:
            // an outage upstream looks the same, and the traffic it held back returns at once,
            // a step from wherever the fleet was let down to (the NASA log's outage in
            // `scripts/unseen.sh`: six silent minutes in twelve, then ~400 requests a minute
            // at once). Held as missing data is, and recorded as a
            // recommendation, so the scale-down window keeps the capacity past the silence's
            // end as it would any recent need: its first minute of traffic is partial.
            let units = current.max(bounds.min_units);
            self.conditions.push(Condition {
                kind: ConditionType::ScalingActive,
                status: false,
                reason: Reason::SilenceHeld,
                message: format!(
                    "no request has reached the servers for {silent:.0} s and no forecast says what to expect — holding {units} units as on missing data (silence_hold_mins)"
                ),
            });
            self.record_recommendation(units);
            Some(units)
        } else {
            None
        }
    }

    /// Whether a fleet-level demand signal (an external queue, the load balancer's request
    /// count, a PromQL sum) reads: then it, not the servers' silence, says what the demand is
    /// — an SQS-fed fleet whose queue has drained has no work, not an outage to wait out —
    /// and no silence is held, by the forecast floor or as missing data. Asked only during a
    /// silence, before the metrics stage: it computes those metrics' recommendations itself.
    fn demand_read_upstream(&self) -> bool {
        self.fleet
            .metrics
            .iter()
            .filter(|spec| spec.signal.reads_demand_upstream())
            .any(|spec| hpa::recommend(spec, self.snap, self.calc).status == MetricStatus::Valid)
    }

    /// Records a recommendation for later stabilization windows, forgetting those no window
    /// can reach.
    fn record_recommendation(&mut self, units: Units) {
        let b = &self.fleet.behavior;
        let keep_secs =
            b.scale_up
                .stabilization_window_secs
                .max(crate::policy::flaps::max_window_secs(
                    b.scale_down.stabilization_window_secs,
                )) as f64;
        let now = self.now;
        self.st
            .recommendations
            .retain(|r| r.at.plus_secs(keep_secs) > now);
        self.st
            .recommendations
            .push(TimedRecommendation { at: now, units });
    }

    /// Stage 4: the stabilization windows — the scale-down one lengthened after recent flaps
    /// and on a noisy work ([`crate::policy::flaps`]); the recommendation is recorded for later
    /// windows.
    pub fn stabilize(&mut self, proposal: Units) -> Units {
        let fleet = self.fleet;
        let b = &fleet.behavior;
        let base = b.scale_down.stabilization_window_secs;
        let noise = self.st.ramp.minute_to_minute_noise(self.now).unwrap_or(0.0);
        self.st.flaps.observe_recommendation(self.now, proposal);
        self.scale_down_window_secs = self.st.flaps.scale_down_window_secs(base, noise);
        let lengthened;
        let behavior = if self.scale_down_window_secs == base {
            b
        } else {
            let mut l = b.clone();
            l.scale_down.stabilization_window_secs = self.scale_down_window_secs;
            lengthened = l;
            &lengthened
        };
        let stabilized = behavior::stabilize(
            &self.st.recommendations,
            self.now,
            self.current,
            proposal,
            behavior,
        );
        let stabilized = self.keep_after_flaps(stabilized, base);
        self.record_recommendation(proposal);
        self.stages.stabilized = Some(stabilized);
        self.conditions.push(if stabilized == proposal {
            Condition::holds(
                ConditionType::AbleToScale,
                Reason::ReadyForNewScale,
                "recommended size matches current size",
            )
        } else if proposal >= self.current {
            Condition::holds(
                ConditionType::AbleToScale,
                Reason::ScaleUpStabilized,
                "recent recommendations were lower than current one, applying the lowest recent recommendation",
            )
        } else {
            let lengthened = self.lengthened_window_message(base, noise);
            Condition::holds(
                ConditionType::AbleToScale,
                Reason::ScaleDownStabilized,
                format!("recent recommendations were higher than current one, applying the highest recent recommendation{lengthened}"),
            )
        });
        stabilized
    }

    /// A release keeps the capacity recent flaps bought back, as long after it was last wanted
    /// as they showed it wanted again ([`crate::policy::flaps`]); the window that governs a
    /// release below that level is the one a later flap measures its gap from.
    fn keep_after_flaps(&mut self, stabilized: Units, base: u64) -> Units {
        if stabilized >= self.current {
            return stabilized;
        }
        let Some(kept) = self
            .st
            .flaps
            .kept_after_flaps(base, &self.st.recommendations, self.now)
            .filter(|k| k.window_secs > self.scale_down_window_secs)
        else {
            return stabilized;
        };
        let units = stabilized.max(kept.units.min(self.current));
        if stabilized < kept.level_units {
            self.scale_down_window_secs = kept.window_secs;
            self.kept_after_flaps = Some(KeptAfterFlaps { units, ..kept });
        }
        units
    }

    /// Why the scale-down window is longer than the policy's, for the condition (empty when
    /// it is not). A release below what recent flaps bought back is governed by their window
    /// (set with it in [`Self::keep_after_flaps`]), whether or not it kept anything.
    fn lengthened_window_message(&self, base: u64, noise: f64) -> String {
        if let Some(k) = self.kept_after_flaps {
            return format!(
                " (keeping {} of the {} units a recent flap bought back: wanted again {} s after it was last wanted, so kept {} s)",
                k.units, k.level_units, k.gap_secs, k.window_secs
            );
        }
        if self.scale_down_window_secs <= base {
            return String::new();
        }
        let flaps = self.st.flaps.recent.len();
        let why = if self.st.flaps.scale_down_window_secs(base, 0.0) == self.scale_down_window_secs
        {
            format!("after {flaps} recent flaps")
        } else {
            format!("by the work's swing of ±{:.1} % a minute", 100.0 * noise)
        };
        format!(
            " (window {} s: lengthened {why})",
            self.scale_down_window_secs
        )
    }

    /// Stage 5: the rate policies, and the bounds.
    pub fn rate_limit(&mut self, stabilized: Units, bounds: &Bounds) -> Units {
        let (rated, outcome) = behavior::rate_limit(
            self.current,
            stabilized,
            (bounds.min_units, bounds.max_units),
            &self.st.scale_up_events,
            &self.st.scale_down_events,
            &self.fleet.behavior,
            self.now,
        );
        self.stages.rate_limited = Some(rated);
        self.conditions.push(rate_condition(outcome));
        rated
    }

    /// Stage 6: panic mode follows the demand signals at once and never goes down while it
    /// lasts. Latency is a lagging symptom of a backlog, no measure of the capacity needed, so
    /// scale-up-only signals do not drive it.
    pub fn panic(&mut self, rated: Units, metrics: &Metrics) -> Units {
        let cfg = &self.fleet.panic;
        let demand = metrics.demand.unwrap_or(self.current);
        let step = panic::observe(&mut self.st.panic, cfg, self.now, demand, self.ready);
        let after = panic::apply(&mut self.st.panic, cfg, rated, demand, self.ready);
        self.stages.panic = Some(after);
        self.panic_step = Some(step);
        if step.active {
            self.conditions.push(Condition::holds(
                ConditionType::Panic,
                if step.over_threshold {
                    Reason::DemandOverThreshold
                } else {
                    Reason::PanicWindow
                },
                format!(
                    "demand is {:.1}× in-service capacity (threshold {:.1}×): scaling on it at once, never down, until {} s below the threshold",
                    step.demand_ratio, cfg.threshold, cfg.stable_window_secs
                ),
            ));
        }
        after
    }

    /// Stage 7: at least the floor (the fleet's, a schedule's or the forecast's), and more if
    /// the stages above want more — HPA would jump to the floor alone and follow the metrics a
    /// sync later; at most the ceiling.
    pub fn floor(&mut self, units: Units, bounds: &Bounds) -> Units {
        if self.current < bounds.min_units {
            self.conditions.push(too_few());
        }
        units.clamp(bounds.min_units, bounds.max_units)
    }

    /// Stage 8: the spend ledger is billed; with `[fleets.budget]`, a scale-up is capped at
    /// what the caps allow — never below the capacity running or the floor.
    pub fn budget(&mut self, desired: Units, bounds: &Bounds) -> Units {
        let Some(prices) = budget::unit_prices(self.fleet) else {
            return desired;
        };
        // The warm pools as this decision's placement will size them (`finish`).
        let sizes = placement::warm_pool_sizes(self.fleet, self.largest_step_units());
        let kept = |pool: &str| sizes.iter().find(|w| w.pool == pool).map(|w| w.min_size);
        let warm = budget::warm_volumes_usd_per_hour(self.fleet, &kept);
        self.spend = Some(budget::accrue(
            &mut self.st.ledger,
            &prices,
            &warm,
            self.snap,
            self.now,
        ));
        let Some(cfg) = &self.fleet.budget else {
            return desired;
        };
        let keep = self.current.max(bounds.min_units);
        let step = budget::limit(
            cfg,
            self.fleet,
            &prices,
            self.st.ledger.month_usd,
            self.now,
            keep,
            desired,
        );
        if step.alert {
            self.conditions.push(budget_condition(&step));
        }
        let allowed = step.allowed_units;
        self.stages.budget = Some(allowed);
        self.budget_step = Some(step);
        allowed
    }

    /// Stage 9 and the end: records the scale event, places the units over the pools and
    /// writes the decision.
    pub fn finish(
        mut self,
        desired: Units,
        metrics: Metrics,
        bounds: Bounds,
    ) -> (Decision, EngineState) {
        let (now, current) = (self.now, self.current);
        record_event(&mut self.st, self.fleet, now, current, desired);
        self.st
            .flaps
            .observe(now, current, desired, self.scale_down_window_secs);
        let action = match desired.cmp(&current) {
            std::cmp::Ordering::Greater => Action::ScaleUp,
            std::cmp::Ordering::Less => Action::ScaleDown,
            std::cmp::Ordering::Equal => Action::Hold,
        };
        let input = PlaceInput {
            now,
            own_units: desired,
            burst: self.panic_step.is_some_and(|p| p.over_threshold),
            lead_secs: self.lead_secs(),
            headroom_cap: self.headroom_cap(desired),
            largest_step_units: self.largest_step_units(),
        };
        let placed = placement::place(self.fleet, self.snap, &mut self.st.market, input);
        for t in &placed.pools {
            self.st.market.record_applied(t);
        }
        self.conditions.extend(placed.conditions);
        let summary = summarize(
            action,
            current,
            desired,
            metrics.winner.as_deref(),
            metrics.units,
            &self.conditions,
        );
        let capacity_step = self.capacity_step();
        let decision = Decision {
            fleet: self.fleet.name.clone(),
            at: now,
            current_units: current,
            desired_units: desired,
            action,
            in_service_units: self.snap.in_service_units(),
            pending_units: self.snap.pending_units(),
            latency: self.snap.latency,
            metrics: metrics.all,
            winning_metric: metrics.winner,
            bounds,
            stages: self.stages,
            panic: self.panic_step,
            predictive: self.predictive_step,
            spend: self.spend,
            budget: self.budget_step,
            spot_headroom_units: placed.headroom_units,
            cover: placed.cover,
            scale_down_window_secs: self.scale_down_window_secs,
            flaps_total: self.st.flaps.total,
            capacity: capacity_step,
            ramp: self.ramp_step,
            conditions: self.conditions,
            pools: placed.pools,
            warm_pools: placed.warm_pools,
            summary,
        };
        (decision, self.st)
    }

    /// The lead ramp-ahead and the spot headroom size on, seconds: the fleet's observed cold
    /// starts ([`crate::policy::predictive::ColdStarts::lead_secs`]), and before enough are
    /// seen `[fleets.predictive] default_lead_secs` — the predictive floor's default, so an
    /// operator who sets it to the real cold start sets it for all three (without the table,
    /// its default, [`crate::config::Predictive::DEFAULT_LEAD_SECS`]).
    fn lead_secs(&self) -> f64 {
        let default = self
            .fleet
            .predictive
            .as_ref()
            .map_or(crate::config::Predictive::DEFAULT_LEAD_SECS, |p| {
                p.default_lead_secs
            });
        self.st.cold_starts.lead_secs(default as f64).0
    }

    /// The largest step the demand has taken lately, units (the warm pools are sized on it).
    fn largest_step_units(&self) -> f64 {
        self.st.ramp.largest_step.map_or(0.0, |s| s.0)
    }

    /// The capacity model as used, for the decision.
    fn capacity_step(&self) -> Option<CapacityStep> {
        let m = self.calc.work?.model;
        let k = self.calc.correction;
        Some(CapacityStep {
            target_utilization: self.fleet.capacity.target_utilization,
            correction: k,
            prefill_tokens_per_sec_per_unit: m.prefill_tokens_per_sec * k,
            decode_tokens_per_sec_per_unit: capacity::decode_tokens_per_sec(&m) * k,
            served_busy_units: capacity::served_units(&m, self.snap),
            queue_floor_units: self.calc.queue_floor_units,
            queue_factor: self.st.correction.queue_factor,
            measured_speed: self.st.correction.measured_speed,
        })
    }

    /// The budget sheds the spot headroom first: none while it alerts, and only what fits
    /// under the cap otherwise.
    fn headroom_cap(&self, desired: Units) -> Option<Units> {
        let (step, prices) = (self.budget_step.as_ref()?, budget::unit_prices(self.fleet)?);
        if step.alert {
            return Some(0);
        }
        let spot_price = self
            .fleet
            .pools
            .iter()
            .find(|p| p.market == crate::model::Market::Spot)
            .and_then(|p| prices.get(p.name.as_str()).copied())
            .unwrap_or(0.0);
        let spare = step.cap_usd_per_hour - budget::cost_per_hour(self.fleet, &prices, desired);
        (spot_price > 0.0).then(|| (spare / spot_price).floor().max(0.0) as Units)
    }
}

/// Whether the engine has run long enough for the servers' rates to mean what they say: two
/// rate windows. In the first, the rates cover less than a window; in the second, they still
/// count requests *finished* against work *begun* by servers that a start found idle or a
/// restart found mid-way — the rise of the first minutes is the measurement filling, not
/// demand (HPA skips a pod's CPU samples during its initialization period for the same
/// reason). Ramp-ahead and the learned demand per unit wait for it; the reactive stages do not.
fn rates_settled(st: &EngineState, now: Timestamp) -> bool {
    st.started_at
        .is_some_and(|s| now.secs_since(s) >= 2.0 * crate::model::RATE_WINDOW_SECS)
}

/// HPA seeds the scale-down window with the current size when it has no recommendations for
/// the autoscaler (`reconcileKey`: `if _, init := a.recommendations[key]; !init`), so a restart
/// that lost the history never scales down — and a history it was handed is kept, not replaced;
/// KPA starts in panic only when panic is enabled and more than one unit is ready
/// (`pkg/autoscaler/scaling/autoscaler.go`: "if the scale is 0 or 1, normal Autoscaler
/// behavior is fine").
fn fresh_start(
    st: &mut EngineState,
    fleet: &Fleet,
    now: Timestamp,
    current: Units,
    ready: Units,
) -> Condition {
    st.started_at = Some(now);
    let handed = st.recommendations.len();
    if handed == 0 {
        st.recommendations = vec![TimedRecommendation {
            at: now,
            units: current,
        }];
    }
    if fleet.panic.enabled && ready > 1 {
        st.panic = PanicState::fresh_start(now, current);
    }
    let message = if handed == 0 {
        "first decision of this engine: capacity will not go down until history is rebuilt"
            .to_string()
    } else {
        format!("first decision of this engine: the {handed} recommendations it was handed are its scale-down window's history")
    };
    Condition::holds(ConditionType::FreshStart, Reason::NoHistory, message)
}

/// Raises `bounds` to the predictive floor when it applies (the floor wins over a schedule's
/// ceiling, as schedule floors do; the fleet's `max_units` always holds), and explains it.
fn predictive_condition(step: &PredictiveStep, bounds: &mut Bounds, max_units: Units) -> Condition {
    let kind = ConditionType::Predictive;
    let (Some(floor), Some(peak)) = (step.floor_units, step.peak_demand) else {
        let why = if step.demand_per_unit.is_none() {
            "the demand one unit serves is not learned yet (demand_per_unit = \"auto\")".to_string()
        } else {
            format!("no forecast covers the next {:.0} s", step.lead_secs)
        };
        return Condition::absent(
            kind,
            Reason::NoForecast,
            format!("{why}: reactive scaling only"),
        );
    };
    let what = format!(
        "forecast {peak:.1} at now + {:.0} s ({} lead, the p{:.0} within a minute of it) needs {floor} units",
        step.lead_secs,
        step.lead_from,
        100.0 * step.quantile
    );
    if step.mode != PredictiveMode::ForecastAndScale {
        return Condition::absent(
            kind,
            Reason::ForecastOnly,
            format!("{what}; reported, not applied (forecast_only)"),
        );
    }
    if !step.applied {
        return Condition::absent(
            kind,
            Reason::NoRiseAhead,
            format!(
                "{what}; not applied: no rise ahead (forecast now {:.1}; a rise must exceed the tolerance over the lowest forecast of the last lead), the reactive policy follows the demand",
                step.level_now.unwrap_or(f64::NAN)
            ),
        );
    }
    let floor = floor.min(max_units);
    if floor <= bounds.min_units {
        return Condition::absent(
            kind,
            Reason::ForecastBelowFloor,
            format!("{what}; the floor is already {}", bounds.min_units),
        );
    }
    bounds.min_units = floor;
    bounds.max_units = bounds.max_units.max(floor);
    if let Some(silent) = step.silent_secs {
        return Condition::holds(
            kind,
            Reason::SilenceHeld,
            format!(
                "{what}: floor raised to {floor} — no request has reached the servers for {silent:.0} s while the forecast expects traffic; held through the silence (silence_hold_mins), since traffic an outage upstream held back comes back at once"
            ),
        );
    }
    Condition::holds(
        kind,
        Reason::ForecastFloor,
        format!("{what}: floor raised to {floor}"),
    )
}

fn invalid_condition(all: &[MetricRecommendation], held: bool) -> Condition {
    let names: Vec<String> = all
        .iter()
        .filter_map(|m| match &m.status {
            MetricStatus::Invalid(why) => Some(format!("{}: {why}", m.name)),
            _ => None,
        })
        .collect();
    Condition {
        kind: ConditionType::ScalingActive,
        status: !held,
        reason: Reason::InvalidMetrics,
        message: format!(
            "{} — {}",
            names.join("; "),
            if held {
                "holding: no scale-down on missing or stale data"
            } else {
                "scale-up still allowed"
            }
        ),
    }
}

fn too_few() -> Condition {
    Condition::holds(
        ConditionType::ScalingLimited,
        Reason::TooFewReplicas,
        "current capacity below the floor",
    )
}

fn rate_condition(outcome: RateOutcome) -> Condition {
    let (reason, message) = match outcome {
        RateOutcome::DesiredWithinRange => {
            return Condition::absent(
                ConditionType::ScalingLimited,
                Reason::DesiredWithinRange,
                "the desired count is within the acceptable range",
            )
        }
        RateOutcome::ScaleUpLimit => (
            Reason::ScaleUpLimit,
            "the desired replica count is increasing faster than the maximum scale rate",
        ),
        RateOutcome::TooManyReplicas => (
            Reason::TooManyReplicas,
            "the desired replica count is more than the maximum replica count",
        ),
        RateOutcome::ScaleDownLimit => (
            Reason::ScaleDownLimit,
            "the desired replica count is decreasing faster than the maximum scale rate",
        ),
        RateOutcome::TooFewReplicas => (
            Reason::TooFewReplicas,
            "the desired replica count is less than the minimum replica count",
        ),
    };
    Condition::holds(ConditionType::ScalingLimited, reason, message)
}

fn budget_condition(step: &BudgetStep) -> Condition {
    let limited = step.allowed_units < step.wanted_units;
    Condition::holds(
        ConditionType::Budget,
        if limited {
            Reason::BudgetLimited
        } else {
            Reason::OverBudget
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
    )
}

/// Keeps the scale event for the rate policies; forgets what no policy period can see.
pub(crate) fn record_event(
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
    let notable: Vec<&str> = conditions
        .iter()
        .filter(|c| c.is_notable())
        .map(|c| c.reason.as_str())
        .collect();
    if !notable.is_empty() {
        let _ = write!(s, "; {}", notable.join(", "));
    }
    s
}
