//! Style sheets, scripts and the vendored chart library, embedded in the binary and served by
//! the forge itself (no CDN). Their URLs change with their content (the forge's own files
//! carry a digest in their name, `forge.3f2a9c01d4.css`; the vendored library its version in
//! the path), so browsers keep them for a year without asking again. The plain names
//! (`/static/forge.css`) still answer, for a short while only, for pages cached before.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The vendored uPlot's version: part of its URLs (see `static/vendor/uplot/README.md`).
pub const UPLOT_VERSION: &str = "1.6.32";
pub const UPLOT_JS: &str = "/static/vendor/uplot-1.6.32/uPlot.iife.min.js";
pub const UPLOT_CSS: &str = "/static/vendor/uplot-1.6.32/uPlot.min.css";
pub const UPLOT_LICENSE: &str = "/static/vendor/uplot-1.6.32/LICENSE";

const UPLOT_JS_BODY: &str = include_str!("../../static/vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS_BODY: &str = include_str!("../../static/vendor/uplot/uPlot.min.css");
const UPLOT_LICENSE_BODY: &str = include_str!("../../static/vendor/uplot/LICENSE");

/// A year: the URLs change when the content does.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The plain names: their content changes with each build.
const SHORT: &str = "public, max-age=300";

/// One of the forge's own files under `/static/`.
struct Asset {
    /// The plain name (`forge.css`).
    name: &'static str,
    /// The name with the content's digest (`forge.3f2a9c01d4.css`).
    hashed: String,
    content_type: &'static str,
    body: &'static str,
}

impl Asset {
    fn new(name: &'static str, content_type: &'static str, body: &'static str) -> Self {
        let digest = hex::encode(&Sha256::digest(body.as_bytes())[..5]);
        let hashed = match name.rsplit_once('.') {
            Some((stem, ext)) => format!("{stem}.{digest}.{ext}"),
            None => format!("{name}.{digest}"),
        };
        Self {
            name,
            hashed,
            content_type,
            body,
        }
    }
}

/// The forge's own files, digested once (the highlighting style sheet is generated on first
/// use).
static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    vec![
        Asset::new(
            "forge.css",
            "text/css; charset=utf-8",
            include_str!("../../static/forge.css"),
        ),
        Asset::new(
            "highlight.css",
            "text/css; charset=utf-8",
            forge_tools::markdown::highlight::css(),
        ),
        Asset::new(
            "stats.js",
            "text/javascript; charset=utf-8",
            include_str!("../../static/stats.js"),
        ),
    ]
});

/// The URL of one of the forge's files, with its digest; `/static/<name>` for a name it does
/// not have (answered 404).
pub fn url(name: &str) -> String {
    ASSETS.iter().find(|a| a.name == name).map_or_else(
        || format!("/static/{name}"),
        |a| format!("/static/{}", a.hashed),
    )
}

/// The site's style sheet (for templates).
pub fn forge_css() -> String {
    url("forge.css")
}

/// The style sheet of highlighted code (for templates).
pub fn highlight_css() -> String {
    url("highlight.css")
}

/// The statistics page's script.
pub fn stats_js_url() -> String {
    url("stats.js")
}

/// `GET /static/{file}`: a file by its digested name (kept a year) or its plain name.
pub async fn file(Path(file): Path<String>) -> Response {
    let found = ASSETS.iter().find_map(|a| {
        if a.hashed == file {
            Some((a, IMMUTABLE))
        } else if a.name == file {
            Some((a, SHORT))
        } else {
            None
        }
    });
    match found {
        Some((a, cache)) => asset(a.content_type, a.body, cache),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn asset(content_type: &'static str, body: &'static str, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

pub async fn uplot_js() -> Response {
    asset("text/javascript; charset=utf-8", UPLOT_JS_BODY, IMMUTABLE)
}

pub async fn uplot_css() -> Response {
    asset("text/css; charset=utf-8", UPLOT_CSS_BODY, IMMUTABLE)
}

pub async fn uplot_license() -> Response {
    asset("text/plain; charset=utf-8", UPLOT_LICENSE_BODY, IMMUTABLE)
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
        let css = forge_css();
        assert!(
            css.starts_with("/static/forge.") && css.ends_with(".css"),
            "{css}"
        );
        assert_eq!(css.len(), "/static/forge.0123456789.css".len());
        assert_ne!(stats_js_url(), "/static/stats.js");
        assert_eq!(url("nothing.css"), "/static/nothing.css");
    }
}
