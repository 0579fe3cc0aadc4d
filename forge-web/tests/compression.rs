//! Response compression: JSON (and other text that carries no form token) is gzip- or
//! brotli-compressed for clients that ask; HTML pages and git's streams never are.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::TestApp;
use tokio::io::AsyncReadExt;

fn get(path: &str, encoding: Option<&str>) -> Request<Body> {
    let mut req = Request::get(path);
    if let Some(e) = encoding {
        req = req.header(header::ACCEPT_ENCODING, e);
    }
    req.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn json_is_compressed_for_clients_that_ask_and_pages_and_git_are_not() {
    let app = TestApp::new("compression").await;
    let owner = app.user("cora").await;
    app.project(&owner, "squeeze", false).await;

    // The OpenAPI document (tens of KB of JSON): gzip, decoded back to the same JSON.
    let plain = app.send(get("/rest/openapi.json", None), None).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert_eq!(plain.header("content-encoding"), "");
    let gz = app
        .send(get("/rest/openapi.json", Some("gzip")), None)
        .await;
    assert_eq!(gz.header("content-encoding"), "gzip");
    assert!(
        gz.bytes.len() * 3 < plain.bytes.len(),
        "{} vs {}",
        gz.bytes.len(),
        plain.bytes.len()
    );
    let mut decoded = Vec::new();
    async_compression::tokio::bufread::GzipDecoder::new(&gz.bytes[..])
        .read_to_end(&mut decoded)
        .await
        .unwrap();
    assert_eq!(decoded, plain.bytes);
    let br = app
        .send(get("/rest/openapi.json", Some("br;q=1, gzip;q=0.5")), None)
        .await;
    assert_eq!(br.header("content-encoding"), "br");
    assert!(br.bytes.len() < gz.bytes.len() * 2);

    // HTML pages carry the session's form token: not compressed (see `app::compression`).
    let page = app.send(get("/p/squeeze/", Some("gzip, br")), None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header("content-type").starts_with("text/html"));
    assert_eq!(page.header("content-encoding"), "");

    // Nor git's streams (they are packs, and clients do not ask).
    let refs = app
        .send(
            get(
                "/git/p/squeeze/code/info/refs?service=git-upload-pack",
                Some("gzip"),
            ),
            None,
        )
        .await;
    assert_eq!(refs.status, StatusCode::OK, "{}", refs.body);
    assert_eq!(refs.header("content-encoding"), "");

    // Small answers are not worth it.
    let small = app.send(get("/healthz", Some("gzip")), None).await;
    assert_eq!(small.header("content-encoding"), "");
}
