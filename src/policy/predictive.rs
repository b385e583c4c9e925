//! The predictive floor: capacity in service before a forecast rise arrives.
//!
//! A GPU replica needs minutes from launch to serving, so a reactive policy meets every rise
//! one cold start late. With a demand forecast (per minute, with an upper quantile), the floor
//! is the highest upper-quantile demand around `now + lead` (± a minute) — the lead being the
//! fleet's own observed p95 launch → in-service time, when capacity launched now would serve —
//! divided by the demand one unit serves. It only raises the
//! fleet's bounds (as EC2's `ForecastAndScale` raises the group's minimum): it never scales in,
//! and in `forecast_only` mode it is reported and not applied.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::{Predictive, PredictiveMode};
use crate::model::{DemandForecast, LifecycleState, Snapshot, Timestamp, Units};

/// Observed launch → in-service durations kept, most recent last.
const KEPT_COLD_STARTS: usize = 64;

/// Observations needed before the learned lead replaces `default_lead_secs`.
const MIN_COLD_STARTS: usize = 3;

/// Launch → in-service times the fleet has shown, learned from its own snapshots: an instance
/// first seen pending at `t0` and first seen in service at `t1` took about `t1 − t0` (to within
/// a tick).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ColdStarts {
    /// Instances seen pending, and when first seen so.
    pub pending_since: BTreeMap<String, Timestamp>,
    /// The most recent observed durations, seconds.
    pub observed_secs: Vec<f64>,
}

impl ColdStarts {
    /// Takes in one snapshot.
    pub fn observe(&mut self, snap: &Snapshot, now: Timestamp) {
        let mut present = BTreeSet::new();
        for i in &snap.instances {
            present.insert(i.id.as_str());
            match i.state {
                LifecycleState::Pending => {
                    self.pending_since.entry(i.id.clone()).or_insert(now);
                }
                LifecycleState::InService => {
                    if let Some(t0) = self.pending_since.remove(&i.id) {
                        self.observed_secs.push(now.secs_since(t0));
                        if self.observed_secs.len() > KEPT_COLD_STARTS {
                            self.observed_secs.remove(0);
                        }
                    }
                }
                _ => {
                    self.pending_since.remove(&i.id);
                }
            }
        }
        self.pending_since
            .retain(|id, _| present.contains(id.as_str()));
    }

    /// The lead to size ahead on, seconds, and where it came from: the 95th percentile of the
    /// observed durations once [`MIN_COLD_STARTS`] have been seen (`"observed"`), and
    /// `default_secs` before (`"default"`). The one reading of the fleet's cold start: the
    /// predictive floor, ramp-ahead and the spot headroom all size on it.
    pub fn lead_secs(&self, default_secs: f64) -> (f64, &'static str) {
        self.p95_secs()
            .map_or((default_secs, "default"), |p95| (p95, "observed"))
    }

    /// The 95th percentile of the observed durations, once enough have been seen.
    pub fn p95_secs(&self) -> Option<f64> {
        if self.observed_secs.len() < MIN_COLD_STARTS {
            return None;
        }
        let mut v = self.observed_secs.clone();
        v.sort_by(f64::total_cmp);
        let rank = ((0.95 * v.len() as f64).ceil() as usize).clamp(1, v.len());
        Some(v[rank - 1])
    }
}

/// What the predictive policy concluded in one decision, for its explanation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PredictiveStep {
    /// The mode in force.
    pub mode: PredictiveMode,
    /// The lead time used, seconds.
    pub lead_secs: f64,
    /// The forecast quantile sized on (0.5–0.99).
    pub quantile: f64,
    /// The demand one unit serves: the policy's, or learned; `None` while not learned yet.
    pub demand_per_unit: Option<f64>,
    /// Where the lead came from: `configured`, `observed` (p95 of launches) or `default`.
    pub lead_from: &'static str,
    /// The highest upper-quantile demand within a minute of `now + lead`; `None` without a
    /// usable forecast.
    pub peak_demand: Option<f64>,
    /// The upper-quantile demand forecast for now (shown beside the peak; the rise is
    /// measured from the lowest forecast over the last lead).
    pub level_now: Option<f64>,
    /// The floor it implies, units (before the fleet's bounds).
    pub floor_units: Option<Units>,
    /// Units the forecast peak of the next hour needs (for warm pools).
    pub next_hour_units: Option<Units>,
    /// How long no request has reached the fleet's servers, seconds, while that silence is
    /// held through (within `silence_hold_mins`); `None` otherwise.
    pub silent_secs: Option<f64>,
    /// Whether the floor was applied (mode `forecast_and_scale`, a forecast at hand, and a rise
    /// ahead or a silence held through).
    pub applied: bool,
}

/// A silence at the fleet's servers: since when none had a request over the last minute, and
/// when one had again.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// The first decision that saw no request.
    pub since: Timestamp,
    /// The first decision that saw one again; `None` while the silence lasts.
    pub ended: Option<Timestamp>,
}

/// Takes in the requests the fleet's in-service servers had over the last minute
/// (`capacity::request_activity`) and returns how long the silence held through lasted,
/// seconds — while it lasts, and for a rate window after the traffic comes back: a minute's
/// rates take a minute to read the traffic in full, and the recommendations of the silence
/// would release the capacity held for it the moment the floor let go (ServeGen: 7 → 3 units
/// at the first decision with traffic, bought back 15 s later). Unknown load (no server
/// reports it) neither starts nor ends a silence, and is not one.
pub fn observe_silence(
    silence: &mut Option<Silence>,
    requests: Option<f64>,
    now: Timestamp,
) -> Option<f64> {
    match (requests, *silence) {
        (None, _) => None,
        (Some(r), s) if r <= 0.0 => {
            let s = match s {
                Some(s) if s.ended.is_none() => s,
                _ => Silence {
                    since: now,
                    ended: None,
                },
            };
            *silence = Some(s);
            Some(now.secs_since(s.since))
        }
        (Some(_), None) => None,
        (Some(_), Some(s)) => {
            let ended = s.ended.unwrap_or(now);
            if now.secs_since(ended) < crate::model::RATE_WINDOW_SECS {
                *silence = Some(Silence {
                    ended: Some(ended),
                    ..s
                });
                Some(ended.secs_since(s.since))
            } else {
                *silence = None;
                None
            }
        }
    }
}

/// How long a silence has lasted while it is held through — within `hold_mins`
/// (`[fleets] silence_hold_mins`; 0 holds none) — from [`observe_silence`]'s count.
pub fn silence_held(silent_secs: Option<f64>, hold_mins: u64) -> Option<f64> {
    let hold_secs = hold_mins as f64 * 60.0;
    silent_secs.filter(|s| hold_secs > 0.0 && *s <= hold_secs)
}

/// Weight of one observation in the learned demand per unit.
const LEARN_WEIGHT: f64 = 0.05;

/// Takes in one decision's observation of the fleet's requests per minute and the units of work
/// they kept busy, and updates the learned demand per unit (at target utilisation `u`): an
/// exponentially weighted mean, taken only while at least half a unit is busy (an idle fleet
/// says nothing about what a unit serves).
pub fn learn_demand_per_unit(
    learned: &mut Option<f64>,
    requests_per_min: f64,
    busy_units: f64,
    u: f64,
) {
    if busy_units < 0.5 || requests_per_min <= 0.0 {
        return;
    }
    let observed = requests_per_min / busy_units * u;
    *learned = Some(learned.map_or(observed, |l| l + LEARN_WEIGHT * (observed - l)));
}

/// The floor for `now`, with `demand_per_unit` the policy's or the learned one (`None`: no
/// floor yet) and `silent_secs` how long no request has reached the servers, while that
/// silence is held through ([`silence_held`]).
pub fn step(
    cfg: &Predictive,
    demand_per_unit: Option<f64>,
    tolerance: f64,
    forecast: Option<&DemandForecast>,
    cold: &ColdStarts,
    silent_secs: Option<f64>,
    now: Timestamp,
) -> PredictiveStep {
    let (lead_secs, lead_from) = match cfg.lead_secs {
        Some(l) => (l as f64, "configured"),
        None => cold.lead_secs(cfg.default_lead_secs as f64),
    };
    let per_unit = demand_per_unit.filter(|d| *d > 0.0);
    // HPA's tolerance, as on every metric ratio: a forecast within it of a whole number of units
    // does not round up to one more (the upper quantile's noise would otherwise toggle the floor
    // between two sizes and each toggle restarts the scale-down window).
    let units = |demand: f64| {
        per_unit.map(|d| (demand / d / (1.0 + tolerance.max(0.0))).ceil().max(0.0) as Units)
    };
    // Capacity launched now serves from `now + lead`: size it on the demand then (± a minute
    // for the tick and the forecast's resolution). Demand before that is the reactive
    // policy's, and holding today's level for a whole lead would slow every decline.
    let peak_demand =
        forecast.and_then(|f| f.peak_upper(now.plus_secs((lead_secs - 60.0).max(0.0)), 120.0));
    let next_hour = forecast.and_then(|f| f.peak_upper(now, 3600.0));
    let level_now = forecast.and_then(|f| f.peak_upper(now, 0.0));
    let floor_units = peak_demand.and_then(units);
    // The floor is for what reactive scaling cannot do — have capacity in service when a rise
    // arrives. On a flat or falling forecast the reactive policy follows the demand it measures,
    // and a floor sized on the upper quantile would only hold capacity over it (measured on
    // `periodic`: +11 % cost for no SLO gained). A rise counts when it exceeds the tolerance
    // (as a metric ratio must: the forecast's minute-to-minute wobble is not a rise), measured
    // from the lowest forecast over the last lead — so the floor holds *through* the lead after
    // the rise arrives, while the reactive signals, a rate window behind, catch up. Compared
    // with the forecast for now alone, it let go at the step's first minute and capacity fell
    // 5 → 2 units into a ×6 step (tests/simulator.rs, the daily step).
    let base = forecast
        .and_then(|f| f.low_upper(now.plus_secs(-lead_secs), lead_secs))
        .or(level_now);
    let rise_ahead =
        matches!((peak_demand, base), (Some(p), Some(b)) if p > b * (1.0 + tolerance.max(0.0)));
    // A silence where the forecast expects traffic is held through, a rise ahead or not: the
    // traffic an outage upstream held back comes back within a minute, an instant step from
    // the floor that no reactive policy meets (Netflix's Scryer names the case; the 14-day
    // ServeGen trace has twelve, and every minute of our replay under 99 % served followed
    // one). The forecast for a lead on is what it sizes, so a silence at a daily low holds
    // little.
    PredictiveStep {
        demand_per_unit: per_unit,
        mode: cfg.mode,
        lead_secs,
        lead_from,
        quantile: cfg.quantile,
        peak_demand,
        floor_units,
        next_hour_units: next_hour.and_then(units),
        level_now,
        silent_secs,
        applied: cfg.mode == PredictiveMode::ForecastAndScale
            && floor_units.is_some()
            && (rise_ahead || silent_secs.is_some()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Instance;

    fn snap(states: &[(&str, LifecycleState)]) -> Snapshot {
        Snapshot {
            instances: states
                .iter()
                .map(|(id, state)| Instance {
                    id: id.to_string(),
                    pool: "p".into(),
                    weight_units: 1,
                    state: *state,
                    samples: BTreeMap::new(),
                    load: None,
                })
                .collect(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn cold_starts_are_learned_from_pending_to_in_service() {
        use LifecycleState::*;
        let t = |s: f64| Timestamp::from_secs(1_800_000_000).plus_secs(s);
        let mut c = ColdStarts::default();
        c.observe(
            &snap(&[("a", InService), ("b", Pending), ("c", Pending)]),
            t(0.0),
        );
        c.observe(
            &snap(&[("a", InService), ("b", Pending), ("c", Terminating)]),
            t(60.0),
        );
        c.observe(&snap(&[("a", InService), ("b", InService)]), t(150.0));
        // "a" was never seen pending; "c" never made it.
        assert_eq!(c.observed_secs, vec![150.0]);
        assert!(c.pending_since.is_empty());
        assert_eq!(c.p95_secs(), None, "one observation is not enough");
        assert_eq!(c.lead_secs(300.0), (300.0, "default"));
        assert_eq!(c.lead_secs(600.0), (600.0, "default"));
        c.observed_secs.extend([120.0, 180.0, 600.0]);
        assert_eq!(c.p95_secs(), Some(600.0));
        assert_eq!(c.lead_secs(300.0), (600.0, "observed"));
    }

    #[test]
    fn demand_per_unit_is_learned_from_requests_per_unit_of_work() {
        let mut l = None;
        learn_demand_per_unit(&mut l, 600.0, 0.2, 0.7); // idle: nothing learned
        assert_eq!(l, None);
        // 600 requests a minute keep 4 units busy: 150 a unit at 100 %, 105 at 70 %.
        learn_demand_per_unit(&mut l, 600.0, 4.0, 0.7);
        assert!((l.unwrap() - 105.0).abs() < 1e-9);
        // The mix gets heavier (the same requests need twice the work): it follows.
        for _ in 0..200 {
            learn_demand_per_unit(&mut l, 600.0, 8.0, 0.7);
        }
        assert!((l.unwrap() - 52.5).abs() < 0.1, "{l:?}");
    }

    fn predictive(demand_per_unit: f64, lead_secs: Option<u64>) -> Predictive {
        Predictive {
            mode: PredictiveMode::ForecastAndScale,
            demand_per_unit: Some(demand_per_unit),
            quantile: 0.9,
            lead_secs,
            default_lead_secs: 300,
            history_days: 14,
            refit_mins: 60,
            warm_pool_from_forecast: false,
            source: None,
        }
    }

    #[test]
    fn the_floor_is_the_upper_quantile_peak_over_the_lead() {
        let t0 = Timestamp::from_secs(1_800_000_000);
        let mut upper = vec![100.0; 120];
        upper[4] = 1000.0; // minute 4: a spike 240 s ahead
        let f = DemandForecast {
            start: t0,
            point: vec![100.0; 120],
            upper,
        };
        let mut cfg = predictive(110.0, None);
        let cold = ColdStarts::default();
        let s = step(&cfg, cfg.demand_per_unit, 0.0, Some(&f), &cold, None, t0);
        assert_eq!((s.lead_secs, s.lead_from), (300.0, "default"));
        assert_eq!(s.floor_units, Some(10), "1000 / 110 rounded up");
        assert!(s.applied);
        // A shorter lead does not see the spike yet.
        cfg.lead_secs = Some(120);
        assert_eq!(
            step(&cfg, cfg.demand_per_unit, 0.0, Some(&f), &cold, None, t0).floor_units,
            Some(1)
        );
        // Forecast-only reports and does not apply; no forecast, no floor.
        cfg.mode = PredictiveMode::ForecastOnly;
        cfg.lead_secs = None;
        let s = step(&cfg, cfg.demand_per_unit, 0.0, Some(&f), &cold, None, t0);
        assert_eq!((s.floor_units, s.applied), (Some(10), false));
        let s = step(&cfg, cfg.demand_per_unit, 0.0, None, &cold, None, t0);
        assert_eq!((s.floor_units, s.applied), (None, false));
        // A forecast that no longer reaches the lead's end is not trusted.
        let late = t0.plus_secs(118.0 * 60.0);
        // Not learned yet: no floor.
        assert_eq!(
            step(&cfg, None, 0.0, Some(&f), &cold, None, t0).floor_units,
            None
        );
        assert_eq!(
            step(&cfg, cfg.demand_per_unit, 0.0, Some(&f), &cold, None, late).floor_units,
            None
        );
    }

    /// The floor is for a rise ahead: on a flat or falling forecast it is computed and shown
    /// but not applied; and a forecast within the tolerance of a whole number of units does not
    /// round up to one more.
    #[test]
    fn the_floor_applies_ahead_of_a_rise_within_the_tolerance() {
        let t0 = Timestamp::from_secs(1_800_000_000);
        let cfg = predictive(100.0, Some(300));
        let cold = ColdStarts::default();
        let forecast = |f: &dyn Fn(usize) -> f64| DemandForecast {
            start: t0,
            point: (0..120).map(f).collect(),
            upper: (0..120).map(f).collect(),
        };
        type Case<'a> = (&'a str, &'a dyn Fn(usize) -> f64, f64, Option<Units>, bool);
        let cases: [Case; 5] = [
            // The peak within a minute of now + 300 s: minute 6.
            ("rising", &|m| 200.0 + 20.0 * m as f64, 0.0, Some(4), true),
            ("flat", &|_| 250.0, 0.0, Some(3), false),
            ("falling", &|m| 600.0 - 20.0 * m as f64, 0.0, Some(6), false),
            // 2.12 units ahead: one more unit without a tolerance, none within 10 %.
            (
                "rising, just over 2",
                &|m| 200.0 + 2.0 * m as f64,
                0.0,
                Some(3),
                true,
            ),
            // …and with a 10 % tolerance a 6 % rise over the lead is no rise at all.
            (
                "rising, within 10 %",
                &|m| 200.0 + 2.0 * m as f64,
                0.1,
                Some(2),
                false,
            ),
        ];
        for (name, f, tol, floor, applied) in cases {
            let s = step(
                &cfg,
                cfg.demand_per_unit,
                tol,
                Some(&forecast(f)),
                &cold,
                None,
                t0,
            );
            assert_eq!(
                (s.floor_units, s.applied),
                (floor, applied),
                "{name}: {s:?}"
            );
        }
    }

    /// The floor holds through the lead after a forecast step arrives (the reactive signals
    /// are a rate window behind it), and lets go once the step is older than the lead.
    #[test]
    fn the_floor_holds_through_the_lead_after_a_step_arrives() {
        let t0 = Timestamp::from_secs(1_800_000_000);
        let cfg = predictive(100.0, Some(300));
        let cold = ColdStarts::default();
        let step_at = |m: usize| if m >= 10 { 600.0 } else { 100.0 };
        let f = DemandForecast {
            start: t0,
            point: (0..120).map(step_at).collect(),
            upper: (0..120).map(step_at).collect(),
        };
        for (minute, applied) in [
            (3.0, false),
            (6.0, true),
            (10.0, true),
            (14.0, true),
            (16.0, false),
        ] {
            let s = step(
                &cfg,
                cfg.demand_per_unit,
                0.1,
                Some(&f),
                &cold,
                None,
                t0.plus_secs(minute * 60.0),
            );
            assert_eq!(s.applied, applied, "minute {minute}: {s:?}");
        }
    }

    /// A silence — no request at the servers — starts when the first decision sees none and
    /// is held for a rate window after the first that sees one again; unknown load neither
    /// starts nor ends it.
    #[test]
    fn a_silence_lasts_from_the_first_decision_without_requests_to_a_minute_after_one() {
        let t0 = Timestamp::from_secs(1_800_000_000);
        let mut silence = None;
        // (seconds after t0, requests over the last minute, silent for)
        let ticks = [
            (0.0, Some(120.0), None),
            (15.0, Some(0.0), Some(0.0)),
            (30.0, None, None),
            (45.0, Some(0.0), Some(30.0)),
            (60.0, Some(0.0), Some(45.0)),
            (75.0, Some(3.0), Some(60.0)), // traffic is back: held a minute more
            (90.0, Some(30.0), Some(60.0)),
            (120.0, Some(0.0), Some(0.0)), // silent again: a new silence
            (135.0, Some(60.0), Some(15.0)),
            (194.0, Some(60.0), Some(15.0)),
            (195.0, Some(60.0), None), // a minute after: over
            (210.0, Some(60.0), None),
        ];
        for (at, requests, want) in ticks {
            let got = observe_silence(&mut silence, requests, t0.plus_secs(at));
            assert_eq!(got, want, "at {at} s, requests {requests:?}");
        }
    }

    /// A silence is held through on a flat forecast — no rise ahead — for `silence_hold_mins`
    /// and no longer, at the forecast's capacity a lead on; `forecast_only` reports it alone.
    #[test]
    fn a_silence_holds_the_forecasts_capacity_for_the_hold_and_no_longer() {
        let t0 = Timestamp::from_secs(1_800_000_000);
        let mut cfg = predictive(100.0, Some(300));
        let hold_mins = 30;
        let cold = ColdStarts::default();
        let f = DemandForecast {
            start: t0,
            point: vec![600.0; 120],
            upper: vec![600.0; 120],
        };
        // (case, silent for, mode, applied)
        let cases = [
            (
                "traffic flowing",
                None,
                PredictiveMode::ForecastAndScale,
                false,
            ),
            (
                "silent a minute",
                Some(60.0),
                PredictiveMode::ForecastAndScale,
                true,
            ),
            (
                "silent the whole hold",
                Some(1800.0),
                PredictiveMode::ForecastAndScale,
                true,
            ),
            (
                "silent past the hold",
                Some(1801.0),
                PredictiveMode::ForecastAndScale,
                false,
            ),
            (
                "forecast only",
                Some(60.0),
                PredictiveMode::ForecastOnly,
                false,
            ),
        ];
        for (name, silent, mode, applied) in cases {
            cfg.mode = mode;
            let held = silence_held(silent, hold_mins);
            let s = step(&cfg, cfg.demand_per_unit, 0.1, Some(&f), &cold, held, t0);
            assert_eq!(
                (s.applied, s.floor_units),
                (applied, Some(6)),
                "{name}: {s:?}"
            );
            assert_eq!(
                s.silent_secs.is_some(),
                silent.is_some_and(|s| s <= 1800.0),
                "{name}"
            );
        }
        cfg.mode = PredictiveMode::ForecastAndScale;
        let held = silence_held(Some(60.0), 0);
        let s = step(&cfg, cfg.demand_per_unit, 0.1, Some(&f), &cold, held, t0);
        assert!(!s.applied, "silence_hold_mins = 0 holds nothing: {s:?}");
    }
}
