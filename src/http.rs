//! The HTTP endpoint (127.0.0.1 by default): `/healthz` from loop progress, `/metrics` in the
//! Prometheus exposition format, `/api/state` as JSON, and `/`, a live dashboard. It only reads
//! what the loop publishes.

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

/// Healthy while the loop completes ticks: the last one no older than three intervals (and
/// never less than 5 s, so a slow tick is not an outage).
pub fn healthy(p: &Published) -> bool {
    let limit = Duration::from_secs_f64((3.0 * p.interval_secs).max(5.0));
    p.last_tick_instant.is_some_and(|t| t.elapsed() <= limit)
}

async fn healthz(State(rx): State<Shared>) -> Response {
    let p = rx.borrow().clone();
    if healthy(&p) {
        (StatusCode::OK, format!("ok: {} ticks\n", p.ticks)).into_response()
    } else if p.ticks == 0 {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "starting: no tick completed yet\n",
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "stalled: the control loop has not completed a tick recently\n",
        )
            .into_response()
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
