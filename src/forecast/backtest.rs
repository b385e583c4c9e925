//! Rolling-origin evaluation of next-hour forecasts: at each origin every forecaster sees only
//! the past — at most the [`HISTORY_MINUTES`] the daemon holds — and is scored on what
//! followed. Ours is the ensemble as the daemon runs it: its weights and interval learnt only
//! from the origins before.

use serde::Serialize;

use super::ensemble::{members, Adaptive, Members, Weight, MEMBERS};
use super::{Forecast, DAY, HISTORY_MINUTES};

/// How to backtest.
#[derive(Clone, Copy, Debug)]
pub struct Backtest {
    /// Minutes ahead forecast at each origin.
    pub horizon: usize,
    /// Minutes between origins.
    pub step: usize,
    /// History required before the first origin, minutes.
    pub min_history: usize,
    /// Central coverage of the interval, e.g. 0.9.
    pub level: f64,
    /// Threads computing the candidates' forecasts (the combination stays sequential, so the
    /// figures do not depend on it).
    pub jobs: usize,
    /// Days per coverage window.
    pub window_days: usize,
}

impl Default for Backtest {
    fn default() -> Self {
        Backtest {
            horizon: 60,
            step: 360,
            min_history: 3 * DAY,
            level: 0.9,
            jobs: 1,
            window_days: 7,
        }
    }
}

/// One candidate's accuracy on the backtest's points.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MemberScore {
    /// The candidate.
    pub model: &'static str,
    /// Its MAE ÷ the seasonal-naive MAE, on the points both forecast.
    pub mase_vs_seasonal_naive: f64,
}

/// Coverage over one window of origins.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CoverageWindow {
    /// First day of the window (days since the series' start).
    pub from_day: usize,
    /// Points scored in it.
    pub points: usize,
    /// Share inside the interval.
    pub coverage: f64,
}

/// Points a window needs for its coverage to count in the range: fewer are too coarse a share
/// (a share of 16 moves in steps of 6 %).
pub const MIN_WINDOW_POINTS: usize = 100;

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
    /// Share of actuals inside our interval (`level`, 0.9 by default).
    pub coverage_90: f64,
    /// Coverage per window of `window_days` (by origin), to see it hold as the series changes.
    pub coverage_windows: Vec<CoverageWindow>,
    /// The lowest and highest window coverage (windows with at least [`MIN_WINDOW_POINTS`]
    /// points); NaN (`null` in JSON) when no window has that many.
    pub coverage_window_range: (f64, f64),
    /// Mean width of our interval, in the series' unit.
    pub mean_interval_width: f64,
    /// Each candidate alone.
    pub members: Vec<MemberScore>,
    /// The ensemble's weights at the end, per candidate and horizon bucket.
    pub weights: Vec<Weight>,
}

/// A forecast made at an origin, with what it is compared against.
struct Made {
    origin: usize,
    forecast: Forecast,
    candidates: [Option<Vec<f64>>; MEMBERS.len()],
    naive: Vec<f64>,
    brief: Vec<f64>,
}

/// The running sums of a backtest.
struct Tally {
    window_days: usize,
    origins: usize,
    points: usize,
    abs_ours: f64,
    abs_naive: f64,
    abs_brief: f64,
    /// Per candidate: (its abs error, the naive's abs error) on the points it forecast.
    member_abs: Vec<(f64, f64)>,
    covered: usize,
    width: f64,
    windows: Vec<CoverageWindow>,
}

impl Tally {
    fn new(window_days: usize) -> Self {
        Tally {
            window_days: window_days.max(1),
            origins: 0,
            points: 0,
            abs_ours: 0.0,
            abs_naive: 0.0,
            abs_brief: 0.0,
            member_abs: vec![(0.0, 0.0); MEMBERS.len()],
            covered: 0,
            width: 0.0,
            windows: Vec::new(),
        }
    }

    /// Scores one forecast on its whole horizon. The figures may look ahead (they are the
    /// evaluation); what the ensemble learns from is fed separately, only up to each origin.
    fn account(&mut self, made: &Made, series: &[Option<f64>]) {
        let f = &made.forecast;
        let scored: Vec<(usize, f64)> = (0..f.point.len())
            .filter_map(|h| Some((h, series.get(made.origin + h).copied().flatten()?)))
            .collect();
        if scored.is_empty() {
            return;
        }
        self.origins += 1;
        let from_day = made.origin / DAY / self.window_days * self.window_days;
        if self.windows.last().is_none_or(|w| w.from_day != from_day) {
            self.windows.push(CoverageWindow {
                from_day,
                points: 0,
                coverage: 0.0,
            });
        }
        for (h, actual) in scored {
            let inside = actual >= f.lower[h] && actual <= f.upper[h];
            self.points += 1;
            self.abs_ours += (actual - f.point[h]).abs();
            let e_naive = (actual - made.naive[h]).abs();
            self.abs_naive += e_naive;
            self.abs_brief += (actual - made.brief[h]).abs();
            for (k, c) in made.candidates.iter().enumerate() {
                if let Some(c) = c {
                    self.member_abs[k].0 += (actual - c[h]).abs();
                    self.member_abs[k].1 += e_naive;
                }
            }
            self.covered += usize::from(inside);
            self.width += f.upper[h] - f.lower[h];
            let w = self.windows.last_mut().expect("pushed above");
            w.points += 1;
            w.coverage += f64::from(u8::from(inside));
        }
    }
}

/// The candidates' forecasts at `origins`, computed on `jobs` threads.
fn members_at(series: &[Option<f64>], origins: &[usize], cfg: &Backtest) -> Vec<(usize, Members)> {
    let at = |o: usize| {
        let history = &series[o.saturating_sub(HISTORY_MINUTES)..o];
        (o, members(history, cfg.horizon, cfg.level))
    };
    if cfg.jobs <= 1 || origins.len() <= 1 {
        return origins.iter().map(|&o| at(o)).collect();
    }
    let per = origins.len().div_ceil(cfg.jobs);
    std::thread::scope(|s| {
        let handles: Vec<_> = origins
            .chunks(per)
            .map(|chunk| s.spawn(move || chunk.iter().map(|&o| at(o)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a backtest thread panicked"))
            .collect()
    })
}

/// Runs the backtest over `series` (per minute, `None` = gap).
pub fn backtest(
    series: &[Option<f64>],
    cfg: Backtest,
    progress: &mut dyn FnMut(f64),
) -> BacktestReport {
    let last = series.len().saturating_sub(cfg.horizon);
    let origins: Vec<usize> = (cfg.min_history.max(DAY)..=last)
        .step_by(cfg.step.max(1))
        .collect();
    let naive = MEMBERS.iter().position(|m| *m == "seasonal-naive").unwrap();
    let brief = MEMBERS.iter().position(|m| *m == "brief-rule").unwrap();
    let mut ensemble = Adaptive::new(cfg.level);
    let mut t = Tally::new(cfg.window_days);
    let mut warmed_up = false;
    let batch = cfg.jobs.max(1) * 4;
    for (done, chunk) in origins.chunks(batch).enumerate() {
        progress((done * batch) as f64 / origins.len().max(1) as f64);
        for (origin, m) in members_at(series, chunk, &cfg) {
            if !warmed_up {
                // As the daemon does at its first fit: learn on the history before the start.
                let w = super::predictor::WARM_UP;
                let from = origin.saturating_sub(HISTORY_MINUTES);
                ensemble.warm_up(
                    &series[from..origin],
                    from as i64,
                    w.horizon,
                    w.step,
                    w.origins,
                );
                warmed_up = true;
            }
            // The ensemble learns from what has arrived by this origin, as the daemon does at
            // each refit.
            ensemble.observe(&series[..origin], 0);
            // Scored against the naive and the brief rule only where both forecast.
            let (Some(naive), Some(brief)) = (m.points[naive].clone(), m.points[brief].clone())
            else {
                continue;
            };
            let candidates = m.points.clone();
            if let Ok(forecast) = ensemble.combine(m, origin as i64) {
                let made = Made {
                    origin,
                    forecast,
                    candidates,
                    naive,
                    brief,
                };
                t.account(&made, series);
            }
        }
    }
    progress(1.0);
    for w in &mut t.windows {
        w.coverage /= w.points.max(1) as f64;
    }
    let full: Vec<f64> = t
        .windows
        .iter()
        .filter(|w| w.points >= MIN_WINDOW_POINTS)
        .map(|w| w.coverage)
        .collect();
    let range = full
        .iter()
        .fold((f64::NAN, f64::NAN), |(lo, hi), &c| (lo.min(c), hi.max(c)));
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    let n = t.points.max(1) as f64;
    BacktestReport {
        origins: t.origins,
        points: t.points,
        mae: t.abs_ours / n,
        mae_seasonal_naive: t.abs_naive / n,
        mae_brief_rule: t.abs_brief / n,
        mase_vs_seasonal_naive: ratio(t.abs_ours, t.abs_naive),
        brief_rule_vs_seasonal_naive: ratio(t.abs_brief, t.abs_naive),
        coverage_90: t.covered as f64 / n,
        coverage_windows: t.windows,
        coverage_window_range: range,
        mean_interval_width: t.width / n,
        members: MEMBERS
            .iter()
            .zip(&t.member_abs)
            .map(|(model, (a, b))| MemberScore {
                model,
                mase_vs_seasonal_naive: ratio(*a, *b),
            })
            .collect(),
        weights: ensemble.last_weights(),
    }
}
