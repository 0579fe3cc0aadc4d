//! Extractors whose rejections speak the forge's error shapes: a query string that does not
//! parse is a 400 with the JSON error body under `/rest/`, and an error page elsewhere.

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Whether the request came in under `/rest/` (tool routers see a rebased path, so the
/// original URI decides).
pub fn is_api(parts: &Parts) -> bool {
    parts
        .extensions
        .get::<OriginalUri>()
        .map_or_else(|| parts.uri.path(), |u| u.0.path())
        .starts_with("/rest/")
}

/// A 400 in the shape the caller expects.
pub fn bad_request(api: bool, message: &str) -> Response {
    if api {
        ApiError::response("bad_request", message)
    } else {
        let body = crate::views::error_page(400, "Bad request", message);
        (StatusCode::BAD_REQUEST, Html(body)).into_response()
    }
}

/// `axum::extract::Query` with a 400 that says which parameter is wrong.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query).map(Query).map_err(|e| {
            bad_request(
                is_api(parts),
                &format!("The query string could not be read: {e}"),
            )
        })
    }
}
