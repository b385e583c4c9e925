//! What a snapshot given to `decide` must agree with in the policy before the engine trusts
//! it: the daemon builds its snapshots from the policy, a file written by hand does not — a
//! misspelt sample name would silently read as a missing sample (`queue_dpth` turned a 5 → 8
//! decision into 5 → 6), an unknown pool or a zero weight as capacity that is not there.

use crate::config::suggest::did_you_mean;
use crate::config::Fleet;
use crate::model::Snapshot;

/// Every disagreement between `snap` and `fleet`, each located by its path in the input
/// (`snapshot.instances[2].pool`) and saying what would be valid.
pub fn snapshot_problems(fleet: &Fleet, snap: &Snapshot) -> Vec<String> {
    let pools: Vec<&str> = fleet.pools.iter().map(|p| p.name.as_str()).collect();
    let metrics: Vec<&str> = fleet.metrics.iter().map(|m| m.name.as_str()).collect();
    let max_weight = fleet
        .pools
        .iter()
        .flat_map(|p| p.instance_types.iter().map(|t| t.weight_units))
        .max()
        .unwrap_or(1);
    let mut out = Vec::new();
    let unknown = |path: String, name: &str, what: &str, valid: &[&str]| {
        format!(
            "{path}: \"{name}\" is not {what} of fleet \"{}\" (valid: {}){}",
            fleet.name,
            quoted(valid),
            did_you_mean(name, valid.iter().copied())
        )
    };
    for (i, inst) in snap.instances.iter().enumerate() {
        let at = format!("snapshot.instances[{i}]");
        if !pools.contains(&inst.pool.as_str()) {
            out.push(unknown(format!("{at}.pool"), &inst.pool, "a pool", &pools));
        }
        if inst.weight_units == 0 || inst.weight_units > max_weight {
            out.push(format!(
                "{at}.weight_units: {} is outside the weights fleet \"{}\"'s instance types give (1 to {max_weight})",
                inst.weight_units, fleet.name
            ));
        }
        for name in inst.samples.keys() {
            if !metrics.contains(&name.as_str()) {
                out.push(unknown(
                    format!("{at}.samples.{name}"),
                    name,
                    "a metric",
                    &metrics,
                ));
            }
        }
    }
    let keyed = [
        (
            "fleet_metrics",
            snap.fleet_metrics.keys().collect::<Vec<_>>(),
            "a metric",
            &metrics,
        ),
        (
            "metric_errors",
            snap.metric_errors.keys().collect(),
            "a metric",
            &metrics,
        ),
        (
            "pool_desired_units",
            snap.pool_desired_units.keys().collect(),
            "a pool",
            &pools,
        ),
        (
            "pool_failed_launches",
            snap.pool_failed_launches.keys().collect(),
            "a pool",
            &pools,
        ),
        (
            "pool_group_bounds",
            snap.pool_group_bounds.keys().collect(),
            "a pool",
            &pools,
        ),
        (
            "pool_suspended_processes",
            snap.pool_suspended_processes.keys().collect(),
            "a pool",
            &pools,
        ),
    ];
    for (field, keys, what, valid) in keyed {
        for name in keys {
            if !valid.contains(&name.as_str()) {
                out.push(unknown(
                    format!("snapshot.{field}.{name}"),
                    name,
                    what,
                    valid,
                ));
            }
        }
    }
    out
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
