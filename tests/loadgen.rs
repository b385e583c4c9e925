//! `loadgen` against a fake OpenAI-compatible server on loopback that streams server-sent
//! events after a set delay: every request is accounted for (ok, failed, shed), TTFT is the
//! first event's arrival, and the open loop sheds instead of slowing down.
#![cfg(feature = "aws")]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use llm_autoscaler::loadgen::{run, LoadSpec};
use llm_autoscaler::sim::traffic::{Request, Source, Traffic};

/// Serves `n` connections: each waits `first_token` before its first event; every
/// `fail_every`-th answers 500. Returns the URL and the bodies it received.
fn fake_server(
    n: usize,
    first_token: Duration,
    fail_every: usize,
) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/completions", listener.local_addr().unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let handle = std::thread::spawn(move || {
        let mut workers = Vec::new();
        for _ in 0..n {
            let Ok((mut conn, _)) = listener.accept() else {
                break;
            };
            let k = served.fetch_add(1, Ordering::SeqCst) + 1;
            workers.push(std::thread::spawn(move || {
                conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut req = Vec::new();
                let mut buf = [0u8; 8192];
                // Headers, then the body by its content-length.
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
                            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                            .unwrap_or(0);
                        if req.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let text = String::from_utf8_lossy(&req).to_string();
                let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
                if fail_every > 0 && k.is_multiple_of(fail_every) {
                    let _ = conn.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    return body;
                }
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n");
                std::thread::sleep(first_token);
                let _ = conn.write_all(b"data: {\"choices\":[{\"text\":\"the\"}]}\n\n");
                std::thread::sleep(Duration::from_millis(20));
                let _ = conn.write_all(b"data: {\"choices\":[{\"text\":\" end\"}]}\n\ndata: [DONE]\n\n");
                body
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

#[test]
fn every_request_is_timed_to_its_first_token_or_counted_as_failed() {
    let (url, server) = fake_server(10, Duration::from_millis(150), 5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let spec = LoadSpec {
        url,
        model: "m".into(),
        max_in_flight: 64,
        timeout: Duration::from_secs(10),
    };
    let r = rt.block_on(run(&traffic(10, 0.05), spec, &mut |_, _| {}));
    let bodies = server.join().unwrap();
    assert_eq!((r.requests, r.ok, r.failed, r.shed), (10, 8, 2, 0), "{r:?}");
    let fails: Vec<&str> = r
        .outcomes
        .iter()
        .filter(|o| o.result != "ok")
        .map(|o| o.result.as_str())
        .collect();
    assert_eq!(fails, vec!["http 500"; 2]);
    for o in r.outcomes.iter().filter(|o| o.result == "ok") {
        let ttft = o.ttft_s.unwrap();
        assert!(
            (0.15..2.0).contains(&ttft),
            "TTFT is the first event's arrival: {o:?}"
        );
        assert!(o.latency_s.unwrap() >= ttft);
    }
    assert!(r.ttft_p95_s.unwrap() >= r.ttft_p50_s.unwrap());
    // What was asked: the prompt's words, exactly the output tokens, streamed.
    let first: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(first["max_tokens"], 5);
    assert_eq!(first["stream"], true);
    assert_eq!(first["ignore_eos"], true);
    let words = first["prompt"].as_str().unwrap().split(' ').count();
    assert!((12..=21).contains(&words), "{words} words");
}

#[test]
fn the_open_loop_sheds_past_max_in_flight_instead_of_waiting() {
    // Six requests 50 ms apart against a server that takes 400 ms: with one in flight, the
    // next five arrive while it is busy.
    let (url, server) = fake_server(1, Duration::from_millis(400), 0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let spec = LoadSpec {
        url,
        model: "m".into(),
        max_in_flight: 1,
        timeout: Duration::from_secs(10),
    };
    let r = rt.block_on(run(&traffic(6, 0.05), spec, &mut |_, _| {}));
    server.join().unwrap();
    assert_eq!((r.requests, r.ok, r.shed), (6, 1, 5), "{r:?}");
    assert!(
        r.outcomes.windows(2).all(|w| w[0].t_s <= w[1].t_s),
        "in arrival order"
    );
}
