//! The ensemble's candidate forecasters beyond the three in `mod.rs`: each is cheap, pure, and
//! strong where another is weak, so [`super::ensemble`] can weight them by their recent errors.
//!
//! - [`Profile`]: a *robust* daily profile (the median of the same minute over the last week),
//!   scaled to the level of the last hour. The median keeps an event day from moving the
//!   profile; the level ratio follows a level shift or a trend within the hour it shows.
//! - [`WeeklyNaive`]: the same minute a week earlier (weekly cycles: weekends).
//! - [`RecentLevel`]: the mean of the last minutes, flat (a random walk's best guess: strong at
//!   the first minutes of the horizon, and after a change no seasonal model has seen yet).

use super::{known_before, require, Forecast, ForecastError, Forecaster, DAY, WEEK};

/// Days of the robust profile.
pub const PROFILE_DAYS: usize = 7;

/// Minutes over which [`Profile`] measures the current level against the profile's.
pub const LEVEL_MINUTES: usize = 60;

/// The level ratio's bounds: beyond them a ratio is more likely an outage or a burst than a
/// level the next hour keeps.
pub const LEVEL_RATIO_BOUNDS: (f64, f64) = (0.2, 5.0);

/// Minutes [`RecentLevel`] averages.
pub const RECENT_MINUTES: usize = 10;

/// Minutes either side of the same minute averaged on each past day: a minute's own noise is
/// not a shape worth repeating, and a profile that carries it wobbles from minute to minute.
pub const PROFILE_SMOOTH_MINUTES: usize = 2;

/// The mean of the known values within [`PROFILE_SMOOTH_MINUTES`] of `i`.
fn smoothed(history: &[Option<f64>], i: usize) -> Option<f64> {
    let lo = i.saturating_sub(PROFILE_SMOOTH_MINUTES);
    let hi = (i + PROFILE_SMOOTH_MINUTES + 1).min(history.len());
    let (sum, n) = history
        .get(lo..hi)?
        .iter()
        .flatten()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Median over k = 1..=days of the smoothed value at `t − k·DAY` (`None` when none is known).
fn profile_at(history: &[Option<f64>], t: usize, days: usize) -> Option<f64> {
    let mut v: Vec<f64> = (1..=days)
        .filter_map(|k| t.checked_sub(k * DAY))
        .filter_map(|i| smoothed(history, i))
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len();
    Some(if m % 2 == 1 {
        v[m / 2]
    } else {
        0.5 * (v[m / 2 - 1] + v[m / 2])
    })
}

/// The robust daily profile scaled to the last hour's level.
#[derive(Clone, Copy, Debug, Default)]
pub struct Profile;

impl Profile {
    /// The ratio of the last [`LEVEL_MINUTES`]' demand to the profile's for those minutes,
    /// within [`LEVEL_RATIO_BOUNDS`]; 1 when either is unknown or zero.
    pub fn level_ratio(history: &[Option<f64>], days: usize) -> f64 {
        let n = history.len();
        let (mut actual, mut expected) = (0.0, 0.0);
        for t in n.saturating_sub(LEVEL_MINUTES)..n {
            if let (Some(a), Some(p)) = (history[t], profile_at(history, t, days)) {
                actual += a;
                expected += p;
            }
        }
        if actual <= 0.0 || expected <= 0.0 {
            return 1.0;
        }
        (actual / expected).clamp(LEVEL_RATIO_BOUNDS.0, LEVEL_RATIO_BOUNDS.1)
    }
}

impl Forecaster for Profile {
    fn name(&self) -> &'static str {
        "profile"
    }

    fn forecast(&self, history: &[Option<f64>], horizon: usize) -> Result<Forecast, ForecastError> {
        let n = require(self.name(), history, DAY)?;
        let days = (n / DAY).min(PROFILE_DAYS);
        let ratio = Self::level_ratio(history, days);
        let point = (0..horizon)
            .map(|h| {
                let t = n + h;
                profile_at(history, t, days)
                    .or_else(|| known_before(history, t - DAY))
                    .unwrap_or(0.0)
                    * ratio
            })
            .collect();
        Ok(Forecast::point_only(point))
    }
}

/// The value at the same minute one week earlier.
#[derive(Clone, Copy, Debug, Default)]
pub struct WeeklyNaive;

impl Forecaster for WeeklyNaive {
    fn name(&self) -> &'static str {
        "weekly-naive"
    }

    fn forecast(&self, history: &[Option<f64>], horizon: usize) -> Result<Forecast, ForecastError> {
        super::naive(self.name(), history, WEEK, horizon)
    }
}

/// The mean of the last [`RECENT_MINUTES`] known minutes (within the last hour), flat.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecentLevel;

impl Forecaster for RecentLevel {
    fn name(&self) -> &'static str {
        "recent-level"
    }

    fn forecast(&self, history: &[Option<f64>], horizon: usize) -> Result<Forecast, ForecastError> {
        let recent: Vec<f64> = history
            .iter()
            .rev()
            .take(60)
            .flatten()
            .take(RECENT_MINUTES)
            .copied()
            .collect();
        if recent.is_empty() {
            return Err(ForecastError::ShortHistory {
                model: self.name(),
                needed: 1,
                got: 0,
            });
        }
        let level = recent.iter().sum::<f64>() / recent.len() as f64;
        Ok(Forecast::point_only(vec![level; horizon]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_ignores_one_event_day_and_follows_a_level_shift() {
        // Seven days and ten hours of a staircase (a step every 10 minutes), one day of them an
        // event day at ×5; the forecast starts at 10:05, in the middle of a step.
        let stairs = |i: usize| ((i % DAY) / 10) as f64;
        let n = 7 * DAY + 605;
        let mut h: Vec<Option<f64>> = (0..n).map(|i| Some(stairs(i))).collect();
        for v in &mut h[3 * DAY..4 * DAY] {
            *v = v.map(|x| 5.0 * x);
        }
        let f = Profile.forecast(&h, 3).unwrap();
        assert!(
            f.point.iter().all(|p| (p - 60.0).abs() < 1e-9),
            "the median skips the event day: {f:?}"
        );
        // The last hour at twice the profile: the forecast doubles.
        for (i, v) in h.iter_mut().enumerate().skip(n - LEVEL_MINUTES) {
            *v = Some(2.0 * stairs(i));
        }
        let ratio = Profile::level_ratio(&h, 7);
        assert!((ratio - 2.0).abs() < 0.01, "{ratio}");
        let f = Profile.forecast(&h, 2).unwrap();
        assert!(f.point.iter().all(|p| (p - 120.0).abs() < 1.0), "{f:?}");
    }

    #[test]
    fn weekly_naive_is_last_week_and_recent_level_the_last_minutes() {
        let h: Vec<Option<f64>> = (0..WEEK + 5).map(|i| Some(i as f64)).collect();
        assert_eq!(WeeklyNaive.forecast(&h, 2).unwrap().point, vec![5.0, 6.0]);
        let mut g: Vec<Option<f64>> = vec![Some(1.0); 30];
        g.extend(std::iter::repeat_n(Some(4.0), RECENT_MINUTES));
        g.push(None);
        assert_eq!(RecentLevel.forecast(&g, 2).unwrap().point, vec![4.0, 4.0]);
        assert!(WeeklyNaive.forecast(&g, 2).is_err());
    }
}
