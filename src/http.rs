//! The HTTP endpoint (127.0.0.1 by default): `/livez` from loop progress (the liveness probe,
//! and what feeds systemd's watchdog), `/healthz` from loop progress *and* plans going through
//! (readiness: a loop that ticks while AWS refuses every call is alive but not healthy),
//! `/metrics` in the Prometheus exposition format, `/api/state` as JSON, and `/`, a live
//! dashboard. It only reads what the loop publishes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::watch;

use crate::daemon::Published;
use crate::telemetry::render_metrics;

type Shared = watch::Receiver<Arc<Published>>;

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

async fn livez(State(rx): State<Shared>) -> Response {
    let p = rx.borrow().clone();
    match not_live(&p) {
        None => (StatusCode::OK, format!("alive: {} ticks\n", p.ticks)).into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why + "\n").into_response(),
    }
}

async fn healthz(State(rx): State<Shared>) -> Response {
    let p = rx.borrow().clone();
    match unhealthy_reason(&p) {
        None => (StatusCode::OK, format!("ok: {} ticks\n", p.ticks)).into_response(),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why + "\n").into_response(),
    }
}

async fn metrics(State(rx): State<Shared>) -> Response {
    let body = render_metrics(&rx.borrow().clone());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn state(State(rx): State<Shared>) -> Json<Published> {
    Json((*rx.borrow().clone()).clone())
}

async fn dashboard() -> Html<&'static str> {
    Html(include_str!("dashboard.html"))
}

/// Binds `addr` and serves until `shutdown` turns true. Returns the bound address (port 0
/// picks a free one) and the server task.
pub async fn serve(
    addr: SocketAddr,
    rx: Shared,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let app = Router::new()
        .route("/", get(dashboard))
        .route("/healthz", get(healthz))
        .route("/livez", get(livez))
        .route("/metrics", get(metrics))
        .route("/api/state", get(state))
        .with_state(rx);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                while !*shutdown.borrow() {
                    if shutdown.changed().await.is_err() {
                        break;
                    }
                }
            })
            .await
    });
    Ok((bound, task))
}
