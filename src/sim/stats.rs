//! Measurements of a run: a log-bucket latency histogram, per-minute counters, and the
//! EVALUATION.md metrics computed from them.

use serde::Serialize;

/// Log-spaced histogram of seconds from 1 ms to ~1000 s, 2 % wide buckets (percentiles are
/// exact to within 2 %).
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    counts: Vec<u32>,
    total: u64,
}

const H_MIN: f64 = 0.001;
const H_RATIO_LN: f64 = 0.019_802_627_296_179_712; // ln(1.02)
const H_BUCKETS: usize = 700;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; H_BUCKETS],
            total: 0,
        }
    }
}

impl Histogram {
    /// The bucket of a value, seconds.
    pub fn bucket(secs: f64) -> usize {
        if secs <= H_MIN {
            0
        } else {
            (((secs / H_MIN).ln() / H_RATIO_LN) as usize + 1).min(H_BUCKETS - 1)
        }
    }

    /// Records one value, seconds.
    pub fn record(&mut self, secs: f64) {
        self.record_bucket(Self::bucket(secs));
    }

    /// Records one value by its bucket (see [`Histogram::bucket`]).
    pub fn record_bucket(&mut self, bucket: usize) {
        self.counts[bucket] += 1;
        self.total += 1;
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// The `q` quantile (0–1), seconds: the upper edge of its bucket; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            seen += *c as u64;
            if seen >= rank {
                return Some(H_MIN * (H_RATIO_LN * i as f64).exp());
            }
        }
        None
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
    }
}

/// One minute of a run (requests are counted in the minute they arrived).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Minute {
    /// Requests that arrived.
    pub arrived: u32,
    /// …and succeeded.
    pub succeeded: u32,
    /// …and failed.
    pub failed: u32,
    /// TTFT quantiles of the minute's requests, seconds.
    pub ttft_p50_s: Option<f64>,
    /// P95.
    pub ttft_p95_s: Option<f64>,
    /// P99.
    pub ttft_p99_s: Option<f64>,
    /// EVALUATION.md's required units.
    pub required_units: u32,
    /// Desired units, average over the minute.
    pub desired_units: f64,
    /// In-service spot units, average over the minute.
    pub in_service_spot_units: f64,
    /// In-service on-demand units, average over the minute.
    pub in_service_on_demand_units: f64,
    /// Booting units, average over the minute.
    pub pending_units: f64,
    /// Cumulative cost at the end of the minute, USD.
    pub cost_usd: f64,
    /// Output tokens of the minute's requests that succeeded with their first token within
    /// the TTFT SLO (goodput).
    pub good_output_tokens: u64,
}

impl Minute {
    /// In-service units of both markets.
    pub fn in_service_units(&self) -> f64 {
        self.in_service_spot_units + self.in_service_on_demand_units
    }
}

/// `max` and `p95` of a set of run lengths, seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Longest, seconds.
    pub max: f64,
    /// 95th percentile over runs, seconds.
    pub p95: f64,
}

/// Lengths (seconds) of the maximal runs of consecutive minutes where `pred` holds.
pub fn runs(minutes: &[Minute], pred: impl Fn(&Minute) -> bool) -> Latency {
    let mut lens = Vec::new();
    let mut cur = 0u32;
    for m in minutes {
        if pred(m) {
            cur += 1;
        } else if cur > 0 {
            lens.push(cur as f64 * 60.0);
            cur = 0;
        }
    }
    if cur > 0 {
        lens.push(cur as f64 * 60.0);
    }
    if lens.is_empty() {
        return Latency::default();
    }
    lens.sort_by(f64::total_cmp);
    let p95_idx = ((0.95 * lens.len() as f64).ceil() as usize).clamp(1, lens.len()) - 1;
    Latency {
        max: *lens.last().unwrap_or(&0.0),
        p95: lens[p95_idx],
    }
}

/// Tolerance for comparing average units with whole required units (a minute that averaged
/// 3.9999 units because an instance left a millisecond early is not a lagging minute).
const EPS: f64 = 1e-6;

/// EVALUATION.md's SLO block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Slo {
    /// Fraction of minutes in which ≥ 99 % of the minute's requests succeeded.
    pub availability: f64,
    /// Failed ÷ all requests.
    pub error_rate: f64,
    /// P95 TTFT of admitted requests over the run, seconds.
    pub p95_ttft_s: f64,
    /// P99 TTFT, seconds.
    pub p99_ttft_s: f64,
    /// Fraction of minutes whose own P95 TTFT exceeds the SLO.
    pub ttft_violation_minutes: f64,
    /// Every target held: availability > 0.999, error rate < 0.001, P95 TTFT < the SLO.
    pub met: bool,
}

/// EVALUATION.md's capacity block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Capacity {
    /// Σ max(0, in service − required) ÷ Σ required.
    pub over_provisioning: f64,
    /// Σ max(0, required − in service) ÷ Σ required.
    pub under_provisioning: f64,
    /// Runs of minutes with in-service units below required.
    pub scale_up_latency_s: Latency,
    /// Runs of minutes with desired units below required.
    pub decision_latency_s: Latency,
    /// Runs of minutes with in-service units above 1.2 × required while above the minimum.
    pub scale_down_latency_s: Latency,
}

/// SLO figures from per-minute counters and the run's histogram.
pub fn slo(minutes: &[Minute], all: &Histogram, ttft_slo_secs: f64) -> Slo {
    let arrived: u64 = minutes.iter().map(|m| m.arrived as u64).sum();
    let failed: u64 = minutes.iter().map(|m| m.failed as u64).sum();
    let n = minutes.len().max(1) as f64;
    let good = minutes
        .iter()
        .filter(|m| m.arrived == 0 || m.succeeded as f64 >= 0.99 * m.arrived as f64)
        .count();
    let violating = minutes
        .iter()
        .filter(|m| m.ttft_p95_s.is_some_and(|p| p > ttft_slo_secs))
        .count();
    let availability = good as f64 / n;
    let error_rate = if arrived == 0 {
        0.0
    } else {
        failed as f64 / arrived as f64
    };
    let p95 = all.quantile(0.95).unwrap_or(0.0);
    Slo {
        availability,
        error_rate,
        p95_ttft_s: p95,
        p99_ttft_s: all.quantile(0.99).unwrap_or(0.0),
        ttft_violation_minutes: violating as f64 / n,
        met: availability > 0.999 && error_rate < 0.001 && p95 < ttft_slo_secs,
    }
}

/// Capacity figures; `min_units` is the policy's floor (no scale-down lag is counted at it).
pub fn capacity(minutes: &[Minute], min_units: u32) -> Capacity {
    let required: f64 = minutes.iter().map(|m| m.required_units as f64).sum();
    let over: f64 = minutes
        .iter()
        .map(|m| (m.in_service_units() - m.required_units as f64).max(0.0))
        .sum();
    let under: f64 = minutes
        .iter()
        .map(|m| (m.required_units as f64 - m.in_service_units()).max(0.0))
        .sum();
    let ratio = |x: f64| if required > 0.0 { x / required } else { 0.0 };
    Capacity {
        over_provisioning: ratio(over),
        under_provisioning: ratio(under),
        scale_up_latency_s: runs(minutes, |m| {
            m.in_service_units() + EPS < m.required_units as f64
        }),
        decision_latency_s: runs(minutes, |m| m.desired_units + EPS < m.required_units as f64),
        scale_down_latency_s: runs(minutes, |m| {
            m.in_service_units() > 1.2 * m.required_units as f64 + EPS
                && m.in_service_units() > min_units as f64 + EPS
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_within_two_percent() {
        let mut h = Histogram::default();
        for i in 1..=1000 {
            h.record(i as f64 / 100.0); // 0.01 .. 10 s
        }
        let p95 = h.quantile(0.95).unwrap();
        assert!((p95 / 9.5 - 1.0).abs() < 0.021, "{p95}");
        let p50 = h.quantile(0.5).unwrap();
        assert!((p50 / 5.0 - 1.0).abs() < 0.021, "{p50}");
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn runs_and_capacity_follow_the_definitions() {
        let m = |req: u32, inserv: f64, desired: f64| Minute {
            required_units: req,
            in_service_on_demand_units: inserv,
            desired_units: desired,
            ..Minute::default()
        };
        let mins = vec![
            m(4, 4.0, 4.0),
            m(8, 4.0, 8.0),
            m(8, 6.0, 8.0),
            m(8, 8.0, 8.0),
            m(2, 8.0, 2.0),
            m(2, 2.0, 2.0),
            m(4, 3.0, 3.0),
        ];
        let c = capacity(&mins, 1);
        assert_eq!(
            c.scale_up_latency_s,
            Latency {
                max: 120.0,
                p95: 120.0
            }
        );
        assert_eq!(
            c.decision_latency_s,
            Latency {
                max: 60.0,
                p95: 60.0
            }
        );
        assert_eq!(
            c.scale_down_latency_s,
            Latency {
                max: 60.0,
                p95: 60.0
            }
        );
        let req: f64 = 36.0;
        assert!((c.over_provisioning - 6.0 / req).abs() < 1e-9);
        assert!((c.under_provisioning - (4.0 + 2.0 + 1.0) / req).abs() < 1e-9);
    }
}
