//! `loadgen` against a fake OpenAI-compatible server on loopback that streams server-sent
//! events with a configured prefill delay and per-token delay: every request accounted for
//! (ok, failed, timed out, cut off, shed), TTFT the first token's arrival within 10 % of the
//! fake's delay, arrivals kept on schedule while the server stalls, SLO keys as `simulate`'s.
#![cfg(feature = "aws")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use llm_autoscaler::loadgen::{minutes_csv, run, LoadReport, LoadSpec};
use llm_autoscaler::sim::traffic::{Request, Source, Traffic};

/// How the fake answers one connection.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Streams `tokens` tokens: the first after `prefill`, the rest `per_token` apart.
    Stream {
        prefill: Duration,
        per_token: Duration,
        tokens: usize,
    },
    /// Answers 500.
    Error,
    /// Sends nothing for this long (a client with a shorter timeout gives up).
    Stall(Duration),
    /// Streams one token, then closes mid-body.
    Disconnect,
}

/// Reads one HTTP request (headers, then the body by its content-length); returns the body.
fn read_request(conn: &mut TcpStream) -> String {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let got = conn.read(&mut buf).unwrap_or(0);
        if got == 0 {
            break;
        }
        req.extend_from_slice(&buf[..got]);
        let text = String::from_utf8_lossy(&req);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    let l = l.to_ascii_lowercase();
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if req.len() >= end + 4 + len {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&req).to_string();
    text.split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// One server-sent event carrying `text`, as a completions or a chat stream writes it.
fn event(text: &str, chat: bool) -> String {
    if chat {
        format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n")
    } else {
        format!("data: {{\"choices\":[{{\"text\":\"{text}\"}}]}}\n\n")
    }
}

fn answer(conn: &mut TcpStream, mode: Mode, chat: bool) {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
    match mode {
        Mode::Error => {
            let _ = conn.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
        Mode::Stall(d) => std::thread::sleep(d),
        Mode::Disconnect => {
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: 10000\r\n\r\n",
            );
            let _ = conn.write_all(event("the", chat).as_bytes());
        }
        Mode::Stream {
            prefill,
            per_token,
            tokens,
        } => {
            let _ = conn.write_all(head.as_bytes());
            if chat {
                // A chat stream's first chunk carries the role, no text: not a token.
                let _ = conn
                    .write_all(b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n");
            }
            std::thread::sleep(prefill);
            for i in 0..tokens {
                if i > 0 {
                    std::thread::sleep(per_token);
                }
                let _ = conn.write_all(event("tok", chat).as_bytes());
            }
            let _ = conn.write_all(b"data: [DONE]\n\n");
        }
    }
}

/// Serves `n` connections, each on its own thread, answering the k-th (from 0) as `mode(k)`.
/// Returns the URL and, when joined, each connection's (accept time, request body).
fn fake_server(
    n: usize,
    chat: bool,
    mode: impl Fn(usize) -> Mode + Send + 'static,
) -> (String, std::thread::JoinHandle<Vec<(Instant, String)>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let path = if chat {
        "chat/completions"
    } else {
        "completions"
    };
    let url = format!("http://{}/v1/{path}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut workers = Vec::new();
        for k in 0..n {
            let Ok((mut conn, _)) = listener.accept() else {
                break;
            };
            let at = Instant::now();
            let m = mode(k);
            workers.push(std::thread::spawn(move || {
                let body = read_request(&mut conn);
                answer(&mut conn, m, chat);
                (at, body)
            }));
        }
        workers.into_iter().filter_map(|w| w.join().ok()).collect()
    });
    (url, handle)
}

fn traffic(n: usize, gap_secs: f64) -> Traffic {
    let reqs: Vec<Request> = (0..n)
        .map(|i| Request {
            arrival_secs: i as f64 * gap_secs,
            prompt_tokens: 12 + i as u32,
            output_tokens: 5,
        })
        .collect();
    Traffic {
        source: Source::Requests(Arc::new(reqs)),
        scale: 1.0,
        seed: 1,
        duration_secs: n as f64 * gap_secs + 1.0,
    }
}

/// The tests measure time: one at a time, so they do not share the cores with each other.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn replay(url: String, t: &Traffic, max_in_flight: usize, timeout: Duration) -> LoadReport {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let spec = LoadSpec {
        url,
        model: "m".into(),
        max_in_flight,
        timeout,
        ttft_slo_secs: 2.0,
    };
    rt.block_on(run(t, spec, &mut |_, _| {}))
}

const STREAM: Mode = Mode::Stream {
    prefill: Duration::from_millis(200),
    per_token: Duration::from_millis(30),
    tokens: 5,
};

#[test]
fn ttft_and_inter_token_latency_match_the_servers_delays_at_low_load() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for chat in [false, true] {
        let (url, server) = fake_server(10, chat, |_| STREAM);
        let r = replay(url, &traffic(10, 0.1), 64, Duration::from_secs(10));
        let bodies = server.join().unwrap();
        assert_eq!(
            (r.requests, r.ok, r.failed, r.shed),
            (10, 10, 0, 0),
            "{r:?}"
        );
        let p95 = r.ttft_p95_s.unwrap();
        assert!(
            (0.2..=0.22).contains(&p95),
            "chat {chat}: P95 TTFT {p95} vs 0.2 s"
        );
        let itl = r.itl_p50_s.unwrap();
        assert!(
            (0.03..=0.045).contains(&itl),
            "chat {chat}: inter-token {itl} vs 0.03 s"
        );
        assert!(
            r.slo.met && r.slo.availability == 1.0 && r.slo.error_rate == 0.0,
            "{:?}",
            r.slo
        );
        // What was asked: the prompt's words, exactly the output tokens, streamed.
        let first: serde_json::Value = serde_json::from_str(&bodies[0].1).unwrap();
        assert_eq!(
            (first["max_tokens"].as_u64(), first["stream"].as_bool()),
            (Some(5), Some(true))
        );
        let prompt = if chat {
            first["messages"][0]["content"].as_str()
        } else {
            first["prompt"].as_str()
        };
        let words = prompt.unwrap().split(' ').count();
        assert!((12..=21).contains(&words), "{words} words");
    }
}

#[test]
fn errors_timeouts_and_cut_streams_are_counted_and_keep_simulates_slo_keys() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // 0–3 stream, 4 errors, 5 stalls past the client's timeout, 6 cuts off mid-stream.
    let (url, server) = fake_server(7, false, |k| match k {
        4 => Mode::Error,
        5 => Mode::Stall(Duration::from_millis(1500)),
        6 => Mode::Disconnect,
        _ => STREAM,
    });
    let r = replay(url, &traffic(7, 0.05), 64, Duration::from_millis(800));
    server.join().unwrap();
    let mut results: Vec<&str> = r.outcomes.iter().map(|o| o.result.as_str()).collect();
    results.sort_unstable();
    assert_eq!(
        results,
        vec!["http 500", "ok", "ok", "ok", "ok", "timeout", "transport"],
        "{r:?}"
    );
    assert_eq!((r.ok, r.failed), (4, 3));
    assert!((r.slo.error_rate - 3.0 / 7.0).abs() < 1e-9, "{:?}", r.slo);
    assert!(!r.slo.met);
    let keys = serde_json::to_value(&r.slo).unwrap();
    for k in [
        "availability",
        "error_rate",
        "p95_ttft_s",
        "p99_ttft_s",
        "ttft_violation_minutes",
        "met",
    ] {
        assert!(keys.get(k).is_some(), "{k}: {keys}");
    }
    let csv = minutes_csv(&r);
    assert_eq!(
        csv.lines()
            .nth(1)
            .unwrap()
            .split(',')
            .take(4)
            .collect::<Vec<_>>(),
        ["0", "7", "4", "3"]
    );
}

#[test]
fn arrivals_stay_on_schedule_while_the_server_stalls() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The first request stalls for a second; the next five are due 0.1 s apart and must reach
    // the server on time — an open loop does not wait for answers.
    let (url, server) = fake_server(6, false, |k| {
        if k == 0 {
            Mode::Stall(Duration::from_millis(1000))
        } else {
            STREAM
        }
    });
    let r = replay(url, &traffic(6, 0.1), 64, Duration::from_secs(5));
    let served = server.join().unwrap();
    let t0 = served[0].0;
    for (k, (at, _)) in served.iter().enumerate() {
        let offset = at.duration_since(t0).as_secs_f64();
        let due = k as f64 * 0.1;
        assert!(
            (offset - due).abs() < 0.05,
            "request {k} reached the server at {offset:.3} s, due {due:.1} s"
        );
    }
    assert_eq!(r.ok, 5, "{r:?}");
}

#[test]
fn the_open_loop_sheds_past_max_in_flight_instead_of_waiting() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Six requests 50 ms apart against a server that takes 400 ms: with one in flight, the
    // next five arrive while it is busy.
    let slow = Mode::Stream {
        prefill: Duration::from_millis(400),
        per_token: Duration::from_millis(1),
        tokens: 1,
    };
    let (url, server) = fake_server(1, false, move |_| slow);
    let r = replay(url, &traffic(6, 0.05), 1, Duration::from_secs(10));
    server.join().unwrap();
    assert_eq!((r.requests, r.ok, r.shed), (6, 1, 5), "{r:?}");
    assert_eq!(
        r.slo.error_rate, 0.0,
        "shed requests are the generator's, not the server's"
    );
    assert!(
        r.outcomes.windows(2).all(|w| w[0].t_s <= w[1].t_s),
        "in arrival order"
    );
}

/// `--compare-sim`: the simulator runs the arrivals the generator sent on `--servers` replicas
/// of `--profile`. With a profile whose prefill rate matches the fake server's delay the two
/// agree within 10 % and nothing is flagged; with the built-in profile (a faster prefill than
/// this fake) the gap is printed with the override to write. The HTML report and the JSON
/// carry the prediction.
#[test]
fn compare_sim_sets_the_prediction_beside_the_measurement() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("loadgen-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Six 400-token prompts 0.5 s apart: one server is never busy when the next arrives.
    let trace = dir.join("trace.csv");
    let rows: String = (0..6)
        .map(|i| format!("{:.1},400,5\n", f64::from(i) * 0.5))
        .collect();
    std::fs::write(&trace, format!("t_s,prompt_tokens,output_tokens\n{rows}")).unwrap();
    // 400 tokens in the fake's 200 ms: 2,000 tokens/s.
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "[[profiles]]\ninstance_type = \"g6.xlarge\"\nmodel = \"8b\"\nprefill_tokens_per_sec = 2000\n\
         [[fleets]]\nname = \"f\"\nmin_units = 1\nmax_units = 2\n\
         [[fleets.pools]]\nname = \"od\"\nmarket = \"on-demand\"\ninstance_types = [{ type = \"g6.xlarge\" }]\n\
         [[fleets.metrics]]\nsignal = \"queue_depth\"\ntarget = { type = \"AverageValue\", average_value = 4 }\n",
    )
    .unwrap();
    let run = |config: Option<&std::path::Path>| {
        let (url, server) = fake_server(6, false, |_| STREAM);
        let (html, json) = (dir.join("report.html"), dir.join("report.json"));
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_llm-autoscaler"));
        cmd.args(["loadgen", "--target", &url, "--trace"])
            .arg(&trace)
            .args(["--compare-sim", "--profile", "g6.xlarge", "--servers", "1"])
            .arg("--html")
            .arg(&html)
            .arg("--json")
            .arg(&json);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let out = cmd.output().unwrap();
        server.join().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        (stdout, report, std::fs::read_to_string(&html).unwrap())
    };

    let (stdout, report, html) = run(Some(&policy));
    assert!(
        stdout.contains("measured vs the simulator (1 × g6.xlarge 8b)"),
        "{stdout}"
    );
    let measured = report["ttft_p50_s"].as_f64().unwrap();
    let predicted = report["predicted"]["ttft_p50_s"].as_f64().unwrap();
    assert!(
        (measured / predicted - 1.0).abs() < 0.1,
        "measured {measured}, predicted {predicted}\n{stdout}"
    );
    assert!(!stdout.contains("more than 20 % off"), "{stdout}");
    for key in [
        "availability",
        "error_rate",
        "p95_ttft_s",
        "ttft_violation_minutes",
        "met",
    ] {
        assert!(
            report["predicted"]["slo"].get(key).is_some(),
            "{key}: {report}"
        );
    }
    assert_eq!(report["predicted"]["requests"], 6);
    assert_eq!(html.matches("<svg").count(), 3);
    assert!(html.contains("predicted p95") && html.contains("measured vs the simulator"));

    let (stdout, report, _) = run(None);
    let builtin = report["predicted"]["ttft_p50_s"].as_f64().unwrap();
    assert!(
        builtin < 0.15,
        "the built-in g6.xlarge prefills 400 tokens faster: {builtin}"
    );
    assert!(stdout.contains("more than 20 % off"), "{stdout}");
    assert!(stdout.contains("instance_type = \"g6.xlarge\""), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
}
