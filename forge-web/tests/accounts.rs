//! Sign-up, log-in, log-out, rate limits, CSRF and access tokens, through the web app on a real
//! store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use axum::http::{Method, StatusCode};
use common::{Browser, TestApp};
use std::net::SocketAddr;

fn signup_fields<'a>(
    username: &'a str,
    email: &'a str,
    password: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("username", username),
        ("email", email),
        ("password", password),
        ("display_name", ""),
    ]
}

#[tokio::test]
async fn signup_login_logout_flow() {
    let app = TestApp::new("signup").await;
    let anon = Browser::anonymous();

    let res = app
        .post_form(
            "/auth/signup",
            &anon,
            &signup_fields("alice", "alice@example.org", "correct horse"),
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), "/u/alice/");
    let session = res.set_cookie("forge_session").expect("session cookie set");
    let set_cookie: Vec<_> = res
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let sc = set_cookie
        .iter()
        .find(|c| c.starts_with("forge_session="))
        .unwrap();
    assert!(
        sc.contains("HttpOnly") && sc.contains("SameSite=Lax"),
        "{sc}"
    );

    // The personal project exists and the session works.
    // Forms in the session carry a token bound to it (the pre-login one no longer works).
    let me = Browser {
        session: Some(session.clone()),
        csrf: forge_tools::sessions::csrf_token(&session),
        ..anon.clone()
    };
    let home = app.get("/u/alice/", &me).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Log out"));
    assert_eq!(app.get("/auth/tokens", &me).await.status, StatusCode::OK);

    // Log out ends the server-side session: the old cookie no longer works.
    let out = app.post_form("/auth/logout", &me, &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = app.get("/auth/tokens", &me).await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert!(after.location().starts_with("/auth/login"));

    // Log in again with the password.
    let res = app
        .post_form(
            "/auth/login",
            &anon,
            &[
                ("username", "alice"),
                ("password", "correct horse"),
                ("next", "/p/"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/p/");
    assert!(res.set_cookie("forge_session").is_some());

    // Events were recorded for sign-up and both log-ins.
    app.forge.events().flush().await;
    assert_eq!(
        app.count_events(bson::doc! {"type": "user.signup", "context.user": "alice"})
            .await,
        1
    );
    assert_eq!(
        app.count_events(bson::doc! {"type": "user.login", "context.user": "alice"})
            .await,
        2
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_refused_alike() {
    let app = TestApp::new("wrongpw").await;
    app.user("bob").await;
    let anon = Browser::anonymous();
    let wrong = app
        .post_form(
            "/auth/login",
            &anon,
            &[("username", "bob"), ("password", "nope-nope")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong username or password"));
    assert!(wrong.set_cookie("forge_session").is_none());
    let unknown = app
        .post_form(
            "/auth/login",
            &anon,
            &[("username", "nobody"), ("password", "nope-nope")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(unknown.body.contains("Wrong username or password"));
}

#[tokio::test]
async fn login_rate_limit_per_account_and_per_ip() {
    let app = TestApp::new("ratelimit").await;
    app.user("carol").await;
    let from = |ip: [u8; 4]| Browser {
        ip: Some(SocketAddr::from((ip, 5000))),
        ..Browser::anonymous()
    };
    let try_login = |b: Browser, user: String, password: &'static str| {
        let app = &app;
        async move {
            app.post_form(
                "/auth/login",
                &b,
                &[("username", &user), ("password", password)],
            )
            .await
            .status
        }
    };
    // One address guessing at one account: five failures, then refused.
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(try_login(from([10, 0, 0, 1]), "carol".into(), "bad-password").await);
    }
    assert!(
        statuses[..5].iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS);
    // Failures are counted, not attempts: the right password from another address still
    // gets in, as often as it is used.
    for _ in 0..8 {
        let right = try_login(from([10, 0, 1, 1]), "carol".into(), "carol-password").await;
        assert_eq!(right, StatusCode::SEE_OTHER);
    }

    // Per address: one address trying many accounts is refused after 30 failures.
    let mut last = StatusCode::OK;
    for i in 0..31 {
        last = try_login(from([10, 9, 9, 9]), format!("user{i}"), "x-password").await;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn signup_rate_limit_per_ip() {
    let app = TestApp::new("signuplimit").await;
    let b = Browser::anonymous();
    let mut last = StatusCode::OK;
    for i in 0..6 {
        let name = format!("sign{i}");
        let email = format!("sign{i}@example.org");
        last = app
            .post_form(
                "/auth/signup",
                &b,
                &signup_fields(&name, &email, "long-password"),
            )
            .await
            .status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.count("users", bson::doc! {}).await, 5);
}

#[tokio::test]
async fn posts_without_the_csrf_token_are_rejected() {
    let app = TestApp::new("csrf").await;
    let anon = Browser::anonymous();
    let no_token = app
        .post_raw(
            "/auth/signup",
            &anon,
            &signup_fields("dave", "dave@example.org", "long-password"),
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    let forged = app
        .post_raw(
            "/auth/signup",
            &anon,
            &[
                ("csrf_token", "forged-token-value-forged-token-value"),
                ("username", "dave"),
                ("email", "dave@example.org"),
                ("password", "long-password"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(app.count("users", bson::doc! {}).await, 0);

    // A logged-in user's state-changing forms are protected the same way.
    let erin = app.user("erin").await;
    let b = app.browser(&erin).await;
    let res = app
        .post_raw("/p/add", &b, &[("name", "X"), ("shortname", "xproj")])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.count("projects", bson::doc! {"shortname": "xproj"})
            .await,
        0
    );
    let res = app.post_raw("/auth/logout", &b, &[]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/auth/tokens", &b).await.status,
        StatusCode::OK,
        "session survived the forged logout"
    );
}

#[tokio::test]
async fn first_visit_gets_a_csrf_cookie_that_forms_use() {
    let app = TestApp::new("csrfcookie").await;
    let req = axum::http::Request::get("/auth/signup")
        .body(axum::body::Body::empty())
        .unwrap();
    let res = app.send(req, None).await;
    let token = res.set_cookie("forge_csrf").expect("csrf cookie");
    // The form carries the cookie's token, masked (never the plain token: see `csrf`).
    let carried = common::field(&res.body, "csrf_token");
    assert!(!res.body.contains(&token));
    assert!(
        forge_tools::secret::token_matches(&token, &carried),
        "{carried}"
    );
}

#[tokio::test]
async fn signup_validation_keeps_values_and_stores_nothing() {
    let app = TestApp::new("signupinvalid").await;
    let anon = Browser::anonymous();
    let res = app
        .post_form(
            "/auth/signup",
            &anon,
            &signup_fields("Bad Name", "not-an-email", "short"),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.body.contains("Username must be lowercase"),
        "{}",
        res.body
    );
    assert!(res.body.contains("Enter a valid email address"));
    assert!(res.body.contains("at least 8 characters"));
    assert!(
        res.body.contains("value=\"not-an-email\""),
        "entered values are kept"
    );
    assert_eq!(app.count("users", bson::doc! {}).await, 0);
    assert_eq!(app.count("projects", bson::doc! {}).await, 0);

    app.user("frank").await;
    let taken = app
        .post_form(
            "/auth/signup",
            &anon,
            &signup_fields("frank", "other@example.org", "long-password"),
        )
        .await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(taken.body.contains("already taken"));
    let reserved = app
        .post_form(
            "/auth/signup",
            &anon,
            &signup_fields("admin", "adm@example.org", "long-password"),
        )
        .await;
    assert!(reserved.body.contains("reserved"));
    assert_eq!(app.count("users", bson::doc! {}).await, 1);
}

#[tokio::test]
async fn signup_checks_the_account_and_its_personal_project_before_writing() {
    let app = TestApp::new("signupnames").await;
    // One address per attempt, and at most five: this test is about names, not the sign-up
    // rate limit.
    let from = |n: u8| Browser {
        ip: Some(SocketAddr::from(([10, 7, 0, n], 5000))),
        ..Browser::anonymous()
    };
    let signup = |name: &'static str| {
        vec![
            ("username", "dana"),
            ("email", "dana@example.org"),
            ("password", "correct horse"),
            ("display_name", name),
        ]
    };
    // 81 to 100 characters used to pass the account's check and fail its project's, leaving
    // an account without a personal project; line breaks and tabs used to pass both.
    let too_long: &'static str = "L".repeat(90).leak();
    for (n, name) in [too_long, "Dana\r\nSmith", "Dana\tSmith"]
        .into_iter()
        .enumerate()
    {
        let res = app
            .post_form("/auth/signup", &from(n as u8), &signup(name))
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        assert!(res.body.contains("Name must"), "{name:?}: {}", res.body);
    }
    assert_eq!(app.count("users", bson::doc! {}).await, 0);
    assert_eq!(app.count("projects", bson::doc! {}).await, 0);

    // The personal project's name is taken (left by an earlier account): refused before
    // the account is written.
    let orphan = forge_tools::projects::NewProject {
        neighborhood: forge_tools::projects::Neighborhood::Users,
        shortname: "dana".into(),
        name: "Dana".into(),
        summary: String::new(),
        private: false,
    };
    forge_tools::projects::create(app.forge.db(), orphan, forge_tools::ids::UserId::new())
        .await
        .unwrap();
    let res = app
        .post_form("/auth/signup", &from(10), &signup("Dana"))
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.body.contains("already taken"), "{}", res.body);
    assert_eq!(app.count("users", bson::doc! {}).await, 0);
    app.forge
        .db()
        .collection::<bson::Document>("projects")
        .delete_many(bson::doc! {})
        .await
        .unwrap();

    // The longest name works, trimmed, on the account and its project alike.
    let longest: &'static str = format!("  {}  ", "é".repeat(80)).leak();
    let res = app
        .post_form("/auth/signup", &from(11), &signup(longest))
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let user = forge_tools::users::by_username(app.forge.db(), "dana")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.display_name, longest.trim());
    let project = forge_tools::projects::get(
        app.forge.db(),
        forge_tools::projects::Neighborhood::Users,
        "dana",
    )
    .await
    .unwrap()
    .expect("personal project created");
    assert_eq!(project.name, longest.trim());
}

#[tokio::test]
async fn access_tokens_page_create_use_revoke() {
    let app = TestApp::new("tokens").await;
    let gina = app.user("gina").await;
    let b = app.browser(&gina).await;
    let res = app
        .post_form("/auth/tokens", &b, &[("name", "laptop")])
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    let start = res.body.find("forge_").expect("token shown once");
    let token: String = res.body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    // Stored hashed: the secret itself is nowhere in the store.
    assert_eq!(app.count("tokens", bson::doc! {"hash": &token}).await, 0);
    assert_eq!(
        app.count(
            "tokens",
            bson::doc! {"hash": forge_tools::secret::digest(&token)}
        )
        .await,
        1
    );

    let ok = app
        .api(
            Method::POST,
            "/rest/p",
            Some(&token),
            Some(serde_json::json!({"shortname": "gproj", "name": "G"})),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);

    let list = app.get("/auth/tokens", &b).await;
    assert!(list.body.contains("laptop"));
    assert!(!list.body.contains(&token), "the secret is not shown again");
    let id = app
        .forge
        .db()
        .collection::<bson::Document>("tokens")
        .find_one(bson::doc! {})
        .await
        .unwrap()
        .unwrap()
        .get_object_id("_id")
        .unwrap();
    let revoke = app
        .post_form(&format!("/auth/tokens/{id}/revoke"), &b, &[])
        .await;
    assert_eq!(revoke.status, StatusCode::SEE_OTHER);
    let refused = app.api(Method::GET, "/rest/p", Some(&token), None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.json()["error"]["code"], "invalid_token");

    // Someone else cannot revoke gina's tokens.
    let (t, _) = forge_tools::tokens::create(app.forge.db(), gina.id, "ci")
        .await
        .unwrap();
    let hank = app.user("hank").await;
    let hb = app.browser(&hank).await;
    assert_eq!(
        app.post_form(&format!("/auth/tokens/{}/revoke", t.id), &hb, &[])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn open_redirects_after_login_are_refused() {
    let app = TestApp::new("nextparam").await;
    app.user("ivan").await;
    let anon = Browser::anonymous();
    let res = app
        .post_form(
            "/auth/login",
            &anon,
            &[
                ("username", "ivan"),
                ("password", "ivan-password"),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/");
}

/// A second web node over the same store (its own router and memory).
async fn second_node(app: &TestApp, label: &str) -> TestApp {
    let db = app.forge.db().name().to_owned();
    TestApp::with_config(label, |c| c.db_name = db).await
}

#[tokio::test]
async fn log_in_and_sign_up_limits_are_shared_by_every_node() {
    let a = TestApp::new("sharedlimits").await;
    let b = second_node(&a, "sharedlimits-b").await;
    a.user("carol").await;
    let from = Browser {
        ip: Some(SocketAddr::from(([10, 4, 4, 4], 5000))),
        ..Browser::anonymous()
    };
    let wrong = [("username", "carol"), ("password", "bad-password")];
    // Five failures from one address, spread over both nodes: the sixth is refused on
    // either, as it would be on one.
    for node in [&a, &b, &a, &b, &a] {
        let res = node.post_form("/auth/login", &from, &wrong).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    }
    for node in [&a, &b] {
        let res = node.post_form("/auth/login", &from, &wrong).await;
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS, "{}", res.body);
    }

    // Sign-ups from one address: five at once across both nodes, then refused on both.
    let signer = Browser {
        ip: Some(SocketAddr::from(([10, 5, 5, 5], 5000))),
        ..Browser::anonymous()
    };
    for (i, node) in [&a, &b, &b, &a, &b].into_iter().enumerate() {
        let (name, email) = (format!("shared{i}"), format!("shared{i}@example.org"));
        let fields = signup_fields(&name, &email, "long-password");
        let res = node.post_form("/auth/signup", &signer, &fields).await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    }
    for node in [&a, &b] {
        let fields = signup_fields("shared9", "shared9@example.org", "long-password");
        let res = node.post_form("/auth/signup", &signer, &fields).await;
        assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    }
}

#[tokio::test]
async fn a_bucket_never_gives_more_than_it_holds_to_concurrent_takers() {
    let app = TestApp::new("bucketrace").await;
    let db = app.forge.db().clone();
    let period = std::time::Duration::from_secs(60);
    let takers = (0..24).map(|_| {
        let db = db.clone();
        tokio::spawn(async move {
            forge_tools::ratelimit::bucket(&db, "race", "one-key", 5, period).await
        })
    });
    let mut taken = 0;
    for t in takers {
        taken += usize::from(t.await.unwrap().unwrap());
    }
    assert_eq!(taken, 5);
    // Another key has its own bucket.
    assert!(
        forge_tools::ratelimit::bucket(&db, "race", "other-key", 5, period)
            .await
            .unwrap()
    );
}

/// A log-in form posted through a proxy at `peer` that says the client is `forwarded`.
async fn login_via(
    app: &TestApp,
    b: &Browser,
    peer: [u8; 4],
    forwarded: &str,
    password: &str,
) -> StatusCode {
    let body = serde_urlencoded::to_string([
        ("csrf_token", b.csrf.as_str()),
        ("username", "dora"),
        ("password", password),
    ])
    .unwrap();
    let req = axum::http::Request::post("/auth/login")
        .header(axum::http::header::COOKIE, b.cookie_header())
        .header(
            axum::http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header("x-forwarded-for", forwarded)
        .body(axum::body::Body::from(body))
        .unwrap();
    app.send(req, Some(SocketAddr::from((peer, 4000))))
        .await
        .status
}

#[tokio::test]
async fn behind_a_trusted_proxy_limits_count_the_client_not_the_proxy() {
    let app = TestApp::with_config("trustedproxy", |c| {
        c.trusted_proxies = "10.9.0.0/16".into();
    })
    .await;
    app.user("dora").await;
    let b = Browser::anonymous();
    let proxy = [10, 9, 0, 1];
    // One client guessing through the proxy is closed after five failures...
    for _ in 0..5 {
        let s = login_via(&app, &b, proxy, "203.0.113.5", "bad-password").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let s = login_via(&app, &b, proxy, "203.0.113.5", "dora-password").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // ...another client through the same proxy is not: it gets in.
    let s = login_via(&app, &b, proxy, "203.0.113.6", "dora-password").await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    // A client that writes its own header does not escape: the proxy appends what it saw.
    let s = login_via(
        &app,
        &b,
        proxy,
        "198.51.100.1, 203.0.113.5",
        "dora-password",
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // A peer that is not a trusted proxy is the client, whatever it claims.
    for _ in 0..5 {
        let s = login_via(&app, &b, [192, 0, 2, 8], "203.0.113.77", "bad-password").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let s = login_via(&app, &b, [192, 0, 2, 8], "203.0.113.78", "dora-password").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
}
