//! Load shedding: the cap on requests handled at once, and the middleware that answers 503 past
//! it. It takes the cap alone as its state, so it needs nothing of the app.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

/// The cap on requests handled at once.
#[derive(Clone)]
pub struct InFlight(Arc<Semaphore>);

impl InFlight {
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max.max(1))))
    }
}

/// Middleware: past the cap on requests in flight, answers 503 with `Retry-After` at once
/// instead of queueing without bound. `/healthz` is always answered, so an orchestrator sees
/// an overloaded node as alive.
pub async fn shed_load(State(cap): State<InFlight>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    let Ok(permit) = cap.0.clone().try_acquire_owned() else {
        let mut res = (
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is busy; try again in a moment.",
        )
            .into_response();
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return res;
    };
    let res = next.run(req).await;
    drop(permit);
    res
}
