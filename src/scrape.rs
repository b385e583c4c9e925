//! The inference servers' own metrics: the Prometheus text exposition of each vLLM or TGI
//! instance (parsed here), the signals derived from it, and instant PromQL queries against an
//! existing Prometheus server.
//!
//! Edge code (HTTP through `reqwest`). The parser is hand-written on purpose: vLLM's metric
//! names contain colons (`vllm:num_requests_waiting`), which the `prometheus-parse` crate's
//! name pattern (`\w+`) silently drops.

use std::time::Duration;

use crate::config::Signal;
pub use crate::series::has_default;
use crate::series::{recipes, VLLM_GENERATION_TOKENS, VLLM_PROMPT_TOKENS, VLLM_REQUEST_SUCCESS};

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

    /// The counter `name` per series (label set); `None` when the exposition lacks it.
    pub fn counter(&self, name: &str) -> Option<Counter> {
        let mut c = Counter::default();
        for s in self.named(name) {
            *c.series.entry(series_key(&s.labels, None)).or_insert(0.0) += s.value;
        }
        (!c.series.is_empty()).then_some(c)
    }

    /// [`Exposition::counter`] with [`Exposition::server_sum`]'s reading of a TGI series a
    /// warmed-up TGI server has not exposed yet: a counter with no series, which counts 0.
    fn server_counter(&self, name: &str) -> Option<Counter> {
        self.counter(name)
            .or_else(|| self.tgi_not_yet_exposed(name).then(Counter::default))
    }

    /// Whether `name` is a TGI series the default recipes and work counters read that this
    /// warmed-up TGI server has not exposed yet ([`Exposition::server_sum`]).
    fn tgi_not_yet_exposed(&self, name: &str) -> bool {
        TGI_SERIES_READ.contains(&name) && self.named(TGI_WARMED_UP).next().is_some()
    }

    /// [`Exposition::sum`] of a series the default recipes and work counters read, with a TGI
    /// series a TGI server has not exposed yet read as 0. TGI's router (metrics-rs) exposes a
    /// series only once it is first set: a server that has served no request shows none of its
    /// queue, batch or request series, only the gauge its warm-up sets
    /// (`tgi_batch_max_total_tokens`). Read as absent, an idle server would be an instance
    /// with no sample — counted as fully used, it holds a whole fleet's scale-down. Only these
    /// series: a metric the policy names is read as it is, so a typo stays a missing sample.
    fn server_sum(&self, name: &str) -> Option<f64> {
        self.sum(name)
            .or_else(|| self.tgi_not_yet_exposed(name).then_some(0.0))
    }

    /// The mean of `name` over its label sets (per-GPU or per-engine gauges). Series that
    /// differ only in a `pid` label are one gauge as several processes of a Prometheus
    /// multiprocess server report it: their largest counts once, so a process that has not
    /// set it (0) does not dilute the engine's value.
    pub fn mean(&self, name: &str) -> Option<f64> {
        let mut gauges: std::collections::BTreeMap<Vec<&(String, String)>, f64> =
            std::collections::BTreeMap::new();
        for s in self.named(name) {
            let key: Vec<_> = s.labels.iter().filter(|(k, _)| k != "pid").collect();
            let v = gauges.entry(key).or_insert(f64::NEG_INFINITY);
            *v = v.max(s.value);
        }
        if gauges.is_empty() {
            return None;
        }
        Some(gauges.values().sum::<f64>() / gauges.len() as f64)
    }

    /// The histogram `name` (from its `name_bucket` series), merged over label sets.
    pub fn histogram(&self, name: &str) -> Option<Histogram> {
        self.histograms(name).map(|h| h.total())
    }

    /// The histogram `name` per series (label set, `le` aside); `None` when the exposition
    /// lacks it or a bucket's bound does not read.
    pub fn histograms(&self, name: &str) -> Option<HistogramSeries> {
        let bucket = format!("{name}_bucket");
        let mut out = HistogramSeries::default();
        for s in self.named(&bucket) {
            let le = s.labels.iter().find(|(k, _)| k == "le")?.1.as_str();
            let le = match le {
                "+Inf" | "Inf" => f64::INFINITY,
                v => v.parse::<f64>().ok()?,
            };
            out.series
                .entry(series_key(&s.labels, Some("le")))
                .or_default()
                .buckets
                .push((le, s.value));
        }
        for h in out.series.values_mut() {
            h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            // A bound written twice in one series (duplicate lines): its counts add up.
            h.buckets.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    kept.1 += later.1;
                }
                same
            });
        }
        (!out.series.is_empty()).then_some(out)
    }
}

/// What tells a metric's series apart: its labels sorted (written in any order), `except` one
/// that splits a series into parts (a histogram's `le`).
fn series_key(labels: &[(String, String)], except: Option<&str>) -> Vec<(String, String)> {
    let mut key: Vec<(String, String)> = labels
        .iter()
        .filter(|(k, _)| Some(k.as_str()) != except)
        .cloned()
        .collect();
    key.sort();
    key
}

/// A metric as one exposition gives it: its value per series (label set, sorted; a
/// histogram's `le` aside). What a counter counted and a histogram observed between scrapes is
/// taken per series and added up, as PromQL's `sum(rate(c[1m]))` takes it, not from the sum:
/// a server whose counter is split into series (vLLM's `request_success_total` per finish
/// reason, a data-parallel server's per-engine counters and histograms) can lose one or have
/// one start over while the others go on — read as the sum, that drop is a reset of the whole
/// sum, and the next increase is the other series' whole lifetime (for a histogram: the
/// latency of its whole lifetime read as the last scrape's).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PerSeries<T> {
    series: std::collections::BTreeMap<Vec<(String, String)>, T>,
}

impl<T> PerSeries<T> {
    /// One series with no labels (a server that splits nothing).
    pub fn single(value: T) -> Self {
        PerSeries {
            series: [(Vec::new(), value)].into(),
        }
    }
}

/// A counter per series.
pub type Counter = PerSeries<f64>;

/// A histogram per series.
pub type HistogramSeries = PerSeries<Histogram>;

impl HistogramSeries {
    /// The series merged ([`Histogram::merge`]).
    pub fn total(&self) -> Histogram {
        let mut out = Histogram::default();
        for h in self.series.values() {
            out.merge(h);
        }
        out
    }

    /// What was observed since `earlier`, merged over the series: per series
    /// [`Histogram::since`] (a series that went down counts whole); a series that first shows
    /// counts whole, as a counter's does; a series gone counts nothing (and one a scrape left
    /// out is taken up from its last value: [`LatencyReading::carry_over`]).
    pub fn since(&self, earlier: &HistogramSeries) -> Histogram {
        let mut out = Histogram::default();
        for (key, now) in &self.series {
            match earlier.series.get(key) {
                Some(before) => out.merge(&now.since(before)),
                None => out.merge(now),
            }
        }
        out
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

    /// Adds another histogram (several instances' observations). Bounds that differ — servers
    /// of two versions mid-upgrade, whose bucket layouts changed — are merged over the union
    /// of the bounds, each histogram counting at a bound what it counted at its own largest
    /// bound at or below it: every observation is kept (the `+Inf` buckets add up), and one
    /// that could lie on either side of a bound counts above it — a quantile read high, not an
    /// instance's latency dropped.
    pub fn merge(&mut self, other: &Histogram) {
        let same_bounds = self.buckets.len() == other.buckets.len()
            && self
                .buckets
                .iter()
                .zip(&other.buckets)
                .all(|(a, b)| a.0 == b.0);
        if other.buckets.is_empty() {
            return;
        }
        if self.buckets.is_empty() {
            self.buckets = other.buckets.clone();
        } else if same_bounds {
            for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
                a.1 += b.1;
            }
        } else {
            let mut bounds: Vec<f64> = self
                .buckets
                .iter()
                .chain(&other.buckets)
                .map(|b| b.0)
                .collect();
            bounds.sort_by(f64::total_cmp);
            bounds.dedup();
            let at = |h: &Histogram, le: f64| {
                h.buckets
                    .iter()
                    .take_while(|b| b.0 <= le)
                    .last()
                    .map_or(0.0, |b| b.1)
            };
            self.buckets = bounds
                .into_iter()
                .map(|le| (le, at(self, le) + at(other, le)))
                .collect();
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

/// The gauge TGI's router sets once its warm-up has sized the batch: present on every TGI
/// server, from before its first request.
pub const TGI_WARMED_UP: &str = "tgi_batch_max_total_tokens";

/// The TGI series the default recipes and the work counters read: 0 on a TGI server that has
/// not exposed them yet ([`Exposition::server_sum`]).
const TGI_SERIES_READ: &[&str] = &[
    "tgi_queue_size",
    "tgi_batch_current_size",
    "tgi_request_success",
    "tgi_request_input_length_sum",
    "tgi_request_generated_tokens_sum",
];

/// The TTFT histogram's name (vLLM), seconds.
pub const TTFT_HISTOGRAM: &str = "vllm:time_to_first_token_seconds";

/// vLLM V0's gauge of requests preempted to CPU memory (V1 recomputes instead of swapping and
/// has none): they resume on the GPU, so the server still holds them.
pub const VLLM_SWAPPED: &str = "vllm:num_requests_swapped";

/// Requests an instance holds — running, waiting, and on vLLM V0 swapped out (vLLM, then
/// TGI): zero means a draining instance is done.
pub fn running_requests(e: &Exposition) -> Option<f64> {
    e.sum("vllm:num_requests_running")
        .map(|r| {
            r + e.sum("vllm:num_requests_waiting").unwrap_or(0.0)
                + e.sum(VLLM_SWAPPED).unwrap_or(0.0)
        })
        .or_else(|| {
            e.server_sum("tgi_batch_current_size")
                .map(|r| r + e.server_sum("tgi_queue_size").unwrap_or(0.0))
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
            e.server_sum(r.terms[0])
        }?;
        let rest: f64 = r.terms[1..].iter().filter_map(|t| e.server_sum(t)).sum();
        Some((first + rest) * scale.unwrap_or(r.scale))
    })
}

/// The series a per-instance signal's default recipe read from `e` (the first recipe whose
/// first series is there), for `probe`; `None` when none applies.
pub fn recipe_series(e: &Exposition, signal: Signal) -> Option<&'static [&'static str]> {
    recipes(signal)
        .iter()
        .find(|r| e.server_sum(r.terms[0]).is_some())
        .map(|r| r.terms)
}

/// Requests an instance has finished since its server started (vLLM, then TGI): a counter.
pub fn finished_requests(e: &Exposition) -> Option<f64> {
    finished_counter(e).map(|c| c.total())
}

/// The finished-requests counter per series (vLLM, then TGI).
fn finished_counter(e: &Exposition) -> Option<Counter> {
    e.counter(VLLM_REQUEST_SUCCESS)
        .or_else(|| e.server_counter("tgi_request_success"))
}

/// The queue-time histogram's name (vLLM), seconds: how long requests waited before their
/// prefill started.
pub const QUEUE_TIME_HISTOGRAM: &str = "vllm:request_queue_time_seconds";
/// TGI's queue-time histogram, seconds.
pub const TGI_QUEUE_TIME_HISTOGRAM: &str = "tgi_request_queue_duration";

/// One scrape of an instance's latency histograms (TTFT, queue time), kept to take what the
/// next scrape observed since.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyReading {
    /// When scraped.
    pub at: crate::model::Timestamp,
    /// The TTFT histogram, when exposed.
    pub ttft: Option<HistogramSeries>,
    /// The queue-time histogram, when exposed.
    pub queue_time: Option<HistogramSeries>,
}

impl LatencyReading {
    /// The TTFT and queue-time observations between `earlier` and this reading (empty where
    /// either lacks the histogram). None at all across a gap longer than
    /// [`MAX_RATE_SPAN_SECS`] — a scrape outage, a clock stepped: the observations of the
    /// whole gap, stamped now, would read as the last minute's latency (a slow quarter of an
    /// hour ago, a scale-up now). As a rate across such a gap is not taken.
    pub fn since(&self, earlier: &LatencyReading) -> (Histogram, Histogram) {
        let span = self.at.secs_since(earlier.at);
        if !(span > 0.0 && span <= MAX_RATE_SPAN_SECS) {
            return Default::default();
        }
        let delta =
            |now: &Option<HistogramSeries>, before: &Option<HistogramSeries>| match (now, before) {
                (Some(a), Some(b)) => a.since(b),
                _ => Histogram::default(),
            };
        (
            delta(&self.ttft, &earlier.ttft),
            delta(&self.queue_time, &earlier.queue_time),
        )
    }

    /// Keeps each series `earlier` had and this reading left out, at its last value, so the
    /// next scrape that shows it again counts from there — as a counter's series is taken up
    /// ([`increase_over`]) — not its whole lifetime as new. Not across a gap that
    /// [`LatencyReading::since`] does not take a delta over.
    pub fn carry_over(&mut self, earlier: &LatencyReading) {
        let span = self.at.secs_since(earlier.at);
        if !(span > 0.0 && span <= MAX_RATE_SPAN_SECS) {
            return;
        }
        for (now, before) in [
            (&mut self.ttft, &earlier.ttft),
            (&mut self.queue_time, &earlier.queue_time),
        ] {
            if let (Some(now), Some(before)) = (now, before) {
                for (key, h) in &before.series {
                    now.series.entry(key.clone()).or_insert_with(|| h.clone());
                }
            }
        }
    }
}

/// The fleet's latency from its TTFT and queue-time histograms (merged over the servers and the
/// last minute), stamped `now`: `None` unless both have observations. The capacity model reads
/// the wait as the evidence that requests queue — a server that reports no queue-time
/// histogram has shown no wait, not a wait of 0 s, which would count as proof of a calm queue
/// (giving the correction back, lowering the queue floor's tail factor, never waiting for a
/// queue over its budget before a scale-down).
pub fn fleet_latency(
    ttft: &Histogram,
    queue_time: &Histogram,
    now: crate::model::Timestamp,
) -> Option<crate::model::FleetLatency> {
    let (ttft_p95_secs, queue_wait_p95_secs) =
        ttft.quantile(0.95).zip(queue_time.quantile(0.95))?;
    Some(crate::model::FleetLatency {
        ttft_p95_secs,
        queue_wait_p95_secs,
        at: now,
    })
}

impl Counter {
    /// The sum over the series.
    pub fn total(&self) -> f64 {
        self.series.values().sum()
    }

    /// What was counted from `before` to this reading ([`increase_over`] of the two).
    pub fn increase_since(&self, before: &Counter) -> f64 {
        increase_over([before, self])
    }
}

/// What a counter counted over consecutive readings of it, per series and added up:
/// - a series that went down (its process restarted) counts from zero, as `rate` has it;
/// - a series missing from a reading is taken up again from its last value where it shows
///   again (a scrape that left it out is not a restart);
/// - a series that first shows after the first reading counts from zero: TGI's router exposes
///   a counter only once it first counts, so its first value is all counted since the reading
///   before;
/// - a series gone counts nothing more.
pub fn increase_over<'a>(readings: impl IntoIterator<Item = &'a Counter>) -> f64 {
    let mut last: std::collections::BTreeMap<&[(String, String)], f64> =
        std::collections::BTreeMap::new();
    let mut total = 0.0;
    for (i, c) in readings.into_iter().enumerate() {
        for (key, &now) in &c.series {
            match last.insert(key.as_slice(), now) {
                Some(before) => total += counter_increase(before, now),
                None if i > 0 => total += now,
                None => {}
            }
        }
    }
    total
}

/// One reading of an inference server's work counters (cumulative since it started).
#[derive(Clone, Debug, PartialEq)]
pub struct CounterReading {
    /// Prompt tokens prefilled (no series when [`tokens`](Self::tokens) is false).
    pub prompt_tokens: Counter,
    /// Tokens generated (no series when [`tokens`](Self::tokens) is false).
    pub generation_tokens: Counter,
    /// Requests finished.
    pub finished: Counter,
    /// Whether the server exposes its token counters (the capacity model needs them).
    pub tokens: bool,
    /// When read.
    pub at: crate::model::Timestamp,
}

/// The work counters of an exposition: vLLM's `prompt_tokens_total`, `generation_tokens_total`
/// and `request_success_total`, or TGI's `request_input_length_sum`,
/// `request_generated_tokens_sum` (histogram sums: tokens) and `request_success`. `None` when
/// it has none of them.
pub fn counter_reading(e: &Exposition, at: crate::model::Timestamp) -> Option<CounterReading> {
    let prompt = e
        .counter(VLLM_PROMPT_TOKENS)
        .or_else(|| e.server_counter("tgi_request_input_length_sum"));
    let generated = e
        .counter(VLLM_GENERATION_TOKENS)
        .or_else(|| e.server_counter("tgi_request_generated_tokens_sum"));
    let finished = finished_counter(e);
    if prompt.is_none() && generated.is_none() && finished.is_none() {
        return None;
    }
    Some(CounterReading {
        tokens: prompt.is_some() && generated.is_some(),
        prompt_tokens: prompt.unwrap_or_default(),
        generation_tokens: generated.unwrap_or_default(),
        finished: finished.unwrap_or_default(),
        at,
    })
}

/// The requests waiting and running and the KV cache in use (0–1) of an exposition: vLLM
/// (`kv_cache_usage_perc`, V0's `gpu_cache_usage_perc`; both fractions despite the name), or
/// TGI (queue and batch size; it reports no KV use, taken as 0). V0's swapped requests are in
/// neither: their cache is in CPU memory, and counted as running they would spread the GPU's
/// cache over more sequences than hold it.
pub fn server_gauges(e: &Exposition) -> (f64, f64, f64) {
    let vllm = (
        e.sum("vllm:num_requests_waiting"),
        e.sum("vllm:num_requests_running"),
    );
    let waiting = vllm
        .0
        .or_else(|| e.server_sum("tgi_queue_size"))
        .unwrap_or(0.0);
    let running = vllm
        .1
        .or_else(|| e.server_sum("tgi_batch_current_size"))
        .unwrap_or(0.0);
    let kv = e
        .mean("vllm:kv_cache_usage_perc")
        .or_else(|| e.mean("vllm:gpu_cache_usage_perc"))
        .unwrap_or(0.0)
        .clamp(0.0, 1.0);
    (waiting, running, kv)
}

/// The longest span a rate is taken over, seconds: the rate window and one more — a missed
/// scrape or two stretch the window; a reading older than this starts a new one (the first
/// reading after it gives no rate, as a counter's first scrape does).
pub const MAX_RATE_SPAN_SECS: f64 = 2.0 * crate::model::RATE_WINDOW_SECS;

/// A server's counter readings over the last [`RATE_WINDOW_SECS`](crate::model::RATE_WINDOW_SECS),
/// for rates as Prometheus' `rate(…[1m])` takes them — and as the simulator measures its
/// servers — rather than over one scrape interval, which is noisy at 15 s.
#[derive(Clone, Debug, Default)]
pub struct RateWindow {
    readings: std::collections::VecDeque<CounterReading>,
}

/// Counter rates over a window: per second, and the seconds they cover.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    /// Prompt tokens per second.
    pub prompt_tokens_per_sec: f64,
    /// Generated tokens per second.
    pub generation_tokens_per_sec: f64,
    /// Requests finished per second.
    pub requests_per_sec: f64,
    /// Seconds covered.
    pub window_secs: f64,
}

impl RateWindow {
    /// Takes in a reading and returns the rates over the window; `None` on the first reading
    /// (a counter's first scrape gives no rate), or a reading not after the last one.
    pub fn observe(&mut self, r: CounterReading) -> Option<Rates> {
        let at = r.at;
        if self
            .readings
            .back()
            .is_some_and(|b| at.secs_since(b.at) <= 0.0)
        {
            return None;
        }
        // A server that stopped or started exposing its token counters: the readings before
        // count tokens as 0, and an increase across the change would be its whole lifetime.
        if self.readings.back().is_some_and(|b| b.tokens != r.tokens) {
            self.readings.clear();
        }
        self.readings.push_back(r);
        // Keep the newest reading at or before the window's start, so the window is covered.
        while self.readings.len() > 2
            && at.secs_since(self.readings[1].at) >= crate::model::RATE_WINDOW_SECS
        {
            self.readings.pop_front();
        }
        // … but not one from before the gap of a scrape outage, or of a clock stepped forward:
        // a rate over the gap is a stale average stamped now — after a step of an hour, the
        // 15 s of counts since the last scrape spread over the hour, read as a fleet gone idle.
        while at.secs_since(self.readings[0].at) > MAX_RATE_SPAN_SECS {
            self.readings.pop_front();
        }
        let first = self.readings.front()?;
        let secs = at.secs_since(first.at);
        if self.readings.len() < 2 || secs <= 0.0 {
            return None;
        }
        // Per series and per interval, so a reset (a counter that went down: the server
        // restarted) counts from zero from there on, as `rate` has it.
        let increase = |f: fn(&CounterReading) -> &Counter| -> f64 {
            increase_over(self.readings.iter().map(f))
        };
        Some(Rates {
            prompt_tokens_per_sec: increase(|c| &c.prompt_tokens) / secs,
            generation_tokens_per_sec: increase(|c| &c.generation_tokens) / secs,
            requests_per_sec: increase(|c| &c.finished) / secs,
            window_secs: secs,
        })
    }
}

/// A counter's increase from `before` to `now`: all of `now` when it went down (reset).
fn counter_increase(before: f64, now: f64) -> f64 {
    if now >= before {
        now - before
    } else {
        now
    }
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
        match self.fetch(url).await? {
            (200..=299, body) => Ok(body),
            (status, _) => Err(ScrapeError::Status { url: shown, status }),
        }
    }

    /// The status and body of a GET, whatever the status.
    async fn fetch(&self, url: reqwest::Url) -> Result<(u16, String), ScrapeError> {
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
        let status = resp.status().as_u16();
        Ok((status, resp.text().await.map_err(err)?))
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

    /// Scrapes a full URL (`probe`): `http://host:port/metrics`.
    pub async fn scrape_url(&self, raw: &str) -> Result<Exposition, ScrapeError> {
        let url = reqwest::Url::parse(raw).map_err(|e| ScrapeError::Transport {
            url: raw.to_string(),
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
        let shown = url.to_string();
        // Prometheus says why in the body of a 400 (bad query), 422 (failed) or 503 (timeout).
        let (status, body) = self.fetch(url).await?;
        let ok = (200..=299).contains(&status);
        match promql_value(&body) {
            Ok(v) if ok => Ok(v),
            Err(reason) if ok => Err(ScrapeError::BadAnswer { url: raw, reason }),
            Err(reason) if body.trim_start().starts_with('{') => Err(ScrapeError::BadAnswer {
                url: raw,
                reason: format!("HTTP {status}, {reason}"),
            }),
            _ => Err(ScrapeError::Status { url: shown, status }),
        }
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

    /// The fleet's latency needs both histograms: a TTFT without a queue-time histogram is no
    /// evidence of the wait, not a wait of 0 s.
    #[test]
    fn fleet_latency_needs_the_queue_times_too() {
        let now = crate::model::Timestamp(60_000);
        let some = Histogram {
            buckets: vec![(0.5, 10.0), (1.0, 20.0), (f64::INFINITY, 20.0)],
        };
        let none = Histogram::default();
        let got = fleet_latency(&some, &some, now).unwrap();
        assert!((got.ttft_p95_secs - 0.95).abs() < 1e-9, "{got:?}");
        assert!((got.queue_wait_p95_secs - 0.95).abs() < 1e-9, "{got:?}");
        assert_eq!(got.at, now);
        assert_eq!(fleet_latency(&some, &none, now), None, "no queue times");
        assert_eq!(fleet_latency(&none, &some, now), None, "no TTFTs");
    }

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
        // vLLM V0 under KV pressure: nothing running or waiting, two requests swapped out to
        // CPU — the server still holds them, a drain is not done.
        let swapped = parse(
            "vllm:num_requests_running 0\nvllm:num_requests_waiting 0\nvllm:num_requests_swapped 2\n",
        );
        assert_eq!(running_requests(&swapped), Some(2.0));
        assert_eq!(server_gauges(&swapped), (0.0, 0.0, 0.0));
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

    /// A TGI server that has served nothing exposes only its warm-up gauge: it is idle (0
    /// waiting, 0 running, no work done), not an instance without a sample. A vLLM server and
    /// an exposition of neither are unchanged.
    #[test]
    fn an_idle_tgi_server_reads_as_idle() {
        let idle =
            parse("# TYPE tgi_batch_max_total_tokens gauge\ntgi_batch_max_total_tokens 16000\n");
        let table: [(Signal, Option<f64>); 3] = [
            (Signal::QueueDepth, Some(0.0)),
            (Signal::Concurrency, Some(0.0)),
            (Signal::KvCacheUsage, None),
        ];
        for (sig, want) in table {
            assert_eq!(instance_value(&idle, sig, None, None), want, "{sig:?}");
        }
        assert_eq!(running_requests(&idle), Some(0.0));
        let at = crate::model::Timestamp(0);
        let counters = counter_reading(&idle, at).unwrap();
        assert!(counters.tokens, "{counters:?}");
        assert_eq!(
            (
                counters.prompt_tokens.total(),
                counters.generation_tokens.total(),
                counters.finished.total()
            ),
            (0.0, 0.0, 0.0)
        );
        assert_eq!(server_gauges(&idle), (0.0, 0.0, 0.0));
        let other = parse("up 1\n");
        assert_eq!(instance_value(&other, Signal::QueueDepth, None, None), None);
        assert_eq!(counter_reading(&other, at), None);
        assert_eq!(parse(VLLM).sum("tgi_queue_size"), None);
        // A metric the policy names is read as it is: a typo stays a missing sample.
        let named = instance_value(&idle, Signal::CustomInstance, Some("tgi_queue_sise"), None);
        assert_eq!(named, None);
    }

    /// A gauge a multiprocess server repeats per process (`pid`) is one engine's value: the
    /// engines are averaged, each at its largest process's value.
    #[test]
    fn a_gauge_repeated_per_process_counts_once_per_engine() {
        let e = parse(
            "vllm:kv_cache_usage_perc{engine=\"0\",pid=\"11\"} 0.8\n\
             vllm:kv_cache_usage_perc{engine=\"0\",pid=\"12\"} 0.0\n\
             vllm:kv_cache_usage_perc{engine=\"1\",pid=\"11\"} 0.4\n",
        );
        let kv = instance_value(&e, Signal::KvCacheUsage, None, None).unwrap();
        assert!((kv - 60.0).abs() < 1e-9, "{kv}");
        assert!((server_gauges(&e).2 - 0.6).abs() < 1e-9);
    }

    /// Histograms of two bucket layouts (servers of two versions) merge over the union of
    /// their bounds: no observation is lost, and a quantile reads at or above each one's.
    #[test]
    fn histograms_of_two_layouts_merge_without_losing_observations() {
        let old = Histogram {
            buckets: vec![(0.5, 10.0), (1.0, 20.0), (f64::INFINITY, 20.0)],
        };
        let new = Histogram {
            buckets: vec![(0.25, 5.0), (2.5, 30.0), (f64::INFINITY, 40.0)],
        };
        let mut merged = old.clone();
        merged.merge(&new);
        assert_eq!(
            merged.buckets,
            vec![
                (0.25, 5.0),
                (0.5, 15.0),
                (1.0, 25.0),
                (2.5, 50.0),
                (f64::INFINITY, 60.0)
            ]
        );
        let mut same = old.clone();
        same.merge(&old);
        assert_eq!(same.count(), 40.0);
        same.merge(&Histogram::default());
        assert_eq!(same.count(), 40.0);
    }

    /// What a scrape observed since the previous one; nothing across a gap longer than a
    /// rate's span, or back in time.
    #[test]
    fn latency_since_the_last_scrape_is_not_taken_across_a_gap() {
        let h = |n: f64| Histogram {
            buckets: vec![(1.0, n), (f64::INFINITY, n)],
        };
        let at = |s: i64| crate::model::Timestamp(s * 1000);
        let read = |s: i64, n: f64| LatencyReading {
            at: at(s),
            ttft: Some(HistogramSeries::single(h(n))),
            queue_time: Some(HistogramSeries::single(h(n / 2.0))),
        };
        let (t, q) = read(15, 30.0).since(&read(0, 10.0));
        assert_eq!((t.count(), q.count()), (20.0, 10.0));
        let gap = MAX_RATE_SPAN_SECS as i64 + 15;
        let (t, q) = read(gap, 500.0).since(&read(0, 10.0));
        assert_eq!((t.count(), q.count()), (0.0, 0.0));
        let (t, _) = read(0, 30.0).since(&read(15, 10.0));
        assert_eq!(t.count(), 0.0);
        let no_queue = LatencyReading {
            queue_time: None,
            ..read(15, 30.0)
        };
        let (t, q) = no_queue.since(&read(0, 10.0));
        assert_eq!((t.count(), q.count()), (20.0, 0.0));
    }

    /// Latency between scrapes is taken per series: an engine that restarted makes its own
    /// histogram new, not the merged one — whose whole lifetime (here mostly fast requests)
    /// would read as the last 15 s. An engine that first shows counts whole; one gone, nothing.
    #[test]
    fn latency_since_the_last_scrape_is_taken_per_series() {
        let series = |engine: &str, fast: f64, slow: f64| {
            let b = |le: &str, v: f64| {
                format!("{TTFT_HISTOGRAM}_bucket{{engine=\"{engine}\",le=\"{le}\"}} {v}\n")
            };
            [b("0.5", fast), b("5", fast + slow), b("+Inf", fast + slow)].concat()
        };
        let earlier_text =
            series("0", 100.0, 0.0) + &series("1", 50.0, 10.0) + &series("3", 5.0, 5.0);
        let earlier = parse(&earlier_text).histograms(TTFT_HISTOGRAM).unwrap();
        // Engine 0: 10 slow requests since. Engine 1 restarted: 3 slow since its start. Engine 2
        // first shows with 2 slow. Engine 3 is gone: nothing to count.
        let now_text = series("0", 100.0, 10.0)
            + &series("1", 0.0, 3.0)
            + &format!("{TTFT_HISTOGRAM}_bucket{{le=\"5\",engine=\"2\"}} 2\n")
            + &format!("{TTFT_HISTOGRAM}_bucket{{le=\"+Inf\",engine=\"2\"}} 2\n");
        let now = parse(&now_text).histograms(TTFT_HISTOGRAM).unwrap();
        let seen = now.since(&earlier);
        assert_eq!(seen.count(), 15.0, "{seen:?}");
        // All 15 slow: the median lies inside (0.5, 5].
        assert!(seen.quantile(0.5).unwrap() > 0.5, "{seen:?}");
        assert_eq!(now.total().count(), 115.0);
        // Engine 1 left out of the next scrape, back in the one after with 4 slow more: those
        // 4 count, not its 7 since its restart again.
        let at = |s: i64| crate::model::Timestamp::from_secs(s);
        let reading = |s: i64, text: &str| LatencyReading {
            at: at(s),
            ttft: parse(text).histograms(TTFT_HISTOGRAM),
            queue_time: None,
        };
        let first = reading(0, &now_text);
        let mut second = reading(15, &series("0", 100.0, 11.0));
        assert_eq!(second.since(&first).0.count(), 1.0);
        second.carry_over(&first);
        let third = reading(30, &(series("0", 100.0, 11.0) + &series("1", 0.0, 7.0)));
        assert_eq!(third.since(&second).0.count(), 4.0);
        assert_eq!(
            parse(&now_text).histogram(TTFT_HISTOGRAM).unwrap().count(),
            115.0
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

    fn reading(at: i64, prompt: f64, generated: f64, finished: f64) -> CounterReading {
        CounterReading {
            prompt_tokens: Counter::single(prompt),
            generation_tokens: Counter::single(generated),
            finished: Counter::single(finished),
            tokens: true,
            at: crate::model::Timestamp::from_secs(at),
        }
    }

    /// Rates over the last minute of readings (15 s scrapes), a reset counted from zero as
    /// Prometheus' `rate` does: (seconds, prompt, generated, finished counters) → (prompt/s,
    /// generated/s, finished/s, seconds covered).
    #[test]
    fn rates_are_taken_over_a_minute_across_resets() {
        type Row = ((i64, f64, f64, f64), Option<(f64, f64, f64, f64)>);
        let rows: [Row; 10] = [
            ((0, 10_000.0, 4_000.0, 100.0), None), // the first reading: no rate
            (
                (15, 40_000.0, 10_000.0, 130.0),
                Some((2000.0, 400.0, 2.0, 15.0)),
            ),
            ((15, 50_000.0, 10_000.0, 130.0), None), // not after the last: ignored
            (
                (30, 70_000.0, 16_000.0, 160.0),
                Some((2000.0, 400.0, 2.0, 30.0)),
            ),
            // The server restarted: 3,000 / 600 / 6 since, counted from zero.
            (
                (45, 3_000.0, 600.0, 6.0),
                Some((1400.0, 280.0, 1.4667, 45.0)),
            ),
            (
                (60, 33_000.0, 6_600.0, 36.0),
                Some((1550.0, 310.0, 1.6, 60.0)),
            ),
            // A minute on, the readings before 15 s have left the window.
            (
                (75, 63_000.0, 12_600.0, 66.0),
                Some((1550.0, 310.0, 1.6, 60.0)),
            ),
            // Four scrapes missed: the window stretches back to the reading before the gap
            // (75 s, within 120 s).
            (
                (150, 123_000.0, 24_600.0, 126.0),
                Some((800.0, 160.0, 0.8, 75.0)),
            ),
            // Four minutes without a scrape (an outage, or the clock stepped forward): no
            // rate over the gap — the first reading after it starts a new window.
            ((390, 153_000.0, 30_600.0, 156.0), None),
            (
                (405, 168_000.0, 33_600.0, 171.0),
                Some((1000.0, 200.0, 1.0, 15.0)),
            ),
        ];
        let mut w = RateWindow::default();
        for ((at, p, g, f), want) in rows {
            let got = w.observe(reading(at, p, g, f));
            match (got, want) {
                (None, None) => {}
                (Some(r), Some((p, g, f, secs))) => {
                    let close = |a: f64, b: f64| (a - b).abs() < 1e-3 * b.max(1.0);
                    assert!(
                        close(r.prompt_tokens_per_sec, p)
                            && close(r.generation_tokens_per_sec, g)
                            && close(r.requests_per_sec, f)
                            && close(r.window_secs, secs),
                        "at {at} s: {r:?}, want {want:?}"
                    );
                }
                _ => panic!("at {at} s: {got:?}, want {want:?}"),
            }
        }
    }

    /// Rates are taken per series and added up, as `sum(rate(…))`: an engine of a
    /// data-parallel server that restarts, a series a scrape leaves out and one that shows
    /// late do not read as the whole sum's reset. Rows: (seconds, exposition) → (prompt
    /// tokens/s, finished/s) over the window so far.
    #[test]
    fn rates_are_taken_per_series() {
        let p = |engine: &str, v: f64| {
            format!("vllm:prompt_tokens_total{{model_name=\"m\",engine=\"{engine}\"}} {v}\n")
        };
        let done = |reason: &str, v: f64| {
            format!("vllm:request_success_total{{finished_reason=\"{reason}\"}} {v}\n")
        };
        let generated = "vllm:generation_tokens_total 0\n";
        type Row = (i64, String, Option<(f64, f64)>);
        let rows: [Row; 4] = [
            (
                0,
                [p("0", 10_000.0), p("1", 50_000.0), done("stop", 100.0)].concat()
                    + &done("length", 20.0),
                None,
            ),
            // Engine 1 restarted (1,000 since, from zero); `length` left out of this scrape:
            // 3,000 + 1,000 prompt tokens, 30 finished. The sums would read 60,000 → 14,000
            // as a reset (14,000 counted), and 120 → 130 as 10 finished.
            (
                15,
                [p("0", 13_000.0), p("1", 1_000.0), done("stop", 130.0)].concat(),
                Some((4_000.0 / 15.0, 2.0)),
            ),
            // Engine 1 left out, engine 0's labels written in another order; `length` back at
            // the value it had: nothing counted for it.
            (
                30,
                "vllm:prompt_tokens_total{engine=\"0\",model_name=\"m\"} 16000\n".to_string()
                    + &done("stop", 160.0)
                    + &done("length", 20.0),
                Some((7_000.0 / 30.0, 2.0)),
            ),
            // Engine 1 back (1,000 → 4,000) and an engine 2 that first shows (500, from zero).
            (
                45,
                [p("0", 19_000.0), p("1", 4_000.0), p("2", 500.0)].concat()
                    + &done("stop", 190.0)
                    + &done("length", 20.0),
                Some((13_500.0 / 45.0, 2.0)),
            ),
        ];
        let mut w = RateWindow::default();
        for (at, text, want) in rows {
            let e = parse(&(text + generated));
            let reading = counter_reading(&e, crate::model::Timestamp::from_secs(at)).unwrap();
            let got = w
                .observe(reading)
                .map(|r| (r.prompt_tokens_per_sec, r.requests_per_sec));
            match (got, want) {
                (None, None) => {}
                (Some(g), Some(w)) => assert!(
                    (g.0 - w.0).abs() < 1e-9 && (g.1 - w.1).abs() < 1e-9,
                    "at {at} s: {g:?}, want {w:?}"
                ),
                _ => panic!("at {at} s: {got:?}, want {want:?}"),
            }
        }
    }

    /// A server that stops exposing its token counters (a restart into another version) starts
    /// a new window: its tokens would otherwise read as their whole lifetime at once.
    #[test]
    fn a_change_in_the_counters_exposed_starts_a_new_window() {
        let mut w = RateWindow::default();
        w.observe(reading(0, 10_000.0, 4_000.0, 100.0));
        assert!(w.observe(reading(15, 40_000.0, 10_000.0, 130.0)).is_some());
        let without = CounterReading {
            tokens: false,
            ..reading(30, 0.0, 0.0, 160.0)
        };
        assert_eq!(
            w.observe(without),
            None,
            "the first reading of a new window"
        );
        let r = w
            .observe(CounterReading {
                tokens: false,
                ..reading(45, 0.0, 0.0, 190.0)
            })
            .unwrap();
        assert_eq!((r.requests_per_sec, r.window_secs), (2.0, 15.0));
    }

    /// vLLM and TGI spell the same counters and gauges differently; a server without token
    /// counters still gives its request rate, but no load.
    #[test]
    fn counters_and_gauges_are_read_from_vllm_and_tgi() {
        let t = crate::model::Timestamp::from_secs(0);
        let vllm = parse(
            "vllm:prompt_tokens_total{model_name=\"m\"} 1200\n\
             vllm:generation_tokens_total{model_name=\"m\"} 300\n\
             vllm:request_success_total{finished_reason=\"stop\"} 7\n\
             vllm:request_success_total{finished_reason=\"length\"} 3\n\
             vllm:num_requests_waiting 4\nvllm:num_requests_running 9\n\
             vllm:kv_cache_usage_perc 0.42\n",
        );
        let r = counter_reading(&vllm, t).unwrap();
        assert_eq!(
            (
                r.prompt_tokens.total(),
                r.generation_tokens.total(),
                r.finished.total(),
                r.tokens
            ),
            (1200.0, 300.0, 10.0, true)
        );
        assert_eq!(server_gauges(&vllm), (4.0, 9.0, 0.42));
        let v0 = parse("vllm:gpu_cache_usage_perc 0.5\nvllm:request_success_total 2\n");
        assert_eq!(server_gauges(&v0).2, 0.5);
        let r = counter_reading(&v0, t).unwrap();
        assert_eq!((r.finished.total(), r.tokens), (2.0, false));
        let tgi = parse(
            "tgi_request_input_length_sum 5000\ntgi_request_input_length_count 10\n\
             tgi_request_generated_tokens_sum 800\ntgi_request_success 10\n\
             tgi_queue_size 2\ntgi_batch_current_size 6\n",
        );
        let r = counter_reading(&tgi, t).unwrap();
        assert_eq!(
            (
                r.prompt_tokens.total(),
                r.generation_tokens.total(),
                r.finished.total(),
                r.tokens
            ),
            (5000.0, 800.0, 10.0, true)
        );
        assert_eq!(server_gauges(&tgi), (2.0, 6.0, 0.0));
        assert_eq!(counter_reading(&parse("up 1\n"), t), None);
        for s in [
            Signal::RequestRate,
            Signal::PromptTokensRate,
            Signal::GenerationTokensRate,
            Signal::TokenWork,
        ] {
            assert!(has_default(s), "{s:?}");
        }
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
