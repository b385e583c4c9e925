//! Rolling-origin evaluation of next-hour forecasts.

use serde::Serialize;

use super::{BriefRule, Combined, Forecaster, Mstl, SeasonalNaive, DAY};

/// How to backtest.
#[derive(Clone, Copy, Debug)]
pub struct Backtest {
    /// Minutes ahead forecast at each origin.
    pub horizon: usize,
    /// Minutes between origins.
    pub step: usize,
    /// History required before the first origin, minutes.
    pub min_history: usize,
    /// Earlier origins whose errors calibrate the interval (conformal), at least.
    pub calibration_origins: usize,
    /// Central coverage of the interval, e.g. 0.9.
    pub level: f64,
}

impl Default for Backtest {
    fn default() -> Self {
        Backtest {
            horizon: 60,
            step: 360,
            min_history: 3 * DAY,
            calibration_origins: 8,
            level: 0.9,
        }
    }
}

/// The backtest's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BacktestReport {
    /// Forecast origins evaluated.
    pub origins: usize,
    /// Forecast points scored (actuals present).
    pub points: usize,
    /// MAE of our next-hour forecasts.
    pub mae: f64,
    /// MAE of the seasonal-naive forecasts (same minute one day earlier) on the same points.
    pub mae_seasonal_naive: f64,
    /// MAE of the brief's rule on the same points.
    pub mae_brief_rule: f64,
    /// mae ÷ mae_seasonal_naive: below 1 is better than the naive forecast.
    pub mase_vs_seasonal_naive: f64,
    /// The brief's rule's MAE ÷ the seasonal-naive MAE.
    pub brief_rule_vs_seasonal_naive: f64,
    /// Share of actuals inside our 90 % interval: MSTL's band around our point, widened to the
    /// conformal band once `calibration_origins` origins have passed.
    pub coverage_90: f64,
    /// Share inside the conformal band alone (each horizon's 5 %–95 % error quantiles at
    /// earlier origins), scored after calibration.
    pub coverage_90_conformal: f64,
    /// Mean width of our interval, in the series' unit.
    pub mean_interval_width: f64,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((q * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1);
    sorted[idx]
}

/// Runs the backtest over `series` (per minute, `None` = gap).
pub fn backtest(
    series: &[Option<f64>],
    cfg: Backtest,
    progress: &mut dyn FnMut(f64),
) -> BacktestReport {
    let ours = Combined {
        mstl: Mstl {
            level: cfg.level,
            ..Mstl::default()
        },
    };
    let mut errors_by_h: Vec<Vec<f64>> = vec![Vec::new(); cfg.horizon];
    let (mut abs_ours, mut abs_naive, mut abs_brief) = (0.0, 0.0, 0.0);
    let (mut points, mut origins) = (0usize, 0usize);
    let (mut covered, mut covered_conformal, mut scored_conformal, mut width) =
        (0usize, 0usize, 0usize, 0.0);
    let last = series.len().saturating_sub(cfg.horizon);
    let total = (last.saturating_sub(cfg.min_history) / cfg.step.max(1)).max(1);
    let mut origin = cfg.min_history.max(DAY);
    while origin <= last {
        progress(origins as f64 / total as f64);
        let history = &series[..origin];
        let (Ok(f), Ok(naive), Ok(brief)) = (
            ours.forecast(history, cfg.horizon),
            SeasonalNaive.forecast(history, cfg.horizon),
            BriefRule.forecast(history, cfg.horizon),
        ) else {
            origin += cfg.step;
            continue;
        };
        origins += 1;
        let calibrated = errors_by_h[0].len() >= cfg.calibration_origins;
        let mut new_errors = Vec::with_capacity(cfg.horizon);
        for h in 0..cfg.horizon {
            let Some(actual) = series[origin + h] else {
                continue;
            };
            let point = f.point[h];
            let e = actual - point;
            points += 1;
            abs_ours += e.abs();
            abs_naive += (actual - naive.point[h]).abs();
            abs_brief += (actual - brief.point[h]).abs();
            // Our interval: the forecaster's, widened to the conformal band (each horizon's
            // error quantiles at earlier origins) once enough origins have passed.
            let (mut lo, mut hi) = (f.lower[h], f.upper[h]);
            if calibrated {
                let mut errs = errors_by_h[h].clone();
                errs.sort_by(f64::total_cmp);
                let (clo, chi) = (
                    point + quantile(&errs, (1.0 - cfg.level) / 2.0),
                    point + quantile(&errs, 1.0 - (1.0 - cfg.level) / 2.0),
                );
                covered_conformal += usize::from(actual >= clo && actual <= chi);
                scored_conformal += 1;
                lo = lo.min(clo);
                hi = hi.max(chi);
            }
            covered += usize::from(actual >= lo && actual <= hi);
            width += hi - lo;
            new_errors.push((h, e));
        }
        for (h, e) in new_errors {
            errors_by_h[h].push(e);
        }
        origin += cfg.step;
    }
    progress(1.0);
    let n = points.max(1) as f64;
    BacktestReport {
        origins,
        points,
        mae: abs_ours / n,
        mae_seasonal_naive: abs_naive / n,
        mae_brief_rule: abs_brief / n,
        mase_vs_seasonal_naive: if abs_naive > 0.0 {
            abs_ours / abs_naive
        } else {
            f64::NAN
        },
        brief_rule_vs_seasonal_naive: if abs_naive > 0.0 {
            abs_brief / abs_naive
        } else {
            f64::NAN
        },
        coverage_90: covered as f64 / n,
        coverage_90_conformal: covered_conformal as f64 / scored_conformal.max(1) as f64,
        mean_interval_width: width / n,
    }
}
