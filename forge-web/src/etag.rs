//! Validators for pages and API answers: a GET answered 200 with a body of known size (up to
//! [`MAX_BODY`]) gets a weak `ETag`, a digest of the body, and a request whose
//! `If-None-Match` already names it gets `304 Not Modified` without the body. Views that
//! know their version cheaper set their own `ETag`, which is left alone; streams (git, file
//! downloads) and `no-store` answers are not looked at.
//!
//! The digest covers everything the body holds, the viewer's own parts (their name, the
//! form token) included, so one viewer's copy never validates another's.

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// Largest body given a validator: its digest is computed on the request's own thread, so it
/// stays well under a millisecond (bigger answers are rare, and downloads stream).
pub const MAX_BODY: u64 = 512 * 1024;

/// Middleware: adds the validator and answers conditional requests.
pub async fn revalidate(req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    let asked = req.headers().get(header::IF_NONE_MATCH).cloned();
    let res = next.run(req).await;
    if res.status() != StatusCode::OK
        || res.headers().contains_key(header::ETAG)
        || no_store(res.headers())
    {
        return res;
    }
    match res.body().size_hint().exact() {
        Some(n) if n <= MAX_BODY => {}
        _ => return res,
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY as usize).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let tag = format!("W/\"{}\"", hex::encode(&Sha256::digest(&bytes)[..16]));
    let Ok(value) = HeaderValue::from_str(&tag) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts.headers.insert(header::ETAG, value);
    if asked.is_some_and(|a| names(&a, &tag)) {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn no_store(headers: &HeaderMap) -> bool {
    headers
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("no-store"))
}

/// Whether an `If-None-Match` value names `tag` (weak comparison: `W/` is ignored), or is `*`.
fn names(asked: &HeaderValue, tag: &str) -> bool {
    let Ok(asked) = asked.to_str() else {
        return false;
    };
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let want = opaque(tag);
    asked
        .split(',')
        .any(|t| t.trim() == "*" || opaque(t) == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists() {
        let tag = "W/\"abc\"";
        for yes in ["W/\"abc\"", "\"abc\"", "\"x\", W/\"abc\"", "*"] {
            assert!(names(&HeaderValue::from_static(yes), tag), "{yes}");
        }
        for no in ["W/\"abd\"", "abc", ""] {
            assert!(!names(&HeaderValue::from_static(no), tag), "{no}");
        }
    }
}
