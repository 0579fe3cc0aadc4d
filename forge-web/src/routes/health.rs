//! Liveness (with a store check), Prometheus metrics and the stylesheet.

use axum::Json;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::state::AppState;

/// The store's health as last seen, refreshed in the background: `/healthz` answers from it
/// at once, so an overloaded store or server cannot make the liveness check itself slow.
#[derive(Default)]
pub struct Health {
    /// When the store last answered a ping, and whether it did.
    last: Mutex<Option<(Instant, bool)>>,
    checking: AtomicBool,
}

/// A result newer than this is served as it is.
const FRESH: Duration = Duration::from_secs(1);
/// A result older than this is not trusted: the request pings and waits.
const STALE: Duration = Duration::from_secs(10);

impl Health {
    fn last(&self) -> Option<(Instant, bool)> {
        self.last.lock().ok().and_then(|l| *l)
    }

    async fn check(&self, db: &mongodb::Database) -> bool {
        let ok = matches!(
            tokio::time::timeout(Duration::from_secs(2), forge_tools::store::ping(db)).await,
            Ok(Ok(()))
        );
        if !ok {
            tracing::warn!("health check: store unreachable");
        }
        if let Ok(mut l) = self.last.lock() {
            *l = Some((Instant::now(), ok));
        }
        ok
    }
}

pub async fn healthz(State(st): State<AppState>) -> impl IntoResponse {
    let health = st.health.clone();
    let store_ok = match health.last() {
        Some((at, ok)) if at.elapsed() < FRESH => ok,
        Some((at, ok)) if at.elapsed() < STALE => {
            // Refresh in the background (one check at a time); answer with what we know.
            if !health.checking.swap(true, Ordering::AcqRel) {
                let db = st.forge.db().clone();
                tokio::spawn(async move {
                    health.check(&db).await;
                    health.checking.store(false, Ordering::Release);
                });
            }
            ok
        }
        _ => health.check(st.forge.db()).await,
    };
    if store_ok {
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
        .is_ok_and(|ips| ips.contains(&peer.ip()));
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
        st.metrics.render(),
    )
        .into_response()
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
