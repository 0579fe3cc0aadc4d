//! Domain errors as HTTP responses: one status mapping, two renderings (an error page for
//! browsers, the JSON error shape for the REST API). Each error is logged once, here.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use forge_tools::Error;
use serde_json::json;

/// Status code and machine-readable code for a domain error.
pub fn classify(e: &Error) -> (StatusCode, &'static str) {
    match e {
        Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        Error::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
        Error::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        Error::Conflict { code, .. } => (StatusCode::CONFLICT, code),
        Error::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        Error::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        Error::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        Error::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        Error::Store(_) | Error::Tasks(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

fn log(e: &Error, status: StatusCode) {
    if status.is_server_error() {
        tracing::error!(error = %e, status = status.as_u16(), "request failed");
    } else {
        tracing::debug!(error = %e, status = status.as_u16(), "request refused");
    }
}

/// What a person sees for an error; server faults are not detailed to the client.
fn public_message(e: &Error, status: StatusCode) -> String {
    if status.is_server_error() {
        match e {
            Error::Store(_) | Error::Tasks(_) => {
                "The forge's store is unavailable right now; try again shortly.".into()
            }
            Error::Busy(m) => m.clone(),
            _ => "Something went wrong on our side. It has been logged.".into(),
        }
    } else {
        e.to_string()
    }
}

/// An error from a page handler: rendered as an HTML error page.
#[derive(Debug)]
pub struct PageError {
    pub error: Error,
    /// Where to come back to after logging in, for `Unauthenticated`.
    pub next: Option<String>,
}

impl From<Error> for PageError {
    fn from(error: Error) -> Self {
        Self { error, next: None }
    }
}

impl PageError {
    pub fn with_next(mut self, next: &str) -> Self {
        self.next = Some(next.to_owned());
        self
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, _) = classify(&self.error);
        log(&self.error, status);
        if matches!(self.error, Error::Unauthenticated) {
            let next = self.next.unwrap_or_else(|| "/".into());
            let target = format!("/auth/login?next={}", urlencode(&next));
            return Redirect::to(&target).into_response();
        }
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Forbidden",
            StatusCode::TOO_MANY_REQUESTS => "Too many requests",
            StatusCode::SERVICE_UNAVAILABLE => "Unavailable",
            StatusCode::CONFLICT => "Conflict",
            StatusCode::UNPROCESSABLE_ENTITY => "Invalid request",
            StatusCode::BAD_REQUEST => "Bad request",
            StatusCode::PAYLOAD_TOO_LARGE => "Too large",
            _ => "Error",
        };
        let body =
            crate::page::error_page(status.as_u16(), title, &public_message(&self.error, status));
        with_retry_after((status, Html(body)).into_response())
    }
}

/// An error from a REST handler: `{"error": {"code", "message"[, "fields"]}}`.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl ApiError {
    pub fn response(status_code: &'static str, message: &str) -> Response {
        let status = match status_code {
            "bad_request" => StatusCode::BAD_REQUEST,
            "unauthenticated" | "invalid_token" => StatusCode::UNAUTHORIZED,
            "payload_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        (
            status,
            Json(json!({"error": {"code": status_code, "message": message}})),
        )
            .into_response()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = classify(&self.0);
        log(&self.0, status);
        let mut body = json!({"error": {"code": code, "message": public_message(&self.0, status)}});
        if let Error::Invalid(fields) = &self.0 {
            let map: serde_json::Map<String, serde_json::Value> = fields
                .0
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            body["error"]["fields"] = serde_json::Value::Object(map);
        }
        let mut res = with_retry_after((status, Json(body)).into_response());
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"forge\""),
            );
        }
        res
    }
}

/// A 503 tells the client when to come back.
fn with_retry_after(mut res: Response) -> Response {
    if res.status() == StatusCode::SERVICE_UNAVAILABLE {
        res.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("2"),
        );
    }
    res
}

pub type PageResult<T = Response> = Result<T, PageError>;
pub type ApiResult<T = Response> = Result<T, ApiError>;

/// Percent-encodes a value for a query string.
pub fn urlencode(s: &str) -> String {
    // The encoder serde_urlencoded uses, without its serializer around it (it showed in the
    // ticket page's profile: two links per post).
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
