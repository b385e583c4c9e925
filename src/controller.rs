//! One iteration of a fleet, in the core: [`FleetController::plan`] (observe → decide → place
//! → guard → order) and [`FleetController::commit`] (what happened → the state to keep). The
//! daemon and the simulator run exactly this; they only observe, apply and persist — as
//! cluster-autoscaler's `RunOnce(now)` keeps one iteration in the core and the cloud behind an
//! interface.
//!
//! What the controller owns, so no caller can get it wrong:
//! - **the guard**: a plan whose pool targets fall outside the fleet's `min_units..=max_units`
//!   is refused (typed [`Refusal`]), never applied; the groups' own `MinSize`/`MaxSize` are
//!   respected by placement, with a `GroupBounds` condition when a target was moved;
//! - **apply order**: a plan that moves capacity between pools (a lower and a raise) raises
//!   first when the raises fit under `max_units` on top of what the pools hold, and stops a
//!   lower that a failed raise would turn into lost capacity at the plan's total — a swap from
//!   spot to on-demand whose on-demand call fails keeps its spot, and a swap that also shrinks
//!   the fleet still sheds what the plan shed beyond it; at `max_units`, it lowers first, and
//!   skips a raise that would pass `max_units` because a lowering failed — so the sum never
//!   exceeds `max_units` at any point of a tick, and never falls below the plan's total for a
//!   raise that did not happen;
//! - **isolation**: each pool's outcome is reported on its own; one pool's failure does not
//!   stop the others;
//! - **dry-run**: nothing is applied; the state keeps its observations (warnings, failures,
//!   recommendations) but no scale event and no change to what the pools hold;
//! - **warm pools**: sized from the forecast peak of the next hour
//!   (`predictive.warm_pool_from_forecast`);
//! - **what to persist**: the engine state after [`FleetController::commit`].

use std::collections::BTreeMap;

use crate::config::Fleet;
use crate::engine::{self, Condition, ConditionType, Decision, EngineState, Reason};
use crate::model::{Market, Snapshot, Timestamp, Units};
use crate::placement::PoolTarget;
pub use crate::placement::WarmPoolTarget;

/// One fleet's controller: its engine state between iterations.
#[derive(Clone, Debug, Default)]
pub struct FleetController {
    state: EngineState,
}

/// A change of one pool's desired capacity.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PoolChange {
    /// Pool name.
    pub pool: String,
    /// Its Auto Scaling Group.
    pub asg_name: String,
    /// Its market.
    pub market: Market,
    /// Desired capacity observed, units.
    pub from_units: Units,
    /// Desired capacity to set, units.
    pub to_units: Units,
    /// Why this pool moves: the placement condition that moved it, else the fleet's own
    /// decision.
    pub reason: Reason,
}

/// Why a plan is not applied at all.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, thiserror::Error)]
pub enum Refusal {
    /// The pool targets add up to a total outside the fleet's bounds (a group's own bounds
    /// forced it, or a bug): nothing is sent.
    #[error("refusing to set {total} units: outside the fleet's {min}..={max}")]
    OutsideFleetBounds {
        /// The pools' total.
        total: Units,
        /// `min_units`.
        min: Units,
        /// `max_units`.
        max: Units,
    },
}

/// What one iteration intends.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The engine's decision, with its explanation and the final pool targets.
    pub decision: Decision,
    /// Pool changes in the order they are applied ([`ordered_changes`]); empty when refused.
    pub changes: Vec<PoolChange>,
    /// Warm-pool sizes to set.
    pub warm_pools: Vec<WarmPoolTarget>,
    /// Set when nothing may be applied.
    pub refusal: Option<Refusal>,
    /// Nothing is applied (the daemon's `--dry-run`).
    pub dry_run: bool,
    /// The state to keep if every change is applied.
    next: EngineState,
    max_units: Units,
    /// The pools' total the plan sets.
    total_units: Units,
    /// Raises are applied before lowers.
    raises_first: bool,
}

/// What happened to one pool change.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "snake_case")]
pub enum PoolOutcome {
    /// Set.
    Applied,
    /// The cloud refused or failed; why.
    Failed(String),
    /// Not attempted: a raise that would have pushed the total past `max_units` after a
    /// lowering failed.
    SkippedOverMax,
    /// Not attempted: a lower that would have taken the total below the plan's, because a
    /// raise before it failed, and the pools held no more than the plan's total (the capacity
    /// it was to move stays where it is).
    SkippedUnderPlan,
    /// Set part of the way: a raise before it failed, so the lower stopped at the plan's
    /// total — the excess the plan shed goes, the capacity the failed raise was to replace
    /// stays. The change reported holds the units set; the plan's target is here.
    LoweredInPart {
        /// The plan's target for the pool, units.
        planned_units: Units,
    },
    /// Not attempted: dry-run.
    DryRun,
}

/// Applies a plan's changes in order, one report at a time: the edge calls [`Applier::next`],
/// performs the call, and [`Applier::report`]s its result.
pub struct Applier<'p> {
    plan: &'p Plan,
    next: usize,
    /// The change last handed out, as handed out, and the plan's target for the pool when
    /// that was a lower cut short at the plan's total.
    current: Option<(PoolChange, Option<Units>)>,
    /// Each pool's desired capacity as it stands (observed, then as applied).
    standing: BTreeMap<String, Units>,
    outcomes: Vec<(PoolChange, PoolOutcome)>,
}

impl Applier<'_> {
    /// The next change to apply, or `None` when done.
    pub fn next_change(&mut self) -> Option<PoolChange> {
        while let Some(c) = self.plan.changes.get(self.next) {
            self.next += 1;
            if self.plan.dry_run {
                self.outcomes.push((c.clone(), PoolOutcome::DryRun));
                continue;
            }
            let total: Units = self.standing.values().sum();
            if c.to_units > c.from_units
                && total + (c.to_units - c.from_units) > self.plan.max_units
            {
                self.outcomes.push((c.clone(), PoolOutcome::SkippedOverMax));
                continue;
            }
            // Raised first, a lower lands on the plan's total unless a raise did not happen.
            // Then it goes only as far as the plan's total: what the plan shed beyond the
            // failed raise's share still goes (a shrinking swap), what the raise was to
            // replace stays.
            if self.plan.raises_first
                && c.to_units < c.from_units
                && total < self.plan.total_units + (c.from_units - c.to_units)
            {
                let excess = total.saturating_sub(self.plan.total_units);
                if excess == 0 {
                    self.outcomes
                        .push((c.clone(), PoolOutcome::SkippedUnderPlan));
                    continue;
                }
                let part = PoolChange {
                    to_units: c.from_units - excess,
                    ..c.clone()
                };
                self.current = Some((part.clone(), Some(c.to_units)));
                return Some(part);
            }
            self.current = Some((c.clone(), None));
            return Some(c.clone());
        }
        None
    }

    /// The result of the change last returned by [`Applier::next_change`].
    pub fn report(&mut self, result: Result<(), String>) {
        let Some((c, planned)) = self.current.take() else {
            return;
        };
        let outcome = match result {
            Ok(()) => {
                self.standing.insert(c.pool.clone(), c.to_units);
                match planned {
                    Some(planned_units) => PoolOutcome::LoweredInPart { planned_units },
                    None => PoolOutcome::Applied,
                }
            }
            Err(why) => PoolOutcome::Failed(why),
        };
        self.outcomes.push((c, outcome));
    }

    /// Every change with its outcome.
    pub fn finish(self) -> Outcome {
        Outcome {
            changes: self.outcomes,
        }
    }
}

/// What happened to a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// Each change and what became of it.
    pub changes: Vec<(PoolChange, PoolOutcome)>,
}

impl Outcome {
    /// Whether every change was applied (vacuously, when there were none).
    pub fn all_applied(&self) -> bool {
        self.changes.iter().all(|(_, o)| *o == PoolOutcome::Applied)
    }

    /// The change to `pool` and its outcome, if it had one.
    fn of(&self, pool: &str) -> Option<&(PoolChange, PoolOutcome)> {
        self.changes.iter().find(|(c, _)| c.pool == pool)
    }
}

impl Plan {
    /// Starts applying the changes.
    pub fn applier(&self, observed: &BTreeMap<String, Units>) -> Applier<'_> {
        Applier {
            plan: self,
            next: 0,
            current: None,
            standing: self
                .decision
                .pools
                .iter()
                .map(|t| (t.pool.clone(), observed.get(&t.pool).copied().unwrap_or(0)))
                .collect(),
            outcomes: Vec::new(),
        }
    }

    /// Warm-pool sizes to set (none in dry-run or when refused).
    pub fn warm_pool_targets(&self) -> &[WarmPoolTarget] {
        if self.dry_run || self.refusal.is_some() {
            &[]
        } else {
            &self.warm_pools
        }
    }
}

impl FleetController {
    /// A controller resuming `state` (a fresh engine: `EngineState::default()`).
    pub fn new(state: EngineState) -> Self {
        FleetController { state }
    }

    /// The state as it would be persisted.
    pub fn state(&self) -> &EngineState {
        &self.state
    }

    /// Plans one iteration of `fleet` on `snap` at `now`.
    pub fn plan(&self, fleet: &Fleet, snap: &Snapshot, now: Timestamp, dry_run: bool) -> Plan {
        let (mut decision, next) = engine::decide(fleet, snap, &self.state, now);
        let total = decision.pools_total_units();
        let refusal = (total < fleet.min_units || total > fleet.max_units).then_some(
            Refusal::OutsideFleetBounds {
                total,
                min: fleet.min_units,
                max: fleet.max_units,
            },
        );
        if let Some(r) = &refusal {
            decision.conditions.push(Condition::holds(
                ConditionType::Refused,
                Reason::OutsideBounds,
                r.to_string(),
            ));
        }
        let (changes, raises_first) = if refusal.is_some() {
            (Vec::new(), false)
        } else {
            ordered_changes(&decision, snap, fleet.max_units)
        };
        Plan {
            warm_pools: warm_pools(fleet, &decision),
            decision,
            changes,
            refusal,
            dry_run,
            next,
            max_units: fleet.max_units,
            total_units: total,
            raises_first,
        }
    }

    /// Takes what happened to `plan` and keeps the state that matches it: every change
    /// applied → the plan's state; dry-run → no scale event and the pools as they were;
    /// some changes failed → scale events for what did change, the failed pools as they were;
    /// refused → the state before the plan.
    pub fn commit(&mut self, fleet: &Fleet, plan: &Plan, outcome: &Outcome) -> &EngineState {
        if plan.refusal.is_some() {
            return &self.state;
        }
        let prev = std::mem::take(&mut self.state);
        let mut next = plan.next.clone();
        if plan.dry_run || !outcome.all_applied() {
            for t in &plan.decision.pools {
                match outcome.of(&t.pool) {
                    // The pool holds what it was lowered to, its own share as
                    // `own_after_partial_lower` counts it.
                    Some((c, PoolOutcome::LoweredInPart { .. })) => {
                        next.market.record_applied(&PoolTarget {
                            desired_units: c.to_units,
                            own_units: own_after_partial_lower(&prev, c),
                            ..t.clone()
                        });
                    }
                    Some((_, o)) if *o != PoolOutcome::Applied => {
                        match prev.market.applied.get(&t.pool) {
                            Some(a) => next.market.applied.insert(t.pool.clone(), *a),
                            None => next.market.applied.remove(&t.pool),
                        };
                    }
                    _ => {}
                }
            }
            let realised = if plan.dry_run {
                plan.decision.current_units
            } else {
                realised_own_units(&plan.decision.pools, outcome, &prev)
            };
            next.scale_up_events = prev.scale_up_events.clone();
            next.scale_down_events = prev.scale_down_events.clone();
            next.flaps = prev.flaps.clone();
            let (at, current) = (plan.decision.at, plan.decision.current_units);
            engine::ladder::record_event(&mut next, fleet, at, current, realised);
            next.flaps
                .observe(at, current, realised, plan.decision.scale_down_window_secs);
        }
        self.state = next;
        &self.state
    }
}

/// What placement had put into `c`'s pool beyond its share, when it held `c.from_units`.
fn extra_held(prev: &EngineState, c: &PoolChange) -> i64 {
    prev.market
        .applied
        .get(&c.pool)
        .filter(|a| a.desired_units == c.from_units)
        .map_or(0, |a| a.extra_units)
}

/// The pool's own units after `c`, a lower cut short: the units it shed are placement's
/// extras first (a cover standing in for capacity elsewhere, the transient part), then its
/// own share.
fn own_after_partial_lower(prev: &EngineState, c: &PoolChange) -> Units {
    let extra = extra_held(prev, c).max(0);
    let own_before = (c.from_units as i64 - extra).max(0);
    let shed = c.from_units as i64 - c.to_units as i64;
    (own_before - (shed - extra).max(0)).max(0) as Units
}

/// The fleet's own capacity after a partly applied plan: each applied (or unchanged) pool at
/// its own share, each pool whose change did not happen at what it held, one lowered part of
/// the way at what it was lowered to.
fn realised_own_units(pools: &[PoolTarget], outcome: &Outcome, prev: &EngineState) -> Units {
    pools
        .iter()
        .map(|t| match outcome.of(&t.pool) {
            Some((c, PoolOutcome::LoweredInPart { .. })) => own_after_partial_lower(prev, c),
            Some((c, o)) if *o != PoolOutcome::Applied => {
                (c.from_units as i64 - extra_held(prev, c)).max(0) as Units
            }
            _ => t.own_units,
        })
        .sum()
}

/// The pools whose target differs from what they hold, each with the reason it moves, in the
/// order to apply them, and whether raises go first. Raises go first when the plan lowers some
/// pools and raises others and the raises fit under `max_units` on top of what the pools hold:
/// a failed raise then leaves the capacity it was to replace in place (the applier stops the
/// lower at the plan's total). Otherwise lowers go first, so the pools' total never passes the
/// larger of before and after.
fn ordered_changes(
    decision: &Decision,
    snap: &Snapshot,
    max_units: Units,
) -> (Vec<PoolChange>, bool) {
    let placed = |market: Market| {
        decision.conditions.iter().rev().find(|c| {
            c.status
                && match c.kind {
                    ConditionType::MarketFallback => market == Market::OnDemand,
                    ConditionType::SpotHeadroom => market == Market::Spot,
                    ConditionType::GroupBounds => true,
                    _ => false,
                }
        })
    };
    let own_reason = decision
        .conditions
        .iter()
        .filter(|c| c.is_notable() && c.kind != ConditionType::FreshStart)
        .map(|c| c.reason)
        .next_back()
        .unwrap_or(Reason::ValidMetricFound);
    let mut changes: Vec<PoolChange> = decision
        .pools
        .iter()
        .filter_map(|t| {
            let from = snap.pool_desired_units.get(&t.pool).copied().unwrap_or(0);
            (from != t.desired_units).then(|| PoolChange {
                pool: t.pool.clone(),
                asg_name: t.asg_name.clone(),
                market: t.market,
                from_units: from,
                to_units: t.desired_units,
                reason: if t.desired_units != t.own_units {
                    placed(t.market).map_or(own_reason, |c| c.reason)
                } else {
                    own_reason
                },
            })
        })
        .collect();
    let held: Units = decision
        .pools
        .iter()
        .map(|t| snap.pool_desired_units.get(&t.pool).copied().unwrap_or(0))
        .sum();
    let raised: Units = changes
        .iter()
        .map(|c| c.to_units.saturating_sub(c.from_units))
        .sum();
    let lowers = changes.iter().any(|c| c.to_units < c.from_units);
    let raises_first = lowers && raised > 0 && held + raised <= max_units;
    changes.sort_by_key(|c| (c.to_units > c.from_units) != raises_first);
    (changes, raises_first)
}

/// Warm pools: placement's sizes (the pool's `min_size`, raised to the largest step lately),
/// and with `predictive.warm_pool_from_forecast` at least what the next hour's forecast peak
/// needs beyond the capacity decided now, within `max_prepared_units` (which caps in-service +
/// warm together).
fn warm_pools(fleet: &Fleet, decision: &Decision) -> Vec<WarmPoolTarget> {
    let from_forecast = fleet
        .predictive
        .as_ref()
        .filter(|p| p.warm_pool_from_forecast)
        .and_then(|_| decision.predictive.as_ref()?.next_hour_units);
    // The forecast's units beyond the capacity decided are shared by the warm pools, each
    // holding its share in its own instances (a warm pool counts instances, not units).
    let pools = decision.warm_pools.len().max(1) as f64;
    decision
        .warm_pools
        .iter()
        .map(|w| {
            let forecast = from_forecast
                .zip(fleet.pool(&w.pool))
                .map_or(0, |(peak, p)| {
                    let cap = p
                        .warm_pool
                        .as_ref()
                        .and_then(|w| w.max_prepared_units)
                        .unwrap_or(fleet.max_units);
                    let units = peak.min(cap).saturating_sub(decision.desired_units);
                    crate::placement::warm_instances(fleet, p, f64::from(units) / pools)
                });
            WarmPoolTarget {
                pool: w.pool.clone(),
                min_size: w.min_size.max(forecast),
            }
        })
        .collect()
}
