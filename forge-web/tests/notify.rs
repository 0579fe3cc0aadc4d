//! Watching and mail on the real store: a watcher gets one message per change by someone
//! else (never for their own), with the right link and a signed unsubscribe link that works
//! without logging in; after it, no more mail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{Browser, TestApp};
use forge_tools::acl::Role;
use serde_json::json;

fn mails(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir.join("mail"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A header's value with folded lines joined.
fn header(mail: &str, name: &str) -> Option<String> {
    let mut lines = mail.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        if let Some(v) = line.strip_prefix(&format!("{name}: ")) {
            let mut value = v.to_owned();
            while lines.peek().is_some_and(|l| l.starts_with([' ', '\t'])) {
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

/// Waits until every `notify.change` task has finished.
async fn notifications_done(app: &TestApp, expected: u64) {
    for _ in 0..200 {
        let done = app
            .count(
                "tasks",
                bson::doc! {"name": "notify.change", "state": {"$in": ["complete", "failed"]}},
            )
            .await;
        if done >= expected {
            let failed = app
                .count(
                    "tasks",
                    bson::doc! {"name": "notify.change", "state": "failed"},
                )
                .await;
            assert_eq!(failed, 0, "a notification task failed");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("notification tasks did not finish");
}

async fn edit(app: &TestApp, token: &str, text: &str, base: i64) {
    let res = app
        .api(
            Method::PUT,
            "/rest/p/garden/wiki/Compost",
            Some(token),
            Some(json!({"text": text, "base_version": base, "comment": "more detail"})),
        )
        .await;
    assert!(res.status.is_success(), "{}", res.body);
}

#[tokio::test]
async fn watchers_get_one_mail_with_links_and_can_unsubscribe() {
    let app = TestApp::new("notify").await;
    let data = app.data.path().to_owned();
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let alice_token = app.token(&alice).await;
    let bob_token = app.token(&bob).await;
    let project = app.project(&alice, "garden", true).await;
    app.add_member(&project, &bob, Role::Developer).await;
    edit(&app, &alice_token, "First text.", 0).await;
    notifications_done(&app, 1).await;

    // Bob watches the page from its page.
    let bob_browser = app.browser(&bob).await;
    let page = app.get("/p/garden/wiki/Compost/", &bob_browser).await;
    assert!(page.body.contains("Watch page"), "{}", page.body);
    let key = {
        let at = page.body.find("value=\"wiki:").unwrap() + "value=\"".len();
        page.body[at..at + 29].to_owned()
    };
    let res = app
        .post_form(
            "/p/garden/_watch",
            &bob_browser,
            &[
                ("tool", "wiki"),
                ("artifact", &key),
                ("action", "watch"),
                ("next", "/p/garden/wiki/Compost/"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let page = app.get("/p/garden/wiki/Compost/", &bob_browser).await;
    assert!(page.body.contains("Unwatch page"));

    // His own edit mails nobody.
    edit(&app, &bob_token, "Bob's text.", 1).await;
    notifications_done(&app, 2).await;
    assert!(mails(&data).is_empty());

    // Alice's edit: exactly one mail, to Bob, with the page link and an unsubscribe link.
    edit(&app, &alice_token, "Alice's text.", 2).await;
    notifications_done(&app, 3).await;
    let all = mails(&data);
    assert_eq!(all.len(), 1, "{all:?}");
    let mail = &all[0];
    assert_eq!(header(mail, "To").as_deref(), Some("bob@example.org"));
    let subject = header(mail, "Subject").unwrap();
    assert!(subject.contains("alice edited page Compost"), "{subject}");
    assert!(
        mail.contains("http://127.0.0.1:8080/p/garden/wiki/Compost/"),
        "{mail}"
    );
    let unsubscribe = header(mail, "List-Unsubscribe").unwrap();
    let unsubscribe = unsubscribe.trim_matches(['<', '>']);
    let path = unsubscribe.strip_prefix("http://127.0.0.1:8080").unwrap();
    assert!(path.starts_with("/auth/unsubscribe?s="), "{path}");

    // The link works without logging in: it asks, then stops the mail.
    let anon = Browser::anonymous();
    let ask = app.get(path, &anon).await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.body.contains("Stop mail about"), "{}", ask.body);
    let query: std::collections::HashMap<String, String> =
        serde_urlencoded::from_str(path.split_once('?').unwrap().1).unwrap();
    // A forged signature is refused.
    let forged = app
        .post_form(
            "/auth/unsubscribe",
            &anon,
            &[("s", &query["s"]), ("sig", "00")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::NOT_FOUND);
    assert_eq!(app.count("subscriptions", bson::doc! {}).await, 1);
    let done = app
        .post_form(
            "/auth/unsubscribe",
            &anon,
            &[("s", &query["s"]), ("sig", &query["sig"])],
        )
        .await;
    assert_eq!(done.status, StatusCode::OK);
    assert!(done.body.contains("no longer get mail"));
    assert_eq!(app.count("subscriptions", bson::doc! {}).await, 0);

    // No more mail after that.
    edit(&app, &alice_token, "Alice again.", 3).await;
    notifications_done(&app, 4).await;
    assert_eq!(mails(&data).len(), 1);
}

#[tokio::test]
async fn watching_needs_read_access_and_digest_users_get_one_mail() {
    let app = TestApp::new("notify_digest").await;
    let data = app.data.path().to_owned();
    let alice = app.user("alice").await;
    let carol = app.user("carol").await;
    let alice_token = app.token(&alice).await;
    let project = app.project(&alice, "garden", true).await;

    // Not a member of the private project: cannot watch it (it does not exist for her).
    let carol_browser = app.browser(&carol).await;
    let res = app
        .post_form("/p/garden/_watch", &carol_browser, &[("action", "watch")])
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);

    // As a member in digest mode, watching the whole project.
    app.add_member(&project, &carol, Role::Member).await;
    let res = app
        .post_form("/auth/notifications", &carol_browser, &[("mode", "digest")])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let res = app
        .post_form("/p/garden/_watch", &carol_browser, &[("action", "watch")])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    edit(&app, &alice_token, "One.", 0).await;
    edit(&app, &alice_token, "Two.", 1).await;
    notifications_done(&app, 2).await;
    assert!(
        mails(&data).is_empty(),
        "digest users get no immediate mail"
    );
    forge_tools::notify::run_digest(&app.forge, &json!({}))
        .await
        .unwrap();
    let all = mails(&data);
    assert_eq!(all.len(), 1);
    assert!(header(&all[0], "Subject").unwrap().contains("2 changes"));
    // Once a day at most, and nothing is pending any more.
    forge_tools::notify::run_digest(&app.forge, &json!({}))
        .await
        .unwrap();
    assert_eq!(mails(&data).len(), 1);
    assert_eq!(app.count("notify_pending", bson::doc! {}).await, 0);
}
