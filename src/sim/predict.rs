//! What the simulator predicts for a fixed number of servers on given arrivals — the other
//! half of `loadgen --compare-sim`: the same requests the load generator sent, the same
//! replica model `simulate` uses (one [`Profile`]), no autoscaling. Set beside what a real
//! endpoint measured, the two say whether the profile describes the user's servers.

use serde::Serialize;

use super::controllers::Fixed;
use super::perf::Profile;
use super::stats::{self, Slo};
use super::traffic::Request;
use super::world::{PoolSpec, SpotModel, World};
use crate::model::Market;

/// The simulator's prediction for a fixed fleet.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// The instance type whose profile was used.
    pub instance_type: String,
    /// Servers behind the endpoint.
    pub servers: u32,
    /// Requests that arrived.
    pub requests: u64,
    /// Predicted to fail (waited past the queue timeout).
    pub failed: u64,
    /// The SLO block, `simulate`'s keys.
    pub slo: Slo,
    /// TTFT quantiles, seconds (to the simulator's 2 % histogram buckets).
    pub ttft_p50_s: Option<f64>,
    /// 95th percentile.
    pub ttft_p95_s: Option<f64>,
    /// 99th percentile.
    pub ttft_p99_s: Option<f64>,
    /// TTFT at percentiles 1 … 99, seconds (a quantile curve to plot beside the measured one).
    pub ttft_percentiles_s: Vec<f64>,
    /// Each minute's P95 TTFT, seconds (`None`: nothing admitted that minute).
    pub minutes_ttft_p95_s: Vec<Option<f64>>,
}

/// Runs `requests` (in arrival order) on `servers` replicas of `profile` for `duration_secs`:
/// all in service from the start, no spot events, requests waiting longer than
/// `queue_timeout_secs` failed — as `simulate` runs a static fleet.
pub fn fixed_fleet(
    requests: impl Iterator<Item = Request>,
    profile: &Profile,
    servers: u32,
    duration_secs: f64,
    ttft_slo_secs: f64,
    queue_timeout_secs: f64,
) -> Prediction {
    let pool = PoolSpec {
        name: "endpoint".into(),
        market: Market::OnDemand,
        profile: profile.clone(),
        weight_units: 1,
        warm_pool_min: 0,
        exposed_to_spot_events: false,
    };
    let mut world = World::new(
        vec![pool],
        &[servers],
        SpotModel::default(),
        1,
        duration_secs,
        15.0,
        queue_timeout_secs,
    );
    world.ttft_slo_secs = ttft_slo_secs;
    world.run(requests, &mut Fixed(servers), 600.0, &mut |_| {});
    let all = &world.ttft_all;
    Prediction {
        instance_type: profile.instance_type.clone(),
        servers,
        requests: world.minutes.iter().map(|m| u64::from(m.arrived)).sum(),
        failed: world.minutes.iter().map(|m| u64::from(m.failed)).sum(),
        slo: stats::slo(&world.minutes, all, ttft_slo_secs),
        ttft_p50_s: all.quantile(0.5),
        ttft_p95_s: all.quantile(0.95),
        ttft_p99_s: all.quantile(0.99),
        ttft_percentiles_s: (1..=99)
            .filter_map(|p| all.quantile(f64::from(p) / 100.0))
            .collect(),
        minutes_ttft_p95_s: world.minutes.iter().map(|m| m.ttft_p95_s).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sim::traffic::evenly;

    #[test]
    fn an_idle_server_answers_in_its_prefill_time() {
        let profile = crate::sim::perf::builtin().remove(0);
        // One request every 10 s: never two at once.
        let reqs = evenly(60, 10.0, 2_000, 20);
        let p = fixed_fleet(reqs.into_iter(), &profile, 1, 600.0, 2.0, 30.0);
        let prefill = 2_000.0 / profile.prefill_tokens_per_sec;
        let p50 = p.ttft_p50_s.unwrap();
        assert!((p50 / prefill - 1.0).abs() < 0.03, "{p50} vs {prefill}");
        assert_eq!((p.requests, p.failed), (60, 0));
        assert!(p.slo.met, "{:?}", p.slo);
        assert_eq!(p.ttft_percentiles_s.len(), 99);
        assert!(p.ttft_percentiles_s.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn more_servers_than_one_drain_a_burst_sooner() {
        let profile = crate::sim::perf::builtin().remove(0);
        // 40 prompts at once: prefill is serial per server, so four take about a quarter as long.
        let reqs = evenly(40, 0.0, 2_000, 20);
        let one = fixed_fleet(reqs.clone().into_iter(), &profile, 1, 120.0, 2.0, 30.0);
        let four = fixed_fleet(reqs.into_iter(), &profile, 4, 120.0, 2.0, 30.0);
        let (p1, p4) = (one.ttft_p95_s.unwrap(), four.ttft_p95_s.unwrap());
        let prefill = 2_000.0 / profile.prefill_tokens_per_sec;
        assert!(
            (p1 / (38.0 * prefill) - 1.0).abs() < 0.1,
            "one server {p1}, prefill {prefill}"
        );
        assert!(
            (p4 / (10.0 * prefill) - 1.0).abs() < 0.1,
            "four servers {p4}, prefill {prefill}"
        );
    }
}
