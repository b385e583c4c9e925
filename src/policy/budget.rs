//! Spend: a ledger of what the fleet costs, per pool, and the budget's degradation.
//!
//! The ledger is billed from the engine's own observations: every instance in a snapshot —
//! booting, serving, draining, warned — is billed at its pool's `unit_usd_per_hour` × its
//! weight, between consecutive decisions (trapezoid rule), at most [`MAX_ACCRUAL_SECS`] at a
//! time (a daemon that was down does not know what ran) — plus each warm pool's stopped
//! volumes. The month resets at each calendar month (UTC).
//!
//! The budget: when the capacity a decision wants would cost more per hour than the cap (the
//! hourly cap, or what is left of the month's spread over its remaining hours), degrade in this
//! order: (1) cap the scale-up at the largest capacity that fits — never below the capacity
//! already running nor the fleet's floor, so money never causes a scale-down; (2) raise an
//! alert (condition `Budget`, `/metrics` `budget_alert`), also when the running capacity alone
//! is over. The spot headroom (`placement::headroom`) is shed before either, in the engine.

use std::collections::BTreeMap;

use chrono::Datelike;
use serde::{Deserialize, Serialize};

use crate::config::{Budget, Fleet};
use crate::model::{Snapshot, Timestamp, Units};
use crate::placement::split;

/// Longest interval between two observations that is billed, seconds.
pub const MAX_ACCRUAL_SECS: f64 = 300.0;

/// What the fleet has cost this month, as observed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// The calendar month (UTC) of the totals, `YYYY-MM`.
    pub month: String,
    /// Spend this month, USD.
    pub month_usd: f64,
    /// Spend this month per pool, USD.
    pub by_pool_usd: BTreeMap<String, f64>,
    /// When the ledger was last billed.
    pub last_at: Option<Timestamp>,
    /// The spend rate per pool at that moment, USD per hour.
    pub last_rate_by_pool: BTreeMap<String, f64>,
}

/// The ledger as of one decision.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Spend {
    /// What the observed instances cost per hour now.
    pub rate_usd_per_hour: f64,
    /// Spend this month, USD.
    pub month_usd: f64,
    /// Spend this month per pool, USD.
    pub by_pool_usd: BTreeMap<String, f64>,
}

/// The budget's verdict on one decision.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetStep {
    /// The spend rate allowed now, USD per hour (the lower of the caps).
    pub cap_usd_per_hour: f64,
    /// Which cap: `hourly` or `monthly`.
    pub cap_from: &'static str,
    /// What the capacity the policy wanted would cost per hour.
    pub wanted_usd_per_hour: f64,
    /// The capacity the policy wanted, units.
    pub wanted_units: Units,
    /// The capacity allowed, units.
    pub allowed_units: Units,
    /// Whether the budget cut the scale-up, or the fleet is over budget anyway.
    pub alert: bool,
}

/// Each pool's price per unit-hour, when every pool has one.
pub fn unit_prices(fleet: &Fleet) -> Option<BTreeMap<&str, f64>> {
    fleet
        .pools
        .iter()
        .map(|p| p.unit_usd_per_hour.map(|u| (p.name.as_str(), u)))
        .collect()
}

/// What each pool's warm pool costs per hour while stopped: the instances the engine keeps
/// warm in it (`warm_instances`, its placed size — placement raises `min_size` to the largest
/// step lately; `min_size` where it has none) × their volumes' `volume_usd_per_hour`. A pool's
/// actual warm count can differ while it refills. Billed at the configured `min_size`, the
/// ledger missed a third warm instance's volume for the hour it was kept, 7.5 % of the bill of
/// the example on `gradual-growth` with volumes priced high (tests/budget.rs).
pub fn warm_volumes_usd_per_hour<'a>(
    fleet: &'a Fleet,
    warm_instances: &dyn Fn(&str) -> Option<u32>,
) -> BTreeMap<&'a str, f64> {
    fleet
        .pools
        .iter()
        .filter_map(|p| {
            let w = p.warm_pool.as_ref()?;
            let kept = warm_instances(&p.name).unwrap_or(w.min_size);
            Some((p.name.as_str(), kept as f64 * w.volume_usd_per_hour))
        })
        .collect()
}

/// What `units` of the fleet cost per hour, split over its pools as the engine splits them.
pub fn cost_per_hour(fleet: &Fleet, prices: &BTreeMap<&str, f64>, units: Units) -> f64 {
    split::split(fleet, units)
        .iter()
        .map(|t| t.desired_units as f64 * prices.get(t.pool.as_str()).copied().unwrap_or(0.0))
        .sum()
}

fn month_of(t: Timestamp) -> String {
    let d = t.to_datetime();
    format!("{:04}-{:02}", d.year(), d.month())
}

/// Hours from `now` to the start of the next calendar month (UTC).
fn hours_left_in_month(now: Timestamp) -> f64 {
    use chrono::TimeZone;
    let d = now.to_datetime();
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    let next = chrono::Utc
        .with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .map_or(now, |n| Timestamp::from_datetime(&n));
    (next.secs_since(now) / 3600.0).max(1.0 / 60.0)
}

/// Bills the interval since the last decision and returns the ledger as of `now`: the observed
/// instances at their pools' `prices` per unit-hour, plus each pool's `standing` cost per hour
/// (its stopped warm instances' volumes, [`warm_volumes_usd_per_hour`]).
pub fn accrue(
    ledger: &mut Ledger,
    prices: &BTreeMap<&str, f64>,
    standing: &BTreeMap<&str, f64>,
    snap: &Snapshot,
    now: Timestamp,
) -> Spend {
    let mut rates: BTreeMap<&str, f64> = prices
        .keys()
        .map(|k| (*k, standing.get(k).copied().unwrap_or(0.0)))
        .collect();
    for i in &snap.instances {
        if let (Some(r), Some(price)) =
            (rates.get_mut(i.pool.as_str()), prices.get(i.pool.as_str()))
        {
            *r += i.weight_units as f64 * price;
        }
    }
    let month = month_of(now);
    if ledger.month != month {
        ledger.month = month;
        ledger.month_usd = 0.0;
        ledger.by_pool_usd.clear();
    }
    if let Some(t) = ledger.last_at {
        let hours = now.secs_since(t).clamp(0.0, MAX_ACCRUAL_SECS) / 3600.0;
        for (pool, now_rate) in &rates {
            let before = ledger.last_rate_by_pool.get(*pool).copied().unwrap_or(0.0);
            let usd = 0.5 * (before + now_rate) * hours;
            match ledger.by_pool_usd.get_mut(*pool) {
                Some(total) => *total += usd,
                None => {
                    ledger.by_pool_usd.insert(pool.to_string(), usd);
                }
            }
            ledger.month_usd += usd;
        }
    }
    ledger.last_at = Some(now);
    let rate = rates.values().sum();
    for (pool, r) in rates {
        match ledger.last_rate_by_pool.get_mut(pool) {
            Some(v) => *v = r,
            None => {
                ledger.last_rate_by_pool.insert(pool.to_string(), r);
            }
        }
    }
    Spend {
        rate_usd_per_hour: rate,
        month_usd: ledger.month_usd,
        by_pool_usd: ledger.by_pool_usd.clone(),
    }
}

/// The budget's cap on `desired` (the policy's decision), never below `keep` (the capacity
/// already running, raised to the fleet's floor).
pub fn limit(
    budget: &Budget,
    fleet: &Fleet,
    prices: &BTreeMap<&str, f64>,
    month_usd: f64,
    now: Timestamp,
    keep: Units,
    desired: Units,
) -> BudgetStep {
    let monthly = budget
        .max_usd_per_month
        .map(|m| (m - month_usd).max(0.0) / hours_left_in_month(now));
    let (cap, cap_from) = match (budget.max_usd_per_hour, monthly) {
        (Some(h), Some(m)) if m < h => (m, "monthly"),
        (Some(h), _) => (h, "hourly"),
        (None, Some(m)) => (m, "monthly"),
        (None, None) => (f64::INFINITY, "hourly"),
    };
    let wanted = cost_per_hour(fleet, prices, desired);
    let keep = keep.min(desired);
    let allowed = if wanted <= cap {
        desired
    } else {
        (keep..=desired)
            .rev()
            .find(|u| cost_per_hour(fleet, prices, *u) <= cap)
            .unwrap_or(keep)
    };
    BudgetStep {
        cap_usd_per_hour: cap,
        cap_from,
        wanted_usd_per_hour: wanted,
        wanted_units: desired,
        allowed_units: allowed,
        alert: wanted > cap,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_reset_and_hours_left_count_to_the_next_one() {
        let t = Timestamp::parse_rfc3339("2026-11-30T23:00:00Z").unwrap();
        assert_eq!(month_of(t), "2026-11");
        assert!((hours_left_in_month(t) - 1.0).abs() < 1e-9);
        let dec = Timestamp::parse_rfc3339("2026-12-31T12:00:00Z").unwrap();
        assert!((hours_left_in_month(dec) - 12.0).abs() < 1e-9);
    }

    /// The warm volumes billed are those of the instances the engine keeps warm, not the
    /// configured floor: the example keeps two warm at $0.0219 an hour each, raised to three
    /// when the demand stepped by three units.
    #[test]
    fn warm_volumes_are_billed_at_the_size_the_engine_keeps() {
        let cfg = crate::config::load(std::path::Path::new("config/example.toml")).unwrap();
        let fleet = &cfg.fleets[0];
        let per = 0.0219;
        // (why, instances placed in the on-demand pool's warm pool, its cost per hour)
        let cases: [(&str, Option<u32>, f64); 3] = [
            ("no size placed: the floor", None, 2.0 * per),
            ("raised to a step of three", Some(3), 3.0 * per),
            ("none kept", Some(0), 0.0),
        ];
        for (why, placed, want) in cases {
            let got =
                warm_volumes_usd_per_hour(fleet, &|pool| placed.filter(|_| pool == "on-demand"));
            assert!((got["on-demand"] - want).abs() < 1e-12, "{why}: {got:?}");
            assert!(
                !got.contains_key("spot"),
                "{why}: the spot pool has no warm pool"
            );
        }
    }
}
