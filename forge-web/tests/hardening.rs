//! Regression tests of the hardening issue, each closing a class of attack found by an outside
//! review: out-of-range numbers, deep queries and markdown, open redirects, oversized bodies
//! (refused before they are read), CSRF binding, log-in lockout, creation limits, metrics
//! labels and access, framing headers. Real store, the router as users run it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{Browser, TestApp};
use serde_json::json;

fn edit_fields<'a>(text: &'a str, base: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("text", text),
        ("labels", ""),
        ("comment", ""),
        ("base_version", base),
        ("action", "save"),
    ]
}

/// A request body that fails the request if anyone reads it: proves a refusal came before.
fn unreadable_body() -> Body {
    Body::from_stream(futures::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::other("the body was read"))
    }))
}

#[tokio::test]
async fn out_of_range_search_pages_and_hostile_queries_are_400() {
    let app = TestApp::new("hardsearch").await;
    let anon = Browser::anonymous();
    for q in [
        "/rest/search?q=x&page=100000000",
        "/rest/search?q=x&page=0",
        "/rest/search?q=x&page=501",
        "/rest/search?q=x&page=-1",
        "/rest/search?q=x&page=abc",
        "/rest/search?q=x&page=99999999999999999999999",
    ] {
        let res = app.get(q, &anon).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{q}: {}", res.body);
        assert_eq!(res.json()["error"]["code"], "bad_request", "{q}");
    }
    let deep = format!("{}x{}", "(".repeat(3000), ")".repeat(3000));
    let url = format!("/rest/search?q={}", common_urlencode(&deep));
    let res = app.get(&url, &anon).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(
        res.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("too deeply nested")
    );
    let res = app.get("/rest/search?q=text:*", &anon).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
    let long = "word ".repeat(400);
    let res = app
        .get(
            &format!("/rest/search?q={}", common_urlencode(&long)),
            &anon,
        )
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    // The page says so in the form, with a 400.
    let res = app.get("/search?q=x&page=100000000", &anon).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(
        res.body.contains("page must be between 1 and 500"),
        "{}",
        res.body
    );
    // In range but past the results: an empty page.
    let res = app.get("/rest/search?q=x&page=500", &anon).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["hits"], json!([]));
}

fn common_urlencode(s: &str) -> String {
    forge_web::error::urlencode(s)
}

#[tokio::test]
async fn a_deeply_nested_page_is_shown_as_written() {
    let app = TestApp::new("harddeep").await;
    let ann = app.user("ann").await;
    app.project(&ann, "docs", false).await;
    let a = app.browser(&ann).await;
    // ~960 KB of nested emphasis and quotes, under the 1 MB text limit.
    let text = format!(
        "{}<script>alert(1)</script>{}\n\n{} deep\n",
        "*a **b ".repeat(60_000),
        "** c*".repeat(60_000),
        ">".repeat(50_000)
    );
    assert!(text.len() < 1_000_000, "{}", text.len());
    let res = app
        .post_form("/p/docs/wiki/Deep/edit", &a, &edit_fields(&text, "0"))
        .await;
    assert_eq!(
        res.status,
        StatusCode::SEE_OTHER,
        "{}",
        &res.body[..res.body.len().min(500)]
    );
    let res = app.get("/p/docs/wiki/Deep/", &a).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(res.body.contains("shown as written"));
    assert!(res.body.contains("&lt;script&gt;") && !res.body.contains("<script>alert"));
    // Over the configured text limit: refused with the form kept.
    let big = "x".repeat(1_000_001);
    let res = app
        .post_form("/p/docs/wiki/Big/edit", &a, &edit_fields(&big, "0"))
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.body.contains("too long"));
}

#[tokio::test]
async fn login_never_redirects_off_site() {
    let app = TestApp::new("hardnext").await;
    app.user("ann").await;
    let anon = Browser::anonymous();
    for next in [
        "%2F%09%2Fevil.com",
        "%2F%0A%2Fevil.com",
        "%2F%0D%0A%2Fevil.com",
        "%2F%5Cevil.com",
        "%5C%5Cevil.com",
        "%2F%2Fevil.com",
        "https%3A%2F%2Fevil.com",
    ] {
        let res = app.get(&format!("/auth/login?next={next}"), &anon).await;
        assert_eq!(res.status, StatusCode::OK, "{next}");
        assert!(res.body.contains("name=\"next\" value=\"/\""), "{next}");
        let decoded: String =
            serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("n={next}"))
                .unwrap()
                .pop()
                .unwrap()
                .1;
        let res = app
            .post_form(
                "/auth/login",
                &anon,
                &[
                    ("username", "ann"),
                    ("password", "ann-password"),
                    ("next", &decoded),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{next}");
        assert_eq!(res.location(), "/", "{next}");
    }
    // A nested route's login redirect keeps its full path.
    let owner = app.user("bob").await;
    app.project(&owner, "open", false).await;
    let res = app.get("/p/open/admin/?tab=1", &anon).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(
        res.location(),
        "/auth/login?next=%2Fp%2Fopen%2Fadmin%2F%3Ftab%3D1"
    );
}

#[tokio::test]
async fn bodies_are_refused_by_size_before_they_are_read() {
    let app = TestApp::with_config("hardbody", |c| c.max_form_bytes = 200_000).await;
    let ann = app.user("ann").await;
    let eve = app.user("eve").await;
    app.project(&ann, "docs", false).await;
    let a = app.browser(&ann).await;
    let e = app.browser(&eve).await;
    let anon = Browser::anonymous();
    let post = |path: &str, b: &Browser, len: u64| {
        let mut cookie = format!("forge_csrf={}", b.csrf);
        if let Some(s) = &b.session {
            cookie.push_str(&format!("; forge_session={s}"));
        }
        Request::post(path)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::CONTENT_LENGTH, len)
            .body(unreadable_body())
            .unwrap()
    };
    // Anonymous: 64 KiB anywhere; logged in: the form limit; attachments: theirs.
    for (path, who, len) in [
        ("/p/docs/wiki/Home/edit", &anon, 70_000),
        ("/auth/login", &anon, 1_000_000_000),
        ("/p/add", &a, 200_001),
        ("/p/docs/wiki/Home/edit", &a, 1 << 30),
        ("/rest/p", &a, 300_000),
        ("/p/docs/wiki/Home/attachments", &a, 10_000_000 + 70_000),
    ] {
        let res = app.send(post(path, who, len), None).await;
        assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{path} {len}");
    }
    let res = app.send(post("/rest/p", &a, 300_000), None).await;
    assert_eq!(res.json()["error"]["code"], "payload_too_large");
    // Within the limit, a stranger's write is refused before the body is read.
    let res = app
        .send(post("/p/docs/wiki/Home/edit", &e, 1_000), None)
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "{}", res.body);
    // A request with neither CSRF cookie nor session is refused before reading.
    let req = Request::post("/auth/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::CONTENT_LENGTH, 1_000)
        .body(unreadable_body())
        .unwrap();
    assert_eq!(app.send(req, None).await.status, StatusCode::FORBIDDEN);
    // A chunked body (no length) is cut at the limit too.
    let chunks = futures::stream::iter(
        (0..10).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'a'; 10_000]))),
    );
    let req = Request::post("/auth/login")
        .header(header::COOKIE, format!("forge_csrf={}", anon.csrf))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from_stream(chunks))
        .unwrap();
    assert_eq!(
        app.send(req, None).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[tokio::test]
async fn csrf_is_bound_to_the_session_and_tokens_alone_skip_it() {
    let app = TestApp::new("hardcsrf").await;
    let ann = app.user("ann").await;
    app.project(&ann, "docs", false).await;
    let anon = Browser::anonymous();
    // Log in through the form: the token in forms changes with the session.
    let res = app
        .post_form(
            "/auth/login",
            &anon,
            &[
                ("username", "ann"),
                ("password", "ann-password"),
                ("next", "/"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let session = res.set_cookie("forge_session").unwrap();
    let logged_in = Browser {
        session: Some(session.clone()),
        ..anon.clone()
    };
    let page = app.get("/p/docs/wiki/Home/edit", &logged_in).await;
    let token = forge_tools::sessions::csrf_token(&session);
    // The form carries the session's token (masked afresh in each page: see `csrf`).
    let carried = common::field(&page.body, "csrf_token");
    assert!(forge_tools::secret::token_matches(&token, &carried));
    assert!(!forge_tools::secret::token_matches(&anon.csrf, &carried));
    assert_ne!(token, anon.csrf);
    // The pre-login token no longer works.
    let res = app
        .post_form("/p/docs/wiki/Home/edit", &logged_in, &edit_fields("x", "1"))
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let bound = Browser {
        csrf: token,
        ..logged_in.clone()
    };
    let res = app
        .post_form("/p/docs/wiki/Home/edit", &bound, &edit_fields("x", "1"))
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    // REST upload with the session cookie and a bogus Authorization header: CSRF still
    // required.
    let boundary = "b0undary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n--{boundary}--\r\n"
    );
    let req = Request::post("/rest/p/docs/wiki/Home/attachments")
        .header(
            header::COOKIE,
            format!("forge_csrf={}; forge_session={session}", anon.csrf),
        )
        .header(header::AUTHORIZATION, "Basic Zm9vOmJhcg==")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(app.send(req, None).await.status, StatusCode::FORBIDDEN);
    // A valid token needs no CSRF header.
    let token = app.token(&ann).await;
    let req = Request::post("/rest/p/docs/wiki/Home/attachments")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap();
    assert_eq!(app.send(req, None).await.status, StatusCode::CREATED);
}

#[tokio::test]
async fn strangers_cannot_lock_out_the_right_password() {
    let app = TestApp::new("hardlock").await;
    app.user("ann").await;
    let login = |ip: [u8; 4], password: &'static str| {
        let b = Browser {
            ip: Some(SocketAddr::from((ip, 5000))),
            ..Browser::anonymous()
        };
        (b, password)
    };
    // Five strangers, six wrong guesses each (the sixth from each is refused outright): past
    // twenty failures the account's tries are slowed.
    for i in 0..5u8 {
        let (b, pw) = login([10, 0, 0, i], "wrong");
        let mut last = StatusCode::OK;
        for _ in 0..6 {
            last = app
                .post_form("/auth/login", &b, &[("username", "ann"), ("password", pw)])
                .await
                .status;
        }
        assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    }
    // Ann, from her own address, still gets in (after a short pause at most).
    let (b, pw) = login([192, 0, 2, 1], "ann-password");
    let res = app
        .post_form("/auth/login", &b, &[("username", "ann"), ("password", pw)])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
}

#[tokio::test]
async fn creation_is_limited_per_account_across_nodes() {
    let app = TestApp::with_config("hardrate", |c| {
        c.projects_per_hour = 2;
        c.pages_per_hour = 2;
    })
    .await;
    let ann = app.user("ann").await;
    let a = app.browser(&ann).await;
    for (i, want) in [
        (1, StatusCode::SEE_OTHER),
        (2, StatusCode::SEE_OTHER),
        (3, StatusCode::TOO_MANY_REQUESTS),
    ] {
        let name = format!("proj{i}");
        let res = app
            .post_form(
                "/p/add",
                &a,
                &[("shortname", &name), ("name", "Project"), ("summary", "")],
            )
            .await;
        assert_eq!(res.status, want, "{name}");
        if want == StatusCode::TOO_MANY_REQUESTS {
            // The form comes back filled in.
            assert!(res.body.contains("value=\"proj3\""), "{}", res.body);
        }
    }
    // A second web node on the same store sees the same count.
    let other = forge_web::app::build(app.forge.clone()).unwrap();
    let token = app.token(&ann).await;
    let req = Request::post("/rest/p")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"shortname": "proj4", "name": "P"}).to_string(),
        ))
        .unwrap();
    use tower::ServiceExt;
    let res = other
        .layer(axum::extract::connect_info::MockConnectInfo(
            SocketAddr::from(([127, 0, 0, 1], 1)),
        ))
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // Pages: the third new page in an hour keeps its text in the form.
    for (i, want) in [
        (1, StatusCode::SEE_OTHER),
        (2, StatusCode::SEE_OTHER),
        (3, StatusCode::TOO_MANY_REQUESTS),
    ] {
        let res = app
            .post_form(
                &format!("/p/proj1/wiki/Page{i}/edit"),
                &a,
                &edit_fields("my precious text", "0"),
            )
            .await;
        assert_eq!(res.status, want);
        if want == StatusCode::TOO_MANY_REQUESTS {
            assert!(res.body.contains("my precious text"));
        }
    }
}

#[tokio::test]
async fn metrics_are_bounded_and_private() {
    let app = TestApp::with_config("hardmetrics", |c| {
        c.metrics_token = Some("s3cret-metrics".into())
    })
    .await;
    let anon = Browser::anonymous();
    for i in 0..50 {
        let req = Request::builder()
            .method(Method::from_bytes(format!("X{i}METHOD").as_bytes()).unwrap())
            .uri(format!("/nowhere/{i}"))
            .body(Body::empty())
            .unwrap();
        app.send(req, None).await;
    }
    let res = app.get("/metrics", &anon).await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(!res.body.contains("X1METHOD") && !res.body.contains("/nowhere"));
    assert!(res.body.contains("method=\"other\""));
    let series = res
        .body
        .lines()
        .filter(|l| l.contains("method=\"other\""))
        .count();
    assert!(series < 20, "{series} series for made-up methods");
    // From elsewhere: only with the token.
    let outside = Browser {
        ip: Some(SocketAddr::from(([203, 0, 113, 9], 4000))),
        ..Browser::anonymous()
    };
    assert_eq!(
        app.get("/metrics", &outside).await.status,
        StatusCode::NOT_FOUND
    );
    let req = Request::get("/metrics")
        .header(header::AUTHORIZATION, "Bearer s3cret-metrics")
        .body(Body::empty())
        .unwrap();
    assert_eq!(app.send(req, outside.ip).await.status, StatusCode::OK);
}

/// With a proxy on the same host, every request arrives from loopback: `/metrics` must judge
/// the client the proxy names, or it would answer the whole internet.
#[tokio::test]
async fn metrics_behind_a_local_proxy_answer_only_local_clients() {
    let app = TestApp::with_config("hardmetricsproxy", |c| {
        c.trusted_proxies = "127.0.0.1".into();
    })
    .await;
    let via_proxy = |client: Option<&str>| {
        let mut req = Request::get("/metrics");
        if let Some(c) = client {
            req = req.header("x-forwarded-for", c);
        }
        req.body(Body::empty()).unwrap()
    };
    let proxy = Some(SocketAddr::from(([127, 0, 0, 1], 4000)));
    let outside = app.send(via_proxy(Some("203.0.113.9")), proxy).await;
    assert_eq!(outside.status, StatusCode::NOT_FOUND);
    let local = app.send(via_proxy(Some("127.0.0.1")), proxy).await;
    assert_eq!(local.status, StatusCode::OK);
    let direct = app.send(via_proxy(None), proxy).await;
    assert_eq!(direct.status, StatusCode::OK);
}

#[tokio::test]
async fn pages_cannot_be_framed_and_rest_put_creates_once() {
    let app = TestApp::new("hardframe").await;
    let ann = app.user("ann").await;
    app.project(&ann, "docs", false).await;
    let res = app.get("/", &Browser::anonymous()).await;
    assert_eq!(res.header("x-frame-options"), "DENY");
    assert!(
        res.header("content-security-policy")
            .contains("frame-ancestors 'none'")
    );
    let token = app.token(&ann).await;
    let res = app
        .api(
            Method::PUT,
            "/rest/p/docs/wiki/Fresh",
            Some(&token),
            Some(json!({"text": "one"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let res = app
        .api(
            Method::PUT,
            "/rest/p/docs/wiki/Fresh",
            Some(&token),
            Some(json!({"text": "two"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    let res = app
        .api(Method::GET, "/rest/p/docs/wiki/Fresh", Some(&token), None)
        .await;
    assert_eq!(res.json()["text"], "one");
}

#[tokio::test]
async fn big_version_diffs_answer_quickly_and_healthz_stays_up() {
    let app = TestApp::new("harddiff").await;
    let ann = app.user("ann").await;
    app.project(&ann, "docs", false).await;
    let a = app.browser(&ann).await;
    let v1: String = (0..30_000)
        .map(|i| format!("alpha line {i} {}\n", i * 7))
        .collect();
    let v2: String = (0..30_000)
        .map(|i| format!("beta row {} {i}\n", i * 3))
        .collect();
    for (text, base) in [(&v1, "0"), (&v2, "1")] {
        let res = app
            .post_form("/p/docs/wiki/Big/edit", &a, &edit_fields(text, base))
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
    }
    let started = std::time::Instant::now();
    let diff = app.get("/p/docs/wiki/Big/diff?v1=1&v2=2", &a);
    let health = async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let t = std::time::Instant::now();
        let res = app.get("/healthz", &Browser::anonymous()).await;
        (res.status, t.elapsed())
    };
    let (res, (hs, ht)) = tokio::join!(diff, health);
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(hs, StatusCode::OK);
    assert!(
        ht < std::time::Duration::from_millis(500),
        "healthz took {ht:?}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    // Versions can be downloaded as text.
    let res = app.get("/p/docs/wiki/Big/?version=1&format=text", &a).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, v1);
}
