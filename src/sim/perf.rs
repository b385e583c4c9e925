//! Replica performance and price profiles per instance type, and `required_units`.
//!
//! A replica (one vLLM-style server per instance) batches continuously: up to `max_seqs`
//! sequences whose KV cache fits `kv_cache_tokens`. Prefill runs one request at a time at
//! `prefill_tokens_per_sec` and stalls decoding while it runs; a decode step produces one token
//! for every running sequence and takes `decode_base_secs + decode_per_seq_secs × batch`.
//!
//! Where the figures come from (all for BF16 weights, vLLM, ~1k-token contexts):
//! - decode is memory-bound: step ≈ weight bytes ÷ HBM bandwidth ÷ 0.8 efficiency, plus the KV
//!   read of each sequence (Llama-3-8B with GQA: 2 × 32 layers × 8 KV heads × 128 × 2 B =
//!   128 KiB per token; 70B: 320 KiB). Bandwidths: A10G 600 GB/s, L4 300 GB/s, L40S 864 GB/s,
//!   A100-40GB 1,555 GB/s (NVIDIA data sheets).
//! - prefill is compute-bound: ≈ peak dense FP16 tensor FLOPS × ~45 % MFU ÷ (2 × parameters)
//!   FLOP per token. Peaks: A10G 125 TF, L4 121 TF, L40S 362 TF, A100 312 TF (data sheets).
//! - KV capacity: GPU memory × 0.9 (vLLM's default `gpu_memory_utilization`) − weights −
//!   activations, ÷ KV bytes per token.
//! - cold start: EC2 launch + boot of a GPU AMI (60–90 s) + model download and load + CUDA
//!   graph capture; warm-pool start skips the download (model on the stopped EBS volume).
//! - on-demand prices: AWS us-east-1 Linux list prices (2025); spot defaults to 35 % of
//!   on-demand, the typical recent discount for these families. Override per region.

use super::traffic::Request;
use crate::config::ProfileOverride;

/// Performance, startup and price of one instance type serving one model.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// EC2 instance type.
    pub instance_type: String,
    /// Model class served, e.g. `8b`.
    pub model: String,
    /// Prefill throughput, tokens per second.
    pub prefill_tokens_per_sec: f64,
    /// Decode step time at batch size 0+, seconds.
    pub decode_base_secs: f64,
    /// Extra decode step time per running sequence, seconds.
    pub decode_per_seq_secs: f64,
    /// Concurrent sequences cap (vLLM `max_num_seqs`).
    pub max_seqs: u32,
    /// KV-cache capacity, tokens.
    pub kv_cache_tokens: u64,
    /// Median cold start (launch → in service), seconds; log-normal with `start_sigma`.
    pub cold_start_median_secs: f64,
    /// Median start from a stopped warm-pool instance, seconds.
    pub warm_start_median_secs: f64,
    /// σ of the log-normal start time.
    pub start_sigma: f64,
    /// On-demand price, USD per hour.
    pub on_demand_usd_per_hour: f64,
    /// Spot price, USD per hour.
    pub spot_usd_per_hour: f64,
    /// A stopped warm-pool instance's EBS volume (200 GB gp3 at $0.08/GB-month), USD per hour.
    pub stopped_usd_per_hour: f64,
}

const EBS_STOPPED: f64 = crate::config::WARM_VOLUME_USD_PER_HOUR;
const SPOT_SHARE: f64 = 0.35;

/// The built-in profiles: an 8B-class model on each type, and a 70B-class model on the
/// multi-GPU types.
pub fn builtin() -> Vec<Profile> {
    let p = |instance_type: &str,
             model: &str,
             prefill,
             base_ms: f64,
             per_seq_ms: f64,
             max_seqs,
             kv,
             cold,
             warm,
             od: f64| Profile {
        instance_type: instance_type.to_string(),
        model: model.to_string(),
        prefill_tokens_per_sec: prefill,
        decode_base_secs: base_ms / 1000.0,
        decode_per_seq_secs: per_seq_ms / 1000.0,
        max_seqs,
        kv_cache_tokens: kv,
        cold_start_median_secs: cold,
        warm_start_median_secs: warm,
        start_sigma: 0.15,
        on_demand_usd_per_hour: od,
        spot_usd_per_hour: od * SPOT_SHARE,
        stopped_usd_per_hour: EBS_STOPPED,
    };
    vec![
        // 1×A10G 24 GB: 16 GB / 600 GB/s / 0.8 = 33 ms; ~5 GB KV = 38k tokens.
        p(
            "g5.xlarge",
            "8b",
            3_500.0,
            33.0,
            0.40,
            64,
            38_000,
            150.0,
            75.0,
            1.006,
        ),
        // 1×L4 24 GB: 16 GB / 300 GB/s / 0.8 = 67 ms; ~5 GB KV.
        p(
            "g6.xlarge",
            "8b",
            3_000.0,
            67.0,
            0.80,
            64,
            38_000,
            150.0,
            75.0,
            0.8048,
        ),
        // 1×L40S 48 GB: 16 GB / 864 GB/s / 0.8 = 23 ms; ~25 GB KV = 190k tokens.
        p(
            "g6e.xlarge",
            "8b",
            10_000.0,
            23.0,
            0.25,
            256,
            190_000,
            150.0,
            75.0,
            1.861,
        ),
        // 4×A10G, tensor-parallel 4: 2.4 TB/s at 0.6 efficiency = 11 ms; ~64 GB KV.
        p(
            "g5.12xlarge",
            "8b",
            12_000.0,
            11.0,
            0.12,
            256,
            490_000,
            170.0,
            80.0,
            5.672,
        ),
        // 70B AWQ-int4 (~38 GB) on 4×A10G: 26 ms; 320 KiB/token, ~42 GB KV = 128k tokens.
        p(
            "g5.12xlarge",
            "70b",
            1_400.0,
            26.0,
            0.30,
            128,
            128_000,
            300.0,
            120.0,
            5.672,
        ),
        // 8×A100-40GB, tensor-parallel 8, 8B: 5 ms; ~264 GB KV.
        p(
            "p4d.24xlarge",
            "8b",
            25_000.0,
            5.0,
            0.05,
            512,
            2_000_000,
            200.0,
            90.0,
            21.96,
        ),
        // 70B BF16 (140 GB) on 8×A100: 140 GB / 12.4 TB/s / 0.6 = 19 ms; ~130 GB KV = 400k.
        p(
            "p4d.24xlarge",
            "70b",
            7_100.0,
            19.0,
            0.10,
            256,
            400_000,
            330.0,
            140.0,
            21.96,
        ),
    ]
}

/// The built-in profiles with the policy file's `[[profiles]]` applied: each override replaces
/// the figures it gives; one for a type and model with no built-in profile must give them all.
/// An override with a `region` applies only in that `region` (the policy's `[global.aws]
/// region`), after those without one, so a region's prices win over the general ones.
pub fn resolve(
    overrides: &[ProfileOverride],
    region: Option<&str>,
) -> Result<Vec<Profile>, IncompleteProfile> {
    let mut all = builtin();
    let general = overrides.iter().filter(|o| o.region.is_none());
    let regional = overrides
        .iter()
        .filter(|o| o.region.is_some() && o.region.as_deref() == region);
    for o in general.chain(regional) {
        let base = all
            .iter()
            .position(|p| p.instance_type == o.instance_type && p.model == o.model);
        let mut p = match base {
            Some(i) => all[i].clone(),
            None => {
                let missing: Vec<&str> = [
                    ("prefill_tokens_per_sec", o.prefill_tokens_per_sec.is_none()),
                    ("decode_base_ms", o.decode_base_ms.is_none()),
                    ("decode_per_seq_ms", o.decode_per_seq_ms.is_none()),
                    ("max_seqs", o.max_seqs.is_none()),
                    ("kv_cache_tokens", o.kv_cache_tokens.is_none()),
                    ("cold_start_secs", o.cold_start_secs.is_none()),
                    ("warm_start_secs", o.warm_start_secs.is_none()),
                    ("on_demand_usd_per_hour", o.on_demand_usd_per_hour.is_none()),
                ]
                .into_iter()
                .filter_map(|(k, absent)| absent.then_some(k))
                .collect();
                if !missing.is_empty() {
                    return Err(IncompleteProfile {
                        at: o.defined_at.clone(),
                        instance_type: o.instance_type.clone(),
                        model: o.model.clone(),
                        missing: missing.join(", "),
                    });
                }
                Profile {
                    instance_type: o.instance_type.clone(),
                    model: o.model.clone(),
                    start_sigma: 0.15,
                    stopped_usd_per_hour: EBS_STOPPED,
                    ..all[0].clone()
                }
            }
        };
        if let Some(v) = o.prefill_tokens_per_sec {
            p.prefill_tokens_per_sec = v;
        }
        if let Some(v) = o.decode_base_ms {
            p.decode_base_secs = v / 1000.0;
        }
        if let Some(v) = o.decode_per_seq_ms {
            p.decode_per_seq_secs = v / 1000.0;
        }
        if let Some(v) = o.max_seqs {
            p.max_seqs = v;
        }
        if let Some(v) = o.kv_cache_tokens {
            p.kv_cache_tokens = v;
        }
        if let Some(v) = o.cold_start_secs {
            p.cold_start_median_secs = v;
        }
        if let Some(v) = o.warm_start_secs {
            p.warm_start_median_secs = v;
        }
        if let Some(v) = o.on_demand_usd_per_hour {
            p.on_demand_usd_per_hour = v;
            p.spot_usd_per_hour = v * SPOT_SHARE;
        }
        if let Some(v) = o.spot_usd_per_hour {
            p.spot_usd_per_hour = v;
        }
        match base {
            Some(i) => all[i] = p,
            None => all.push(p),
        }
    }
    Ok(all)
}

/// A `[[profiles]]` table for a new type and model that leaves figures out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: profiles: {instance_type} ({model}) has no built-in profile, so every figure is needed; missing: {missing}")]
pub struct IncompleteProfile {
    /// `FILE:LINE:COL` of the table.
    pub at: String,
    /// Its instance type.
    pub instance_type: String,
    /// Its model class.
    pub model: String,
    /// The absent keys.
    pub missing: String,
}

/// Every profile at `speed` ([`Profile::at_speed`]).
pub fn at_speed(profiles: &[Profile], speed: f64) -> Vec<Profile> {
    profiles.iter().map(|p| p.at_speed(speed)).collect()
}

/// The profile of `instance_type` serving `model` among `profiles`.
pub fn lookup<'a>(
    profiles: &'a [Profile],
    instance_type: &str,
    model: &str,
) -> Option<&'a Profile> {
    profiles
        .iter()
        .find(|p| p.instance_type == instance_type && p.model == model)
}

impl Profile {
    /// Decode step time at `batch` running sequences, seconds.
    pub fn decode_step_secs(&self, batch: u32) -> f64 {
        self.decode_base_secs + self.decode_per_seq_secs * batch as f64
    }

    /// This profile on servers that run at `speed` of it: prefill tokens/s × `speed`, decode
    /// step times ÷ `speed`; the KV cache, starts and prices as they are. What a load test
    /// finds when the figures written down were measured elsewhere (another vLLM version,
    /// quantisation, tensor-parallel settings) — `simulate --server-speed`.
    pub fn at_speed(&self, speed: f64) -> Profile {
        Profile {
            prefill_tokens_per_sec: self.prefill_tokens_per_sec * speed,
            decode_base_secs: self.decode_base_secs / speed,
            decode_per_seq_secs: self.decode_per_seq_secs / speed,
            ..self.clone()
        }
    }

    /// Sustainable requests per second of one replica for a mix with these mean lengths:
    /// batch as large as `max_seqs` and the KV cache allow (a sequence holds its prompt and, on
    /// average, half its output), prefill serial.
    pub fn sustainable_rps(&self, mean_prompt: f64, mean_output: f64) -> f64 {
        let per_seq_kv = (mean_prompt + mean_output / 2.0).max(1.0);
        let batch =
            ((self.kv_cache_tokens as f64 / per_seq_kv).floor() as u32).clamp(1, self.max_seqs);
        let secs_per_request = mean_prompt / self.prefill_tokens_per_sec
            + mean_output * self.decode_step_secs(batch) / batch as f64;
        1.0 / secs_per_request
    }
}

/// Load of one minute: how many requests arrived and their token totals.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MinuteLoad {
    /// Requests that arrived.
    pub requests: u64,
    /// Their prompt tokens.
    pub prompt_tokens: u64,
    /// Their output tokens.
    pub output_tokens: u64,
}

impl MinuteLoad {
    /// Adds a request.
    pub fn add(&mut self, r: &Request) {
        self.requests += 1;
        self.prompt_tokens += r.prompt_tokens as u64;
        self.output_tokens += r.output_tokens as u64;
    }

    /// EVALUATION.md's `required_units`: the fewest units serving this minute's load at
    /// `target_utilization` of their sustainable throughput, where one instance of the
    /// `reference` type counts for `weight_units` units.
    pub fn required_units(
        &self,
        reference: &Profile,
        weight_units: u32,
        target_utilization: f64,
    ) -> u32 {
        if self.requests == 0 {
            return 0;
        }
        let n = self.requests as f64;
        let rps =
            reference.sustainable_rps(self.prompt_tokens as f64 / n, self.output_tokens as f64 / n);
        let per_unit = rps / weight_units.max(1) as f64;
        (n / 60.0 / (per_unit * target_utilization)).ceil() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_at_a_share_of_their_profiles_speed_serve_that_share() {
        let all = builtin();
        let g6e = lookup(&all, "g6e.xlarge", "8b").unwrap();
        for (speed, prompt, output) in [
            (0.5, 500.0, 150.0),
            (0.7, 6_000.0, 400.0),
            (1.3, 300.0, 1_200.0),
        ] {
            let slow = g6e.at_speed(speed);
            let ratio = slow.sustainable_rps(prompt, output) / g6e.sustainable_rps(prompt, output);
            assert!((ratio - speed).abs() < 1e-9, "{speed}: {ratio}");
            // Only the speeds change: the KV cache, starts and prices are the type's.
            assert_eq!(
                (
                    slow.kv_cache_tokens,
                    slow.max_seqs,
                    slow.cold_start_median_secs
                ),
                (
                    g6e.kv_cache_tokens,
                    g6e.max_seqs,
                    g6e.cold_start_median_secs
                )
            );
            assert_eq!(slow.on_demand_usd_per_hour, g6e.on_demand_usd_per_hour);
        }
        assert_eq!(g6e.at_speed(1.0), *g6e);
    }

    #[test]
    fn every_issue_type_has_a_profile_and_faster_gpus_serve_more() {
        let all = builtin();
        for t in [
            "g5.xlarge",
            "g6.xlarge",
            "g6e.xlarge",
            "g5.12xlarge",
            "p4d.24xlarge",
        ] {
            assert!(lookup(&all, t, "8b").is_some(), "{t}");
        }
        assert!(lookup(&all, "g5.12xlarge", "70b").is_some());
        assert!(lookup(&all, "p4d.24xlarge", "70b").is_some());
        let rps = |t| lookup(&all, t, "8b").unwrap().sustainable_rps(500.0, 150.0);
        assert!(rps("g6.xlarge") < rps("g5.xlarge"));
        assert!(rps("g5.xlarge") < rps("g6e.xlarge"));
        assert!(rps("g6e.xlarge") < rps("p4d.24xlarge"));
        // Long documents are costlier than chat on the same replica.
        let l4 = lookup(&all, "g6.xlarge", "8b").unwrap();
        assert!(l4.sustainable_rps(6000.0, 400.0) < l4.sustainable_rps(500.0, 150.0) / 4.0);
    }

    #[test]
    fn overrides_replace_figures_and_new_types_need_them_all() {
        let o = |t: &str, prefill: Option<f64>| ProfileOverride {
            instance_type: t.into(),
            model: "8b".into(),
            prefill_tokens_per_sec: prefill,
            on_demand_usd_per_hour: Some(1.0),
            defined_at: "p.toml:3:1".into(),
            ..ProfileOverride::default()
        };
        let all = resolve(&[o("g6.xlarge", Some(4000.0))], None).unwrap();
        let l4 = lookup(&all, "g6.xlarge", "8b").unwrap();
        assert_eq!(l4.prefill_tokens_per_sec, 4000.0);
        assert_eq!(
            (l4.on_demand_usd_per_hour, l4.spot_usd_per_hour),
            (1.0, 0.35)
        );
        assert_eq!(l4.max_seqs, 64, "figures not given stay built-in");
        let e = resolve(&[o("g7.xlarge", Some(9000.0))], None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "p.toml:3:1: profiles: g7.xlarge (8b) has no built-in profile, so every figure is needed; missing: decode_base_ms, decode_per_seq_ms, max_seqs, kv_cache_tokens, cold_start_secs, warm_start_secs"
        );
    }

    #[test]
    fn a_regions_prices_apply_in_that_region_over_the_general_ones() {
        let price = |usd: f64, region: Option<&str>| ProfileOverride {
            instance_type: "g6e.xlarge".into(),
            model: "8b".into(),
            on_demand_usd_per_hour: Some(usd),
            region: region.map(String::from),
            defined_at: "p.toml:1:1".into(),
            ..ProfileOverride::default()
        };
        // Listed region first: order in the file does not matter, the region's table wins.
        let overrides = [price(2.4, Some("eu-west-1")), price(2.0, None)];
        // (policy region, on-demand price of g6e.xlarge)
        let cases = [
            (Some("eu-west-1"), 2.4),
            (Some("us-east-1"), 2.0),
            (None, 2.0),
        ];
        for (region, want) in cases {
            let all = resolve(&overrides, region).unwrap();
            let p = lookup(&all, "g6e.xlarge", "8b").unwrap();
            assert_eq!(p.on_demand_usd_per_hour, want, "{region:?}");
        }
        // A region's table alone leaves the built-in price elsewhere.
        let all = resolve(&[price(2.4, Some("eu-west-1"))], Some("ap-south-1")).unwrap();
        assert_eq!(
            lookup(&all, "g6e.xlarge", "8b")
                .unwrap()
                .on_demand_usd_per_hour,
            1.861
        );
    }

    #[test]
    fn required_units_rounds_up_at_target_utilization() {
        let all = builtin();
        let l4 = lookup(&all, "g6.xlarge", "8b").unwrap();
        let rps = l4.sustainable_rps(500.0, 150.0);
        let load = |n: u64| MinuteLoad {
            requests: n,
            prompt_tokens: 500 * n,
            output_tokens: 150 * n,
        };
        assert_eq!(load(0).required_units(l4, 1, 0.8), 0);
        let one = (rps * 0.8 * 60.0).floor() as u64;
        assert_eq!(load(one).required_units(l4, 1, 0.8), 1);
        assert_eq!(load(one + 1).required_units(l4, 1, 0.8), 2);
    }
}
