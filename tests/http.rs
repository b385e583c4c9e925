//! The HTTP endpoint on loopback: `/livez` follows loop progress, `/healthz` loop progress and
//! plans going through, `/metrics` is Prometheus
//! exposition with every name prefixed, `/api/state` is the published JSON; and the `run`
//! command end to end: healthy within seconds, three endpoints served, exit 0 on SIGTERM.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use llm_autoscaler::daemon::{FleetStatus, Published};
use llm_autoscaler::engine::{decide, EngineState};
use llm_autoscaler::http;
use tokio::sync::watch;

/// A plain HTTP/1.1 GET on loopback: (status, body).
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn published() -> Published {
    let cfg =
        llm_autoscaler::cost::load_policy(std::path::Path::new("config/example.toml")).unwrap();
    let text = std::fs::read_to_string("docs/examples/snapshot.json").unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let snap = serde_json::from_value(v["snapshot"].clone()).unwrap();
    let now = serde_json::from_value(v["now"].clone()).unwrap();
    let (d, _) = decide(&cfg.fleets[0], &snap, &EngineState::default(), now);
    let mut p = Published {
        ticks: 7,
        interval_secs: 15.0,
        unhealthy_after_ticks: 5,
        last_tick_at: Some(now),
        ..Published::default()
    };
    p.fleets.insert(
        "llama-8b".into(),
        FleetStatus {
            decision: Some(d),
            applied: true,
            last_ok_tick: Some(6),
            ..FleetStatus::default()
        },
    );
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_serve_health_metrics_and_state() {
    let mut p = published();
    let (tx, rx) = watch::channel(Arc::new(p.clone()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (addr, server) = http::serve("127.0.0.1:0".parse().unwrap(), rx, stop_rx)
        .await
        .unwrap();

    let fetch = |path: &'static str| tokio::task::spawn_blocking(move || get(addr, path).unwrap());
    // No tick has completed on this clock: neither alive nor healthy.
    for path in ["/healthz", "/livez"] {
        let (code, body) = fetch(path).await.unwrap();
        assert_eq!(code, 503, "{path}: {body}");
    }
    p.last_tick_instant = Some(Instant::now());
    tx.send(Arc::new(p.clone())).unwrap();
    let (code, body) = fetch("/healthz").await.unwrap();
    assert_eq!((code, body.as_str()), (200, "ok: 7 ticks\n"));
    // The loop ticks, but no plan has gone through for 5 ticks (AWS refusing every call):
    // alive, not healthy, and the reason says so.
    let mut stuck = p.clone();
    stuck.ticks = 12;
    let f = stuck.fleets.get_mut("llama-8b").unwrap();
    f.provider_errors_total.insert("config".into(), 5);
    tx.send(Arc::new(stuck)).unwrap();
    let (code, body) = fetch("/healthz").await.unwrap();
    assert_eq!(
        (code, body.as_str()),
        (503, "unhealthy: no fleet's plan has gone through for 5 ticks (limit 5); errors so far: llama-8b: config ×5\n")
    );
    let (code, body) = fetch("/livez").await.unwrap();
    assert_eq!((code, body.as_str()), (200, "alive: 12 ticks\n"));
    tx.send(Arc::new(p)).unwrap();

    let (code, metrics) = fetch("/metrics").await.unwrap();
    assert_eq!(code, 200);
    let samples: Vec<&str> = metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert!(samples.len() > 20, "{metrics}");
    assert!(
        samples.iter().all(|l| l.starts_with("llm_autoscaler_")),
        "{metrics}"
    );
    for want in [
        "llm_autoscaler_desired_units{fleet=\"llama-8b\",pool=\"spot\",market=\"spot\"}",
        "llm_autoscaler_in_service_units{fleet=\"llama-8b\"} 4",
        "llm_autoscaler_signal_recommendation_units{fleet=\"llama-8b\",metric=\"token_work\",signal=\"token_work\"} 6",
        "llm_autoscaler_tick_cpu_seconds_total",
        "# TYPE llm_autoscaler_decision_reasons_total counter",
    ] {
        assert!(metrics.contains(want), "missing {want} in\n{metrics}");
    }

    let (code, state) = fetch("/api/state").await.unwrap();
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert_eq!(v["ticks"], 7);
    assert_eq!(
        v["fleets"]["llama-8b"]["decision"]["winning_metric"],
        "token_work"
    );

    let (code, page) = fetch("/").await.unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("api/state"));

    stop_tx.send(true).unwrap();
    server.await.unwrap().unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn run_comes_up_healthy_serves_and_exits_0_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("llm-autoscaler-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("demo.toml");
    let text = std::fs::read_to_string("config/demo.toml")
        .unwrap()
        .replace(
            "state_dir = \"./state\"",
            &format!("state_dir = \"{}\"", dir.join("state").display()),
        );
    std::fs::write(&policy, text).unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-autoscaler"))
        .args(["run", "--config"])
        .arg(&policy)
        .args(["--http", &addr.to_string(), "--speed", "120"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut healthy = false;
    while started.elapsed() < Duration::from_secs(15) {
        if matches!(get(addr, "/healthz"), Ok((200, _))) {
            healthy = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let up_after = started.elapsed();
    assert!(healthy, "not healthy within 15 s");
    let (code, metrics) = get(addr, "/metrics").unwrap();
    assert!(code == 200 && metrics.contains("llm_autoscaler_ticks_total"));
    let (code, state) = get(addr, "/api/state").unwrap();
    assert_eq!(code, 200);
    assert!(state.contains("demo-llama-8b"));

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let stopped = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(log.contains("shutting down"), "{log}");
    eprintln!(
        "healthy after {up_after:?}, stopped {:?} after SIGTERM",
        stopped.elapsed()
    );
}
