//! Activity stream, follows and Atom feeds: feeds are valid Atom with absolute links and hold
//! only what anonymous may read (no private project, private ticket or held post); 304 on a
//! matching tag; the dashboard shows what a user follows, a private project's activity only
//! once they are a member; paging; escaping of hostile titles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use axum::http::{Method, StatusCode};
use common::{Browser, Res, TestApp};
use forge_tools::acl::Role;
use serde_json::json;

async fn put_page(app: &TestApp, token: &str, project: &str, page: &str, text: &str) {
    let r = app
        .api(
            Method::PUT,
            &format!("/rest/p/{project}/wiki/{page}"),
            Some(token),
            Some(json!({ "text": text })),
        )
        .await;
    assert!(r.status.is_success(), "{}: {}", r.status, r.body);
}

async fn file_ticket(app: &TestApp, token: &str, project: &str, body: serde_json::Value) {
    let r = app
        .api(
            Method::POST,
            &format!("/rest/p/{project}/tickets/"),
            Some(token),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

/// Commits two files to the project's repository (straight into its bare repository, as a
/// push would) and runs the refresh a push queues, as `pusher`.
async fn push_two_commits(app: &TestApp, owner: &forge_tools::users::User, project: &str) {
    let ctx = app.ctx_of(owner, project).await;
    let tool = ctx.tool("code").unwrap();
    let bare = forge_tools::tools::repo::repo_path(app.forge.config(), tool);
    let work = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(["-c", "user.name=Ann", "-c", "user.email=ann@example.org"])
            .args(args)
            .current_dir(work.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q", "-b", "main", "."]);
    std::fs::write(work.path().join("a.txt"), "a").unwrap();
    git(&["add", "a.txt"]);
    git(&["commit", "-q", "-m", "First commit"]);
    std::fs::write(work.path().join("b.txt"), "b").unwrap();
    git(&["add", "b.txt"]);
    git(&["commit", "-q", "-m", "Second commit"]);
    git(&["push", "-q", bare.to_str().unwrap(), "main:main"]);
    let args = forge_tools::tools::repo::refresh::args(tool.id, Some("ann"), None);
    forge_tools::tools::repo::refresh::run(&app.forge, &args)
        .await
        .unwrap();
}

fn parse(res: &Res) -> feed_rs::model::Feed {
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(
        res.header("content-type")
            .starts_with("application/atom+xml"),
        "{}",
        res.header("content-type")
    );
    let feed = feed_rs::parser::parse(res.bytes.as_slice()).expect("valid Atom");
    assert_eq!(feed.feed_type, feed_rs::model::FeedType::Atom);
    feed
}

fn titles(feed: &feed_rs::model::Feed) -> Vec<String> {
    feed.entries
        .iter()
        .map(|e| {
            e.title
                .as_ref()
                .map(|t| t.content.clone())
                .unwrap_or_default()
        })
        .collect()
}

fn any_title(feed: &feed_rs::model::Feed, needle: &str) -> bool {
    titles(feed).iter().any(|t| t.contains(needle))
}

#[tokio::test]
async fn feeds_hold_only_public_activity() {
    let app = TestApp::new("feeds").await;
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    app.project(&ann, "open", false).await;
    app.project(&ann, "hidden", true).await;
    let ta = app.token(&ann).await;
    let tb = app.token(&bob).await;

    put_page(&app, &ta, "open", "Guide", "How to *start*.").await;
    file_ticket(
        &app,
        &ta,
        "open",
        json!({"summary": "Crash <script>alert(1)</script>", "description": "boom"}),
    )
    .await;
    file_ticket(
        &app,
        &ta,
        "open",
        json!({"summary": "Embargoed issue", "private": true}),
    )
    .await;
    put_page(&app, &ta, "hidden", "Secretpage", "classified").await;
    file_ticket(&app, &ta, "hidden", json!({"summary": "Hidden ticket"})).await;
    // A comment that goes live, and one held for a moderator (a new account's links).
    let ok = app
        .api(
            Method::POST,
            "/rest/p/open/tickets/1/comments",
            Some(&ta),
            Some(json!({"text": "Fixed in the next build"})),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    let held = app
        .api(
            Method::POST,
            "/rest/p/open/tickets/1/comments",
            Some(&tb),
            Some(json!({"text": "heldpost https://a.example https://b.example https://c.example"})),
        )
        .await;
    assert_eq!(held.status, StatusCode::CREATED, "{}", held.body);
    assert_eq!(held.json()["status"], "pending", "{}", held.body);
    push_two_commits(&app, &ann, "open").await;
    app.forge.events().flush().await;

    let anon = Browser::anonymous();
    let base = app.forge.config().base_url();
    let site = app.get("/feed.atom", &anon).await;
    let feed = parse(&site);
    assert!(any_title(&feed, "page Guide"), "{:?}", titles(&feed));
    assert!(any_title(&feed, "ticket #1: Crash"), "{:?}", titles(&feed));
    assert!(
        any_title(&feed, "pushed 2 commits to main"),
        "{:?}",
        titles(&feed)
    );
    assert!(any_title(&feed, "created project Project open"));
    assert!(any_title(&feed, "commented on ticket #1"));
    for e in &feed.entries {
        assert!(e.id.starts_with("tag:"), "{}", e.id);
        assert!(!e.authors.is_empty());
        assert!(
            e.links[0].href.starts_with(&format!("{base}/p/open/")),
            "{}",
            e.links[0].href
        );
    }
    for secret in [
        "Embargoed",
        "Secretpage",
        "Hidden ticket",
        "hidden",
        "heldpost",
    ] {
        assert!(
            !site.body.contains(secret),
            "{secret} leaked: {}",
            site.body
        );
    }
    // Hostile text is escaped, never markup.
    assert!(!site.body.contains("<script>"));
    assert!(site.body.contains("&lt;script&gt;"));

    // Conditional GET.
    let tag = site.header("etag").to_owned();
    assert!(!tag.is_empty());
    let req = axum::http::Request::get("/feed.atom")
        .header("if-none-match", &tag)
        .body(axum::body::Body::empty())
        .unwrap();
    let again = app.send(req, None).await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    let req = axum::http::Request::get("/feed.atom")
        .header("if-none-match", "\"other\"")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.send(req, None).await.status, StatusCode::OK);

    // Project and tool feeds.
    let project = parse(&app.get("/p/open/feed.atom", &anon).await);
    assert!(any_title(&project, "page Guide") && any_title(&project, "ticket #1"));
    let tickets = parse(&app.get("/p/open/tickets/feed.atom", &anon).await);
    assert!(any_title(&tickets, "ticket #1") && !any_title(&tickets, "page Guide"));
    assert!(!any_title(&tickets, "Embargoed"));
    let wiki = parse(&app.get("/p/open/wiki/feed.atom", &anon).await);
    assert!(any_title(&wiki, "page Guide") && !any_title(&wiki, "ticket"));
    let code = parse(&app.get("/p/open/code/feed.atom", &anon).await);
    assert!(any_title(&code, "2 commits to main"));
    assert_eq!(
        app.get("/p/open/nosuchtool/feed.atom", &anon).await.status,
        StatusCode::NOT_FOUND
    );

    // A private project has no feed, not even for its members.
    assert_eq!(
        app.get("/p/hidden/feed.atom", &anon).await.status,
        StatusCode::NOT_FOUND
    );
    let ann_browser = app.browser(&ann).await;
    assert_eq!(
        app.get("/p/hidden/feed.atom", &ann_browser).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/p/hidden/wiki/feed.atom", &anon).await.status,
        StatusCode::NOT_FOUND
    );

    // A user's feed: what they did in public, nothing held.
    let ann_feed = parse(&app.get("/u/ann/feed.atom", &anon).await);
    assert!(any_title(&ann_feed, "page Guide"));
    assert!(feed_has_no(
        &ann_feed,
        &["Secretpage", "Hidden ticket", "Embargoed"]
    ));
    let bob_feed = parse(&app.get("/u/bob/feed.atom", &anon).await);
    assert!(bob_feed.entries.is_empty(), "{:?}", titles(&bob_feed));
    assert_eq!(
        app.get("/u/nobody/feed.atom", &anon).await.status,
        StatusCode::NOT_FOUND
    );

    // The private ticket is on the project home for its developers only.
    let home = app.get("/p/open/", &ann_browser).await;
    assert!(home.body.contains("Embargoed issue"), "{}", home.body);
    assert!(!app.get("/p/open/", &anon).await.body.contains("Embargoed"));

    // Once a moderator approves it, the held post is activity, where it was written.
    let held_id = held.json()["id"].as_str().unwrap().to_owned();
    let approve = [
        ("status", "pending"),
        ("page", "1"),
        ("post", held_id.as_str()),
        ("action", "approve"),
    ];
    let r = app
        .post_form("/p/open/tickets/_moderate", &ann_browser, &approve)
        .await;
    assert!(r.status.is_redirection(), "{}: {}", r.status, r.body);
    let approved = app.get("/feed.atom", &anon).await;
    assert!(approved.body.contains("heldpost"), "{}", approved.body);

    // A ticket made private takes its past activity (comments too) with it.
    let r = app
        .api(
            Method::PATCH,
            "/rest/p/open/tickets/1",
            Some(&ta),
            Some(json!({"private": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.forge.events().flush().await;
    let after = parse(&app.get("/feed.atom", &anon).await);
    assert!(!any_title(&after, "ticket #1"), "{:?}", titles(&after));
    assert_ne!(
        app.get("/feed.atom", &anon).await.header("etag"),
        tag,
        "the tag follows the content"
    );
}

fn feed_has_no(feed: &feed_rs::model::Feed, needles: &[&str]) -> bool {
    needles.iter().all(|n| !any_title(feed, n))
}

#[tokio::test]
async fn dashboard_shows_what_is_followed_and_readable() {
    let app = TestApp::new("dashboard").await;
    let ann = app.user("ann").await;
    let carl = app.user("carl").await;
    let dave = app.user("dave").await;
    app.project(&ann, "pub1", false).await;
    let priv1 = app.project(&ann, "priv1", true).await;
    let ta = app.token(&ann).await;
    let carl_b = app.browser(&carl).await;
    let dave_b = app.browser(&dave).await;

    // Anonymous visitors are sent to log in.
    let r = app.get("/dashboard", &Browser::anonymous()).await;
    assert!(r.status.is_redirection(), "{}", r.status);
    assert!(r.location().contains("/auth/login"), "{}", r.location());

    // Carl follows ann (the button is on her page).
    let page = app.get("/u/ann/", &carl_b).await;
    assert!(page.body.contains("Follow ann"), "{}", page.body);
    let r = app
        .post_form("/u/ann/_follow", &carl_b, &[("action", "follow")])
        .await;
    assert!(r.status.is_redirection(), "{}: {}", r.status, r.body);
    assert!(
        app.get("/u/ann/", &carl_b)
            .await
            .body
            .contains("Unfollow ann")
    );
    // Without the CSRF token nothing happens.
    let r = app
        .post_raw("/p/pub1/_follow", &dave_b, &[("action", "follow")])
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);

    put_page(&app, &ta, "pub1", "Openpage", "public words").await;
    put_page(&app, &ta, "priv1", "Closedpage", "members only").await;
    file_ticket(
        &app,
        &ta,
        "pub1",
        json!({"summary": "Bad <script>alert('x')</script> title"}),
    )
    .await;
    app.forge.events().flush().await;

    let dash = app.get("/dashboard", &carl_b).await;
    assert_eq!(dash.status, StatusCode::OK);
    assert!(dash.body.contains("page Openpage"), "{}", dash.body);
    assert!(!dash.body.contains("Closedpage"), "{}", dash.body);
    assert!(!dash.body.contains("<script>alert"), "{}", dash.body);
    assert!(dash.body.contains("&#60;script&#62;") || dash.body.contains("&lt;script&gt;"));
    assert!(
        dash.body.contains("href=\"/dashboard\""),
        "linked from the header"
    );

    // A member sees the private project's activity.
    app.add_member(&priv1, &carl, Role::Member).await;
    let dash = app.get("/dashboard", &carl_b).await;
    assert!(dash.body.contains("page Closedpage"), "{}", dash.body);

    // Following a project; paging of a long stream.
    let r = app
        .post_form("/p/pub1/_follow", &dave_b, &[("action", "follow")])
        .await;
    assert!(r.status.is_redirection(), "{}", r.body);
    for i in 0..23 {
        put_page(&app, &ta, "pub1", &format!("Many{i:02}"), "x").await;
    }
    app.forge.events().flush().await;
    let first = app.get("/dashboard", &dave_b).await;
    assert_eq!(first.body.matches("<li><a href=\"/u/").count(), 20);
    assert!(first.body.contains("page Many22") && !first.body.contains("page Openpage"));
    assert!(first.body.contains("/dashboard?page=2"));
    let second = app.get("/dashboard?page=2", &dave_b).await;
    assert!(second.body.contains("page Openpage"), "{}", second.body);
    assert!(!second.body.contains("page Many22"));
    assert!(!second.body.contains("Closedpage"));
    assert_eq!(
        app.get("/dashboard?page=0", &dave_b).await.status,
        StatusCode::BAD_REQUEST
    );

    // Unfollowing: carl keeps only the project he belongs to.
    let r = app
        .post_form("/u/ann/_follow", &carl_b, &[("action", "unfollow")])
        .await;
    assert!(r.status.is_redirection());
    let dash = app.get("/dashboard", &carl_b).await;
    assert!(dash.body.contains("page Closedpage") && !dash.body.contains("page Openpage"));

    // Project home: recent activity and the feed links.
    let anon = Browser::anonymous();
    let home = app.get("/p/pub1/", &anon).await;
    assert!(home.body.contains("page Many22"), "{}", home.body);
    assert!(
        home.body
            .contains("<link rel=\"alternate\" type=\"application/atom+xml\"")
    );
    assert!(home.body.contains("href=\"/p/pub1/feed.atom\""));
    let tool = app.get("/p/pub1/wiki/Openpage/", &anon).await;
    assert!(
        tool.body.contains("href=\"/p/pub1/wiki/feed.atom\""),
        "{}",
        tool.body
    );
    assert!(
        app.get("/", &anon)
            .await
            .body
            .contains("href=\"/feed.atom\"")
    );
    assert!(
        app.get("/u/ann/", &anon)
            .await
            .body
            .contains("href=\"/u/ann/feed.atom\"")
    );
    let ann_b = app.browser(&ann).await;
    let private_home = app.get("/p/priv1/", &ann_b).await;
    assert!(private_home.body.contains("page Closedpage"));
    assert!(!private_home.body.contains("application/atom+xml"));
}

#[tokio::test]
async fn changes_after_the_fact_touch_the_copies_only_and_reach_late_ones() {
    let app = TestApp::new("actchange").await;
    let ann = app.user("ann").await;
    app.project(&ann, "open", false).await;
    let ta = app.token(&ann).await;
    file_ticket(&app, &ta, "open", json!({"summary": "Leaky roof"})).await;
    let r = app
        .api(
            Method::POST,
            "/rest/p/open/tickets/1/comments",
            Some(&ta),
            Some(json!({"text": "Still dripping"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    app.forge.events().flush().await;
    let copies = app.forge.db().collection::<bson::Document>("activity");
    let ticket = bson::doc! {"context.project": "open", "$or": [
        {"extra.ticket": 1_i64}, {"extra.artifact": {"$regex": "^ticket:"}},
    ]};
    let copy = copies
        .find_one(bson::doc! {"extra.ticket": 1_i64})
        .await
        .unwrap()
        .expect("the ticket's activity");
    let all = app.count("activity", ticket.clone()).await;
    assert!(all >= 2, "the ticket and its comment");

    // Made private: its copies are restricted through indexed updates; the event log is
    // neither read nor changed for it.
    let since = app.profile().await;
    let r = app
        .api(
            Method::PATCH,
            "/rest/p/open/tickets/1",
            Some(&ta),
            Some(json!({"private": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.forge.events().flush().await;
    let mut restricted = ticket.clone();
    restricted.insert("extra.restricted.permission", "update");
    let all = app.count("activity", ticket.clone()).await;
    assert_eq!(app.count("activity", restricted).await, all);
    let updates = app.updates("activity", since).await;
    assert!(!updates.is_empty());
    for q in updates {
        assert!(app.indexed("activity", q.clone()).await, "{q}");
    }
    assert!(app.updates("events", since).await.is_empty());
    let reads = app.profiled("events", "query", since).await;
    assert!(
        reads.iter().all(|r| !r.to_string().contains("extra.")),
        "{reads:?}"
    );

    // A copy written after the change (its event was still waiting for the writer) gets it
    // from the writer's reconcile.
    let mut late = copy.clone();
    late.insert(
        "_id",
        match copy.get("_id").unwrap() {
            bson::Bson::Int64(n) => bson::Bson::Int64(n + (1 << 40)),
            _ => bson::Bson::ObjectId(bson::oid::ObjectId::new()),
        },
    );
    late.get_document_mut("extra").unwrap().remove("restricted");
    copies.insert_one(&late).await.unwrap();
    forge_tools::activity::reconcile(app.forge.db(), [&late])
        .await
        .unwrap();
    let now = copies
        .find_one(bson::doc! {"_id": late.get("_id").unwrap()})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        now.get_document("extra")
            .unwrap()
            .get_document("restricted")
            .unwrap()
            .get_str("permission")
            .unwrap(),
        "update",
        "{now}"
    );
}

#[tokio::test]
async fn the_site_feed_loads_its_projects_in_one_query() {
    let app = TestApp::new("feedbatch").await;
    let ann = app.user("ann").await;
    let ta = app.token(&ann).await;
    for p in ["one", "two", "three"] {
        app.project(&ann, p, false).await;
        put_page(&app, &ta, p, "Guide", "text").await;
    }
    app.project(&ann, "closed", true).await;
    put_page(&app, &ta, "closed", "Secret", "text").await;
    app.forge.events().flush().await;
    app.tasks_done("search.index").await;
    app.tasks_done("notify.change").await;

    let since = app.profile().await;
    let feed = parse(&app.get("/feed.atom", &Browser::anonymous()).await);
    for p in ["in Project one", "in Project two", "in Project three"] {
        assert!(any_title(&feed, p), "{p}: {:?}", titles(&feed));
    }
    assert!(!any_title(&feed, "Secret"));
    // Every project the feed names in one query, and their tools in one more (not two per
    // project).
    let by_name = app
        .profiled("projects", "query", since)
        .await
        .into_iter()
        .filter(|q| q.to_string().contains("shortname"))
        .count();
    assert_eq!(by_name, 1);
    let tools = app
        .profiled("tools", "query", since)
        .await
        .into_iter()
        .filter(|q| q.to_string().contains("project_id"))
        .count();
    assert_eq!(tools, 1);
}
