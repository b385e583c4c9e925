//! A fleet's per-minute demand history and its forecast, refit on a schedule: what the daemon
//! and the simulator both run to hand the engine a [`DemandForecast`].
//!
//! Pure (no clock, no I/O): the caller records complete minutes and asks for the forecast at
//! `now`. A refit happens when none exists or the last is `refit_mins` old, so the CPU spent
//! is bounded (one fit of at most two weeks per fleet per `refit_mins`; MSTL, most of a fit's
//! CPU, at most once an hour — [`super::ensemble::MstlCache`]). Each forecast covers
//! `refit_mins` + 2 hours, so until the next refit the next hour (and any lead) is covered.
//!
//! Two guards keep a forecast from holding capacity it should not:
//! - under a day of history there is no forecast (a level or trend fitted on minutes, held for
//!   an hour, pinned capacity through every sudden drop in simulation): reactive only;
//! - *off track*: when the last [`TRACK_MINUTES`] minutes brought less than
//!   [`OFF_TRACK_SHARE`] of the demand the forecast said (a holiday, a lost customer), the
//!   forecast is withheld and refit, at most every [`TRACK_MINUTES`].
//!
//! A *silence* — minutes with next to no demand ([`SILENT_SHARE`]) where the forecast expected
//! traffic — is different: what an outage upstream looks like, after which the traffic comes
//! back all at once. For up to `silence_hold_mins` such minutes are gaps, neither fitted nor
//! tracked, so the forecast stays and the engine's floor can hold its capacity through the
//! silence (`policy::predictive`); a longer silence is demand again.

use std::collections::VecDeque;

use super::ensemble::{members_cached, Adaptive, MstlCache, Weight};
use super::{DAY, HISTORY_MINUTES};

/// Minutes of actual-vs-forecast demand the off-track guard looks at.
pub const TRACK_MINUTES: usize = 15;

/// Below this share of the forecast demand, the forecast is off track.
pub const OFF_TRACK_SHARE: f64 = 0.6;

/// A minute with at most this share of the demand its forecast expected is silent: not less
/// traffic but next to none (a hundredth) — what an outage upstream of the fleet looks like.
pub const SILENT_SHARE: f64 = 0.01;

/// Why a predictor gives no forecast, or that it gives one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictorStatus {
    /// A forecast is in use.
    Ok,
    /// Less than a day of history.
    ShortHistory,
    /// Recent demand fell far below the forecast: withheld until a refit brings it back.
    OffTrack,
    /// The model could not be fitted.
    FitFailed,
}
use crate::config::Predictive;
use crate::model::{DemandForecast, Timestamp};

/// History and forecast of one fleet's demand.
#[derive(Clone, Debug)]
pub struct Predictor {
    /// Minutes since the epoch of `history[0]`.
    first_minute: i64,
    /// Demand per minute; `None` is a gap.
    history: Vec<Option<f64>>,
    /// Minutes kept.
    max_minutes: usize,
    refit_mins: i64,
    /// The ensemble's learnt weights and interval (warmed up on the history at the first fit).
    ensemble: Adaptive,
    /// MSTL's last fit, reused by the refits of the next hour.
    mstl: MstlCache,
    warmed_up: bool,
    /// The minute the current forecast was fitted at.
    fitted_at: Option<i64>,
    forecast: Option<DemandForecast>,
    /// The last minutes' `(actual, forecast point)` where a forecast covered them.
    tracked: VecDeque<(f64, f64)>,
    /// Silent minutes in a row ([`SILENT_SHARE`]), gaps between them not counted.
    silent_minutes: u64,
    /// `silence_hold_mins`: how many silent minutes in a row are taken for a gap.
    silence_hold_mins: u64,
    status: PredictorStatus,
    /// Fits made.
    pub fits: u64,
    /// Fits that failed (the previous forecast is kept while it still reaches).
    pub fit_failures: u64,
}

/// How the ensemble learns on the history it starts with: origins every 6 hours over the last
/// week, each forecasting an hour (~1 s of CPU once per fleet).
pub struct WarmUp {
    /// Minutes forecast at each origin.
    pub horizon: usize,
    /// Minutes between origins.
    pub step: usize,
    /// Origins.
    pub origins: usize,
}

/// The warm-up the daemon, the simulator and `forecast` run.
pub const WARM_UP: WarmUp = WarmUp {
    horizon: 60,
    step: 360,
    origins: 28,
};

/// Minutes of the previous forecast a refit keeps before its own start (at least the longest
/// lead a fleet is likely to learn: a 10-minute cold start).
pub const KEEP_PAST_MINUTES: i64 = 20;

/// Minutes since the epoch of the minute holding `t`.
pub fn minute_of(t: Timestamp) -> i64 {
    t.millis().div_euclid(60_000)
}

/// Minutes a demand minute needs to settle before it is recorded: CloudWatch publishes a
/// minute's `Sum` late, so the daemon reads up to two minutes back — and the simulator records
/// its own counts with the same lag, so both hand the forecaster the same history.
pub const SETTLE_MINUTES: i64 = 2;

/// The newest minute that is settled at `now`.
pub fn settled_minute(now: Timestamp) -> i64 {
    minute_of(now) - SETTLE_MINUTES
}

impl Predictor {
    /// An empty predictor for the policy's settings, taking up to `silence_hold_mins` silent
    /// minutes in a row for a gap (the fleet's [`crate::config::Fleet::forecast_silence_gap_mins`]).
    pub fn new(cfg: &Predictive, silence_hold_mins: u64) -> Self {
        Predictor {
            first_minute: 0,
            history: Vec::new(),
            max_minutes: (cfg.history_days as usize * 1440).min(HISTORY_MINUTES),
            refit_mins: cfg.refit_mins.max(1) as i64,
            // A central interval at 2q − 1 has the q quantile as its upper bound.
            ensemble: Adaptive::new(2.0 * cfg.quantile - 1.0),
            mstl: MstlCache::default(),
            warmed_up: false,
            fitted_at: None,
            forecast: None,
            tracked: VecDeque::new(),
            silent_minutes: 0,
            silence_hold_mins,
            status: PredictorStatus::ShortHistory,
            fits: 0,
            fit_failures: 0,
        }
    }

    /// The last minute recorded (minutes since the epoch).
    pub fn last_minute(&self) -> Option<i64> {
        (!self.history.is_empty()).then(|| self.first_minute + self.history.len() as i64 - 1)
    }

    /// Minutes of history held.
    pub fn len(&self) -> usize {
        self.history.len()
    }

    /// Whether no minute is held.
    pub fn is_empty(&self) -> bool {
        self.history.is_empty()
    }

    /// The history from `from_minute` on (for persisting what is new).
    pub fn since(&self, from_minute: i64) -> impl Iterator<Item = (i64, Option<f64>)> + '_ {
        let skip = from_minute.saturating_sub(self.first_minute).max(0) as usize;
        self.history
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(i, v)| (self.first_minute + i as i64, *v))
    }

    /// Records the demand of `minute` (minutes since the epoch). Minutes skipped since the last
    /// record become gaps; a minute at or before the last is ignored (history is append-only).
    pub fn record(&mut self, minute: i64, value: Option<f64>) {
        let value = value.filter(|v| v.is_finite() && *v >= 0.0);
        match self.last_minute() {
            None => self.first_minute = minute,
            Some(last) if minute <= last => return,
            Some(last) => {
                let gap = ((minute - last - 1) as usize).min(self.max_minutes);
                self.history.extend(std::iter::repeat_n(None, gap));
            }
        }
        let expected = self.forecast.as_ref().and_then(|f| {
            let i = minute - f.start.millis().div_euclid(60_000);
            usize::try_from(i)
                .ok()
                .and_then(|i| f.point.get(i))
                .copied()
        });
        let value = self.outside_silence(value, expected);
        self.history.push(value);
        if let (Some(actual), Some(point)) = (value, expected) {
            self.tracked.push_back((actual, point));
            if self.tracked.len() > TRACK_MINUTES {
                self.tracked.pop_front();
            }
        }
        if self.history.len() > self.max_minutes {
            let drop = self.history.len() - self.max_minutes;
            self.history.drain(..drop);
        }
        self.first_minute = minute + 1 - self.history.len() as i64;
    }

    /// `value`, or a gap when it is a minute of a silence held through: next to no demand
    /// ([`SILENT_SHARE`] of the forecast's) within `silence_hold_mins` of the silence's first
    /// minute. An outage upstream is not demand: fitted, it would teach the seasonal members
    /// that the hour has none, and tracked, it would withhold the forecast (off track) that the
    /// floor holds capacity on until the traffic comes back. A silence past the hold is demand
    /// again — recorded, tracked, off track after [`TRACK_MINUTES`].
    fn outside_silence(&mut self, value: Option<f64>, expected: Option<f64>) -> Option<f64> {
        let (Some(v), Some(p)) = (value, expected) else {
            return value;
        };
        if !(p > 0.0 && v <= SILENT_SHARE * p) {
            self.silent_minutes = 0;
            return value;
        }
        self.silent_minutes += 1;
        (self.silent_minutes > self.silence_hold_mins).then_some(v)
    }

    /// Whether the last minutes brought far less demand than the forecast said.
    fn off_track(&self) -> bool {
        let (actual, forecast) = self
            .tracked
            .iter()
            .fold((0.0, 0.0), |(a, f), (x, y)| (a + x, f + y));
        self.tracked.len() >= TRACK_MINUTES && forecast > 0.0 && actual < OFF_TRACK_SHARE * forecast
    }

    /// Prepends to a new forecast (starting at `start_minute`) what the previous one said for
    /// the last [`KEEP_PAST_MINUTES`] before it, and returns the new start: the predictive
    /// floor compares the forecast ahead with the lowest of the last lead, and a refit must
    /// not erase the minutes just before a step from that window.
    fn keep_recent_past(&self, f: &mut super::Forecast, start_minute: i64) -> i64 {
        let Some(old) = &self.forecast else {
            return start_minute;
        };
        let old_start = old.start.millis().div_euclid(60_000);
        let from = (start_minute - KEEP_PAST_MINUTES).max(old_start);
        let covered = old_start + old.upper.len() as i64 >= start_minute;
        if !covered || from >= start_minute {
            return start_minute;
        }
        let (a, b) = (
            (from - old_start) as usize,
            (start_minute - old_start) as usize,
        );
        f.point.splice(0..0, old.point[a..b].iter().copied());
        f.upper.splice(0..0, old.upper[a..b].iter().copied());
        from
    }

    /// Where the predictor stands.
    pub fn status(&self) -> PredictorStatus {
        self.status
    }

    /// The ensemble's current weights per candidate.
    pub fn weights(&self) -> Vec<Weight> {
        self.ensemble.last_weights()
    }

    /// Share of the scored forecast minutes inside the interval, warm-up included (`None`
    /// before any was scored).
    pub fn interval_coverage(&self) -> Option<f64> {
        (self.ensemble.scored > 0)
            .then(|| self.ensemble.covered as f64 / self.ensemble.scored as f64)
    }

    /// The forecast for `now`, refit first when due. `None` while no trustworthy forecast can
    /// be made ([`Predictor::status`] says why).
    pub fn forecast(&mut self, now: Timestamp) -> Option<&DemandForecast> {
        if self.history.len() < DAY {
            self.status = PredictorStatus::ShortHistory;
            return None;
        }
        let minute = minute_of(now);
        let off_track = self.off_track();
        let since_fit = self.fitted_at.map_or(i64::MAX, |at| minute - at);
        let due = since_fit >= self.refit_mins || (off_track && since_fit >= TRACK_MINUTES as i64);
        if due {
            if off_track {
                self.mstl.forget();
            }
            self.fitted_at = Some(minute);
            let horizon = (self.refit_mins + 120) as usize;
            self.ensemble.observe(&self.history, self.first_minute);
            if !self.warmed_up {
                self.ensemble.warm_up(
                    &self.history,
                    self.first_minute,
                    WARM_UP.horizon,
                    WARM_UP.step,
                    WARM_UP.origins,
                );
                // Until a day and an hour of history give it an origin, it tries again.
                self.warmed_up = self.ensemble.scored > 0;
            }
            let start_minute = self.first_minute + self.history.len() as i64;
            let m = members_cached(
                &self.history,
                start_minute,
                horizon,
                self.ensemble.level(),
                &mut self.mstl,
            );
            match self.ensemble.combine(m, start_minute) {
                Ok(mut f) => {
                    self.fits += 1;
                    let start_minute = self.keep_recent_past(&mut f, start_minute);
                    self.forecast = Some(DemandForecast {
                        start: Timestamp(start_minute * 60_000),
                        point: f.point,
                        upper: f.upper,
                    });
                }
                Err(_) => {
                    self.fit_failures += 1;
                    self.status = PredictorStatus::FitFailed;
                    return None;
                }
            }
        }
        self.status = if off_track {
            PredictorStatus::OffTrack
        } else {
            PredictorStatus::Ok
        };
        if off_track {
            return None;
        }
        self.forecast.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PredictiveMode;

    fn cfg(refit_mins: u64) -> Predictive {
        Predictive {
            mode: PredictiveMode::ForecastAndScale,
            demand_per_unit: Some(100.0),
            quantile: 0.9,
            lead_secs: None,
            default_lead_secs: 300,
            history_days: 1,
            refit_mins,
            warm_pool_from_forecast: false,
            source: None,
        }
    }

    #[test]
    fn history_keeps_gaps_as_gaps_and_is_bounded() {
        let mut p = Predictor::new(&cfg(60), 60);
        p.record(100, Some(5.0));
        p.record(103, Some(7.0));
        p.record(102, Some(9.0)); // late: ignored
        p.record(104, Some(f64::NAN)); // unreadable: a gap
        let got: Vec<_> = p.since(0).collect();
        assert_eq!(
            got,
            vec![
                (100, Some(5.0)),
                (101, None),
                (102, None),
                (103, Some(7.0)),
                (104, None)
            ]
        );
        assert_eq!(p.since(103).count(), 2);
        for m in 105..3000 {
            p.record(m, Some(1.0));
        }
        assert_eq!(p.len(), 1440);
        assert_eq!(p.last_minute(), Some(2999));
        assert_eq!(p.since(0).next().map(|(m, _)| m), Some(1560));
    }

    #[test]
    fn refits_on_schedule_and_forecasts_from_the_next_minute() {
        let mut p = Predictor::new(&cfg(30), 60);
        assert!(
            p.forecast(Timestamp::from_secs(6000)).is_none(),
            "no history, no forecast"
        );
        for m in 0..1439 {
            p.record(m, Some(100.0 + (m % 60) as f64));
        }
        assert!(p.forecast(Timestamp::from_secs(1439 * 60)).is_none());
        assert_eq!(
            p.status(),
            PredictorStatus::ShortHistory,
            "under a day: reactive only"
        );
        p.record(1439, Some(100.0));
        let f = p.forecast(Timestamp::from_secs(1440 * 60)).unwrap().clone();
        assert_eq!(p.status(), PredictorStatus::Ok);
        assert_eq!(f.start, Timestamp::from_secs(1440 * 60));
        assert_eq!(f.upper.len(), 150);
        assert_eq!(p.fits, 1);
        p.record(1440, Some(100.0));
        p.forecast(Timestamp::from_secs(1469 * 60));
        assert_eq!(p.fits, 1, "not due yet");
        p.forecast(Timestamp::from_secs(1470 * 60));
        assert_eq!(p.fits, 2);
    }

    #[test]
    fn a_forecast_far_above_what_came_is_withheld_and_refit() {
        let mut p = Predictor::new(&cfg(60), 60);
        for m in 0..1440 {
            p.record(m, Some(1000.0));
        }
        assert!(p.forecast(Timestamp::from_secs(1440 * 60)).is_some());
        // A collapse: a tenth of the demand for 15 minutes.
        for m in 1440..1455 {
            p.record(m, Some(100.0));
            let at = Timestamp::from_secs((m + 1) * 60);
            let got = p.forecast(at).is_some();
            assert_eq!(got, m < 1454, "minute {m}: {:?}", p.status());
        }
        assert_eq!(p.status(), PredictorStatus::OffTrack);
        assert_eq!(p.fits, 2, "refit once the guard tripped");
        // Demand comes back: once the last 15 minutes are on track again, so is the forecast.
        for m in 1455..1470 {
            p.record(m, Some(1000.0));
        }
        assert!(p.forecast(Timestamp::from_secs(1470 * 60)).is_some());
        assert_eq!(p.status(), PredictorStatus::Ok);
    }

    /// A silence — at most a hundredth of the demand the forecast expects — is a gap for
    /// `silence_hold_mins` minutes in a row: neither fitted nor tracked, so the forecast
    /// stays; past the hold it is demand again, and off track once 15 minutes are tracked.
    #[test]
    fn a_silence_is_a_gap_for_the_hold_and_demand_after_it() {
        let mut p = Predictor::new(&cfg(60), 20);
        for m in 0..1440 {
            p.record(m, Some(1000.0));
        }
        assert!(p.forecast(Timestamp::from_secs(1440 * 60)).is_some());
        // (minute, demand, recorded as)
        let minutes = [
            (1440, 10.0, None),       // a hundredth: silent
            (1441, 20.0, Some(20.0)), // two: demand, and the run starts over
            (1442, 0.0, None),
            (1443, 0.0, None),
        ];
        for (m, v, want) in minutes {
            p.record(m, Some(v));
            assert_eq!(p.since(m).next(), Some((m, want)), "minute {m}");
        }
        for m in 1444..1490 {
            p.record(m, Some(0.0));
            let got = p.forecast(Timestamp::from_secs((m + 1) * 60)).is_some();
            // Minutes 1442–1461 are the hold's twenty; 1462 on are recorded and tracked, with
            // 1441's 20 requests the fifteenth tracked minute is 1475.
            assert_eq!(got, m < 1475, "minute {m}: {:?}", p.status());
        }
        let recorded: Vec<_> = p.since(1442).map(|(_, v)| v).collect();
        assert!(recorded[..20].iter().all(Option::is_none), "{recorded:?}");
        assert!(
            recorded[20..].iter().all(|v| *v == Some(0.0)),
            "{recorded:?}"
        );
        assert_eq!(p.status(), PredictorStatus::OffTrack);
    }

    /// A refit just after a step keeps the minutes before it: the floor's look-back over the
    /// last lead still sees the step as a rise.
    #[test]
    fn a_refit_keeps_the_last_minutes_of_the_previous_forecast() {
        let mut c = cfg(15);
        c.history_days = 3;
        let mut p = Predictor::new(&c, 60);
        // Two days and a half of a step at 09:00 (minute 540) each day: 100 → 600.
        let level = |m: i64| {
            if (540..1020).contains(&m.rem_euclid(1440)) {
                600.0
            } else {
                100.0
            }
        };
        let day2 = 2 * 1440;
        for m in 0..day2 + 525 {
            p.record(m, Some(level(m)));
        }
        let first = p
            .forecast(Timestamp::from_secs((day2 + 527) * 60))
            .cloned()
            .unwrap();
        assert_eq!(first.start, Timestamp::from_secs((day2 + 525) * 60));
        for m in day2 + 525..day2 + 541 {
            p.record(m, Some(level(m)));
        }
        // 15 minutes on, just after the step: a refit.
        let now = Timestamp::from_secs((day2 + 543) * 60);
        let f = p.forecast(now).cloned().unwrap();
        assert_eq!(p.fits, 2);
        // Twenty minutes back at most, and no further than the previous forecast reached.
        let from = (day2 + 541 - KEEP_PAST_MINUTES).max(day2 + 525);
        assert_eq!(f.start, Timestamp::from_secs(from * 60));
        let kept = (day2 + 541 - from) as usize;
        let old_i = (from - (day2 + 525)) as usize;
        assert_eq!(
            f.upper[..kept],
            first.upper[old_i..old_i + kept],
            "unchanged"
        );
        // Over the last five minutes, the lowest is the pre-step level's.
        let low = f.low_upper(now.plus_secs(-300.0), 300.0).unwrap();
        let ahead = f.peak_upper(now.plus_secs(120.0), 120.0).unwrap();
        assert!(ahead > 2.0 * low, "{low} then {ahead}");
    }
}
