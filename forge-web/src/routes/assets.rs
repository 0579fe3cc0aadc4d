//! Scripts and the vendored chart library, embedded in the binary and served by the forge
//! itself (no CDN). Their URLs change with their content (a version in the path, a digest in
//! the query), so browsers may keep them for a year.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The vendored uPlot's version: part of its URLs (see `static/vendor/uplot/README.md`).
pub const UPLOT_VERSION: &str = "1.6.32";
pub const UPLOT_JS: &str = "/static/vendor/uplot-1.6.32/uPlot.iife.min.js";
pub const UPLOT_CSS: &str = "/static/vendor/uplot-1.6.32/uPlot.min.css";
pub const UPLOT_LICENSE: &str = "/static/vendor/uplot-1.6.32/LICENSE";
/// The statistics page's script (without its digest; see [`stats_js_url`]).
pub const STATS_JS: &str = "/static/stats.js";

const UPLOT_JS_BODY: &str = include_str!("../../static/vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS_BODY: &str = include_str!("../../static/vendor/uplot/uPlot.min.css");
const UPLOT_LICENSE_BODY: &str = include_str!("../../static/vendor/uplot/LICENSE");
const STATS_JS_BODY: &str = include_str!("../../static/stats.js");

/// A year: the URLs change when the content does.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// FNV-1a, enough to tell versions of a file apart in its URL.
const fn digest(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

const STATS_JS_DIGEST: u64 = digest(STATS_JS_BODY.as_bytes());

/// The statistics script's URL, with its digest so a new build is fetched at once.
pub fn stats_js_url() -> String {
    format!("{STATS_JS}?v={STATS_JS_DIGEST:016x}")
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, IMMUTABLE),
        ],
        body,
    )
        .into_response()
}

pub async fn stats_js() -> Response {
    asset("text/javascript; charset=utf-8", STATS_JS_BODY)
}

pub async fn uplot_js() -> Response {
    asset("text/javascript; charset=utf-8", UPLOT_JS_BODY)
}

pub async fn uplot_css() -> Response {
    asset("text/css; charset=utf-8", UPLOT_CSS_BODY)
}

pub async fn uplot_license() -> Response {
    asset("text/plain; charset=utf-8", UPLOT_LICENSE_BODY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_vendored_version() {
        for url in [UPLOT_JS, UPLOT_CSS, UPLOT_LICENSE] {
            assert!(url.contains(&format!("uplot-{UPLOT_VERSION}/")), "{url}");
        }
        assert!(UPLOT_JS_BODY.contains(&format!("v{UPLOT_VERSION}")));
        assert_ne!(digest(b"a"), digest(b"b"));
        assert!(stats_js_url().starts_with("/static/stats.js?v="));
    }
}
