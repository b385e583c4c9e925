//! Ramp-ahead: capacity launched now serves one cold start from now, so a reactive policy meets
//! every rise a cold start late. While the capacity-model demand (work ÷ target, in units) has
//! been rising steadily, size on where it will be one cold start ahead:
//!
//! ```text
//! ramp = demand now + slope × (lead + 30 s)   (slope: least squares over the last window, or
//!                                               over the last 90 s when a surge breaks out of
//!                                               the range, the requests' as well as the work's)
//! ```
//!
//! — the demand "now" is a rate over the last minute, on a steady rise the demand of half a
//! minute ago.
//!
//! only when the rise is steady (the fit explains at least [`MIN_R2`] of the variance — noise
//! and a drop inside the window are not a ramp) and larger than the demand's own noise, at most
//! [`MAX_SHARE`] of the demand now on top of it ([`MAX_SHARE_SURGE`] on a surge). It only ever raises a recommendation; the
//! stabilization windows and rate policies still apply. The lead is the fleet's own observed
//! p95 launch → in-service time (the default until three have been seen).
//!
//! The ramp scores itself: each projection (one a minute at most) is checked as far ahead as
//! it looked, and the share of its rise that the demand reached in the meantime enters the
//! ramp's **skill**, an average over about five outcomes; the rise projected now is scaled by
//! it. On the matrix's ramps the demand gets there and the skill stays near one; on a real
//! trace's minute-to-minute swings and on bursts shorter than a cold start it falls, and the
//! ramp buys less ahead of them.
//!
//! The same history keeps the **largest step** the demand has taken within the window over the
//! last [`STEP_MEMORY_SECS`]: placement sizes the on-demand warm pools on it (a stopped warm
//! instance costs its volume only, and starts in about half a cold start), so the next step of
//! that size lands on warm capacity.

use serde::{Deserialize, Serialize};

use crate::model::{Timestamp, Units};

/// The window the slope is fitted over, seconds.
pub const WINDOW_SECS: f64 = 300.0;
/// Points needed in the window before a slope is trusted.
pub const MIN_POINTS: usize = 8;
/// A second, short window: a surge that starts from flat is a poor line over five minutes (the
/// flat part dominates the fit) but a clean one over the last 90 s, and it is exactly the rise a
/// cold start late hurts most. Its fit must explain more ([`MIN_R2_SHORT`]) since fewer points
/// carry it.
pub const SHORT_WINDOW_SECS: f64 = 90.0;
/// Points needed in the short window.
pub const MIN_POINTS_SHORT: usize = 6;
/// The share of the variance the short window's fit must explain.
pub const MIN_R2_SHORT: f64 = 0.8;
/// … and the demand must have left the range it held before the short window by this factor,
/// and the requests theirs by the same factor and by two standard deviations of a Poisson count
/// ([`REQUESTS_Z`]).
pub const BREAKOUT: f64 = 1.25;
/// How far (in √count, a Poisson count's standard deviation) the requests of the last minute
/// must exceed the highest count before the short window to confirm a surge of the work. Long
/// prompts make a minute's work noisy while its request count is not: without this test the
/// short window bought back released capacity on long-context and long-document plateaus
/// (robustness matrix: 71 plateau flaps; 41 with it; 52 at one deviation).
pub const REQUESTS_Z: f64 = 2.0;
/// The share of the variance the linear fit must explain. Each point is a rate over the last
/// minute ([`crate::model::RATE_WINDOW_SECS`]), so the window holds about five independent
/// readings, not twenty: a slope is significant at 95 % (Student's t, 3 degrees of freedom,
/// t = 3.18) when R² ≥ t² ÷ (t² + 3) = 0.77. At 0.6, noise on long-prompt plateaus passed as a
/// ramp and bought back capacity just released (robustness matrix: 116 plateau flaps → 75).
pub const MIN_R2: f64 = 0.77;
/// A rise less certain than [`MIN_R2`] is not sized ahead, but while the work's five-minute
/// trend points up this clearly, capacity the trend will need one lead on is not released: a
/// release into a rise is bought back minutes later (a flap), and holding a unit a little
/// longer costs less than a cold start. Capacity above that is released as usual.
pub const HOLD_R2: f64 = 0.5;
/// At most this share of the demand now is added.
pub const MAX_SHARE: f64 = 0.5;
/// At most this share on top when the short window saw a surge break out (doubling, as HPA's
/// default percent policy allows per period): a surge is where a cold start late costs most.
pub const MAX_SHARE_SURGE: f64 = 1.0;
/// The minutes the work's minute-to-minute noise is taken over, seconds: ten independent
/// minute rates, so the one or two differences a step or a drop makes (a rate over the last
/// minute spreads it over two) are outliers the medians pass over.
pub const NOISE_WINDOW_SECS: f64 = 600.0;
/// A steady rise of the work is a ramp of the load only when the requests rise with it, by at
/// least this share of its relative slope: a few long prompts more than usual lift the work
/// for minutes with the request count flat, and a five-minute fit takes that for a ramp (on
/// the robustness matrix's daily cycle of 25 % long documents, a buy of two units four minutes
/// after one was released). A shift of the mix to longer prompts at the same request rate is
/// still met, reactively.
pub const REQUESTS_AGREE: f64 = 0.5;
/// How long the largest step is remembered, seconds (three days).
pub const STEP_MEMORY_SECS: f64 = 3.0 * 86_400.0;

/// Recent demand, for the slope.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RampState {
    /// (when, demand in units) over the last window.
    pub points: Vec<(Timestamp, f64)>,
    /// The largest rise of the demand within the window, units, and when it was seen.
    pub largest_step: Option<(f64, Timestamp)>,
    /// (when, requests the fleet had over the last minute) over the last window: a surge of
    /// the work is confirmed by one of the requests.
    pub request_points: Vec<(Timestamp, f64)>,
    /// (when, demand in units) a minute apart (less a second of slack), over the last
    /// [`NOISE_WINDOW_SECS`]: independent minute rates, for the work's minute-to-minute noise.
    pub minute_points: Vec<(Timestamp, f64)>,
    /// Projections awaiting their outcome, one a minute at most.
    pub checks: Vec<ProjectionCheck>,
    /// The share of its projected rises the demand reached within their lead lately, an
    /// average over about five outcomes ([`SKILL_WEIGHT`]); `None` before the first, taken as
    /// all. The rise projected is scaled by it: the ramp's own feedback.
    pub skill: Option<f64>,
}

/// A projection awaiting its outcome.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProjectionCheck {
    /// When it is scored: as far ahead as it looked (a lead and half a rate window).
    pub due: Timestamp,
    /// The demand when it was made, units.
    pub from_units: f64,
    /// The rise it projected before the skill scaled it, units.
    pub rise_units: f64,
    /// The highest demand seen since it was made, units.
    pub high_units: f64,
}

/// Weight of each outcome in the skill: an exponential average over about five projections
/// (a minute apart at least, so about the last five minutes of projecting).
pub const SKILL_WEIGHT: f64 = 0.2;

/// What the ramp concluded in one decision.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct RampStep {
    /// The demand now, units.
    pub demand_units: f64,
    /// Its rise, units per minute (least squares over the window).
    pub slope_units_per_min: f64,
    /// How much of its variance the fit explains.
    pub r2: f64,
    /// The lead sized on, seconds.
    pub lead_secs: f64,
    /// The units it recommends, when the rise is steady enough to act on.
    pub units: Option<Units>,
    /// The demand it projects a lead and half a rate window ahead, units (before rounding up to
    /// `units`).
    pub projected_units: Option<f64>,
    /// While the work is rising — a positive five-minute slope explaining at least [`HOLD_R2`]
    /// of the variance — the units that rise will need a lead and half a window on (its own
    /// line, unsized by the caps): capacity above it may still go, below it is not released.
    pub hold_units: Option<Units>,
    /// The share of its projected rises that came true lately ([`RampState::skill`]), which
    /// the rise it projects now is scaled by.
    pub skill: f64,
}

impl RampStep {
    /// The units to size on: its own, when its projection leaves the capacity in place by more
    /// than `tolerance` (HPA's: within it, a metric changes nothing, and a projection is one).
    /// Rounding up alone had bought a unit for every projection a hair over the fleet: at a
    /// floor of two units, a real trace's swings from 1.1 to a projected 2.1 units of demand
    /// bought a third 22 times in 12 hours (NASA ×6, chat).
    pub fn units_beyond(&self, current: Units, tolerance: f64) -> Option<Units> {
        self.projected_units
            .filter(|p| *p > current as f64 * (1.0 + tolerance))
            .map(|p| p.ceil() as Units)
    }
}

impl RampState {
    /// Takes in the demand at `now` — with the requests the fleet had over the last minute
    /// (`capacity::request_activity`; `None` where no server reports them, and a surge is then
    /// judged on the work alone) — and returns the ramp's view of it; `noise` is the demand
    /// estimate's relative noise (`capacity::work_noise`): a projected rise smaller than
    /// `noise × demand` is not acted on.
    pub fn observe(
        &mut self,
        now: Timestamp,
        demand_units: f64,
        requests: Option<f64>,
        lead_secs: f64,
        noise: f64,
    ) -> RampStep {
        let in_window =
            |t: &Timestamp| now.secs_since(*t) < WINDOW_SECS && now.secs_since(*t) >= 0.0;
        self.points.retain(|(t, _)| in_window(t));
        self.points.push((now, demand_units));
        self.minute_points
            .retain(|(t, _)| now.secs_since(*t) < NOISE_WINDOW_SECS && now.secs_since(*t) >= 0.0);
        // A second's slack: ticks on the wall clock land a few milliseconds early now and then.
        if self
            .minute_points
            .last()
            .is_none_or(|(t, _)| now.secs_since(*t) >= crate::model::RATE_WINDOW_SECS - 1.0)
        {
            self.minute_points.push((now, demand_units));
        }
        self.settle_checks(now, demand_units);
        let requests = requests.filter(|r| r.is_finite());
        self.request_points.retain(|(t, _)| in_window(t));
        if let Some(r) = requests {
            self.request_points.push((now, r));
        }
        let low = self
            .points
            .iter()
            .map(|(_, d)| *d)
            .fold(f64::INFINITY, f64::min);
        let step = demand_units - low;
        let remembered = self
            .largest_step
            .filter(|(_, at)| now.secs_since(*at) < STEP_MEMORY_SECS);
        if remembered.is_none_or(|(s, _)| step >= s) {
            self.largest_step = Some((step, now));
        }
        let (long_slope, long_r2) = fit(&self.points, now);
        let recent: Vec<(Timestamp, f64)> = self
            .points
            .iter()
            .copied()
            .filter(|(t, _)| now.secs_since(*t) < SHORT_WINDOW_SECS)
            .collect();
        let (short_slope, short_r2) = fit(&recent, now);
        let long = (self.points.len() >= MIN_POINTS
            && long_r2 >= MIN_R2
            && self.requests_rise_with(long_slope, now))
        .then_some(long_slope);
        // Noise fits a short line now and then; a surge also leaves the range the demand held
        // before it.
        let before_high = high_before_short_window(&self.points, now);
        let breakout = before_high.is_finite() && demand_units > BREAKOUT * before_high;
        // A few long prompts lift a minute's work out of its range with no more requests than
        // before; a surge of load brings more requests than the window has seen — out of their
        // range as the work left its own (a Poisson count's high minute, 2.6 deviations over a
        // plateau's mean, had confirmed a few long documents as a surge: 5 units bought for 2.2,
        // released six minutes later), and beyond their own noise where counts are few.
        let requests_before_high = high_before_short_window(&self.request_points, now);
        let more_requests = requests.is_none_or(|r| {
            let high = requests_before_high.max(0.0);
            !requests_before_high.is_finite()
                || r > (BREAKOUT * high).max(high + REQUESTS_Z * high.sqrt())
        });
        let breakout = breakout && more_requests;
        let short = (recent.len() >= MIN_POINTS_SHORT && short_r2 >= MIN_R2_SHORT && breakout)
            .then_some(short_slope);
        // The steeper of the windows that show a steady rise; the long one is reported otherwise.
        let (slope, r2, cap) = match (long, short) {
            (_, Some(s)) if long.is_none_or(|l| s > l) => (s, short_r2, MAX_SHARE_SURGE),
            _ => (long_slope, long_r2, MAX_SHARE),
        };
        let steady = long.is_some() || short.is_some();
        // A level shift read through the minute's rate is a one-minute ramp: extrapolated over
        // a cold start, a ×3 burst bought as for ×6. Where a shift explains the window at least
        // as well as a rise that goes on, the rise projected is what is left of the shift.
        let rising = steady && slope > 0.0;
        let trending = self.points.len() >= MIN_POINTS && long_slope > 0.0 && long_r2 >= HOLD_R2;
        // Only a rise to project or a trend to hold asks (a fit at every onset of the window).
        let shift = (rising || trending)
            .then(|| level_shift(&self.points))
            .flatten();
        let ahead_secs = projection_horizon_secs(lead_secs);
        let raw_rise = shift.map_or(slope * ahead_secs, |level| (level - demand_units).max(0.0));
        let rise = raw_rise * self.skill.unwrap_or(1.0);
        let min_rise = self.min_rise(noise, demand_units);
        let projected_units =
            (rising && rise >= min_rise).then(|| demand_units + rise.min(cap * demand_units));
        let units = projected_units.map(|p| p.ceil() as Units);
        // Every rise the ramp would project at full skill is checked, acted on or not: a skill
        // that only heard of the projections it acted on could not recover once low.
        if rising && raw_rise >= min_rise {
            self.record_check(
                now.plus_secs(ahead_secs),
                demand_units,
                raw_rise.min(cap * demand_units),
            );
        }
        // A shift is not a trend: once the rate has revealed it, nothing more is on its way.
        let hold_units = (trending && shift.is_none())
            .then(|| (demand_units + long_slope * ahead_secs).ceil() as Units);
        RampStep {
            demand_units,
            slope_units_per_min: slope * 60.0,
            r2,
            lead_secs,
            units,
            projected_units,
            hold_units,
            skill: self.skill.unwrap_or(1.0),
        }
    }
}

/// How far ahead a rise is projected: a rate over the last minute is, on a steady rise, the
/// demand of half a minute ago, so what capacity launched now meets is the demand one lead
/// *and* half a rate window on.
fn projection_horizon_secs(lead_secs: f64) -> f64 {
    lead_secs + 0.5 * crate::model::RATE_WINDOW_SECS
}

impl RampState {
    /// The smallest rise worth projecting from `demand_units`, the count's relative noise being
    /// `noise`. Each point is a rate over the last minute, so consecutive points share most of
    /// their requests: a few long prompts entering the window read as a clean rise for a
    /// minute. A rise within the estimate's own noise is not one: the noise the request count
    /// implies, or the scatter the demand has shown around its trend over the window, the
    /// larger. No floor in units: whether a rise matters is whether it carries the demand past
    /// the capacity ([`RampStep::units_beyond`]), and at a floor of two units a rise of 0.4 does
    /// (a floor of half a unit had waited for the work itself to ask, a flash crowd's third
    /// unit booted a minute late: robustness matrix, two cells gained over both seed sets and
    /// one lost that the oracle does not hold).
    fn min_rise(&self, noise: f64, demand_units: f64) -> f64 {
        let observed = self.relative_noise().unwrap_or(0.0);
        noise.max(observed).max(0.0) * demand_units
    }

    /// Whether the requests rise with a rise of the work of `slope` (units a second): their
    /// five-minute slope, relative to their mean, at least [`REQUESTS_AGREE`] of the work's
    /// relative to its own. True where no server reports requests, or too few readings.
    fn requests_rise_with(&self, slope: f64, now: Timestamp) -> bool {
        let mean = |p: &[(Timestamp, f64)]| p.iter().map(|(_, v)| v).sum::<f64>() / p.len() as f64;
        if self.request_points.len() < MIN_POINTS || self.points.is_empty() {
            return true;
        }
        let (requests, work) = (mean(&self.request_points), mean(&self.points));
        if !(requests > 0.0 && work > 0.0) {
            return true;
        }
        let (request_slope, _) = fit(&self.request_points, now);
        request_slope / requests >= REQUESTS_AGREE * slope / work
    }

    /// Settles the projections due at `now` into the skill (see [`RampState::checks`]).
    fn settle_checks(&mut self, now: Timestamp, demand_units: f64) {
        // Outcomes of earlier projections: how much of each projected rise the demand reached
        // before it was due. The highest demand, not the demand at the due time: the capacity
        // a rise bought was needed if the demand got there, even if it fell back since (a
        // sawtooth's tooth). Real traffic's swings of a few minutes, which a five-minute fit
        // takes for rises, mostly do not get there.
        if demand_units.is_finite() {
            for c in &mut self.checks {
                c.high_units = c.high_units.max(demand_units);
            }
        }
        let (due, pending): (Vec<_>, Vec<_>) = self
            .checks
            .drain(..)
            .partition(|c| now.secs_since(c.due) >= 0.0);
        self.checks = pending;
        for c in due.iter().filter(|c| c.rise_units > 0.0) {
            let realized = ((c.high_units - c.from_units) / c.rise_units).clamp(0.0, 1.0);
            let s = self.skill.unwrap_or(1.0);
            self.skill = Some(s + SKILL_WEIGHT * (realized - s));
        }
    }

    /// Records a projection to check at `due`, one a minute at most.
    fn record_check(&mut self, due: Timestamp, demand_units: f64, rise: f64) {
        if self
            .checks
            .last()
            .is_none_or(|c| due.secs_since(c.due) >= 60.0)
        {
            self.checks.push(ProjectionCheck {
                due,
                from_units: demand_units,
                rise_units: rise,
                high_units: demand_units,
            });
        }
    }

    /// The demand's scatter from one minute to the next at `now`, relative to its level: from
    /// the independent minute rates of the last [`NOISE_WINDOW_SECS`], the median deviation of
    /// their differences from the differences' median (× 1.4826 ÷ √2, a standard deviation for
    /// normal noise). The medians pass over a trend (every difference alike) and a step or a
    /// drop (one or two odd differences among nine), which are not noise. A work near zero
    /// that spikes now and then reads as very noisy, and so keeps its few units longest: on
    /// the Azure code trace that kept capacity between its bursts — P95 TTFT 2.30 s with the
    /// noise relative to the work's own level, 3.86 s (as without the lengthening) with the
    /// level floored at one unit, at the same cost. `None` with fewer than four differences,
    /// or no work.
    pub fn minute_to_minute_noise(&self, now: Timestamp) -> Option<f64> {
        let minutes: Vec<f64> = self
            .minute_points
            .iter()
            .filter(|(t, _)| now.secs_since(*t) < NOISE_WINDOW_SECS && now.secs_since(*t) >= 0.0)
            .map(|(_, d)| *d)
            .collect();
        if minutes.len() < 5 {
            return None;
        }
        let level = minutes.iter().sum::<f64>() / minutes.len() as f64;
        if level <= 0.0 {
            return None;
        }
        let diffs: Vec<f64> = minutes.windows(2).map(|w| w[1] - w[0]).collect();
        let trend = median(diffs.clone());
        let mad = median(diffs.iter().map(|d| (d - trend).abs()).collect());
        Some(mad * 1.4826 / std::f64::consts::SQRT_2 / level)
    }

    /// The demand's own noise over the window, relative to its mean: the standard deviation of
    /// its residuals around the fitted line (a trend is not noise) ÷ its mean; `None` with
    /// fewer than [`MIN_POINTS`]. Bursty mixes show it where a request count does not (a few
    /// long prompts a minute among many short ones).
    pub fn relative_noise(&self) -> Option<f64> {
        let n = self.points.len();
        let now = self.points.last()?.0;
        if n < MIN_POINTS {
            return None;
        }
        let mean = self.points.iter().map(|(_, d)| d).sum::<f64>() / n as f64;
        if mean <= 0.0 {
            return None;
        }
        let (slope, _) = fit(&self.points, now);
        let mx = self
            .points
            .iter()
            .map(|(t, _)| t.secs_since(now))
            .sum::<f64>()
            / n as f64;
        let residual: f64 = self
            .points
            .iter()
            .map(|(t, d)| {
                let fitted = mean + slope * (t.secs_since(now) - mx);
                (d - fitted).powi(2)
            })
            .sum();
        Some((residual / (n - 2) as f64).sqrt() / mean)
    }
}

/// The median of `v` (not empty).
fn median(mut v: Vec<f64>) -> f64 {
    debug_assert!(!v.is_empty());
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The highest value of `points` older than the short window (−∞ when none is).
fn high_before_short_window(points: &[(Timestamp, f64)], now: Timestamp) -> f64 {
    points
        .iter()
        .filter(|(t, _)| now.secs_since(*t) >= SHORT_WINDOW_SECS)
        .map(|(_, v)| *v)
        .fold(f64::NEG_INFINITY, f64::max)
}

/// The level the demand is shifting to, when the window reads as a level shift seen through
/// the rate window rather than as a rise that goes on.
///
/// Each point is a rate over the last [`crate::model::RATE_WINDOW_SECS`], so a step of the
/// load at `s` reads as a straight rise from `s` to one rate window later and flat after it,
/// while a ramp starting at `s` keeps rising. Both are fitted for every onset `s` in the window
/// (flat before it, three parameters each) and the smaller squared error wins; a tie — nothing
/// yet past one rate window after the onset — goes to the shift, whose level is then the
/// rise's own line carried to the window's end: exactly the step's height while the rate is
/// still revealing it. `None` when the ramp explains the window better, or no shift upward
/// does.
pub fn level_shift(points: &[(Timestamp, f64)]) -> Option<f64> {
    let window = crate::model::RATE_WINDOW_SECS;
    // The best fit of `shape` (of the seconds since the onset) over every onset with at least
    // two readings of the level before it: (the level at shape 1, squared error).
    let best = |shape: &dyn Fn(f64) -> f64| -> Option<(f64, f64)> {
        points
            .iter()
            .filter_map(|(onset, _)| {
                let x = |t: Timestamp| shape(t.secs_since(*onset));
                let before = points.iter().filter(|(t, _)| x(*t) <= 0.0).count();
                (before >= 2).then(|| regress(points, x))?
            })
            .min_by(|a, b| a.2.total_cmp(&b.2))
            .map(|(intercept, slope, sse)| (intercept + slope, sse))
    };
    let (level, shift_sse) = best(&|dt| (dt / window).clamp(0.0, 1.0))?;
    let (_, ramp_sse) = best(&|dt| dt.max(0.0) / window)?;
    (shift_sse <= ramp_sse * (1.0 + 1e-9) + 1e-12).then_some(level)
}

/// Least squares of `points`' values on `x` of their times: intercept, slope and squared
/// error; `None` when `x` does not vary or the slope is not positive.
fn regress(points: &[(Timestamp, f64)], x: impl Fn(Timestamp) -> f64) -> Option<(f64, f64, f64)> {
    let m = Moments::of(points, x);
    if m.sxx <= 1e-12 || m.sxy <= 0.0 {
        return None;
    }
    let slope = m.sxy / m.sxx;
    Some((
        m.my - slope * m.mx,
        slope,
        (m.syy - m.sxy * m.sxy / m.sxx).max(0.0),
    ))
}

/// The means and centred sums of squares and products of `x` of `points`' times and their
/// values (computed in place: the engine fits every onset of the window each decision).
struct Moments {
    mx: f64,
    my: f64,
    sxx: f64,
    sxy: f64,
    syy: f64,
}

impl Moments {
    fn of(points: &[(Timestamp, f64)], x: impl Fn(Timestamp) -> f64) -> Moments {
        let n = points.len() as f64;
        let mx = points.iter().map(|(t, _)| x(*t)).sum::<f64>() / n;
        let my = points.iter().map(|(_, y)| y).sum::<f64>() / n;
        let (mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0);
        for (t, y) in points {
            let x = x(*t);
            sxx += (x - mx) * (x - mx);
            sxy += (x - mx) * (y - my);
            syy += (y - my) * (y - my);
        }
        Moments {
            mx,
            my,
            sxx,
            sxy,
            syy,
        }
    }
}

/// Least-squares slope (units per second) and R² of `points`.
fn fit(points: &[(Timestamp, f64)], now: Timestamp) -> (f64, f64) {
    if points.len() < 2 {
        return (0.0, 0.0);
    }
    let m = Moments::of(points, |t| t.secs_since(now));
    if m.sxx <= 0.0 || m.syy <= 0.0 {
        return (0.0, 0.0);
    }
    (m.sxy / m.sxx, m.sxy * m.sxy / (m.sxx * m.syy))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: f64) -> Timestamp {
        Timestamp::from_secs(1_800_000_000).plus_secs(s)
    }

    #[test]
    fn a_steady_rise_is_projected_a_lead_and_half_a_window_ahead_noise_and_drops_are_not() {
        // 0.3 units a minute for five minutes, a 300 s lead and half the minute's rate window
        // (the reading now is the demand of 30 s ago): +1.65 units on 5.5.
        let mut r = RampState::default();
        let mut last = None;
        for k in 0..=20 {
            let s = 15.0 * k as f64;
            last = Some(r.observe(at(s), 4.0 + 0.3 * s / 60.0, None, 300.0, 0.0));
        }
        let step = last.unwrap();
        assert!((step.slope_units_per_min - 0.3).abs() < 1e-9, "{step:?}");
        let projected = step.projected_units.unwrap();
        assert!((projected - (5.5 + 0.3 * 5.5)).abs() < 1e-9, "{step:?}");
        assert_eq!(step.units, Some(8));
        // Flat with noise: no ramp.
        let mut r = RampState::default();
        let noisy = [5.0, 5.6, 4.7, 5.3, 4.9, 5.4, 4.8, 5.2, 5.1, 4.6, 5.5, 5.0];
        let steps: Vec<RampStep> = noisy
            .iter()
            .enumerate()
            .map(|(k, v)| r.observe(at(15.0 * k as f64), *v, None, 300.0, 0.0))
            .collect();
        assert!(steps.iter().all(|s| s.units.is_none()), "{steps:?}");
        // A rise then a drop inside the window: not steady.
        let mut r = RampState::default();
        for k in 0..20 {
            let v = if k < 14 { 2.0 + 0.5 * k as f64 } else { 2.0 };
            let s = r.observe(at(15.0 * k as f64), v, None, 300.0, 0.0);
            if k >= 16 {
                assert_eq!(s.units, None, "{k}: {s:?}");
            }
        }
        // A steep steady rise is capped at half the demand now on top: 6 units now, 16 more
        // projected, 9 recommended.
        let mut r = RampState::default();
        let mut last = None;
        for k in 0..=10 {
            last = Some(r.observe(at(15.0 * k as f64), 2.0 + 0.4 * k as f64, None, 600.0, 0.0));
        }
        assert_eq!(last.unwrap().units, Some(9));
    }

    /// A small fleet's rise matters when it carries the demand past the fleet, however small in
    /// units: 1.6 → 2.0 units over five minutes at a floor of two projects 2.44 — a third unit,
    /// ordered a cold start before the work itself asks for it.
    #[test]
    fn a_small_fleets_rise_past_its_capacity_is_sized_ahead() {
        let rise_with_noise = |noise: f64| {
            let mut r = RampState::default();
            (0..=20)
                .map(|k| 15.0 * k as f64)
                .map(|s| r.observe(at(s), 1.6 + 0.08 * s / 60.0, None, 300.0, noise))
                .last()
                .unwrap()
        };
        let step = rise_with_noise(0.05);
        let projected = step.projected_units.expect("a steady rise");
        assert!((projected - (2.0 + 0.08 * 5.5)).abs() < 1e-9, "{step:?}");
        assert_eq!(step.units_beyond(2, 0.1), Some(3), "{step:?}");
        // The same rise within the demand's noise (±25 %) is not acted on.
        assert_eq!(rise_with_noise(0.25).projected_units, None);
    }

    /// A plateau read as a rate over the last minute, sampled every 15 s: consecutive readings
    /// share three quarters of their requests, so noise drifts in runs that a five-minute fit
    /// can mistake for a slope. [`MIN_R2`] is a 2.5 % one-sided test on the window's five
    /// independent readings: over six hours of such a plateau, at most that share of the
    /// decisions sees a ramp (R² ≥ 0.6 saw one in 2.9 %).
    #[test]
    fn minute_rates_of_a_noisy_plateau_are_not_a_ramp() {
        // Per-15-s work of a long-prompt mix: mean 1.0 unit, ±60 % (a few long prompts).
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut uniform = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let quarters: Vec<f64> = (0..1440).map(|_| 1.0 + 1.2 * (uniform() - 0.5)).collect();
        let mut r = RampState::default();
        let mut ramps = 0;
        for k in 4..quarters.len() {
            let minute_rate = quarters[k - 4..k].iter().sum::<f64>() * 2.5;
            let step = r.observe(at(15.0 * k as f64), minute_rate, None, 180.0, 0.17);
            ramps += usize::from(step.units.is_some());
        }
        let share = ramps as f64 / (quarters.len() - 4) as f64;
        assert!(
            share <= 0.025,
            "{ramps} ramps on a plateau: {share:.4} of decisions"
        );
    }

    /// A rise too noisy to size ahead still keeps what it will need a lead on: no release into
    /// it, and no more held than that.
    #[test]
    fn a_noisy_rise_is_not_sized_ahead_but_releases_nothing() {
        let wiggle = [
            0.0, 0.9, -0.6, 0.7, -0.9, 0.4, 0.8, -0.7, 0.2, -0.4, 0.9, -0.8, 0.1, 0.6, -0.5, 0.3,
            -0.2, 0.7, -0.9, 0.5, 0.0,
        ];
        let mut r = RampState::default();
        let mut last = None;
        for (k, w) in wiggle.iter().enumerate() {
            let s = 15.0 * k as f64;
            last = Some(r.observe(at(s), 5.0 + 0.25 * s / 60.0 + 0.4 * w, None, 300.0, 0.0));
        }
        let step = last.unwrap();
        assert!((HOLD_R2..MIN_R2).contains(&step.r2), "{step:?}");
        assert_eq!(step.units, None, "{step:?}");
        // The demand now plus its slope over the 300-s lead, no more.
        let hold = step.hold_units.unwrap();
        let projected = step.demand_units + step.slope_units_per_min * 5.0;
        assert_eq!(hold, projected.ceil() as Units, "{step:?}");
        // Falling, as noisily: not rising.
        let mut r = RampState::default();
        let mut last = None;
        for (k, w) in wiggle.iter().enumerate() {
            let s = 15.0 * k as f64;
            last = Some(r.observe(at(s), 10.0 - 0.25 * s / 60.0 + 0.4 * w, None, 300.0, 0.0));
        }
        assert_eq!(last.unwrap().hold_units, None);
    }

    /// A steady rise of the work is a ramp of the load only when the requests rise with it.
    #[test]
    fn a_rise_of_the_work_needs_the_requests_to_rise_with_it() {
        // The work rises 0.3 units a minute from 4 for five minutes (+37 % over the window);
        // the requests a minute, from 400, as given.
        type Requests = fn(f64) -> Option<f64>;
        let cases: [(&str, Requests, bool); 4] = [
            ("no request counts: the work alone", |_| None, true),
            (
                "requests rise in proportion",
                |m| Some(400.0 * (1.0 + 0.075 * m)),
                true,
            ),
            ("requests flat: longer prompts", |_| Some(400.0), false),
            (
                "requests rise a quarter as fast",
                |m| Some(400.0 * (1.0 + 0.019 * m)),
                false,
            ),
        ];
        for (what, requests, sized) in cases {
            let mut r = RampState::default();
            let mut last = None;
            for k in 0..=20 {
                let m = 0.25 * k as f64;
                last = Some(r.observe(at(60.0 * m), 4.0 + 0.3 * m, requests(m), 300.0, 0.0));
            }
            let step = last.unwrap();
            assert_eq!(step.units.is_some(), sized, "{what}: {step:?}");
        }
    }

    /// A surge of the work is sized ahead only when the requests rose out of their range as
    /// well (by the breakout factor and by two Poisson deviations): a few long prompts lift a
    /// minute's work with no more requests; a surge of load brings them.
    #[test]
    fn a_surge_of_work_needs_more_requests_to_be_sized_ahead() {
        // The work as in the test above: five flat minutes near 1 unit, then +0.3 a tick.
        // Requests: 100 a minute on the flat stretch (±2), then as given per surge tick k.
        /// The requests counted at the surge's tick `k`.
        type Requests = fn(usize) -> Option<f64>;
        let cases: [(&str, Requests, bool); 6] = [
            ("no request counts: the work alone", |_| None, true),
            (
                "requests grow with the work",
                |k| Some(100.0 * (1.1 + 0.3 * (k + 1) as f64)),
                true,
            ),
            (
                "requests flat: longer prompts",
                |k| Some(100.0 + (k % 2) as f64),
                false,
            ),
            // 2 × √102 ≈ 20 above the earlier high of 102: 115 is within the count's noise.
            (
                "requests up by less than their noise",
                |_| Some(115.0),
                false,
            ),
            // 2.4 deviations over the high, but not out of its range as the work left its own
            // (1.25 × 102 = 127.5): a Poisson count's high minute under a few long documents.
            (
                "requests up by their noise, not by the surge's factor",
                |_| Some(126.0),
                false,
            ),
            (
                "requests out of their range by the surge's factor",
                |_| Some(130.0),
                true,
            ),
        ];
        for (name, requests, acts) in cases {
            let mut r = RampState::default();
            for k in 0..20 {
                let flat_requests = requests(0).map(|_| 100.0 + (k % 3) as f64);
                r.observe(
                    at(15.0 * k as f64),
                    1.0 + 0.05 * (k % 3) as f64,
                    flat_requests,
                    150.0,
                    0.0,
                );
            }
            let sized = (0..8).any(|k| {
                r.observe(
                    at(300.0 + 15.0 * k as f64),
                    1.1 + 0.3 * (k + 1) as f64,
                    requests(k),
                    150.0,
                    0.0,
                )
                .units
                .is_some()
            });
            assert_eq!(sized, acts, "{name}");
        }
    }

    /// The ramp scores its projections one lead on: a rise the demand reached keeps the skill
    /// at one; a rise that stalled where it was projected from lowers it, and the next rise is
    /// projected that much shorter.
    #[test]
    fn projections_the_demand_does_not_reach_lower_the_skill() {
        // (case, demand at tick k of 15 s: a five-minute rise, then what follows, skill after)
        type Demand = fn(usize) -> f64;
        let rise = |k: usize| 2.0 + 0.1 * k.min(20) as f64;
        let cases: [(&str, Demand, bool); 2] = [
            ("the rise goes on", |k| 2.0 + 0.1 * k as f64, true),
            (
                "the rise stalls where it was projected from",
                |k| 2.0 + 0.1 * k.min(20) as f64,
                false,
            ),
        ];
        for (name, demand, keeps) in cases {
            let mut r = RampState::default();
            for k in 0..=60 {
                r.observe(at(15.0 * k as f64), demand(k), None, 300.0, 0.0);
            }
            let skill = r.skill.expect("projections checked");
            assert_eq!(skill > 0.95, keeps, "{name}: skill {skill}");
        }
        // After the stall, the same rise again is projected shorter than by a fresh ramp.
        let mut stalled = RampState::default();
        for k in 0..=60 {
            stalled.observe(at(15.0 * k as f64), rise(k), None, 300.0, 0.0);
        }
        let mut fresh = RampState::default();
        let (mut a, mut b) = (None, None);
        for k in 0..=20 {
            let t = 15.0 * (61 + k) as f64;
            a = stalled
                .observe(at(t), rise(k), None, 300.0, 0.0)
                .projected_units;
            b = fresh
                .observe(at(t), rise(k), None, 300.0, 0.0)
                .projected_units;
        }
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a < b, "after the stall {a}, fresh {b}");
    }

    /// A projection within the tolerance of the capacity in place changes nothing, as a
    /// metric's ratio within it does not; beyond it, the ramp sizes on its rounded-up units.
    #[test]
    fn a_projection_within_the_tolerance_is_no_change() {
        let step = |projected: Option<f64>| RampStep {
            demand_units: 1.0,
            slope_units_per_min: 0.2,
            r2: 0.9,
            lead_secs: 300.0,
            units: projected.map(|p| p.ceil() as Units),
            projected_units: projected,
            hold_units: None,
            skill: 1.0,
        };
        // (projected units, current units, want)
        let cases = [
            (Some(2.12), 2, None),    // 6 % over two units: within 10 %
            (Some(2.2), 2, None),     // at the tolerance: still within
            (Some(2.3), 2, Some(3)),  // beyond it
            (Some(3.16), 3, None),    // 5 % over three
            (Some(3.16), 2, Some(4)), // 58 % over two
            (None, 2, None),          // no projection
        ];
        for (projected, current, want) in cases {
            assert_eq!(
                step(projected).units_beyond(current, 0.1),
                want,
                "{projected:?} over {current}"
            );
        }
    }

    /// A surge out of a flat five minutes: over the long window it is a poor line (the flat
    /// part dominates), over the short one a clean one that leaves the earlier range — the ramp
    /// acts within six ticks of its start. Noise of the same size inside the range does not.
    #[test]
    fn a_surge_out_of_a_flat_stretch_is_seen_by_the_short_window() {
        // Five flat minutes, then +0.3 units a tick; `noise` is the estimate's relative noise.
        let surge = |noise: f64| -> Vec<RampStep> {
            let mut r = RampState::default();
            for k in 0..20 {
                let flat = r.observe(
                    at(15.0 * k as f64),
                    1.0 + 0.05 * (k % 3) as f64,
                    None,
                    150.0,
                    noise,
                );
                assert_eq!(flat.units, None, "flat, tick {k}");
            }
            (0..8)
                .map(|k| {
                    r.observe(
                        at(300.0 + 15.0 * k as f64),
                        1.1 + 0.3 * (k + 1) as f64,
                        None,
                        150.0,
                        noise,
                    )
                })
                .collect()
        };
        let steps = surge(0.0);
        let (k, s) = steps
            .iter()
            .enumerate()
            .find(|(_, s)| s.units.is_some())
            .expect("the short window saw the surge");
        assert!(k <= 5, "{k}: {s:?}");
        assert!(s.units.unwrap() as f64 > s.demand_units + 1.0, "{s:?}");
        // The same surge, measured from about one request a minute (the estimate's noise
        // ±200 %): not acted on.
        assert!(
            surge(2.0).iter().all(|s| s.units.is_none()),
            "{:?}",
            surge(2.0)
        );
        // The same rise per tick as noise inside the earlier range (up and down): nothing.
        let mut r = RampState::default();
        for k in 0..40 {
            let v = 3.0
                + if k % 8 < 4 {
                    0.3 * (k % 8) as f64
                } else {
                    0.3 * (8 - k % 8) as f64
                };
            assert_eq!(
                r.observe(at(15.0 * k as f64), v, None, 150.0, 0.0).units,
                None,
                "{k}"
            );
        }
    }

    /// A step of the load read as a rate over the last minute is a one-minute rise, then flat;
    /// a ramp keeps rising. A step is sized at its own height — also while the rate is still
    /// revealing it — and a ramp one lead ahead.
    #[test]
    fn a_step_seen_through_the_minute_rate_is_sized_at_its_height_not_extrapolated() {
        // Per-second load `load(t)` (units), read every 15 s as its mean over the last minute.
        let minute_rate = |load: &dyn Fn(f64) -> f64, t: f64| -> f64 {
            (0..60).map(|s| load(t - s as f64)).sum::<f64>() / 60.0
        };
        type Load = fn(f64) -> f64;
        // (what, load from t = 0, the step's height or None for a ramp, ticks after the
        // onset at t = 300 s)
        let cases: [(&str, Load, Option<f64>, usize); 5] = [
            (
                "×3 step, half revealed",
                |t| if t < 300.0 { 1.2 } else { 3.6 },
                Some(3.6),
                2,
            ),
            (
                "×3 step, revealed",
                |t| if t < 300.0 { 1.2 } else { 3.6 },
                Some(3.6),
                5,
            ),
            (
                "×10 step, a tick in",
                |t| if t < 300.0 { 1.0 } else { 10.0 },
                Some(10.0),
                1,
            ),
            (
                "a steep ramp, 2 min in",
                |t| 1.0 + (t - 300.0).max(0.0) / 30.0,
                None,
                8,
            ),
            (
                "a steep ramp, 3 min in",
                |t| 1.0 + (t - 300.0).max(0.0) / 30.0,
                None,
                12,
            ),
        ];
        for (what, load, height, ticks) in cases {
            let points: Vec<(Timestamp, f64)> = (1..=20 + ticks)
                .map(|k| 15.0 * k as f64)
                .filter(|t| 300.0 + 15.0 * ticks as f64 - t < WINDOW_SECS)
                .map(|t| (at(t), minute_rate(&load, t)))
                .collect();
            match (level_shift(&points), height) {
                // The onset is known to a tick: a tick in, the height to a tenth.
                (Some(level), Some(h)) => assert!((level - h).abs() < 0.1 * h, "{what}: {level}"),
                (None, None) => {}
                (got, want) => panic!("{what}: {got:?}, want {want:?}"),
            }
        }
        // Through the ramp's state: a ×3 burst (1.2 → 3.6 units) is never sized past its
        // height while the rate reveals it or after (a 180-s lead extrapolating its one-minute
        // rise had bought 7 units); a ramp as steep is sized ahead.
        let steps = |load: &dyn Fn(f64) -> f64, ticks: usize| -> Vec<RampStep> {
            let mut r = RampState::default();
            (1..=20 + ticks)
                .map(|k| 15.0 * k as f64)
                .map(|t| r.observe(at(t), minute_rate(load, t), None, 180.0, 0.0))
                .collect()
        };
        let burst = steps(&|t| if t < 300.0 { 1.2 } else { 3.6 }, 12);
        let most = burst.iter().filter_map(|s| s.units).max();
        assert!(most.is_none_or(|u| u <= 4), "{burst:?}");
        let ramp = steps(&|t| 1.0 + (t - 300.0).max(0.0) / 30.0, 8);
        let last = ramp.last().unwrap();
        assert!(
            last.projected_units.unwrap() > last.demand_units + 2.0,
            "{last:?}"
        );
    }

    /// The noise is the scatter around the trend, not the trend: a clean ramp has none, a flat
    /// series alternating ±20 % has about 20 %.
    #[test]
    fn relative_noise_is_the_scatter_around_the_trend() {
        let mut ramp = RampState::default();
        let mut flat = RampState::default();
        for k in 0..20 {
            ramp.observe(at(15.0 * k as f64), 2.0 + 0.2 * k as f64, None, 150.0, 0.0);
            flat.observe(
                at(15.0 * k as f64),
                if k % 2 == 0 { 4.0 } else { 6.0 },
                None,
                150.0,
                0.0,
            );
        }
        assert!(ramp.relative_noise().unwrap() < 1e-9);
        let n = flat.relative_noise().unwrap();
        assert!((0.19..0.22).contains(&n), "{n}");
        assert_eq!(RampState::default().relative_noise(), None);
    }

    /// The minute-to-minute noise leaves out a trend, a step and a drop — differences alike,
    /// or one or two odd ones among nine, wherever the step falls in the minute its rate is
    /// taken over — and sees a work that swings from minute to minute.
    #[test]
    fn minute_to_minute_noise_is_the_swing_not_the_trend_or_a_step() {
        /// Ten minutes of 15-s points, each the rate over the last minute of per-quarter work
        /// `quarter(q)`.
        fn noise(quarter: &dyn Fn(i64) -> f64) -> Option<f64> {
            let mut r = RampState::default();
            for k in 0..40 {
                let rate = (k - 3..=k).map(quarter).sum::<f64>() / 4.0;
                r.observe(at(15.0 * k as f64), rate, None, 150.0, 0.0);
            }
            r.minute_to_minute_noise(at(15.0 * 39.0))
        }
        let none = |got: Option<f64>, what: &str| {
            assert!(got.is_some_and(|n| n.abs() < 1e-9), "{what}: {got:?}");
        };
        none(noise(&|q| 2.0 + 0.05 * q as f64), "a clean ramp");
        for at_quarter in 18..22 {
            none(noise(&|q| if q < at_quarter { 1.0 } else { 9.0 }), "a step");
            none(noise(&|q| if q < at_quarter { 9.0 } else { 1.0 }), "a drop");
        }
        // A work that swings: minute rates 5, 6, 4, 5.5, 4.5, 6, 5, 4, 5.5, 5 (level 5.05).
        // Differences' median −0.5, their median deviation 1.5: 1.5 × 1.4826 ÷ √2 ÷ 5.05.
        let minutes = [5.0, 6.0, 4.0, 5.5, 4.5, 6.0, 5.0, 4.0, 5.5, 5.0];
        // (Minute points are taken at ticks 0, 4, 8 …: each reads quarters k − 3 ..= k.)
        let swing = noise(&|q| minutes[(((q + 3) / 4) as usize).min(9)]);
        assert!(
            swing.is_some_and(|n| (0.30..0.32).contains(&n)),
            "{swing:?}"
        );
        // Four minutes are too few; and what is older than ten minutes does not count.
        let mut r = RampState::default();
        for k in 0..16 {
            r.observe(at(15.0 * k as f64), 5.0, None, 150.0, 0.0);
        }
        assert_eq!(r.minute_to_minute_noise(at(225.0)), None);
        r.observe(at(240.0), 5.0, None, 150.0, 0.0);
        assert!(r.minute_to_minute_noise(at(240.0)).is_some());
        assert_eq!(
            r.minute_to_minute_noise(at(240.0 + NOISE_WINDOW_SECS)),
            None
        );
    }

    #[test]
    fn the_largest_step_is_remembered_for_three_days() {
        let mut r = RampState::default();
        // 1 unit, then a jump to 9 within a tick.
        for k in 0..10 {
            r.observe(
                at(15.0 * k as f64),
                if k < 6 { 1.0 } else { 9.0 },
                None,
                150.0,
                0.0,
            );
        }
        assert_eq!(r.largest_step.map(|s| s.0), Some(8.0));
        // Smaller steps later do not shrink it …
        for k in 0..40 {
            r.observe(
                at(3600.0 + 15.0 * k as f64),
                2.0 + (k % 2) as f64,
                None,
                150.0,
                0.0,
            );
        }
        assert_eq!(r.largest_step.map(|s| s.0), Some(8.0));
        // … three days after it was last seen do.
        r.observe(at(3.0 * 86_400.0 + 600.0), 2.0, None, 150.0, 0.0);
        assert!(r.largest_step.is_some_and(|s| s.0 < 8.0));
    }
}
