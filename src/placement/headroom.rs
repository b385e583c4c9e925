//! Spot headroom (after SkyServe): a few spot units beyond what the fleet needs, sized from
//! the interruption rate the fleet itself has seen, so that an interruption is absorbed by
//! capacity already serving instead of waiting out a replacement's cold start.
//!
//! The rate is notices per spot unit-hour in service, both sums decaying with a 6-hour
//! half-life (a storm raises it at once; a quiet afternoon brings it back down). Headroom =
//! ⌈spot units × rate × lead hours⌉ — the spot units expected to be lost within one cold
//! start — at most `spot_headroom_max_fraction` of the spot target (0, the default, is off).
//! The engine adds it to the spot pools after the split and the fallback, and, like the
//! fallback's cover, excludes it from its own capacity; the budget sheds it first.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::config::Fleet;
use crate::model::{LifecycleState, Market, Snapshot, Timestamp, Units};

/// Half-life of the interruption-rate sums, seconds.
pub const HALF_LIFE_SECS: f64 = 6.0 * 3600.0;

/// Spot unit-hours observed before a rate is trusted.
const MIN_EXPOSURE_UNIT_HOURS: f64 = 1.0;

/// Longest interval between two observations counted as exposure, seconds.
const MAX_STEP_SECS: f64 = 300.0;

/// The fleet's own interruption record.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpotRisk {
    /// Interruption notices seen, in units, decayed.
    pub notices: f64,
    /// Spot unit-hours in service, decayed.
    pub exposure_unit_hours: f64,
    /// When last observed.
    pub last_at: Option<Timestamp>,
    /// Instances already counted (a notice stays visible for two minutes).
    pub counted: BTreeSet<String>,
}

impl SpotRisk {
    /// Takes in one snapshot; returns the rate, notices per spot unit-hour.
    pub fn observe(&mut self, fleet: &Fleet, snap: &Snapshot, now: Timestamp) -> f64 {
        let is_spot = |pool: &str| fleet.pool(pool).is_some_and(|p| p.market == Market::Spot);
        let hours = self.last_at.map_or(0.0, |t| {
            now.secs_since(t).clamp(0.0, MAX_STEP_SECS) / 3600.0
        });
        let decay = 0.5f64.powf(hours * 3600.0 / HALF_LIFE_SECS);
        self.notices *= decay;
        self.exposure_unit_hours *= decay;
        let mut present = BTreeSet::new();
        for i in snap.instances.iter().filter(|i| is_spot(&i.pool)) {
            match i.state {
                LifecycleState::InService => {
                    self.exposure_unit_hours += i.weight_units as f64 * hours;
                }
                LifecycleState::Interrupted => {
                    present.insert(i.id.as_str());
                    if !self.counted.contains(&i.id) {
                        self.counted.insert(i.id.clone());
                        self.notices += i.weight_units as f64;
                    }
                }
                _ => {}
            }
        }
        self.counted.retain(|id| present.contains(id.as_str()));
        self.last_at = Some(now);
        self.rate()
    }

    /// Notices per spot unit-hour; 0 until enough exposure has been seen.
    pub fn rate(&self) -> f64 {
        if self.exposure_unit_hours < MIN_EXPOSURE_UNIT_HOURS {
            0.0
        } else {
            self.notices / self.exposure_unit_hours
        }
    }
}

/// Extra spot units for `spot_units` of spot target at `rate` over a `lead_secs` cold start,
/// at most `max_fraction` of the spot target.
pub fn headroom_units(spot_units: Units, rate: f64, lead_secs: f64, max_fraction: f64) -> Units {
    if spot_units == 0 || rate <= 0.0 || max_fraction <= 0.0 {
        return 0;
    }
    let expected_loss = spot_units as f64 * rate * lead_secs / 3600.0;
    let cap = (max_fraction * spot_units as f64).ceil();
    expected_loss.ceil().min(cap).max(0.0) as Units
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Instance;

    #[test]
    fn headroom_is_the_expected_loss_over_a_cold_start_capped() {
        // (spot units, rate per unit-hour, lead s, max fraction) → units
        let table = [
            (20, 0.0, 300.0, 0.2, 0),
            (20, 0.005, 300.0, 0.0, 0),
            (20, 0.005, 300.0, 0.2, 1), // 0.008 expected: one spare
            (20, 3.0, 300.0, 0.2, 4),   // a storm: 5 expected, capped at 20 %
            (20, 1.2, 300.0, 0.5, 2),   // exactly 2
            (0, 3.0, 300.0, 0.2, 0),
        ];
        for (units, rate, lead, max, want) in table {
            assert_eq!(
                headroom_units(units, rate, lead, max),
                want,
                "{units} {rate} {lead} {max}"
            );
        }
    }

    #[test]
    fn the_rate_counts_each_notice_once_over_the_exposure_and_decays() {
        let fleet = crate::config::parse_str(
            "f.toml",
            "[[fleets]]\nname = \"f\"\nmin_units = 1\nmax_units = 9\n\
             [[fleets.pools]]\nname = \"spot\"\nmarket = \"spot\"\ninstance_types = [{ type = \"g6.xlarge\" }]\n\
             [[fleets.metrics]]\nsignal = \"queue_depth\"\ntarget = { type = \"AverageValue\", average_value = 4 }\n",
        )
        .unwrap()
        .fleets
        .remove(0);
        let snap = |warned: bool| Snapshot {
            instances: (0..10)
                .map(|i| Instance {
                    id: format!("i-{i}"),
                    pool: "spot".into(),
                    weight_units: 1,
                    state: if warned && i == 0 {
                        LifecycleState::Interrupted
                    } else {
                        LifecycleState::InService
                    },
                    samples: Default::default(),
                    load: None,
                })
                .collect(),
            ..Snapshot::default()
        };
        let t = |s: f64| Timestamp::from_secs(1_800_000_000).plus_secs(s);
        let mut r = SpotRisk::default();
        // An hour of 10 units in service, in 5-minute steps: 10 unit-hours, no notice.
        for k in 0..=12 {
            assert_eq!(r.observe(&fleet, &snap(false), t(300.0 * k as f64)), 0.0);
        }
        // A notice seen on two consecutive observations counts once.
        r.observe(&fleet, &snap(true), t(3900.0));
        let rate = r.observe(&fleet, &snap(true), t(3915.0));
        assert!(
            (r.notices - 1.0).abs() < 0.001,
            "counted once: {}",
            r.notices
        );
        assert!((0.09..0.11).contains(&rate), "{rate}");
        // Six quiet hours halve the notices while exposure keeps coming: the rate falls.
        let mut last = rate;
        for k in 1..=72 {
            last = r.observe(&fleet, &snap(false), t(3915.0 + 300.0 * k as f64));
        }
        assert!(last < rate / 2.0, "{last} vs {rate}");
    }
}
