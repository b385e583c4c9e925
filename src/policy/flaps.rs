//! Flaps: a scale-down followed by a scale-up within [`FLAP_WINDOW_SECS`] — capacity released
//! and bought back, usually a cold start later than it was needed. Each one is counted, and
//! recent flaps lengthen the scale-down stabilization window: after `n` flaps within the last
//! [`FLAP_MEMORY_SECS`], the window is `(1 + n)` times the policy's, at most
//! [`MAX_WINDOW_FACTOR`] times (a fleet whose load really fell still scales down, later).
//!
//! A flap also measures how long the capacity it bought back stayed unwanted: from the last
//! recommendation that wanted it — at least the window in force before the release that let it
//! go — to the buy-back. For [`FLAP_MEMORY_SECS`], a release keeps the highest capacity a recent
//! flap bought back for that long, the longest recent one, after it was last wanted, and the
//! policy's window more (the time a rise takes to show in a recommendation), at most
//! [`max_window_secs`] ([`FlapState::kept_after_flaps`]). Bursts every quarter of an hour,
//! shorter than a cold start, were released between each two and bought back a cold start late
//! into the next: measured from the release alone, the gap fell short of the quarter hour by
//! the window that had kept the capacity until then, and the fleet met every other burst at
//! its floor. Only the level bought back is kept that long, not the recommendations above it:
//! a burst's queue and ramp-ahead order more than the next burst needs, and that capacity
//! arrives after the burst has gone.
//!
//! That memory is renewed whenever the capacity it keeps is wanted again after a dip (a
//! recommendation back at the level bought back, after one under half of it): bursts that the
//! kept capacity serves flap no more, and an hour after the last flap the fleet had released
//! between two of them and met the next at its floor.
//!
//! A noisy work lengthens the window before any flap: by `1 + NOISE_WINDOW_GAIN × noise` times,
//! the noise being the work's minute-to-minute scatter relative to its level over the last ten
//! minutes (`RampState::minute_to_minute_noise`) — a few long prompts a minute make the highest
//! recommendation of two minutes a poor bound on the next ten's.

use serde::{Deserialize, Serialize};

use crate::model::{Timestamp, Units};
use crate::policy::behavior::{within, TimedRecommendation};

/// A scale-up this soon after a scale-down is a flap, seconds.
pub const FLAP_WINDOW_SECS: f64 = 600.0;

/// Flaps older than this no longer lengthen the window, seconds.
pub const FLAP_MEMORY_SECS: f64 = 3600.0;

/// The scale-down window grows to at most this multiple of the policy's.
pub const MAX_WINDOW_FACTOR: u64 = 4;

/// How much the work's relative minute-to-minute noise lengthens the scale-down window: at
/// 2, a work scattering ±25 % from minute to minute holds 1.5 times the policy's window. Measured
/// on the robustness matrix with the example policy: plateau flaps 41 → 38, one cell more held,
/// cost ÷ oracle median 1.37 → 1.39; the built-in scenarios 0–5 % dearer with every SLO
/// kept, the Azure code trace's P95 TTFT 3.86 → 2.30 s at the same cost. At 4: 27 flaps,
/// three cells fewer held than at 0.
pub const NOISE_WINDOW_GAIN: f64 = 2.0;

/// The longest a release keeps capacity after flaps for a policy window of `base_secs`
/// (the count of flaps' cap plus the longest gap a flap can have); the engine keeps its
/// recommendations this long.
pub fn max_window_secs(base_secs: u64) -> u64 {
    base_secs * MAX_WINDOW_FACTOR + FLAP_WINDOW_SECS as u64
}

/// What a release keeps after recent flaps ([`FlapState::kept_after_flaps`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeptAfterFlaps {
    /// The units kept: the highest recommendation within the window, at most the level.
    pub units: Units,
    /// The highest capacity a recent flap bought back.
    pub level_units: Units,
    /// How long after it was last wanted it is kept, seconds.
    pub window_secs: u64,
    /// How long after it was last wanted the longest recent flap wanted it again, seconds.
    pub gap_secs: u64,
}

/// What the flap counter remembers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlapState {
    /// The last scale-down, when one happened.
    pub last_scale_down: Option<Timestamp>,
    /// The scale-down window in force at the last scale-down, seconds: no recommendation within
    /// it wanted the capacity that scale-down released.
    pub last_scale_down_window_secs: u64,
    /// When recent flaps happened (within [`FLAP_MEMORY_SECS`]).
    pub recent: Vec<Timestamp>,
    /// Flaps since the engine started.
    pub total: u64,
    /// The longest gap among recent flaps from when the capacity was last wanted (the window in
    /// force at its scale-down, before it) to its buy-back (seconds, when bought back).
    pub longest_gap: Option<(u64, Timestamp)>,
    /// The highest capacity a recent flap bought back (units, when).
    pub bought_back: Option<(Units, Timestamp)>,
    /// Whether a recommendation has fallen under half that capacity since it was last wanted
    /// ([`FlapState::observe_recommendation`]).
    pub dipped: bool,
}

impl FlapState {
    /// Takes in a decision's change of capacity at `now`, made with a scale-down window of
    /// `window_secs`; true when it is a flap.
    pub fn observe(
        &mut self,
        now: Timestamp,
        current: Units,
        desired: Units,
        window_secs: u64,
    ) -> bool {
        self.recent
            .retain(|t| now.secs_since(*t) < FLAP_MEMORY_SECS);
        self.longest_gap = self
            .longest_gap
            .filter(|(_, t)| now.secs_since(*t) < FLAP_MEMORY_SECS);
        self.bought_back = self
            .bought_back
            .filter(|(_, t)| now.secs_since(*t) < FLAP_MEMORY_SECS);
        if desired < current {
            self.last_scale_down = Some(now);
            self.last_scale_down_window_secs = window_secs;
            return false;
        }
        let flap = desired > current
            && self
                .last_scale_down
                .is_some_and(|t| now.secs_since(t) < FLAP_WINDOW_SECS);
        if flap {
            self.total += 1;
            self.recent.push(now);
            let gap = self.last_scale_down_window_secs
                + self
                    .last_scale_down
                    .map_or(0, |t| now.secs_since(t).max(0.0).round() as u64);
            if self.longest_gap.is_none_or(|(g, _)| gap >= g) {
                self.longest_gap = Some((gap, now));
            }
            if self.bought_back.is_none_or(|(u, _)| desired >= u) {
                self.bought_back = Some((desired, now));
            }
            self.dipped = false;
            // One flap per scale-down: the buy-back that follows is the same episode.
            self.last_scale_down = None;
        }
        flap
    }

    /// Takes in a decision's recommendation: when the capacity a recent flap bought back is
    /// wanted again — the recommendation back at its level after falling under half of it —
    /// what the flap taught is remembered afresh, as if it had flapped again. Bursts that the
    /// kept capacity serves make no flap, and without this the memory ran out an hour after
    /// the last one: the fleet released between two bursts and met the next at its floor
    /// (three-minute bursts every quarter hour of long answers: 221 requests failed in the
    /// ninth burst). A fleet whose load stays high, or fell for good, renews nothing.
    pub fn observe_recommendation(&mut self, now: Timestamp, units: Units) {
        let Some((level, _)) = self
            .bought_back
            .filter(|(_, t)| now.secs_since(*t) < FLAP_MEMORY_SECS)
        else {
            return;
        };
        if 2 * units < level {
            self.dipped = true;
        } else if units >= level && self.dipped {
            self.dipped = false;
            self.bought_back = Some((level, now));
            if let Some((gap, _)) = self.longest_gap {
                self.longest_gap = Some((gap, now));
            }
        }
    }

    /// What a release keeps after recent flaps: the highest capacity they bought back, for the
    /// policy's window (`base_secs`) and the longest recent gap after the last recommendation
    /// that wanted it, at most [`max_window_secs`]; `None` without a recent flap.
    pub fn kept_after_flaps(
        &self,
        base_secs: u64,
        recommendations: &[TimedRecommendation],
        now: Timestamp,
    ) -> Option<KeptAfterFlaps> {
        let (gap_secs, _) = self.longest_gap?;
        let (level_units, _) = self.bought_back?;
        let window_secs = (base_secs + gap_secs).min(max_window_secs(base_secs));
        let units = recommendations
            .iter()
            .filter(|r| within(r.at, now, window_secs))
            .map(|r| r.units.min(level_units))
            .max()?;
        Some(KeptAfterFlaps {
            units,
            level_units,
            window_secs,
            gap_secs,
        })
    }

    /// The scale-down window to use for a policy window of `base_secs`, the work's relative
    /// minute-to-minute noise being `noise`: the longest of what the count of recent flaps asks
    /// for and what the noise asks for (each at most [`MAX_WINDOW_FACTOR`] times the policy's).
    pub fn scale_down_window_secs(&self, base_secs: u64, noise: f64) -> u64 {
        let after_flaps = base_secs * (1 + self.recent.len() as u64).min(MAX_WINDOW_FACTOR);
        let factor = (1.0 + NOISE_WINDOW_GAIN * noise.max(0.0)).min(MAX_WINDOW_FACTOR as f64);
        after_flaps.max((base_secs as f64 * factor).round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buy_back_within_the_window_is_one_flap_and_lengthens_the_window() {
        let t = |s: f64| Timestamp::from_secs(1_800_000_000).plus_secs(s);
        let mut f = FlapState::default();
        // (seconds, current, desired, is a flap)
        let table = [
            (0.0, 10, 8, false),    // scale-down
            (300.0, 8, 10, true),   // bought back within 10 minutes
            (315.0, 10, 12, false), // the same episode goes on
            (400.0, 12, 9, false),  // down again
            (1100.0, 9, 11, false), // 700 s later: not a flap
            (1200.0, 11, 10, false),
            (1230.0, 10, 10, false), // hold
            (1300.0, 10, 11, true),
        ];
        for (s, cur, des, want) in table {
            assert_eq!(f.observe(t(s), cur, des, 120), want, "at {s}");
        }
        assert_eq!(f.total, 2);
        // Two flaps: three times the window.
        assert_eq!(f.scale_down_window_secs(120, 0.0), 360);
        // An hour later they are forgotten; the count stays.
        f.observe(t(5000.0), 10, 10, 360);
        assert_eq!(f.scale_down_window_secs(120, 0.0), 120);
        assert_eq!(f.total, 2);
        // The window never grows past its cap.
        for k in 0..10 {
            f.observe(t(6000.0 + 20.0 * k as f64), 10, 9, 120);
            f.observe(t(6010.0 + 20.0 * k as f64), 9, 10, 120);
        }
        assert_eq!(f.scale_down_window_secs(120, 0.0), 120 * MAX_WINDOW_FACTOR);
    }

    /// The memory of a flap outlives its hour while what it bought back is wanted again after
    /// a dip — bursts the kept capacity serves — and not while the load stays up or stays down.
    #[test]
    fn capacity_wanted_again_after_a_dip_renews_the_flaps_memory() {
        let t = |s: f64| Timestamp::from_secs(1_800_000_000).plus_secs(s);
        let flapped = || {
            let mut f = FlapState::default();
            f.observe(t(120.0), 8, 3, 120);
            assert!(f.observe(t(600.0), 3, 8, 120));
            f
        };
        // (what, recommendations (seconds, units) after the flap, remembered at 4,500 s)
        type Recs<'a> = &'a [(f64, Units)];
        let cases: &[(&str, Recs, bool)] = &[
            (
                "bursts every quarter hour",
                &[(900.0, 3), (1500.0, 8), (1800.0, 3), (2400.0, 8)],
                true,
            ),
            (
                "the load stays up",
                &[(900.0, 8), (1500.0, 8), (2400.0, 9)],
                false,
            ),
            (
                "the load stays down",
                &[(900.0, 3), (1500.0, 3), (2400.0, 4)],
                false,
            ),
            ("back up without a dip", &[(900.0, 5), (1500.0, 8)], false),
        ];
        for &(what, recs, remembered) in cases {
            let mut f = flapped();
            for &(s, units) in recs {
                f.observe_recommendation(t(s), units);
            }
            f.observe(t(4500.0), 8, 8, 120);
            assert_eq!(f.bought_back.is_some(), remembered, "{what}");
            assert_eq!(f.longest_gap.is_some(), remembered, "{what}");
            // Renewing is no flap: the window's count of flaps does not grow.
            assert!(f.total == 1 && f.recent.is_empty(), "{what}");
        }
    }

    /// Bursts shorter than a cold start, a quarter of an hour apart: 8 units wanted until
    /// second 0, released by a 120 s window at 120, bought back at 600 — wanted again 600 s
    /// after they were last wanted. For an hour after, a release keeps the level bought back
    /// for the policy's window and that gap (720 s) after the last recommendation that wanted
    /// it, and no more than that level; the longest recent gap counts, up to the cap.
    #[test]
    fn a_flap_keeps_what_it_bought_back_as_long_as_it_was_unwanted() {
        let t = |s: f64| Timestamp::from_secs(1_800_000_000).plus_secs(s);
        let recs = |r: &[(f64, Units)]| -> Vec<TimedRecommendation> {
            r.iter()
                .map(|&(s, units)| TimedRecommendation { at: t(s), units })
                .collect()
        };
        let mut f = FlapState::default();
        assert_eq!(f.kept_after_flaps(120, &recs(&[(0.0, 8)]), t(60.0)), None);
        f.observe(t(120.0), 8, 3, 120);
        assert!(f.observe(t(600.0), 3, 8, 120));
        assert_eq!(f.longest_gap, Some((600, t(600.0))));
        // (what, recommendations, now, units kept)
        let burst = [(600.0, 8), (700.0, 12), (800.0, 3)];
        type Recs<'a> = &'a [(f64, Units)];
        let cases: &[(&str, Recs, f64, Option<Units>)] = &[
            (
                "the burst's 12 count as the 8 bought back",
                &burst,
                900.0,
                Some(8),
            ),
            (
                "kept 720 s after it was last wanted",
                &burst,
                1419.0,
                Some(8),
            ),
            ("then released", &burst, 1421.0, Some(3)),
            (
                "less than the level is kept as it was",
                &[(600.0, 5)],
                900.0,
                Some(5),
            ),
            (
                "nothing recommended within the window",
                &[(0.0, 8)],
                900.0,
                None,
            ),
        ];
        for &(what, r, now, want) in cases {
            let got = f.kept_after_flaps(120, &recs(r), t(now)).map(|k| k.units);
            assert_eq!(got, want, "{what}");
        }
        let kept = f.kept_after_flaps(120, &recs(&burst), t(900.0)).unwrap();
        assert_eq!(
            (kept.level_units, kept.window_secs, kept.gap_secs),
            (8, 720, 600)
        );
        // A shorter gap later does not shorten it; a longer one (released by an 840 s window,
        // bought back 400 s later) lengthens it, up to the cap; a higher level raises it.
        f.observe(t(1500.0), 8, 3, 720);
        assert!(f.observe(t(1560.0), 3, 6, 720));
        let gap =
            |f: &FlapState, now: f64| f.kept_after_flaps(120, &recs(&[(now - 1.0, 9)]), t(now));
        assert_eq!(
            gap(&f, 1600.0).map(|k| (k.window_secs, k.level_units)),
            Some((900, 8))
        );
        f.observe(t(2000.0), 8, 3, 840);
        assert!(f.observe(t(2400.0), 3, 9, 840));
        let k = gap(&f, 2500.0).unwrap();
        assert_eq!(
            (k.gap_secs, k.window_secs, k.level_units),
            (1240, max_window_secs(120), 9)
        );
        // An hour after the last, they are forgotten with the flaps.
        f.observe(t(2400.0 + FLAP_MEMORY_SECS), 9, 9, 120);
        assert_eq!(gap(&f, 2401.0 + FLAP_MEMORY_SECS), None);
        assert_eq!(f.scale_down_window_secs(120, 0.0), 120);
    }

    #[test]
    fn a_noisy_work_lengthens_the_window_before_any_flap() {
        let t = |s: f64| Timestamp::from_secs(1_800_000_000).plus_secs(s);
        let quiet = FlapState::default();
        let mut flapped = FlapState::default();
        flapped.observe(t(0.0), 10, 8, 120);
        flapped.observe(t(60.0), 8, 10, 120);
        // (flaps, noise, window for a 120 s policy window)
        let table = [
            (&quiet, 0.0, 120),   // steady work, no flap: the policy's window
            (&quiet, 0.1, 144),   // ±10 % a minute: 1.2 times
            (&quiet, 0.5, 240),   // ±50 % (a few long prompts a minute): twice
            (&quiet, 5.0, 480),   // never past the cap
            (&quiet, -1.0, 120),  // no negative noise shortens it
            (&flapped, 0.1, 240), // one recent flap asks for more than the noise
            (&flapped, 1.0, 360), // the noise for more than the flap
        ];
        for (state, noise, want) in table {
            assert_eq!(
                state.scale_down_window_secs(120, noise),
                want,
                "noise {noise}"
            );
        }
    }
}
