//! `probe`: what llm-autoscaler would read from one inference server, before trusting it with a
//! fleet — which series each signal came from (vLLM V1 or V0 names, TGI, dcgm-exporter), the
//! values, the token rates and the TTFT quantiles between two scrapes, and, with a policy,
//! whether each of its per-instance metrics is there.
//!
//! Pure: it reads expositions the caller scraped ([`crate::scrape::Scraper::scrape_url`]), the
//! same parser and the same recipes the daemon uses, so what it shows is what the daemon reads.

use std::fmt::Write as _;

use serde::Serialize;

use crate::config::{MetricSource, MetricSpec, Signal};
use crate::scrape::{self, Exposition};

/// One signal as read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reading {
    /// The signal (its policy name).
    pub signal: &'static str,
    /// The series it came from (`a + b` when summed).
    pub series: String,
    /// Its value, in the signal's unit.
    pub value: f64,
}

/// The TTFT histogram between two scrapes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TtftWindow {
    /// The histogram's name.
    pub series: &'static str,
    /// Requests that got their first token between the scrapes.
    pub observations: f64,
    /// Median, seconds (`None` without observations).
    pub p50_secs: Option<f64>,
    /// 95th percentile, seconds.
    pub p95_secs: Option<f64>,
}

/// Whether a policy metric can be read from this server.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyCheck {
    /// The metric's name in the policy.
    pub name: String,
    /// What it reads (`signal`, or the named series).
    pub reads: String,
    /// Its value, or `None`: the server does not expose it.
    pub value: Option<f64>,
}

/// What `probe` found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProbeReport {
    /// Which server the names say it is.
    pub server: &'static str,
    /// Samples read, and lines that could not be.
    pub samples: usize,
    /// Unreadable lines.
    pub bad_lines: usize,
    /// The per-instance signals with a default recipe that this server feeds.
    pub readings: Vec<Reading>,
    /// Signals it does not feed (their names).
    pub missing: Vec<&'static str>,
    /// Prompt and generated tokens per second and requests per second between the scrapes.
    pub rates: Option<(f64, f64, f64)>,
    /// The TTFT histogram between the scrapes.
    pub ttft: Option<TtftWindow>,
    /// With a policy: each per-instance metric.
    pub policy: Vec<PolicyCheck>,
}

/// Which server an exposition comes from, by the names it uses.
pub fn identify(e: &Exposition) -> &'static str {
    let has = |n: &str| e.samples.iter().any(|s| s.name == n);
    let prefixed = |p: &str| e.samples.iter().any(|s| s.name.starts_with(p));
    if has("vllm:kv_cache_usage_perc") {
        "vLLM (V1 names)"
    } else if has("vllm:gpu_cache_usage_perc") {
        "vLLM (V0 names)"
    } else if prefixed("vllm:") {
        "vLLM"
    } else if prefixed("tgi_") {
        "text-generation-inference"
    } else if prefixed("sglang:") {
        "SGLang"
    } else if prefixed("DCGM_FI_") {
        "dcgm-exporter"
    } else {
        "unknown (no vLLM, TGI, SGLang or DCGM names)"
    }
}

/// The signals with a default recipe, in table order.
const SIGNALS: [Signal; 4] = [
    Signal::QueueDepth,
    Signal::Concurrency,
    Signal::KvCacheUsage,
    Signal::GpuUtilization,
];

/// Reads `first` and, when given, `later` scraped `secs` after it.
pub fn report(
    first: &Exposition,
    later: Option<(&Exposition, f64)>,
    policy: &[MetricSpec],
) -> ProbeReport {
    let now = later.map_or(first, |(l, _)| l);
    let mut readings = Vec::new();
    let mut missing = Vec::new();
    for signal in SIGNALS {
        match (
            scrape::recipe_series(now, signal),
            scrape::instance_value(now, signal, None, None),
        ) {
            (Some(series), Some(value)) => readings.push(Reading {
                signal: signal.name(),
                series: series.join(" + "),
                value,
            }),
            _ => missing.push(signal.name()),
        }
    }
    let at = crate::model::Timestamp(0);
    let counters = |e: &Exposition| scrape::counter_reading(e, at);
    let rates = later.and_then(|(l, secs)| {
        let (a, b) = (counters(first)?, counters(l)?);
        // Per series, a counter that went down counted from zero, as the daemon does.
        (secs > 0.0).then(|| {
            (
                b.prompt_tokens.increase_since(&a.prompt_tokens) / secs,
                b.generation_tokens.increase_since(&a.generation_tokens) / secs,
                b.finished.increase_since(&a.finished) / secs,
            )
        })
    });
    // vLLM's histogram; TGI records no time to first token (v3.3.7's router and backend).
    let name = scrape::TTFT_HISTOGRAM;
    let ttft = now.histograms(name).map(|now_h| {
        let h = match later {
            Some(_) => now_h.since(&first.histograms(name).unwrap_or_default()),
            None => now_h.total(),
        };
        TtftWindow {
            series: name,
            observations: h.count(),
            p50_secs: h.quantile(0.5),
            p95_secs: h.quantile(0.95),
        }
    });
    let policy = policy
        .iter()
        .filter(|m| m.signal.per_instance())
        .map(|m| {
            let named = match &m.source {
                Some(MetricSource::Scrape { metric, scale, .. }) => Some((metric.clone(), *scale)),
                _ => None,
            };
            let (metric, scale) = named.unwrap_or((None, None));
            // The rates and token_work come from the work counters, not a gauge.
            let from_counters = metric.is_none()
                && matches!(
                    m.signal,
                    Signal::TokenWork
                        | Signal::PromptTokensRate
                        | Signal::GenerationTokensRate
                        | Signal::RequestRate
                );
            let (reads, value) = if from_counters {
                let c = counters(now);
                if m.signal == Signal::RequestRate {
                    (
                        "the finished-requests counter".to_string(),
                        scrape::finished_requests(now),
                    )
                } else {
                    (
                        "the prompt and generated token counters".to_string(),
                        c.filter(|c| c.tokens)
                            .map(|c| c.prompt_tokens.total() + c.generation_tokens.total()),
                    )
                }
            } else {
                (
                    metric
                        .clone()
                        .unwrap_or_else(|| m.signal.name().to_string()),
                    scrape::instance_value(now, m.signal, metric.as_deref(), scale),
                )
            };
            PolicyCheck {
                name: m.name.clone(),
                reads,
                value,
            }
        })
        .collect();
    ProbeReport {
        server: identify(now),
        samples: now.samples.len(),
        bad_lines: now.bad_lines,
        readings,
        missing,
        rates,
        ttft,
        policy,
    }
}

/// The report as a table for a terminal.
pub fn render(r: &ProbeReport, interval_secs: Option<f64>) -> String {
    let mut s = format!(
        "server: {} · {} samples{}\n\n{:<16} {:>12}  from\n",
        r.server,
        r.samples,
        if r.bad_lines > 0 {
            format!(", {} unreadable lines", r.bad_lines)
        } else {
            String::new()
        },
        "signal",
        "value"
    );
    for x in &r.readings {
        let _ = writeln!(s, "{:<16} {:>12.3}  {}", x.signal, x.value, x.series);
    }
    for m in &r.missing {
        let _ = writeln!(s, "{m:<16} {:>12}  not exposed by this server", "—");
    }
    match (r.rates, interval_secs) {
        (Some((p, g, f)), Some(secs)) => {
            let _ = writeln!(
                s,
                "\nover {secs:.0} s: prompt {p:.1} tokens/s, generated {g:.1} tokens/s, {f:.2} requests/s finished"
            );
        }
        (None, Some(_)) => s.push_str(
            "\nno work counters (vllm:prompt_tokens_total, tgi_request_input_length): token_work and the token rates cannot be read\n",
        ),
        _ => s.push_str("\n(one scrape: give --interval-secs for token rates and TTFT between two)\n"),
    }
    match &r.ttft {
        Some(t) => {
            let q = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.3} s"));
            let _ = writeln!(
                s,
                "TTFT ({}): {:.0} requests, p50 {}, p95 {}",
                t.series,
                t.observations,
                q(t.p50_secs),
                q(t.p95_secs)
            );
        }
        None => s.push_str("TTFT: no histogram (TGI records none; ttft_p95_secs and the SLO feedback need vLLM's vllm:time_to_first_token_seconds)\n"),
    }
    if !r.policy.is_empty() {
        s.push_str("\nthe policy's per-instance metrics:\n");
        for c in &r.policy {
            let _ = match c.value {
                Some(v) => writeln!(s, "  ok       {:<24} {} = {v:.3}", c.name, c.reads),
                None => writeln!(
                    s,
                    "  MISSING  {:<24} {} — no samples from this server: while missing, it blocks every scale-down",
                    c.name, c.reads
                ),
            };
        }
    }
    s
}
