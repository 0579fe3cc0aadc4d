//! The event log as the analytics read it, on a real store: each thing people do through the
//! web app (pages, forms, REST, git over HTTP) logs exactly one event of its canonical type
//! with the right context (project, tool mount, user), page views are one per HTML page
//! (REST, files, feeds and redirects are not views), anonymous events carry a daily
//! `visitor` digest and never an address, a clone is told from a fetch and logged once, a
//! push logs one `repo.push` and one `repo.commit` per new commit, and searches are counted
//! without their words.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use bson::{Bson, Document, doc};
use common::git::Git;
use common::{Browser, TestApp};
use forge_tools::acl::Role;
use futures::TryStreamExt;
use serde_json::json;

/// Where the log stood: events after it are what the next action logged.
struct Mark(i64);

impl Mark {
    async fn new(app: &TestApp) -> Self {
        app.forge.events().flush().await;
        let last = app
            .events()
            .find_one(doc! {})
            .sort(doc! {"_id": -1})
            .await
            .unwrap()
            .and_then(|d| d.get_i64("_id").ok())
            .unwrap_or(-1);
        Self(last)
    }

    /// The events logged since the mark (which moves past them), by type (events recorded
    /// together may be written in batches numbered in either order).
    async fn take(&mut self, app: &TestApp) -> Vec<Document> {
        app.forge.events().flush().await;
        let found: Vec<Document> = app
            .events()
            .find(doc! {"_id": {"$gt": self.0}})
            .sort(doc! {"_id": 1})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        if let Some(last) = found.last() {
            self.0 = last.get_i64("_id").unwrap();
        }
        let mut found = found;
        found.sort_by(|a, b| a.get_str("type").unwrap().cmp(b.get_str("type").unwrap()));
        found
    }

    /// The one event the last action logged, which must be of type `kind`.
    async fn one(&mut self, app: &TestApp, kind: &str) -> Document {
        let found = self.take(app).await;
        assert_eq!(types(&found), [kind], "{found:#?}");
        found.into_iter().next().unwrap()
    }

    /// Nothing was logged since the mark.
    async fn none(&mut self, app: &TestApp, what: &str) {
        let found = self.take(app).await;
        assert!(found.is_empty(), "{what} logged {found:#?}");
    }
}

/// The test's first account, with its sign-up written: the log's batch sequence then exists.
/// (Two batches written at once into a new database race to create it, and the loser's events
/// are lost: `events::write_batch` upserts the sequence without retrying a duplicate key.)
async fn first_user(app: &TestApp, name: &str) -> forge_tools::users::User {
    let user = app.user(name).await;
    app.forge.events().flush().await;
    user
}

fn types(events: &[Document]) -> Vec<&str> {
    events.iter().map(|e| e.get_str("type").unwrap()).collect()
}

fn context(e: &Document) -> &Document {
    e.get_document("context").unwrap()
}

/// A context field, `None` when absent or null.
fn ctx_str<'a>(e: &'a Document, field: &str) -> Option<&'a str> {
    context(e).get_str(field).ok()
}

fn extra(e: &Document) -> &Document {
    e.get_document("extra").unwrap()
}

/// The event happened in `project`'s tool `tool` (`None`: the project itself) as `user`
/// (`None`: anonymous, then with a visitor digest and no address).
fn assert_context(e: &Document, project: Option<&str>, tool: Option<&str>, user: Option<&str>) {
    assert_eq!(ctx_str(e, "project"), project, "{e:#?}");
    assert_eq!(ctx_str(e, "tool"), tool, "{e:#?}");
    assert_eq!(ctx_str(e, "user"), user, "{e:#?}");
    if project.is_some() {
        assert_eq!(ctx_str(e, "neighborhood"), Some("p"), "{e:#?}");
    }
    match user {
        Some(_) => assert_eq!(ctx_str(e, "visitor"), None, "{e:#?}"),
        None => {
            let v = ctx_str(e, "visitor").unwrap_or_else(|| panic!("no visitor: {e:#?}"));
            assert!(
                v.len() == 16 && v.bytes().all(|b| b.is_ascii_hexdigit()),
                "visitor {v:?}"
            );
        }
    }
    assert!(
        !e.contains_key("ip") && !context(e).contains_key("ip"),
        "{e:#?}"
    );
}

/// No event anywhere holds an address.
async fn assert_no_addresses(app: &TestApp) {
    app.forge.events().flush().await;
    for filter in [
        doc! {"ip": {"$exists": true}},
        doc! {"context.ip": {"$exists": true}},
        doc! {"extra.ip": {"$exists": true}},
    ] {
        assert_eq!(app.count_events(filter.clone()).await, 0, "{filter}");
    }
    let all: Vec<Document> = app
        .events()
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(!all.is_empty());
    for e in &all {
        assert!(!e.to_string().contains("127.0.0.1"), "{e:#?}");
    }
}

fn edit_fields<'a>(text: &'a str, base: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("text", text),
        ("labels", ""),
        ("comment", ""),
        ("base_version", base),
        ("action", "save"),
    ]
}

#[tokio::test]
async fn page_views_are_one_per_html_page_with_the_tool_and_no_address() {
    let app = TestApp::new("evviews").await;
    let ann = first_user(&app, "ann").await;
    app.project(&ann, "proj", false).await;
    let owner = app.browser(&ann).await;
    let anon = Browser::anonymous();
    let mut mark = Mark::new(&app).await;

    // The project's own pages: no tool.
    assert_eq!(app.get("/p/proj/", &anon).await.status, StatusCode::OK);
    let e = mark.one(&app, "page.view").await;
    assert_context(&e, Some("proj"), None, None);
    assert_eq!(e.get("extra"), Some(&Bson::Null));
    assert_eq!(
        app.get("/p/proj/admin/", &owner).await.status,
        StatusCode::OK
    );
    let e = mark.one(&app, "page.view").await;
    assert_context(&e, Some("proj"), None, Some("ann"));

    // Every tool's pages: the tool's mount (the wiki says which page).
    let e = {
        assert_eq!(
            app.get("/p/proj/wiki/Home/", &anon).await.status,
            StatusCode::OK
        );
        mark.one(&app, "page.view").await
    };
    assert_context(&e, Some("proj"), Some("wiki"), None);
    assert_eq!(extra(&e).get_str("page").unwrap(), "Home");
    for (path, mount) in [
        ("/p/proj/wiki/_index", "wiki"),
        ("/p/proj/tickets/", "tickets"),
        ("/p/proj/wiki/_recent", "wiki"),
        ("/p/proj/discussion/", "discussion"),
        ("/p/proj/code/", "code"),
    ] {
        let res = app.get(path, &anon).await;
        assert_eq!(res.status, StatusCode::OK, "{path}: {}", res.body);
        let e = mark.one(&app, "page.view").await;
        assert_context(&e, Some("proj"), Some(mount), None);
    }
    // The same page twice is two views; the same viewer has the same digest today.
    app.get("/p/proj/tickets/", &anon).await;
    app.get("/p/proj/tickets/", &anon).await;
    let two = mark.take(&app).await;
    assert_eq!(types(&two), ["page.view", "page.view"]);
    assert_eq!(ctx_str(&two[0], "visitor"), ctx_str(&two[1], "visitor"));

    // Not views: redirects, REST, feeds, errors, pages of no project, form posts.
    assert_eq!(
        app.get("/p/proj/wiki/", &anon).await.status,
        StatusCode::SEE_OTHER
    );
    mark.none(&app, "a redirect").await;
    let rest = app
        .api(Method::GET, "/rest/p/proj/wiki/Home", None, None)
        .await;
    assert_eq!(rest.status, StatusCode::OK);
    mark.none(&app, "a REST read").await;
    assert_eq!(
        app.get("/p/proj/feed.atom", &anon).await.status,
        StatusCode::OK
    );
    mark.none(&app, "a feed").await;
    assert_eq!(
        app.get("/p/nothing/", &anon).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/p/proj/nothing/", &anon).await.status,
        StatusCode::NOT_FOUND
    );
    mark.none(&app, "a missing page").await;
    assert_eq!(app.get("/p/", &anon).await.status, StatusCode::OK);
    mark.none(&app, "the project directory").await;
    let refused = app
        .post_form("/p/proj/wiki/Guide/edit", &owner, &edit_fields("x", "7"))
        .await;
    assert!(!refused.status.is_success());
    mark.none(&app, "a refused form post").await;

    // A private project's views say so.
    let secret = app.project(&ann, "secret", true).await;
    let mem = app.user("mem").await;
    app.add_member(&secret, &mem, Role::Member).await;
    let m = app.browser(&mem).await;
    mark.take(&app).await;
    assert_eq!(
        app.get("/p/secret/wiki/Home/", &m).await.status,
        StatusCode::OK
    );
    let e = mark.one(&app, "page.view").await;
    assert_context(&e, Some("secret"), Some("wiki"), Some("mem"));
    assert!(context(&e).get_bool("private").unwrap());
    assert_no_addresses(&app).await;
}

#[tokio::test]
async fn wiki_tracker_and_attachment_actions_log_one_event_each() {
    let app = TestApp::new("evtools").await;
    let ann = first_user(&app, "ann").await;
    app.project(&ann, "proj", false).await;
    let a = app.browser(&ann).await;
    let token = app.token(&ann).await;
    let anon = Browser::anonymous();
    let mut mark = Mark::new(&app).await;

    // The wiki, through its forms.
    let saved = |res: common::Res| assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    saved(
        app.post_form("/p/proj/wiki/Guide/edit", &a, &edit_fields("one", "0"))
            .await,
    );
    let e = mark.one(&app, "wiki.page.create").await;
    assert_context(&e, Some("proj"), Some("wiki"), Some("ann"));
    assert_eq!(extra(&e).get_str("page").unwrap(), "Guide");
    saved(
        app.post_form("/p/proj/wiki/Guide/edit", &a, &edit_fields("two", "1"))
            .await,
    );
    let e = mark.one(&app, "wiki.page.edit").await;
    assert_context(&e, Some("proj"), Some("wiki"), Some("ann"));
    assert_eq!(extra(&e).get_i32("version").unwrap(), 2);
    saved(
        app.post_form("/p/proj/wiki/Guide/rename", &a, &[("name", "Manual")])
            .await,
    );
    let e = mark.one(&app, "wiki.page.rename").await;
    assert_eq!(extra(&e).get_str("page").unwrap(), "Manual");
    assert_eq!(extra(&e).get_str("from").unwrap(), "Guide");
    saved(app.post_form("/p/proj/wiki/Manual/delete", &a, &[]).await);
    let e = mark.one(&app, "wiki.page.delete").await;
    assert_context(&e, Some("proj"), Some("wiki"), Some("ann"));
    saved(app.post_form("/p/proj/wiki/Manual/undelete", &a, &[]).await);
    let e = mark.one(&app, "wiki.page.undelete").await;
    assert_eq!(extra(&e).get_str("page").unwrap(), "Manual");

    // The tracker, through REST.
    let call = |method: Method, path: &'static str, body: serde_json::Value| {
        let token = token.clone();
        let app = &app;
        async move {
            let res = app.api(method, path, Some(&token), Some(body)).await;
            assert!(res.status.is_success(), "{path}: {}", res.body);
        }
    };
    call(
        Method::POST,
        "/rest/p/proj/tickets/",
        json!({"summary": "Broken"}),
    )
    .await;
    let e = mark.one(&app, "tracker.ticket.open").await;
    assert_context(&e, Some("proj"), Some("tickets"), Some("ann"));
    assert_eq!(extra(&e).get_i64("ticket").unwrap(), 1);
    call(
        Method::PATCH,
        "/rest/p/proj/tickets/1",
        json!({"labels": ["bug"]}),
    )
    .await;
    let e = mark.one(&app, "tracker.ticket.change").await;
    assert_context(&e, Some("proj"), Some("tickets"), Some("ann"));
    assert_eq!(
        extra(&e).get_array("fields").unwrap(),
        &vec![Bson::String("labels".into())]
    );
    // Closing (with another field in the same edit) is a close, not also a change.
    call(
        Method::PATCH,
        "/rest/p/proj/tickets/1",
        json!({"status": "closed", "labels": ["bug", "ui"]}),
    )
    .await;
    let e = mark.one(&app, "tracker.ticket.close").await;
    assert_context(&e, Some("proj"), Some("tickets"), Some("ann"));
    assert_eq!(extra(&e).get_str("status").unwrap(), "closed");
    let fields: Vec<&str> = extra(&e)
        .get_array("fields")
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(fields.contains(&"status") && fields.contains(&"labels"));
    // Between closed statuses: a change.
    call(
        Method::PATCH,
        "/rest/p/proj/tickets/1",
        json!({"status": "wont-fix"}),
    )
    .await;
    mark.one(&app, "tracker.ticket.change").await;
    call(
        Method::PATCH,
        "/rest/p/proj/tickets/1",
        json!({"status": "open"}),
    )
    .await;
    let e = mark.one(&app, "tracker.ticket.reopen").await;
    assert_eq!(extra(&e).get_str("status").unwrap(), "open");
    // A comment is the discussion's post and the tracker's comment.
    call(
        Method::POST,
        "/rest/p/proj/tickets/1/comments",
        json!({"text": "Seen it too"}),
    )
    .await;
    let found = mark.take(&app).await;
    assert_eq!(
        types(&found),
        ["discussion.post", "tracker.ticket.comment"],
        "{found:#?}"
    );
    for e in &found {
        assert_context(e, Some("proj"), Some("tickets"), Some("ann"));
    }
    assert_eq!(extra(&found[1]).get_i64("ticket").unwrap(), 1);

    // Attachments: downloads of wiki and ticket files, pages and REST alike; not page views.
    let up = app
        .post_multipart(
            "/rest/p/proj/wiki/Manual/attachments",
            &anon,
            &[],
            ("notes.txt", b"some notes\n"),
            Some(&token),
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    let up = app
        .post_multipart(
            "/rest/p/proj/tickets/1/attachments",
            &anon,
            &[],
            ("trace.bin", b"\x00\x01\x02"),
            Some(&token),
        )
        .await;
    assert!(up.status.is_success(), "{}", up.body);
    mark.take(&app).await;
    let file = app
        .get("/p/proj/wiki/Manual/attachments/notes.txt", &anon)
        .await;
    assert_eq!(file.status, StatusCode::OK);
    assert_eq!(file.body, "some notes\n");
    let e = mark.one(&app, "attachment.download").await;
    assert_context(&e, Some("proj"), Some("wiki"), None);
    assert_eq!(extra(&e).get_str("file").unwrap(), "notes.txt");
    let file = app
        .api(
            Method::GET,
            "/rest/p/proj/tickets/1/attachments/trace.bin",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(file.status, StatusCode::OK);
    let e = mark.one(&app, "attachment.download").await;
    assert_context(&e, Some("proj"), Some("tickets"), Some("ann"));
    let file = app.get("/p/proj/tickets/1/attachments/trace.bin", &a).await;
    assert_eq!(file.status, StatusCode::OK);
    mark.one(&app, "attachment.download").await;
    // Missing files are not downloads.
    let missing = app
        .get("/p/proj/wiki/Manual/attachments/none.txt", &anon)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    mark.none(&app, "a missing attachment").await;
    assert_no_addresses(&app).await;
}

#[tokio::test]
async fn accounts_projects_and_tools_log_their_events() {
    let app = TestApp::new("evaccounts").await;
    first_user(&app, "first").await;
    let anon = Browser::anonymous();
    let mut mark = Mark::new(&app).await;
    let res = app
        .post_form(
            "/auth/signup",
            &anon,
            &[
                ("username", "zoe"),
                ("email", "zoe@example.org"),
                ("password", "long enough secret"),
                ("display_name", ""),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    // Signing up also logs the new account in.
    let found = mark.take(&app).await;
    assert_eq!(types(&found), ["user.login", "user.signup"], "{found:#?}");
    for e in &found {
        assert_context(e, None, None, Some("zoe"));
    }
    let res = app
        .post_form(
            "/auth/login",
            &anon,
            &[("username", "zoe"), ("password", "long enough secret")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let e = mark.one(&app, "user.login").await;
    assert_context(&e, None, None, Some("zoe"));

    let zoe = forge_tools::users::by_username(app.forge.db(), "zoe")
        .await
        .unwrap()
        .unwrap();
    let b = app.browser(&zoe).await;
    let res = app
        .post_form(
            "/p/add",
            &b,
            &[
                ("name", "Kite"),
                ("shortname", "kite"),
                ("summary", "Flies"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let e = mark.one(&app, "project.create").await;
    assert_context(&e, Some("kite"), None, Some("zoe"));
    let res = app
        .post_form(
            "/p/kite/admin/tools",
            &b,
            &[
                ("kind", "link"),
                ("label", "Homepage"),
                ("mount", "home"),
                ("url", "https://example.org/"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let e = mark.one(&app, "tool.install").await;
    assert_context(&e, Some("kite"), Some("home"), Some("zoe"));
    assert_eq!(extra(&e).get_str("kind").unwrap(), "link");
    let res = app
        .post_form("/p/kite/admin/tools/home/uninstall", &b, &[])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let e = mark.one(&app, "tool.uninstall").await;
    assert_context(&e, Some("kite"), Some("home"), Some("zoe"));
    let res = app.post_form("/p/kite/admin/delete", &b, &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let e = mark.one(&app, "project.delete").await;
    assert_context(&e, Some("kite"), None, Some("zoe"));
    assert_no_addresses(&app).await;
}

#[tokio::test]
async fn searches_are_counted_without_their_words() {
    let app = TestApp::new("evsearch").await;
    let alice = first_user(&app, "alice").await;
    let token = app.token(&alice).await;
    app.project(&alice, "garden", false).await;
    let bob = app.user("bob").await;
    app.project(&bob, "vault", true).await;
    let anon = Browser::anonymous();
    let mut mark = Mark::new(&app).await;
    let word = "zucchinifrobnicate";

    let page = app.get(&format!("/search?q={word}"), &anon).await;
    assert_eq!(page.status, StatusCode::OK);
    let e = mark.one(&app, "search.query").await;
    assert_context(&e, None, None, None);
    assert_eq!(extra(&e).get_i64("results").unwrap(), 0);
    assert!(!e.to_string().contains(word), "{e:#?}");

    // Through REST, limited to a project (and a tool of it).
    for (query, tool) in [
        (format!("q={word}&project=garden"), None),
        (format!("q={word}&project=garden&tool=wiki"), Some("wiki")),
    ] {
        let res = app
            .api(
                Method::GET,
                &format!("/rest/search?{query}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        let e = mark.one(&app, "search.query").await;
        assert_context(&e, Some("garden"), tool, Some("alice"));
        assert!(!e.to_string().contains(word), "{e:#?}");
    }
    // A project the searcher may not read is not named.
    let res = app
        .api(
            Method::GET,
            &format!("/rest/search?q={word}&project=vault"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let e = mark.one(&app, "search.query").await;
    assert_context(&e, None, None, Some("alice"));

    // No search, no event: the empty search page, and a refused query.
    assert_eq!(app.get("/search", &anon).await.status, StatusCode::OK);
    mark.none(&app, "the empty search page").await;
    let bad = app
        .api(Method::GET, "/rest/search?q=x&page=0", None, None)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    mark.none(&app, "a refused search").await;
    assert_eq!(app.count_events(doc! {"type": "search.query"}).await, 4);
    assert_no_addresses(&app).await;
}

/// Waits for the refresh of a push to log it: the events since the mark, once a `repo.push`
/// is among them.
async fn push_logged(app: &TestApp, mark: &mut Mark) -> Vec<Document> {
    let mut found = Vec::new();
    for _ in 0..400 {
        found.extend(mark.take(app).await);
        if types(&found).contains(&"repo.push") {
            // Whatever the refresh logs is recorded at once: flushed by now.
            found.extend(mark.take(app).await);
            return found;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no repo.push logged: {found:#?}");
}

#[tokio::test]
async fn clones_fetches_pushes_commits_and_downloads() {
    let app = TestApp::new("evgit").await;
    let ann = first_user(&app, "ann").await;
    app.project(&ann, "proj", false).await;
    let token = app.token(&ann).await;
    let base = app.base_url().await;
    let url = format!("{base}/git/p/proj/code.git");
    let push_url = format!(
        "{}//ann:{token}@{}/git/p/proj/code.git",
        &base[..5],
        &base[7..]
    );
    let git = Git::new();
    let home = git.home();
    git.ok(home, &["init", "-q", "src"]).await;
    let src = git.dir("src");
    git.commit(&src, "a.txt", "a\n", "first").await;
    let mut mark = Mark::new(&app).await;
    git.ok(&src, &["push", "-q", &push_url, "HEAD:main"]).await;
    let found = push_logged(&app, &mut mark).await;
    assert_eq!(types(&found), ["repo.commit", "repo.push"], "{found:#?}");

    // A clone: one `repo.clone`, whatever rounds it takes; anonymous, so a visitor.
    git.ok(home, &["clone", "-q", &url, "work"]).await;
    let e = mark.one(&app, "repo.clone").await;
    assert_context(&e, Some("proj"), Some("code"), None);
    // Listing the refs is not a clone.
    git.ok(home, &["ls-remote", &url]).await;
    mark.none(&app, "ls-remote").await;

    // A push of three commits: one push, three commits (with the ref they came in on).
    let mut shas = Vec::new();
    for i in 1..=3 {
        shas.push(
            git.commit(&src, "b.txt", &format!("{i}\n"), &format!("change {i}"))
                .await,
        );
    }
    git.ok(&src, &["push", "-q", &push_url, "HEAD:main"]).await;
    let found = push_logged(&app, &mut mark).await;
    assert_eq!(
        types(&found),
        ["repo.commit", "repo.commit", "repo.commit", "repo.push"],
        "{found:#?}"
    );
    let (commits, push) = found.split_at(3);
    assert_eq!(extra(&push[0]).get_i64("new_commits").unwrap(), 3);
    assert_eq!(extra(&push[0]).get_i64("commits_unlogged").unwrap(), 0);
    let mut logged: Vec<&str> = commits
        .iter()
        .map(|e| extra(e).get_str("commit").unwrap())
        .collect();
    logged.sort_unstable();
    shas.sort_unstable();
    assert_eq!(logged, shas);
    for e in &found {
        assert_context(e, Some("proj"), Some("code"), Some("ann"));
    }
    for e in commits {
        assert_eq!(extra(e).get_str("ref").unwrap(), "refs/heads/main");
        assert_eq!(extra(e).keys().count(), 2, "only the commit and its ref");
    }

    // The clone fetches them: one `repo.fetch` (it has history to negotiate from).
    let work = git.dir("work");
    git.ok(&work, &["fetch", "-q", "origin"]).await;
    let e = mark.one(&app, "repo.fetch").await;
    assert_context(&e, Some("proj"), Some("code"), None);
    // Up to date: nothing to fetch, nothing logged.
    git.ok(&work, &["fetch", "-q", "origin"]).await;
    mark.none(&app, "an up-to-date fetch").await;

    // Protocol v0 alike: a clone, then (after another push) a fetch.
    git.ok(
        home,
        &["-c", "protocol.version=0", "clone", "-q", &url, "old"],
    )
    .await;
    mark.one(&app, "repo.clone").await;
    git.commit(&src, "c.txt", "c\n", "another").await;
    git.ok(&src, &["push", "-q", &push_url, "HEAD:main"]).await;
    let found = push_logged(&app, &mut mark).await;
    assert_eq!(types(&found), ["repo.commit", "repo.push"]);
    git.ok(
        &git.dir("old"),
        &["-c", "protocol.version=0", "fetch", "-q", "origin"],
    )
    .await;
    mark.one(&app, "repo.fetch").await;

    // Raw files and archives: downloads, not page views; the browser's pages are views.
    let anon = Browser::anonymous();
    let raw = app.get("/p/proj/code/raw/main/a.txt", &anon).await;
    assert_eq!(raw.status, StatusCode::OK);
    assert_eq!(raw.body, "a\n");
    let e = mark.one(&app, "repo.raw").await;
    assert_context(&e, Some("proj"), Some("code"), None);
    assert_eq!(extra(&e).get_str("path").unwrap(), "a.txt");
    assert_eq!(extra(&e).get_str("ref").unwrap(), "main");
    let archive = app.get("/p/proj/code/archive/main.tar.gz", &anon).await;
    assert_eq!(archive.status, StatusCode::OK);
    let e = mark.one(&app, "repo.archive").await;
    assert_context(&e, Some("proj"), Some("code"), None);
    for path in ["/p/proj/code/blob/main/a.txt", "/p/proj/code/commits/main"] {
        let page = app.get(path, &anon).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        let e = mark.one(&app, "page.view").await;
        assert_context(&e, Some("proj"), Some("code"), None);
    }
    assert_eq!(app.count_events(doc! {"type": "repo.clone"}).await, 2);
    assert_eq!(app.count_events(doc! {"type": "repo.fetch"}).await, 2);
    assert_eq!(app.count_events(doc! {"type": "repo.push"}).await, 3);
    assert_eq!(app.count_events(doc! {"type": "repo.commit"}).await, 5);
    assert_no_addresses(&app).await;
}
