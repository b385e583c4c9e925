//! Time windows that move the fleet's bounds: a floor before business hours, a ceiling at
//! night. A window opens at its `start` cron and closes at its `end` cron, both read in the
//! rule's time zone (so a DST change moves the window with the wall clock).
//!
//! Several open windows combine: the highest floor and the lowest ceiling win; when a floor is
//! above a ceiling, the floor wins (availability before cost). The fleet's own `min_units` /
//! `max_units` always hold.

use serde::Serialize;

use crate::config::{Fleet, ScheduleRule};
use crate::model::{Timestamp, Units};

/// The bounds in force at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Bounds {
    /// Floor, units.
    pub min_units: Units,
    /// Ceiling, units.
    pub max_units: Units,
    /// Names of the schedule rules open now.
    pub active_schedules: Vec<String>,
}

/// Whether `rule`'s window is open at `now`: its latest start is later than its latest end.
pub fn is_open(rule: &ScheduleRule, now: Timestamp) -> bool {
    let local = now.to_datetime().with_timezone(&rule.timezone);
    let last_start = rule.start.find_previous_occurrence(&local, true).ok();
    let last_end = rule.end.find_previous_occurrence(&local, true).ok();
    match (last_start, last_end) {
        (Some(s), Some(e)) => s > e,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn of_max(fleet: &Fleet, factor: f64) -> Units {
    (factor * fleet.max_units as f64).ceil() as Units
}

/// The fleet's bounds at `now`, schedules applied.
pub fn bounds(fleet: &Fleet, now: Timestamp) -> Bounds {
    let mut floor = fleet.min_units;
    let mut ceiling = fleet.max_units;
    let mut active = Vec::new();
    for rule in fleet.schedules.iter().filter(|r| is_open(r, now)) {
        active.push(rule.name.clone());
        let floors = [rule.min_units, rule.min_factor.map(|f| of_max(fleet, f))];
        let ceilings = [rule.max_units, rule.max_factor.map(|f| of_max(fleet, f))];
        floor = floors.into_iter().flatten().fold(floor, Units::max);
        ceiling = ceilings.into_iter().flatten().fold(ceiling, Units::min);
    }
    let min_units = floor.min(fleet.max_units);
    Bounds {
        min_units,
        max_units: ceiling.max(min_units),
        active_schedules: active,
    }
}
