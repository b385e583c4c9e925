//! The HTTP endpoint (127.0.0.1 by default): `/livez` from loop progress (the liveness probe,
//! and what feeds systemd's watchdog), `/healthz` from loop progress *and* plans going through
//! (readiness: a loop that ticks while AWS refuses every call is alive but not healthy),
//! `/metrics` in the Prometheus exposition format, `/api/state` as JSON, `/api/history` (each
//! fleet's last three days, a point a minute, and its capacity changes), and `/`, a live
//! dashboard with that history. It only reads what the loop publishes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::warn;

use crate::daemon::Published;
use crate::telemetry::render_metrics;

type Shared = watch::Receiver<Arc<Published>>;

/// Connections served at once. One more is closed as soon as it is accepted, so no number of
/// idle clients can exhaust the process's file descriptors (the unit's `LimitNOFILE=8192`
/// leaves room for these and for the daemon's own AWS, scrape and SQLite descriptors).
pub const MAX_CONNECTIONS: usize = 2048;
/// A client must send a whole request head within this time — the first request and each
/// keep-alive one after it — or its connection is closed: a partial or idle connection cannot
/// hold a slot (or shutdown) for longer.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// After shutdown is asked, requests in flight get this long; then every connection is
/// dropped, whatever its client does (systemd's stop timeout is far longer).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// What the endpoint serves from: the loop's publication and the server's own counters.
#[derive(Clone)]
struct Served {
    rx: Shared,
    /// Connections closed on accept because [`MAX_CONNECTIONS`] were open.
    rejected: Arc<AtomicU64>,
}

/// Alive while the loop completes ticks: the last one no older than three intervals (and
/// never less than 5 s, so a slow tick is not an outage).
pub fn healthy(p: &Published) -> bool {
    let limit = Duration::from_secs_f64((3.0 * p.interval_secs).max(5.0));
    p.last_tick_instant.is_some_and(|t| t.elapsed() <= limit)
}

/// Why the loop is not live, if it is not.
fn not_live(p: &Published) -> Option<String> {
    if healthy(p) {
        None
    } else if p.ticks == 0 {
        Some("starting: no tick completed yet".into())
    } else {
        Some("stalled: the control loop has not completed a tick recently".into())
    }
}

/// Why the daemon is not healthy, if it is not: not live, or no fleet's plan has gone through
/// (every pool change applied) for `unhealthy_after_ticks` ticks.
pub fn unhealthy_reason(p: &Published) -> Option<String> {
    if let Some(why) = not_live(p) {
        return Some(why);
    }
    if p.fleets.is_empty() || p.ticks < p.unhealthy_after_ticks {
        return None;
    }
    if p.persistence.failing_ticks >= p.unhealthy_after_ticks {
        return Some(format!(
            "unhealthy: engine state not persisted for {} ticks (limit {}): {}",
            p.persistence.failing_ticks,
            p.unhealthy_after_ticks,
            p.persistence
                .last_error
                .as_deref()
                .unwrap_or("unknown error")
        ));
    }
    let last_ok = p.fleets.values().filter_map(|f| f.last_ok_tick).max();
    let since = last_ok.map_or(p.ticks, |t| p.ticks - 1 - t);
    (since >= p.unhealthy_after_ticks).then(|| {
        let errors: Vec<String> = p
            .fleets
            .iter()
            .filter_map(|(name, f)| {
                let kinds: Vec<String> = f
                    .provider_errors_total
                    .iter()
                    .map(|(k, n)| format!("{k} ×{n}"))
                    .collect();
                (!kinds.is_empty()).then(|| format!("{name}: {}", kinds.join(", ")))
            })
            .collect();
        format!(
            "unhealthy: no fleet's plan has gone through for {since} ticks (limit {}); errors so far: {}",
            p.unhealthy_after_ticks,
            if errors.is_empty() {
                "none counted".to_string()
            } else {
                errors.join("; ")
            }
        )
    })
}

async fn livez(State(s): State<Served>) -> Response {
    let p = s.rx.borrow().clone();
    match not_live(&p) {
        None => (StatusCode::OK, format!("alive: {} ticks\n", p.ticks)).into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why + "\n").into_response(),
    }
}

async fn healthz(State(s): State<Served>) -> Response {
    let p = s.rx.borrow().clone();
    match unhealthy_reason(&p) {
        None => (StatusCode::OK, format!("ok: {} ticks\n", p.ticks)).into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why + "\n").into_response(),
    }
}

async fn metrics(State(s): State<Served>) -> Response {
    let mut body = render_metrics(&s.rx.borrow().clone());
    body.push_str(&format!(
        "# HELP llm_autoscaler_http_connections_rejected_total Connections closed on accept because the limit was open.\n\
         # TYPE llm_autoscaler_http_connections_rejected_total counter\n\
         llm_autoscaler_http_connections_rejected_total {}\n",
        s.rejected.load(Ordering::Relaxed)
    ));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn state(State(s): State<Served>) -> Json<Published> {
    Json((*s.rx.borrow().clone()).clone())
}

/// `/api/history` parameters.
#[derive(serde::Deserialize)]
struct HistoryQuery {
    /// One fleet; absent: every fleet.
    fleet: Option<String>,
    /// How far back from the fleet's newest point, hours (at most three days). Default 1.
    hours: Option<f64>,
}

/// `/api/history?fleet=NAME&hours=H`: each fleet's points (one a minute) and capacity changes
/// over the last `hours` before its newest point — the daemon's clock, not the browser's.
async fn history(State(s): State<Served>, Query(q): Query<HistoryQuery>) -> Response {
    let hours = q.hours.unwrap_or(1.0).clamp(0.0, 72.0);
    let shared = s.rx.borrow().history.clone();
    let Ok(all) = shared.read() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "history unavailable").into_response();
    };
    if let Some(f) = &q.fleet {
        if !all.contains_key(f) {
            return (StatusCode::NOT_FOUND, format!("no history for fleet {f:?}")).into_response();
        }
    }
    let views: Vec<crate::history::View> = all
        .iter()
        .filter(|(name, _)| q.fleet.as_ref().is_none_or(|f| f == *name))
        .filter_map(|(name, h)| {
            let from = h.last_at()?.plus_secs(-hours * 3600.0);
            Some(h.view(name, from))
        })
        .collect();
    Json(views).into_response()
}

async fn dashboard() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}

/// Binds `addr` and serves until `shutdown` turns true. Returns the bound address (port 0
/// picks a free one) and the server task, which ends within [`SHUTDOWN_GRACE`] of shutdown.
pub async fn serve(
    addr: SocketAddr,
    rx: Shared,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    serve_at_most(addr, rx, shutdown, MAX_CONNECTIONS).await
}

/// [`serve`] with `max_connections` in place of [`MAX_CONNECTIONS`] (tests exercise the limit
/// with a small one).
pub async fn serve_at_most(
    addr: SocketAddr,
    rx: Shared,
    shutdown: watch::Receiver<bool>,
    max_connections: usize,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((
        bound,
        tokio::spawn(accept_loop(listener, rx, shutdown, max_connections)),
    ))
}

/// [`serve`] on a thread of its own with its own runtime, so that neither the control loop's
/// work (a forecast refit holds its thread for up to a second) nor a flood of requests can
/// stall the other. Returns the bound address and the thread, which ends within
/// [`SHUTDOWN_GRACE`] of shutdown.
pub fn serve_on_own_thread(
    addr: SocketAddr,
    rx: Shared,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, std::thread::JoinHandle<std::io::Result<()>>)> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let thread = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                accept_loop(listener, rx, shutdown, MAX_CONNECTIONS).await
            })
        })?;
    Ok((bound, thread))
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    rx: Shared,
    mut shutdown: watch::Receiver<bool>,
    max_connections: usize,
) -> std::io::Result<()> {
    let served = Served {
        rx,
        rejected: Arc::new(AtomicU64::new(0)),
    };
    let app = Router::new()
        .route("/", get(dashboard))
        .route("/healthz", get(healthz))
        .route("/livez", get(livez))
        .route("/metrics", get(metrics))
        .route("/api/state", get(state))
        .route("/api/history", get(history))
        .with_state(served.clone());
    let slots = Arc::new(Semaphore::new(max_connections));
    let (close_tx, close_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                    Ok(slot) => {
                        conns.spawn(connection(stream, app.clone(), close_rx.clone(), slot));
                    }
                    Err(_) => {
                        let n = served.rejected.fetch_add(1, Ordering::Relaxed) + 1;
                        if n.is_power_of_two() {
                            warn!(rejected_total = n, limit = max_connections, "HTTP connection limit reached; closing new connections");
                        }
                    }
                },
                // Out of descriptors (EMFILE) or the like: wait instead of spinning.
                Err(e) => {
                    warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            () = stopped(&mut shutdown) => break,
        }
    }
    drop(listener);
    let _ = close_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            open = conns.len(),
            "HTTP connections still open after the shutdown grace; dropping them"
        );
        conns.abort_all();
    }
    Ok(())
}

/// Resolves once `shutdown` is true (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// One HTTP/1 connection: request heads within [`HEADER_READ_TIMEOUT`], closed gracefully
/// when the server stops; holds its slot until it ends.
async fn connection(
    stream: tokio::net::TcpStream,
    app: Router,
    mut close: watch::Receiver<bool>,
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let conn = http1.serve_connection(
        hyper_util::rt::TokioIo::new(stream),
        hyper_util::service::TowerToHyperService::new(app),
    );
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = stopped(&mut close) => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}
