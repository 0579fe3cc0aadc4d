//! Extractors whose rejections speak the forge's error shapes: a query string that does not
//! parse is a 400 with the JSON error body under `/rest/`, and an error page elsewhere; a JSON
//! body that does not parse is the API's error body. They depend on no state of the app, so
//! every route module (pages and REST) can use them.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::page::error_response;

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
        error_response(StatusCode::BAD_REQUEST, "Bad request", message)
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

/// JSON body extractor whose rejections use the API error shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::response(
                "bad_request",
                "Send a JSON body with Content-Type: application/json",
            )),
            Err(JsonRejection::JsonDataError(e)) => {
                Err(ApiError::response("invalid", &e.body_text()))
            }
            Err(e) => Err(ApiError::response("bad_request", &e.body_text())),
        }
    }
}
