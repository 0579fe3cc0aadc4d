//! Liveness (with a store check), Prometheus metrics and the stylesheet.

use axum::Json;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::state::AppState;

pub async fn healthz(State(st): State<AppState>) -> impl IntoResponse {
    if st.health.draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        )
    } else if st.health.store_ok(st.forge.db()).await {
        (StatusCode::OK, Json(json!({"status": "ok", "store": "ok"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "store": "unreachable"})),
        )
    }
}

/// Prometheus metrics, for the addresses in `FORGE_METRICS_ALLOW` (loopback by default) or a
/// caller with `Authorization: Bearer <FORGE_METRICS_TOKEN>`; anyone else gets a 404.
pub async fn metrics(
    State(st): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let cfg = st.forge.config();
    let by_address = cfg
        .metrics_allow_ips()
        .is_ok_and(|ips| ips.contains(&st.proxies.client(peer.ip(), &headers)));
    let by_token = cfg.metrics_token.as_deref().is_some_and(|token| {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| bool::from(given.trim().as_bytes().ct_eq(token.as_bytes())))
    });
    if !(by_address || by_token) {
        return crate::error::PageError::from(forge_tools::Error::NotFound("page")).into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render()
            + &crate::metrics::event_lines(st.forge.events().stats())
            + &crate::metrics::read_model_lines(st.forge.read_model()),
    )
        .into_response()
}
