//! The inference servers' own metrics: the Prometheus text exposition of each vLLM or TGI
//! instance (parsed here), the signals derived from it, and instant PromQL queries against an
//! existing Prometheus server.
//!
//! Edge code (HTTP through `reqwest`). The parser is hand-written on purpose: vLLM's metric
//! names contain colons (`vllm:num_requests_waiting`), which the `prometheus-parse` crate's
//! name pattern (`\w+`) silently drops.

use std::time::Duration;

use crate::config::Signal;

/// Why a scrape or a query failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScrapeError {
    /// The target did not answer within the timeout.
    #[error("{url}: no answer within {timeout_ms} ms")]
    Timeout {
        /// What was asked.
        url: String,
        /// The limit, milliseconds.
        timeout_ms: u64,
    },
    /// Connection refused, reset, DNS, …
    #[error("{url}: {reason}")]
    Transport {
        /// What was asked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The target answered with an HTTP error.
    #[error("{url}: HTTP {status}")]
    Status {
        /// What was asked.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// A PromQL answer that is not one number.
    #[error("{url}: {reason}")]
    BadAnswer {
        /// What was asked.
        url: String,
        /// What is wrong with the answer.
        reason: String,
    },
}

/// One sample line of an exposition.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpSample {
    /// Metric name, e.g. `vllm:num_requests_waiting` or `x_bucket`.
    pub name: String,
    /// Label pairs in written order.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// A parsed exposition: its samples, and how many lines could not be read (counted, skipped).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition {
    /// Every sample line that parsed.
    pub samples: Vec<ExpSample>,
    /// Lines that were neither comments, blank, nor samples.
    pub bad_lines: usize,
}

/// Parses the Prometheus text format (0.0.4). Malformed lines are counted and skipped, never
/// fatal: one odd line from an exporter must not blind the autoscaler to the rest.
pub fn parse(text: &str) -> Exposition {
    let mut out = Exposition::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Some(s) => out.samples.push(s),
            None => out.bad_lines += 1,
        }
    }
    out
}

fn parse_line(line: &str) -> Option<ExpSample> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = parse_labels(r, &mut labels)?;
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse::<f64>().ok()?,
    };
    Some(ExpSample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Reads `k="v",k2="v2"}` and returns what follows the closing brace.
fn parse_labels<'a>(mut s: &'a str, out: &mut Vec<(String, String)>) -> Option<&'a str> {
    loop {
        s = s.trim_start();
        if let Some(r) = s.strip_prefix('}') {
            return Some(r);
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_string();
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        out.push((key, value));
        s = s[end + 1..].trim_start();
        s = s.strip_prefix(',').unwrap_or(s);
    }
}

impl Exposition {
    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a ExpSample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The sum of `name` over its label sets; `None` when the exposition lacks it.
    pub fn sum(&self, name: &str) -> Option<f64> {
        let mut found = false;
        let total = self.named(name).fold(0.0, |acc, s| {
            found = true;
            acc + s.value
        });
        found.then_some(total)
    }

    /// The mean of `name` over its label sets (per-GPU or per-engine gauges).
    pub fn mean(&self, name: &str) -> Option<f64> {
        let n = self.named(name).count();
        self.sum(name).map(|t| t / n as f64)
    }

    /// The histogram `name` (from its `name_bucket` series), summed over label sets.
    pub fn histogram(&self, name: &str) -> Option<Histogram> {
        let bucket = format!("{name}_bucket");
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for s in self.named(&bucket) {
            let le = s.labels.iter().find(|(k, _)| k == "le")?.1.as_str();
            let le = match le {
                "+Inf" | "Inf" => f64::INFINITY,
                v => v.parse::<f64>().ok()?,
            };
            buckets.push((le, s.value));
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Several label sets (engines, models) share the bounds: add them up.
        buckets.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 += later.1;
            }
            same
        });
        (!buckets.is_empty()).then_some(Histogram { buckets })
    }
}

/// A cumulative histogram: `(upper bound, observations ≤ bound)`, bounds ascending, the last
/// `+Inf`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// Buckets in ascending order of their upper bound.
    pub buckets: Vec<(f64, f64)>,
}

impl Histogram {
    /// Observations in the histogram.
    pub fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |b| b.1)
    }

    /// What was observed since `earlier` (the same series scraped before). A counter reset
    /// (the server restarted) makes the whole current histogram new.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let same_shape = earlier.buckets.len() == self.buckets.len()
            && earlier
                .buckets
                .iter()
                .zip(&self.buckets)
                .all(|(a, b)| a.0 == b.0 && a.1 <= b.1);
        if !same_shape {
            return self.clone();
        }
        Histogram {
            buckets: self
                .buckets
                .iter()
                .zip(&earlier.buckets)
                .map(|(now, before)| (now.0, now.1 - before.1))
                .collect(),
        }
    }

    /// Adds another histogram with the same bounds (several instances' observations).
    pub fn merge(&mut self, other: &Histogram) {
        if self.buckets.is_empty() {
            self.buckets = other.buckets.clone();
        } else if self.buckets.len() == other.buckets.len() {
            for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
                a.1 += b.1;
            }
        }
    }

    /// The `q` quantile (0–1) as Prometheus' `histogram_quantile` computes it: linear inside
    /// the bucket that holds it; in the `+Inf` bucket, the highest finite bound. `None` without
    /// observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut prev = (0.0, 0.0);
        for &(le, c) in &self.buckets {
            if c >= rank {
                if le.is_infinite() {
                    return Some(prev.0);
                }
                let in_bucket = c - prev.1;
                let frac = if in_bucket > 0.0 {
                    (rank - prev.1) / in_bucket
                } else {
                    1.0
                };
                return Some(prev.0 + (le - prev.0) * frac);
            }
            prev = (le, c);
        }
        Some(prev.0)
    }
}

/// How a per-instance signal is computed from an exposition when the policy names no metric.
struct Recipe {
    /// Summed; the first must be present for the recipe to apply.
    terms: &'static [&'static str],
    /// Multiplier (100 for 0–1 fractions).
    scale: f64,
    /// Averaged over label sets instead of summed (per-GPU utilisation, per-engine KV use).
    mean: bool,
}

/// vLLM's names first, then TGI's.
fn recipes(signal: Signal) -> &'static [Recipe] {
    match signal {
        Signal::KvCacheUsage => &[
            Recipe {
                terms: &["vllm:gpu_cache_usage_perc"],
                scale: 100.0,
                mean: true,
            },
            Recipe {
                terms: &["vllm:kv_cache_usage_perc"],
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

/// The TTFT histogram's name (vLLM), seconds.
pub const TTFT_HISTOGRAM: &str = "vllm:time_to_first_token_seconds";

/// Requests running on an instance (vLLM, then TGI): zero means a draining instance is done.
pub fn running_requests(e: &Exposition) -> Option<f64> {
    e.sum("vllm:num_requests_running")
        .map(|r| r + e.sum("vllm:num_requests_waiting").unwrap_or(0.0))
        .or_else(|| {
            e.sum("tgi_batch_current_size")
                .map(|r| r + e.sum("tgi_queue_size").unwrap_or(0.0))
        })
}

/// A per-instance signal's value from an exposition: the named `metric` (summed, × `scale`), or
/// the signal's default recipe. `None` when the exposition lacks it, or the signal has no
/// default and no metric is named.
pub fn instance_value(
    e: &Exposition,
    signal: Signal,
    metric: Option<&str>,
    scale: Option<f64>,
) -> Option<f64> {
    if let Some(m) = metric {
        return e.sum(m).map(|v| v * scale.unwrap_or(1.0));
    }
    recipes(signal).iter().find_map(|r| {
        let first = if r.mean {
            e.mean(r.terms[0])
        } else {
            e.sum(r.terms[0])
        }?;
        let rest: f64 = r.terms[1..].iter().filter_map(|t| e.sum(t)).sum();
        Some((first + rest) * scale.unwrap_or(r.scale))
    })
}

/// Whether a per-instance signal can be read without naming a metric (`request_rate` is the
/// rate of [`finished_requests`] between scrapes).
pub fn has_default(signal: Signal) -> bool {
    signal == Signal::RequestRate || !recipes(signal).is_empty()
}

/// Requests an instance has finished since its server started (vLLM, then TGI): a counter.
pub fn finished_requests(e: &Exposition) -> Option<f64> {
    e.sum("vllm:request_success_total")
        .or_else(|| e.sum("tgi_request_success"))
}

/// A counter's rate per second between two readings `(value, at)`. A counter that went down
/// was reset (the server restarted) and counts from zero since, as Prometheus' `rate` has it.
/// `None` when no time passed.
pub fn counter_rate(
    before: (f64, crate::model::Timestamp),
    now: (f64, crate::model::Timestamp),
) -> Option<f64> {
    let secs = now.1.secs_since(before.1);
    if secs <= 0.0 {
        return None;
    }
    let increase = if now.0 >= before.0 {
        now.0 - before.0
    } else {
        now.0
    };
    Some(increase / secs)
}

/// An HTTP client for scrapes and PromQL queries, with one timeout per request.
#[derive(Clone)]
pub struct Scraper {
    client: reqwest::Client,
    timeout: Duration,
}

impl Scraper {
    /// A client whose requests each give up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Scraper {
            client: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap_or_default(),
            timeout,
        }
    }

    async fn get(&self, url: reqwest::Url) -> Result<String, ScrapeError> {
        let shown = url.to_string();
        let err = |e: reqwest::Error| {
            if e.is_timeout() {
                ScrapeError::Timeout {
                    url: shown.clone(),
                    timeout_ms: self.timeout.as_millis() as u64,
                }
            } else {
                ScrapeError::Transport {
                    url: shown.clone(),
                    reason: e.to_string(),
                }
            }
        };
        let resp = self.client.get(url).send().await.map_err(err)?;
        if !resp.status().is_success() {
            return Err(ScrapeError::Status {
                url: shown,
                status: resp.status().as_u16(),
            });
        }
        resp.text().await.map_err(err)
    }

    /// Scrapes `http://host:port{path}`.
    pub async fn scrape(
        &self,
        host: &str,
        port: u16,
        path: &str,
    ) -> Result<Exposition, ScrapeError> {
        let raw = format!("http://{host}:{port}{path}");
        let url = reqwest::Url::parse(&raw).map_err(|e| ScrapeError::Transport {
            url: raw.clone(),
            reason: e.to_string(),
        })?;
        Ok(parse(&self.get(url).await?))
    }

    /// An instant query: the single number it returns and its timestamp (seconds since the
    /// epoch). An empty result or several series is an error: the engine must not guess.
    pub async fn promql(&self, base: &str, query: &str) -> Result<(f64, f64), ScrapeError> {
        let raw = format!("{}/api/v1/query", base.trim_end_matches('/'));
        let mut url = reqwest::Url::parse(&raw).map_err(|e| ScrapeError::Transport {
            url: raw.clone(),
            reason: e.to_string(),
        })?;
        url.query_pairs_mut().append_pair("query", query);
        let body = self.get(url).await?;
        promql_value(&body).map_err(|reason| ScrapeError::BadAnswer { url: raw, reason })
    }
}

/// `(value, timestamp_secs)` from a Prometheus `/api/v1/query` answer.
pub fn promql_value(body: &str) -> Result<(f64, f64), String> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    if v["status"] != "success" {
        return Err(format!("status {}: {}", v["status"], v["error"]));
    }
    let data = &v["data"];
    let pair = match data["resultType"].as_str() {
        Some("scalar") => &data["result"],
        Some("vector") => match data["result"].as_array().map(Vec::as_slice) {
            Some([one]) => &one["value"],
            Some(many) => return Err(format!("{} series; the query must return one", many.len())),
            None => return Err("no result array".into()),
        },
        other => {
            return Err(format!(
                "result type {other:?}; expected a scalar or a vector"
            ))
        }
    };
    let ts = pair[0].as_f64().ok_or("no timestamp")?;
    let value = pair[1]
        .as_str()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or("value is not a number")?;
    if !value.is_finite() {
        return Err(format!("value {value} is not finite"));
    }
    Ok((value, ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VLLM: &str = r#"
# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="meta-llama/Llama-3.1-8B-Instruct"} 12.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.625
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} 10.0
vllm:time_to_first_token_seconds_bucket{le="0.5",model_name="m"} 60.0
vllm:time_to_first_token_seconds_bucket{le="1.0",model_name="m"} 90.0
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="m"} 100.0
vllm:time_to_first_token_seconds_count{model_name="m"} 100.0
this line is broken
"#;

    #[test]
    fn parses_vllm_names_with_colons_and_counts_bad_lines() {
        let e = parse(VLLM);
        assert_eq!(e.bad_lines, 1);
        assert_eq!(e.sum("vllm:num_requests_running"), Some(12.0));
        assert_eq!(e.sum("absent"), None);
        assert_eq!(
            e.samples[0].labels,
            vec![(
                "model_name".into(),
                "meta-llama/Llama-3.1-8B-Instruct".into()
            )]
        );
    }

    #[test]
    fn label_values_may_hold_braces_commas_and_escapes() {
        let e = parse(r#"m{a="x}y,z",b="q\"uote\\"} 2 1700000000000"#);
        assert_eq!(e.bad_lines, 0);
        assert_eq!(
            e.samples[0].labels,
            vec![
                ("a".into(), "x}y,z".into()),
                ("b".into(), "q\"uote\\".into())
            ]
        );
        assert_eq!(e.samples[0].value, 2.0);
    }

    #[test]
    fn signals_follow_vllm_then_tgi_names() {
        let v = parse(VLLM);
        let tgi = parse("tgi_queue_size 4\ntgi_batch_current_size 9\n");
        let table: [(&Exposition, Signal, Option<f64>); 7] = [
            (&v, Signal::QueueDepth, Some(3.0)),
            (&v, Signal::Concurrency, Some(15.0)),
            (&v, Signal::KvCacheUsage, Some(62.5)),
            (&tgi, Signal::QueueDepth, Some(4.0)),
            (&tgi, Signal::Concurrency, Some(13.0)),
            (&tgi, Signal::KvCacheUsage, None),
            (&v, Signal::CpuUtilization, None),
        ];
        for (e, sig, want) in table {
            assert_eq!(instance_value(e, sig, None, None), want, "{sig:?}");
        }
        assert_eq!(running_requests(&v), Some(15.0));
        assert_eq!(running_requests(&tgi), Some(13.0));
        assert_eq!(
            instance_value(
                &v,
                Signal::CustomInstance,
                Some("vllm:num_requests_running"),
                Some(2.0)
            ),
            Some(24.0)
        );
    }

    #[test]
    fn gpu_utilisation_is_averaged_over_gpus() {
        let e = parse("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 80\nDCGM_FI_DEV_GPU_UTIL{gpu=\"1\"} 40\n");
        assert_eq!(
            instance_value(&e, Signal::GpuUtilization, None, None),
            Some(60.0)
        );
    }

    #[test]
    fn histogram_quantile_interpolates_like_prometheus() {
        let h = parse(VLLM).histogram(TTFT_HISTOGRAM).unwrap();
        assert_eq!(h.count(), 100.0);
        // rank 50 lies in (0.1, 0.5] holding 50 observations from 10: 0.1 + 0.4 × 40/50.
        assert!((h.quantile(0.5).unwrap() - 0.42).abs() < 1e-9);
        // rank 95 lies in +Inf: the highest finite bound.
        assert_eq!(h.quantile(0.95), Some(1.0));
        assert_eq!(Histogram::default().quantile(0.95), None);
    }

    #[test]
    fn request_rate_is_the_finished_counters_rate_across_resets() {
        let t = crate::model::Timestamp::from_secs;
        // (before, now, rate per second)
        let cases = [
            ((100.0, t(0)), (130.0, t(15)), Some(2.0)),
            ((100.0, t(0)), (100.0, t(15)), Some(0.0)),
            ((100.0, t(0)), (45.0, t(15)), Some(3.0)), // restarted: 45 since
            ((100.0, t(15)), (130.0, t(15)), None),
        ];
        for (before, now, want) in cases {
            assert_eq!(counter_rate(before, now), want, "{before:?} → {now:?}");
        }
        let v = parse(
            "vllm:request_success_total{finished_reason=\"stop\"} 7\n\
             vllm:request_success_total{finished_reason=\"length\"} 3\n",
        );
        assert_eq!(finished_requests(&v), Some(10.0));
        let tgi = parse("tgi_request_success 4\n");
        assert_eq!(finished_requests(&tgi), Some(4.0));
        assert!(has_default(Signal::RequestRate));
    }

    #[test]
    fn histogram_delta_merges_and_survives_counter_resets() {
        let a = Histogram {
            buckets: vec![(1.0, 10.0), (f64::INFINITY, 12.0)],
        };
        let b = Histogram {
            buckets: vec![(1.0, 15.0), (f64::INFINITY, 20.0)],
        };
        assert_eq!(b.since(&a).buckets, vec![(1.0, 5.0), (f64::INFINITY, 8.0)]);
        // The server restarted: counts went down, so everything now is new.
        assert_eq!(a.since(&b), a);
        let mut m = b.since(&a);
        m.merge(&a);
        assert_eq!(m.buckets, vec![(1.0, 15.0), (f64::INFINITY, 20.0)]);
    }

    #[test]
    fn promql_answers_one_number_or_a_clear_error() {
        let vector = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.5,"42.5"]}]}}"#;
        assert_eq!(promql_value(vector), Ok((42.5, 1_700_000_000.5)));
        let scalar =
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"7"]}}"#;
        assert_eq!(promql_value(scalar), Ok((7.0, 1_700_000_000.0)));
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(promql_value(empty).unwrap_err().contains("0 series"));
        let error = r#"{"status":"error","error":"parse error"}"#;
        assert!(promql_value(error).unwrap_err().contains("parse error"));
        assert!(promql_value("<html>").unwrap_err().contains("not JSON"));
        let nan = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#;
        assert!(promql_value(nan).is_err());
    }
}
