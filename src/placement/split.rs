//! Divides a fleet's desired units between its pools, with EC2 MixedInstancesPolicy's
//! semantics: `on_demand_base_units` first on-demand, then `on_demand_percentage_above_base`
//! percent of the rest on-demand (rounded up, in favour of reliability), the remainder on spot.
//! Pools of one market share their market's units evenly, earlier pools taking the remainder.

use serde::{Deserialize, Serialize};

use crate::config::Fleet;
use crate::model::{Market, Units};

/// Desired capacity for one pool.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolTarget {
    /// Pool name.
    pub pool: String,
    /// The Auto Scaling Group's name.
    pub asg_name: String,
    /// Its market.
    pub market: Market,
    /// Desired capacity, units (an ASG with weighted instance types counts in units too).
    pub desired_units: Units,
    /// The pool's share of the fleet's own capacity (the split alone); `desired_units` differs
    /// by what placement adds or moves (cover, headroom, a group's bounds).
    pub own_units: Units,
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
                own_units: share,
            });
        }
    }
    out
}
