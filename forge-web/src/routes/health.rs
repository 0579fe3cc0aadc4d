//! Liveness (with a store check), Prometheus metrics and the stylesheet.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use crate::state::AppState;

pub async fn healthz(State(st): State<AppState>) -> impl IntoResponse {
    match forge_tools::store::ping(st.forge.db()).await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ok", "store": "ok"}))),
        Err(e) => {
            tracing::warn!(error = %e, "health check: store unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "store": "unreachable"})),
            )
        }
    }
}

pub async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
}

const CSS: &str = include_str!("../../static/forge.css");

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}

pub async fn highlight_css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        forge_tools::markdown::highlight::css(),
    )
}
