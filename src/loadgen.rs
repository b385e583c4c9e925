//! `loadgen`: replays a built-in scenario or a trace against a real OpenAI-compatible endpoint
//! (vLLM, TGI's Messages/Completions API, SGLang) and measures what the simulator predicts:
//! time to first token and failures, per request and per minute.
//!
//! Open loop, as traffic is: each request leaves at its arrival time whether or not earlier
//! ones have answered (a closed loop would slow down with the server and hide the queueing
//! the autoscaler exists for). `max_in_flight` bounds the generator's own memory and sockets:
//! a request that would exceed it is not sent and is counted as `shed` — never silently
//! delayed. The prompt is `prompt_tokens` words (about a token each for common English words
//! with Llama-family tokenizers), the completion is asked for exactly `output_tokens`
//! (`max_tokens`, and vLLM's `ignore_eos`), streamed so the first token's arrival is seen.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::sim::stats::Slo;
use crate::sim::traffic::{Request, Traffic};

/// How to replay.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// The completions endpoint, e.g. `http://10.0.1.7:8000/v1/completions`.
    pub url: String,
    /// The served model's name (the request's `model`).
    pub model: String,
    /// Requests in flight at most; beyond, a request is shed (counted, not sent).
    pub max_in_flight: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// The P95 TTFT objective the SLO block is judged against, seconds.
    pub ttft_slo_secs: f64,
}

/// One request's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Outcome {
    /// When it was due, seconds from the start.
    pub t_s: f64,
    /// Prompt tokens asked (words sent).
    pub prompt_tokens: u32,
    /// Output tokens asked.
    pub output_tokens: u32,
    /// Seconds to the first streamed token (`None`: failed before one came).
    pub ttft_s: Option<f64>,
    /// Mean seconds between streamed tokens after the first (`None` with fewer than two).
    pub itl_s: Option<f64>,
    /// Seconds to the end of the stream.
    pub latency_s: Option<f64>,
    /// `ok`, `http <status>`, `timeout`, `transport`, or `shed`.
    pub result: String,
}

impl Outcome {
    /// A request not answered (yet): `result` until it is.
    fn of(r: &Request, result: &str) -> Self {
        Outcome {
            t_s: r.arrival_secs,
            prompt_tokens: r.prompt_tokens,
            output_tokens: r.output_tokens,
            ttft_s: None,
            itl_s: None,
            latency_s: None,
            result: result.into(),
        }
    }
}

/// The run's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadReport {
    /// Requests due.
    pub requests: usize,
    /// Answered in full.
    pub ok: usize,
    /// Failed (HTTP error, timeout, transport).
    pub failed: usize,
    /// Not sent: `max_in_flight` was reached.
    pub shed: usize,
    /// TTFT quantiles over the requests that got a first token, seconds.
    pub ttft_p50_s: Option<f64>,
    /// 95th percentile.
    pub ttft_p95_s: Option<f64>,
    /// 99th percentile.
    pub ttft_p99_s: Option<f64>,
    /// Median inter-token latency over the requests that streamed two tokens or more.
    pub itl_p50_s: Option<f64>,
    /// The SLO block with `simulate --json`'s keys, over the requests sent (shed ones are the
    /// generator's, not the server's, and are left out).
    pub slo: Slo,
    /// Every request, in arrival order.
    pub outcomes: Vec<Outcome>,
    /// With `--compare-sim`: what the simulator predicts for the same arrivals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted: Option<crate::sim::predict::Prediction>,
}

/// A prompt of `n` words.
pub fn prompt_of(n: u32) -> String {
    const WORDS: [&str; 8] = ["the", "quick", "brown", "fox", "jumps", "over", "a", "dog"];
    (0..n as usize)
        .map(|i| WORDS[i % WORDS.len()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// The quantile `q` of `v` (nearest rank); `None` when empty.
fn quantile(v: &mut [f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let i = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    Some(v[i])
}

/// Sends one request and times it.
async fn one(client: &reqwest::Client, spec: &LoadSpec, r: Request) -> Outcome {
    let chat = spec
        .url
        .trim_end_matches('/')
        .ends_with("/chat/completions");
    let prompt = prompt_of(r.prompt_tokens);
    let body = if chat {
        serde_json::json!({
            "model": spec.model,
            "messages": [{ "role": "user", "content": prompt }],
            "max_tokens": r.output_tokens,
            "ignore_eos": true,
            "stream": true,
        })
    } else {
        serde_json::json!({
            "model": spec.model,
            "prompt": prompt,
            "max_tokens": r.output_tokens,
            "ignore_eos": true,
            "stream": true,
        })
    };
    let start = Instant::now();
    let mut out = Outcome::of(&r, "ok");
    let failed = |e: reqwest::Error| {
        if e.is_timeout() {
            "timeout"
        } else {
            "transport"
        }
    };
    let sent = client
        .post(&spec.url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    let mut resp = match sent {
        Ok(resp) if resp.status().is_success() => resp,
        Ok(resp) => {
            out.result = format!("http {}", resp.status().as_u16());
            return out;
        }
        Err(e) => {
            out.result = failed(e).into();
            return out;
        }
    };
    // Server-sent events, one JSON chunk per `data:` line; a token is a chunk with text
    // (a chat stream's first chunk carries only the role). Lines may split across reads.
    let mut pending = String::new();
    let mut token_at: Vec<f64> = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(bytes)) => {
                pending.push_str(&String::from_utf8_lossy(&bytes));
                while let Some(end) = pending.find('\n') {
                    let line: String = pending.drain(..=end).collect();
                    if has_token(line.trim(), chat) {
                        token_at.push(start.elapsed().as_secs_f64());
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                out.result = failed(e).into();
                out.ttft_s = token_at.first().copied();
                return out;
            }
        }
    }
    out.latency_s = Some(start.elapsed().as_secs_f64());
    out.ttft_s = token_at.first().copied();
    out.itl_s = (token_at.len() >= 2)
        .then(|| (token_at[token_at.len() - 1] - token_at[0]) / (token_at.len() - 1) as f64);
    if out.ttft_s.is_none() {
        out.result = "no tokens".into();
    }
    out
}

/// Whether an event-stream line carries generated text.
fn has_token(line: &str, chat: bool) -> bool {
    let Some(data) = line.strip_prefix("data:").map(str::trim) else {
        return false;
    };
    if data == "[DONE]" {
        return false;
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
        return false;
    };
    let choice = &v["choices"][0];
    let text = if chat {
        choice["delta"]["content"].as_str()
    } else {
        choice["text"].as_str()
    };
    text.is_some_and(|t| !t.is_empty())
}

/// Replays `traffic` against `spec.url`, calling `progress(done, due)` as requests finish.
pub async fn run(
    traffic: &Traffic,
    spec: LoadSpec,
    progress: &mut dyn FnMut(usize, usize),
) -> LoadReport {
    let client = reqwest::Client::builder()
        .timeout(spec.timeout)
        .build()
        .unwrap_or_default();
    let spec = Arc::new(spec);
    let gate = Arc::new(tokio::sync::Semaphore::new(spec.max_in_flight.max(1)));
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut shed = Vec::new();
    let mut finished = Vec::new();
    let mut due = 0;
    for r in traffic.requests() {
        due += 1;
        tokio::time::sleep_until(start + Duration::from_secs_f64(r.arrival_secs.max(0.0))).await;
        let Ok(permit) = gate.clone().try_acquire_owned() else {
            shed.push(Outcome::of(&r, "shed"));
            continue;
        };
        let (client, spec) = (client.clone(), spec.clone());
        tasks.spawn(async move {
            let o = one(&client, &spec, r).await;
            drop(permit);
            o
        });
        // Collect what has finished, so a long run does not hold every task until the end.
        while let Some(res) = tasks.try_join_next() {
            finished.extend(res.ok());
            progress(finished.len(), due);
        }
    }
    while let Some(res) = tasks.join_next().await {
        finished.extend(res.ok());
        progress(finished.len(), due);
    }
    let mut outcomes = shed;
    outcomes.append(&mut finished);
    outcomes.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    let slo = slo_of(&outcomes, spec.ttft_slo_secs);
    let mut itls: Vec<f64> = outcomes.iter().filter_map(|o| o.itl_s).collect();
    let mut ttfts: Vec<f64> = outcomes.iter().filter_map(|o| o.ttft_s).collect();
    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    LoadReport {
        requests: outcomes.len(),
        ok: count(&|o| o.result == "ok"),
        failed: count(&|o| o.result != "ok" && o.result != "shed"),
        shed: count(&|o| o.result == "shed"),
        ttft_p50_s: quantile(&mut ttfts, 0.5),
        ttft_p95_s: quantile(&mut ttfts, 0.95),
        ttft_p99_s: quantile(&mut ttfts, 0.99),
        itl_p50_s: quantile(&mut itls, 0.5),
        slo,
        outcomes,
        predicted: None,
    }
}

/// The sent requests by minute of arrival.
fn by_minute(outcomes: &[Outcome]) -> Vec<Vec<&Outcome>> {
    let mut minutes: Vec<Vec<&Outcome>> = Vec::new();
    for o in outcomes.iter().filter(|o| o.result != "shed") {
        let m = (o.t_s / 60.0).floor().max(0.0) as usize;
        if minutes.len() <= m {
            minutes.resize_with(m + 1, Vec::new);
        }
        minutes[m].push(o);
    }
    minutes
}

/// The SLO block as `simulate` computes it: availability = minutes in which ≥ 99 % of the
/// requests succeeded; violating minutes = minutes whose own P95 TTFT is over the objective.
pub fn slo_of(outcomes: &[Outcome], ttft_slo_secs: f64) -> Slo {
    let minutes = by_minute(outcomes);
    let n = minutes.len().max(1) as f64;
    let good = minutes
        .iter()
        .filter(|m| {
            let ok = m.iter().filter(|o| o.result == "ok").count();
            ok as f64 >= 0.99 * m.len() as f64
        })
        .count();
    let violating = minutes
        .iter()
        .filter(|m| {
            let mut t: Vec<f64> = m.iter().filter_map(|o| o.ttft_s).collect();
            quantile(&mut t, 0.95).is_some_and(|p| p > ttft_slo_secs)
        })
        .count();
    let sent: Vec<&Outcome> = minutes.iter().flatten().copied().collect();
    let failed = sent.iter().filter(|o| o.result != "ok").count();
    let mut ttfts: Vec<f64> = sent.iter().filter_map(|o| o.ttft_s).collect();
    let p95 = quantile(&mut ttfts, 0.95).unwrap_or(0.0);
    let availability = good as f64 / n;
    let error_rate = failed as f64 / sent.len().max(1) as f64;
    Slo {
        availability,
        error_rate,
        p95_ttft_s: p95,
        p99_ttft_s: quantile(&mut ttfts, 0.99).unwrap_or(0.0),
        ttft_violation_minutes: violating as f64 / n,
        met: availability > 0.999 && error_rate < 0.001 && p95 < ttft_slo_secs,
    }
}

/// The per-minute CSV: `minute,requests,ok,failed,ttft_p95_s`.
pub fn minutes_csv(r: &LoadReport) -> String {
    let mut s = String::from("minute,requests,ok,failed,ttft_p95_s\n");
    for (m, list) in by_minute(&r.outcomes).iter().enumerate() {
        let mut t: Vec<f64> = list.iter().filter_map(|o| o.ttft_s).collect();
        let ok = list.iter().filter(|o| o.result == "ok").count();
        s.push_str(&format!(
            "{m},{},{ok},{},{}\n",
            list.len(),
            list.len() - ok,
            quantile(&mut t, 0.95).map_or(String::new(), |v| format!("{v:.4}"))
        ));
    }
    s
}

/// The per-request CSV: `t_s,prompt_tokens,output_tokens,ttft_s,itl_s,latency_s,result`.
pub fn csv(r: &LoadReport) -> String {
    let mut s = String::from("t_s,prompt_tokens,output_tokens,ttft_s,itl_s,latency_s,result\n");
    for o in &r.outcomes {
        let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
        s.push_str(&format!(
            "{:.3},{},{},{},{},{},{}\n",
            o.t_s,
            o.prompt_tokens,
            o.output_tokens,
            f(o.ttft_s),
            f(o.itl_s),
            f(o.latency_s),
            o.result
        ));
    }
    s
}

/// The measured TTFT at percentiles 1 … 99 (empty when nothing answered).
fn ttft_percentiles(r: &LoadReport) -> Vec<f64> {
    let mut t: Vec<f64> = r.outcomes.iter().filter_map(|o| o.ttft_s).collect();
    (1..=99)
        .filter_map(|p| quantile(&mut t, f64::from(p) / 100.0))
        .collect()
}

/// The prefill throughput the measurements imply: the median over answered requests of
/// prompt tokens ÷ TTFT. At low load (no queueing) that is one server's prefill rate, the
/// profile's `prefill_tokens_per_sec`; under load it reads low.
pub fn implied_prefill_tokens_per_sec(r: &LoadReport) -> Option<f64> {
    let mut rates: Vec<f64> = r
        .outcomes
        .iter()
        .filter(|o| o.result == "ok")
        .filter_map(|o| {
            o.ttft_s
                .filter(|t| *t > 0.0)
                .map(|t| f64::from(o.prompt_tokens) / t)
        })
        .collect();
    quantile(&mut rates, 0.5)
}

/// Measured beside predicted, as `loadgen --compare-sim` prints it, with the profile keys to
/// change when they disagree.
pub fn comparison(
    r: &LoadReport,
    p: &crate::sim::predict::Prediction,
    profile: &crate::sim::perf::Profile,
) -> String {
    let secs = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.3} s"));
    let ratio = |m: Option<f64>, p: Option<f64>| match (m, p) {
        (Some(m), Some(p)) if p > 0.0 => format!("{:.2}", m / p),
        _ => "—".into(),
    };
    let mut out = format!(
        "measured vs the simulator ({} × {} {}):\n{:<22}{:>12}{:>12}{:>16}\n",
        p.servers, p.instance_type, profile.model, "", "measured", "predicted", "measured÷pred."
    );
    for (name, m, q) in [
        ("TTFT p50", r.ttft_p50_s, p.ttft_p50_s),
        ("TTFT p95", r.ttft_p95_s, p.ttft_p95_s),
        ("TTFT p99", r.ttft_p99_s, p.ttft_p99_s),
    ] {
        out += &format!(
            "{name:<22}{:>12}{:>12}{:>16}\n",
            secs(m),
            secs(q),
            ratio(m, q)
        );
    }
    out += &format!(
        "{:<22}{:>12.5}{:>12.5}\n{:<22}{:>12.4}{:>12.4}\n{:<22}{:>12.4}{:>12.4}\n",
        "error rate",
        r.slo.error_rate,
        p.slo.error_rate,
        "availability",
        r.slo.availability,
        p.slo.availability,
        "violating minutes",
        r.slo.ttft_violation_minutes,
        p.slo.ttft_violation_minutes
    );
    if let Some(rate) = implied_prefill_tokens_per_sec(r) {
        out += &format!(
            "prefill: {rate:.0} tokens/s implied (prompt ÷ TTFT, median; a server's rate at low load), profile {:.0}\n",
            profile.prefill_tokens_per_sec
        );
    }
    if let Some(itl) = r.itl_p50_s {
        out += &format!(
            "decode: inter-token p50 {:.1} ms measured; profile step {:.1} ms at batch 1, {:.1} ms at {}\n",
            itl * 1000.0,
            profile.decode_step_secs(1) * 1000.0,
            profile.decode_step_secs(profile.max_seqs) * 1000.0,
            profile.max_seqs
        );
    }
    let off = match (r.ttft_p50_s, p.ttft_p50_s) {
        (Some(m), Some(q)) if q > 0.0 => (m / q - 1.0).abs() > 0.2,
        _ => false,
    };
    if off {
        out += &format!(
            "the profile is more than 20 % off at the median: override it in the policy file —\n  [[profiles]]\n  instance_type = \"{}\"\n  model = \"{}\"\n  prefill_tokens_per_sec = …   # the implied rate above, measured at low load\n",
            profile.instance_type, profile.model
        );
    }
    out
}

/// The HTML report: the summary (and the comparison), then per-minute load and failures, per-
/// minute P95 TTFT against the SLO (and the prediction's), and the TTFT quantile curve.
pub fn html(title: &str, summary: &str, r: &LoadReport, ttft_slo_secs: f64) -> String {
    use crate::sim::chart::{line_chart, page, Series, PALETTE};
    let minutes = by_minute(&r.outcomes);
    let x: Vec<f64> = (0..minutes.len()).map(|m| m as f64).collect();
    let sent: Vec<f64> = minutes.iter().map(|m| m.len() as f64 / 60.0).collect();
    let failed: Vec<f64> = minutes
        .iter()
        .map(|m| m.iter().filter(|o| o.result != "ok").count() as f64 / 60.0)
        .collect();
    let p95: Vec<f64> = minutes
        .iter()
        .map(|m| {
            let mut t: Vec<f64> = m.iter().filter_map(|o| o.ttft_s).collect();
            quantile(&mut t, 0.95).unwrap_or(f64::NAN)
        })
        .collect();
    let predicted_p95: Vec<f64> = r.predicted.as_ref().map_or_else(Vec::new, |p| {
        (0..minutes.len())
            .map(|m| {
                p.minutes_ttft_p95_s
                    .get(m)
                    .copied()
                    .flatten()
                    .unwrap_or(f64::NAN)
            })
            .collect()
    });
    let mut p95_series: Vec<Series<'_>> = vec![("measured p95", PALETTE[0], &p95)];
    if r.predicted.is_some() {
        p95_series.push(("predicted p95", PALETTE[1], &predicted_p95));
    }
    let measured_q = ttft_percentiles(r);
    let pct: Vec<f64> = (1..=measured_q.len()).map(|p| p as f64).collect();
    let mut q_series: Vec<Series<'_>> = vec![("measured", PALETTE[0], &measured_q)];
    if let Some(p) = &r.predicted {
        if p.ttft_percentiles_s.len() == measured_q.len() {
            q_series.push(("predicted", PALETTE[1], &p.ttft_percentiles_s));
        }
    }
    let charts = [
        line_chart(
            "Requests sent and failed",
            &x,
            &[
                ("sent/s", PALETTE[0], &sent),
                ("failed/s", PALETTE[1], &failed),
            ],
            "minute",
            "requests/s",
            None,
        ),
        line_chart(
            "P95 TTFT per minute; dashed: the SLO",
            &x,
            &p95_series,
            "minute",
            "seconds",
            Some(ttft_slo_secs),
        ),
        line_chart(
            "TTFT by percentile over the run",
            &pct,
            &q_series,
            "percentile",
            "seconds",
            Some(ttft_slo_secs),
        ),
    ];
    page(title, summary, &charts)
}
