//! The forum by mail on the real store: a reply to a forum notification becomes the
//! recipient's reply in the topic; mail to a forum's posting address starts a topic as the
//! account whose address the receiving MTA authenticated, and from anyone else a topic held
//! for a moderator (or a bounce, as the forum says); private projects' addresses are unknown
//! to outsiders; a blocked account's mail is refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use axum::http::{Method, StatusCode};
use common::{TestApp, viewer};
use forge_tools::mail_in::{self, Bounce};
use forge_tools::tools::forum::forums::{self, ForumUpdate};
use forge_tools::tools::forum::model::UnknownSenders;
use serde_json::json;

const DOMAIN: &str = "forge.example";
const MTA: &str = "mx.forge.example";

async fn app(label: &str) -> TestApp {
    TestApp::with_config(label, |c| {
        c.mail_domain = Some(DOMAIN.into());
        c.mail_authserv_id = Some(MTA.into());
    })
    .await
}

fn mail(from: &str, to: &str, subject: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "{extra}From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <m.{}@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
        bson::oid::ObjectId::new()
    )
    .into_bytes()
}

fn authenticated(domain: &str, by: &str) -> String {
    format!(
        "Authentication-Results: {by}; dkim=pass header.d={domain}; dmarc=pass header.from={domain}\r\n"
    )
}

fn header(mail: &str, name: &str) -> Option<String> {
    mail.split("\r\n\r\n")
        .next()?
        .split("\r\n")
        .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
}

async fn topics(app: &TestApp, project: &str, token: Option<&str>) -> serde_json::Value {
    let res = app
        .api(
            Method::GET,
            &format!("/rest/p/{project}/discussion/general/"),
            token,
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    res.json()
}

#[tokio::test]
async fn a_reply_to_a_forum_notification_is_a_reply_in_the_topic() {
    let app = app("forum-mail-reply").await;
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    app.project(&ann, "club", false).await;
    let tb = app.token(&bob).await;
    let res = app
        .api(
            Method::POST,
            "/rest/p/club/discussion/general/",
            Some(&tb),
            Some(json!({"subject": "Meeting times", "text": "When do we meet?"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let tid = res.json()["thread_id"].as_str().unwrap().to_owned();
    // Ann answers on the web; Bob, who started the topic, is told, and answers by mail.
    let ta = app.token(&ann).await;
    app.api(
        Method::POST,
        &format!("/rest/p/club/discussion/general/thread/{tid}/"),
        Some(&ta),
        Some(json!({"text": "Tuesdays."})),
    )
    .await;
    app.tasks_done("notify.change").await;
    let to_bob: Vec<String> = app
        .mails()
        .into_iter()
        .filter(|m| header(m, "To").as_deref() == Some("bob@example.org"))
        .collect();
    assert_eq!(to_bob.len(), 1);
    let reply_to = header(&to_bob[0], "Reply-To").unwrap();
    let raw = mail(
        "Bob <bob@example.org>",
        &reply_to,
        "Re: Meeting times",
        "",
        "Tuesday works.\r\n\r\nOn Tue, ann wrote:\r\n> Tuesdays.",
    );
    // An out-of-office answer to the same address is not posted (RFC 3834).
    for auto in ["Auto-Submitted: auto-replied\r\n", "Precedence: bulk\r\n"] {
        let away = mail(
            "Bob <bob@example.org>",
            &reply_to,
            "Out of office",
            auto,
            "I am away.",
        );
        let err = mail_in::deliver(&app.forge, &away).await.unwrap_err();
        assert_eq!(err.bounce, Bounce::DataErr, "{err}");
        assert!(err.message.contains("automatic"), "{err}");
    }
    let done = mail_in::deliver(&app.forge, &raw).await.unwrap();
    assert_eq!(done.post.author, "bob");
    assert_eq!(done.post.text, "Tuesday works.");
    let res = app
        .api(
            Method::GET,
            &format!("/rest/p/club/discussion/general/thread/{tid}/?order=flat"),
            None,
            None,
        )
        .await;
    let v = res.json();
    let texts: Vec<&str> = v["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["When do we meet?", "Tuesdays.", "Tuesday works."]);
    assert_eq!(v["thread"]["num_replies"], 2);
}

#[tokio::test]
async fn the_posting_address_trusts_only_an_authenticated_sender() {
    let app = app("forum-mail-address").await;
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    app.project(&ann, "club", false).await;
    let address = format!("general@discussion.club.{DOMAIN}");

    // Authenticated by the forge's MTA: a live topic by that account.
    let raw = mail(
        "Bob <bob@example.org>",
        &address,
        "Selling my bike",
        &authenticated("example.org", MTA),
        "Red, 3 gears.",
    );
    let done = mail_in::deliver(&app.forge, &raw).await.unwrap();
    assert_eq!(done.post.author, "bob");
    assert_eq!(done.post.status.as_str(), "ok");
    let v = topics(&app, "club", None).await;
    assert_eq!(v["threads"][0]["subject"], "Selling my bike");
    assert_eq!(v["threads"][0]["author"], "bob");

    // Strangers' mail is refused unless the forum holds it for a moderator.
    let ctx = app.ctx_of(&ann, "club").await;
    let tool = ctx.tool("discussion").unwrap().clone();
    let policy = |unknown_senders| ForumUpdate {
        name: "General".into(),
        description: String::new(),
        hidden: false,
        unknown_senders,
    };
    let raw = mail(
        "Bob <bob@example.org>",
        &address,
        "Unsigned",
        "",
        "No signature.",
    );
    let err = mail_in::deliver(&app.forge, &raw).await.unwrap_err();
    assert_eq!(err.bounce, Bounce::DataErr, "refused by default: {err}");
    forums::update(
        &app.forge,
        &viewer(&ann),
        &ctx,
        &tool,
        "general",
        policy(UnknownSenders::Pending),
    )
    .await
    .unwrap();
    // The same From with no (or someone else's) authentication: held, and not as Bob.
    for extra in [String::new(), authenticated("example.org", "evil.example")] {
        let raw = mail(
            "Bob <bob@example.org>",
            &address,
            "Bob says: send money",
            &extra,
            "To this account.",
        );
        let done = mail_in::deliver(&app.forge, &raw).await.unwrap();
        assert_eq!(done.post.author, "", "not attributed to bob");
        assert_eq!(done.post.status.as_str(), "pending");
    }
    let tb = app.token(&bob).await;
    let v = topics(&app, "club", Some(&tb)).await;
    assert_eq!(v["threads"].as_array().unwrap().len(), 1, "held: {v}");

    // The forum may refuse unknown senders again.
    forums::update(
        &app.forge,
        &viewer(&ann),
        &ctx,
        &tool,
        "general",
        policy(UnknownSenders::Refuse),
    )
    .await
    .unwrap();
    let raw = mail(
        "stranger@elsewhere.test",
        &address,
        "Hello",
        "",
        "Anyone here?",
    );
    let err = mail_in::deliver(&app.forge, &raw).await.unwrap_err();
    assert_eq!(err.bounce, Bounce::DataErr, "{err}");

    // A blocked account's mail is refused, authenticated or not.
    let ta = app.token(&ann).await;
    let res = app
        .api(
            Method::POST,
            "/rest/p/club/discussion/_block",
            Some(&ta),
            Some(json!({"username": "bob"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let raw = mail(
        "bob@example.org",
        &address,
        "Again",
        &authenticated("example.org", MTA),
        "Let me in.",
    );
    let err = mail_in::deliver(&app.forge, &raw).await.unwrap_err();
    assert_eq!(err.bounce, Bounce::DataErr, "{err}");

    // Unknown forums and private projects are unknown addresses.
    app.project(&ann, "hidden", true).await;
    for to in [
        format!("nowhere@discussion.club.{DOMAIN}"),
        format!("general@discussion.hidden.{DOMAIN}"),
    ] {
        let raw = mail(
            "bob@example.org",
            &to,
            "Hi",
            &authenticated("example.org", MTA),
            "x",
        );
        let err = mail_in::deliver(&app.forge, &raw).await.unwrap_err();
        assert_eq!(err.bounce, Bounce::NoUser, "{to}: {err}");
    }
}

#[tokio::test]
async fn a_file_that_cannot_be_stored_starts_no_topic() {
    let app = app("forum-mail-file").await;
    let ann = app.user("ann").await;
    app.user("bob").await;
    app.project(&ann, "club", false).await;
    // Ann watches the forum: a topic that went live would be mailed to her.
    let ctx = app.ctx_of(&ann, "club").await;
    let tool = ctx.tool("discussion").unwrap().clone();
    let general = forums::get(&app.forge, &ctx, &tool, "general")
        .await
        .unwrap();
    forge_tools::notify::watch(
        &app.forge,
        &viewer(&ann),
        &ctx,
        forge_tools::notify::Target::Artifact {
            tool: &tool,
            key: general.key(),
            title: "forum General".into(),
        },
    )
    .await
    .unwrap();
    let mails = app.mails().len();
    // The attachment store cannot make its folder: a file is in the way.
    std::fs::write(app.data.path().join("attachments"), b"in the way").unwrap();
    let raw = format!(
        "{}From: Bob <bob@example.org>\r\nTo: general@discussion.club.{DOMAIN}\r\nSubject: The log\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nAttached.\r\n--XX\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=build.log\r\n\r\nerror\r\n--XX--\r\n",
        authenticated("example.org", MTA)
    );
    let err = mail_in::deliver(&app.forge, raw.as_bytes())
        .await
        .unwrap_err();
    assert_eq!(err.bounce, Bounce::TempFail, "{err}");
    // Nothing was posted: no topic (not even a deleted one), no post, no mail.
    assert_eq!(app.count("forum_topics", bson::doc! {}).await, 0);
    assert_eq!(app.count("discussion_posts", bson::doc! {}).await, 0);
    assert_eq!(app.count("attachments", bson::doc! {}).await, 0);
    app.tasks_done("notify.change").await;
    assert_eq!(app.mails().len(), mails);
    let v = topics(&app, "club", None).await;
    assert!(v["threads"].as_array().unwrap().is_empty(), "{v}");
}
