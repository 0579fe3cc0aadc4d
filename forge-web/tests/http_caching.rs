//! Validators: pages and API answers carry an `ETag`; a request naming it is answered
//! `304 Not Modified` without the body, until the content changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{Browser, Res, TestApp};
use serde_json::json;

async fn get(
    app: &TestApp,
    path: &str,
    b: &Browser,
    tag: Option<&str>,
    token: Option<&str>,
) -> Res {
    let mut cookie = format!("forge_csrf={}", b.csrf);
    if let Some(s) = &b.session {
        cookie.push_str(&format!("; forge_session={s}"));
    }
    let mut req = Request::get(path).header(header::COOKIE, cookie);
    if let Some(t) = tag {
        req = req.header(header::IF_NONE_MATCH, t);
    }
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    app.send(req.body(Body::empty()).unwrap(), None).await
}

#[tokio::test]
async fn unchanged_answers_are_not_sent_twice() {
    let app = TestApp::new("etag").await;
    let ann = app.user("ann").await;
    let token = app.token(&ann).await;
    app.project(&ann, "tags", false).await;
    let put = |text: &'static str, base: Option<i64>| {
        let mut body = json!({"text": text});
        if let Some(b) = base {
            body["base_version"] = b.into();
        }
        app.api(
            Method::PUT,
            "/rest/p/tags/wiki/Page",
            Some(&token),
            Some(body),
        )
    };
    let r = put("first words", None).await;
    assert!(r.status.is_success(), "{}", r.body);
    let b = Browser::anonymous();

    // The API: a tag, a 304 for it, and a new tag once the page changed.
    let api = "/rest/p/tags/wiki/Page";
    let first = get(&app, api, &b, None, None).await;
    assert_eq!(first.status, StatusCode::OK);
    let tag = first.header("etag").to_owned();
    assert!(tag.starts_with("W/\""), "{tag:?}");
    let again = get(&app, api, &b, Some(&tag), None).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.bytes.is_empty());
    assert_eq!(again.header("etag"), tag);
    // Another tag, or a list without it: the whole answer.
    let other = get(&app, api, &b, Some("W/\"0123\", \"4567\""), None).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.body, first.body);
    let version = first.json()["version"].as_i64().unwrap();
    let r = put("second words", Some(version)).await;
    assert!(r.status.is_success(), "{}", r.body);
    let changed = get(&app, api, &b, Some(&tag), None).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert!(changed.body.contains("second words"));
    assert_ne!(changed.header("etag"), tag);

    // A page: the same, for the same viewer (its own parts are in the tag, so another
    // viewer's copy is another tag). Live figures on it may move between two views: then
    // the tag moves with them.
    let page = "/p/tags/wiki/Page/";
    let mut not_modified = false;
    let mut tag = get(&app, page, &b, None, None)
        .await
        .header("etag")
        .to_owned();
    for _ in 0..5 {
        let r = get(&app, page, &b, Some(&tag), None).await;
        if r.status == StatusCode::NOT_MODIFIED {
            assert!(r.bytes.is_empty());
            not_modified = true;
            break;
        }
        assert_eq!(r.status, StatusCode::OK);
        assert_ne!(r.header("etag"), tag, "a 200 for the tag it had");
        tag = r.header("etag").to_owned();
    }
    assert!(not_modified, "the page never answered 304");
    // HEAD answers as GET does, without the body.
    let head = app
        .send(Request::head(page).body(Body::empty()).unwrap(), None)
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.bytes.is_empty());
    assert!(head.header("content-type").starts_with("text/html"));
    let owner = app.browser(&ann).await;
    let theirs = get(&app, page, &owner, Some(&tag), None).await;
    assert_eq!(
        theirs.status,
        StatusCode::OK,
        "another viewer's copy validated"
    );
}
