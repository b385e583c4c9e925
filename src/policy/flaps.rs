//! Flaps: a scale-down followed by a scale-up within [`FLAP_WINDOW_SECS`] — capacity released
//! and bought back, usually a cold start later than it was needed. Each one is counted, and
//! recent flaps lengthen the scale-down stabilization window: after `n` flaps within the last
//! [`FLAP_MEMORY_SECS`], the window is `(1 + n)` times the policy's, at most
//! [`MAX_WINDOW_FACTOR`] times (a fleet whose load really fell still scales down, later) — and
//! at least the policy's window plus the longest gap between a scale-down and its buy-back in
//! that time: the capacity was wanted again that long after it went, so it is kept that long
//! (bursts every quarter of an hour, shorter than a cold start, were released between each two
//! and bought back a cold start late into the next; at most `FLAP_WINDOW_SECS` more, since a
//! longer gap is no flap).
//!
//! A noisy work lengthens it before any flap: by `1 + NOISE_WINDOW_GAIN × noise` times, the
//! noise being the work's minute-to-minute scatter relative to its level over the last ten
//! minutes (`RampState::minute_to_minute_noise`) — a few long prompts a minute make the highest
//! recommendation of two minutes a poor bound on the next ten's.

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

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

/// What the flap counter remembers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlapState {
    /// The last scale-down, when one happened.
    pub last_scale_down: Option<Timestamp>,
    /// When recent flaps happened (within [`FLAP_MEMORY_SECS`]).
    pub recent: Vec<Timestamp>,
    /// Flaps since the engine started.
    pub total: u64,
    /// The longest gap from a scale-down to its buy-back among recent flaps (seconds, when
    /// bought back); it lengthens the window for [`FLAP_MEMORY_SECS`].
    pub longest_gap: Option<(u64, Timestamp)>,
}

impl FlapState {
    /// Takes in a decision's change of capacity at `now`; true when it is a flap.
    pub fn observe(&mut self, now: Timestamp, current: u32, desired: u32) -> bool {
        self.recent
            .retain(|t| now.secs_since(*t) < FLAP_MEMORY_SECS);
        self.longest_gap = self
            .longest_gap
            .filter(|(_, t)| now.secs_since(*t) < FLAP_MEMORY_SECS);
        if desired < current {
            self.last_scale_down = Some(now);
            return false;
        }
        let flap = desired > current
            && self
                .last_scale_down
                .is_some_and(|t| now.secs_since(t) < FLAP_WINDOW_SECS);
        if flap {
            self.total += 1;
            self.recent.push(now);
            let gap = self
                .last_scale_down
                .map_or(0, |t| now.secs_since(t).max(0.0).round() as u64);
            if self.longest_gap.is_none_or(|(g, _)| gap >= g) {
                self.longest_gap = Some((gap, now));
            }
            // One flap per scale-down: the buy-back that follows is the same episode.
            self.last_scale_down = None;
        }
        flap
    }

    /// The scale-down window to use for a policy window of `base_secs`, the work's relative
    /// minute-to-minute noise being `noise`: the longest of what the count of recent flaps asks
    /// for and what the noise asks for (each at most [`MAX_WINDOW_FACTOR`] times the policy's),
    /// and the policy's window plus the longest recent flap's gap.
    pub fn scale_down_window_secs(&self, base_secs: u64, noise: f64) -> u64 {
        let after_flaps = base_secs * (1 + self.recent.len() as u64).min(MAX_WINDOW_FACTOR);
        let after_flaps = after_flaps.max(base_secs + self.longest_gap.map_or(0, |(gap, _)| gap));
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
            assert_eq!(f.observe(t(s), cur, des), want, "at {s}");
        }
        assert_eq!(f.total, 2);
        // Two flaps: three times the window — or the window plus the longest gap (300 s).
        assert_eq!(f.scale_down_window_secs(120, 0.0), 420);
        // An hour later they are forgotten; the count stays.
        f.observe(t(5000.0), 10, 10);
        assert_eq!(f.scale_down_window_secs(120, 0.0), 120);
        assert_eq!(f.total, 2);
        // The window never grows past its cap.
        for k in 0..10 {
            f.observe(t(6000.0 + 20.0 * k as f64), 10, 9);
            f.observe(t(6010.0 + 20.0 * k as f64), 9, 10);
        }
        assert_eq!(f.scale_down_window_secs(120, 0.0), 120 * MAX_WINDOW_FACTOR);
    }

    /// Bursts shorter than a cold start, a quarter of an hour apart: released between each
    /// two, bought back 500 s later. The next window keeps the capacity that long after the
    /// work falls — past four times the policy's — for an hour after the flap.
    #[test]
    fn a_flaps_gap_keeps_the_capacity_that_long_next_time() {
        let t = |s: f64| Timestamp::from_secs(1_800_000_000).plus_secs(s);
        let mut f = FlapState::default();
        f.observe(t(0.0), 8, 3);
        assert!(f.observe(t(500.0), 3, 8));
        assert_eq!(f.longest_gap, Some((500, t(500.0))));
        assert_eq!(f.scale_down_window_secs(120, 0.0), 620);
        // A shorter gap later does not shorten it; a longer one lengthens it.
        f.observe(t(900.0), 8, 3);
        assert!(f.observe(t(1000.0), 3, 8));
        assert_eq!(f.scale_down_window_secs(120, 0.0), 620);
        f.observe(t(1100.0), 8, 3);
        assert!(f.observe(t(1650.0), 3, 8));
        assert_eq!(f.scale_down_window_secs(120, 0.0), 670);
        // An hour after the longest, it is forgotten with the flaps.
        f.observe(t(1650.0 + FLAP_MEMORY_SECS), 8, 8);
        assert_eq!(f.longest_gap, None);
        assert_eq!(f.scale_down_window_secs(120, 0.0), 120);
    }

    #[test]
    fn a_noisy_work_lengthens_the_window_before_any_flap() {
        let t = |s: f64| Timestamp::from_secs(1_800_000_000).plus_secs(s);
        let quiet = FlapState::default();
        let mut flapped = FlapState::default();
        flapped.observe(t(0.0), 10, 8);
        flapped.observe(t(60.0), 8, 10);
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
