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
    /// Seconds to the end of the stream.
    pub latency_s: Option<f64>,
    /// `ok`, `http <status>`, `timeout`, `transport`, or `shed`.
    pub result: String,
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
    /// Every request, in arrival order.
    pub outcomes: Vec<Outcome>,
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
    let body = serde_json::json!({
        "model": spec.model,
        "prompt": prompt_of(r.prompt_tokens),
        "max_tokens": r.output_tokens,
        "ignore_eos": true,
        "stream": true,
    });
    let start = Instant::now();
    let mut out = Outcome {
        t_s: r.arrival_secs,
        prompt_tokens: r.prompt_tokens,
        output_tokens: r.output_tokens,
        ttft_s: None,
        latency_s: None,
        result: "ok".into(),
    };
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
    // Server-sent events: the first `data:` line that is not `[DONE]` carries the first token.
    loop {
        match resp.chunk().await {
            Ok(Some(bytes)) => {
                if out.ttft_s.is_none()
                    && String::from_utf8_lossy(&bytes)
                        .lines()
                        .any(|l| l.starts_with("data:") && !l.contains("[DONE]"))
                {
                    out.ttft_s = Some(start.elapsed().as_secs_f64());
                }
            }
            Ok(None) => break,
            Err(e) => {
                out.result = failed(e).into();
                return out;
            }
        }
    }
    out.latency_s = Some(start.elapsed().as_secs_f64());
    if out.ttft_s.is_none() {
        out.result = "no tokens".into();
    }
    out
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
            shed.push(Outcome {
                t_s: r.arrival_secs,
                prompt_tokens: r.prompt_tokens,
                output_tokens: r.output_tokens,
                ttft_s: None,
                latency_s: None,
                result: "shed".into(),
            });
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
        outcomes,
    }
}

/// The per-request CSV: `t_s,prompt_tokens,output_tokens,ttft_s,latency_s,result`.
pub fn csv(r: &LoadReport) -> String {
    let mut s = String::from("t_s,prompt_tokens,output_tokens,ttft_s,latency_s,result\n");
    for o in &r.outcomes {
        let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
        s.push_str(&format!(
            "{:.3},{},{},{},{},{}\n",
            o.t_s,
            o.prompt_tokens,
            o.output_tokens,
            f(o.ttft_s),
            f(o.latency_s),
            o.result
        ));
    }
    s
}
