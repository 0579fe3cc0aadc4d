//! The forum through its REST API and domain on the real store: forums (admins create,
//! short names checked), topics and replies with their counters kept on write, threaded and
//! flat reading, sticky topics and announcements, closing, moving, deleting, blocking a user,
//! anonymous posts held for a moderator, private projects hidden, search and notifications.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use axum::http::{Method, StatusCode};
use common::{TestApp, viewer};
use forge_tools::acl::{Ace, Principal, Role};
use forge_tools::discussion::{self, Moderation};
use serde_json::{Value, json};

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let res = app.api(method, path, token, body).await;
    let v = serde_json::from_str(&res.body).unwrap_or(Value::Null);
    (res.status, v)
}

async fn topic(app: &TestApp, token: Option<&str>, path: &str, subject: &str, text: &str) -> Value {
    let (s, v) = call(
        app,
        Method::POST,
        path,
        token,
        Some(json!({"subject": subject, "text": text})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v
}

async fn reply(app: &TestApp, token: Option<&str>, path: &str, body: Value) -> (StatusCode, Value) {
    call(app, Method::POST, path, token, Some(body)).await
}

fn forum<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["forums"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["shortname"] == name)
        .unwrap_or_else(|| panic!("no forum {name} in {list}"))
}

fn subjects(v: &Value) -> Vec<String> {
    v["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["subject"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn forums_topics_and_replies_keep_their_counts() {
    let app = TestApp::new("forum-flow").await;
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    let (ta, tb) = (app.token(&ann).await, app.token(&bob).await);
    app.project(&ann, "talk", false).await;

    // Every new project has a forum tool with a general forum.
    let (s, list) = call(&app, Method::GET, "/rest/p/talk/discussion/", None, None).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    assert_eq!(forum(&list, "general")["num_topics"], 0);
    assert_eq!(
        forum(&list, "general")["posting_address"],
        format!(
            "general@discussion.talk.{}",
            app.forge.config().mail_domain()
        )
    );

    // Admins add forums; the short name is checked; others may not.
    let (s, v) = call(
        &app,
        Method::POST,
        "/rest/p/talk/discussion/",
        Some(&ta),
        Some(json!({"shortname": "help", "name": "Help", "description": "Ask here"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["url"], "/p/talk/discussion/help/");
    for bad in ["Help", "../x", "thread", ""] {
        let (s, v) = call(
            &app,
            Method::POST,
            "/rest/p/talk/discussion/",
            Some(&ta),
            Some(json!({"shortname": bad, "name": "X"})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
    }
    let (s, _) = call(
        &app,
        Method::POST,
        "/rest/p/talk/discussion/",
        Some(&ta),
        Some(json!({"shortname": "help", "name": "Again"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "a taken short name");
    let (s, _) = call(
        &app,
        Method::POST,
        "/rest/p/talk/discussion/",
        Some(&tb),
        Some(json!({"shortname": "bobs", "name": "Bob's"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // A topic, then replies: threaded and flat.
    let t = topic(
        &app,
        Some(&tb),
        "/rest/p/talk/discussion/help/",
        "How do I build it?",
        "It fails.",
    )
    .await;
    assert_eq!(t["status"], "ok");
    let tid = t["thread_id"].as_str().unwrap().to_owned();
    let first = t["post_id"].as_str().unwrap().to_owned();
    let thread = format!("/rest/p/talk/discussion/help/thread/{tid}/");
    let (s, a) = reply(&app, Some(&ta), &thread, json!({"text": "Which error?"})).await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    let (s, _) = reply(
        &app,
        Some(&tb),
        &thread,
        json!({"text": "Answering the first post", "parent": first}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, v) = reply(
        &app,
        Some(&tb),
        &thread,
        json!({"text": "x", "parent": "not-an-id"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    let (_, threaded) = call(&app, Method::GET, &thread, None, None).await;
    let texts = |v: &Value| -> Vec<String> {
        v["posts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["text"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        texts(&threaded),
        ["It fails.", "Answering the first post", "Which error?"]
    );
    let (_, flat) = call(
        &app,
        Method::GET,
        &format!("{thread}?order=flat"),
        None,
        None,
    )
    .await;
    assert_eq!(
        texts(&flat),
        ["It fails.", "Which error?", "Answering the first post"]
    );
    assert_eq!(threaded["thread"]["num_replies"], 2);
    assert_eq!(threaded["thread"]["subject"], "How do I build it?");
    assert_eq!(threaded["thread"]["last_author"], "bob");
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("{thread}?order=sideways"),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // The forum's counters were kept on write.
    let (_, list) = call(&app, Method::GET, "/rest/p/talk/discussion/", None, None).await;
    let help = forum(&list, "help");
    assert_eq!(help["num_topics"], 1);
    assert_eq!(help["num_posts"], 3);
    assert_eq!(help["last_post"]["author"], "bob");
    assert_eq!(help["last_post"]["thread_id"], tid.as_str());

    // A post deleted comes off the counts.
    let ctx = app.ctx_of(&ann, "talk").await;
    let tool = ctx.tool("discussion").unwrap().clone();
    let a_id = bson::oid::ObjectId::parse_str(a["post_id"].as_str().unwrap()).unwrap();
    discussion::delete_post(&app.forge, &viewer(&ann), &ctx, &tool, a_id)
        .await
        .unwrap();
    let (_, list) = call(&app, Method::GET, "/rest/p/talk/discussion/", None, None).await;
    assert_eq!(forum(&list, "help")["num_posts"], 2);
    let (_, v) = call(&app, Method::GET, &thread, None, None).await;
    assert_eq!(v["thread"]["num_replies"], 1);
}

#[tokio::test]
async fn sticky_announcements_close_move_delete_and_block() {
    let app = TestApp::new("forum-moderate").await;
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    let dev = app.user("dev").await;
    let (ta, tb, td) = (
        app.token(&ann).await,
        app.token(&bob).await,
        app.token(&dev).await,
    );
    let p = app.project(&ann, "mod", false).await;
    app.add_member(&p, &dev, Role::Developer).await;
    call(
        &app,
        Method::POST,
        "/rest/p/mod/discussion/",
        Some(&ta),
        Some(json!({"shortname": "news", "name": "News"})),
    )
    .await;
    let g = "/rest/p/mod/discussion/general/";
    let mut ids = Vec::new();
    for s in ["one", "two", "three"] {
        let t = topic(&app, Some(&tb), g, s, "text").await;
        ids.push(t["thread_id"].as_str().unwrap().to_owned());
    }
    let (_, v) = call(&app, Method::GET, g, None, None).await;
    assert_eq!(subjects(&v), ["three", "two", "one"], "by last activity");

    let m = |id: &str| format!("{g}thread/{id}/moderate");
    // Bob (no moderate permission) may not; a developer may.
    let (s, _) = reply(&app, Some(&tb), &m(&ids[0]), json!({"action": "sticky"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = reply(&app, Some(&td), &m(&ids[0]), json!({"action": "sticky"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["sticky"], true);
    let (_, v) = call(&app, Method::GET, g, None, None).await;
    assert_eq!(subjects(&v), ["one", "three", "two"], "sticky first");
    let (s, _) = reply(&app, Some(&td), &m(&ids[0]), json!({"action": "dance"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // An announcement shows atop every forum.
    reply(&app, Some(&td), &m(&ids[1]), json!({"action": "announce"})).await;
    let (_, v) = call(
        &app,
        Method::GET,
        "/rest/p/mod/discussion/news/",
        None,
        None,
    )
    .await;
    let ann_subjects: Vec<&str> = v["announcements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["subject"].as_str().unwrap())
        .collect();
    assert_eq!(ann_subjects, ["two"]);

    // Closed: no new posts (409), until reopened.
    reply(&app, Some(&td), &m(&ids[2]), json!({"action": "close"})).await;
    let t2 = format!("{g}thread/{}/", ids[2]);
    let (s, v) = reply(&app, Some(&tb), &t2, json!({"text": "late"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(v.to_string().contains("closed"), "{v}");
    reply(&app, Some(&td), &m(&ids[2]), json!({"action": "reopen"})).await;
    let (s, _) = reply(&app, Some(&tb), &t2, json!({"text": "in time"})).await;
    assert_eq!(s, StatusCode::CREATED);

    // Moved: to the other forum, with its counts.
    let (s, v) = reply(
        &app,
        Some(&td),
        &m(&ids[2]),
        json!({"action": "move", "forum": "news"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["forum"], "news");
    let (s, _) = reply(
        &app,
        Some(&td),
        &m(&ids[1]),
        json!({"action": "move", "forum": "nowhere"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, list) = call(&app, Method::GET, "/rest/p/mod/discussion/", None, None).await;
    assert_eq!(forum(&list, "general")["num_topics"], 2);
    assert_eq!(forum(&list, "general")["num_posts"], 2);
    assert_eq!(forum(&list, "news")["num_topics"], 1);
    assert_eq!(forum(&list, "news")["num_posts"], 2);
    assert_eq!(forum(&list, "news")["last_post"]["subject"], "three");
    let (_, v) = call(
        &app,
        Method::GET,
        "/rest/p/mod/discussion/news/",
        None,
        None,
    )
    .await;
    assert_eq!(subjects(&v), ["three"]);

    // Deleted: gone from lists and counts, and from readers.
    reply(&app, Some(&td), &m(&ids[0]), json!({"action": "delete"})).await;
    let (_, v) = call(&app, Method::GET, g, None, None).await;
    assert_eq!(subjects(&v), ["two"]);
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("{g}thread/{}/", ids[0]),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, list) = call(&app, Method::GET, "/rest/p/mod/discussion/", None, None).await;
    assert_eq!(forum(&list, "general")["num_topics"], 1);

    // Blocked: bob's posts are refused everywhere in the tool until unblocked.
    let (s, v) = reply(
        &app,
        Some(&td),
        "/rest/p/mod/discussion/_block",
        json!({"username": "bob"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["blocked"], json!(["bob"]));
    let t1 = format!("{g}thread/{}/", ids[1]);
    let (s, _) = reply(&app, Some(&tb), &t1, json!({"text": "blocked?"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = call(
        &app,
        Method::POST,
        g,
        Some(&tb),
        Some(json!({"subject": "s", "text": "t"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Others still post; bob still reads.
    let (s, _) = reply(&app, Some(&ta), &t1, json!({"text": "ann posts"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = call(&app, Method::GET, &t1, Some(&tb), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = reply(
        &app,
        Some(&td),
        "/rest/p/mod/discussion/_block",
        json!({"username": "bob", "blocked": false}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["blocked"], json!([]));
    let (s, _) = reply(&app, Some(&tb), &t1, json!({"text": "back"})).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = reply(
        &app,
        Some(&td),
        "/rest/p/mod/discussion/_block",
        json!({"username": "nobody"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn anonymous_topics_wait_for_a_moderator() {
    let app = TestApp::new("forum-pending").await;
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    let (ta, tb) = (app.token(&ann).await, app.token(&bob).await);
    app.project(&ann, "open", false).await;
    let g = "/rest/p/open/discussion/general/";
    // Off by default.
    let (s, _) = call(
        &app,
        Method::POST,
        g,
        None,
        Some(json!({"subject": "hi", "text": "anon"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let ctx = app.ctx_of(&ann, "open").await;
    let tool = ctx.tool("discussion").unwrap().clone();
    forge_tools::instances::prepend_ace(
        app.forge.db(),
        tool.id,
        &Ace::allow(Principal::Anonymous, discussion::perm::POST),
    )
    .await
    .unwrap();
    let t = topic(&app, None, g, "From nobody", "anonymous text").await;
    assert_eq!(t["status"], "pending");
    let tid = t["thread_id"].as_str().unwrap().to_owned();
    // Invisible to others (list, topic) until approved; the counts do not move.
    let (_, v) = call(&app, Method::GET, g, Some(&tb), None).await;
    assert!(subjects(&v).is_empty(), "{v}");
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("{g}thread/{tid}/"),
        Some(&tb),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = call(
        &app,
        Method::GET,
        &format!("{g}thread/{tid}/"),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "moderators see it: {v}");
    assert_eq!(v["thread"]["status"], "pending");
    let (_, list) = call(&app, Method::GET, "/rest/p/open/discussion/", None, None).await;
    assert_eq!(forum(&list, "general")["num_topics"], 0);

    // A moderator's answer to the held topic does not publish it.
    let (s, _) = reply(
        &app,
        Some(&ta),
        &format!("{g}thread/{tid}/"),
        json!({"text": "looking"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, v) = call(&app, Method::GET, g, Some(&tb), None).await;
    assert!(subjects(&v).is_empty(), "still held: {v}");
    let (_, list) = call(&app, Method::GET, "/rest/p/open/discussion/", None, None).await;
    assert_eq!(forum(&list, "general")["num_topics"], 0);

    let ctx = app.ctx_of(&ann, "open").await;
    let tool = ctx.tool("discussion").unwrap().clone();
    let post = bson::oid::ObjectId::parse_str(t["post_id"].as_str().unwrap()).unwrap();
    let n = discussion::moderate(
        &app.forge,
        &viewer(&ann),
        &ctx,
        &tool,
        &[post],
        Moderation::Approve,
    )
    .await
    .unwrap();
    assert_eq!(n, 1);
    let (_, v) = call(&app, Method::GET, g, Some(&tb), None).await;
    assert_eq!(subjects(&v), ["From nobody"]);
    let (_, list) = call(&app, Method::GET, "/rest/p/open/discussion/", None, None).await;
    assert_eq!(forum(&list, "general")["num_topics"], 1);
    assert_eq!(
        forum(&list, "general")["num_posts"],
        2,
        "with the moderator's answer"
    );
}

#[tokio::test]
async fn hiding_a_forum_takes_its_topics_out_of_search_and_feeds() {
    let app = TestApp::new("forum-hide").await;
    let ann = app.user("ann").await;
    let ta = app.token(&ann).await;
    app.project(&ann, "shy", false).await;
    topic(
        &app,
        Some(&ta),
        "/rest/p/shy/discussion/general/",
        "Quarterly numbers",
        "platypus figures",
    )
    .await;
    app.tasks_done("search.index").await;
    app.forge.events().flush().await;
    let found = |token: Option<String>| {
        let app = &app;
        async move {
            let (_, v) = call(
                app,
                Method::GET,
                "/rest/search?q=platypus",
                token.as_deref(),
                None,
            )
            .await;
            v["total"].as_u64().unwrap()
        }
    };
    let feed = || async {
        app.get("/p/shy/feed.atom", &common::Browser::anonymous())
            .await
            .body
    };
    assert_eq!(found(None).await, 1);
    assert!(feed().await.contains("Quarterly numbers"));

    let ctx = app.ctx_of(&ann, "shy").await;
    let tool = ctx.tool("discussion").unwrap().clone();
    forge_tools::tools::forum::forums::update(
        &app.forge,
        &viewer(&ann),
        &ctx,
        &tool,
        "general",
        forge_tools::tools::forum::forums::ForumUpdate {
            name: "General".into(),
            description: String::new(),
            hidden: true,
            unknown_senders: Default::default(),
        },
    )
    .await
    .unwrap();
    app.tasks_done("search.index").await;
    assert_eq!(found(None).await, 0, "anonymous no longer finds it");
    assert_eq!(found(Some(ta.clone())).await, 1, "its moderators still do");
    assert!(
        !feed().await.contains("Quarterly numbers"),
        "nor reads it in the feed"
    );
}

#[tokio::test]
async fn private_forums_stay_private_and_search_finds_posts() {
    let app = TestApp::new("forum-private").await;
    let ann = app.user("ann").await;
    let eve = app.user("eve").await;
    let (ta, te) = (app.token(&ann).await, app.token(&eve).await);
    app.project(&ann, "secret", true).await;
    app.project(&ann, "public", false).await;
    topic(
        &app,
        Some(&ta),
        "/rest/p/secret/discussion/general/",
        "Hidden plans",
        "zanzibar quokka",
    )
    .await;
    topic(
        &app,
        Some(&ta),
        "/rest/p/public/discussion/general/",
        "Open plans",
        "zanzibar wombat",
    )
    .await;
    for path in [
        "/rest/p/secret/discussion/",
        "/rest/p/secret/discussion/general/",
    ] {
        for token in [None, Some(te.as_str())] {
            let (s, _) = call(&app, Method::GET, path, token, None).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{path}");
        }
    }
    let (s, _) = call(
        &app,
        Method::POST,
        "/rest/p/secret/discussion/general/",
        Some(&te),
        Some(json!({"subject": "in", "text": "let me"})),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    app.tasks_done("search.index").await;
    let search = |token: Option<String>| {
        let app = &app;
        async move {
            let (_, v) = call(
                app,
                Method::GET,
                "/rest/search?q=zanzibar",
                token.as_deref(),
                None,
            )
            .await;
            v["hits"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|r| r["title"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let mut mine = search(Some(ta.clone())).await;
    mine.sort();
    assert_eq!(mine, ["Hidden plans", "Open plans"]);
    assert_eq!(search(Some(te.clone())).await, ["Open plans"]);
    assert_eq!(search(None).await, ["Open plans"]);
}

#[tokio::test]
async fn watchers_of_a_forum_and_topic_authors_hear_of_posts() {
    let app = TestApp::new("forum-notify").await;
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    let carol = app.user("carol").await;
    let (ta, tb) = (app.token(&ann).await, app.token(&bob).await);
    app.project(&ann, "loud", false).await;
    // Carol watches the general forum.
    let ctx = app.ctx_of(&carol, "loud").await;
    let tool = ctx.tool("discussion").unwrap().clone();
    let general = forge_tools::tools::forum::forums::get(&app.forge, &ctx, &tool, "general")
        .await
        .unwrap();
    forge_tools::notify::watch(
        &app.forge,
        &viewer(&carol),
        &ctx,
        forge_tools::notify::Target::Artifact {
            tool: &tool,
            key: general.key(),
            title: "forum General".into(),
        },
    )
    .await
    .unwrap();
    let t = topic(
        &app,
        Some(&tb),
        "/rest/p/loud/discussion/general/",
        "Bob asks",
        "question text",
    )
    .await;
    app.tasks_done("notify.change").await;
    let to = |who: &str| {
        app.mails()
            .into_iter()
            .filter(|m| m.contains(&format!("{who}@example.org")))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        to("carol").len(),
        1,
        "the forum's watcher hears of the new topic"
    );
    assert!(to("carol")[0].contains("Bob asks"));
    assert!(to("bob").is_empty(), "not of her own post");

    let tid = t["thread_id"].as_str().unwrap();
    reply(
        &app,
        Some(&ta),
        &format!("/rest/p/loud/discussion/general/thread/{tid}/"),
        json!({"text": "ann answers"}),
    )
    .await;
    app.tasks_done("notify.change").await;
    assert_eq!(to("bob").len(), 1, "the topic's author hears of replies");
    assert_eq!(to("carol").len(), 2, "and the forum's watcher");
    assert!(to("ann").is_empty());
}

#[tokio::test]
async fn watchers_hear_only_of_what_they_may_see() {
    let app = TestApp::new("forum-notify-private").await;
    let ann = app.user("ann").await;
    let carol = app.user("carol").await;
    let dev = app.user("dev").await;
    let ta = app.token(&ann).await;
    let p = app.project(&ann, "quiet", false).await;
    app.add_member(&p, &dev, Role::Developer).await;
    // Carol (no role) and a developer watch the forum tool and the tracker.
    for who in [&carol, &dev] {
        let ctx = app.ctx_of(who, "quiet").await;
        for mount in ["discussion", "tickets"] {
            let tool = ctx.tool(mount).unwrap().clone();
            forge_tools::notify::watch(
                &app.forge,
                &viewer(who),
                &ctx,
                forge_tools::notify::Target::Tool(&tool),
            )
            .await
            .unwrap();
        }
    }
    // A hidden forum (moderators only) and a private ticket, each with a post by ann.
    call(
        &app,
        Method::POST,
        "/rest/p/quiet/discussion/",
        Some(&ta),
        Some(json!({"shortname": "staff", "name": "Staff"})),
    )
    .await;
    let ctx = app.ctx_of(&ann, "quiet").await;
    let tool = ctx.tool("discussion").unwrap().clone();
    forge_tools::tools::forum::forums::update(
        &app.forge,
        &viewer(&ann),
        &ctx,
        &tool,
        "staff",
        forge_tools::tools::forum::forums::ForumUpdate {
            name: "Staff".into(),
            description: String::new(),
            hidden: true,
            unknown_senders: Default::default(),
        },
    )
    .await
    .unwrap();
    topic(
        &app,
        Some(&ta),
        "/rest/p/quiet/discussion/staff/",
        "Salaries",
        "hidden words",
    )
    .await;
    let (s, _) = call(
        &app,
        Method::POST,
        "/rest/p/quiet/tickets/",
        Some(&ta),
        Some(json!({"summary": "Vulnerability", "private": true})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = call(
        &app,
        Method::POST,
        "/rest/p/quiet/tickets/1/comments",
        Some(&ta),
        Some(json!({"text": "secret comment words"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    app.tasks_done("notify.change").await;
    let to = |who: &str| -> Vec<String> {
        app.mails()
            .into_iter()
            .filter(|m| m.contains(&format!("To: {who}@example.org")))
            .collect()
    };
    for m in to("carol") {
        assert!(
            !m.contains("hidden words") && !m.contains("Salaries"),
            "{m}"
        );
        assert!(
            !m.contains("secret comment") && !m.contains("Vulnerability"),
            "{m}"
        );
    }
    let dev_mails = to("dev").join("\n");
    assert!(
        dev_mails.contains("Salaries"),
        "moderators hear of the hidden forum"
    );
    assert!(
        dev_mails.contains("secret comment words"),
        "developers hear of the private ticket"
    );
}

#[tokio::test]
async fn removed_posts_give_back_the_last_post_and_an_empty_topic_leaves_the_list() {
    let app = TestApp::new("forum-removed").await;
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    let (ta, tb) = (app.token(&ann).await, app.token(&bob).await);
    app.project(&ann, "open", false).await;
    let g = "/rest/p/open/discussion/general/";
    let last_of = |list: &Value, subject: &str| {
        list["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["subject"] == subject)
            .unwrap_or_else(|| panic!("no {subject} in {list}"))["last_author"]
            .clone()
    };
    let general = || async {
        let (_, list) = call(&app, Method::GET, "/rest/p/open/discussion/", None, None).await;
        forum(&list, "general").clone()
    };
    let ctx = app.ctx_of(&ann, "open").await;
    let tool = ctx.tool("discussion").unwrap().clone();
    let moderate = |post: &str, action: Moderation| {
        let (app, ctx, tool, ann) = (&app, &ctx, &tool, &ann);
        let post = bson::oid::ObjectId::parse_str(post).unwrap();
        async move {
            let n = discussion::moderate(&app.forge, &viewer(ann), ctx, tool, &[post], action)
                .await
                .unwrap();
            assert_eq!(n, 1);
        }
    };

    let t = topic(&app, Some(&ta), g, "Roadmap", "What comes next.").await;
    let tid = t["thread_id"].as_str().unwrap().to_owned();
    let (s, r) = reply(
        &app,
        Some(&tb),
        &format!("{g}thread/{tid}/"),
        json!({"text": "Buy cheap watches"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let (_, list) = call(&app, Method::GET, g, None, None).await;
    assert_eq!(last_of(&list, "Roadmap"), "bob");
    assert_eq!(general().await["last_post"]["author"], "bob");

    // The last post found to be spam: the topic's and the forum's last post are the one
    // before again.
    moderate(r["post_id"].as_str().unwrap(), Moderation::Spam).await;
    let (_, list) = call(&app, Method::GET, g, None, None).await;
    assert_eq!(last_of(&list, "Roadmap"), "ann", "{list}");
    let f = general().await;
    assert_eq!(f["last_post"]["author"], "ann", "{f}");
    assert_eq!(f["num_posts"], 1);

    // A topic whose only post is spam is listed no more (but to moderators by address).
    let s = topic(&app, Some(&tb), g, "Cheap pills", "Buy now").await;
    let (sid, spost) = (
        s["thread_id"].as_str().unwrap().to_owned(),
        s["post_id"].as_str().unwrap().to_owned(),
    );
    assert_eq!(general().await["num_topics"], 2);
    assert_eq!(general().await["last_post"]["subject"], "Cheap pills");
    moderate(&spost, Moderation::Spam).await;
    let tc = app.token(&app.user("carol").await).await;
    for token in [None, Some(tb.as_str()), Some(tc.as_str())] {
        let (_, list) = call(&app, Method::GET, g, token, None).await;
        assert_eq!(subjects(&list), ["Roadmap"], "{list}");
    }
    for token in [None, Some(tc.as_str())] {
        let (s, _) = call(&app, Method::GET, &format!("{g}thread/{sid}/"), token, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
    let f = general().await;
    assert_eq!(f["num_topics"], 1, "{f}");
    assert_eq!(f["num_posts"], 1, "{f}");
    assert_eq!(f["last_post"]["subject"], "Roadmap", "{f}");
    let (s, _) = call(
        &app,
        Method::GET,
        &format!("{g}thread/{sid}/"),
        Some(&ta),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "moderators still reach it");

    // Approved after all: listed again, counted again.
    moderate(&spost, Moderation::Approve).await;
    let (_, list) = call(&app, Method::GET, g, None, None).await;
    assert_eq!(subjects(&list), ["Cheap pills", "Roadmap"], "{list}");
    let f = general().await;
    assert_eq!(
        (f["num_topics"].clone(), f["num_posts"].clone()),
        (json!(2), json!(2))
    );
}

#[tokio::test]
async fn hiding_a_forum_changes_its_activity_in_a_few_indexed_updates() {
    let app = TestApp::new("forum-hide-batch").await;
    let ann = app.user("ann").await;
    let ta = app.token(&ann).await;
    app.project(&ann, "shy", false).await;
    let g = "/rest/p/shy/discussion/general/";
    let mut topics = Vec::new();
    for n in 0..3 {
        let t = topic(&app, Some(&ta), g, &format!("Topic {n}"), "text").await;
        topics.push(t["thread_id"].as_str().unwrap().to_owned());
    }
    let ctx = app.ctx_of(&ann, "shy").await;
    let tool = ctx.tool("discussion").unwrap().clone();
    let deleted = bson::oid::ObjectId::parse_str(&topics[0]).unwrap();
    forge_tools::tools::forum::moderation::topic(
        &app.forge,
        &viewer(&ann),
        &ctx,
        &tool,
        deleted,
        forge_tools::tools::forum::moderation::TopicAction::Delete,
    )
    .await
    .unwrap();
    app.forge.events().flush().await;
    app.tasks_done("search.index").await;
    let hide = |hidden: bool| {
        let (app, ctx, tool, ann) = (&app, &ctx, &tool, &ann);
        async move {
            forge_tools::tools::forum::forums::update(
                &app.forge,
                &viewer(ann),
                ctx,
                tool,
                "general",
                forge_tools::tools::forum::forums::ForumUpdate {
                    name: "General".into(),
                    description: String::new(),
                    hidden,
                    unknown_senders: Default::default(),
                },
            )
            .await
            .unwrap();
        }
    };
    let restricted = |key: String| {
        app.count(
            "activity",
            bson::doc! {"extra.artifact": format!("topic:{key}"), "extra.restricted": {"$exists": true}},
        )
    };

    let since = app.profile().await;
    hide(true).await;
    // One update per group of topics (those deleted, the others), not one per topic, each
    // through an index; the event log is not touched.
    let updates: Vec<_> = app
        .updates("activity", since)
        .await
        .into_iter()
        .filter(|q| q.contains_key("extra.artifact"))
        .collect();
    assert_eq!(updates.len(), 2, "{updates:?}");
    for q in updates {
        assert!(app.indexed("activity", q.clone()).await, "{q}");
    }
    assert!(app.updates("events", since).await.is_empty());
    for key in &topics {
        assert_eq!(restricted(key.clone()).await, 1, "topic {key}");
    }

    // Shown again: the deleted topic stays for moderators.
    hide(false).await;
    assert_eq!(restricted(topics[0].clone()).await, 1);
    assert_eq!(restricted(topics[1].clone()).await, 0);
    assert_eq!(restricted(topics[2].clone()).await, 0);
}
