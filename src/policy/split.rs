//! Divides a fleet's desired units between its pools, with EC2 MixedInstancesPolicy's
//! semantics: `on_demand_base_units` first on-demand, then `on_demand_percentage_above_base`
//! percent of the rest on-demand (rounded up, in favour of reliability), the remainder on spot.
//! Pools of one market share their market's units evenly, earlier pools taking the remainder.

use serde::Serialize;

use crate::config::Fleet;
use crate::model::{Market, Units};

/// Desired capacity for one pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolTarget {
    /// Pool name.
    pub pool: String,
    /// The Auto Scaling Group's name.
    pub asg_name: String,
    /// Its market.
    pub market: Market,
    /// Desired capacity, units (an ASG with weighted instance types counts in units too).
    pub desired_units: Units,
}

/// Splits `desired` units over the fleet's pools.
pub fn split(fleet: &Fleet, desired: Units) -> Vec<PoolTarget> {
    let has = |m| fleet.pools.iter().any(|p| p.market == m);
    let on_demand = match (has(Market::OnDemand), has(Market::Spot)) {
        (false, _) => 0,
        (true, false) => desired,
        (true, true) => {
            let base = desired.min(fleet.on_demand_base_units);
            let above = (desired - base) as u64;
            base + (above * fleet.on_demand_percentage_above_base as u64).div_ceil(100) as Units
        }
    };
    let mut out = Vec::with_capacity(fleet.pools.len());
    for (market, units) in [
        (Market::OnDemand, on_demand),
        (Market::Spot, desired - on_demand),
    ] {
        let pools: Vec<_> = fleet.pools.iter().filter(|p| p.market == market).collect();
        let n = pools.len().max(1) as Units;
        for (i, p) in pools.into_iter().enumerate() {
            let share = units / n + Units::from((i as Units) < units % n);
            out.push(PoolTarget {
                pool: p.name.clone(),
                asg_name: p.asg_name.clone(),
                market,
                desired_units: share,
            });
        }
    }
    out
}

/// What the spot fallback remembers between decisions.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FallbackState {
    /// Cumulative failed launches last seen per pool (a fresh engine takes the first
    /// observation as its baseline).
    pub seen_failed_launches: std::collections::BTreeMap<String, u64>,
    /// When a spot launch was last seen failing (or a spot instance warned).
    pub last_spot_failure: Option<crate::model::Timestamp>,
    /// When a confirmed burst was last seen (with `burst_on_demand`).
    #[serde(default)]
    pub last_burst: Option<crate::model::Timestamp>,
    /// Consecutive decisions in which demand was past the panic threshold.
    #[serde(default)]
    pub burst_streak: u32,
    /// Whether on-demand is covering for spot.
    pub active: bool,
    /// Units the pools' targets exceeded the fleet's desired capacity by, in the last decision
    /// (on-demand's cover for spot not in service): the engine subtracts them from the observed
    /// total to recover its own desired capacity.
    #[serde(default)]
    pub extra_units: Units,
    /// The pools' total the last decision set (with the cover).
    #[serde(default)]
    pub applied_total: Units,
}

impl FallbackState {
    /// The fleet's own capacity behind an observed pools' total: the total less the cover — but
    /// only when the pools still hold exactly what the last decision set; if anything else
    /// changed them, the observation is the truth.
    pub fn own_capacity(&self, observed_total: Units) -> Units {
        if self.extra_units > 0 && observed_total == self.applied_total {
            observed_total - self.extra_units
        } else {
            observed_total
        }
    }
}

/// Why the fallback is on, for the decision's explanation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fallback {
    /// Units on-demand adds for spot capacity not in service.
    pub covering_units: Units,
    /// New failed spot launches seen in this decision.
    pub new_failures: u64,
    /// Spot units under an interruption notice or rebalance recommendation in this decision.
    pub interrupted_units: Units,
    /// Spot units in service.
    pub spot_in_service_units: Units,
}

/// Units of the fleet's spot instances in `state`.
fn spot_units(
    fleet: &Fleet,
    snap: &crate::model::Snapshot,
    state: crate::model::LifecycleState,
) -> Units {
    snap.instances
        .iter()
        .filter(|i| i.state == state)
        .filter(|i| {
            fleet
                .pool(&i.pool)
                .is_some_and(|p| p.market == Market::Spot)
        })
        .map(|i| i.weight_units)
        .sum()
}

/// Consecutive decisions a burst must last before on-demand covers it: a burst that has drained
/// by the next decision (one-second spikes, as in the Azure code trace) needs no capacity that
/// takes a warm start (~75 s) to arrive, and covering each one cost that trace half again its
/// bill (measured, docs/engine.md). A surge that lasts waits one tick longer.
pub const BURST_CONFIRM_DECISIONS: u32 = 2;

/// Units the on-demand pools' warm pools can start: their `min_size` instances × the first
/// type's weight. A burst cover larger than this would be cold on-demand launches, no faster
/// than the spot launches they cover, so a burst is covered up to this many units.
pub fn burst_cover_cap(fleet: &Fleet) -> Units {
    fleet
        .pools
        .iter()
        .filter(|p| p.market == Market::OnDemand)
        .filter_map(|p| {
            let warm = p.warm_pool.as_ref()?;
            Some(warm.min_size * p.instance_types.first().map_or(1, |t| t.weight_units))
        })
        .sum()
}

/// The spot fallback: when spot launches fail, or spot instances are warned of an interruption
/// (their capacity is gone in two minutes and a replacement needs a cold start), on-demand
/// covers the spot units that are not in service — at once, in the same decision — while the
/// spot pools keep their targets (so the groups keep trying and recovery shows) except for what
/// would push the pools' total past `max_units`, which moves to on-demand. When demand bursts
/// past the panic threshold (`burst`: new spot capacity needs a cold start, the on-demand
/// pool's warm instances start in about half) for [`BURST_CONFIRM_DECISIONS`] decisions in a
/// row, the cover is the same but at most [`burst_cover_cap`]: only warm instances beat spot's
/// cold start. It ends once neither has happened for `spot_fallback_hold_secs` *and* spot has
/// its units in service, so returning to spot never opens a gap.
pub fn apply_fallback(
    fleet: &Fleet,
    snap: &crate::model::Snapshot,
    state: &mut FallbackState,
    now: crate::model::Timestamp,
    burst: bool,
    targets: &mut [PoolTarget],
) -> Option<Fallback> {
    let fresh = state.seen_failed_launches.is_empty();
    let mut new_failures = 0;
    for p in fleet.pools.iter().filter(|p| p.market == Market::Spot) {
        let count = snap.pool_failed_launches.get(&p.name).copied().unwrap_or(0);
        let seen = state
            .seen_failed_launches
            .insert(p.name.clone(), count)
            .unwrap_or(count);
        if !fresh && count > seen {
            new_failures += count - seen;
        }
    }
    let interrupted_units = spot_units(fleet, snap, crate::model::LifecycleState::Interrupted);
    if new_failures > 0 || interrupted_units > 0 {
        state.last_spot_failure = Some(now);
        state.active = true;
    }
    let burst_cap = burst_cover_cap(fleet);
    state.burst_streak = if burst { state.burst_streak + 1 } else { 0 };
    if state.burst_streak >= BURST_CONFIRM_DECISIONS && burst_cap > 0 {
        state.last_burst = Some(now);
        state.active = true;
    }
    let recent = |at: Option<crate::model::Timestamp>| {
        at.is_some_and(|t| now.secs_since(t) < fleet.spot_fallback_hold_secs as f64)
    };
    let spot_in_service = spot_units(fleet, snap, crate::model::LifecycleState::InService);
    let spot_target: Units = targets
        .iter()
        .filter(|t| t.market == Market::Spot)
        .map(|t| t.desired_units)
        .sum();
    let shortfall = spot_target.saturating_sub(spot_in_service);
    // Failures or notices within the hold: on-demand covers all of spot's shortfall; only
    // bursts: what the warm pools can start.
    let trouble = new_failures > 0 || interrupted_units > 0 || recent(state.last_spot_failure);
    if state.active {
        let quiet = !trouble && !recent(state.last_burst);
        if quiet && shortfall == 0 {
            state.active = false;
        }
    }
    let shortfall = if trouble {
        shortfall
    } else {
        shortfall.min(burst_cap)
    };
    if !state.active {
        state.extra_units = 0;
        state.applied_total = targets.iter().map(|t| t.desired_units).sum();
        return None;
    }
    if !targets.iter().any(|t| t.market == Market::OnDemand) {
        return None;
    }
    // On-demand takes the whole shortfall; what would push the pools past max_units comes out
    // of the spot targets (spot cannot deliver it now anyway), never below spot in service.
    let total: Units = targets.iter().map(|t| t.desired_units).sum();
    let mut excess = (total + shortfall).saturating_sub(fleet.max_units);
    for t in targets
        .iter_mut()
        .filter(|t| t.market == Market::Spot)
        .rev()
    {
        let take = excess.min(t.desired_units);
        t.desired_units -= take;
        excess -= take;
    }
    let covering = shortfall - excess;
    if let Some(od) = targets.iter_mut().find(|t| t.market == Market::OnDemand) {
        od.desired_units += covering;
    }
    state.applied_total = targets.iter().map(|t| t.desired_units).sum();
    state.extra_units = state.applied_total.saturating_sub(total);
    Some(Fallback {
        covering_units: covering,
        new_failures,
        interrupted_units,
        spot_in_service_units: spot_in_service,
    })
}
