//! Mail out and in on the real store: the headers a notification carries (threading, list,
//! one-click unsubscribe, reply address), and `forge mail-in` — a reply to a real ticket
//! notification becomes the recipient's comment whatever `From` says, altered and expired
//! tokens are refused, attachments become the post's files, HTML-only mail becomes text,
//! quotes and signatures are cut, oversized and misaddressed mail bounces with the right
//! exit code, and nothing is half-written. The message files are under `tests/mail/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{TestApp, viewer};
use forge_tools::mail_in::{self, Bounce};
use forge_tools::notify::{self, Target};
use forge_tools::tools::tracker::actions;
use forge_tools::users::User;
use serde_json::json;

const DOMAIN: &str = "forge.example";

/// A header's value with folded lines joined.
fn header_of(mail: &str, name: &str) -> Option<String> {
    let mut lines = mail.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        if line.len() > name.len()
            && line[..name.len()].eq_ignore_ascii_case(name)
            && line[name.len()..].starts_with(": ")
        {
            let mut value = line[name.len() + 2..].to_owned();
            while lines.peek().is_some_and(|l| l.starts_with([' ', '\t'])) {
                value.push(' ');
                value.push_str(lines.next().unwrap().trim_start());
            }
            return Some(value);
        }
        if line.is_empty() {
            break;
        }
    }
    None
}

async fn app(label: &str) -> TestApp {
    TestApp::with_config(label, |c| c.mail_domain = Some(DOMAIN.into())).await
}

/// Alice's public project `garden` with ticket #1 that Bob watches; Alice comments on it, so
/// Bob gets a notification. The mails to Bob.
async fn ticket_mail(app: &TestApp) -> (User, User, Vec<String>) {
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.project(&alice, "garden", false).await;
    let token = app.token(&alice).await;
    let res = app
        .api(
            Method::POST,
            "/rest/p/garden/tickets/",
            Some(&token),
            Some(json!({"summary": "It crashes on start"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    // The filing's own notification is done before Bob starts watching.
    app.tasks_done("notify.change").await;
    let ctx = app.ctx_of(&bob, "garden").await;
    let tool = ctx.tool("tickets").unwrap().clone();
    let t = actions::get(&app.forge, &viewer(&bob), &ctx, &tool, 1)
        .await
        .unwrap();
    notify::watch(
        &app.forge,
        &viewer(&bob),
        &ctx,
        Target::Artifact {
            tool: &tool,
            key: t.key(),
            title: "ticket #1".into(),
        },
    )
    .await
    .unwrap();
    comment(app, &token, "It crashes on start.").await;
    app.tasks_done("notify.change").await;
    let mails = to(app, "bob@example.org");
    assert_eq!(mails.len(), 1, "{mails:?}");
    (alice, bob, mails)
}

async fn comment(app: &TestApp, token: &str, text: &str) {
    let res = app
        .api(
            Method::POST,
            "/rest/p/garden/tickets/1/comments",
            Some(token),
            Some(json!({"text": text})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
}

fn to(app: &TestApp, addr: &str) -> Vec<String> {
    app.mails()
        .into_iter()
        .filter(|m| header_of(m, "To").as_deref() == Some(addr))
        .collect()
}

fn reply_to(mail: &str) -> String {
    let r = header_of(mail, "Reply-To").expect("a Reply-To");
    assert!(
        r.starts_with("reply+") && r.ends_with(&format!("@{DOMAIN}")),
        "{r}"
    );
    r
}

/// A message file of `tests/mail/` with its placeholders filled in.
fn fixture(name: &str, from: &str, to: &str) -> Vec<u8> {
    let text = match name {
        "reply-quoted" => include_str!("mail/reply-quoted.eml"),
        "multipart-attachment" => include_str!("mail/multipart-attachment.eml"),
        "html-only" => include_str!("mail/html-only.eml"),
        other => panic!("no fixture {other}"),
    };
    text.replace("{{FROM}}", from)
        .replace("{{TO}}", to)
        .replace("{{IN_REPLY_TO}}", "<x@forge.example>")
        .into_bytes()
}

fn plain(from: &str, to: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: Re: ticket\r\nMessage-ID: <p.{}@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
        bson::oid::ObjectId::new()
    )
    .into_bytes()
}

async fn comments(app: &TestApp) -> Vec<serde_json::Value> {
    let res = app
        .api(Method::GET, "/rest/p/garden/tickets/1/comments", None, None)
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let v = res.json();
    v.get("comments")
        .or(v.get("posts"))
        .unwrap_or(&v)
        .as_array()
        .unwrap()
        .clone()
}

fn posts(app: &TestApp) -> impl std::future::Future<Output = u64> + '_ {
    app.count("discussion_posts", bson::doc! {})
}

#[tokio::test]
async fn notification_mail_threads_lists_and_offers_reply_and_one_click() {
    let app = app("mailout").await;
    let (alice, bob, mails) = ticket_mail(&app).await;
    let mail = &mails[0];
    let ctx = app.ctx_of(&bob, "garden").await;
    let tool = ctx.tool("tickets").unwrap().clone();
    let t = actions::get(&app.forge, &viewer(&bob), &ctx, &tool, 1)
        .await
        .unwrap();

    let id = header_of(mail, "Message-ID").unwrap();
    assert!(
        id.starts_with('<') && id.ends_with(&format!(".{}@{DOMAIN}>", bob.id)),
        "{id}"
    );
    let root = format!("<ticket-{}.{}@{DOMAIN}>", t.id.to_hex(), tool.id);
    assert_eq!(
        header_of(mail, "In-Reply-To").as_deref(),
        Some(root.as_str())
    );
    assert_eq!(
        header_of(mail, "References").as_deref(),
        Some(root.as_str())
    );
    assert_eq!(
        header_of(mail, "List-Id").as_deref(),
        Some(format!("\"Project garden\" <tickets.garden.{DOMAIN}>").as_str())
    );
    let unsub = header_of(mail, "List-Unsubscribe").unwrap();
    assert!(
        unsub.starts_with("<http://127.0.0.1:8080/auth/unsubscribe?s="),
        "{unsub}"
    );
    assert_eq!(
        header_of(mail, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    reply_to(mail);

    // A second change to the same ticket: a new Message-ID, the same conversation root.
    let token = app.token(&alice).await;
    comment(&app, &token, "Still crashing.").await;
    app.tasks_done("notify.change").await;
    let mails = to(&app, "bob@example.org");
    assert_eq!(mails.len(), 2);
    let ids: Vec<String> = mails
        .iter()
        .map(|m| header_of(m, "Message-ID").unwrap())
        .collect();
    assert_ne!(ids[0], ids[1]);
    for m in &mails {
        assert_eq!(header_of(m, "References").as_deref(), Some(root.as_str()));
    }
}

#[tokio::test]
async fn one_click_unsubscribe_needs_no_cookie_nor_csrf_token() {
    let app = app("oneclick").await;
    let (_, bob, mails) = ticket_mail(&app).await;
    let unsub = header_of(&mails[0], "List-Unsubscribe").unwrap();
    let url = unsub.trim_matches(['<', '>']);
    let path = url.strip_prefix("http://127.0.0.1:8080").unwrap();
    let one_click = |path: String| {
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("List-Unsubscribe=One-Click"))
            .unwrap()
    };
    // An altered signature does nothing (its last character changed, whatever it was).
    let (head, last) = path.split_at(path.len() - 1);
    let other = if last == "0" { "1" } else { "0" };
    let forged = app.send(one_click(format!("{head}{other}")), None).await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.count("subscriptions", bson::doc! {"user_id": bob.id})
            .await,
        1
    );
    // The mail client's POST: no cookie, no CSRF token, the signed link is the proof.
    let res = app.send(one_click(path.to_owned()), None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(res.body.contains("no longer get mail"), "{}", res.body);
    assert_eq!(
        app.count("subscriptions", bson::doc! {"user_id": bob.id})
            .await,
        0
    );
}

#[tokio::test]
async fn digest_mail_carries_list_headers_and_its_one_click_stops_everything() {
    let app = app("digestmail").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.project(&alice, "garden", false).await;
    let ctx = app.ctx_of(&bob, "garden").await;
    notify::watch(&app.forge, &viewer(&bob), &ctx, Target::Project)
        .await
        .unwrap();
    notify::set_mode(app.forge.db(), bob.id, notify::Mode::Digest)
        .await
        .unwrap();
    let token = app.token(&alice).await;
    let res = app
        .api(
            Method::POST,
            "/rest/p/garden/tickets/",
            Some(&token),
            Some(json!({"summary": "One"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED);
    app.tasks_done("notify.change").await;
    notify::run_digest(&app.forge, &json!({})).await.unwrap();
    let mails = to(&app, "bob@example.org");
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(
        header_of(mail, "Message-ID")
            .unwrap()
            .ends_with(&format!("@{DOMAIN}>"))
    );
    assert!(
        header_of(mail, "List-Id")
            .unwrap()
            .contains(&format!("<digest.{DOMAIN}>"))
    );
    assert_eq!(
        header_of(mail, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let unsub = header_of(mail, "List-Unsubscribe").unwrap();
    let path = unsub
        .trim_matches(['<', '>'])
        .strip_prefix("http://127.0.0.1:8080")
        .unwrap()
        .to_owned();
    let req = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("List-Unsubscribe=One-Click"))
        .unwrap();
    let res = app.send(req, None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(
        app.count("subscriptions", bson::doc! {"user_id": bob.id})
            .await,
        0
    );
}

#[tokio::test]
async fn reply_to_a_ticket_notification_becomes_the_recipients_comment() {
    let app = app("mailin-reply").await;
    let (_, _, mails) = ticket_mail(&app).await;
    let address = reply_to(&mails[0]);
    let raw = fixture("reply-quoted", "bob@example.org", &address);
    let done = mail_in::deliver(&app.forge, &raw).await.unwrap();
    assert_eq!(done.post.author, "bob");
    assert_eq!(done.project, "garden");
    assert_eq!(done.mount, "tickets");
    // The quote and the signature are cut.
    assert_eq!(
        done.post.text,
        "I can reproduce this on 1.95 — the build fails at the link step."
    );
    let list = comments(&app).await;
    let last = list.last().unwrap();
    assert_eq!(last["author"], "bob");
    assert_eq!(last["text"], done.post.text.as_str());
    // Posted as a web comment is: Alice hears of it when she watches.
    app.forge.events().flush().await;
    assert_eq!(app.count_events(bson::doc! {"type": "mail.in"}).await, 1);
    assert_eq!(
        app.count_events(bson::doc! {"type": "tracker.ticket.comment", "context.user": "bob"})
            .await,
        1
    );
}

#[tokio::test]
async fn reply_to_a_wiki_page_notification_becomes_a_page_comment() {
    let app = app("mailin-wiki").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    app.project(&alice, "garden", false).await;
    let token = app.token(&alice).await;
    let put = |text: &'static str, base: i64| {
        let app = &app;
        let token = token.clone();
        async move {
            let res = app
                .api(
                    Method::PUT,
                    "/rest/p/garden/wiki/Compost",
                    Some(&token),
                    Some(json!({"text": text, "base_version": base})),
                )
                .await;
            assert!(res.status.is_success(), "{}", res.body);
        }
    };
    put("First.", 0).await;
    app.tasks_done("notify.change").await;
    let ctx = app.ctx_of(&bob, "garden").await;
    let tool = ctx.tool("wiki").unwrap().clone();
    notify::watch(&app.forge, &viewer(&bob), &ctx, Target::Tool(&tool))
        .await
        .unwrap();
    put("Second.", 1).await;
    app.tasks_done("notify.change").await;
    let mails = to(&app, "bob@example.org");
    assert_eq!(mails.len(), 1);
    let address = reply_to(&mails[0]);
    let done = mail_in::deliver(
        &app.forge,
        &plain("bob@example.org", &address, "Nice page."),
    )
    .await
    .unwrap();
    assert_eq!(done.mount, "wiki");
    assert_eq!(done.post.author, "bob");
    let thread = forge_tools::discussion::existing_thread(
        &app.forge,
        &tool,
        &format!(
            "wiki:{}",
            forge_tools::tools::wiki::pages::get(app.forge.db(), tool.id, "Compost")
                .await
                .unwrap()
                .unwrap()
                .id
        ),
    )
    .await
    .unwrap()
    .expect("the page's thread");
    assert_eq!(thread.title, "page Compost");
    assert_eq!(thread.num_posts, 1);
}

#[tokio::test]
async fn a_forged_from_still_posts_as_the_token_owner_and_altered_tokens_are_refused() {
    let app = app("mailin-forged").await;
    let (_, _, mails) = ticket_mail(&app).await;
    let address = reply_to(&mails[0]);
    let carol = app.user("carol").await;
    // Carol sends Bob's reply address a mail "from Alice": it is Bob's comment, or nothing.
    let done = mail_in::deliver(
        &app.forge,
        &plain(
            "Alice <alice@example.org>",
            &address,
            "Close it, says alice.",
        ),
    )
    .await
    .unwrap();
    assert_eq!(done.post.author, "bob");
    let _ = carol;
    // One character of the token changed: refused, nothing written.
    let before = posts(&app).await;
    let token = address
        .strip_prefix("reply+")
        .unwrap()
        .split('@')
        .next()
        .unwrap();
    let mut altered: Vec<u8> = token.as_bytes().to_vec();
    altered[10] = if altered[10] == b'a' { b'b' } else { b'a' };
    let altered = format!("reply+{}@{DOMAIN}", String::from_utf8(altered).unwrap());
    let err = mail_in::deliver(&app.forge, &plain("carol@example.org", &altered, "As bob?"))
        .await
        .unwrap_err();
    assert_eq!(err.bounce, Bounce::DataErr, "{err}");
    assert_eq!(err.bounce.exit_code(), 65);
    assert!(err.message.contains("signature"), "{err}");
    assert_eq!(posts(&app).await, before);
}

#[tokio::test]
async fn expired_tokens_and_disabled_or_excluded_accounts_are_refused() {
    let app = app("mailin-expired").await;
    let (alice, bob, mails) = ticket_mail(&app).await;
    let address = reply_to(&mails[0]);
    let before = posts(&app).await;
    let now = bson::DateTime::now().timestamp_millis() / 1000;
    let raw = plain("bob@example.org", &address, "Late reply.");
    let err = mail_in::deliver_at(&app.forge, &raw, now + 31 * 86_400)
        .await
        .unwrap_err();
    assert_eq!(err.bounce, Bounce::DataErr);
    assert!(err.message.contains("expired"), "{err}");
    // Still valid at 29 days.
    mail_in::deliver_at(&app.forge, &raw, now + 29 * 86_400)
        .await
        .unwrap();
    assert_eq!(posts(&app).await, before + 1);

    // The project goes private without Bob: his reply address no longer lets him post.
    let ctx = app.ctx_of(&alice, "garden").await;
    app.forge
        .update_project(
            &viewer(&alice),
            &ctx,
            forge_tools::ProjectUpdate {
                name: ctx.project.name.clone(),
                summary: ctx.project.summary.clone(),
                description: String::new(),
                private: true,
            },
        )
        .await
        .unwrap();
    let err = mail_in::deliver(&app.forge, &raw).await.unwrap_err();
    assert_eq!(err.bounce, Bounce::DataErr, "{err}");
    assert!(err.message.contains("not allowed"), "{err}");

    // A disabled account's address is refused too.
    app.forge
        .db()
        .collection::<bson::Document>("users")
        .update_one(
            bson::doc! {"_id": bob.id},
            bson::doc! {"$set": {"disabled": true}},
        )
        .await
        .unwrap();
    let err = mail_in::deliver(&app.forge, &raw).await.unwrap_err();
    assert_eq!(err.bounce, Bounce::DataErr);
    assert_eq!(posts(&app).await, before + 1);
}

#[tokio::test]
async fn attachments_become_post_files_within_the_limit() {
    let app = TestApp::with_config("mailin-files", |c| {
        c.mail_domain = Some(DOMAIN.into());
        c.max_attachment_bytes = 1_000;
    })
    .await;
    let (_, bob, mails) = ticket_mail(&app).await;
    let address = reply_to(&mails[0]);
    let raw = fixture("multipart-attachment", "bob@example.org", &address);
    let done = mail_in::deliver(&app.forge, &raw).await.unwrap();
    assert_eq!(done.post.text, "The log is attached.");
    assert_eq!(done.attachments, vec!["build log.txt".to_owned()]);
    let ctx = app.ctx_of(&bob, "garden").await;
    let tool = ctx.tool("tickets").unwrap().clone();
    let a = forge_tools::discussion::attachment(&app.forge, &tool, &done.post, "build log.txt")
        .await
        .unwrap();
    assert_eq!(a.author, "bob");
    let stored = std::fs::read(app.forge.attachments().path_of(&a)).unwrap();
    assert_eq!(stored, b"error: linking with `cc` failed\n");

    // Over the attachment limit: refused before anything is written.
    let before = posts(&app).await;
    let files_before = app.count("attachments", bson::doc! {}).await;
    let big = "A".repeat(2_000);
    let raw = format!(
        "From: bob@example.org\r\nTo: {address}\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nHere.\r\n--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=big.bin\r\n\r\n{big}\r\n--XX--\r\n"
    );
    let err = mail_in::deliver(&app.forge, raw.as_bytes())
        .await
        .unwrap_err();
    assert_eq!(err.bounce, Bounce::DataErr);
    assert!(err.message.contains("big.bin"), "{err}");
    assert_eq!(posts(&app).await, before);
    assert_eq!(app.count("attachments", bson::doc! {}).await, files_before);
}

#[tokio::test]
async fn a_file_that_cannot_be_stored_leaves_no_post_behind() {
    let app = app("mailin-rollback").await;
    let (_, _, mails) = ticket_mail(&app).await;
    let address = reply_to(&mails[0]);
    let before = posts(&app).await;
    let shown = comments(&app).await.len();
    let to_alice = to(&app, "alice@example.org").len();
    // The attachment store cannot make its folder: a file is in the way.
    std::fs::write(app.data.path().join("attachments"), b"in the way").unwrap();
    let raw = fixture("multipart-attachment", "bob@example.org", &address);
    let err = mail_in::deliver(&app.forge, &raw).await.unwrap_err();
    assert_eq!(err.bounce, Bounce::TempFail, "{err}");
    // The file is stored before the post is written: nothing was posted, not even a post
    // deleted again, and nobody was told of one.
    assert_eq!(posts(&app).await, before, "no post written");
    assert_eq!(comments(&app).await.len(), shown);
    assert_eq!(app.count("attachments", bson::doc! {}).await, 0);
    app.tasks_done("notify.change").await;
    assert_eq!(to(&app, "alice@example.org").len(), to_alice);
}

#[tokio::test]
async fn html_only_mail_becomes_text() {
    let app = app("mailin-html").await;
    let (_, _, mails) = ticket_mail(&app).await;
    let address = reply_to(&mails[0]);
    let raw = fixture("html-only", "bob@example.org", &address);
    let done = mail_in::deliver(&app.forge, &raw).await.unwrap();
    let text = &done.post.text;
    // Markdown, as the forge renders posts: the bold stays bold.
    assert_eq!(text, "Confirmed on **Debian** too.");
    assert!(!text.contains('<'), "{text:?}");
    assert!(!text.contains("color:red"), "{text:?}");
    assert!(
        !text.contains("alice commented"),
        "the quote is cut: {text:?}"
    );
}

#[tokio::test]
async fn oversized_and_misaddressed_mail_bounce() {
    let app = TestApp::with_config("mailin-bounce", |c| {
        c.mail_domain = Some(DOMAIN.into());
        c.max_mail_bytes = 2_000;
    })
    .await;
    let (_, _, mails) = ticket_mail(&app).await;
    let address = reply_to(&mails[0]);
    let before = posts(&app).await;

    let big = plain("bob@example.org", &address, &"x".repeat(3_000));
    let err = mail_in::deliver(&app.forge, &big).await.unwrap_err();
    assert_eq!(err.bounce, Bounce::DataErr);
    assert!(err.message.contains("larger"), "{err}");
    let err = mail_in::read_limited(&big[..], 2_000).unwrap_err();
    assert_eq!(err.bounce.exit_code(), 65);
    assert_eq!(
        mail_in::read_limited(&big[..2_000], 2_000).unwrap().len(),
        2_000
    );

    for to in [
        "someone@elsewhere.example".to_owned(),
        format!("general@nosuchtool.garden.{DOMAIN}"),
        format!("general@tickets.nosuchproject.{DOMAIN}"),
        // A tool that takes no mail at its own address.
        format!("general@tickets.garden.{DOMAIN}"),
    ] {
        let err = mail_in::deliver(&app.forge, &plain("bob@example.org", &to, "Hi"))
            .await
            .unwrap_err();
        assert_eq!(err.bounce, Bounce::NoUser, "{to}: {err}");
        assert_eq!(err.bounce.exit_code(), 67);
    }
    let err = mail_in::deliver(&app.forge, b"\r\n\r\njust a body")
        .await
        .unwrap_err();
    assert_eq!(err.bounce, Bounce::DataErr, "{err}");
    assert_eq!(posts(&app).await, before);
}

/// Runs `forge mail-in` against the app's store, data dir and database.
fn run_forge(app: &TestApp, input: &[u8], extra: &[(&str, &str)]) -> (i32, String) {
    let config = app.forge.config();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_forge"));
    cmd.arg("mail-in")
        .env("FORGE_MONGODB_URI", config.mongodb_uri.as_deref().unwrap())
        .env("FORGE_DB_NAME", &config.db_name)
        .env("FORGE_DATA_DIR", &config.data_dir)
        .env("FORGE_MAIL_DOMAIN", DOMAIN)
        .env_remove("FORGE_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    // The child may stop reading early (an oversized mail): a broken pipe is its answer.
    let _ = child.stdin.take().unwrap().write_all(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_forge_command_exits_with_the_codes_an_mta_reads() {
    let app = app("mailin-cli").await;
    let (_, _, mails) = ticket_mail(&app).await;
    let address = reply_to(&mails[0]);
    let before = posts(&app).await;

    let ok = plain("bob@example.org", &address, "From the command line.");
    let (code, err) = run_forge(&app, &ok, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(posts(&app).await, before + 1);
    assert!(
        comments(&app)
            .await
            .iter()
            .any(|c| c["text"] == "From the command line." && c["author"] == "bob")
    );

    let bad = plain("bob@example.org", &format!("reply+aaaa@{DOMAIN}"), "No.");
    let (code, err) = run_forge(&app, &bad, &[]);
    assert_eq!(code, 65, "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("forge mail-in: "), "{err}");

    let (code, err) = run_forge(&app, &plain("bob@example.org", "x@y.example", "?"), &[]);
    assert_eq!(code, 67, "{err}");

    let (code, err) = run_forge(&app, &ok, &[("FORGE_MAX_MAIL_BYTES", "100")]);
    assert_eq!(code, 65, "{err}");
    assert!(err.contains("larger"), "{err}");
    assert_eq!(posts(&app).await, before + 1);
}
