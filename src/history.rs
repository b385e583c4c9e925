//! The dashboard's history of each fleet: one point a minute for the last three days (capacity
//! by market, what the metrics wanted, the forecast's peak and floor, TTFT, spend) and the last
//! capacity changes with their reasons. Built from the decisions the daemon logs — live, tick
//! by tick, and read back from the state database after a restart, so a fresh page (or a
//! restarted daemon) shows the past. Pure: the daemon records, `/api/history` reads.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde_json::Value;

use crate::model::Timestamp;

/// Minutes of points kept per fleet (three days).
pub const MINUTES_KEPT: usize = 3 * 1440;
/// Capacity changes kept per fleet.
pub const CHANGES_KEPT: usize = 1000;

/// One minute of a fleet (its last decision in that minute).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// When decided.
    pub at: Timestamp,
    /// The fleet's desired units.
    pub desired_units: u64,
    /// Units in service.
    pub in_service_units: u64,
    /// Units booting.
    pub pending_units: u64,
    /// Desired units on spot pools (placement's targets).
    pub spot_units: u64,
    /// Desired units on on-demand pools.
    pub on_demand_units: u64,
    /// What the metrics wanted before stabilisation and rate limits, units.
    pub wanted_units: Option<u64>,
    /// The forecast's peak over the lead, in units (`peak_demand ÷ demand_per_unit`).
    pub forecast_peak_units: Option<f64>,
    /// The forecast's floor, units.
    pub forecast_floor_units: Option<u64>,
    /// The servers' P95 TTFT, seconds (live only: not in the logged decision).
    pub ttft_p95_secs: Option<f64>,
    /// Spend rate, USD per hour.
    pub spend_usd_per_hour: Option<f64>,
}

/// One capacity change.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// When decided.
    pub at: Timestamp,
    /// `scale_up` or `scale_down`.
    pub action: String,
    /// Units before.
    pub from_units: u64,
    /// Units after.
    pub to_units: u64,
    /// The decision's one-line reason.
    pub summary: String,
}

/// One fleet's history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FleetHistory {
    points: VecDeque<Point>,
    changes: VecDeque<Change>,
    /// The fleet's P95 TTFT objective, seconds (the dashboard draws it on the TTFT chart).
    pub ttft_slo_secs: Option<f64>,
}

/// What `/api/history` answers for a fleet.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct View {
    /// The fleet.
    pub fleet: String,
    /// Points since the asked start, oldest first.
    pub points: Vec<Point>,
    /// Changes since the asked start, newest first.
    pub changes: Vec<Change>,
    /// The fleet's P95 TTFT objective, seconds.
    pub ttft_slo_secs: Option<f64>,
}

/// Every fleet's history, shared by the loop (writer) and the HTTP thread (reader).
pub type Shared = Arc<RwLock<BTreeMap<String, FleetHistory>>>;

fn units(v: &Value, key: &str) -> Option<u64> {
    v.get(key)?.as_u64()
}

/// The point a logged decision gives (its JSON, as `decide` prints and the state database
/// keeps) — the same live and read back after a restart; `None` when it lacks the core fields.
pub fn point_of(decision: &Value) -> Option<Point> {
    let at = Timestamp::parse_rfc3339(decision.get("at")?.as_str()?).ok()?;
    let (mut spot, mut on_demand) = (0, 0);
    for p in decision
        .get("pools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let n = units(p, "desired_units").unwrap_or(0);
        match p.get("market").and_then(Value::as_str) {
            Some("spot") => spot += n,
            _ => on_demand += n,
        }
    }
    let predictive = decision.get("predictive").filter(|p| !p.is_null());
    let peak = predictive.and_then(|p| {
        let peak = p.get("peak_demand")?.as_f64()?;
        let per_unit = p.get("demand_per_unit")?.as_f64()?;
        (per_unit > 0.0).then(|| peak / per_unit)
    });
    Some(Point {
        at,
        desired_units: units(decision, "desired_units")?,
        in_service_units: units(decision, "in_service_units")?,
        pending_units: units(decision, "pending_units").unwrap_or(0),
        spot_units: spot,
        on_demand_units: on_demand,
        wanted_units: decision.get("stages").and_then(|s| units(s, "metrics")),
        forecast_peak_units: peak,
        forecast_floor_units: predictive.and_then(|p| units(p, "floor_units")),
        ttft_p95_secs: decision
            .get("latency")
            .and_then(|l| l.get("ttft_p95_secs"))
            .and_then(Value::as_f64),
        spend_usd_per_hour: decision
            .get("spend")
            .and_then(|s| s.get("rate_usd_per_hour"))
            .and_then(Value::as_f64),
    })
}

/// The change a logged decision records, when it changed capacity.
pub fn change_of(decision: &Value) -> Option<Change> {
    let action = decision.get("action")?.as_str()?;
    if action == "hold" {
        return None;
    }
    Some(Change {
        at: Timestamp::parse_rfc3339(decision.get("at")?.as_str()?).ok()?,
        action: action.to_string(),
        from_units: units(decision, "current_units")?,
        to_units: units(decision, "desired_units")?,
        summary: decision
            .get("summary")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    })
}

impl FleetHistory {
    /// Takes in one decision: its point replaces the last one when both fall in the same
    /// minute (a minute shows its latest state), and a change is kept. Older than
    /// [`MINUTES_KEPT`] and [`CHANGES_KEPT`] is forgotten. A point behind the newest by more
    /// than the clock skew the daemon tolerates (a clock stepped back, a simulated run
    /// restarted) starts the history afresh rather than draw backwards; within it, the
    /// newest points at or after it are replaced.
    pub fn record(&mut self, point: Point, change: Option<Change>) {
        let minute = |t: Timestamp| t.millis().div_euclid(60_000);
        if self.points.back().is_some_and(|last| {
            last.at.secs_since(point.at) > crate::model::FUTURE_SKEW_ALLOWANCE_SECS
        }) {
            self.points.clear();
            self.changes.clear();
        }
        while self
            .points
            .back()
            .is_some_and(|last| last.at >= point.at || minute(last.at) == minute(point.at))
        {
            self.points.pop_back();
        }
        let horizon = point.at.plus_secs(-(MINUTES_KEPT as f64) * 60.0);
        self.points.push_back(point);
        while self.points.front().is_some_and(|p| p.at <= horizon) {
            self.points.pop_front();
        }
        if let Some(c) = change {
            self.record_change(c);
        }
    }

    /// Keeps a change on its own (read back from the log, where changes are kept longer than
    /// a minute's last decision shows). The same change again right after it is the first not
    /// having taken effect (a dry run, a refused plan asks again each tick): kept once.
    pub fn record_change(&mut self, change: Change) {
        if self
            .changes
            .back()
            .is_some_and(|l| (l.from_units, l.to_units) == (change.from_units, change.to_units))
        {
            return;
        }
        self.changes.push_back(change);
        while self.changes.len() > CHANGES_KEPT {
            self.changes.pop_front();
        }
    }

    /// Points and changes at or after `from`.
    pub fn view(&self, fleet: &str, from: Timestamp) -> View {
        View {
            fleet: fleet.to_string(),
            points: self
                .points
                .iter()
                .filter(|p| p.at >= from)
                .cloned()
                .collect(),
            changes: self
                .changes
                .iter()
                .rev()
                .filter(|c| c.at >= from)
                .cloned()
                .collect(),
            ttft_slo_secs: self.ttft_slo_secs,
        }
    }

    /// The newest point's time.
    pub fn last_at(&self) -> Option<Timestamp> {
        self.points.back().map(|p| p.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(at: &str, current: u64, desired: u64, action: &str) -> Value {
        serde_json::json!({
            "at": at, "current_units": current, "desired_units": desired, "action": action,
            "in_service_units": current, "pending_units": desired.saturating_sub(current),
            "stages": { "metrics": desired },
            "predictive": { "peak_demand": 300.0, "demand_per_unit": 100.0, "floor_units": 3 },
            "spend": { "rate_usd_per_hour": 1.5 },
            "latency": { "ttft_p95_secs": 0.4, "queue_wait_p95_secs": 0.1, "at": at },
            "pools": [ { "pool": "spot", "market": "spot", "desired_units": desired - 1 },
                       { "pool": "od", "market": "on_demand", "desired_units": 1 } ],
            "summary": format!("{current} → {desired}")
        })
    }

    #[test]
    fn a_logged_decision_reads_as_a_point_and_a_change() {
        let d = decision("2026-12-01T10:00:15Z", 4, 6, "scale_up");
        let p = point_of(&d).unwrap();
        assert_eq!(
            (
                p.desired_units,
                p.spot_units,
                p.on_demand_units,
                p.pending_units
            ),
            (6, 5, 1, 2)
        );
        assert_eq!(p.forecast_peak_units, Some(3.0));
        assert_eq!((p.forecast_floor_units, p.wanted_units), (Some(3), Some(6)));
        assert_eq!(p.spend_usd_per_hour, Some(1.5));
        assert_eq!(p.ttft_p95_secs, Some(0.4));
        let c = change_of(&d).unwrap();
        assert_eq!(
            (c.from_units, c.to_units, c.action.as_str()),
            (4, 6, "scale_up")
        );
        assert!(change_of(&decision("2026-12-01T10:00:30Z", 6, 6, "hold")).is_none());
        // Asked again (it did not take effect): kept once.
        let mut h = FleetHistory::default();
        for at in ["2026-12-01T10:00:15Z", "2026-12-01T10:00:30Z"] {
            let d = decision(at, 4, 6, "scale_up");
            h.record(point_of(&d).unwrap(), change_of(&d));
        }
        assert_eq!(h.view("f", Timestamp(0)).changes.len(), 1);
        assert!(point_of(&serde_json::json!({"at": "yesterday"})).is_none());
    }

    #[test]
    fn one_point_a_minute_three_days_kept() {
        let mut h = FleetHistory::default();
        let start = Timestamp::parse_rfc3339("2026-12-01T00:00:00Z").unwrap();
        // Four ticks a minute for four days.
        for k in 0..(4 * 1440 * 4) {
            let at = start.plus_secs(15.0 * k as f64);
            let d = decision(&at.to_string(), 2, 2 + (k % 2) as u64, "hold");
            h.record(point_of(&d).unwrap(), change_of(&d));
        }
        let v = h.view("f", Timestamp(0));
        assert_eq!(v.points.len(), MINUTES_KEPT);
        assert!(v.changes.is_empty(), "holds are not changes");
        // Each minute shows its last tick.
        assert!(v.points.iter().all(|p| p.at.millis() % 60_000 == 45_000));
        assert!(v.points.windows(2).all(|w| w[0].at < w[1].at));
        let last_hour = h.view("f", h.last_at().unwrap().plus_secs(-3600.0));
        assert_eq!(last_hour.points.len(), 61);
        // A few seconds back (within the clock skew tolerated): the newest minute is replaced,
        // the rest kept.
        let newest = h.last_at().unwrap();
        let d = decision(&newest.plus_secs(-5.0).to_string(), 2, 2, "hold");
        h.record(point_of(&d).unwrap(), None);
        assert_eq!(h.view("f", Timestamp(0)).points.len(), MINUTES_KEPT);
        // A clock step back starts afresh.
        let d = decision("2026-12-01T00:00:00Z", 2, 2, "hold");
        h.record(point_of(&d).unwrap(), None);
        assert_eq!(h.view("f", Timestamp(0)).points.len(), 1);
    }
}
