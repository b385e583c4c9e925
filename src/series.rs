//! Which series of which inference server each per-instance signal reads — vLLM's names
//! (V1 first, then V0), then TGI's, then DCGM's — in one place: the scraper computes values
//! with it (`scrape`), `probe` shows which series matched, and `export` writes the PromQL a
//! Prometheus scraping the same servers would use. Pure: names and arithmetic, no I/O.

use crate::config::Signal;

/// How a per-instance signal is computed from an exposition when the policy names no metric.
pub(crate) struct Recipe {
    /// Summed; the first must be present for the recipe to apply.
    pub(crate) terms: &'static [&'static str],
    /// Multiplier (100 for 0–1 fractions).
    pub(crate) scale: f64,
    /// Averaged over label sets instead of summed (per-GPU utilisation, per-engine KV use).
    pub(crate) mean: bool,
}

/// vLLM's names first, then TGI's.
pub(crate) fn recipes(signal: Signal) -> &'static [Recipe] {
    match signal {
        // The V1 name first: vLLM 0.10 still sends the deprecated V0 name beside it (the same
        // value), and a V0 server sends only that.
        Signal::KvCacheUsage => &[
            Recipe {
                terms: &["vllm:kv_cache_usage_perc"],
                scale: 100.0,
                mean: true,
            },
            Recipe {
                terms: &["vllm:gpu_cache_usage_perc"],
                scale: 100.0,
                mean: true,
            },
        ],
        Signal::QueueDepth => &[
            Recipe {
                terms: &["vllm:num_requests_waiting"],
                scale: 1.0,
                mean: false,
            },
            Recipe {
                terms: &["tgi_queue_size"],
                scale: 1.0,
                mean: false,
            },
        ],
        Signal::Concurrency => &[
            Recipe {
                terms: &["vllm:num_requests_running", "vllm:num_requests_waiting"],
                scale: 1.0,
                mean: false,
            },
            Recipe {
                terms: &["tgi_batch_current_size", "tgi_queue_size"],
                scale: 1.0,
                mean: false,
            },
        ],
        Signal::GpuUtilization => &[Recipe {
            terms: &["DCGM_FI_DEV_GPU_UTIL"],
            scale: 1.0,
            mean: true,
        }],
        _ => &[],
    }
}

/// Whether a per-instance signal can be read from an inference server without naming a
/// metric: a default recipe's series, or the work counters (the rates and `token_work`).
/// CPU and memory have none — a vLLM or TGI server does not expose them — so on AWS they need
/// an exporter's metric named in the policy.
pub fn has_default(signal: Signal) -> bool {
    matches!(
        signal,
        Signal::RequestRate
            | Signal::PromptTokensRate
            | Signal::GenerationTokensRate
            | Signal::TokenWork
    ) || !recipes(signal).is_empty()
}

/// vLLM's counter of requests finished.
pub const VLLM_REQUEST_SUCCESS: &str = "vllm:request_success_total";
/// vLLM's counter of prompt tokens prefilled.
pub const VLLM_PROMPT_TOKENS: &str = "vllm:prompt_tokens_total";
/// vLLM's counter of tokens generated.
pub const VLLM_GENERATION_TOKENS: &str = "vllm:generation_tokens_total";

/// The PromQL that sums a per-instance signal over a fleet's servers from vLLM's series — what
/// a Prometheus scraping the servers would use in place of our scrape (for `export`) — and
/// the series it reads: the default recipe's series, or the work counter's rate over a minute.
/// `None`
/// for a signal read from several counters (`token_work`) or without a default.
pub fn fleet_promql(signal: Signal) -> Option<(String, &'static [&'static str])> {
    let counter = match signal {
        Signal::RequestRate => Some(&[VLLM_REQUEST_SUCCESS]),
        Signal::PromptTokensRate => Some(&[VLLM_PROMPT_TOKENS]),
        Signal::GenerationTokensRate => Some(&[VLLM_GENERATION_TOKENS]),
        _ => None,
    };
    if let Some(series) = counter {
        return Some((format!("sum(rate({}[1m]))", series[0]), series));
    }
    let r = recipes(signal).first()?;
    // A recipe's mean is per server (its GPUs or engines): averaged by scrape target
    // (Prometheus's `instance` label), then summed over the servers.
    let sum = r
        .terms
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if i == 0 && r.mean {
                format!("sum(avg by (instance) ({t}))")
            } else {
                format!("sum({t})")
            }
        })
        .collect::<Vec<_>>()
        .join(" + ");
    let query = if r.scale == 1.0 {
        sum
    } else {
        format!("({sum}) * {}", r.scale)
    };
    Some((query, r.terms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_signal_with_a_default_has_its_fleet_query() {
        // (signal, query)
        let cases = [
            (Signal::QueueDepth, Some("sum(vllm:num_requests_waiting)")),
            (
                Signal::Concurrency,
                Some("sum(vllm:num_requests_running) + sum(vllm:num_requests_waiting)"),
            ),
            (
                Signal::KvCacheUsage,
                Some("(sum(avg by (instance) (vllm:kv_cache_usage_perc))) * 100"),
            ),
            (
                Signal::GpuUtilization,
                Some("sum(avg by (instance) (DCGM_FI_DEV_GPU_UTIL))"),
            ),
            (
                Signal::RequestRate,
                Some("sum(rate(vllm:request_success_total[1m]))"),
            ),
            (
                Signal::PromptTokensRate,
                Some("sum(rate(vllm:prompt_tokens_total[1m]))"),
            ),
            (
                Signal::GenerationTokensRate,
                Some("sum(rate(vllm:generation_tokens_total[1m]))"),
            ),
            (Signal::TokenWork, None),
            (Signal::CpuUtilization, None),
        ];
        for (signal, want) in cases {
            assert_eq!(
                fleet_promql(signal).map(|(q, _)| q).as_deref(),
                want,
                "{signal:?}"
            );
        }
    }
}
