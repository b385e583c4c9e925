//! Traffic: one record per request (arrival, prompt tokens, output tokens), from the built-in
//! scenarios or from trace files, rescaled by `--scale`, generated lazily in arrival order so a
//! 14-day replay never sits in memory.
//!
//! Rates are piecewise constant (per second for scenarios, per minute for per-minute traces) and
//! arrivals inside a piece are Poisson, which is exact for a piecewise-constant rate because the
//! exponential gap is memoryless.

use serde::Deserialize;
use std::fmt;
use std::sync::Arc;

use super::json_export;
use super::rng::Rng;

/// One request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Request {
    /// Seconds since the start of the run.
    pub arrival_secs: f64,
    /// Prompt length, tokens.
    pub prompt_tokens: u32,
    /// Output length, tokens.
    pub output_tokens: u32,
}

/// Largest prompt / output the generators produce (a request must fit one replica's KV cache).
pub const MAX_PROMPT_TOKENS: u32 = 16_000;
/// See [`MAX_PROMPT_TOKENS`].
pub const MAX_OUTPUT_TOKENS: u32 = 2_000;

/// Where token counts come from.
#[derive(Clone, Debug)]
pub enum TokenMix {
    /// Log-normal lengths; `doc_share` of requests are long documents, the rest chat.
    Chat {
        /// Fraction (0–1) of long-document requests.
        doc_share: f64,
    },
    /// Drawn uniformly from a per-request trace's (prompt, output) pairs.
    Empirical(Arc<Vec<(u32, u32)>>),
}

/// Chat: ~500 prompt / ~150 output tokens (median); long documents ~6,000 / ~400 (EVALUATION.md).
const CHAT: (f64, f64) = (500.0, 150.0);
const DOC: (f64, f64) = (6_000.0, 400.0);
const SIGMA: f64 = 0.6;

/// exp(SIGMA × z) at 4,096 evenly spaced quantiles of the standard normal: a log-normal draw
/// is then one table look-up and a multiply (token counts are whole numbers anyway; the table
/// reaches ±3.5 σ).
fn lognormal_factors() -> &'static [f64] {
    static TABLE: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        const N: usize = 4096;
        (0..N)
            .map(|i| (SIGMA * inverse_normal_cdf((i as f64 + 0.5) / N as f64)).exp())
            .collect()
    })
}

/// Φ⁻¹(p) by Acklam's rational approximation (relative error < 1.2e-9).
fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

fn draw_tokens(mix: &TokenMix, doc_share: f64, rng: &mut Rng) -> (u32, u32) {
    match mix {
        TokenMix::Empirical(pairs) => pairs[(rng.next_u64() % pairs.len() as u64) as usize],
        TokenMix::Chat { .. } => {
            let (p, o) = if doc_share > 0.0 && rng.chance(doc_share) {
                DOC
            } else {
                CHAT
            };
            let table = lognormal_factors();
            let bits = rng.next_u64();
            let (i, j) = ((bits >> 52) as usize, ((bits >> 40) & 0xFFF) as usize);
            let prompt = (p * table[i]).round().clamp(1.0, MAX_PROMPT_TOKENS as f64);
            let output = (o * table[j]).round().clamp(1.0, MAX_OUTPUT_TOKENS as f64);
            (prompt as u32, output as u32)
        }
    }
}

/// A piecewise-constant arrival rate.
#[derive(Clone, Debug)]
pub struct RateProfile {
    /// Length of each piece, seconds.
    pub step_secs: f64,
    /// Requests per second in each piece.
    pub rates: Vec<f64>,
    /// Share of long-document requests in each piece (empty = use the mix's own).
    pub doc_share: Vec<f64>,
}

impl RateProfile {
    /// Duration covered, seconds.
    pub fn duration_secs(&self) -> f64 {
        self.step_secs * self.rates.len() as f64
    }
}

/// What requests a run replays.
#[derive(Clone, Debug)]
pub enum Source {
    /// Poisson arrivals at a piecewise-constant rate.
    Rate(RateProfile, TokenMix),
    /// A per-request trace, replayed as is (rescaled by thinning or duplication).
    Requests(Arc<Vec<Request>>),
}

/// A traffic source with its scale, seed and length: everything that fixes the request stream.
#[derive(Clone, Debug)]
pub struct Traffic {
    /// The source.
    pub source: Source,
    /// Rate multiplier.
    pub scale: f64,
    /// Seed.
    pub seed: u64,
    /// Length of the run, seconds.
    pub duration_secs: f64,
}

/// Requests one simulated run replays at most, unless the user raises it (`simulate
/// --max-requests`): about a minute of simulation per policy on this project's 2-core machine
/// at a busy fleet's queueing, and a bound on what a typo (`1e9` requests a minute, `--scale
/// 1e9`) can cost. A 14-day trace at 30 requests/s is 36 million.
pub const DEFAULT_MAX_REQUESTS: f64 = 100_000_000.0;

/// The longest per-minute trace read, minutes (a year): what a row's minute may say, and so
/// what a trace of a few bytes may make the reader allocate.
pub const MAX_TRACE_MINUTES: usize = 366 * 24 * 60;

/// Traffic larger than the run's limit.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error(
    "the traffic brings about {expected:.3e} requests over the run (scale {scale}); the limit is \
     {limit:.3e}: shorten the run (--duration-secs), lower --scale, or raise the limit with \
     --max-requests if the machine can take it"
)]
pub struct TooMuchTraffic {
    /// Requests expected.
    pub expected: f64,
    /// The rate multiplier.
    pub scale: f64,
    /// The limit.
    pub limit: f64,
}

impl Traffic {
    /// The requests this traffic brings over its duration (the expectation, for rate sources).
    pub fn expected_requests(&self) -> f64 {
        let n = match &self.source {
            Source::Rate(profile, _) => profile
                .rates
                .iter()
                .enumerate()
                .map(|(i, rate)| {
                    let from = i as f64 * profile.step_secs;
                    let secs = (self.duration_secs - from).clamp(0.0, profile.step_secs);
                    rate * secs
                })
                .sum::<f64>(),
            Source::Requests(reqs) => reqs
                .iter()
                .take_while(|r| r.arrival_secs < self.duration_secs)
                .count() as f64,
        };
        n * self.scale
    }

    /// Refuses traffic of more than `limit` requests before any is generated (a run that would
    /// take hours, or never end, is refused at once with what to change).
    pub fn check_size(&self, limit: f64) -> Result<(), TooMuchTraffic> {
        let expected = self.expected_requests();
        if expected.is_finite() && expected <= limit {
            Ok(())
        } else {
            Err(TooMuchTraffic {
                expected,
                scale: self.scale,
                limit,
            })
        }
    }

    /// A fresh iterator over the requests (the same every time: it is seeded).
    pub fn requests(&self) -> Requests {
        let rng = Rng::new(self.seed, 1);
        match &self.source {
            Source::Rate(profile, mix) => Requests::Rate {
                profile: profile.clone(),
                mix: mix.clone(),
                scale: self.scale,
                end: self.duration_secs.min(profile.duration_secs()),
                t: 0.0,
                rng,
            },
            Source::Requests(reqs) => Requests::Replay {
                reqs: reqs.clone(),
                scale: self.scale,
                end: self.duration_secs,
                idx: 0,
                copies_left: 0,
                rng,
            },
        }
    }
}

/// Iterator over requests in arrival order.
pub enum Requests {
    /// From a rate profile.
    #[allow(missing_docs)]
    Rate {
        profile: RateProfile,
        mix: TokenMix,
        scale: f64,
        end: f64,
        t: f64,
        rng: Rng,
    },
    /// From a per-request trace.
    #[allow(missing_docs)]
    Replay {
        reqs: Arc<Vec<Request>>,
        scale: f64,
        end: f64,
        idx: usize,
        copies_left: u32,
        rng: Rng,
    },
}

impl Iterator for Requests {
    type Item = Request;

    fn next(&mut self) -> Option<Request> {
        match self {
            Requests::Rate {
                profile,
                mix,
                scale,
                end,
                t,
                rng,
            } => loop {
                if *t >= *end {
                    return None;
                }
                let step = (*t / profile.step_secs) as usize;
                let step_end = ((step + 1) as f64 * profile.step_secs).min(*end);
                let rate = profile.rates.get(step).copied().unwrap_or(0.0) * *scale;
                if rate <= 0.0 {
                    *t = step_end;
                    continue;
                }
                let next = *t + rng.exp(rate);
                if next >= step_end {
                    // Memoryless: restart the draw at the boundary with the next piece's rate.
                    *t = step_end;
                    continue;
                }
                *t = next;
                let doc_share = match mix {
                    TokenMix::Chat { doc_share } => {
                        profile.doc_share.get(step).copied().unwrap_or(*doc_share)
                    }
                    TokenMix::Empirical(_) => 0.0,
                };
                let (prompt_tokens, output_tokens) = draw_tokens(mix, doc_share, rng);
                return Some(Request {
                    arrival_secs: next,
                    prompt_tokens,
                    output_tokens,
                });
            },
            Requests::Replay {
                reqs,
                scale,
                end,
                idx,
                copies_left,
                rng,
            } => loop {
                let r = *reqs.get(*idx)?;
                if r.arrival_secs >= *end {
                    return None;
                }
                if *copies_left == 0 {
                    // Each original request is emitted floor(scale) times, plus once more with
                    // probability frac(scale): the rate scales, the shape stays.
                    let whole = scale.floor() as u32;
                    *copies_left = whole + u32::from(rng.chance(*scale - scale.floor()));
                    if *copies_left == 0 {
                        *idx += 1;
                        continue;
                    }
                }
                *copies_left -= 1;
                let k = *copies_left;
                if *copies_left == 0 {
                    *idx += 1;
                }
                // Copies 1 ms apart keep the order (and stay before the next original request
                // except in sub-millisecond bursts, where the order of copies does not matter).
                return Some(Request {
                    arrival_secs: r.arrival_secs + k as f64 * 1e-3,
                    ..r
                });
            },
        }
    }
}

/// A trace file that could not be read, with its position.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct TraceError {
    /// The file's name as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and what was expected.
    pub message: String,
}

/// A parsed trace file.
#[derive(Clone, Debug)]
pub enum Trace {
    /// `t_s,prompt_tokens,output_tokens`.
    PerRequest(Vec<Request>),
    /// `minute,requests`: requests per minute; a missing minute is `None` (a gap for a
    /// forecaster, zero traffic for the simulator).
    PerMinute(Vec<Option<f64>>),
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trace::PerRequest(r) => write!(f, "{} requests", r.len()),
            Trace::PerMinute(m) => write!(f, "{} minutes", m.len()),
        }
    }
}

/// Parses a trace in either CSV form; the header line says which. A leading byte-order mark
/// (what a spreadsheet's "CSV UTF-8" export writes) and Windows line ends are read past, and a
/// file separated by tabs or semicolons reads as one separated by commas
/// ([`comma_separated`]).
pub fn parse_trace(file: &str, text: &str) -> Result<Trace, TraceError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = &*comma_separated(text);
    let err = |line: usize, column: usize, message: String| located(file, line, column, message);
    let body = text.trim_start();
    if body.starts_with('{') {
        let first_line = body.lines().next().unwrap_or_default();
        return if json_export::is_json_export(first_line) {
            json_export::parse_json_export(file, text)
        } else {
            parse_jsonl(file, text)
        };
    }
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next().ok_or_else(|| {
        err(
            1,
            1,
            "empty file; expected a header `t_s,prompt_tokens,output_tokens` or `minute,requests`"
                .into(),
        )
    })?;
    let header: Vec<String> = header
        .trim()
        .split(',')
        .map(|h| unquote(h).to_ascii_lowercase())
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    if let Some(columns) = [BURSTGPT_COLUMNS, AZURE_COLUMNS]
        .iter()
        .find_map(|c| c.find(&header))
    {
        return parse_request_columns(file, text, columns);
    }
    let per_request = match header.as_slice() {
        ["t_s", "prompt_tokens", "output_tokens"] => true,
        ["minute", "requests"] => false,
        // One series against time, whatever its column is named: Grafana's CSV export heads
        // it `"Time","<series>"`.
        ["timestamp" | "time", _] => return parse_timestamped(file, text),
        _ => {
            return Err(err(
                1,
                1,
                format!(
                    "unknown header {:?}; expected `t_s,prompt_tokens,output_tokens` (one row per request), `minute,requests` (one row per minute), `timestamp,value` (an export: Unix time or RFC 3339, the demand per minute), Azure's `TIMESTAMP,ContextTokens,GeneratedTokens` (columns by name), BurstGPT's `Timestamp,…,Request tokens,Response tokens,…`, Mooncake's JSON lines, or a JSON answer of Prometheus's range query or CloudWatch's get-metric-data / get-metric-statistics",
                    header.join(",")
                ),
            ))
        }
    };
    let ncols = header.len();
    let mut requests = Vec::new();
    let mut minutes: Vec<Option<f64>> = Vec::new();
    let mut last = f64::NEG_INFINITY;
    for (i, line) in lines {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::with_capacity(ncols);
        let mut col = 1;
        for f in line.split(',') {
            fields.push((col, unquote(f)));
            col += f.chars().count() + 1;
        }
        if fields.len() != ncols {
            return Err(err(
                lineno,
                1,
                format!(
                    "expected {ncols} columns ({}), found {}",
                    header.join(","),
                    fields.len()
                ),
            ));
        }
        let num = |(col, s): (usize, &str), what: &str| -> Result<f64, TraceError> {
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
                Ok(v) => Err(err(
                    lineno,
                    col,
                    format!("{what} is {v}; expected a finite number ≥ 0"),
                )),
                Err(_) => Err(err(
                    lineno,
                    col,
                    format!("{what} is {s:?}; expected a number"),
                )),
            }
        };
        let t = num(fields[0], header[0])?;
        if t < last || (!per_request && t == last) {
            return Err(err(
                lineno,
                fields[0].0,
                format!(
                    "{} {t} comes after {last}; rows must be sorted by {}",
                    header[0], header[0]
                ),
            ));
        }
        last = t;
        if per_request {
            let tokens = |f: (usize, &str), what| {
                num(f, what).and_then(|v| whole_tokens(v, what).map_err(|m| err(lineno, f.0, m)))
            };
            requests.push(request(
                t,
                tokens(fields[1], "prompt_tokens")?,
                tokens(fields[2], "output_tokens")?,
            ));
        } else {
            if t.fract() != 0.0 {
                return Err(err(
                    lineno,
                    fields[0].0,
                    format!("minute is {t}; expected a whole number"),
                ));
            }
            let m = t as usize;
            if m >= MAX_TRACE_MINUTES {
                return Err(err(
                    lineno,
                    fields[0].0,
                    format!(
                        "minute {m} is beyond a year ({MAX_TRACE_MINUTES} minutes), the longest trace read"
                    ),
                ));
            }
            minutes.resize(m, None);
            // An empty cell is a minute nobody measured (what pandas and spreadsheets write for
            // a missing value): a gap, as a missing row is.
            let requests = fields[1];
            minutes.push(if requests.1.trim().is_empty() {
                None
            } else {
                Some(num(requests, "requests")?)
            });
        }
    }
    if per_request && requests.is_empty() || !per_request && minutes.is_empty() {
        return Err(err(1, 1, "the file has a header but no rows".into()));
    }
    if per_request {
        Ok(Trace::PerRequest(requests))
    } else {
        per_minute(file, minutes)
    }
}

/// A `timestamp,value` CSV export — Grafana's, a spreadsheet's, Prometheus's or CloudWatch's
/// answer written out as rows: each row the demand per minute at that time, rows sorted by
/// time ([`series_minutes`] makes the minutes; `json_export` reads the answers themselves).
fn parse_timestamped(file: &str, text: &str) -> Result<Trace, TraceError> {
    let err = |line: usize, column: usize, message: String| located(file, line, column, message);
    let mut rows: Vec<SeriesPoint> = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let Some((ts, value)) = line.split_once(',') else {
            return Err(err(
                lineno,
                1,
                "expected 2 columns (timestamp,value)".into(),
            ));
        };
        let column = ts.chars().count() + 2;
        let (ts, value) = (unquote(ts), unquote(value));
        let Some(secs) = export_timestamp_secs(ts) else {
            return Err(err(
                lineno,
                1,
                format!("timestamp is {ts:?}; expected Unix time (seconds, or milliseconds as Grafana writes it) or RFC 3339 (2026-12-01T09:00:00Z; without a zone, UTC)"),
            ));
        };
        if rows.last().is_some_and(|r| secs < r.secs) {
            return Err(err(
                lineno,
                1,
                format!("timestamp {ts} comes before the row above; rows must be sorted by time"),
            ));
        }
        // An empty value is a minute nobody measured: a gap, as a missing row is.
        let value = match value.parse::<f64>() {
            _ if value.trim().is_empty() => None,
            Ok(v) if v.is_finite() && v >= 0.0 => Some(v),
            _ => {
                return Err(err(
                    lineno,
                    column,
                    format!("value is {value:?}; expected a finite number ≥ 0"),
                ))
            }
        };
        rows.push(SeriesPoint {
            secs,
            value,
            at: lineno,
        });
    }
    series_minutes(file, &rows, |line| (line, 1))
}

/// A per-minute trace of `file`; refused when every minute is a gap (every value empty):
/// nothing to replay or forecast.
fn per_minute(file: &str, minutes: Vec<Option<f64>>) -> Result<Trace, TraceError> {
    if minutes.iter().all(Option::is_none) {
        return Err(located(
            file,
            1,
            1,
            "every row's value is empty (a gap); expected a number in at least one".into(),
        ));
    }
    Ok(Trace::PerMinute(minutes))
}

/// One point of an exported series: its time (Unix seconds), its value (`None`: a row left
/// empty, a gap that still ends the row before it), and where it is in the file — a line, or a
/// byte offset, whatever the reader's `locate` turns into a line and column (for an error about
/// it; a JSON reader works out lines only then).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct SeriesPoint {
    pub secs: f64,
    pub value: Option<f64>,
    pub at: usize,
}

/// The minutes of an exported series whose points are sorted by time: bucketed by minute from
/// the first point's minute (several in one minute are averaged: a 15-second step). A coarser
/// export — CloudWatch's 5-minute periods, an hourly series — has a point per interval: each
/// point's value holds over its interval's minutes ([`export_step_secs`]), as CloudWatch stamps
/// a period at its start. Minutes without a point are gaps, never zeros.
pub(super) fn series_minutes(
    file: &str,
    rows: &[SeriesPoint],
    locate: impl Fn(usize) -> (usize, usize),
) -> Result<Trace, TraceError> {
    let Some(first_row) = rows.first() else {
        return Err(located(
            file,
            1,
            1,
            "the file has a header but no rows".into(),
        ));
    };
    let first = (first_row.secs / 60.0).floor() as i64;
    if let Some(late) = rows
        .iter()
        .find(|r| (r.secs / 60.0).floor() - first as f64 >= MAX_TRACE_MINUTES as f64)
    {
        let (line, column) = locate(late.at);
        return Err(located(
            file,
            line,
            column,
            format!(
                "a point {:.0} s after the first is beyond a year ({MAX_TRACE_MINUTES} minutes), the longest trace read",
                late.secs - first_row.secs
            ),
        ));
    }
    let times: Vec<f64> = rows.iter().map(|r| r.secs).collect();
    let step_mins = export_step_secs(&times).map_or(1, |s| (s / 60.0).round().max(1.0) as i64);
    let mut sums: Vec<(f64, u32)> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let minute = (row.secs / 60.0).floor() as i64 - first;
        let Some(value) = row.value else {
            // A gap, which still lengthens the series as a missing minute's row does.
            if sums.len() <= minute as usize {
                sums.resize(minute as usize + 1, (0.0, 0));
            }
            continue;
        };
        // A row holds over its interval, up to the next row's minute (a later row, or one
        // missing, leaves the rest a gap).
        let next = rows
            .get(i + 1)
            .map_or(i64::MAX, |r| (r.secs / 60.0).floor() as i64 - first);
        let until = (minute + step_mins)
            .min(next.max(minute + 1))
            .min(MAX_TRACE_MINUTES as i64);
        for m in minute..until {
            let m = m as usize;
            if sums.len() <= m {
                sums.resize(m + 1, (0.0, 0));
            }
            sums[m].0 += value;
            sums[m].1 += 1;
        }
    }
    per_minute(
        file,
        sums.into_iter()
            .map(|(sum, n)| (n > 0).then(|| sum / f64::from(n)))
            .collect(),
    )
}

/// A request of a trace, its lengths capped as every trace's are.
fn request(arrival_secs: f64, prompt_tokens: u32, output_tokens: u32) -> Request {
    Request {
        arrival_secs,
        prompt_tokens: prompt_tokens.min(MAX_PROMPT_TOKENS),
        output_tokens: output_tokens.min(MAX_OUTPUT_TOKENS),
    }
}

/// A token count: a whole number ≥ 1 (the message says what `v` is otherwise).
fn whole_tokens(v: f64, what: &str) -> Result<u32, String> {
    if v.fract() == 0.0 && v >= 1.0 && v <= f64::from(u32::MAX) {
        Ok(v as u32)
    } else {
        Err(format!("{what} is {v}; expected a whole number ≥ 1"))
    }
}

/// A published CSV's request columns as its header names them (found in any case and any
/// order; other columns are ignored), and which counts of 0 it keeps as one token.
struct NamedColumns {
    time: &'static str,
    prompt: &'static str,
    output: &'static str,
    zero_prompt_is_one: bool,
    zero_output_is_one: bool,
}

impl NamedColumns {
    /// Where `header` holds them; `None` when it lacks one.
    fn find(&self, header: &[&str]) -> Option<RequestColumns> {
        let at = |name: &'static str| {
            let i = header.iter().position(|h| h.eq_ignore_ascii_case(name))?;
            Some((i, name))
        };
        Some(RequestColumns {
            time: at(self.time)?,
            prompt: at(self.prompt)?,
            output: at(self.output)?,
            zero_prompt_is_one: self.zero_prompt_is_one,
            zero_output_is_one: self.zero_output_is_one,
        })
    }
}

/// BurstGPT's CSV (`HPMLL/BurstGPT`, an Azure OpenAI GPT service's trace:
/// `Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type`, the arrival in
/// seconds from the trace's start). A failed request (`Response tokens` 0, as its
/// `BurstGPT_*.csv` files keep them) is replayed with one output token: it arrived and its
/// prompt was read.
const BURSTGPT_COLUMNS: NamedColumns = NamedColumns {
    time: "Timestamp",
    prompt: "Request tokens",
    output: "Response tokens",
    zero_prompt_is_one: false,
    zero_output_is_one: true,
};

/// Azure's public inference traces. The LLM traces (`AzureLLMInferenceTrace_*.csv`, 2023 and
/// 2024) are `TIMESTAMP,ContextTokens,GeneratedTokens`; the multimodal one
/// (`AzureLMMInferenceTrace_multimodal.csv`, 2025) adds `NumImages`, which is not replayed (an
/// image's encoding is not in the performance model). One row per request, its arrival a date
/// and time (`2023-11-16 18:15:46.6805900`, UTC). A count of 0 — the rows tools reading these
/// traces drop as failed requests, or an image-only prompt — is replayed as one token: the
/// request arrived, and the file is not refused for it.
const AZURE_COLUMNS: NamedColumns = NamedColumns {
    time: "TIMESTAMP",
    prompt: "ContextTokens",
    output: "GeneratedTokens",
    zero_prompt_is_one: true,
    zero_output_is_one: true,
};

/// Where a published CSV keeps a request: (column index, its name for messages) of its arrival
/// (Unix time, seconds from a start, or a date and time: [`export_timestamp_secs`]), its prompt
/// and its output lengths.
struct RequestColumns {
    time: (usize, &'static str),
    prompt: (usize, &'static str),
    output: (usize, &'static str),
    /// A prompt of 0 tokens is read as one.
    zero_prompt_is_one: bool,
    /// An output of 0 tokens (a failed request the trace keeps) is read as one.
    zero_output_is_one: bool,
}

/// A published CSV's requests, one a row after its header, from the columns `c` names.
fn parse_request_columns(file: &str, text: &str, c: RequestColumns) -> Result<Trace, TraceError> {
    published_requests(file, text, 1, |line, lineno| {
        let raw: Vec<&str> = line.split(',').collect();
        // A column's text and where it starts on the line.
        let field = |(i, what): (usize, &str)| -> Result<(usize, &str), TraceError> {
            let column = 1 + raw[..i.min(raw.len())]
                .iter()
                .map(|f| f.chars().count() + 1)
                .sum::<usize>();
            raw.get(i).map(|f| (column, unquote(f))).ok_or_else(|| {
                located(
                    file,
                    lineno,
                    column,
                    format!("no {what} column in this row"),
                )
            })
        };
        let (column, ts) = field(c.time)?;
        let secs = export_timestamp_secs(ts).ok_or_else(|| {
            located(
                file,
                lineno,
                column,
                format!(
                    "{} is {ts:?}; expected seconds or a date and time (2023-11-16 18:15:46.68)",
                    c.time.1
                ),
            )
        })?;
        let tokens = |col: (usize, &str), zero_is_one: bool| {
            let (column, f) = field(col)?;
            f.parse::<f64>()
                .map_err(|_| format!("{} is {f:?}; expected a whole number ≥ 1", col.1))
                .and_then(|v| whole_tokens(if zero_is_one && v == 0.0 { 1.0 } else { v }, col.1))
                .map_err(|m| located(file, lineno, column, m))
        };
        Ok((
            secs,
            tokens(c.prompt, c.zero_prompt_is_one)?,
            tokens(c.output, c.zero_output_is_one)?,
        ))
    })
}

/// One line of Mooncake's public traces (`kvcache-ai/Mooncake`, FAST'25): the arrival in
/// milliseconds and the lengths; `hash_ids` (prefix-cache blocks) is not used.
#[derive(Deserialize)]
struct MooncakeLine {
    timestamp: f64,
    input_length: f64,
    output_length: f64,
}

/// Mooncake's JSON lines (`{"timestamp": 27482, "input_length": 6955, "output_length": 52, …}`),
/// one request a line.
fn parse_jsonl(file: &str, text: &str) -> Result<Trace, TraceError> {
    published_requests(file, text, 0, |line, lineno| {
        let row: MooncakeLine = serde_json::from_str(line).map_err(|e| {
            // serde_json's message ends with its own position in the one line it was given.
            let message = e.to_string();
            let message = message.split(" at line ").next().unwrap_or_default();
            located(
                file,
                lineno,
                e.column().max(1),
                format!("{message}; expected a JSON object with timestamp (ms), input_length and output_length (Mooncake's trace)"),
            )
        })?;
        let tokens = |v, what| whole_tokens(v, what).map_err(|m| located(file, lineno, 1, m));
        Ok((
            row.timestamp / 1000.0,
            tokens(row.input_length, "input_length")?,
            tokens(row.output_length, "output_length")?,
        ))
    })
}

/// The requests of a published trace, one a line after `header_lines`: `row` reads a line
/// (with its 1-based number) into its arrival (seconds on any origin) and lengths; arrivals
/// must not go back in time and count from the first request's.
fn published_requests(
    file: &str,
    text: &str,
    header_lines: usize,
    row: impl Fn(&str, usize) -> Result<(f64, u32, u32), TraceError>,
) -> Result<Trace, TraceError> {
    let mut requests = Vec::new();
    let mut first = None;
    let mut last = f64::NEG_INFINITY;
    for (i, line) in text.lines().enumerate().skip(header_lines) {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let (secs, prompt, output) = row(line, lineno)?;
        if !secs.is_finite() || secs < last {
            return Err(located(
                file,
                lineno,
                1,
                format!("arrival {secs} s comes before the row above; rows must be sorted by time"),
            ));
        }
        last = secs;
        let origin = *first.get_or_insert(secs);
        requests.push(request(secs - origin, prompt, output));
    }
    if requests.is_empty() {
        return Err(located(file, 1, 1, "no requests in the file".into()));
    }
    Ok(Trace::PerRequest(requests))
}

/// An error at `line`, `column` of `file`.
pub(super) fn located(file: &str, line: usize, column: usize, message: String) -> TraceError {
    TraceError {
        file: file.to_string(),
        line,
        column,
        message,
    }
}

/// `text` with commas separating its fields, when its header separates them otherwise: with
/// tabs (a database's or a spreadsheet's "tab-separated" export), or with semicolons — how a
/// spreadsheet writes CSV where the decimal separator is a comma (`0;10,5`: 10.5 requests), so
/// its commas become points. One character for one, so a line and column in the result are
/// those of the file. A header with a comma, or a JSON file, is left as it is.
fn comma_separated(text: &str) -> std::borrow::Cow<'_, str> {
    let header = text.lines().next().unwrap_or_default();
    if header.contains(',') || header.trim_start().starts_with('{') {
        return text.into();
    }
    if header.contains('\t') {
        text.replace('\t', ",").into()
    } else if header.contains(';') {
        text.chars()
            .map(|c| match c {
                ',' => '.',
                ';' => ',',
                c => c,
            })
            .collect::<String>()
            .into()
    } else {
        text.into()
    }
}

/// A CSV field without the spaces around it and one pair of double quotes (spreadsheets and
/// Grafana quote every field of an export).
fn unquote(field: &str) -> &str {
    let f = field.trim();
    f.strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .map_or(f, str::trim)
}

/// Seconds since the Unix epoch of an export's timestamp: Unix time — in seconds (Prometheus),
/// or, told apart by its size, milliseconds (Grafana's CSV export, JavaScript), microseconds or
/// nanoseconds: a count of seconds that large would be past the year 5000 — or RFC 3339
/// (CloudWatch), or a date and time without a zone (a spreadsheet's, a database's), read as
/// UTC. `None` when it is none of these.
pub(super) fn export_timestamp_secs(ts: &str) -> Option<f64> {
    if let Ok(v) = ts.parse::<f64>() {
        if !v.is_finite() {
            return None;
        }
        let per_sec = [1.0, 1e3, 1e6, 1e9]
            .into_iter()
            .find(|per| v.abs() < 1e11 * per)
            .unwrap_or(1e9);
        return Some(v / per_sec);
    }
    // To the nanosecond: requests of a per-request trace arrive within milliseconds.
    let secs = |t: chrono::DateTime<chrono::Utc>| {
        t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(ts) {
        return Some(secs(t.to_utc()));
    }
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(ts, f).ok())
    .map(|t| secs(t.and_utc()))
}

/// The step of an export coarser than a minute, seconds: the smallest spacing of its rows,
/// when that is at least two minutes (`None` for a per-minute or finer export, or one row). The
/// smallest, not the usual: a per-minute export with minutes missing (CloudWatch has no
/// datapoint for a minute without requests) still has rows a minute apart somewhere, and its
/// missing minutes stay gaps; an export at a coarser step has none closer than its step.
fn export_step_secs(times: &[f64]) -> Option<f64> {
    times
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g > 0.0)
        .reduce(f64::min)
        .filter(|step| *step >= 120.0)
}

impl Trace {
    /// The traffic this trace replays. A per-minute trace draws token counts from `mix`.
    pub fn into_source(self, mix: TokenMix) -> Source {
        match self {
            Trace::PerRequest(r) => Source::Requests(Arc::new(r)),
            Trace::PerMinute(m) => Source::Rate(
                RateProfile {
                    step_secs: 60.0,
                    rates: m.into_iter().map(|n| n.unwrap_or(0.0) / 60.0).collect(),
                    doc_share: Vec::new(),
                },
                mix,
            ),
        }
    }

    /// Length covered, seconds.
    pub fn duration_secs(&self) -> f64 {
        match self {
            Trace::PerRequest(r) => r.last().map_or(0.0, |l| l.arrival_secs + 1.0),
            Trace::PerMinute(m) => m.len() as f64 * 60.0,
        }
    }
}

/// `n` requests of `prompt` and `output` tokens, one every `gap_secs` seconds from t = 0 (for
/// tests).
#[cfg(test)]
pub(crate) fn evenly(n: usize, gap_secs: f64, prompt: u32, output: u32) -> Vec<Request> {
    (0..n)
        .map(|i| Request {
            arrival_secs: i as f64 * gap_secs,
            prompt_tokens: prompt,
            output_tokens: output,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A coarser export has a row per interval, and each row's value (the demand per minute)
    /// holds over its interval's minutes; a missing row leaves its interval a gap, and a
    /// per-minute export with minutes missing keeps them as gaps.
    #[test]
    fn a_coarser_export_holds_each_row_over_its_interval() {
        let t0 = 1_764_579_600; // a whole hour
        let rows = |secs_values: &[(i64, f64)]| {
            let mut text = String::from("timestamp,value\n");
            for (s, v) in secs_values {
                text.push_str(&format!("{},{v}\n", t0 + s));
            }
            text
        };
        let held = |v: f64, n: usize| vec![Some(v); n];
        let gap = |n: usize| vec![None; n];
        let cat = |parts: Vec<Vec<Option<f64>>>| parts.concat();
        // (why, rows, minutes expected)
        let cases: Vec<(&str, String, Vec<Option<f64>>)> = vec![
            (
                "5-minute periods",
                rows(&[(0, 10.0), (300, 20.0), (600, 30.0)]),
                cat(vec![held(10.0, 5), held(20.0, 5), held(30.0, 5)]),
            ),
            (
                "a 5-minute period missing",
                rows(&[(0, 10.0), (300, 20.0), (900, 30.0)]),
                cat(vec![held(10.0, 5), held(20.0, 5), gap(5), held(30.0, 5)]),
            ),
            (
                "RFC 3339, hourly",
                "timestamp,value\n2026-12-01T09:00:00Z,6\n2026-12-01T10:00:00Z,9\n".to_string(),
                cat(vec![held(6.0, 60), held(9.0, 60)]),
            ),
            (
                "a per-minute export with minutes missing",
                rows(&[(0, 1.0), (60, 2.0), (240, 3.0), (600, 4.0)]),
                cat(vec![
                    vec![Some(1.0), Some(2.0)],
                    gap(2),
                    vec![Some(3.0)],
                    gap(5),
                    vec![Some(4.0)],
                ]),
            ),
        ];
        for (why, text, want) in cases {
            let Trace::PerMinute(m) = parse_trace("x.csv", &text).unwrap() else {
                panic!("{why}: per minute")
            };
            assert_eq!(m, want, "{why}");
        }
    }

    /// The same three minutes written as the tools that export them write them: Unix seconds,
    /// Grafana's milliseconds with every field quoted, a spreadsheet's date and time without a
    /// zone (UTC) under a capitalised header. A count of milliseconds read as seconds had
    /// replayed two rows a minute apart as 33 hours of traffic.
    #[test]
    fn exports_in_other_tools_timestamp_forms_read_the_same() {
        let want = vec![Some(4.0), Some(5.0), Some(6.0)];
        let cases = [
            ("Unix seconds", "timestamp,value\n1764579600,4\n1764579660,5\n1764579720,6\n"),
            (
                "Unix milliseconds, quoted",
                "\"timestamp\",\"value\"\n\"1764579600000\",\"4\"\n\"1764579660000\",\"5\"\n\"1764579720000\",\"6\"\n",
            ),
            (
                "Unix nanoseconds",
                "timestamp,value\n1764579600000000000,4\n1764579660000000000,5\n1764579720000000000,6\n",
            ),
            (
                "Grafana's header: Time and the series' name",
                "\"Time\",\"sum(rate(vllm:request_success_total[1m]))*60\"\n\"1764579600000\",\"4\"\n\"1764579660000\",\"5\"\n\"1764579720000\",\"6\"\n",
            ),
            (
                "date and time without a zone, capitalised header",
                "Timestamp,Value\r\n2025-12-01 09:00:00,4\r\n2025-12-01 09:01:00,5\r\n2025-12-01 09:02:00,6\r\n",
            ),
            (
                "RFC 3339 with fractions and an offset",
                "timestamp,value\n2025-12-01T10:00:00.000+01:00,4\n2025-12-01T10:01:00.000+01:00,5\n2025-12-01T10:02:00.000+01:00,6\n",
            ),
        ];
        for (why, text) in cases {
            let Trace::PerMinute(m) = parse_trace("x.csv", text).unwrap() else {
                panic!("{why}: per minute")
            };
            assert_eq!(m, want, "{why}");
        }
        // What is none of them says so, and where.
        let bad = parse_trace(
            "x.csv",
            "timestamp,value\n1764579600,4\n01/12/2025 09:01,5\n",
        )
        .unwrap_err();
        assert_eq!((bad.line, bad.column), (3, 1), "{bad}");
        assert!(bad.message.contains("RFC 3339"), "{bad}");
        // A quoted value's column is where its field starts.
        let bad = parse_trace("x.csv", "timestamp,value\n\"1764579600\",\"-4\"\n").unwrap_err();
        assert_eq!((bad.line, bad.column), (2, 14), "{bad}");
    }

    /// Azure's (LLM and multimodal), Mooncake's and BurstGPT's published formats become
    /// per-request traces whose arrivals count from the first request; a bad row is located.
    #[test]
    fn published_llm_trace_formats_are_read_as_published() {
        let azure = "TIMESTAMP,ContextTokens,GeneratedTokens\n\
                     2023-11-16 18:15:46.6805900,374,44\n\
                     2023-11-16 18:15:50.9951690,396,109\n";
        let mooncake = "{\"timestamp\": 0, \"input_length\": 6758, \"output_length\": 500, \"hash_ids\": [0, 1]}\n\
                        {\"timestamp\": 2500, \"input_length\": 20000, \"output_length\": 3, \"hash_ids\": []}\n";
        // Azure's multimodal trace adds a column; the columns are found by name, and a count of
        // 0 (a failed request, an image-only prompt) is one token.
        let azure_multimodal = "TIMESTAMP,NumImages,ContextTokens,GeneratedTokens\n\
                                2024-10-15 00:00:00.000,1,0,12\n\
                                2024-10-15 00:00:01.500,0,388,0\n";
        // BurstGPT's columns are found by name; a failed request (no response) has one token.
        let burst = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n\
                     5,ChatGPT,472,18,490,Conversation log\n\
                     45,GPT-4,1087,0,1087,API log\n";
        let cases = [
            (azure, vec![(0.0, 374, 44), (4.314_579, 396, 109)]),
            // Lengths past the simulator's caps are capped, as in every trace.
            (
                mooncake,
                vec![(0.0, 6758, 500), (2.5, MAX_PROMPT_TOKENS, 3)],
            ),
            (burst, vec![(0.0, 472, 18), (40.0, 1087, 1)]),
            (azure_multimodal, vec![(0.0, 1, 12), (1.5, 388, 1)]),
        ];
        for (text, want) in cases {
            let Trace::PerRequest(got) = parse_trace("t", text).unwrap() else {
                panic!("per request: {text}")
            };
            let got: Vec<(f64, u32, u32)> = got
                .iter()
                .map(|r| (r.arrival_secs, r.prompt_tokens, r.output_tokens))
                .collect();
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g.0 - w.0).abs() < 1e-6 && (g.1, g.2) == (w.1, w.2),
                    "{got:?}"
                );
            }
        }
        // (file, line, column, a word of the message)
        let bad = [
            (
                "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,374,-2\n",
                2,
                25,
                "GeneratedTokens",
            ),
            (
                "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,374,4\n2023-11-16 18:15:45,374,4\n",
                3,
                1,
                "sorted",
            ),
            ("{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 5}\n{\"timestamp\": 1}\n", 2, 16, "missing field `input_length`;"),
            (
                "Timestamp,Model,Request tokens,Response tokens\n5,ChatGPT,-4,2\n",
                2,
                11,
                "Request tokens",
            ),
        ];
        for (text, line, column, word) in bad {
            let e = parse_trace("t", text).unwrap_err();
            assert_eq!((e.line, e.column), (line, column), "{e}");
            assert!(e.message.contains(word), "{e}");
        }
    }

    #[test]
    fn timestamped_exports_become_minutes_with_gaps() {
        // Prometheus: Unix seconds at a 30-second step; a missing minute stays a gap.
        let prom = "timestamp,value\n1764579600,10\n1764579630,20\n1764579720,40\n";
        let Trace::PerMinute(m) = parse_trace("p.csv", prom).unwrap() else {
            panic!("per minute")
        };
        assert_eq!(m, vec![Some(15.0), None, Some(40.0)]);
        // CloudWatch: RFC 3339.
        let cw = "timestamp,value\n2026-12-01T09:00:00Z,5\n2026-12-01T09:01:00+00:00,7\n";
        let Trace::PerMinute(m) = parse_trace("c.csv", cw).unwrap() else {
            panic!("per minute")
        };
        assert_eq!(m, vec![Some(5.0), Some(7.0)]);
        // An empty value (pandas' and spreadsheets' missing value) is a gap, as a missing row
        // is, in either per-minute form; a minute's own column is never empty.
        for (text, want) in [
            (
                "timestamp,value\n1764579600,10\n1764579660,\n1764579720,\"\"\n1764579780,4\n",
                vec![Some(10.0), None, None, Some(4.0)],
            ),
            (
                "minute,requests\n0,3\n1,\n2, \n3,5\n",
                vec![Some(3.0), None, None, Some(5.0)],
            ),
        ] {
            let Trace::PerMinute(m) = parse_trace("g.csv", text).unwrap() else {
                panic!("per minute")
            };
            assert_eq!(m, want, "{text:?}");
        }
        let e = parse_trace("g.csv", "minute,requests\n,3\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1), "{e}");
        for text in [
            "minute,requests\n0,\n1,\n",
            "timestamp,value\n1764579600,\n",
        ] {
            let e = parse_trace("g.csv", text).unwrap_err();
            assert!(e.to_string().contains("every row's value is empty"), "{e}");
        }
        // Errors name the line and column and say what is valid.
        for (text, line, column, says) in [
            ("timestamp,value\nyesterday,5\n", 2, 1, "RFC 3339"),
            ("timestamp,value\n60,5\n0,5\n", 3, 1, "sorted"),
            ("timestamp,value\n60,-1\n", 2, 4, "≥ 0"),
            ("timestamp,value\n60\n", 2, 1, "2 columns"),
        ] {
            let e = parse_trace("x.csv", text).unwrap_err();
            assert_eq!((e.line, e.column), (line, column), "{e}");
            assert!(e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn poisson_rate_is_respected_and_replay_scales() {
        let t = Traffic {
            source: Source::Rate(
                RateProfile {
                    step_secs: 60.0,
                    rates: vec![10.0, 0.0, 30.0],
                    doc_share: vec![],
                },
                TokenMix::Chat { doc_share: 0.0 },
            ),
            scale: 1.0,
            seed: 3,
            duration_secs: 180.0,
        };
        let reqs: Vec<Request> = t.requests().collect();
        let per_min = |m: f64| {
            reqs.iter()
                .filter(|r| (r.arrival_secs / 60.0).floor() == m)
                .count()
        };
        assert!(
            (per_min(0.0) as f64 - 600.0).abs() < 100.0,
            "{}",
            per_min(0.0)
        );
        assert_eq!(per_min(1.0), 0);
        assert!((per_min(2.0) as f64 - 1800.0).abs() < 200.0);
        assert!(reqs
            .windows(2)
            .all(|w| w[0].arrival_secs <= w[1].arrival_secs));

        let orig: Vec<Request> = (0..1000)
            .map(|i| Request {
                arrival_secs: i as f64,
                prompt_tokens: 10,
                output_tokens: 5,
            })
            .collect();
        let replay = |scale| Traffic {
            source: Source::Requests(Arc::new(orig.clone())),
            scale,
            seed: 1,
            duration_secs: 1e9,
        };
        assert_eq!(replay(1.0).requests().count(), 1000);
        assert_eq!(replay(3.0).requests().count(), 3000);
        let half = replay(0.5).requests().count();
        assert!((400..600).contains(&half), "{half}");
    }

    #[test]
    fn chat_token_lengths_have_the_configured_medians() {
        let mut rng = Rng::new(5, 1);
        let mix = TokenMix::Chat { doc_share: 0.0 };
        let mut draws: Vec<(u32, u32)> = (0..20_001)
            .map(|_| draw_tokens(&mix, 0.0, &mut rng))
            .collect();
        draws.sort_by_key(|d| d.0);
        assert!(
            (draws[10_000].0 as f64 / CHAT.0 - 1.0).abs() < 0.03,
            "{:?}",
            draws[10_000]
        );
        draws.sort_by_key(|d| d.1);
        assert!((draws[10_000].1 as f64 / CHAT.1 - 1.0).abs() < 0.03);
        assert!((inverse_normal_cdf(0.975) - 1.959964).abs() < 1e-6);
        assert!((inverse_normal_cdf(0.01) + 2.326348).abs() < 1e-6);
    }

    #[test]
    fn a_spreadsheets_byte_order_mark_and_windows_line_ends_are_read_past() {
        // (trace, the minutes it holds)
        let cases = [
            (
                "\u{feff}minute,requests\r\n0,100\r\n\r\n1,120\r\n",
                vec![Some(100.0), Some(120.0)],
            ),
            (
                "\u{feff}timestamp,value\r\n60,5\r\n120,7\r\n",
                vec![Some(5.0), Some(7.0)],
            ),
            ("minute,requests\r\n0,3\r\n", vec![Some(3.0)]),
        ];
        for (text, want) in cases {
            let Trace::PerMinute(m) = parse_trace("s.csv", text).unwrap() else {
                panic!("per minute: {text:?}")
            };
            assert_eq!(m, want, "{text:?}");
        }
        let Trace::PerRequest(r) = parse_trace(
            "s.csv",
            "\u{feff}t_s,prompt_tokens,output_tokens\r\n0.5,10,5\r\n",
        )
        .unwrap() else {
            panic!("per request")
        };
        assert_eq!(r.len(), 1);
        // A mark anywhere else is no header.
        let e = parse_trace("s.csv", "minute,\u{feff}requests\n0,1\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 1), "{e}");
    }

    /// Tabs and semicolons separate a spreadsheet's or a database's export as commas do; with
    /// semicolons a comma is the decimal separator. Errors keep the file's columns.
    #[test]
    fn tab_and_semicolon_separated_exports_read_as_csv() {
        let csv = "timestamp,value\n1700000000,10.5\n1700000060,12\n";
        let want = parse_trace("a.csv", csv).unwrap();
        let cases = [
            "timestamp\tvalue\n1700000000\t10.5\n1700000060\t12\n",
            "Timestamp;Value\r\n1700000000;10,5\r\n1700000060;12\r\n",
            "\u{feff}\"Time\";\"Requests\"\n\"2023-11-14 22:13:20\";\"10,5\"\n\"2023-11-14 22:14:20\";\"12\"\n",
        ];
        for text in cases {
            match (parse_trace("b.csv", text), &want) {
                (Ok(Trace::PerMinute(got)), Trace::PerMinute(want)) => {
                    assert_eq!(&got, want, "{text:?}")
                }
                (other, _) => panic!("{text:?}: {other:?}"),
            }
        }
        let Trace::PerRequest(r) =
            parse_trace("r.tsv", "t_s\tprompt_tokens\toutput_tokens\n0.5\t100\t20\n").unwrap()
        else {
            panic!("per request")
        };
        assert_eq!((r[0].arrival_secs, r[0].prompt_tokens), (0.5, 100));
        let e = parse_trace("m.csv", "minute;requests\n0;1,5\n1;x\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 3), "{e}");
    }

    #[test]
    fn bad_trace_files_are_located() {
        let cases = [
            ("", "t.csv:1:1: empty file"),
            ("a,b\n1,2\n", "t.csv:1:1: unknown header \"a,b\""),
            (
                "t_s,prompt_tokens,output_tokens\n0,10\n",
                "t.csv:2:1: expected 3 columns",
            ),
            (
                "t_s,prompt_tokens,output_tokens\n0,10,5\nx,1,1\n",
                "t.csv:3:1: t_s is \"x\"; expected a number",
            ),
            (
                "t_s,prompt_tokens,output_tokens\n0,10,5\n-1,1,1\n",
                "t.csv:3:1: t_s is -1; expected a finite number ≥ 0",
            ),
            (
                "t_s,prompt_tokens,output_tokens\n5,10,5\n1,1,1\n",
                "t.csv:3:1: t_s 1 comes after 5",
            ),
            (
                "t_s,prompt_tokens,output_tokens\n0,10,2.5\n",
                "t.csv:2:6: output_tokens is 2.5; expected a whole number ≥ 1",
            ),
            (
                "minute,requests\n0,1\n0,2\n",
                "t.csv:3:1: minute 0 comes after 0",
            ),
            (
                "minute,requests\n0,1\n1,NaN\n",
                "t.csv:3:3: requests is NaN",
            ),
            (
                "minute,requests\n",
                "t.csv:1:1: the file has a header but no rows",
            ),
        ];
        for (text, want) in cases {
            let e = parse_trace("t.csv", text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
        let ok = parse_trace("t.csv", "minute,requests\n0,60\n3,120\n").unwrap();
        match ok {
            Trace::PerMinute(m) => assert_eq!(m, vec![Some(60.0), None, None, Some(120.0)]),
            _ => panic!(),
        }
    }
}
