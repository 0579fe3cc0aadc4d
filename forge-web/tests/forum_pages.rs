//! The forum's pages, as people with browsers use them, on the real store: forums added on
//! the settings page (a bad short name refused by its field), topics started and answered,
//! the discussion section's remembered order, quoting, preview and permalinks into long
//! threads, moderators' sticky, announcement, close, move and block, anonymous posting
//! waiting for a moderator, and hostile text that never comes back unescaped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{Browser, Res, TestApp, decode, flash, thread_ref, viewer};
use forge_tools::acl::Role;
use forge_tools::discussion::{self, NewPost};
use forge_tools::tools::forum::forums;
use forge_tools::tools::forum::model::Topic;
use forge_tools::tools::forum::topics::{self, NewTopic};
use forge_tools::users::User;

const BASE: &str = "/p/proj/discussion/";

/// Posts a reply through the section's form.
async fn reply(app: &TestApp, b: &Browser, r: &HashMap<&'static str, String>, text: &str) -> Res {
    let mut fields: Vec<(&str, &str)> = r.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fields.push(("text", text));
    fields.push((discussion::HONEYPOT, ""));
    app.post_form(&format!("{BASE}_discuss/new"), b, &fields)
        .await
}

/// `proj` (public) owned by ann, bob a member, dave a developer.
async fn setup(label: &str) -> (TestApp, User, User, User) {
    let app = TestApp::new(label).await;
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    let dave = app.user("dave").await;
    let project = app.project(&ann, "proj", false).await;
    app.add_member(&project, &bob, Role::Member).await;
    app.add_member(&project, &dave, Role::Developer).await;
    (app, ann, bob, dave)
}

/// Starts a topic through the domain (for setting the scene quickly).
async fn seed(app: &TestApp, u: &User, forum: &str, subject: &str, text: &str) -> Topic {
    let ctx = app.ctx_of(u, "proj").await;
    let tool = ctx.tool("discussion").unwrap().clone();
    let f = forums::get(&app.forge, &ctx, &tool, forum).await.unwrap();
    let new = NewTopic {
        subject: subject.into(),
        text: text.into(),
        honeypot: None,
    };
    topics::create(&app.forge, &viewer(u), &ctx, &tool, &f, new)
        .await
        .unwrap()
        .0
}

/// Replies through the domain; the post's id.
async fn seed_reply(app: &TestApp, u: &User, topic: &Topic, text: &str) -> String {
    let ctx = app.ctx_of(u, "proj").await;
    let tool = ctx.tool("discussion").unwrap().clone();
    let new = NewPost {
        text: text.into(),
        ..NewPost::default()
    };
    topics::reply(&app.forge, &viewer(u), &ctx, &tool, topic, new)
        .await
        .unwrap()
        .id
        .to_hex()
}

fn topic_url(forum: &str, t: &Topic) -> String {
    format!("{BASE}{forum}/thread/{}/", t.id.to_hex())
}

async fn add_forum(app: &TestApp, b: &Browser, shortname: &str, name: &str, desc: &str) -> Res {
    app.post_form(
        &format!("{BASE}_admin"),
        b,
        &[
            ("op", "add"),
            ("shortname", shortname),
            ("name", name),
            ("description", desc),
        ],
    )
    .await
}

#[tokio::test]
async fn forums_topics_and_replies_through_the_pages() {
    let (app, ann, bob, _dave) = setup("forumpages").await;
    let (a, b) = (app.browser(&ann).await, app.browser(&bob).await);

    // The admin adds a forum; a bad short name is refused by its field, the rest kept.
    let bad = add_forum(&app, &a, "Bad Name", "Kept name", "").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.body
            .contains("Short name may contain only lowercase letters")
    );
    assert!(bad.body.contains("value=\"Kept name\""));
    let added = add_forum(&app, &a, "dev", "Development", "Hacking on it").await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    let admin = app.get(&format!("{BASE}_admin"), &a).await;
    assert_eq!(admin.status, StatusCode::OK);
    assert!(admin.body.contains("admin-dev"));
    // Members may not reach the settings.
    assert_eq!(
        app.get(&format!("{BASE}_admin"), &b).await.status,
        StatusCode::FORBIDDEN
    );

    let index = app.get(BASE, &b).await;
    assert_eq!(index.status, StatusCode::OK);
    assert!(index.body.contains("General Discussion"));
    assert!(index.body.contains("Development"));
    assert!(index.body.contains("Hacking on it"));
    assert!(index.body.contains("rel=\"alternate\""));
    assert!(index.body.contains(&format!("{BASE}general/new")));
    assert!(
        !index.body.contains("_admin\""),
        "no settings link for members"
    );
    assert!(
        app.get(BASE, &a)
            .await
            .body
            .contains(&format!("{BASE}_admin"))
    );

    // Starting a topic: a refused form keeps the text.
    let form = app.get(&format!("{BASE}general/new"), &b).await;
    assert_eq!(form.status, StatusCode::OK);
    let refused = app
        .post_form(
            &format!("{BASE}general/new"),
            &b,
            &[
                ("subject", " "),
                ("text", "Kept text"),
                (discussion::HONEYPOT, ""),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.body.contains("Give the topic a subject"));
    assert!(refused.body.contains("Kept text"));
    // A preview saves nothing.
    let preview = app
        .post_form(
            &format!("{BASE}general/new"),
            &b,
            &[
                ("subject", "Hello"),
                ("text", "Some **bold** words"),
                ("preview", "1"),
                (discussion::HONEYPOT, ""),
            ],
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(preview.body.contains("<strong>bold</strong>"));
    assert_eq!(app.count("forum_topics", bson::doc! {}).await, 0);
    let created = app
        .post_form(
            &format!("{BASE}general/new"),
            &b,
            &[
                ("subject", "Hello forum"),
                ("text", "My first words"),
                (discussion::HONEYPOT, ""),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let url = created.location().to_owned();
    assert!(url.starts_with(&format!("{BASE}general/thread/")), "{url}");
    let page = app.get(&url, &a).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Hello forum"));
    assert!(page.body.contains("My first words"));
    assert!(page.body.contains("Watch forum"));

    // A reply through the section.
    let r = thread_ref(&page);
    let res = reply(&app, &a, &r, "Welcome aboard").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert!(app.get(&url, &b).await.body.contains("Welcome aboard"));

    let forum = app.get(&format!("{BASE}general/"), &b).await;
    assert_eq!(forum.status, StatusCode::OK);
    assert!(forum.body.contains("Hello forum"));
    assert!(forum.body.contains("general@discussion.proj."));
    let index = app.get(BASE, &b).await;
    assert!(index.body.contains("by ann"), "last post shown");

    // Watching a forum.
    let watch = app
        .post_form(&format!("{BASE}general/watch"), &b, &[("action", "watch")])
        .await;
    assert_eq!(watch.status, StatusCode::SEE_OTHER);
    assert!(
        app.get(&format!("{BASE}general/"), &b)
            .await
            .body
            .contains("Unwatch forum")
    );
}

/// The browser's cookies plus one more.
async fn get_with_cookie(app: &TestApp, path: &str, b: &Browser, extra: &str) -> Res {
    let mut c = format!("forge_csrf={}", b.csrf);
    if let Some(s) = &b.session {
        c.push_str(&format!("; forge_session={s}"));
    }
    c.push_str(&format!("; {extra}"));
    let req = Request::get(path)
        .header(header::COOKIE, c)
        .body(Body::empty())
        .unwrap();
    app.send(req, None).await
}

#[tokio::test]
async fn order_quote_preview_and_permalinks() {
    let (app, ann, bob, _dave) = setup("forumsection").await;
    let b = app.browser(&bob).await;
    let topic = seed(&app, &ann, "general", "Long one", "Opening words").await;
    let url = topic_url("general", &topic);
    let quoted = seed_reply(&app, &bob, &topic, "First line\nSecond line").await;

    // The order link remembers the choice in a cookie.
    let page = app.get(&url, &b).await;
    assert!(page.body.contains("<strong>Threaded</strong>"));
    let order = format!(
        "{BASE}_discuss/order?{}",
        serde_urlencoded::to_string([("posts", "flat"), ("back", url.as_str())]).unwrap()
    );
    assert!(
        page.body.contains(&order.replace('&', "&#38;")),
        "{}",
        page.body
    );
    let chosen = app.get(&order, &b).await;
    assert_eq!(chosen.status, StatusCode::SEE_OTHER);
    assert_eq!(chosen.location(), format!("{url}?posts=flat#discussion"));
    assert_eq!(chosen.set_cookie("forge_posts").as_deref(), Some("flat"));
    let remembered = get_with_cookie(&app, &url, &b, "forge_posts=flat").await;
    assert!(remembered.body.contains("<strong>Flat</strong>"));
    // An order in the address wins over the cookie.
    let asked = get_with_cookie(
        &app,
        &format!("{url}?posts=threaded"),
        &b,
        "forge_posts=flat",
    )
    .await;
    assert!(asked.body.contains("<strong>Threaded</strong>"));
    // Elsewhere than this tool: back to the tool.
    let away = app
        .get(
            &format!("{BASE}_discuss/order?posts=flat&back=https://evil.example/"),
            &b,
        )
        .await;
    assert_eq!(away.location(), format!("{BASE}?posts=flat#discussion"));
    // A line break in `back` (header splitting) is no page of this tool either.
    let split = app
        .get(
            &format!("{BASE}_discuss/order?posts=flat&back={BASE}%0d%0aSet-Cookie:%20x=1"),
            &b,
        )
        .await;
    assert_eq!(split.status, StatusCode::SEE_OTHER);
    assert_eq!(split.location(), format!("{BASE}?posts=flat#discussion"));

    // Quote: the form answers the post, its text quoted.
    let q = app.get(&format!("{url}?quote={quoted}"), &b).await;
    assert!(
        decode(&q.body).contains("> First line\n> Second line\n"),
        "{}",
        q.body
    );
    assert!(
        q.body
            .contains(&format!("name=\"parent\" value=\"{quoted}\""))
    );
    assert!(q.body.contains("Quote</a>"));

    // Preview: rendered, nothing saved, the text kept.
    let r = thread_ref(&page);
    let mut fields: Vec<(&str, &str)> = r.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fields.push(("text", "A **previewed** reply <script>bad()</script>"));
    let before = app.count("discussion_posts", bson::doc! {}).await;
    let pv = app
        .post_form(&format!("{BASE}_discuss/preview"), &b, &fields)
        .await;
    assert_eq!(pv.status, StatusCode::OK, "{}", pv.body);
    assert!(pv.body.contains("<strong>previewed</strong>"));
    assert!(!pv.body.contains("<script>bad()"));
    assert!(pv.body.contains("A **previewed** reply"), "text kept");
    assert_eq!(app.count("discussion_posts", bson::doc! {}).await, before);
    // Without the CSRF token: refused.
    let forged = app
        .post_raw(&format!("{BASE}_discuss/preview"), &b, &fields)
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // Permalinks into a long thread: post 60 of 70 is on page 2.
    let mut ids = vec![topic.first_post.unwrap().to_hex(), quoted.clone()];
    for i in 3..=70 {
        ids.push(seed_reply(&app, &ann, &topic, &format!("Reply number {i:02}.")).await);
    }
    let target = &ids[59];
    let page = app.get(&format!("{url}?post={target}"), &b).await;
    assert!(page.body.contains("page 2 of 2"), "{}", page.body);
    assert!(page.body.contains(&format!("id=\"post-{target}\"")));
    assert!(page.body.contains("Reply number 60."));
    assert!(
        page.body
            .contains(&format!("{url}?post={target}#post-{target}"))
    );
    let first = app.get(&format!("{url}?post={}", ids[10]), &b).await;
    assert!(first.body.contains("page 1 of 2"));
    // A post not in the thread: the page asked for, no error.
    let none = app
        .get(&format!("{url}?post=0123456789abcdef01234567"), &b)
        .await;
    assert_eq!(none.status, StatusCode::OK);
    assert!(none.body.contains("page 1 of 2"));
}

#[tokio::test]
async fn moderators_sticky_announce_close_move_and_block() {
    let (app, ann, bob, dave) = setup("forummod").await;
    let (b, d) = (app.browser(&bob).await, app.browser(&dave).await);
    let a = app.browser(&ann).await;
    assert_eq!(
        add_forum(&app, &a, "dev", "Development", "").await.status,
        StatusCode::SEE_OTHER
    );
    let older = seed(&app, &bob, "general", "Older topic", "old").await;
    let newer = seed(&app, &bob, "general", "Newer topic", "new").await;
    let moderate = |t: &Topic| format!("{}moderate", topic_url("general", t));

    // Members have no controls and may not use them.
    let page = app.get(&topic_url("general", &older), &b).await;
    assert!(!page.body.contains("Moderate this topic"));
    let refused = app
        .post_form(&moderate(&older), &b, &[("action", "sticky")])
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Sticky first.
    let list = app.get(&format!("{BASE}general/"), &b).await.body;
    assert!(list.find("Newer topic").unwrap() < list.find("Older topic").unwrap());
    let res = app
        .post_form(&moderate(&older), &d, &[("action", "sticky")])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(flash(&res), "The topic is sticky.");
    let list = app.get(&format!("{BASE}general/"), &b).await.body;
    assert!(list.find("Older topic").unwrap() < list.find("Newer topic").unwrap());
    assert!(list.contains("badge-sticky"));

    // An announcement shows on every forum.
    app.post_form(&moderate(&newer), &d, &[("action", "announce")])
        .await;
    let dev = app.get(&format!("{BASE}dev/"), &b).await.body;
    assert!(dev.contains("Announcements"));
    assert!(dev.contains("Newer topic"));
    assert!(app.get(BASE, &b).await.body.contains("Newer topic"));

    // Closed: no form, and a reply is refused with a message.
    let r = thread_ref(&app.get(&topic_url("general", &older), &b).await);
    app.post_form(&moderate(&older), &d, &[("action", "close")])
        .await;
    let page = app.get(&topic_url("general", &older), &b).await;
    assert!(page.body.contains("This thread is closed"));
    assert!(!page.body.contains("id=\"discussion-form\""));
    let res = reply(&app, &b, &r, "Too late").await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert!(res.body.contains("closed"), "{}", res.body);

    // Moved: the old address redirects, its query kept.
    let res = app
        .post_form(
            &moderate(&older),
            &d,
            &[("action", "move"), ("forum", "dev")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), topic_url("dev", &older));
    let old = app
        .get(&format!("{}?posts=flat", topic_url("general", &older)), &b)
        .await;
    assert_eq!(old.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        old.location(),
        format!("{}?posts=flat", topic_url("dev", &older))
    );
    // A move to no forum: back, saying so.
    let res = app
        .post_form(
            &format!("{}moderate", topic_url("dev", &older)),
            &d,
            &[("action", "move"), ("forum", "nowhere")],
        )
        .await;
    assert!(flash(&res).contains("There is no forum"), "{}", flash(&res));

    // Blocked: bob's reply is refused; listed on the admin page, unblocked there.
    let r = thread_ref(&app.get(&topic_url("general", &newer), &b).await);
    let res = app
        .post_form(
            &format!("{BASE}_block"),
            &d,
            &[("username", "bob"), ("block", "1")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(flash(&res), "bob may no longer post here.");
    let res = reply(&app, &b, &r, "Still here").await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(app.get(&format!("{BASE}general/new"), &b).await.status == StatusCode::FORBIDDEN);
    let admin = app.get(&format!("{BASE}_admin"), &a).await.body;
    assert!(admin.contains("Blocked from posting"));
    assert!(admin.contains("name=\"username\" value=\"bob\""));
    app.post_form(
        &format!("{BASE}_block"),
        &a,
        &[("username", "bob"), ("block", "0")],
    )
    .await;
    assert_eq!(
        reply(&app, &b, &r, "Back again").await.status,
        StatusCode::SEE_OTHER
    );

    // Deleting a topic: gone from the forum.
    let res = app
        .post_form(&moderate(&newer), &d, &[("action", "delete")])
        .await;
    assert_eq!(res.location(), format!("{BASE}general/"));
    assert_eq!(
        app.get(&topic_url("general", &newer), &b).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn anonymous_posting_waits_for_a_moderator() {
    let (app, ann, bob, dave) = setup("forumanon").await;
    let (a, b, d) = (
        app.browser(&ann).await,
        app.browser(&bob).await,
        app.browser(&dave).await,
    );
    let anon = Browser::anonymous();
    // Off by default: sent to log in.
    let res = app.get(&format!("{BASE}general/new"), &anon).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(res.location().starts_with("/auth/login"));

    let res = app
        .post_form(
            &format!("{BASE}_admin"),
            &a,
            &[("op", "anonymous"), ("allow", "1")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(
        app.get(&format!("{BASE}_admin"), &a)
            .await
            .body
            .contains("Stop anonymous posting")
    );
    let form = app.get(&format!("{BASE}general/new"), &anon).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("You are not logged in"));
    let res = app
        .post_form(
            &format!("{BASE}general/new"),
            &anon,
            &[
                ("subject", "Anonymous question"),
                ("text", "Who am I?"),
                (discussion::HONEYPOT, ""),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), format!("{BASE}general/"));
    assert!(flash(&res).contains("waits for a moderator"));
    // Invisible to others until approved.
    for who in [&anon, &b] {
        let list = app.get(&format!("{BASE}general/"), who).await.body;
        assert!(!list.contains("Anonymous question"));
    }
    let queue = app.get(&format!("{BASE}_moderate"), &d).await;
    assert_eq!(queue.status, StatusCode::OK);
    assert!(queue.body.contains("Who am I?"));
    let post = {
        let key = "name=\"post\" value=\"";
        let at = queue.body.find(key).unwrap() + key.len();
        queue.body[at..at + 24].to_owned()
    };
    let res = app
        .post_form(
            &format!("{BASE}_moderate"),
            &d,
            &[
                ("action", "approve"),
                ("post", &post),
                ("status", "pending"),
                ("page", "1"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let list = app.get(&format!("{BASE}general/"), &b).await.body;
    assert!(list.contains("Anonymous question"));
    assert!(list.contains("anonymous"));

    // Switched off again.
    app.post_form(
        &format!("{BASE}_admin"),
        &a,
        &[("op", "anonymous"), ("allow", "0")],
    )
    .await;
    let res = app.get(&format!("{BASE}general/new"), &anon).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn hostile_text_is_escaped() {
    let (app, ann, bob, _dave) = setup("forumxss").await;
    let (a, b) = (app.browser(&ann).await, app.browser(&bob).await);
    let res = add_forum(
        &app,
        &a,
        "x",
        "<script>alert('n')</script>",
        "<script>alert('d')</script>",
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let topic = seed(
        &app,
        &bob,
        "x",
        "<script>alert('s')</script>",
        "<script>alert('p')</script> <img src=x onerror=alert(1)>",
    )
    .await;
    for path in [BASE.to_owned(), format!("{BASE}x/"), topic_url("x", &topic)] {
        let page = app.get(&path, &b).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains("<script"), "{path}: {}", page.body);
        assert!(!page.body.contains("onerror"), "{path}");
        assert!(
            page.body.contains("&#60;script&#62;") || page.body.contains("&lt;script&gt;"),
            "{path}"
        );
    }
    // The edit forms of the settings page too.
    let admin = app.get(&format!("{BASE}_admin"), &a).await;
    assert!(!admin.body.contains("<script"));
}
