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

/// `n` connections that each sent the first half of a request head and nothing more.
fn partial_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            s
        })
        .collect()
}

/// `n` connections that sent nothing.
fn idle_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap())
        .collect()
}

fn healthy_published() -> Published {
    let mut p = published();
    p.last_tick_instant = Some(Instant::now() + Duration::from_secs(3600));
    p
}

/// The reliability issue's floods: 1,100 idle and 200 half-sent connections. `/healthz` still
/// answers; a half-sent request is dropped after the header-read timeout; and shutdown with
/// 200 half-sent requests open ends within the grace, not when the clients decide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_partial_connections_starve_neither_health_nor_shutdown() {
    let (_tx, rx) = watch::channel(Arc::new(healthy_published()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (addr, server) = http::serve("127.0.0.1:0".parse().unwrap(), rx, stop_rx)
        .await
        .unwrap();
    let (idle, partial) = tokio::task::spawn_blocking(move || {
        (idle_connections(addr, 1100), partial_connections(addr, 200))
    })
    .await
    .unwrap();
    let asked = Instant::now();
    let (code, body) = tokio::task::spawn_blocking(move || get(addr, "/healthz").unwrap())
        .await
        .unwrap();
    eprintln!(
        "/healthz with 1,300 idle or partial connections open: {code} in {:?}",
        asked.elapsed()
    );
    assert_eq!(code, 200, "{body}");

    // A half-sent request is closed once the header-read timeout passes.
    let mut one = partial.into_iter().next().unwrap();
    let waited = Instant::now();
    let closed = tokio::task::spawn_blocking(move || {
        one.set_read_timeout(Some(http::HEADER_READ_TIMEOUT + Duration::from_secs(5)))
            .unwrap();
        let mut rest = Vec::new();
        one.read_to_end(&mut rest).map(|_| rest)
    })
    .await
    .unwrap();
    let after = waited.elapsed();
    assert!(
        closed.is_ok(),
        "not closed within the timeout + 5 s: {closed:?}"
    );
    assert!(
        after <= http::HEADER_READ_TIMEOUT + Duration::from_secs(3),
        "{after:?}"
    );
    eprintln!("half-sent request closed after {after:?}");
    drop(idle);

    let _held = tokio::task::spawn_blocking(move || partial_connections(addr, 200))
        .await
        .unwrap();
    let stopping = Instant::now();
    stop_tx.send(true).unwrap();
    server.await.unwrap().unwrap();
    let took = stopping.elapsed();
    eprintln!("server stopped {took:?} after shutdown with 200 half-sent requests open");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// Beyond the connection limit (`MAX_CONNECTIONS`; 20 here), new connections are closed on
/// accept and counted; once idle ones time out, the endpoint serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_closed_and_counted() {
    let (_tx, rx) = watch::channel(Arc::new(healthy_published()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (addr, server) = http::serve_at_most("127.0.0.1:0".parse().unwrap(), rx, stop_rx, 20)
        .await
        .unwrap();
    let metrics = tokio::task::spawn_blocking(move || {
        let _flood = idle_connections(addr, 70);
        let start = Instant::now();
        loop {
            if let Ok((200, m)) = get(addr, "/metrics") {
                return m;
            }
            assert!(
                start.elapsed() < http::HEADER_READ_TIMEOUT + Duration::from_secs(10),
                "the endpoint never served again"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .unwrap();
    let rejected: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("llm_autoscaler_http_connections_rejected_total "))
        .expect("the rejected counter")
        .parse()
        .unwrap();
    assert!(rejected >= 50.0, "{rejected}");
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

/// A fresh directory and in it the demo policy, its state kept there: (directory, policy).
fn demo_policy(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("llm-autoscaler-{name}-{}", std::process::id()));
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
    (dir, policy)
}

#[test]
fn run_comes_up_healthy_serves_and_exits_0_on_sigterm() {
    let (_dir, policy) = demo_policy("run");
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

    // The endpoint runs on its own thread: the loop's forecast refits (the demo refits every
    // few wall seconds at this speed) do not stall it. Printed, not asserted: a figure of this
    // machine's load.
    let polled = Instant::now();
    let mut worst = Duration::ZERO;
    let mut polls = 0;
    while polled.elapsed() < Duration::from_secs(4) {
        let t = Instant::now();
        let (code, _) = get(addr, "/healthz").unwrap();
        assert_eq!(code, 200);
        worst = worst.max(t.elapsed());
        polls += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    eprintln!("/healthz while the loop runs and refits: {polls} polls, slowest {worst:?}");
    // 200 clients that sent half a request and went quiet must not hold the exit (systemd
    // SIGKILLs at TimeoutStopSec).
    let _partial = partial_connections(addr, 200);
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
            stopped.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM with 200 partial connections open"
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
    // Logged to a pipe, as to a file or the journal: no colour escape codes.
    assert!(!log.contains('\x1b'), "ANSI escapes in a piped log:\n{log}");
    eprintln!(
        "healthy after {up_after:?}, stopped {:?} after SIGTERM",
        stopped.elapsed()
    );
}

/// The browser Chromium is: `LLM_AUTOSCALER_CHROMIUM`, else `chromium` on the PATH (scripts/test.sh
/// installs Debian's package).
fn chromium() -> String {
    if let Some(p) = std::env::var("LLM_AUTOSCALER_CHROMIUM")
        .ok()
        .filter(|p| !p.is_empty())
    {
        return p;
    }
    let found = Command::new("sh")
        .args(["-c", "command -v chromium || command -v chromium-browser"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|p| !p.is_empty());
    found.expect(
        "Chromium is needed for the dashboard test: apt-get install chromium (scripts/test.sh does), \
         or set LLM_AUTOSCALER_CHROMIUM=/path/to/chromium",
    )
}

/// Headless Chromium on `url`: the DOM after the page's scripts ran (`--dump-dom`), and a
/// screenshot written to `png`.
fn browse(url: &str, profile: &std::path::Path, png: &std::path::Path) -> String {
    let common = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--window-size=1280,1800",
        "--virtual-time-budget=8000",
    ];
    // Bounded: a browser that hangs fails the test after a minute.
    let run = |extra: &str| {
        Command::new("timeout")
            .arg("60")
            .arg(chromium())
            .args(common)
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(extra)
            .arg(url)
            .stderr(Stdio::null())
            .output()
            .unwrap()
    };
    let dom = run("--dump-dom");
    assert!(dom.status.success(), "chromium --dump-dom failed");
    let shot = run(&format!("--screenshot={}", png.display()));
    assert!(
        shot.status.success() && png.exists(),
        "chromium --screenshot failed"
    );
    String::from_utf8_lossy(&dom.stdout).to_string()
}

/// The dashboard in a real browser: a page opened after the daemon has run a while draws the
/// past from `/api/history` — capacity, TTFT and spend over time, the decision log — not only
/// what it saw since it opened; and the 3-day view of the same data draws too. Screenshots are
/// left in the temp directory and named in the output.
#[test]
fn a_fresh_page_draws_the_fleets_history_in_chromium() {
    let (dir, policy) = demo_policy("dash");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_llm-autoscaler"))
        .args(["run", "--config"])
        .arg(&policy)
        .args(["--http", &addr.to_string(), "--speed", "600"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Until the daemon has at least 40 minutes of history (at 600× a virtual minute passes in
    // 0.1 s of wall time; bounded at 60 s).
    let started = Instant::now();
    let mut minutes = 0;
    while started.elapsed() < Duration::from_secs(60) && minutes < 40 {
        std::thread::sleep(Duration::from_millis(250));
        if let Ok((200, body)) = get(addr, "/api/history?hours=72") {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            minutes = v[0]["points"].as_array().map_or(0, Vec::len);
        }
    }
    assert!(
        minutes >= 40,
        "only {minutes} minutes of history after 60 s"
    );
    let url = format!("http://{addr}/");
    let shot = dir.join("dashboard-1h.png");
    let dom = browse(&url, &dir.join("profile"), &shot);
    let shot_3d = dir.join("dashboard-3d.png");
    let dom_3d = browse(&format!("{url}?hours=72"), &dir.join("profile"), &shot_3d);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    // Each series of the capacity chart holds the minutes from before the page opened.
    let points_of = |series: &str| {
        let at = dom
            .find(&format!("data-series=\"{series}\""))
            .unwrap_or_else(|| panic!("no {series} line in the page:\n{dom}"));
        let tail = &dom[at..];
        let points = &tail[tail.find("points=\"").unwrap() + 8..];
        points[..points.find('"').unwrap()].split(' ').count()
    };
    for series in [
        "desired_units",
        "in_service_units",
        "spot_units",
        "ttft_p95_secs",
        "spend_usd_per_hour",
    ] {
        let n = points_of(series);
        assert!(n >= 30, "{series}: {n} points in the page");
    }
    assert!(
        dom.contains(">UTC</text>") && dom.contains("Decision log ("),
        "{dom}"
    );
    assert!(
        dom.contains("class=\"change\""),
        "no decision log row:\n{dom}"
    );
    // The TTFT chart carries the fleet's objective (the demo's: the default 2 s).
    assert!(
        dom.contains("class=\"slo\"") && dom.contains("objective 2 s"),
        "{dom}"
    );
    // The 3-day view: the same minutes (fewer than three days exist), its button marked.
    assert!(dom_3d.contains("data-h=\"72\" class=\"on\""), "{dom_3d}");
    assert!(dom_3d.matches("data-series=\"desired_units\"").count() >= 1);
    eprintln!(
        "dashboard screenshots: {} and {}",
        shot.display(),
        shot_3d.display()
    );
}

/// A three-day `simulate` report, opened in Chromium: its charts are drawn with hours on the
/// time axis, titled axes, and a legend that names our policy first. The screenshot is left
/// in the temp directory and named in the output.
#[test]
fn a_three_day_report_reads_in_hours_in_chromium() {
    let (dir, _) = demo_policy("report");
    // Three days of a daily cycle, 40–120 requests a minute.
    let rows: String = (0..3 * 1440)
        .map(|m| {
            let v = 80.0 + 40.0 * (std::f64::consts::TAU * f64::from(m) / 1440.0).sin();
            format!("{m},{v:.0}\n")
        })
        .collect();
    let trace = dir.join("three-days.csv");
    std::fs::write(&trace, format!("minute,requests\n{rows}")).unwrap();
    let html = dir.join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_llm-autoscaler"))
        .args(["simulate", "--config", "config/example.toml", "--trace"])
        .arg(&trace)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shot = dir.join("report-3d.png");
    let dom = browse(
        &format!("file://{}", html.display()),
        &dir.join("profile"),
        &shot,
    );
    assert_eq!(dom.matches("<svg").count(), 4, "{dom}");
    assert!(
        dom.matches(">hour</text>").count() == 4,
        "every chart in hours"
    );
    for title in [
        ">requests/s</text>",
        ">units</text>",
        ">seconds</text>",
        ">USD</text>",
    ] {
        assert!(dom.contains(title), "axis title {title}");
    }
    // The cost chart's legend: ours first, then each baseline in its own colour.
    let legend_at = dom.find("Cumulative cost of each policy").unwrap();
    let legend = &dom[legend_at..legend_at + 1200];
    assert!(legend.contains("■ ours"), "{legend}");
    let colours: Vec<&str> = legend
        .split("style=\"color:")
        .skip(1)
        .map(|c| c.split('"').next().unwrap())
        .collect();
    let mut unique = colours.clone();
    unique.sort_unstable();
    unique.dedup();
    assert!(
        colours.len() >= 6 && unique.len() == colours.len(),
        "{colours:?}"
    );
    eprintln!("report screenshot: {}", shot.display());
}
