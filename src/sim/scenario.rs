//! The built-in scenarios of EVALUATION.md. Names are stable; each is seeded; spot
//! interruptions run at the default rate everywhere, with storms where noted.
//!
//! Rates are sized for an 8B model on g6.xlarge (L4), where one replica sustains ~2.3 chat
//! requests per second: the peaks need 15–25 units, inside the example policy's 40.

use super::rng::Rng;
use super::traffic::{RateProfile, Source, TokenMix};
use super::world::{SpotModel, Window};
use crate::model::Timestamp;

/// A named traffic shape with its cloud weather.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Stable name.
    pub name: &'static str,
    /// Traffic.
    pub source: Source,
    /// Default length, seconds.
    pub duration_secs: f64,
    /// Spot interruptions, storms and shortages.
    pub spot: SpotModel,
    /// Wall-clock time of the run's start (schedules are read against it).
    pub epoch: Timestamp,
    /// Demand of the minutes before the run (requests per minute, oldest first), for the
    /// forecaster; empty for scenarios without a history.
    pub history: Vec<Option<f64>>,
}

/// Names of the built-in scenarios: the one list help texts and error messages use (a test
/// checks each resolves, and that [`builtin`] knows no other).
pub const NAMES: [&str; 6] = [
    "traffic-spike",
    "gradual-growth",
    "periodic",
    "sudden-drop",
    "mixed-workload",
    "spot-shortage",
];

/// Tuesday 2026-12-01 10:00 UTC (11:00 in Berlin): a business-hours start.
fn weekday_morning() -> Timestamp {
    Timestamp::parse_rfc3339("2026-12-01T10:00:00Z").unwrap_or_default()
}

fn per_second(duration_secs: f64, rate: impl Fn(f64) -> f64) -> Vec<f64> {
    (0..duration_secs as usize)
        .map(|s| rate(s as f64 + 0.5))
        .collect()
}

fn ramp(t: f64, t0: f64, t1: f64, a: f64, b: f64) -> f64 {
    if t <= t0 {
        a
    } else if t >= t1 {
        b
    } else {
        a + (b - a) * (t - t0) / (t1 - t0)
    }
}

/// The scenario `name`, or `None`.
pub fn builtin(name: &str, seed: u64) -> Option<Scenario> {
    let chat = TokenMix::Chat { doc_share: 0.0 };
    let per_sec = |rates: Vec<f64>| RateProfile {
        step_secs: 1.0,
        rates,
        doc_share: Vec::new(),
    };
    let s = match name {
        // Steady, then ×10 over 5 minutes, held 30 minutes, back within a minute.
        "traffic-spike" => {
            let d = 80.0 * 60.0;
            let rate = |t: f64| {
                let m = t / 60.0;
                if m < 35.0 {
                    ramp(m, 20.0, 25.0, 4.0, 40.0)
                } else {
                    ramp(m, 55.0, 56.0, 40.0, 4.0)
                }
            };
            Scenario {
                name: "traffic-spike",
                source: Source::Rate(per_sec(per_second(d, rate)), chat),
                duration_secs: d,
                spot: SpotModel::default(),
                epoch: weekday_morning(),
                history: Vec::new(),
            }
        }
        // ×2, linearly over one hour.
        "gradual-growth" => {
            let d = 90.0 * 60.0;
            Scenario {
                name: "gradual-growth",
                source: Source::Rate(
                    per_sec(per_second(d, |t| ramp(t / 60.0, 10.0, 70.0, 12.0, 24.0))),
                    chat,
                ),
                duration_secs: d,
                spot: SpotModel::default(),
                epoch: weekday_morning(),
                history: Vec::new(),
            }
        }
        // Three days of a daily cycle in UTC: night ~30 % of peak, business-hours peak,
        // evening shoulder, ±8 % noise per minute; a spot storm on day 2 at 14:00.
        "periodic" => {
            let days = 3.0;
            let d = days * 86_400.0;
            let mut rng = Rng::new(seed, 7);
            let peak = 30.0;
            let shape = |h: f64| {
                if h < 6.0 {
                    0.3
                } else if h < 9.0 {
                    ramp(h, 6.0, 9.0, 0.3, 1.0)
                } else if h < 17.0 {
                    1.0
                } else if h < 22.0 {
                    ramp(h, 17.0, 22.0, 1.0, 0.3)
                } else {
                    0.3
                }
            };
            let rates = (0..(d / 60.0) as usize)
                .map(|m| {
                    let h = (m % 1440) as f64 / 60.0;
                    peak * shape(h) * rng.lognormal(1.0, 0.08)
                })
                .collect();
            // 14 days before it, the same cycle with its own noise: requests per minute.
            let mut past = Rng::new(seed, 8);
            let history = (0..14 * 1440)
                .map(|m| {
                    let h = (m % 1440) as f64 / 60.0;
                    Some((60.0 * peak * shape(h) * past.lognormal(1.0, 0.08)).round())
                })
                .collect();
            Scenario {
                name: "periodic",
                source: Source::Rate(
                    RateProfile {
                        step_secs: 60.0,
                        rates,
                        doc_share: Vec::new(),
                    },
                    chat,
                ),
                duration_secs: d,
                spot: SpotModel {
                    storms: vec![Window {
                        at_secs: 86_400.0 + 14.0 * 3600.0,
                        duration_secs: 600.0,
                        fraction: 0.3,
                    }],
                    ..SpotModel::default()
                },
                epoch: Timestamp::parse_rfc3339("2026-11-30T00:00:00Z").unwrap_or_default(),
                history,
            }
        }
        // Steady high load that falls to 10 % within a minute and stays there.
        "sudden-drop" => {
            let d = 75.0 * 60.0;
            Scenario {
                name: "sudden-drop",
                source: Source::Rate(
                    per_sec(per_second(d, |t| ramp(t / 60.0, 30.0, 31.0, 40.0, 4.0))),
                    chat,
                ),
                duration_secs: d,
                spot: SpotModel::default(),
                epoch: weekday_morning(),
                history: Vec::new(),
            }
        }
        // Chat (~500/150 tokens) and long documents (~6,000/400) in shifting shares and
        // rates, 20-minute phases; a spot storm at 1 h 30.
        "mixed-workload" => {
            let d = 180.0 * 60.0;
            let phases = [
                (3.0, 0.05),
                (2.0, 0.5),
                (4.0, 0.1),
                (1.5, 0.7),
                (3.5, 0.2),
                (2.5, 0.4),
                (3.0, 0.05),
                (2.0, 0.6),
                (4.0, 0.05),
            ];
            let phase = |t: f64| phases[((t / 1200.0) as usize).min(phases.len() - 1)];
            Scenario {
                name: "mixed-workload",
                source: Source::Rate(
                    RateProfile {
                        step_secs: 1.0,
                        rates: per_second(d, |t| phase(t).0),
                        doc_share: per_second(d, |t| phase(t).1),
                    },
                    chat,
                ),
                duration_secs: d,
                spot: SpotModel {
                    storms: vec![Window {
                        at_secs: 90.0 * 60.0,
                        duration_secs: 300.0,
                        fraction: 0.3,
                    }],
                    ..SpotModel::default()
                },
                epoch: weekday_morning(),
                history: Vec::new(),
            }
        }
        // Load rises from 8 to 30 requests/s between minutes 10 and 50 while spot launches
        // fail from minute 15 to 45: the fleet must grow on on-demand, then return to spot.
        "spot-shortage" => {
            let d = 70.0 * 60.0;
            Scenario {
                name: "spot-shortage",
                source: Source::Rate(
                    per_sec(per_second(d, |t| ramp(t / 60.0, 10.0, 50.0, 8.0, 30.0))),
                    chat,
                ),
                duration_secs: d,
                spot: SpotModel {
                    shortages: vec![Window {
                        at_secs: 15.0 * 60.0,
                        duration_secs: 30.0 * 60.0,
                        fraction: 1.0,
                    }],
                    ..SpotModel::default()
                },
                epoch: weekday_morning(),
                history: Vec::new(),
            }
        }
        _ => return None,
    };
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_scenario_resolves() {
        for name in NAMES {
            assert!(builtin(name, 1).is_some(), "{name}");
        }
        assert!(builtin("spot_shortage", 1).is_none());
    }
}
