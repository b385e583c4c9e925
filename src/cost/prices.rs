//! What a unit of each pool costs: the policy's `unit_usd_per_hour`, else the replica profile
//! of the pool's first instance type (built in, sources in `docs/simulator.md`, or
//! `[[profiles]]` in the policy) on the pool's market, divided by that type's `weight_units`.

use crate::config::Config;
use crate::model::Market;
use crate::sim::perf::Profile;

/// A pool whose price is needed and unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fleet {fleet}, pool {pool}: no price known for {instance_type}; set unit_usd_per_hour on the pool or add a [[profiles]] table with its prices")]
pub struct PriceError {
    /// The fleet.
    pub fleet: String,
    /// The pool.
    pub pool: String,
    /// Its first instance type.
    pub instance_type: String,
}

/// Fills every pool's missing `unit_usd_per_hour` from the profiles. A pool left unpriced is
/// an error only in a fleet with a `[fleets.budget]` (which cannot be kept without prices);
/// elsewhere the spend ledger is simply off.
pub fn fill_unit_prices(cfg: &mut Config, profiles: &[Profile]) -> Result<(), PriceError> {
    for fleet in &mut cfg.fleets {
        let needs = fleet.budget.is_some();
        for pool in fleet
            .pools
            .iter_mut()
            .filter(|p| p.unit_usd_per_hour.is_none())
        {
            let Some(t) = pool.instance_types.first() else {
                continue;
            };
            let profile = profiles.iter().find(|p| p.instance_type == t.instance_type);
            pool.unit_usd_per_hour = profile.map(|p| {
                let per_instance = match pool.market {
                    Market::Spot => p.spot_usd_per_hour,
                    Market::OnDemand => p.on_demand_usd_per_hour,
                };
                per_instance / t.weight_units.max(1) as f64
            });
            if needs && pool.unit_usd_per_hour.is_none() {
                return Err(PriceError {
                    fleet: fleet.name.clone(),
                    pool: pool.name.clone(),
                    instance_type: t.instance_type.clone(),
                });
            }
        }
    }
    Ok(())
}
