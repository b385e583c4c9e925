//! `probe` on fixtures written from each server's published metric definitions (the source and
//! version are cited at the top of each file in tests/fixtures/probe/): which server, which
//! series each signal comes from, rates and TTFT between two scrapes, a policy's metrics
//! checked; and the command end to end against a loopback server.
#![cfg(feature = "aws")]

use std::io::{Read, Write};
use std::net::TcpListener;

use llm_autoscaler::config;
use llm_autoscaler::probe::{identify, render, report};
use llm_autoscaler::scrape::parse;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/probe/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn each_server_is_recognised_by_its_names() {
    let cases = [
        ("vllm-v1.txt", "vLLM (V1 names)"),
        ("vllm-v0.txt", "vLLM (V0 names)"),
        ("tgi.txt", "text-generation-inference"),
        ("dcgm.txt", "dcgm-exporter"),
    ];
    for (file, server) in cases {
        let e = parse(&fixture(file));
        assert_eq!(e.bad_lines, 0, "{file}: every line is valid exposition");
        assert_eq!(identify(&e), server, "{file}");
    }
}

#[test]
fn signals_come_from_the_right_series_on_each_server() {
    // (file, signal, series it must come from) — the V1 and V0 KV names, TGI's queue, DCGM.
    let cases = [
        ("vllm-v1.txt", "kv_cache_usage", "vllm:kv_cache_usage_perc"),
        ("vllm-v1.txt", "queue_depth", "vllm:num_requests_waiting"),
        (
            "vllm-v1.txt",
            "concurrency",
            "vllm:num_requests_running + vllm:num_requests_waiting",
        ),
        ("vllm-v0.txt", "kv_cache_usage", "vllm:gpu_cache_usage_perc"),
        ("tgi.txt", "queue_depth", "tgi_queue_size"),
        (
            "tgi.txt",
            "concurrency",
            "tgi_batch_current_size + tgi_queue_size",
        ),
        ("dcgm.txt", "gpu_utilization", "DCGM_FI_DEV_GPU_UTIL"),
    ];
    for (file, signal, series) in cases {
        let r = report(&parse(&fixture(file)), None, &[]);
        let got = r
            .readings
            .iter()
            .find(|x| x.signal == signal)
            .unwrap_or_else(|| panic!("{file}: {signal} not read: {r:?}"));
        assert_eq!(got.series, series, "{file} {signal}");
        assert!(got.value.is_finite() && got.value >= 0.0);
    }
    // The KV fraction is shown in percent, as the policy's targets are.
    let r = report(&parse(&fixture("vllm-v1.txt")), None, &[]);
    let kv = r
        .readings
        .iter()
        .find(|x| x.signal == "kv_cache_usage")
        .unwrap();
    assert!((1.0..=100.0).contains(&kv.value), "{kv:?}");
    // DCGM alone feeds no server signal.
    let d = report(&parse(&fixture("dcgm.txt")), None, &[]);
    assert!(d.missing.contains(&"queue_depth"));
}

#[test]
fn two_scrapes_give_token_rates_and_ttft_quantiles() {
    let (a, b) = (
        parse(&fixture("vllm-v1.txt")),
        parse(&fixture("vllm-v1-later.txt")),
    );
    let r = report(&a, Some((&b, 10.0)), &[]);
    let (prompt, generated, finished) = r.rates.expect("rates");
    let counter = |e: &llm_autoscaler::scrape::Exposition, n: &str| e.sum(n).unwrap();
    let want = |n: &str| (counter(&b, n) - counter(&a, n)) / 10.0;
    assert!((prompt - want("vllm:prompt_tokens_total")).abs() < 1e-9);
    assert!((generated - want("vllm:generation_tokens_total")).abs() < 1e-9);
    assert!(prompt > 0.0 && generated > 0.0 && finished > 0.0, "{r:?}");
    let t = r.ttft.clone().expect("a TTFT histogram");
    let h = |e: &llm_autoscaler::scrape::Exposition| {
        e.histogram(llm_autoscaler::scrape::TTFT_HISTOGRAM).unwrap()
    };
    assert_eq!(
        t.observations,
        h(&b).count() - h(&a).count(),
        "only what came between"
    );
    let (p50, p95) = (t.p50_secs.unwrap(), t.p95_secs.unwrap());
    assert!(p50 > 0.0 && p50 <= p95, "{t:?}");
    let text = render(&r, Some(10.0));
    assert!(text.contains("tokens/s") && text.contains("p95"), "{text}");
}

#[test]
fn a_policy_metric_the_server_lacks_is_flagged() {
    let cfg = config::parse_str(
        "p.toml",
        r#"
[[fleets]]
name = "f"
min_units = 1
max_units = 4
[[fleets.pools]]
name = "od"
market = "on-demand"
instance_types = [{ type = "g6e.xlarge" }]
[[fleets.metrics]]
signal = "kv_cache_usage"
target = { type = "Utilization", average_utilization = 70 }
[[fleets.metrics]]
signal = "gpu_utilization"
target = { type = "Utilization", average_utilization = 80 }
[[fleets.metrics]]
signal = "token_work"
target = { type = "AverageValue", average_value = 0.7 }
"#,
    )
    .unwrap();
    let metrics = &cfg.fleets[0].metrics;
    // vLLM V0 names: the KV fraction under its old name is found; no GPU utilisation.
    let r = report(&parse(&fixture("vllm-v0.txt")), None, metrics);
    let by = |n: &str| r.policy.iter().find(|c| c.name == n).unwrap().value;
    assert!(by("kv_cache_usage").is_some(), "{r:?}");
    assert!(by("gpu_utilization").is_none(), "{r:?}");
    assert!(by("token_work").is_some(), "token counters: {r:?}");
    assert!(render(&r, None).contains("MISSING  gpu_utilization"));
}

/// The command end to end: a loopback server answers two scrapes (the fixture, then the
/// fixture ten seconds on), and `probe --interval-secs 1` prints the table.
#[test]
fn probe_scrapes_a_live_endpoint_twice() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let pages = [fixture("vllm-v1.txt"), fixture("vllm-v1-later.txt")];
    let server = std::thread::spawn(move || {
        for page in pages {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-autoscaler"))
        .args([
            "probe",
            &format!("http://127.0.0.1:{port}/metrics"),
            "--interval-secs",
            "1",
        ])
        .output()
        .unwrap();
    server.join().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("vLLM (V1 names)"), "{text}");
    assert!(text.contains("vllm:kv_cache_usage_perc"), "{text}");
    assert!(text.contains("tokens/s"), "{text}");
    // Nothing listening: a clear error, exit 3.
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_llm-autoscaler"))
        .args([
            "probe",
            &format!("http://127.0.0.1:{port}/metrics"),
            "--interval-secs",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&refused.stderr).contains(&format!("127.0.0.1:{port}")));
}
