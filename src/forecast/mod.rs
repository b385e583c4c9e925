//! Forecasting the next hour of a per-minute demand series (gaps are `None`, never zeros), and
//! a rolling-origin backtest that scores it against a seasonal-naive forecast.
//!
//! Ours is [`ensemble`]: six candidates weighted per series and per horizon by their recent
//! errors, with adaptive conformal intervals. The candidates:
//! - [`Mstl`]: Grafana's augurs MSTL (daily, and weekly once two weeks of history exist) with
//!   an AutoETS trend — the trend-aware one; gaps are filled from the day before for fitting
//!   only; fitted on 5-minute means;
//! - [`members::Profile`]: the median of the same minute over the last week (an event day does
//!   not move it), scaled to the last hour's level (a level shift moves it within the hour);
//! - [`SeasonalNaive`] (the yardstick) and [`members::WeeklyNaive`]: a day and a week earlier;
//! - [`BriefRule`]: the brief's 0.7 × same-time-of-week average + 0.3 × recent trend;
//! - [`members::RecentLevel`]: the last minutes' mean, flat.
//!
//! Measured (`backtest`, docs/forecast.md): on every shared trace and three constructed ones.

pub mod backtest;
pub mod ensemble;
pub mod members;
pub mod predictor;

pub use backtest::{backtest, Backtest, BacktestReport};

use augurs::ets::AutoETS;
use augurs::mstl::MSTLModel;
use augurs::prelude::*;

/// Minutes in a day and a week.
pub const DAY: usize = 1440;
/// Minutes in a week.
pub const WEEK: usize = 7 * DAY;

/// Minutes of history a fleet's forecaster holds at most (and the backtest gives it): two
/// weeks for MSTL's weekly season, and the day a horizon and the daily profile reach back.
pub const HISTORY_MINUTES: usize = 2 * WEEK + DAY;

/// A forecast of the next `horizon` minutes.
#[derive(Clone, Debug, PartialEq)]
pub struct Forecast {
    /// Point forecasts.
    pub point: Vec<f64>,
    /// Lower bounds of the interval (equal to `point` when the model gives none).
    pub lower: Vec<f64>,
    /// Upper bounds.
    pub upper: Vec<f64>,
}

/// Why a forecast could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    /// Not enough history for this model.
    #[error("{model} needs at least {needed} minute(s) of history, got {got}")]
    ShortHistory {
        /// The model.
        model: &'static str,
        /// Minutes needed.
        needed: usize,
        /// Minutes given.
        got: usize,
    },
    /// The model failed to fit.
    #[error("{model}: {message}")]
    Fit {
        /// The model.
        model: &'static str,
        /// augurs' message.
        message: String,
    },
}

/// A next-hour forecaster.
pub trait Forecaster {
    /// The model's name.
    fn name(&self) -> &'static str;
    /// Forecasts `horizon` minutes after `history` (per minute, `None` = gap).
    fn forecast(&self, history: &[Option<f64>], horizon: usize) -> Result<Forecast, ForecastError>;
}

impl Forecast {
    /// A forecast without an interval (the bounds equal the point).
    fn point_only(point: Vec<f64>) -> Self {
        Forecast {
            lower: point.clone(),
            upper: point.clone(),
            point,
        }
    }

    /// Minutes `from .. from + len` of this forecast (all three series); the caller checks
    /// that they exist.
    pub(crate) fn window(&self, from: usize, len: usize) -> Self {
        let cut = |v: &[f64]| v[from..from + len].to_vec();
        Forecast {
            point: cut(&self.point),
            lower: cut(&self.lower),
            upper: cut(&self.upper),
        }
    }
}

/// The history's length, or `ShortHistory` when it has fewer than `needed` minutes.
fn require(
    model: &'static str,
    history: &[Option<f64>],
    needed: usize,
) -> Result<usize, ForecastError> {
    let got = history.len();
    if got < needed {
        return Err(ForecastError::ShortHistory { model, needed, got });
    }
    Ok(got)
}

/// The last known value at or before `i`, searching back a day at most.
fn known_before(history: &[Option<f64>], i: usize) -> Option<f64> {
    (i.saturating_sub(DAY)..=i.min(history.len().saturating_sub(1)))
        .rev()
        .find_map(|j| history[j])
}

/// The value at the same minute one day earlier.
#[derive(Clone, Copy, Debug, Default)]
pub struct SeasonalNaive;

impl Forecaster for SeasonalNaive {
    fn name(&self) -> &'static str {
        "seasonal-naive"
    }

    fn forecast(&self, history: &[Option<f64>], horizon: usize) -> Result<Forecast, ForecastError> {
        naive(self.name(), history, DAY, horizon)
    }
}

/// The value at the same minute one `period` earlier (a gap: the last known value before it);
/// beyond a period ahead, the same minute of the last period again, never past the history.
fn naive(
    model: &'static str,
    history: &[Option<f64>],
    period: usize,
    horizon: usize,
) -> Result<Forecast, ForecastError> {
    let n = require(model, history, period)?;
    let point: Vec<f64> = (0..horizon)
        .map(|h| {
            let i = n - period + h % period;
            history[i]
                .or_else(|| known_before(history, i))
                .unwrap_or(0.0)
        })
        .collect();
    Ok(Forecast::point_only(point))
}

/// The brief's rule: 0.7 × the average at the same time of week (of day, with less than a
/// week of history) + 0.3 × the last hour's linear trend extrapolated.
#[derive(Clone, Copy, Debug, Default)]
pub struct BriefRule;

impl Forecaster for BriefRule {
    fn name(&self) -> &'static str {
        "brief-rule"
    }

    fn forecast(&self, history: &[Option<f64>], horizon: usize) -> Result<Forecast, ForecastError> {
        let n = require(self.name(), history, DAY)?;
        let period = if n >= 2 * WEEK { WEEK } else { DAY };
        // Linear trend over the last hour (least squares on known points).
        let recent: Vec<(f64, f64)> = (n.saturating_sub(60)..n)
            .filter_map(|i| history[i].map(|v| (i as f64, v)))
            .collect();
        let trend = |t: f64| -> Option<f64> {
            if recent.len() < 2 {
                return recent.first().map(|p| p.1);
            }
            let m = recent.len() as f64;
            let (sx, sy) = recent
                .iter()
                .fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
            let (mx, my) = (sx / m, sy / m);
            let sxx: f64 = recent.iter().map(|p| (p.0 - mx).powi(2)).sum();
            let sxy: f64 = recent.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
            let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
            Some(my + slope * (t - mx))
        };
        let point = (0..horizon)
            .map(|h| {
                let t = n + h;
                let same: Vec<f64> = (1..=t / period)
                    .filter_map(|k| history.get(t - k * period).copied().flatten())
                    .collect();
                let seasonal = if same.is_empty() {
                    None
                } else {
                    Some(same.iter().sum::<f64>() / same.len() as f64)
                };
                match (seasonal, trend(t as f64)) {
                    (Some(s), Some(r)) => 0.7 * s + 0.3 * r.max(0.0),
                    (Some(s), None) => s,
                    (None, Some(r)) => r.max(0.0),
                    (None, None) => 0.0,
                }
            })
            .collect::<Vec<f64>>();
        Ok(Forecast::point_only(point))
    }
}

/// augurs MSTL with an AutoETS trend, on at most `max_history` minutes.
#[derive(Clone, Copy, Debug)]
pub struct Mstl {
    /// Most recent minutes used for fitting (bounds the CPU of a refit).
    pub max_history: usize,
    /// Interval level, e.g. 0.9.
    pub level: f64,
    /// Minutes per block the model is fitted on (1 = per minute).
    pub block_mins: usize,
}

impl Default for Mstl {
    fn default() -> Self {
        Mstl {
            max_history: 2 * WEEK,
            level: 0.9,
            block_mins: 5,
        }
    }
}

impl Mstl {
    /// Whether a fit on `history_minutes` of history has a weekly season besides the daily
    /// one (two weeks of the history it fits): a different model from the daily-only fit of a
    /// shorter history, which the ensemble scores apart.
    pub fn fits_weekly(&self, history_minutes: usize) -> bool {
        history_minutes.min(self.max_history) >= 2 * WEEK
    }
}

impl Forecaster for Mstl {
    fn name(&self) -> &'static str {
        "mstl"
    }

    fn forecast(&self, history: &[Option<f64>], horizon: usize) -> Result<Forecast, ForecastError> {
        let n = require(self.name(), history, 2 * DAY)?;
        let start = n.saturating_sub(self.max_history);
        // Gaps are filled for fitting only: the same minute a day before, else the last value.
        let mut filled: Vec<Option<f64>> = Vec::with_capacity(n - start);
        for i in start..n {
            let k = i - start;
            let v = history[i]
                .or_else(|| if k >= DAY { filled[k - DAY] } else { None })
                .or_else(|| known_before(history, i));
            filled.push(v);
        }
        // A history that starts with a gap has nothing before it: the same minute a day later,
        // else the first known value — never a zero, which would drag that seasonal phase down.
        let first_known = filled.iter().flatten().next().copied();
        let y: Vec<f64> = (0..filled.len())
            .map(|k| {
                filled[k]
                    .or_else(|| filled.get(k + DAY).copied().flatten())
                    .or(first_known)
                    .unwrap_or(0.0)
            })
            .collect();
        // Fitted on block means (the last block ending at the last minute): a 5-minute block
        // fits 5× fewer points — what makes a backtest over months affordable — and a
        // minute's own noise is not something an hour-ahead model can forecast anyway.
        let block = self.block_mins.max(1);
        let blocks: Vec<f64> = y
            .rchunks_exact(block)
            .rev()
            .map(|c| c.iter().sum::<f64>() / block as f64)
            .collect();
        let blocks = winsorize(blocks, DAY / block);
        let periods = if self.fits_weekly(n) {
            vec![DAY / block, WEEK / block]
        } else {
            vec![DAY / block]
        };
        let model = MSTLModel::new(periods, AutoETS::non_seasonal().into_trend_model());
        let fit = model.fit(&blocks).map_err(|e| ForecastError::Fit {
            model: self.name(),
            message: e.to_string(),
        })?;
        let f = fit
            .predict(horizon.div_ceil(block), self.level)
            .map_err(|e| ForecastError::Fit {
                model: self.name(),
                message: e.to_string(),
            })?;
        let (lower, upper) = match f.intervals {
            Some(i) => (i.lower, i.upper),
            None => (f.point.clone(), f.point.clone()),
        };
        let per_minute = |v: &[f64]| -> Vec<f64> { (0..horizon).map(|h| v[h / block]).collect() };
        Ok(Forecast {
            point: per_minute(&f.point)
                .into_iter()
                .map(|v| v.max(0.0))
                .collect(),
            lower: per_minute(&lower),
            upper: per_minute(&upper),
        })
    }
}

/// Residuals beyond this many robust standard deviations are clipped before fitting.
pub const WINSOR_SIGMAS: f64 = 4.0;

/// The series with outliers pulled in, so an event day (a release, a match, an outage) does
/// not become part of the seasonal profile that every later day repeats: each point's
/// residual from the median of the same phase over the three days (`period` points) either
/// side is clipped to [`WINSOR_SIGMAS`] × the residuals' robust standard deviation (1.4826 ×
/// their median absolute value). A centred median follows a level shift or a trend — half its
/// days are on the new level — so only what stands out from its own neighbourhood is clipped.
pub fn winsorize(mut y: Vec<f64>, period: usize) -> Vec<f64> {
    if period == 0 || y.len() < 2 * period {
        return y;
    }
    let n = y.len();
    let centre: Vec<f64> = (0..n)
        .map(|i| {
            let mut v: Vec<f64> = (-3i64..=3)
                .filter_map(|k| usize::try_from(i as i64 + k * period as i64).ok())
                .filter(|&j| j < n)
                .map(|j| y[j])
                .collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        })
        .collect();
    let mut abs: Vec<f64> = (0..n).map(|i| (y[i] - centre[i]).abs()).collect();
    abs.sort_by(f64::total_cmp);
    let sigma = 1.4826 * abs[n / 2];
    if sigma <= 0.0 {
        return y;
    }
    let limit = WINSOR_SIGMAS * sigma;
    // The last three days are left as they are: their window is not centred (it holds only
    // the past), so it would clip a level shift or growth that is the series' present.
    let settled = n.saturating_sub(3 * period);
    for (v, c) in y.iter_mut().zip(&centre).take(settled) {
        *v = v.clamp(c - limit, c + limit);
    }
    y
}
