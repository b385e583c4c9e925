//! Bounded fuzzing of every reader of outside input, in CI: the policy parser, the trace
//! reader, the Prometheus exposition parser, the event parser and the snapshot reader (through
//! `decide`'s checks and the engine). Each is fed mutations of a real, valid input — lines
//! dropped, duplicated or cut, bytes replaced, numbers swapped for extreme ones — and raw
//! random text. None may panic; the policy parser and the trace reader must locate every
//! problem they report inside the input.
//!
//! proptest rather than `cargo fuzz`: it runs on stable in the ordinary test run, bounded
//! (1,000 cases per reader, ~1 s in all; `LLM_AUTOSCALER_FUZZ_CASES=N` for a longer hunt), and
//! a failure is shrunk and replayed from `tests/fuzz.proptest-regressions`.

use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("LLM_AUTOSCALER_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000)
}

/// Numbers that break naive arithmetic.
const EXTREMES: &[&str] = &[
    "0",
    "-1",
    "1e308",
    "-1e308",
    "NaN",
    "inf",
    "1e-320",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999",
    "\"\"",
    "[]",
    "{}",
    "0.5",
];

/// One mutation of `text`.
#[derive(Clone, Debug)]
enum Mutation {
    DropLine(usize),
    DuplicateLine(usize),
    CutAt(usize),
    ReplaceByte(usize, u8),
    /// The `n`-th number in the text becomes `EXTREMES[k]`.
    ExtremeNumber(usize, usize),
    Insert(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DropLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        any::<usize>().prop_map(Mutation::CutAt),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::ReplaceByte(i, b)),
        (any::<usize>(), 0..EXTREMES.len()).prop_map(|(n, k)| Mutation::ExtremeNumber(n, k)),
        (any::<usize>(), "[ -~\n]{0,12}").prop_map(|(i, s)| Mutation::Insert(i, s)),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let on_char = |i: usize| {
        let n = text.chars().count().max(1);
        text.char_indices()
            .nth(i % n)
            .map_or(text.len(), |(at, _)| at)
    };
    match m {
        Mutation::DropLine(i) => {
            let i = i % lines.len().max(1);
            lines
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, l)| *l)
                .collect::<Vec<_>>()
                .join("\n")
        }
        Mutation::DuplicateLine(i) => {
            let i = i % lines.len().max(1);
            let mut out: Vec<&str> = lines.clone();
            if let Some(l) = lines.get(i) {
                out.insert(i, l);
            }
            out.join("\n")
        }
        Mutation::CutAt(i) => text[..on_char(*i)].to_string(),
        Mutation::ReplaceByte(i, b) => {
            let at = on_char(*i);
            let mut s = text[..at].to_string();
            s.push(char::from(*b));
            s.push_str(text[at..].chars().skip(1).collect::<String>().as_str());
            s
        }
        Mutation::ExtremeNumber(n, k) => {
            let spans: Vec<(usize, usize)> = number_spans(text);
            match spans.get(n % spans.len().max(1)) {
                Some(&(a, b)) => format!("{}{}{}", &text[..a], EXTREMES[*k], &text[b..]),
                None => text.to_string(),
            }
        }
        Mutation::Insert(i, s) => {
            let at = on_char(*i);
            format!("{}{s}{}", &text[..at], &text[at..])
        }
    }
}

/// Byte spans of the decimal numbers in `text`.
fn number_spans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            out.push((start, i));
        } else {
            i += 1;
        }
    }
    out
}

fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(mutation(), 1..4)
        .prop_map(move |ms| ms.iter().fold(base.to_string(), |t, m| apply(&t, m)))
}

fn inputs(base: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![4 => mutated(base), 1 => "(?s).{0,200}"]
}

fn read(path: &str) -> &'static str {
    Box::leak(std::fs::read_to_string(path).unwrap().into_boxed_str())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn the_policy_parser_never_panics_and_locates_every_problem(text in inputs(read("config/example.toml"))) {
        let lines = text.lines().count().max(1);
        if let Err(e) = llm_autoscaler::config::parse_str("p.toml", &text) {
            for p in e.problems() {
                prop_assert!(p.line >= 1 && p.line <= lines + 1, "{p} outside {lines} lines");
                prop_assert!(!p.problem.is_empty() && !p.valid.is_empty(), "{p}");
            }
        }
    }

    #[test]
    fn the_trace_reader_never_panics_and_locates_every_problem(
        text in prop_oneof![
            inputs("minute,requests\n0,60\n1,75\n2,90\n5,30\n"),
            inputs("t_s,prompt_tokens,output_tokens\n0.0,512,128\n0.4,2048,64\n1.5,90,300\n"),
        ]
    ) {
        let lines = text.lines().count().max(1);
        if let Err(e) = llm_autoscaler::sim::traffic::parse_trace("t.csv", &text) {
            prop_assert!(e.line >= 1 && e.line <= lines + 1, "{e} outside {lines} lines");
        }
    }

    #[cfg(feature = "aws")]
    #[test]
    fn the_exposition_parser_never_panics(text in inputs(EXPOSITION)) {
        let e = llm_autoscaler::scrape::parse(&text);
        prop_assert!(e.samples.len() + e.bad_lines <= text.lines().count());
    }

    #[cfg(feature = "aws")]
    #[test]
    fn the_event_parser_never_panics(text in inputs(EVENT)) {
        let _ = llm_autoscaler::aws::events::parse_event(&text);
    }

    #[test]
    fn the_snapshot_reader_and_the_engine_never_panic(text in inputs(read("docs/examples/snapshot.json"))) {
        #[derive(serde::Deserialize)]
        struct Input {
            now: llm_autoscaler::model::Timestamp,
            snapshot: llm_autoscaler::model::Snapshot,
        }
        let Ok(input) = serde_json::from_str::<Input>(&text) else {
            return Ok(());
        };
        let cfg = policy();
        let fleet = &cfg.fleets[0];
        let _ = llm_autoscaler::engine::input::snapshot_problems(fleet, &input.snapshot);
        let state = llm_autoscaler::engine::EngineState::default();
        let (d, _) = llm_autoscaler::engine::decide(fleet, &input.snapshot, &state, input.now);
        prop_assert!(d.desired_units >= fleet.min_units && d.desired_units <= fleet.max_units, "{}", d.summary);
    }
}

fn policy() -> &'static llm_autoscaler::config::Config {
    static CFG: std::sync::OnceLock<llm_autoscaler::config::Config> = std::sync::OnceLock::new();
    CFG.get_or_init(|| {
        llm_autoscaler::cost::load_policy(std::path::Path::new("config/example.toml")).unwrap()
    })
}

/// vLLM's exposition (V1 names), as its server serves it.
#[cfg(feature = "aws")]
const EXPOSITION: &str = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="meta-llama/Llama-3.1-8B-Instruct"} 12.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="meta-llama/Llama-3.1-8B-Instruct"} 3.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{model_name="meta-llama/Llama-3.1-8B-Instruct"} 0.42
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{model_name="meta-llama/Llama-3.1-8B-Instruct"} 1.234e+06
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} 10.0
vllm:time_to_first_token_seconds_bucket{le="0.5",model_name="m"} 30.0
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="m"} 42.0
vllm:time_to_first_token_seconds_sum{model_name="m"} 9.5
vllm:time_to_first_token_seconds_count{model_name="m"} 42.0
"#;

/// An EventBridge spot interruption warning, as the event queue delivers it.
#[cfg(feature = "aws")]
const EVENT: &str = r#"{"version":"0","id":"x","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","time":"2026-11-30T07:00:00Z","region":"us-east-1","resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"],"detail":{"instance-id":"i-0abc","instance-action":"terminate"}}"#;
