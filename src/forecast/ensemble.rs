//! Ours: a self-weighting ensemble of the candidate forecasters with adaptive conformal
//! intervals — one model per series, chosen by how each did *on that series* lately.
//!
//! Split in two so a backtest can compute the expensive part in parallel:
//! - [`members`] (pure): every candidate's forecast at one origin;
//! - [`Adaptive`] (stateful, sequential): scores the last forecast on the minutes that have
//!   since arrived, weights each candidate per horizon bucket by the inverse cube of its
//!   exponentially weighted error, and sets the interval from recent errors at a level that
//!   adaptive conformal inference (Gibbs & Candès 2021, ACI) moves with realised coverage —
//!   at least as wide as the candidates' own weighted spread (`pool_bounds`), which is where
//!   a rise only the seasonal candidates saw coming shows.
//!
//! Errors are *scaled* — divided by the level the forecast was made at — so a growing series
//! and its quiet nights weigh alike, and a residual learnt at night fits a busy afternoon.

use std::collections::VecDeque;

use serde::Serialize;

use super::members::{Profile, RecentLevel, WeeklyNaive};
use super::{BriefRule, Forecast, ForecastError, Forecaster, Mstl, SeasonalNaive, DAY};

/// The candidates, in the order of every per-member array.
pub const MEMBERS: [&str; 6] = [
    "mstl",
    "profile",
    "seasonal-naive",
    "weekly-naive",
    "brief-rule",
    "recent-level",
];
const N: usize = MEMBERS.len();
/// MSTL's index in [`MEMBERS`].
const MSTL: usize = 0;

/// Upper bounds (exclusive) of the horizon buckets, minutes ahead: each bucket has its own
/// weights and interval, because the recent level wins the first minutes and a seasonal model
/// the last.
pub const BUCKET_ENDS: [usize; 4] = [5, 15, 30, usize::MAX];
const B: usize = BUCKET_ENDS.len();

fn bucket(h: usize) -> usize {
    BUCKET_ENDS.iter().position(|&end| h < end).unwrap_or(B - 1)
}

/// Time constant of the error averages, minutes: two days, so a model that broke yesterday
/// has lost most of its weight by tomorrow, whatever the forecast cadence.
pub const ERROR_MEMORY_MINS: f64 = 2.0 * DAY as f64;

/// ACI's step per forecast: how fast the interval's level follows the share of its minutes
/// that fell outside (Gibbs & Candès use 0.005 per point; a forecast's minutes are not
/// independent points).
pub const ACI_GAMMA: f64 = 0.05;

/// A candidate's weight is its error average to this power, inverted. Inverse-square weights
/// (Bates and Granger's, the inverse variance: best for independent errors) left a share on
/// the weak candidates, whose errors move with the best one's — every candidate misses the same
/// surprise —, so the mix trailed the best candidate by 10–30 % where one was clearly best.
/// Measured with `backtest` on 22 series (docs/forecast.md): the cube lowered the MASE on 21,
/// among them the eight constructed from seeds generated for the comparison; the fourth power
/// lowered most of them a little further and raised ServeGen m-small's (0.467 → 0.473 → 0.484).
pub const WEIGHT_POWER: i32 = 3;

/// Scaled residuals kept per bucket for the interval.
pub const RESIDUAL_WINDOW: usize = 600;

/// Residuals a bucket needs before its conformal interval replaces the members' spread.
pub const MIN_RESIDUALS: usize = 30;

/// Every candidate's forecast at one origin.
#[derive(Clone, Debug)]
pub struct Members {
    /// Per candidate (in [`MEMBERS`] order): its points, `None` when it could not forecast.
    pub points: [Option<Vec<f64>>; N],
    /// MSTL's interval, when it forecast.
    pub mstl_band: Option<(Vec<f64>, Vec<f64>)>,
    /// Whether MSTL's fit had a weekly season ([`Mstl::fits_weekly`]).
    pub mstl_weekly: bool,
    /// The error scale at this origin: the mean known demand over the last day.
    pub scale: f64,
    /// Minutes forecast.
    pub horizon: usize,
}

/// Every candidate's forecast of the `horizon` minutes after `history`; pure. `level` is
/// MSTL's interval level (the fallback band before the conformal one is calibrated).
pub fn members(history: &[Option<f64>], horizon: usize, level: f64) -> Members {
    let mstl = fit_mstl(history, horizon, level);
    members_with(history, horizon, mstl)
}

/// MSTL's forecast, and whether its fit had a weekly season.
fn fit_mstl(history: &[Option<f64>], horizon: usize, level: f64) -> Option<(Forecast, bool)> {
    let m = Mstl {
        level,
        ..Mstl::default()
    };
    let f = m.forecast(history, horizon).ok()?;
    Some((f, m.fits_weekly(history.len())))
}

/// Minutes an MSTL fit is reused for (see [`MstlCache`]).
pub const MSTL_REUSE_MINUTES: i64 = 60;

/// MSTL's last fit, reused by the refits that follow it within [`MSTL_REUSE_MINUTES`]: its
/// fit is most of a refit's CPU (the other candidates are a few passes over the history), and
/// a seasonal decomposition of up to two weeks barely moves in an hour, while the level and
/// profile candidates — refit every time — follow the last minutes. Each fit forecasts that
/// much further, and a reuse reads it from the minutes since.
#[derive(Clone, Debug, Default)]
pub struct MstlCache {
    /// The minute after the history it was fitted on, its forecast from there, and whether
    /// the fit had a weekly season.
    fit: Option<(i64, Forecast, bool)>,
    /// Fits made (for the benchmarks and tests).
    pub fits: u64,
}

impl MstlCache {
    /// Drops the fit: the next refit fits MSTL afresh (a forecast gone off track must not be
    /// read forward).
    pub fn forget(&mut self) {
        self.fit = None;
    }
}

/// [`members`] with MSTL from `cache` when its fit is recent enough; `end_minute` is the minute
/// after `history`'s last.
pub fn members_cached(
    history: &[Option<f64>],
    end_minute: i64,
    horizon: usize,
    level: f64,
    cache: &mut MstlCache,
) -> Members {
    let reused = cache.fit.as_ref().and_then(|(at, f, weekly)| {
        let ahead = end_minute - at;
        if !(0..MSTL_REUSE_MINUTES).contains(&ahead) {
            return None;
        }
        let from = ahead as usize;
        (f.point.len() >= from + horizon).then(|| (f.window(from, horizon), *weekly))
    });
    let mstl = reused.or_else(|| {
        let longer = horizon + MSTL_REUSE_MINUTES as usize;
        let (f, weekly) = fit_mstl(history, longer, level)?;
        cache.fits += 1;
        let head = f.window(0, horizon);
        cache.fit = Some((end_minute, f, weekly));
        Some((head, weekly))
    });
    members_with(history, horizon, mstl)
}

fn members_with(
    history: &[Option<f64>],
    horizon: usize,
    mstl: Option<(Forecast, bool)>,
) -> Members {
    let run = |f: &dyn Forecaster| f.forecast(history, horizon).ok().map(|f| f.point);
    let day: Vec<f64> = history.iter().rev().take(DAY).flatten().copied().collect();
    let scale = if day.is_empty() {
        0.0
    } else {
        day.iter().sum::<f64>() / day.len() as f64
    };
    let mstl_weekly = mstl.as_ref().is_some_and(|(_, weekly)| *weekly);
    let mstl = mstl.map(|(f, _)| f);
    Members {
        mstl_band: mstl.as_ref().map(|f| (f.lower.clone(), f.upper.clone())),
        mstl_weekly,
        points: [
            mstl.map(|f| f.point),
            run(&Profile),
            run(&SeasonalNaive),
            run(&WeeklyNaive),
            run(&BriefRule),
            run(&RecentLevel),
        ],
        scale,
        horizon,
    }
}

/// A forecast, kept to be scored as its minutes arrive.
#[derive(Clone, Debug)]
struct Pending {
    origin_minute: i64,
    members: Members,
    point: Vec<f64>,
    lower: Vec<f64>,
    upper: Vec<f64>,
    /// Minutes ahead scored so far (`0..scored_upto`).
    scored_upto: usize,
}

/// Forecasts kept for scoring at most: a horizon of 2 h 15 min refit every 15 minutes keeps 10.
pub const MAX_PENDING: usize = 32;

/// The ensemble's learnt state: per-candidate errors, the interval's residuals and levels.
#[derive(Clone, Debug)]
pub struct Adaptive {
    level: f64,
    /// Exponentially weighted mean scaled absolute error, per candidate and bucket (`None`:
    /// not scored yet).
    error: [[Option<f64>; B]; N],
    /// Whether MSTL's errors in `error` are those of its weekly fit (`None`: none scored).
    mstl_weekly: Option<bool>,
    last_scored_minute: Option<i64>,
    residuals: [VecDeque<f64>; B],
    /// ACI's current miscoverage per bucket (starts at 1 − level).
    alpha: [f64; B],
    /// Forecasts not yet scored over their whole horizon, oldest first (at most
    /// [`MAX_PENDING`]).
    pending: VecDeque<Pending>,
    /// Forecast points scored, and those inside the interval.
    pub scored: u64,
    /// Scored points inside the interval.
    pub covered: u64,
}

/// One candidate's share of the combination, for reports and `/metrics`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Weight {
    /// The candidate.
    pub model: &'static str,
    /// Its weight per horizon bucket (see [`BUCKET_ENDS`]); 0 when it could not forecast.
    pub by_bucket: [f64; B],
}

impl Adaptive {
    /// A fresh ensemble whose intervals aim at central coverage `level` (e.g. 0.9).
    pub fn new(level: f64) -> Self {
        Adaptive {
            level,
            error: [[None; B]; N],
            mstl_weekly: None,
            last_scored_minute: None,
            residuals: Default::default(),
            alpha: [1.0 - level; B],
            pending: VecDeque::new(),
            scored: 0,
            covered: 0,
        }
    }

    /// The interval's target central coverage.
    pub fn level(&self) -> f64 {
        self.level
    }

    /// Scores the forecasts still pending on the minutes of `history` (whose first minute is
    /// `first_minute`) that arrived since they were last scored — each minute once, past data
    /// only: the candidates' errors, the interval's residuals and ACI's levels move. A
    /// forecast is dropped once its whole horizon has been scored, so every bucket learns,
    /// however often forecasts are made. Returns `(h, point, actual, inside)` per scored
    /// minute, for reports.
    pub fn observe(
        &mut self,
        history: &[Option<f64>],
        first_minute: i64,
    ) -> Vec<(usize, f64, f64, bool)> {
        let end_minute = first_minute + history.len() as i64;
        let mut scored = Vec::new();
        let mut abs = [[(0.0, 0usize); B]; N];
        let mut misses = [(0u32, 0u32); B];
        // The newest minute scored: the time of this update, for the errors' decay.
        let mut newest = i64::MIN;
        for p in &mut self.pending {
            let upto = usize::try_from(end_minute - p.origin_minute)
                .unwrap_or(0)
                .min(p.point.len());
            if upto > p.scored_upto {
                newest = newest.max(p.origin_minute + upto as i64);
                // MSTL with a weekly season is another model than the daily fit before it
                // (two weeks of history): its errors start afresh, not from the daily one's.
                if p.members.points[MSTL].is_some()
                    && self.mstl_weekly != Some(p.members.mstl_weekly)
                {
                    self.error[MSTL] = [None; B];
                    abs[MSTL] = [(0.0, 0); B];
                    self.mstl_weekly = Some(p.members.mstl_weekly);
                }
            }
            for h in p.scored_upto..upto {
                let at = p.origin_minute + h as i64 - first_minute;
                let Some(actual) = usize::try_from(at)
                    .ok()
                    .and_then(|i| history.get(i))
                    .copied()
                    .flatten()
                else {
                    continue;
                };
                let b = bucket(h);
                let s = scale_at(p.point[h], p.members.scale);
                for (m, points) in p.members.points.iter().enumerate() {
                    if let Some(points) = points {
                        abs[m][b].0 += (actual - points[h]).abs() / s;
                        abs[m][b].1 += 1;
                    }
                }
                let inside = actual >= p.lower[h] && actual <= p.upper[h];
                misses[b].0 += u32::from(!inside);
                misses[b].1 += 1;
                let r = &mut self.residuals[b];
                r.push_back((actual - p.point[h]) / s);
                if r.len() > RESIDUAL_WINDOW {
                    r.pop_front();
                }
                scored.push((h, p.point[h], actual, inside));
            }
            p.scored_upto = p.scored_upto.max(upto);
        }
        self.pending.retain(|p| p.scored_upto < p.point.len());
        self.scored += scored.len() as u64;
        self.covered += scored.iter().filter(|s| s.3).count() as u64;
        // ACI, once per bucket per scoring (a forecast's minutes miss together: counted one
        // by one they would swing the level by their number): misses lower the miscoverage
        // level — a wider interval next time —, hits raise it.
        let target = 1.0 - self.level;
        for (b, &(missed, count)) in misses.iter().enumerate() {
            if count > 0 {
                let rate = f64::from(missed) / f64::from(count);
                self.alpha[b] = (self.alpha[b] + ACI_GAMMA * (target - rate)).clamp(0.001, 0.5);
            }
        }
        if scored.is_empty() {
            return scored;
        }
        let since = self
            .last_scored_minute
            .map_or(ERROR_MEMORY_MINS, |m| (newest - m) as f64);
        let keep = (-since.max(1.0) / ERROR_MEMORY_MINS).exp();
        for (m, row) in abs.iter().enumerate() {
            for (b, &(sum, count)) in row.iter().enumerate() {
                if count == 0 {
                    continue;
                }
                let e = sum / count as f64;
                let old = &mut self.error[m][b];
                *old = Some(old.map_or(e, |o| keep * o + (1.0 - keep) * e));
            }
        }
        self.last_scored_minute = Some(newest);
        scored
    }

    /// Each candidate's weight per bucket for a forecast whose available candidates are
    /// `available` (MSTL's fit weekly or not, `mstl_weekly`): the inverse of its error
    /// average to [`WEIGHT_POWER`], normalised. A candidate not scored yet — equal weights at
    /// first — counts with the largest error of those that are: a newcomer earns its weight.
    /// With the median, the week-ago forecast, first available at exactly a week of history
    /// and unscored in the warm-up, took a typical share: on a steady growth the forecast at one
    /// week was 18 % off (under 1 % two hours either side), and MSTL's first weekly fit, at two
    /// weeks, rode on its daily fit's record (4.5 % off; `tests/forecast.rs`, docs/forecast.md).
    pub fn weights(&self, available: [bool; N], mstl_weekly: bool) -> [[f64; B]; N] {
        let mut w = [[0.0; B]; N];
        let error = |m: usize, b: usize| {
            self.error[m][b].filter(|_| m != MSTL || self.mstl_weekly == Some(mstl_weekly))
        };
        for b in 0..B {
            let prior = (0..N)
                .filter(|&m| available[m])
                .filter_map(|m| error(m, b))
                .reduce(f64::max)
                .unwrap_or(1.0);
            for m in (0..N).filter(|&m| available[m]) {
                let e = error(m, b).unwrap_or(prior).max(1e-6);
                w[m][b] = 1.0 / e.powi(WEIGHT_POWER);
            }
            let total: f64 = (0..N).map(|m| w[m][b]).sum();
            if total > 0.0 {
                for row in &mut w {
                    row[b] /= total;
                }
            }
        }
        w
    }

    /// The weights of the last forecast (equal before any), for reports.
    pub fn last_weights(&self) -> Vec<Weight> {
        let (available, mstl_weekly) = match self.pending.back() {
            Some(p) => (
                std::array::from_fn(|m| p.members.points[m].is_some()),
                p.members.mstl_weekly,
            ),
            None => ([true; N], false),
        };
        let w = self.weights(available, mstl_weekly);
        (0..N)
            .map(|m| Weight {
                model: MEMBERS[m],
                by_bucket: w[m],
            })
            .collect()
    }

    /// Combines `members` (forecast at `origin_minute`) into the forecast, with its interval;
    /// it is kept to be scored by the next [`Adaptive::observe`].
    pub fn combine(
        &mut self,
        members: Members,
        origin_minute: i64,
    ) -> Result<Forecast, ForecastError> {
        let available: [bool; N] = std::array::from_fn(|m| members.points[m].is_some());
        if !available.iter().any(|a| *a) {
            return Err(ForecastError::ShortHistory {
                model: "ensemble",
                needed: 1,
                got: 0,
            });
        }
        let w = self.weights(available, members.mstl_weekly);
        let horizon = members.horizon;
        let mut point = vec![0.0; horizon];
        let (mut lower, mut upper) = (vec![0.0; horizon], vec![0.0; horizon]);
        for h in 0..horizon {
            let b = bucket(h);
            point[h] = members
                .points
                .iter()
                .enumerate()
                .filter_map(|(m, p)| p.as_ref().map(|p| w[m][b] * p[h]))
                .sum::<f64>()
                .max(0.0);
            let (lo, hi) = self.band(&members, h, point[h]);
            let (pool_lo, pool_hi) = pool_bounds(&members, &w, h, self.level);
            lower[h] = lo.min(pool_lo).clamp(0.0, point[h]);
            upper[h] = hi.max(pool_hi).max(point[h]);
        }
        self.pending.push_back(Pending {
            origin_minute,
            members,
            point: point.clone(),
            lower: lower.clone(),
            upper: upper.clone(),
            scored_upto: 0,
        });
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_front();
        }
        Ok(Forecast {
            point,
            lower,
            upper,
        })
    }

    /// The interval at minute `h`: the point plus the scaled residuals' quantiles at ACI's
    /// level, once the bucket has [`MIN_RESIDUALS`]; before, MSTL's band around the point
    /// widened to the candidates' spread.
    fn band(&self, members: &Members, h: usize, point: f64) -> (f64, f64) {
        let b = bucket(h);
        let r = &self.residuals[b];
        if r.len() >= MIN_RESIDUALS {
            let mut sorted: Vec<f64> = r.iter().copied().collect();
            sorted.sort_by(f64::total_cmp);
            let a = self.alpha[b];
            let s = scale_at(point, members.scale);
            return (
                point + s * quantile(&sorted, a / 2.0),
                point + s * quantile(&sorted, 1.0 - a / 2.0),
            );
        }
        let spread = members.points.iter().flatten().map(|p| p[h]);
        let (mut lo, mut hi) = spread.fold((point, point), |(l, u), v| (l.min(v), u.max(v)));
        if let (Some((l, u)), Some(m)) = (&members.mstl_band, &members.points[0]) {
            lo = lo.min(point - (m[h] - l[h]));
            hi = hi.max(point + (u[h] - m[h]));
        }
        (lo, hi)
    }

    /// Learns weights and calibrates the interval on the history itself: forecasts at
    /// `origins` earlier origins `step` minutes apart (the last ending at least a horizon
    /// before the end) and scores each on what followed. What the daemon runs when it
    /// starts with history, and `forecast` before it answers, so neither starts blind.
    pub fn warm_up(
        &mut self,
        history: &[Option<f64>],
        first_minute: i64,
        horizon: usize,
        step: usize,
        origins: usize,
    ) {
        let n = history.len();
        for k in (1..=origins).rev() {
            let Some(origin) = n.checked_sub(horizon + (k - 1) * step) else {
                continue;
            };
            if origin < DAY {
                continue;
            }
            let m = members(&history[..origin], horizon, self.level);
            if self.combine(m, first_minute + origin as i64).is_ok() {
                self.observe(history, first_minute);
            }
        }
    }
}

/// One forecast from a history alone, as `forecast` gives it: the ensemble warmed up on the
/// history first ([`super::predictor::WARM_UP`]), so its weights and interval are the ones
/// the daemon would have learnt; returns the forecast and the weights it used.
pub fn forecast_once(
    history: &[Option<f64>],
    horizon: usize,
    level: f64,
) -> Result<(Forecast, Vec<Weight>), ForecastError> {
    let history = &history[history.len().saturating_sub(super::HISTORY_MINUTES)..];
    let w = super::predictor::WARM_UP;
    let mut a = Adaptive::new(level);
    a.warm_up(history, 0, w.horizon, w.step, w.origins);
    let f = a.combine(members(history, horizon, level), history.len() as i64)?;
    Ok((f, a.last_weights()))
}

/// The candidates' own central interval at minute `h`: the `(1 − level) ÷ 2` and
/// `(1 + level) ÷ 2` quantiles of their points, each a mass at its weight (their linear pool).
/// The interval is at least as wide. Its conformal band is the weighted mean's past errors,
/// nearly all of them on ordinary minutes; where the candidates part — a rise the seasonal
/// ones have seen at this minute every day and the level ones have not — the mean falls
/// between them, and only the candidates' spread reaches the rise. On a step that recurred
/// daily for two weeks the mean, six minutes ahead, was 71 % of the way up (the candidates
/// without it kept 29 % of the weight) and the band did not span the rest
/// (docs/forecast.md). ACI sees the wider interval's coverage and narrows the band in turn.
fn pool_bounds(members: &Members, w: &[[f64; B]; N], h: usize, level: f64) -> (f64, f64) {
    let b = bucket(h);
    let mut pool: Vec<(f64, f64)> = members
        .points
        .iter()
        .enumerate()
        .filter_map(|(m, p)| p.as_ref().map(|p| (p[h], w[m][b])))
        .filter(|(v, wt)| v.is_finite() && *wt > 0.0)
        .collect();
    pool.sort_by(|x, y| x.0.total_cmp(&y.0));
    let total: f64 = pool.iter().map(|c| c.1).sum();
    // The lowest point at which the weight at or below it reaches `q`.
    let at = |q: f64| {
        let mut below = 0.0;
        pool.iter()
            .find(|(_, wt)| {
                below += wt / total;
                below >= q - 1e-9
            })
            .or(pool.last())
            .map(|c| c.0)
    };
    (
        at((1.0 - level) / 2.0).unwrap_or(f64::INFINITY),
        at((1.0 + level) / 2.0).unwrap_or(0.0),
    )
}

/// The scale a residual at `point` is divided by: the point, floored at a tenth of the
/// day's mean (so a forecast near zero does not blow its residual up).
fn scale_at(point: f64, day_mean: f64) -> f64 {
    point.max(0.1 * day_mean).max(1e-9)
}

/// The `q` quantile of `sorted` (nearest rank).
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((q * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1);
    sorted[idx]
}

#[cfg(test)]
mod tests {
    #[test]
    fn mstl_is_fitted_once_an_hour_and_read_forward_between() {
        let day: Vec<Option<f64>> = (0..3 * DAY)
            .map(|m| Some(100.0 + 40.0 * (std::f64::consts::TAU * m as f64 / DAY as f64).sin()))
            .collect();
        let mut cache = MstlCache::default();
        let end = 3 * DAY as i64;
        let first = members_cached(&day[..], end, 60, 0.9, &mut cache);
        assert_eq!(cache.fits, 1);
        // 15 minutes later: the same fit, read from its 16th minute.
        let later: Vec<Option<f64>> = day[15..]
            .iter()
            .copied()
            .chain((0..15).map(|m| day[m]))
            .collect();
        let reused = members_cached(&later, end + 15, 60, 0.9, &mut cache);
        assert_eq!(cache.fits, 1, "reused");
        let (a, b) = (
            first.points[0].as_ref().unwrap(),
            reused.points[0].as_ref().unwrap(),
        );
        assert_eq!(&a[15..], &b[..45]);
        // The other candidates are refit on the newer history.
        assert_ne!(first.points[1], reused.points[1]);
        // An hour on, MSTL is fitted afresh.
        members_cached(&later, end + 60, 60, 0.9, &mut cache);
        assert_eq!(cache.fits, 2);
    }

    use super::*;

    fn members_of(points: [Option<Vec<f64>>; N]) -> Members {
        let horizon = points.iter().flatten().next().map_or(0, |p| p.len());
        Members {
            points,
            mstl_band: None,
            mstl_weekly: false,
            scale: 100.0,
            horizon,
        }
    }

    /// The candidates' pool: each point a mass at its weight; the bounds are the lowest points
    /// at which the weight at or below reaches `(1 ∓ level) ÷ 2`.
    #[test]
    fn the_pool_bounds_are_the_candidates_weighted_quantiles() {
        // (what, points per candidate (None: unavailable), weights, level, (low, high))
        type Case = (&'static str, [Option<f64>; N], [f64; N], f64, (f64, f64));
        let cases: [Case; 5] = [
            (
                "all agree",
                [Some(100.0); N],
                [1.0 / N as f64; N],
                0.8,
                (100.0, 100.0),
            ),
            (
                "a rise carried by 71 % of the weight is the upper bound",
                [
                    Some(3800.0),
                    Some(3700.0),
                    Some(3838.0),
                    Some(3838.0),
                    Some(380.0),
                    Some(400.0),
                ],
                [0.2, 0.2, 0.16, 0.15, 0.15, 0.14],
                0.8,
                (380.0, 3838.0),
            ),
            (
                "a candidate under a tail's weight sets neither bound",
                [
                    Some(100.0),
                    Some(110.0),
                    Some(90.0),
                    Some(105.0),
                    Some(5000.0),
                    Some(0.0),
                ],
                [0.3, 0.3, 0.17, 0.15, 0.04, 0.04],
                0.9,
                (90.0, 110.0),
            ),
            (
                "unavailable and weightless candidates are left out",
                [
                    None,
                    Some(200.0),
                    Some(300.0),
                    None,
                    Some(9000.0),
                    Some(250.0),
                ],
                [0.0, 0.5, 0.25, 0.0, 0.0, 0.25],
                0.8,
                (200.0, 300.0),
            ),
            (
                "one candidate is its own bounds",
                [None, None, Some(42.0), None, None, None],
                [0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
                0.9,
                (42.0, 42.0),
            ),
        ];
        for (what, points, weights, level, want) in cases {
            let members = members_of(points.map(|p| p.map(|v| vec![v])));
            let w: [[f64; B]; N] = weights.map(|x| [x; B]);
            assert_eq!(pool_bounds(&members, &w, 0, level), want, "{what}");
        }
    }

    #[test]
    fn weights_move_to_the_candidate_that_was_right() {
        let mut a = Adaptive::new(0.9);
        let history: Vec<Option<f64>> = vec![Some(100.0); 200];
        for origin in [0i64, 60, 120] {
            let mut p: [Option<Vec<f64>>; N] = Default::default();
            p[1] = Some(vec![100.0; 60]); // right
            p[2] = Some(vec![150.0; 60]); // 50 % off
            a.combine(members_of(p), origin).unwrap();
            a.observe(&history, 0);
        }
        let w = a.weights([false, true, true, false, false, false], false);
        for b in 0..B {
            assert!(w[1][b] > 0.99, "bucket {b}: {w:?}");
            assert!((w[1][b] + w[2][b] - 1.0).abs() < 1e-9);
        }
        assert_eq!(w[0], [0.0; B], "unavailable candidates weigh nothing");
    }

    /// A candidate not scored yet weighs as the worst one scored; MSTL's weekly fit (two
    /// weeks of history) is not scored on its daily fit's record, and is scored afresh.
    #[test]
    fn a_newcomer_weighs_as_the_worst_scored_candidate_until_scored_itself() {
        let history: Vec<Option<f64>> = vec![Some(100.0); 400];
        // Three forecasts with MSTL's daily fit, off by 10, 10 and 50 (each scaled by the
        // combined forecast's point); the week-ago forecast not available yet.
        let scored = || {
            let mut a = Adaptive::new(0.9);
            for origin in [0i64, 60, 120] {
                let mut p: [Option<Vec<f64>>; N] = Default::default();
                p[MSTL] = Some(vec![90.0; 60]);
                p[1] = Some(vec![110.0; 60]);
                p[2] = Some(vec![150.0; 60]);
                a.combine(members_of(p), origin).unwrap();
                a.observe(&history, 0);
            }
            a
        };
        let daily = scored();
        let all = [true, true, true, true, false, false];
        // (what, the ensemble, MSTL weekly now, MSTL's weight against the worst one's — its
        // error a fifth of the worst's, to WEIGHT_POWER — and the week-ago forecast's, never
        // scored)
        let cases = [
            (
                "the same fit: its own record",
                &daily,
                false,
                5f64.powi(WEIGHT_POWER),
                1.0,
            ),
            ("its weekly fit is a newcomer", &daily, true, 1.0, 1.0),
        ];
        for (what, a, weekly, mstl, newcomer) in cases {
            let w = a.weights(all, weekly);
            for b in 0..B {
                let ratio = |m: usize| w[m][b] / w[2][b];
                assert!(
                    (ratio(MSTL) - mstl).abs() < 1e-6,
                    "{what}, bucket {b}: {w:?}"
                );
                assert!(
                    (ratio(3) - newcomer).abs() < 1e-6,
                    "{what}, bucket {b}: {w:?}"
                );
            }
        }
        // Scored as weekly from then on: its own record again, the daily one's gone.
        let mut a = scored();
        let mut p: [Option<Vec<f64>>; N] = Default::default();
        p[MSTL] = Some(vec![125.0; 60]); // off by 25, the worst one's 50
        p[2] = Some(vec![150.0; 60]);
        let m = Members {
            mstl_weekly: true,
            ..members_of(p)
        };
        a.combine(m, 180).unwrap();
        a.observe(&history, 0);
        let w = a.weights(all, true);
        // Its error about half the worst one's (25 against 50, each scaled by its point).
        let error_ratio = (w[MSTL][3] / w[2][3]).powf(1.0 / f64::from(WEIGHT_POWER));
        assert!(
            error_ratio > 1.4 && error_ratio < 3.2,
            "{error_ratio}: {w:?}"
        );
    }

    #[test]
    fn coverage_recovers_when_the_noise_doubles() {
        // A candidate that forecasts the mean exactly; the actuals scatter around it with sd
        // 50 for 100 forecasts, then 100: the interval must follow, not stay at the old width.
        let mut a = Adaptive::new(0.9);
        let mut seed = 42u64;
        let mut gauss = move || {
            let mut u = || {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 11) as f64 / (1u64 << 53) as f64).max(1e-12)
            };
            let (x, y) = (u(), u());
            (-2.0 * x.ln()).sqrt() * (std::f64::consts::TAU * y).cos()
        };
        let mut late = (0u64, 0u64);
        for k in 0..400i64 {
            let sd = if k < 100 { 50.0 } else { 100.0 };
            let origin = k * 60;
            let history: Vec<Option<f64>> = (0..origin + 60)
                .map(|i| (i >= origin).then(|| 1000.0 + sd * gauss()))
                .collect();
            let mut p: [Option<Vec<f64>>; N] = Default::default();
            p[1] = Some(vec![1000.0; 60]);
            a.combine(members_of(p), origin).unwrap();
            let before = (a.scored, a.covered);
            a.observe(&history, 0);
            if k >= 300 {
                late.0 += a.scored - before.0;
                late.1 += a.covered - before.1;
            }
        }
        let coverage = late.1 as f64 / late.0 as f64;
        assert!(
            (0.85..=0.95).contains(&coverage),
            "coverage over the last 100 forecasts: {coverage:.3}"
        );
    }

    #[test]
    fn aci_widens_after_misses_and_narrows_after_hits() {
        let mut a = Adaptive::new(0.9);
        let start = a.alpha[3];
        let history: Vec<Option<f64>> = vec![Some(1000.0); 100];
        let mut p: [Option<Vec<f64>>; N] = Default::default();
        p[1] = Some(vec![100.0; 60]);
        a.combine(members_of(p), 0).unwrap();
        let s = a.observe(&history, 0);
        assert_eq!(s.len(), 60);
        assert!(s.iter().all(|x| !x.3), "every minute outside");
        assert!(a.alpha[3] < start, "misses lower the miscoverage level");
    }
}
