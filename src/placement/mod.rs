//! Market placement: the fleet's desired units → a desired capacity per pool (Auto Scaling
//! Group), and everything that places capacity beyond the fleet's own — in one module with one
//! state ([`MarketState`]).
//!
//! One placement, in order:
//! 1. **split** ([`split`]): EC2 MixedInstancesPolicy semantics — `on_demand_base_units`, then
//!    `on_demand_percentage_above_base`, the rest on spot. Each pool's share is its *own* units.
//! 2. **cover** (the spot fallback): on-demand covers spot capacity that is missing —
//!    - *failed launches* (the pool's cumulative count grows): the whole spot shortfall (spot's
//!      share — each pool's within its group's `MaxSize`, whose overflow the group bounds send
//!      to on-demand — less its healthy units in service), from that decision until
//!      `spot_fallback_hold_secs` pass without a failure *and* spot has delivered;
//!    - *interruption warnings*: each warned instance is covered by its own units, from the
//!      decision that sees the warning until the instance is gone **and** spot has its share in
//!      service again — never more than the warned units, so a warning cannot grow into more;
//!    - *bursts* (with `burst_on_demand`: demand past the panic threshold for
//!      [`BURST_CONFIRM_DECISIONS`] decisions): at most what spot owed at the burst and what
//!      the on-demand warm pools can start, lowered whenever spot owes less — growth after the
//!      burst never raises it ([`burst_cover_units`]) — until spot has delivered. The warm
//!      pools are sized at least to the largest step the demand has taken lately
//!      ([`warm_pool_sizes`]).
//!
//!    The cover goes on the first on-demand pool. Spot keeps its share, so the group keeps
//!    trying; a burst's cover only uses room under `max_units` (spot is on its way: taking its
//!    slot would keep it from coming); at `max_units` the cover of failed or warned spot
//!    displaces spot units that are not healthy in service —
//!    never a healthy one (the group would pick which instance to terminate, and AWS's
//!    termination policy does not prefer the warned one) — and what still does not fit is
//!    reported (`CoverDoesNotFit`), not taken out of healthy capacity.
//! 3. **headroom** ([`headroom`]): spare spot units from the fleet's own interruption rate.
//! 4. **group bounds**: each target inside its group's `MinSize`/`MaxSize` (AWS rejects
//!    `SetDesiredCapacity` outside them), with the fleet's total kept within `max_units`.
//!
//! The engine's own capacity never counts what placement added: [`MarketState`] records, per
//! pool, what was applied and how far it was from the pool's own share, and
//! [`MarketState::own_capacity`] takes that back out of what is observed — so a cover cannot
//! turn into permanent capacity through HPA's "within tolerance → keep current".

pub mod headroom;
pub mod split;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Fleet;
use crate::engine::{Condition, ConditionType, Reason};
use crate::model::{LifecycleState, Market, Snapshot, Timestamp, Units};
use headroom::SpotRisk;
pub use split::{split, PoolTarget};

/// Consecutive decisions a burst must last before on-demand covers it: a burst that has drained
/// by the next decision (one-second spikes, as in the Azure code trace) needs no capacity that
/// takes a warm start (~75 s) to arrive, and covering each one cost that trace half again its
/// bill (measured, docs/engine.md). A surge that lasts waits one tick longer.
pub const BURST_CONFIRM_DECISIONS: u32 = 2;

/// What placement remembers between decisions of one fleet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MarketState {
    /// Cumulative failed launches last seen per pool (a fresh engine takes the first
    /// observation as its baseline).
    pub seen_failed_launches: BTreeMap<String, u64>,
    /// When a spot launch was last seen failing.
    pub last_launch_failure: Option<Timestamp>,
    /// Whether on-demand covers a launch-failure episode.
    pub failure_episode: bool,
    /// Warned spot instances being covered, by instance id.
    pub warned: BTreeMap<String, WarnedCover>,
    /// Consecutive decisions in which demand was past the panic threshold.
    pub burst_streak: u32,
    /// When a confirmed burst was last seen.
    pub last_burst: Option<Timestamp>,
    /// Whether on-demand covers a burst.
    pub burst_episode: bool,
    /// The spot units a burst's cover stands in for: raised to what spot owes at each
    /// confirmed burst, lowered whenever spot owes less, never raised by growth after the
    /// burst (`None` outside an episode, and in a state written before it was kept).
    pub burst_units: Option<Units>,
    /// The fleet's own spot interruption record (for the headroom).
    pub risk: SpotRisk,
    /// What the last applied plan set on each pool, and how far from the pool's own share.
    pub applied: BTreeMap<String, AppliedPool>,
}

/// A warned spot instance and its cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarnedCover {
    /// Its units.
    pub units: Units,
    /// When the warning was first seen.
    pub since: Timestamp,
    /// When it was first seen gone (reclaimed, terminated); `None` while it is still there.
    pub gone_at: Option<Timestamp>,
}

/// What a pool was last set to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedPool {
    /// The desired capacity applied, units.
    pub desired_units: Units,
    /// `desired_units` less the pool's own share: cover and headroom (positive), spot
    /// displaced by a cover at `max_units` (negative).
    pub extra_units: i64,
}

/// Capacity that placement put beyond the fleet's own, as observed now: the engine leaves it
/// out of the counts HPA's arithmetic uses (status and ready units), so a cover is never read
/// as demand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extras {
    /// Status units (booting, in service and interrupted: `Snapshot::status_units`) beyond the
    /// fleet's own capacity.
    pub status_units: Units,
    /// In-service units beyond the fleet's own capacity.
    pub ready_units: Units,
}

impl MarketState {
    /// The fleet's own desired capacity behind what is observed: each pool's desired capacity
    /// less what the last plan placed beyond its share — where the pool still holds what that
    /// plan set; a pool changed by anyone else is taken as observed (the observation is the
    /// truth).
    pub fn own_capacity(&self, snap: &Snapshot) -> Units {
        if snap.pool_desired_units.is_empty() {
            let applied: Units = self.applied.values().map(|a| a.desired_units).sum();
            let extra: i64 = self.applied.values().map(|a| a.extra_units).sum();
            return if !self.applied.is_empty() && applied == snap.desired_units {
                (snap.desired_units as i64 - extra).max(0) as Units
            } else {
                snap.desired_units
            };
        }
        let own: i64 = snap
            .pool_desired_units
            .iter()
            .map(|(pool, &observed)| observed as i64 - self.extra_of(pool, observed))
            .sum();
        own.max(0) as Units
    }

    /// What placement put into `pool` beyond its share, when it still holds `observed`.
    fn extra_of(&self, pool: &str, observed: Units) -> i64 {
        self.applied
            .get(pool)
            .filter(|a| a.desired_units == observed)
            .map_or(0, |a| a.extra_units)
    }

    /// Status and in-service units beyond the fleet's own capacity `own` that placement put
    /// there (see [`Extras`]). Only what exceeds `own` is left out: a warned instance still in
    /// its group, or the cover standing in for it, keeps the fleet at its size and is counted;
    /// both together, or a cover still running next to the warned instance's replacement, are
    /// one unit too many.
    pub fn extras(&self, snap: &Snapshot, own: Units) -> Extras {
        let placed: i64 = snap
            .pool_desired_units
            .iter()
            .map(|(pool, &observed)| self.extra_of(pool, observed).max(0))
            .sum();
        let beyond = |units: Units| (units.saturating_sub(own) as i64).min(placed) as Units;
        Extras {
            status_units: beyond(snap.status_units()),
            ready_units: beyond(snap.in_service_units()),
        }
    }

    /// Records that `targets` were applied (the fleet controller calls it per pool that was
    /// set, or left as it was).
    pub fn record_applied(&mut self, target: &PoolTarget) {
        self.applied.insert(
            target.pool.clone(),
            AppliedPool {
                desired_units: target.desired_units,
                extra_units: target.desired_units as i64 - target.own_units as i64,
            },
        );
    }
}

/// A warm pool's size to set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WarmPoolTarget {
    /// Pool name.
    pub pool: String,
    /// Instances to keep warm.
    pub min_size: u32,
}

/// What one placement needs besides the fleet, the snapshot and the state.
#[derive(Clone, Copy, Debug)]
pub struct PlaceInput {
    /// Now.
    pub now: Timestamp,
    /// The fleet's own desired capacity, decided by the engine.
    pub own_units: Units,
    /// Demand is past the panic threshold in this decision.
    pub burst: bool,
    /// The cold start the headroom is sized over, seconds.
    pub lead_secs: f64,
    /// At most this many headroom units (the budget sheds them first); `None`: no cap.
    pub headroom_cap: Option<Units>,
    /// The largest step the demand has taken lately, units (sizes the warm pools).
    pub largest_step_units: f64,
}

/// Why on-demand covers spot, and how much.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cover {
    /// Units on-demand adds.
    pub covering_units: Units,
    /// Units the cover wanted (more than `covering_units` when it did not fit).
    pub wanted_units: Units,
    /// Spot units displaced to make room at `max_units` (never healthy ones).
    pub displaced_spot_units: Units,
    /// New failed spot launches seen in this decision.
    pub new_failures: u64,
    /// Units of warned spot instances being covered.
    pub warned_units: Units,
    /// Spot units healthy and in service.
    pub spot_in_service_units: Units,
    /// The cover's main cause.
    pub reason: Reason,
}

/// One placement.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    /// Desired units per pool.
    pub pools: Vec<PoolTarget>,
    /// The spot fallback, when on.
    pub cover: Option<Cover>,
    /// Spare spot units added for interruptions.
    pub headroom_units: Units,
    /// `MarketFallback`, `SpotHeadroom`, `GroupBounds`.
    pub conditions: Vec<Condition>,
    /// The on-demand warm pools' sizes.
    pub warm_pools: Vec<WarmPoolTarget>,
}

/// Places `input.own_units` of `fleet` over its pools.
pub fn place(
    fleet: &Fleet,
    snap: &Snapshot,
    state: &mut MarketState,
    input: PlaceInput,
) -> Placement {
    let mut pools = split(fleet, input.own_units);
    let mut conditions = Vec::new();
    let warm_pools = warm_pool_sizes(fleet, input.largest_step_units);
    let burst_cap = warm_units(fleet, &warm_pools);
    let cover = apply_cover(fleet, snap, state, input, burst_cap, &mut pools);
    if let Some(c) = &cover {
        conditions.push(cover_condition(fleet, c));
    }
    let headroom_units = apply_headroom(fleet, snap, state, input, &mut pools);
    if headroom_units > 0 {
        conditions.push(Condition::holds(
            ConditionType::SpotHeadroom,
            Reason::InterruptionRisk,
            format!(
                "{:.3} interruptions per spot unit-hour (6 h half-life) × {:.0} s cold start: +{headroom_units} spot units",
                state.risk.rate(),
                input.lead_secs
            ),
        ));
    }
    conditions.extend(fit_group_bounds(fleet, snap, &mut pools));
    Placement {
        pools,
        cover,
        headroom_units,
        conditions,
        warm_pools,
    }
}

/// Each on-demand warm pool's size: its `min_size`, raised to the largest step the demand has
/// taken lately (spread over the pools with a warm pool, in instances of their first type),
/// within `max_prepared_units` and `max_units`. Stopped instances cost their volumes only, and
/// a burst of that size then lands on instances that start in about half a cold start.
pub fn warm_pool_sizes(fleet: &Fleet, largest_step_units: f64) -> Vec<WarmPoolTarget> {
    let warm: Vec<&crate::config::Pool> = fleet
        .pools
        .iter()
        .filter(|p| p.market == Market::OnDemand && p.warm_pool.is_some())
        .collect();
    let share = largest_step_units.max(0.0) / warm.len().max(1) as f64;
    warm.iter()
        .filter_map(|p| {
            let w = p.warm_pool.as_ref()?;
            Some(WarmPoolTarget {
                pool: p.name.clone(),
                min_size: w.min_size.max(warm_instances(fleet, p, share)),
            })
        })
        .collect()
}

/// The instances of pool `p`'s warm pool that start `units` (a warm pool counts instances,
/// a fleet units: each is its first type's weight), within the pool's `max_prepared_units`
/// and the fleet's `max_units`; 0 for a pool without a warm pool.
pub fn warm_instances(fleet: &Fleet, p: &crate::config::Pool, units: f64) -> u32 {
    let Some(w) = p.warm_pool.as_ref() else {
        return 0;
    };
    let weight = p
        .instance_types
        .first()
        .map_or(1, |t| t.weight_units)
        .max(1);
    let cap = w
        .max_prepared_units
        .unwrap_or(fleet.max_units)
        .min(fleet.max_units)
        / weight;
    ((units.max(0.0) / weight as f64).ceil() as u32).min(cap)
}

/// Units the warm pools can start (their sizes × the first type's weight): what a burst cover
/// may take — beyond it, on-demand would launch cold, no faster than the spot it covers.
fn warm_units(fleet: &Fleet, sizes: &[WarmPoolTarget]) -> Units {
    sizes
        .iter()
        .filter_map(|w| {
            let p = fleet.pool(&w.pool)?;
            Some(w.min_size * p.instance_types.first().map_or(1, |t| t.weight_units))
        })
        .sum()
}

/// Units of the fleet's spot instances in `state`.
fn spot_units(fleet: &Fleet, snap: &Snapshot, state: LifecycleState) -> Units {
    snap.instances
        .iter()
        .filter(|i| i.state == state && is_spot(fleet, &i.pool))
        .map(|i| i.weight_units)
        .sum()
}

fn is_spot(fleet: &Fleet, pool: &str) -> bool {
    fleet.pool(pool).is_some_and(|p| p.market == Market::Spot)
}

impl MarketState {
    /// New failed launches in the spot pools since the last decision.
    fn observe_failures(&mut self, fleet: &Fleet, snap: &Snapshot) -> u64 {
        let fresh = self.seen_failed_launches.is_empty();
        let mut new = 0;
        for p in fleet.pools.iter().filter(|p| p.market == Market::Spot) {
            let count = snap.pool_failed_launches.get(&p.name).copied().unwrap_or(0);
            let seen = self
                .seen_failed_launches
                .insert(p.name.clone(), count)
                .unwrap_or(count);
            if !fresh && count > seen {
                new += count - seen;
            }
        }
        new
    }

    /// Starts covering newly warned instances and notes those that are gone. An instance seen
    /// in service again (a rebalance recommendation that came to nothing) is no longer doomed.
    fn observe_warnings(&mut self, fleet: &Fleet, snap: &Snapshot, now: Timestamp) {
        for i in snap.instances.iter().filter(|i| is_spot(fleet, &i.pool)) {
            match i.state {
                LifecycleState::Interrupted => {
                    self.warned.entry(i.id.clone()).or_insert(WarnedCover {
                        units: i.weight_units,
                        since: now,
                        gone_at: None,
                    });
                }
                LifecycleState::InService | LifecycleState::Pending => {
                    self.warned.remove(&i.id);
                }
                _ => {}
            }
        }
        for (id, w) in self.warned.iter_mut() {
            let present = snap
                .instances
                .iter()
                .any(|i| i.id == *id && i.state == LifecycleState::Interrupted);
            if !present && w.gone_at.is_none() {
                w.gone_at = Some(now);
            }
        }
    }
}

/// Adds the spot fallback's cover to `pools`; `None` when there is nothing to cover. A burst
/// is covered up to `burst_cap` units.
fn apply_cover(
    fleet: &Fleet,
    snap: &Snapshot,
    state: &mut MarketState,
    input: PlaceInput,
    burst_cap: Units,
    pools: &mut [PoolTarget],
) -> Option<Cover> {
    let now = input.now;
    let new_failures = state.observe_failures(fleet, snap);
    state.observe_warnings(fleet, snap, now);
    let burst_allowed = fleet.burst_on_demand && burst_cap > 0;
    state.burst_streak = if input.burst && burst_allowed {
        state.burst_streak + 1
    } else {
        0
    };
    if new_failures > 0 {
        state.last_launch_failure = Some(now);
        state.failure_episode = true;
    }
    if state.burst_streak >= BURST_CONFIRM_DECISIONS {
        state.last_burst = Some(now);
        state.burst_episode = true;
    }
    let healthy = spot_units(fleet, snap, LifecycleState::InService);
    // What spot can hold: a spot group's MaxSize below its share sends the rest to on-demand
    // (the group bounds, below), and that part is no shortfall — counted as one, spot never
    // delivered it, the cover doubled what the bounds had moved and no episode ever ended.
    let share: Units = spot_share_within_groups(pools, snap);
    let shortfall = share.saturating_sub(healthy);
    let recent = |at: Option<Timestamp>| {
        at.is_some_and(|t| now.secs_since(t) < fleet.spot_fallback_hold_secs as f64)
    };
    // An episode ends once its cause is quiet for the hold *and* spot has delivered, so
    // handing back to spot never opens a gap.
    if state.failure_episode && !recent(state.last_launch_failure) && shortfall == 0 {
        state.failure_episode = false;
    }
    if state.burst_episode && !recent(state.last_burst) && shortfall == 0 {
        state.burst_episode = false;
        state.burst_units = None;
    }
    // A warned instance's cover ends when it is gone and its replacement is in service.
    state
        .warned
        .retain(|_, w| w.gone_at.is_none() || shortfall > 0);
    let warned_units: Units = state.warned.values().map(|w| w.units).sum();
    // Spot that failed or was warned is gone for good: its cover may take a slot of spot that
    // is not healthy in service. A burst's cover stands in for spot that *will* come, so it
    // only uses room under max_units — displacing that spot would keep it from coming.
    let lost = if state.failure_episode {
        shortfall
    } else {
        shortfall.min(warned_units)
    };
    let burst = if state.burst_episode {
        burst_cover_units(state, shortfall - lost, burst_cap, now)
    } else {
        0
    };
    let wanted = lost + burst;
    if wanted == 0 && !state.failure_episode && !state.burst_episode && state.warned.is_empty() {
        return None;
    }
    let od = pools.iter().position(|t| t.market == Market::OnDemand)?;
    // At max_units, room for what was lost comes out of spot units that are not healthy in
    // service: those are exactly the shortfall, and the cover never exceeds it.
    let total: Units = pools.iter().map(|t| t.desired_units).sum();
    let room = fleet.max_units.saturating_sub(total);
    let displaced = lost.saturating_sub(room).min(share.saturating_sub(healthy));
    let lost_covered = lost.min(room + displaced);
    let burst_covered = burst.min(room.saturating_sub(lost_covered - displaced));
    let covering = lost_covered + burst_covered;
    take_from_spot(pools, snap, displaced);
    pools[od].desired_units += covering;
    let reason = if new_failures > 0 || (state.failure_episode && recent(state.last_launch_failure))
    {
        Reason::SpotLaunchesFailing
    } else if covering < wanted {
        Reason::CoverDoesNotFit
    } else if state.warned.values().any(|w| w.gone_at.is_none()) {
        Reason::SpotInterrupted
    } else if state.last_burst == Some(now) {
        Reason::BurstOnOnDemand
    } else {
        Reason::SpotNotDelivered
    };
    Some(Cover {
        covering_units: covering,
        wanted_units: wanted,
        displaced_spot_units: displaced,
        new_failures,
        warned_units,
        spot_in_service_units: healthy,
        reason,
    })
}

/// The spot units a burst's cover stands in for now, given the spot owed (its share less its
/// healthy units, less what failed or was warned): at most what spot owed at the burst's
/// confirmed decisions, at most what it owes now, at most `burst_cap`. Growth after the burst —
/// a ramp that goes on rising at its own pace, ramp-ahead's projection — never raises the
/// cover: raising it paid on-demand for every unit the fleet added until the rise ended (a
/// sawtooth at 600 s cold starts ran 39 % on on-demand, 1.86× the oracle's cost, where it ran
/// 15 % and 1.27× without the cover; docs/engine.md). The cover is not lowered as the burst's
/// own units arrive while the rise keeps spot owing more: ending it then opened a dip that the
/// fleet bought back and held (traffic-spike: a unit more on its plateau; docs/engine.md).
fn burst_cover_units(
    state: &mut MarketState,
    owed: Units,
    burst_cap: Units,
    now: Timestamp,
) -> Units {
    // A state written before the figure was kept covers what spot owes, as it did.
    let kept = state.burst_units.unwrap_or(owed);
    let raised = if state.last_burst == Some(now) {
        kept.max(owed)
    } else {
        kept
    };
    let units = raised.min(owed).min(burst_cap);
    state.burst_units = Some(units);
    units
}

/// Spot's share, each spot pool's at most its group's `MaxSize` where the snapshot knows it.
fn spot_share_within_groups(pools: &[PoolTarget], snap: &Snapshot) -> Units {
    pools
        .iter()
        .filter(|t| t.market == Market::Spot)
        .map(|t| {
            let max = snap.pool_bounds(&t.pool).map(|b| b.max_units);
            max.map_or(t.desired_units, |m| t.desired_units.min(m))
        })
        .sum()
}

/// Lowers the spot targets by `units`, last pool first, each only by its units that are not
/// healthy in service: the fleet's spot shortfall is a sum over its spot pools, and the pool
/// that is short is the one whose slots a cover may take — lowering a pool whose instances
/// are all in service has its group terminate healthy ones while the short pool keeps
/// failing. The spot shortfall bounds `units`, so the pools' slots not in service hold them.
fn take_from_spot(pools: &mut [PoolTarget], snap: &Snapshot, mut units: Units) {
    for t in pools.iter_mut().filter(|t| t.market == Market::Spot).rev() {
        let healthy: Units = snap
            .instances
            .iter()
            .filter(|i| i.pool == t.pool && i.state == LifecycleState::InService)
            .map(|i| i.weight_units)
            .sum();
        let take = units.min(t.desired_units.saturating_sub(healthy));
        t.desired_units -= take;
        units -= take;
    }
}

fn cover_condition(fleet: &Fleet, c: &Cover) -> Condition {
    let fit = if c.covering_units < c.wanted_units {
        format!(
            "; {} more would not fit under max_units {} without shrinking healthy spot",
            c.wanted_units - c.covering_units,
            fleet.max_units
        )
    } else {
        String::new()
    };
    Condition::holds(
        ConditionType::MarketFallback,
        c.reason,
        format!(
            "{} spot launches failed, {} warned spot units; on-demand covers {} units{} until spot has its units in service ({} now) and {} s pass without a failure{fit}",
            c.new_failures,
            c.warned_units,
            c.covering_units,
            if c.displaced_spot_units > 0 {
                format!(" (in place of {} spot units not in service)", c.displaced_spot_units)
            } else {
                String::new()
            },
            c.spot_in_service_units,
            fleet.spot_fallback_hold_secs
        ),
    )
}

/// Adds the spot headroom to the first spot pool; returns its units.
fn apply_headroom(
    fleet: &Fleet,
    snap: &Snapshot,
    state: &mut MarketState,
    input: PlaceInput,
    pools: &mut [PoolTarget],
) -> Units {
    if fleet.spot_headroom_max_fraction <= 0.0 {
        return 0;
    }
    let rate = state.risk.observe(fleet, snap, input.now);
    let total: Units = pools.iter().map(|t| t.desired_units).sum();
    let spot: Units = pools
        .iter()
        .filter(|t| t.market == Market::Spot)
        .map(|t| t.own_units)
        .sum();
    let extra = headroom::headroom_units(
        spot,
        rate,
        input.lead_secs,
        fleet.spot_headroom_max_fraction,
    )
    .min(fleet.max_units.saturating_sub(total))
    .min(input.headroom_cap.unwrap_or(Units::MAX));
    match pools.iter_mut().find(|t| t.market == Market::Spot) {
        Some(t) if extra > 0 => {
            t.desired_units += extra;
            extra
        }
        _ => 0,
    }
}

/// Moves every target inside its group's `MinSize`/`MaxSize` — narrowed by the group's
/// suspended `Launch` or `Terminate` ([`Snapshot::pool_bounds`]) — and keeps the total within
/// the fleet's `max_units` and at what it was: capacity a group's minimum forces on one pool is
/// taken from the others (spot first), capacity a group's maximum refuses goes to the others.
fn fit_group_bounds(fleet: &Fleet, snap: &Snapshot, pools: &mut [PoolTarget]) -> Vec<Condition> {
    if snap.pool_group_bounds.is_empty() && snap.pool_suspended_processes.is_empty() {
        return Vec::new();
    }
    let wanted: Units = pools.iter().map(|t| t.desired_units).sum();
    let bounds = |t: &PoolTarget| snap.pool_bounds(&t.pool);
    let mut conditions = Vec::new();
    let mut clamped = vec![false; pools.len()];
    for (i, t) in pools.iter_mut().enumerate() {
        let Some(b) = bounds(t) else { continue };
        let (to, reason) = if t.desired_units < b.min_units {
            (b.min_units, Reason::ClampedToGroupMin)
        } else if t.desired_units > b.max_units {
            (b.max_units, Reason::ClampedToGroupMax)
        } else {
            continue;
        };
        let held_by = snap.pool_held_by(&t.pool);
        let why = if held_by.is_empty() {
            "the group's MinSize..MaxSize".to_string()
        } else {
            format!(
                "what the group may be set to with {} suspended on it (SuspendProcesses)",
                held_by.join(" and ")
            )
        };
        conditions.push(Condition::holds(
            ConditionType::GroupBounds,
            reason,
            format!(
                "pool {} (group {}): {} units is outside {why}, {}..={}; set to {to}",
                t.pool, t.asg_name, t.desired_units, b.min_units, b.max_units
            ),
        ));
        t.desired_units = to;
        clamped[i] = true;
    }
    let target = wanted.min(fleet.max_units);
    // Spot pools first, then the others; never a pool that was just clamped.
    let mut order: Vec<usize> = (0..pools.len()).filter(|i| !clamped[*i]).collect();
    order.sort_by_key(|i| pools[*i].market != Market::Spot);
    let mut total: Units = pools.iter().map(|t| t.desired_units).sum();
    for &i in &order {
        let b = bounds(&pools[i]);
        let t = &mut pools[i];
        if total > target {
            let floor = b.map_or(0, |b| b.min_units);
            let take = (total - target).min(t.desired_units.saturating_sub(floor));
            t.desired_units -= take;
            total -= take;
        } else if total < target {
            let ceiling = b.map_or(Units::MAX, |b| b.max_units);
            let give = (target - total).min(ceiling.saturating_sub(t.desired_units));
            t.desired_units += give;
            total += give;
        }
    }
    conditions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A warm pool counts instances: units become instances of the pool's first type's weight,
    /// rounded up, within `max_prepared_units` and `max_units`.
    #[test]
    fn warm_instances_hold_the_units_in_the_pools_own_instances() {
        // (weight, max_prepared_units, units) → instances
        #[rustfmt::skip]
        let rows = [
            ("weight 1", 1, None, 8.0, 8),
            ("weight 4: a quarter", 4, None, 8.0, 2),
            ("weight 4, rounded up", 4, None, 9.0, 3),
            ("within max_prepared_units (6 units: 3 of weight 2)", 2, Some(6), 10.0, 3),
            ("within max_units (40: 10 of weight 4)", 4, None, 100.0, 10),
            ("nothing", 2, None, 0.0, 0),
        ];
        for (what, weight, prepared, units, want) in rows {
            let prepared =
                prepared.map_or(String::new(), |u| format!(", max_prepared_units = {u}"));
            let text = format!(
                "[[fleets]]\nname = \"f\"\nmin_units = 1\nmax_units = 40\n\
                 [[fleets.pools]]\nname = \"od\"\nmarket = \"on-demand\"\n\
                 instance_types = [{{ type = \"g6e.12xlarge\", weight_units = {weight} }}]\n\
                 warm_pool = {{ min_size = 0{prepared} }}\n\
                 [[fleets.metrics]]\nname = \"m\"\nsignal = \"queue_depth\"\n\
                 target = {{ type = \"AverageValue\", average_value = 10 }}\n"
            );
            let fleet = crate::config::parse_str("f.toml", &text)
                .unwrap()
                .fleets
                .remove(0);
            assert_eq!(
                warm_instances(&fleet, &fleet.pools[0], units),
                want,
                "{what}"
            );
        }
    }

    /// A cover at `max_units` takes its room from the spot pools' slots that are not healthy
    /// in service, pool by pool — never from a pool whose instances all serve.
    #[test]
    fn displaced_spot_comes_out_of_the_pools_that_are_short() {
        // (a's target, a's healthy units, b's target, b's healthy units, units to take) →
        // (a's target, b's target)
        #[rustfmt::skip]
        let rows = [
            ("a is short, b healthy: all from a", (5, 2, 5, 5, 3), (2, 5)),
            ("b is short, a healthy: all from b", (5, 5, 5, 2, 3), (5, 2)),
            ("both short: the last pool first, then the other", (5, 3, 5, 4, 3), (3, 4)),
        ];
        for (what, (a, a_ok, b, b_ok, take), want) in rows {
            let target = |name: &str, units| PoolTarget {
                pool: name.into(),
                asg_name: name.into(),
                market: Market::Spot,
                desired_units: units,
                own_units: units,
            };
            let instance = |pool: &str, n: u32, state| crate::model::Instance {
                id: format!("{pool}-{n}"),
                pool: pool.into(),
                weight_units: 1,
                state,
                samples: Default::default(),
                load: None,
            };
            let mut instances = Vec::new();
            for (pool, units, ok) in [("a", a, a_ok), ("b", b, b_ok)] {
                for n in 0..units {
                    let state = if n < ok {
                        LifecycleState::InService
                    } else {
                        LifecycleState::Pending
                    };
                    instances.push(instance(pool, n, state));
                }
            }
            let snap = Snapshot {
                instances,
                ..Snapshot::default()
            };
            let mut pools = vec![target("a", a), target("b", b)];
            take_from_spot(&mut pools, &snap, take);
            let got = (pools[0].desired_units, pools[1].desired_units);
            assert_eq!(got, want, "{what}");
        }
    }

    /// The units a burst's cover stands in for: raised at a confirmed burst, lowered when spot
    /// owes less, never raised by growth after it.
    #[test]
    fn a_bursts_cover_follows_what_the_burst_owes() {
        let now = Timestamp(1_000_000);
        let before = Timestamp(985_000);
        // (what was kept, the burst confirmed now, spot owed, the warm pools' cap, covered)
        #[rustfmt::skip]
        let rows = [
            ("a state written before the figure: what spot owes", None, false, 5, 6, 5),
            ("a confirmed burst: what spot owes, up to the warm pools", None, true, 9, 6, 6),
            ("a burst going on raises it", Some(4), true, 10, 6, 6),
            ("growth after the burst is not covered", Some(4), false, 10, 6, 4),
            ("spot delivering lowers it", Some(4), false, 2, 6, 2),
            ("and what spot delivered is not covered again", Some(2), false, 10, 6, 2),
        ];
        for (what, kept, confirmed, owed, cap, want) in rows {
            let mut state = MarketState {
                burst_episode: true,
                burst_units: kept,
                last_burst: Some(if confirmed { now } else { before }),
                ..MarketState::default()
            };
            assert_eq!(
                burst_cover_units(&mut state, owed, cap, now),
                want,
                "{what}"
            );
            assert_eq!(state.burst_units, Some(want), "{what}");
        }
    }
}
