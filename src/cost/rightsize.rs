//! Right-sizing: which instance type serves a demand for the fewest dollars, subject to the
//! model fitting (a profile exists for it) and the type's TTFT floor.
//!
//! For each profile serving the model: replicas = ⌈demand ÷ (target utilisation × sustainable
//! rate)⌉ from the replica model ([`crate::sim::perf::Profile::sustainable_rps`]); cost per
//! hour on each market; the *TTFT floor* = prefill time of a P95-length prompt on an idle
//! replica. A type whose floor exceeds half the TTFT SLO is rejected: queueing needs the other
//! half. `weight_units` is the type's sustainable rate over the reference type's — the ASG
//! `WeightedCapacity` that makes one unit mean the same work on every type.

use serde::Serialize;

use crate::sim::perf::Profile;

/// The demand to serve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Demand {
    /// Requests per second at peak.
    pub requests_per_sec: f64,
    /// Mean prompt length, tokens.
    pub mean_prompt_tokens: f64,
    /// Mean output length, tokens.
    pub mean_output_tokens: f64,
    /// 95th-percentile prompt length, tokens (sets the TTFT floor).
    pub p95_prompt_tokens: f64,
}

impl Demand {
    /// The demand a per-request trace shows: its busiest minute's rate, its mean lengths and
    /// its P95 prompt. An empty trace is no demand.
    pub fn from_requests(reqs: &[crate::sim::traffic::Request]) -> Demand {
        let n = reqs.len().max(1) as f64;
        let mut per_minute = std::collections::BTreeMap::<u64, u64>::new();
        for r in reqs {
            *per_minute
                .entry((r.arrival_secs / 60.0) as u64)
                .or_default() += 1;
        }
        let mut prompts: Vec<u32> = reqs.iter().map(|r| r.prompt_tokens).collect();
        prompts.sort_unstable();
        let p95 = prompts
            .get(((prompts.len() as f64 * 0.95) as usize).min(prompts.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0);
        Demand {
            requests_per_sec: per_minute.values().copied().max().unwrap_or(0) as f64 / 60.0,
            mean_prompt_tokens: reqs.iter().map(|r| r.prompt_tokens as f64).sum::<f64>() / n,
            mean_output_tokens: reqs.iter().map(|r| r.output_tokens as f64).sum::<f64>() / n,
            p95_prompt_tokens: p95 as f64,
        }
    }
}

/// One candidate type.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candidate {
    /// EC2 instance type.
    pub instance_type: String,
    /// Replicas needed at the target utilisation.
    pub replicas: u32,
    /// Sustainable requests per second of one replica for this mix.
    pub rps_per_replica: f64,
    /// Fleet cost on on-demand, USD per hour.
    pub on_demand_usd_per_hour: f64,
    /// Fleet cost on spot, USD per hour.
    pub spot_usd_per_hour: f64,
    /// On-demand USD per million output tokens at the target utilisation.
    pub usd_per_million_output_tokens: f64,
    /// Prefill time of a P95 prompt on an idle replica, seconds.
    pub ttft_floor_secs: f64,
    /// Capacity weight relative to the reference type.
    pub weight_units: f64,
    /// `None` when feasible, else why not.
    pub rejected: Option<String>,
}

/// Every profile serving `model`, cheapest feasible first (on-demand cost), then the rejected.
pub fn rank(
    profiles: &[Profile],
    model: &str,
    reference: &str,
    demand: Demand,
    target_utilization: f64,
    ttft_slo_secs: f64,
) -> Vec<Candidate> {
    let rate =
        |p: &Profile| p.sustainable_rps(demand.mean_prompt_tokens, demand.mean_output_tokens);
    let reference_rate = profiles
        .iter()
        .find(|p| p.instance_type == reference && p.model == model)
        .map(rate);
    let mut out: Vec<Candidate> = profiles
        .iter()
        .filter(|p| p.model == model)
        .map(|p| {
            let rps = rate(p);
            let replicas = ((demand.requests_per_sec / (rps * target_utilization)).ceil() as u32).max(1);
            let floor = demand.p95_prompt_tokens / p.prefill_tokens_per_sec;
            let tokens_per_hour = demand.requests_per_sec * demand.mean_output_tokens * 3600.0;
            let od = replicas as f64 * p.on_demand_usd_per_hour;
            Candidate {
                instance_type: p.instance_type.clone(),
                replicas,
                rps_per_replica: rps,
                on_demand_usd_per_hour: od,
                spot_usd_per_hour: replicas as f64 * p.spot_usd_per_hour,
                usd_per_million_output_tokens: od / tokens_per_hour * 1e6,
                ttft_floor_secs: floor,
                weight_units: reference_rate.map_or(1.0, |r| rps / r),
                rejected: (floor > ttft_slo_secs / 2.0).then(|| {
                    format!("a P95 prompt alone takes {floor:.2} s to prefill; the TTFT SLO of {ttft_slo_secs} s leaves too little for queueing")
                }),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        a.rejected
            .is_some()
            .cmp(&b.rejected.is_some())
            .then(
                a.on_demand_usd_per_hour
                    .total_cmp(&b.on_demand_usd_per_hour),
            )
            .then(a.instance_type.cmp(&b.instance_type))
    });
    out
}

/// The ranking as `llm-autoscaler plan` prints it: the demand, a table of candidates, the
/// cheapest feasible one, and what the ranking leaves out.
pub fn report(
    demand: &Demand,
    model: &str,
    ttft_slo_secs: f64,
    reference: &str,
    ranked: &[Candidate],
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "demand: {:.1} requests/s, prompt {:.0} (P95 {:.0}) / output {:.0} tokens; {} model; TTFT SLO {} s; 80 % utilisation",
        demand.requests_per_sec, demand.mean_prompt_tokens, demand.p95_prompt_tokens, demand.mean_output_tokens, model, ttft_slo_secs
    );
    let _ = writeln!(
        out,
        "\n{:<14} {:>8} {:>9} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "type",
        "replicas",
        "req/s ea",
        "on-demand $/h",
        "spot $/h",
        "$/M tok",
        "TTFT floor",
        "weight"
    );
    for c in ranked {
        let _ = writeln!(
            out,
            "{:<14} {:>8} {:>9.2} {:>12.2} {:>10.2} {:>10.3} {:>9.2}s {:>8.2}{}",
            c.instance_type,
            c.replicas,
            c.rps_per_replica,
            c.on_demand_usd_per_hour,
            c.spot_usd_per_hour,
            c.usd_per_million_output_tokens,
            c.ttft_floor_secs,
            c.weight_units,
            c.rejected
                .as_ref()
                .map_or(String::new(), |r| format!("  ✗ {r}"))
        );
    }
    if ranked.iter().any(|c| c.weight_units < 1.0) {
        let _ = writeln!(
        out,
            "\nWeights below 1 cannot be an ASG WeightedCapacity (whole numbers, 1–999): to mix those types in\n\
             one group, make the smallest type the reference (the first on-demand pool's first type)."
        );
    }
    let _ = match ranked.iter().find(|c| c.rejected.is_none()) {
        Some(best) => writeln!(
            out,
            "\ncheapest: {} × {} — ${:.2}/h on-demand, ${:.2}/h on spot; weight_units {:.2} against {}",
            best.replicas, best.instance_type, best.on_demand_usd_per_hour, best.spot_usd_per_hour, best.weight_units, reference
        ),
        None => writeln!(out, "\nno type meets the TTFT SLO for this prompt length"),
    };
    let _ = writeln!(
        out,
        "\nThe ranking is by throughput and the prefill floor only: one large replica also serialises more prefills,\n\
         which raises TTFT under bursts. Check a choice on your traffic: llm-autoscaler simulate --config <policy> --trace <file>"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::perf::builtin;

    #[test]
    fn chat_goes_to_a_small_gpu_and_long_documents_need_fast_prefill() {
        let chat = Demand {
            requests_per_sec: 20.0,
            mean_prompt_tokens: 500.0,
            mean_output_tokens: 150.0,
            p95_prompt_tokens: 1300.0,
        };
        let r = rank(&builtin(), "8b", "g6.xlarge", chat, 0.8, 2.0);
        // Feasible first, cheapest first.
        assert!(r
            .windows(2)
            .all(|w| (w[0].rejected.is_some(), w[0].on_demand_usd_per_hour)
                <= (w[1].rejected.is_some(), w[1].on_demand_usd_per_hour)));
        // At 20 requests/s an L40S's 4.4× throughput for 2.3× the price wins over L4s.
        assert_eq!(r[0].instance_type, "g6e.xlarge", "{r:#?}");
        let l4 = r.iter().find(|c| c.instance_type == "g6.xlarge").unwrap();
        assert_eq!(l4.weight_units, 1.0);
        assert!((r[0].weight_units - r[0].rps_per_replica / l4.rps_per_replica).abs() < 1e-9);
        // At 1 request/s one replica of anything is enough: the cheapest instance wins.
        let small = rank(
            &builtin(),
            "8b",
            "g6.xlarge",
            Demand {
                requests_per_sec: 1.0,
                ..chat
            },
            0.8,
            2.0,
        );
        assert_eq!(
            (small[0].instance_type.as_str(), small[0].replicas),
            ("g6.xlarge", 1)
        );

        // 6,000-token documents: an L4 needs 2 s just to prefill one; the L40S does it in 0.6 s.
        let docs = Demand {
            requests_per_sec: 2.0,
            mean_prompt_tokens: 6000.0,
            mean_output_tokens: 400.0,
            p95_prompt_tokens: 16000.0,
        };
        let r = rank(&builtin(), "8b", "g6.xlarge", docs, 0.8, 4.0);
        let l4 = r.iter().find(|c| c.instance_type == "g6.xlarge").unwrap();
        assert!(l4.rejected.is_some(), "{l4:?}");
        let first = &r[0];
        assert!(
            first.rejected.is_none() && first.ttft_floor_secs <= 2.0,
            "{first:?}"
        );
        // 70B only on the multi-GPU types.
        let r70 = rank(&builtin(), "70b", "g5.12xlarge", chat, 0.8, 2.0);
        assert!(r70
            .iter()
            .all(|c| ["g5.12xlarge", "p4d.24xlarge"].contains(&c.instance_type.as_str())));
    }
}
