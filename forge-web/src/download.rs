//! One way to send user-supplied or repository files: the right type, `nosniff`, a sandboxing
//! CSP, and `attachment` unless the caller decided the type is safe to show inline.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;

pub struct Download<'a> {
    pub content_type: &'a str,
    pub filename: &'a str,
    pub inline: bool,
    pub length: Option<u64>,
}

/// Builds the response around `body` with the safe headers.
pub fn respond(body: Body, d: Download<'_>) -> Response {
    let mut res = Response::new(body);
    let h = res.headers_mut();
    let ctype = if d.content_type == "text/plain" {
        "text/plain; charset=utf-8"
    } else {
        d.content_type
    };
    let value = |s: &str| {
        HeaderValue::from_str(s)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
    };
    h.insert(header::CONTENT_TYPE, value(ctype));
    if let Some(len) = d.length {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    let disposition = if d.inline { "inline" } else { "attachment" };
    let encoded = forge_tools::tools::wiki::encode_name(d.filename);
    h.insert(
        header::CONTENT_DISPOSITION,
        value(&format!("{disposition}; filename*=UTF-8''{encoded}")),
    );
    res
}
