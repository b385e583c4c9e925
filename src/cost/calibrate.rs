//! `calibrate`: a `[[profiles]]` table from one's own measured vLLM throughput, so that
//! `token_work`, the `"auto"` targets and the simulator count what *your* servers do.
//!
//! Input: the JSON files `vllm bench serve --save-result` (or the older
//! `benchmarks/benchmark_serving.py --save-result`) writes, one per concurrency level, run
//! against one server of the instance type. What each run gives:
//!
//! ```text
//! batch_b   = output_throughput × mean_tpot        (Little's law: sequences decoding at once)
//! step(b)   = mean_tpot                            (one decode step at that batch)
//! decode    : step(b) = base + per_seq × b         (least squares over the runs; ≥ 2 batches)
//! prefill   = mean prompt ÷ (mean TTFT − step)     (the run with the smallest batch, where a
//!                                                   request's TTFT is its own prefill)
//! ```
//!
//! `max_seqs` and the KV cache size are the server's settings, not measured here: vLLM logs
//! both at start (`GPU KV cache size: N tokens`, `--max-num-seqs`); give them as options, or
//! the built-in profile's are kept. The fit's residuals are printed beside the table, so a bad
//! run (a server that was not warm, a client that was the bottleneck) shows.

use serde::Deserialize;

use crate::sim::perf::Profile;

/// Why a benchmark file gave no calibration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrateError {
    /// Not the JSON `--save-result` writes, or a figure missing or out of range.
    #[error("{file}: {problem}; expected the JSON `vllm bench serve --save-result` writes (keys completed, total_input_tokens, output_throughput, mean_ttft_ms, mean_tpot_ms)")]
    Input {
        /// Which file.
        file: String,
        /// What is wrong, with the key.
        problem: String,
    },
    /// The runs do not determine the decode line.
    #[error("{0}")]
    Fit(String),
}

/// The figures of one benchmark run that the fit uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// The file it came from.
    pub file: String,
    /// `max_concurrency` (None: unbounded — the request rate sets the concurrency).
    pub max_concurrency: Option<f64>,
    /// Mean prompt tokens per request.
    pub mean_prompt_tokens: f64,
    /// Generated tokens per second, all requests.
    pub output_tokens_per_sec: f64,
    /// Mean time to first token, seconds.
    pub mean_ttft_secs: f64,
    /// Mean time per output token after the first, seconds.
    pub mean_tpot_secs: f64,
}

impl Run {
    /// Sequences decoding at once, by Little's law.
    pub fn batch(&self) -> f64 {
        self.output_tokens_per_sec * self.mean_tpot_secs
    }
}

#[derive(Deserialize)]
struct Saved {
    completed: Option<f64>,
    total_input_tokens: Option<f64>,
    output_throughput: Option<f64>,
    mean_ttft_ms: Option<f64>,
    mean_tpot_ms: Option<f64>,
    max_concurrency: Option<f64>,
}

/// Reads one `--save-result` file's text.
pub fn parse_run(file: &str, text: &str) -> Result<Run, CalibrateError> {
    let bad = |problem: String| CalibrateError::Input {
        file: file.to_string(),
        problem,
    };
    let saved: Saved = serde_json::from_str(text).map_err(|e| {
        bad(format!(
            "not JSON of the expected shape (line {}, column {}: {e})",
            e.line(),
            e.column()
        ))
    })?;
    let need = |key: &str, v: Option<f64>| -> Result<f64, CalibrateError> {
        match v {
            Some(x) if x.is_finite() && x > 0.0 => Ok(x),
            Some(x) => Err(bad(format!("{key} is {x}; a number above 0"))),
            None => Err(bad(format!("{key} is missing"))),
        }
    };
    let completed = need("completed", saved.completed)?;
    Ok(Run {
        file: file.to_string(),
        max_concurrency: saved.max_concurrency.filter(|c| c.is_finite() && *c > 0.0),
        mean_prompt_tokens: need("total_input_tokens", saved.total_input_tokens)? / completed,
        output_tokens_per_sec: need("output_throughput", saved.output_throughput)?,
        mean_ttft_secs: need("mean_ttft_ms", saved.mean_ttft_ms)? / 1000.0,
        mean_tpot_secs: need("mean_tpot_ms", saved.mean_tpot_ms)? / 1000.0,
    })
}

/// The calibrated figures and how well the runs fit them.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// The profile: the base one with the measured figures in.
    pub profile: Profile,
    /// Per run: its batch, its measured step and the line's, seconds.
    pub residuals: Vec<(String, f64, f64, f64)>,
    /// The run prefill was taken from.
    pub prefill_from: String,
}

/// Fits the decode line and the prefill rate over `runs`, on top of `base` (the built-in or
/// configured profile of the type: its `max_seqs`, KV size, start times and prices stay unless
/// given).
pub fn calibrate(
    base: &Profile,
    runs: &[Run],
    max_seqs: Option<u32>,
    kv_cache_tokens: Option<u64>,
) -> Result<Calibration, CalibrateError> {
    let points: Vec<(f64, f64)> = runs.iter().map(|r| (r.batch(), r.mean_tpot_secs)).collect();
    let (base_secs, per_seq_secs) = line(&points).ok_or_else(|| {
        CalibrateError::Fit(format!(
            "the decode line needs runs at two or more batch sizes (got {}: {}); run `vllm bench serve` at several --max-concurrency values",
            runs.len(),
            points
                .iter()
                .map(|(b, _)| format!("{b:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    if base_secs <= 0.0 || per_seq_secs < 0.0 {
        return Err(CalibrateError::Fit(format!(
            "the decode step does not grow with the batch (base {:.2} ms, {:.4} ms per sequence): the runs may not have saturated the server, or the client was the bottleneck",
            base_secs * 1000.0,
            per_seq_secs * 1000.0
        )));
    }
    let lightest = runs
        .iter()
        .min_by(|a, b| a.batch().total_cmp(&b.batch()))
        .expect("two or more runs");
    let prefill_secs = lightest.mean_ttft_secs - (base_secs + per_seq_secs * lightest.batch());
    if prefill_secs <= 0.0 {
        return Err(CalibrateError::Fit(format!(
            "{}: its mean TTFT ({:.1} ms) is not above one decode step: no prefill time to measure",
            lightest.file,
            lightest.mean_ttft_secs * 1000.0
        )));
    }
    let mut profile = base.clone();
    profile.decode_base_secs = base_secs;
    profile.decode_per_seq_secs = per_seq_secs;
    profile.prefill_tokens_per_sec = lightest.mean_prompt_tokens / prefill_secs;
    if let Some(m) = max_seqs {
        profile.max_seqs = m;
    }
    if let Some(k) = kv_cache_tokens {
        profile.kv_cache_tokens = k;
    }
    let residuals = runs
        .iter()
        .map(|r| {
            let b = r.batch();
            (
                r.file.clone(),
                b,
                r.mean_tpot_secs,
                base_secs + per_seq_secs * b,
            )
        })
        .collect();
    Ok(Calibration {
        profile,
        residuals,
        prefill_from: lightest.file.clone(),
    })
}

/// Least-squares `y = a + b·x`; `None` without two distinct x.
fn line(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if points.len() < 2 || sxx <= 1e-9 {
        return None;
    }
    let b = sxy / sxx;
    Some((my - b * mx, b))
}

/// The `[[profiles]]` table to paste into the policy file, with the fit as comments.
pub fn render(c: &Calibration, base: &Profile) -> String {
    let p = &c.profile;
    let mut out = String::new();
    out.push_str(&format!(
        "# Calibrated from {} run(s) of `vllm bench serve` (llm-autoscaler calibrate).\n",
        c.residuals.len()
    ));
    out.push_str("# run: batch (sequences decoding at once) · measured step · fitted step\n");
    for (file, batch, measured, fitted) in &c.residuals {
        out.push_str(&format!(
            "#   {file}: {batch:.1} · {:.2} ms · {:.2} ms\n",
            measured * 1000.0,
            fitted * 1000.0
        ));
    }
    out.push_str(&format!(
        "# prefill from {} (the smallest batch); the base profile's figures in brackets.\n",
        c.prefill_from
    ));
    out.push_str("[[profiles]]\n");
    out.push_str(&format!("instance_type = \"{}\"\n", p.instance_type));
    out.push_str(&format!("model = \"{}\"\n", p.model));
    out.push_str(&format!(
        "prefill_tokens_per_sec = {:.0}            # [{:.0}]\n",
        p.prefill_tokens_per_sec, base.prefill_tokens_per_sec
    ));
    out.push_str(&format!(
        "decode_base_ms = {:.2}                    # [{:.2}]\n",
        p.decode_base_secs * 1000.0,
        base.decode_base_secs * 1000.0
    ));
    out.push_str(&format!(
        "decode_per_seq_ms = {:.4}                 # [{:.4}]\n",
        p.decode_per_seq_secs * 1000.0,
        base.decode_per_seq_secs * 1000.0
    ));
    out.push_str(&format!(
        "max_seqs = {}                             # [{}]\n",
        p.max_seqs, base.max_seqs
    ));
    out.push_str(&format!(
        "kv_cache_tokens = {}                      # [{}]\n",
        p.kv_cache_tokens, base.kv_cache_tokens
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(concurrency: f64, batch: f64, step_ms: f64, prompt: f64, ttft_ms: f64) -> String {
        // Little's law backwards: output throughput = batch ÷ step.
        format!(
            r#"{{"completed": 200, "total_input_tokens": {}, "output_throughput": {}, "mean_ttft_ms": {ttft_ms}, "mean_tpot_ms": {step_ms}, "max_concurrency": {concurrency}, "ttfts": [0.1]}}"#,
            prompt * 200.0,
            batch / (step_ms / 1000.0)
        )
    }

    /// Runs generated from a known server (base 20 ms, 0.1 ms per sequence, 8,000 prompt
    /// tokens/s) give it back; too few batches, a flat step and bad files are refused with
    /// what to do.
    #[test]
    fn a_known_server_is_recovered_and_bad_input_is_located() {
        let base = crate::sim::perf::lookup(&crate::sim::perf::builtin(), "g6e.xlarge", "8b")
            .unwrap()
            .clone();
        let step = |b: f64| 20.0 + 0.1 * b;
        let runs: Vec<Run> = [(1.0, 1.0), (16.0, 15.2), (64.0, 61.0), (256.0, 230.0)]
            .iter()
            .map(|&(c, b)| {
                // At concurrency 1 the TTFT is the 1,000-token prompt's prefill plus a step.
                let ttft = 1000.0 / 8000.0 * 1000.0 + step(b);
                parse_run(&format!("c{c}.json"), &saved(c, b, step(b), 1000.0, ttft)).unwrap()
            })
            .collect();
        let c = calibrate(&base, &runs, Some(256), None).unwrap();
        assert!((c.profile.decode_base_secs - 0.020).abs() < 1e-9, "{c:?}");
        assert!(
            (c.profile.decode_per_seq_secs - 0.0001).abs() < 1e-12,
            "{c:?}"
        );
        assert!(
            (c.profile.prefill_tokens_per_sec - 8000.0).abs() < 1e-6,
            "{c:?}"
        );
        assert_eq!(c.prefill_from, "c1.json");
        assert_eq!(c.profile.kv_cache_tokens, base.kv_cache_tokens);
        let table = render(&c, &base);
        assert!(table.contains("prefill_tokens_per_sec = 8000"), "{table}");
        assert!(table.contains("decode_base_ms = 20.00"), "{table}");
        // The table is a valid [[profiles]] entry.
        let policy = format!(
            "{table}[[fleets]]\nname = \"f\"\nmin_units = 1\nmax_units = 2\n\
             [[fleets.pools]]\nname = \"p\"\nmarket = \"spot\"\ninstance_types = [{{ type = \"g6e.xlarge\" }}]\n\
             [[fleets.metrics]]\nsignal = \"token_work\"\ntarget = {{ type = \"AverageValue\", average_value = \"auto\" }}\n"
        );
        let cfg = crate::config::parse_str("p.toml", &policy).unwrap();
        assert_eq!(cfg.profiles[0].prefill_tokens_per_sec, Some(8000.0));

        let one = calibrate(&base, &runs[..1], None, None).unwrap_err();
        assert!(
            one.to_string().contains("several --max-concurrency"),
            "{one}"
        );
        let flat: Vec<Run> = [1.0, 64.0]
            .iter()
            .map(|&b| parse_run("f.json", &saved(b, b, 30.0 - 0.01 * b, 1000.0, 200.0)).unwrap())
            .collect();
        let e = calibrate(&base, &flat, None, None).unwrap_err();
        assert!(e.to_string().contains("does not grow"), "{e}");
        let e = parse_run("x.json", r#"{"completed": 10}"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("x.json: total_input_tokens is missing"),
            "{e}"
        );
        let e = parse_run("y.json", "[1, 2").unwrap_err();
        assert!(e.to_string().contains("y.json: not JSON"), "{e}");
    }
}
