//! Request guards that keep one client from costing the server more than its share: body
//! limits decided before a byte of the body is read, and security headers on every answer.
//! The cap on requests in flight is `load_shed`; permission checks before a body is read are
//! the request-context extractors of `ctx`.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::page::error_response;
use crate::state::AppState;

/// Body limit of requests from viewers who are not logged in (log-in and sign-up forms,
/// anonymous posts): small, because anyone can send them.
pub const ANONYMOUS_BODY_BYTES: u64 = 64 * 1024;
/// Multipart framing around an uploaded file.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;
/// A clone's or fetch's negotiation (wants and haves).
const UPLOAD_PACK_BODY_BYTES: u64 = 64 << 20;

/// Which kind of body a route takes, by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    Push,
    Fetch,
    Attachment,
    Form,
}

fn body_kind(path: &str) -> BodyKind {
    if path.starts_with("/git/") {
        if path.ends_with("/git-receive-pack") {
            BodyKind::Push
        } else {
            BodyKind::Fetch
        }
    } else if path.ends_with("/attachments") {
        // Every tool's uploads live at `.../attachments` (pages and REST alike).
        BodyKind::Attachment
    } else {
        BodyKind::Form
    }
}

/// The answer to a body over its limit, in the caller's format.
fn too_large(path: &str, limit: u64) -> Response {
    let message =
        format!("The request body is larger than this server accepts here ({limit} bytes)");
    if path.starts_with("/rest/") {
        ApiError::response("payload_too_large", &message)
    } else if path.starts_with("/git/") {
        (StatusCode::PAYLOAD_TOO_LARGE, message).into_response()
    } else {
        error_response(StatusCode::PAYLOAD_TOO_LARGE, "Too large", &message)
    }
}

/// Middleware: sizes the body limit for this route and viewer, refuses a declared
/// `Content-Length` over it at once (413, nothing read), and caps what a chunked body may
/// stream. Anonymous viewers get [`ANONYMOUS_BODY_BYTES`] except on git routes, whose
/// clients authenticate only after a 401.
pub async fn body_limit(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let bodiless = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if bodiless && declared.is_none_or(|n| n == 0) {
        return next.run(req).await;
    }
    let cfg = st.forge.config();
    let path = req.uri().path().to_owned();
    let kind = body_kind(&path);
    let mut limit = match kind {
        BodyKind::Push => cfg.max_push_bytes,
        BodyKind::Fetch => UPLOAD_PACK_BODY_BYTES,
        BodyKind::Attachment => cfg.max_attachment_bytes.saturating_add(MULTIPART_OVERHEAD),
        BodyKind::Form => cfg.max_form_bytes,
    };
    if let Some(n) = declared
        && n > limit
    {
        return too_large(&path, limit);
    }
    let (mut parts, body) = req.into_parts();
    if !matches!(kind, BodyKind::Push | BodyKind::Fetch)
        && declared.is_none_or(|n| n > ANONYMOUS_BODY_BYTES)
    {
        // Who is asking decides how much may be sent; the viewer is cached for the handler.
        let anonymous = match Auth::from_request_parts(&mut parts, &st).await {
            Ok(Auth(viewer)) => viewer.user.is_none(),
            Err(res) => return res,
        };
        if anonymous {
            limit = limit.min(ANONYMOUS_BODY_BYTES);
            if declared.is_some_and(|n| n > limit) {
                return too_large(&path, limit);
            }
        }
    }
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    next.run(Request::from_parts(parts, Body::new(limited)))
        .await
}

/// Middleware: headers every answer carries. Pages may not be framed by other sites
/// (clickjacking); content types are not sniffed.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    // Downloads set a stricter policy of their own; keep theirs.
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static("frame-ancestors 'none'"));
    res
}

#[cfg(test)]
mod tests {
    use super::{BodyKind, body_kind};

    #[test]
    fn routes_get_the_body_they_take() {
        assert_eq!(
            body_kind("/git/p/x/code.git/git-receive-pack"),
            BodyKind::Push
        );
        assert_eq!(
            body_kind("/git/p/x/code.git/git-upload-pack"),
            BodyKind::Fetch
        );
        assert_eq!(
            body_kind("/p/x/wiki/Home/attachments"),
            BodyKind::Attachment
        );
        assert_eq!(
            body_kind("/rest/p/x/wiki/Home/attachments"),
            BodyKind::Attachment
        );
        // Files on discussion posts, under any tool.
        assert_eq!(
            body_kind("/p/x/tickets/_discuss/post/0123456789abcdef01234567/attachments"),
            BodyKind::Attachment
        );
        assert_eq!(
            body_kind("/p/x/wiki/_discuss/post/0123456789abcdef01234567/attachments/a.png/delete"),
            BodyKind::Form
        );
        assert_eq!(body_kind("/p/x/wiki/Home/edit"), BodyKind::Form);
    }
}
