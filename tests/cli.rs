//! The binary: `check` and `decide` with their exit codes (0 ok, 2 bad policy, 3 bad input), `plan`'s ranking and `calibrate`'s profile table.

use std::process::Command;

#[path = "common/traces.rs"]
mod traces;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_llm-autoscaler"))
}

/// Runs the command, asserts it succeeded (showing its stderr if not) and returns its stdout.
fn stdout_of(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn tmp(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("llm-autoscaler-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_accepts_the_examples_and_rejects_a_bad_file_with_exit_2() {
    let stdout = stdout_of(bin().args(["check", "--config", "config/example.toml"]));
    assert!(String::from_utf8_lossy(&stdout).contains("fleet llama-8b: 2 to 12 units"));

    let bad = tmp("bad.toml", "[global]\ntick_secs = 0\n");
    let out = bin()
        .args(["check", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:2:13: global.tick_secs: 0 is out of range"),
        "{err}"
    );
    assert!(err.contains("fleets: missing required key"), "{err}");

    // A listener beyond loopback passes, with a warning: the state API has no authentication.
    let open = std::fs::read_to_string("config/example.toml")
        .unwrap()
        .replace(
            "http_listen = \"127.0.0.1:9464\"",
            "http_listen = \"0.0.0.0:9464\"",
        );
    let open = tmp("open.toml", &open);
    let out = bin()
        .args(["check", "--config"])
        .arg(&open)
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning:")
            && err.contains("0.0.0.0:9464")
            && err.contains("without authentication"),
        "{err}"
    );
    let quiet = bin()
        .args(["check", "--config", "config/example.toml"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("warning:"));
}

#[test]
fn decide_reads_the_documented_example_snapshot() {
    let stdout = stdout_of(bin().args([
        "decide",
        "--config",
        "config/example.toml",
        "--snapshot",
        "docs/examples/snapshot.json",
    ]));
    let v: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
    let d = &v["decision"];
    assert_eq!(d["fleet"], "llama-8b");
    // 4 in service, three of them reporting their servers' token rates and 12, 10, 9 requests
    // waiting: 1.35 units of work each against 0.7; 1 booting.
    assert_eq!(d["winning_metric"], "token_work");
    assert!(d["desired_units"].as_u64().unwrap() > d["current_units"].as_u64().unwrap());
    assert!(v["state"]["recommendations"].as_array().unwrap().len() >= 2);
    assert!(!d["summary"].as_str().unwrap().is_empty());
}

/// `decide --describe`: the same decision as `kubectl describe hpa` lays one out — fields, a
/// metrics table with rounded figures, pools, conditions.
#[test]
fn decide_describes_the_decision_for_people() {
    let out = stdout_of(bin().args([
        "decide",
        "--config",
        "config/example.toml",
        "--snapshot",
        "docs/examples/snapshot.json",
        "--describe",
    ]));
    let text = String::from_utf8_lossy(&out);
    for want in [
        "Fleet:              llama-8b",
        "Units:              current 5 → desired 6 (in service 4, booting 1)",
        "Winning metric:     token_work",
        "  token_work      token_work      1.35 / 0.7      6      valid",
        // A Utilization in its whole percent, as HPA computes and shows it (65.9 % is 65 %).
        "  kv_cache_usage  kv_cache_usage  65 / 70         5      valid",
        "  Type            Status  Reason",
        "ScalingActive   True    ValidMetricFound",
    ] {
        assert!(text.contains(want), "{want:?} in\n{text}");
    }
    assert!(!text.contains("65.89999"), "{text}");
}

/// docs/snapshot.md lists every condition type and every reason the engine can emit — the
/// doc once listed 6 kinds while the code emitted 10.
#[test]
fn the_documented_conditions_are_the_engines() {
    use llm_autoscaler::engine::{ConditionType, Reason};
    let doc = std::fs::read_to_string("docs/snapshot.md").unwrap();
    let table: Vec<&str> = doc
        .lines()
        .skip_while(|l| !l.starts_with("| type | reasons |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    let listed = |s: &str| table.iter().any(|l| l.contains(&format!("`{s}`")));
    let missing: Vec<&str> = ConditionType::ALL
        .iter()
        .map(|t| t.as_str())
        .chain(Reason::ALL.iter().map(|r| r.as_str()))
        .filter(|n| !listed(n))
        .collect();
    assert!(missing.is_empty(), "not in docs/snapshot.md: {missing:?}");
    let names = table.iter().flat_map(|l| l.split('`').skip(1).step_by(2));
    let known = |n: &str| {
        ConditionType::ALL.iter().any(|t| t.as_str() == n)
            || Reason::ALL.iter().any(|r| r.as_str() == n)
    };
    let unknown: Vec<&str> = names.filter(|n| !known(n)).collect();
    assert!(
        unknown.is_empty(),
        "documented but not emitted: {unknown:?}"
    );
}

#[test]
fn decide_rejects_a_broken_snapshot_with_exit_3_and_its_position() {
    let bad = tmp(
        "snap.json",
        "{\n  \"now\": \"2026-11-28T12:00:00Z\",\n  \"snapshot\": { \"desired_units\": -1 }\n}\n",
    );
    let out = bin()
        .args(["decide", "--config", "config/example.toml", "--snapshot"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("snap.json:3:"), "{err}");
    assert!(err.contains("invalid snapshot"), "{err}");
}

/// The operator issue's `decide` mistakes, each on the documented example: every one exits 3
/// with the path of what is wrong and, where a name was misspelt, the name meant.
#[test]
fn decide_rejects_each_mistake_in_a_snapshot_with_its_path() {
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("docs/examples/snapshot.json").unwrap())
            .unwrap();
    type Edit = fn(&mut serde_json::Value);
    // (case, the mistake, what the message must say)
    let cases: &[(&str, Edit, &[&str])] = &[
        (
            "nested-unknown-key",
            |v| v["snapshot"]["instances"][0]["colour"] = "red".into(),
            &["unknown field `colour`", "snap-nested-unknown-key.json:"],
        ),
        (
            "unknown-key-in-load",
            |v| v["snapshot"]["instances"][0]["load"]["prompt_tokens"] = 5.into(),
            &["unknown field `prompt_tokens`"],
        ),
        (
            "unknown-pool",
            |v| v["snapshot"]["instances"][0]["pool"] = "spto".into(),
            &["snapshot.instances[0].pool", "did you mean \"spot\""],
        ),
        (
            "misspelt-sample",
            |v| {
                let inst = &mut v["snapshot"]["instances"][1];
                let q = inst["samples"]["kv_cache_usage"].take();
                inst["samples"]["kv_cache_usge"] = q;
                inst["samples"]
                    .as_object_mut()
                    .unwrap()
                    .remove("kv_cache_usage");
            },
            &[
                "snapshot.instances[1].samples.kv_cache_usge",
                "did you mean \"kv_cache_usage\"",
            ],
        ),
        (
            "zero-weight",
            |v| v["snapshot"]["instances"][0]["weight_units"] = 0.into(),
            &["snapshot.instances[0].weight_units: 0 is outside"],
        ),
        (
            "wrapping-weight",
            |v| v["snapshot"]["instances"][0]["weight_units"] = 4_294_967_295u64.into(),
            &["weight_units: 4294967295 is outside"],
        ),
        (
            "unknown-fleet-metric",
            |v| {
                v["snapshot"]["fleet_metrics"] = serde_json::json!({
                    "token_wrk": { "value": 3, "at": "2026-11-28T11:59:45Z" }
                })
            },
            &[
                "snapshot.fleet_metrics.token_wrk",
                "did you mean \"token_work\"",
            ],
        ),
    ];
    for (name, edit, wants) in cases {
        let mut v = base.clone();
        edit(&mut v);
        let file = tmp(
            &format!("snap-{name}.json"),
            &serde_json::to_string_pretty(&v).unwrap(),
        );
        let out = bin()
            .args(["decide", "--config", "config/example.toml", "--snapshot"])
            .arg(&file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{name}: {err}");
        for want in *wants {
            assert!(err.contains(want), "{name}: want {want:?} in {err}");
        }
    }
}

#[test]
fn simulate_writes_every_report_and_rejects_a_bad_trace_with_exit_3() {
    let dir = std::env::temp_dir().join(format!("llm-autoscaler-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, csv, html, decisions) = (
        dir.join("r.json"),
        dir.join("r.csv"),
        dir.join("r.html"),
        dir.join("d.jsonl"),
    );
    let stdout = stdout_of(
        bin()
            .args([
                "simulate",
                "--config",
                "config/demo.toml",
                "--scenario",
                "sudden-drop",
                "--seed",
                "4",
                "--duration-secs",
                "1800",
            ])
            .args([
                "--json".as_ref(),
                json.as_os_str(),
                "--csv".as_ref(),
                csv.as_os_str(),
            ])
            .args([
                "--html".as_ref(),
                html.as_os_str(),
                "--decisions".as_ref(),
                decisions.as_os_str(),
            ]),
    );
    let table = String::from_utf8_lossy(&stdout);
    for name in [
        "ours",
        "static-peak",
        "hpa-cpu",
        "seed-queue",
        "target-tracking",
        "reactive-oracle",
        "oracle",
    ] {
        assert!(table.contains(name), "{table}");
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["scenario"], "sudden-drop");
    assert_eq!(report["duration_s"], 1800.0);
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(
        rows.lines().count(),
        1 + 30,
        "a header and one row per minute"
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!doctype html>") && page.matches("<svg").count() == 4);
    for external in ["src=\"http", "href=\"http", "<link", "<script src"] {
        assert!(
            !page.contains(external),
            "the page must be self-contained: {external}"
        );
    }
    // One decision per 15 s tick from t = 0, each with its explanation.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&decisions)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1800 / 15);
    assert!(lines
        .iter()
        .all(|d| d["summary"].is_string() && d["conditions"].is_array()));

    let bad = tmp(
        "bad.csv",
        "t_s,prompt_tokens,output_tokens\n0,10,5\n3,oops,1\n",
    );
    let out = bin()
        .args(["simulate", "--trace"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.csv:3:3: prompt_tokens is \"oops\"; expected a number"),
        "{err}"
    );

    let out = bin()
        .args(["simulate", "--scenario", "tsunami"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("valid: traffic-spike, gradual-growth, periodic, sudden-drop, mixed-workload"));

    // Servers cannot run at no speed, a negative one or NaN.
    for speed in ["0", "-0.5", "NaN", "inf"] {
        let out = bin()
            .args(["simulate", "--scenario", "sudden-drop"])
            .arg(format!("--server-speed={speed}"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{speed}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("--server-speed {}", speed.parse::<f64>().unwrap()))
                && err.contains("must be a number above 0"),
            "{speed}: {err}"
        );
    }
}

#[test]
fn forecast_prints_the_next_hour_and_rejects_a_per_request_trace() {
    // Two days of a clean daily sine, per minute, with a gap.
    let mut text = String::from("minute,requests\n");
    for m in 0..(2 * 1440) {
        if m == 100 {
            continue;
        }
        let v = 100.0 + 50.0 * ((m % 1440) as f64 / 1440.0 * std::f64::consts::TAU).sin();
        text.push_str(&format!("{m},{v:.1}\n"));
    }
    let hist = tmp("hist.csv", &text);
    let stdout = stdout_of(
        bin()
            .args(["forecast", "--history"])
            .arg(&hist)
            .args(["--horizon-mins", "30"]),
    );
    let stdout = String::from_utf8_lossy(&stdout);
    let rows: Vec<Vec<f64>> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|x| x.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 30);
    assert_eq!(rows[0][0], 2880.0, "starts after the last minute");
    for r in &rows {
        let truth =
            100.0 + 50.0 * ((r[0] as usize % 1440) as f64 / 1440.0 * std::f64::consts::TAU).sin();
        assert!((r[1] - truth).abs() < 10.0, "point {} vs {truth}", r[1]);
        assert!(r[2] <= r[1] && r[1] <= r[3]);
    }
    let reqs = tmp("reqs.csv", "t_s,prompt_tokens,output_tokens\n0,10,5\n");
    let out = bin()
        .args(["forecast", "--history"])
        .arg(&reqs)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn plan_ranks_types_by_cost_and_weights_them_against_the_reference() {
    // (policy, its reference type, whether a type weighs under one reference replica)
    let cases = [
        ("config/example.toml", "g6e.xlarge", true),
        ("config/demo.toml", "g6.xlarge", false),
    ];
    for (policy, reference, fractional) in cases {
        let stdout = stdout_of(bin().args(["plan", "--config", policy, "--rps", "20"]));
        let text = String::from_utf8_lossy(&stdout);
        // 20 req/s of chat: three L40S beat twelve L4s on cost, whatever the reference.
        assert!(
            text.contains("cheapest: 3 × g6e.xlarge")
                && text.contains(&format!("against {reference}")),
            "{policy}:\n{text}"
        );
        assert_eq!(
            text.contains("Weights below 1 cannot be an ASG WeightedCapacity"),
            fractional,
            "{policy}:\n{text}"
        );
    }
}

/// `calibrate` turns `vllm bench serve --save-result` files into a `[[profiles]]` table that a
/// policy accepts and `check` then counts with; a bad file is exit 3 with its name.
#[test]
fn calibrate_writes_a_profile_table_the_policy_accepts() {
    // A server with a 25 ms base step, 0.12 ms per sequence and 6,000 prompt tokens/s.
    let run = |c: u32, batch: f64| {
        let step_ms = 25.0 + 0.12 * batch;
        let ttft_ms = if c == 1 {
            1000.0 / 6.0 + step_ms
        } else {
            900.0
        };
        tmp(
            &format!("bench-c{c}.json"),
            &format!(
                r#"{{"backend": "vllm", "completed": 100, "total_input_tokens": 100000, "output_throughput": {}, "mean_ttft_ms": {ttft_ms}, "mean_tpot_ms": {step_ms}, "max_concurrency": {c}}}"#,
                batch / (step_ms / 1000.0)
            ),
        )
    };
    let files = [run(1, 1.0), run(32, 30.0), run(128, 118.0)];
    let out = stdout_of(
        bin()
            .args([
                "calibrate",
                "--instance-type",
                "g6e.xlarge",
                "--kv-cache-tokens",
                "150000",
            ])
            .args(&files),
    );
    let table = String::from_utf8(out).unwrap();
    assert!(table.contains("prefill_tokens_per_sec = 6000"), "{table}");
    assert!(table.contains("decode_base_ms = 25.00"), "{table}");
    assert!(table.contains("kv_cache_tokens = 150000"), "{table}");
    let example = std::fs::read_to_string("config/example.toml").unwrap();
    let policy = tmp("calibrated.toml", &format!("{table}\n{example}"));
    let check =
        String::from_utf8(stdout_of(bin().args(["check", "--config"]).arg(&policy))).unwrap();
    assert!(check.contains("per unit prefill 6000 tokens/s"), "{check}");

    let bad = tmp("bench-bad.json", r#"{"completed": 100}"#);
    let out = bin()
        .args(["calibrate", "--instance-type", "g6e.xlarge"])
        .arg(&bad)
        .arg(&files[1])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bench-bad.json: total_input_tokens is missing"),
        "{err}"
    );
}

/// The reliability issue's unbounded inputs: each is refused at once (exit 3) with the limit
/// named and what to change, instead of running for hours, never ending or allocating
/// hundreds of megabytes for a few bytes of trace.
#[test]
fn oversized_simulate_inputs_are_refused_at_once_with_the_limit() {
    // (case, trace text, extra args, what the message must say)
    let cases: &[(&str, &str, &[&str], &str)] = &[
        (
            "1e9-a-minute",
            "minute,requests\n0,1e9\n",
            &[],
            "--max-requests",
        ),
        (
            "1e308",
            "minute,requests\n0,1e308\n1,1\n",
            &[],
            "--max-requests",
        ),
        (
            "scale-1e9",
            "minute,requests\n0,60\n1,60\n",
            &["--scale", "1e9"],
            "lower --scale",
        ),
        (
            "far-minute",
            "minute,requests\n9999999,1\n",
            &[],
            "beyond a year",
        ),
        (
            "per-request-scale",
            "t_s,prompt_tokens,output_tokens\n0,10,5\n70,10,5\n",
            &["--scale", "1e12"],
            "the limit is",
        ),
    ];
    for (name, text, args, want) in cases {
        let trace = tmp(&format!("{name}.csv"), text);
        let started = std::time::Instant::now();
        let out = bin()
            .args(["simulate", "--config", "config/example.toml", "--trace"])
            .arg(&trace)
            .args(*args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        eprintln!("{name}: refused in {:?}", started.elapsed());
    }
    // The limit is the user's: 1,200 requests run under a limit of 2,000 and are refused
    // under one of 1,000.
    let trace = tmp("small.csv", "minute,requests\n0,600\n1,600\n");
    let run = |limit: &str| {
        bin()
            .args([
                "simulate",
                "--config",
                "config/example.toml",
                "--no-baselines",
            ])
            .arg("--trace")
            .arg(&trace)
            .args(["--max-requests", limit])
            .output()
            .unwrap()
    };
    let out = run("2000");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(run("1000").status.code(), Some(3));
}

/// A reader that goes away early (`llm-autoscaler check | head -1`) ends the program quietly
/// with success, as `head` expects — `println!` used to panic on the closed pipe (exit 101).
#[test]
fn a_closed_stdout_ends_the_program_quietly() {
    let mut child = bin()
        .args(["check", "--config", "config/example.toml"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before the program has written anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Outside a checkout, `check` finds the policy through `LLM_AUTOSCALER_CONFIG`; without it (and
/// without an installed policy) it says where it looked and how to name one.
#[test]
fn the_policy_is_found_outside_a_checkout() {
    if std::path::Path::new("/etc/llm-autoscaler/policy.toml").exists() {
        eprintln!("skipped: an installed policy would be found first");
        return;
    }
    let example = std::fs::canonicalize("config/example.toml").unwrap();
    let elsewhere = std::env::temp_dir();
    let out = stdout_of(
        bin()
            .arg("check")
            .current_dir(&elsewhere)
            .env("LLM_AUTOSCALER_CONFIG", &example),
    );
    assert!(String::from_utf8_lossy(&out).contains(": ok — provider aws"));
    let out = bin()
        .arg("check")
        .current_dir(&elsewhere)
        .env_remove("LLM_AUTOSCALER_CONFIG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot read the policy file") && err.contains("LLM_AUTOSCALER_CONFIG"),
        "{err}"
    );
}

/// `check --json` prints the policy as the daemon will run it, every default filled in; written
/// back as TOML (nulls dropped, an "auto" target as "auto", the derived work model left out) it
/// is the same policy.
#[test]
fn check_json_is_the_resolved_policy_and_round_trips() {
    let out = stdout_of(bin().args(["check", "--json", "--config", "config/example.toml"]));
    let resolved: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(resolved["global"]["tick_secs"], 15);
    assert_eq!(resolved["fleets"][0]["name"], "llama-8b");
    // A default the file does not set, filled in.
    assert_eq!(resolved["global"]["unhealthy_after_ticks"], 20);
    fn as_policy(v: &serde_json::Value) -> Option<serde_json::Value> {
        use serde_json::Value;
        match v {
            Value::Null => None,
            Value::Array(a) => Some(Value::Array(a.iter().filter_map(as_policy).collect())),
            Value::Object(o) => {
                // Derived, not written: `auto_target` (the target's figure says "auto") and the
                // capacity's work model (from the profile).
                let mut m: serde_json::Map<String, Value> = o
                    .iter()
                    .filter(|(k, _)| {
                        k.as_str() != "auto_target"
                            && !(k.as_str() == "model" && o.contains_key("learn"))
                    })
                    .filter_map(|(k, v)| Some((k.clone(), as_policy(v)?)))
                    .collect();
                if o.get("auto_target") == Some(&Value::Bool(true)) {
                    if let Some(Value::Object(t)) = m.get_mut("target") {
                        for (_, v) in t.iter_mut().filter(|(k, _)| k.as_str() != "type") {
                            *v = Value::String("auto".into());
                        }
                    }
                }
                Some(Value::Object(m))
            }
            other => Some(other.clone()),
        }
    }
    let toml_text = toml::to_string(&as_policy(&resolved).unwrap()).unwrap();
    let path = tmp("resolved.toml", &toml_text);
    let again = stdout_of(bin().args(["check", "--json", "--config"]).arg(&path));
    let again: serde_json::Value = serde_json::from_slice(&again).unwrap();
    assert_eq!(again, resolved, "as TOML:\n{toml_text}");
}

/// `forecast` sums its answer up on standard error (the CSV stays machine-readable): the
/// peak, when, its upper bound, the last hour's, and with a unit's demand the units needed.
#[test]
fn forecast_sums_up_the_next_hour() {
    // Two days of a daily cycle, 60–140 requests a minute, as `minute,requests`.
    let rows: String = (0..2880)
        .map(|m| {
            let v = 100.0 + 40.0 * (std::f64::consts::TAU * f64::from(m) / 1440.0).sin();
            format!("{m},{v:.1}\n")
        })
        .collect();
    let path = tmp("daily.csv", &format!("minute,requests\n{rows}"));
    let out = bin()
        .args(["forecast", "--history"])
        .arg(&path)
        .args(["--demand-per-unit", "25"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 61, "a header and 60 minutes");
    // The last hour climbs back to 99.8; the next one goes on to 100 + 40 sin(2π/24) = 110.35
    // at its end.
    assert!(err.contains("the last hour's peak 99.8"), "{err}");
    let peak: f64 = err
        .split("peak ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|t| t.parse().ok())
        .unwrap();
    assert!((peak - 110.35).abs() < 3.0, "{err}");
    assert!(err.contains("units at 25 a unit: 5 for the peak"), "{err}");
}

/// A backtest too short for a window of scored points says so, rather than printing a range of
/// NaN; its JSON gives the range as nulls, and a long enough one as numbers. A series the
/// naive forecast matches exactly (a constant one) has no MASE: "n/a", not NaN.
#[test]
fn backtest_says_when_no_window_has_enough_points() {
    // (why, days of a daily cycle, its amplitude, the text, a range in the JSON)
    let cases = [
        (
            "four days: one origin, 60 points",
            4,
            50.0,
            "no 7-day window with 100 points scored",
            false,
        ),
        (
            "six days: three origins, 180 points",
            6,
            50.0,
            "per 7-day window ",
            true,
        ),
        (
            "six days of a constant 100",
            6,
            0.0,
            "MASE vs seasonal-naive n/a (brief rule n/a)",
            true,
        ),
    ];
    for (why, days, amplitude, says, numbers) in cases {
        let mut text = String::from("minute,requests\n");
        for m in 0..days * 1440 {
            let phase = (m % 1440) as f64 / 1440.0 * std::f64::consts::TAU;
            // A little deterministic noise: a cycle repeated exactly has no seasonal-naive
            // error to scale by.
            let noise = if amplitude > 0.0 {
                ((m * 7919) % 13) as f64
            } else {
                0.0
            };
            text.push_str(&format!(
                "{m},{:.1}\n",
                100.0 + amplitude * phase.sin() + noise
            ));
        }
        let history = tmp(&format!("cycle-{days}-{amplitude}.csv"), &text);
        let json = history.with_extension("json");
        let stdout = stdout_of(
            bin()
                .args([
                    "backtest",
                    "--step-mins",
                    "1440",
                    "--jobs",
                    "1",
                    "--history",
                ])
                .arg(&history)
                .arg("--json")
                .arg(&json),
        );
        let stdout = String::from_utf8_lossy(&stdout);
        assert!(stdout.contains(says), "{why}: {stdout}");
        assert!(!stdout.contains("NaN"), "{why}: {stdout}");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let range = &report["coverage_window_range"];
        assert_eq!(range[0].is_number(), numbers, "{why}: {range}");
        assert_eq!(range[1].is_number(), numbers, "{why}: {range}");
    }
}

/// The robustness matrix end to end, on two cells: each cell judged against the oracle and the
/// reactive oracle (the oracle without its foresight). A ×10 step within a minute, with cold
/// starts of 150 s: the oracle has the step's capacity in service when it comes and holds the
/// SLO; the reactive oracle orders it the step's first second and has it 150 s late — the
/// queue of those seconds misses the SLO, as no sizing of the present can prevent. The sudden
/// drop (the peak first) the reactive oracle holds.
#[test]
fn the_matrix_tells_the_misses_only_foresight_holds_from_the_rest() {
    let Some(dir) =
        traces::shared_traces("the_matrix_tells_the_misses_only_foresight_holds_from_the_rest")
    else {
        return;
    };
    let out = std::env::temp_dir().join(format!("llm-autoscaler-suite-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    // (cell, oracle holds, reactive oracle holds)
    let cases = [
        ("step-x10/chat/cold150/seed1", true, false),
        ("sudden-drop/chat/cold150/seed1", true, true),
    ];
    for (cell, oracle, reactive) in cases {
        let json = out.join(format!("{}.json", cell.replace('/', "_")));
        let table = stdout_of(
            bin()
                .args([
                    "simulate",
                    "--suite",
                    "robustness",
                    "--config",
                    "config/example.toml",
                ])
                .args(["--cells", cell, "--traces"])
                .arg(&dir)
                .arg("--json")
                .arg(&json),
        );
        let table = String::from_utf8_lossy(&table);
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        let c = &v["cells"][0];
        assert_eq!(c["oracle_held"], oracle, "{cell}: {table}");
        assert_eq!(c["reactive_oracle_held"], reactive, "{cell}: {table}");
        // Capacity short of the need (EVALUATION.md's scale-up latency): none for the oracle;
        // at the step, for the reactive oracle, the minutes its cold start takes.
        let lag = |b: &str| {
            c["report"]["baselines"][b]["capacity"]["scale_up_latency_s"]["max"]
                .as_f64()
                .unwrap()
        };
        assert_eq!(lag("oracle"), 0.0, "{cell}");
        if !reactive {
            assert!(
                lag("reactive-oracle") >= 120.0,
                "{cell}: {}",
                lag("reactive-oracle")
            );
        }
        let s = &v["summary"];
        assert_eq!(s["reactive_oracle_held"], u64::from(reactive), "{cell}");
        let ours_held = c["held"].as_bool().unwrap();
        let want: Vec<&str> = if reactive && !ours_held {
            vec![cell]
        } else {
            vec![]
        };
        assert_eq!(
            s["missed_where_reactive_holds"],
            serde_json::json!(want),
            "{cell}"
        );
        assert!(
            table.contains(&format!(
                "the reactive oracle (the present known, no foresight) holds {}; missed where it holds: {}",
                u8::from(reactive),
                want.len()
            )),
            "{table}"
        );
    }
}
