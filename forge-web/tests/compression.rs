//! Response compression: JSON, other text and HTML pages are gzip- or brotli-compressed for
//! clients that ask, pages only with their form token masked afresh in every response
//! (BREACH); git's streams never are.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{Browser, TestApp, field};
use tokio::io::AsyncReadExt;

fn get(path: &str, encoding: Option<&str>) -> Request<Body> {
    let mut req = Request::get(path);
    if let Some(e) = encoding {
        req = req.header(header::ACCEPT_ENCODING, e);
    }
    req.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn json_and_pages_are_compressed_for_clients_that_ask_and_git_is_not() {
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

    // HTML pages are compressed too (their form tokens masked: see the test below).
    let page = app.send(get("/p/squeeze/", Some("gzip, br")), None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header("content-type").starts_with("text/html"));
    assert_eq!(page.header("content-encoding"), "br");

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

async fn page(
    app: &TestApp,
    path: &str,
    b: &Browser,
    tag: Option<&str>,
) -> (StatusCode, String, String) {
    let mut req = Request::get(path)
        .header(header::ACCEPT_ENCODING, "gzip")
        .header(
            header::COOKIE,
            format!(
                "forge_csrf={}; forge_session={}",
                b.csrf,
                b.session.clone().unwrap_or_default()
            ),
        );
    if let Some(t) = tag {
        req = req.header(header::IF_NONE_MATCH, t);
    }
    let r = app.send(req.body(Body::empty()).unwrap(), None).await;
    if r.status != StatusCode::OK {
        return (r.status, String::new(), r.header("etag").to_owned());
    }
    assert_eq!(r.header("content-encoding"), "gzip");
    let mut decoded = String::new();
    async_compression::tokio::bufread::GzipDecoder::new(&r.bytes[..])
        .read_to_string(&mut decoded)
        .await
        .unwrap();
    (r.status, decoded, r.header("etag").to_owned())
}

#[tokio::test]
async fn compressed_pages_never_carry_the_same_form_token_twice_and_their_forms_still_work() {
    let app = TestApp::new("compression_masked").await;
    let owner = app.user("dora").await;
    app.project(&owner, "masked", false).await;
    let b = app.browser(&owner).await;

    let (_, first, tag) = page(&app, "/p/masked/", &b, None).await;
    let (_, second, _) = page(&app, "/p/masked/", &b, None).await;
    // The plain token is nowhere on the page; each response masks it anew.
    assert!(!first.contains(&b.csrf) && !second.contains(&b.csrf));
    let (t1, t2) = (field(&first, "csrf_token"), field(&second, "csrf_token"));
    assert!(t1.starts_with("m."), "{t1}");
    assert_ne!(t1, t2);
    // The validator is the page's, not the mask's: an unchanged page still answers 304.
    let (status, _, _) = page(&app, "/p/masked/", &b, Some(&tag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);

    // A masked token is accepted by the form it came with; a tampered one is not.
    let mut bad = t1.clone();
    bad.pop();
    bad.push(if t1.ends_with('A') { 'B' } else { 'A' });
    let refused = app
        .post_raw("/auth/logout", &b, &[("csrf_token", &bad)])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let out = app
        .post_raw("/auth/logout", &b, &[("csrf_token", &t2)])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
}
