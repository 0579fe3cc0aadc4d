//! Pages carry the form token masked afresh in every response, so that HTML can be
//! compressed safely. A compressed page's size would otherwise tell an attacker who can make
//! it reflect text of their choosing how much of that text matches the token (BREACH); with a
//! new random mask each time there is nothing stable to match. Templates render the plain
//! token; [`mask_tokens`] swaps each occurrence for a masked one after the validator was
//! computed (so an unchanged page still revalidates), and marks the page [`Masked`], the only
//! HTML the compression layer accepts. Forms are checked with
//! [`forge_tools::secret::token_matches`], which takes both forms.

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use memchr::memmem;

/// The form token a response was rendered with (set by `auth::session_layer`).
#[derive(Clone)]
pub struct PageToken(pub String);

/// Marks an HTML response that holds no plain form token, so it may be compressed.
#[derive(Clone, Copy)]
pub struct Masked;

/// Largest page rewritten (and so compressed); bigger pages go out as they are.
const MAX_PAGE: u64 = 4 * 1024 * 1024;

/// Middleware: masks the form token in HTML pages and marks them [`Masked`].
pub async fn mask_tokens(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    if !is_html(&res) {
        return res;
    }
    match res.body().size_hint().exact() {
        Some(n) if n <= MAX_PAGE => {}
        _ => return res,
    }
    let token = res
        .extensions()
        .get::<PageToken>()
        .map(|t| t.0.clone())
        .unwrap_or_default();
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PAGE as usize).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let body = if token.is_empty() {
        bytes
    } else {
        let masked = mask_all(&bytes, &token);
        if masked.len() != bytes.len() {
            parts.headers.remove(header::CONTENT_LENGTH);
        }
        masked.into()
    };
    parts.extensions.insert(Masked);
    Response::from_parts(parts, Body::from(body))
}

fn is_html(res: &Response) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html"))
}

/// `page` with every occurrence of `token` masked, each with its own pad.
fn mask_all(page: &[u8], token: &str) -> Vec<u8> {
    let finder = memmem::Finder::new(token.as_bytes());
    let mut out = Vec::with_capacity(page.len() + 256);
    let mut rest = 0;
    for at in finder.find_iter(page) {
        out.extend_from_slice(&page[rest..at]);
        out.extend_from_slice(forge_tools::secret::mask(token).as_bytes());
        rest = at + token.len();
    }
    out.extend_from_slice(&page[rest..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_is_masked_differently_and_still_matches() {
        let token = forge_tools::secret::random_token("");
        let page = format!(
            "<form><input name=\"csrf_token\" value=\"{token}\"></form><p>x</p><input value=\"{token}\">"
        );
        let out = String::from_utf8(mask_all(page.as_bytes(), &token)).unwrap();
        assert!(!out.contains(&token));
        let values: Vec<&str> = out
            .split("value=\"")
            .skip(1)
            .map(|v| &v[..v.find('"').unwrap()])
            .collect();
        assert_eq!(values.len(), 2);
        assert_ne!(values[0], values[1]);
        assert!(
            values
                .iter()
                .all(|v| forge_tools::secret::token_matches(&token, v))
        );
        assert!(out.ends_with("\">") && out.contains("<p>x</p>"));
    }
}
