//! Webhooks against a real HTTP receiver (a small axum server on loopback, so these forges
//! allow private targets, except the SSRF test's): signatures verify, each event (wiki,
//! ticket, forum post, push, tag) arrives with its `X-Forge-Event` and payload, a 500 is
//! retried and both attempts are logged under one delivery, redelivery (REST and page),
//! private targets and redirects inward are refused and logged, a webhook added by someone
//! who lost access to a private project delivers nothing, and only admins manage webhooks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::response::IntoResponse;
use common::git::Git;
use common::{Browser, TestApp};
use forge_tools::acl::Role;
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sha2::Sha256;

const SECRET: &str = "It's a Secret to Everybody";
const ZERO: &str = "0000000000000000000000000000000000000000";

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Got {
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn event(&self) -> &str {
        self.header("x-forge-event")
    }
}

/// A webhook receiver: records every request, answers with the statuses queued (then 200);
/// `/to-metadata` redirects to the cloud metadata address.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl Receiver {
    async fn start() -> (String, Self) {
        let rx = Self::default();
        let state = rx.clone();
        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let state = state.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = body.collect().await.unwrap().to_bytes().to_vec();
                let headers = parts
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                    .collect();
                let path = parts.uri.path().to_owned();
                state.got.lock().unwrap().push(Got {
                    path: path.clone(),
                    headers,
                    body,
                });
                if path == "/to-metadata" {
                    return (
                        StatusCode::TEMPORARY_REDIRECT,
                        [("location", "http://169.254.169.254/latest/meta-data/")],
                    )
                        .into_response();
                }
                let status = state.answers.lock().unwrap().pop_front().unwrap_or(200);
                (StatusCode::from_u16(status).unwrap(), "thanks").into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), rx)
    }

    fn all(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `n` requests came.
    async fn wait_for(&self, n: usize) -> Vec<Got> {
        for _ in 0..600 {
            let got = self.all();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the receiver got {} requests, not {n}", self.all().len());
    }

    /// Waits for a request of this event.
    async fn wait_event(&self, event: &str) -> Got {
        for _ in 0..600 {
            if let Some(g) = self.all().into_iter().find(|g| g.event() == event) {
                return g;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no {event} delivery; got {:?}", self.all());
    }
}

fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn assert_signed(g: &Got, secret: &str) {
    assert_eq!(
        g.header("x-forge-signature-256"),
        signature(secret, &g.body),
        "signature of {}",
        g.event()
    );
    assert_eq!(g.header("content-type"), "application/json");
    let id = g.header("x-forge-delivery");
    assert_eq!(id.len(), 36, "{id}");
}

async fn add_hook(app: &TestApp, token: &str, project: &str, body: Value) -> Value {
    let res = app
        .api(
            Method::POST,
            &format!("/rest/p/{project}/admin/webhooks"),
            Some(token),
            Some(body),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert!(!res.body.contains(SECRET), "the secret is never returned");
    res.json()
}

async fn deliveries(app: &TestApp, token: &str, project: &str, hook: &str) -> Vec<Value> {
    let res = app
        .api(
            Method::GET,
            &format!("/rest/p/{project}/admin/webhooks/{hook}/deliveries"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    res.json()["deliveries"].as_array().unwrap().clone()
}

/// Waits until the hook's log holds `n` deliveries, the newest in a final state.
async fn settled(app: &TestApp, token: &str, project: &str, hook: &str, n: usize) -> Vec<Value> {
    for _ in 0..600 {
        let list = deliveries(app, token, project, hook).await;
        if list.len() >= n
            && list
                .iter()
                .all(|d| ["delivered", "failed", "refused"].contains(&d["state"].as_str().unwrap()))
        {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "deliveries did not settle: {:?}",
        deliveries(app, token, project, hook).await
    );
}

async fn edit_page(app: &TestApp, token: &str, project: &str, page: &str) {
    let res = app
        .api(
            Method::PUT,
            &format!("/rest/p/{project}/wiki/{page}"),
            Some(token),
            Some(json!({"text": format!("About {page}")})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
}

#[tokio::test]
async fn every_event_arrives_signed_with_its_payload() {
    let app = TestApp::with_config("hookevents", |c| c.webhook_allow_private = true).await;
    let ann = app.user("ann").await;
    app.project(&ann, "hooks", false).await;
    let token = app.token(&ann).await;
    let (base, rx) = Receiver::start().await;
    let hook = add_hook(
        &app,
        &token,
        "hooks",
        json!({"url": format!("{base}/hook"), "secret": SECRET,
               "events": ["push", "tag", "wiki", "ticket", "forum_post", "push"]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    assert_eq!(
        hook["events"],
        json!(["wiki", "ticket", "forum_post", "push", "tag"])
    );
    assert_eq!(hook["created_by"], "ann");
    let list = app
        .api(
            Method::GET,
            "/rest/p/hooks/admin/webhooks",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json()["webhooks"][0]["id"], id.as_str());
    assert!(!list.body.contains(SECRET) && !list.body.contains("secret"));

    // A wiki page.
    edit_page(&app, &token, "hooks", "Hello").await;
    let wiki = rx.wait_event("wiki").await;
    assert_signed(&wiki, SECRET);
    assert_eq!(wiki.path, "/hook");
    let v = wiki.json();
    assert_eq!(v["event"], "wiki");
    assert_eq!(v["action"], "created");
    assert_eq!(v["project"]["shortname"], "hooks");
    assert_eq!(v["project"]["private"], false);
    assert_eq!(v["tool"]["mount"], "wiki");
    assert_eq!(v["sender"]["username"], "ann");
    assert_eq!(v["artifact"]["title"], "page Hello");
    let url = v["artifact"]["url"].as_str().unwrap();
    assert!(
        url.starts_with("http") && url.ends_with("/p/hooks/wiki/Hello/"),
        "{url}"
    );

    // A ticket.
    let res = app
        .api(
            Method::POST,
            "/rest/p/hooks/tickets/",
            Some(&token),
            Some(json!({"summary": "The hook is broken"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let ticket = rx.wait_event("ticket").await;
    assert_signed(&ticket, SECRET);
    let v = ticket.json();
    assert!(
        v["artifact"]["title"]
            .as_str()
            .unwrap()
            .contains("The hook is broken"),
        "{v}"
    );
    assert_eq!(v["tool"]["kind"], "tracker");

    // A forum topic.
    let res = app
        .api(
            Method::POST,
            "/rest/p/hooks/discussion/general/",
            Some(&token),
            Some(json!({"subject": "Hooks?", "text": "Do webhooks work?"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let post = rx.wait_event("forum_post").await;
    assert_signed(&post, SECRET);
    assert!(
        post.json()["comment"]
            .as_str()
            .unwrap()
            .contains("Do webhooks work?")
    );

    // Pushes: a new branch, then one more commit, then a tag.
    let addr = app.serve().await;
    let git = Git::new();
    let work = git.home().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git.ok(&work, &["init", "-q"]).await;
    let first = git
        .commit(&work, "README.md", "first commit", "first commit")
        .await;
    let remote = format!("http://ann:ann-password@{addr}/git/p/hooks/code.git");
    git.ok(&work, &["push", "-q", &remote, "HEAD:main"]).await;
    let push = rx.wait_event("push").await;
    assert_signed(&push, SECRET);
    let v = push.json();
    assert_eq!(v["ref"], "refs/heads/main");
    assert_eq!(v["before"], ZERO);
    assert_eq!(v["after"], first.as_str());
    assert_eq!(v["created"], true);
    assert_eq!(v["commits"].as_array().unwrap().len(), 1);
    assert_eq!(v["commits"][0]["id"], first.as_str());
    assert_eq!(v["commits"][0]["message"], "first commit\n");
    assert_eq!(v["commits"][0]["author"]["email"], "tester@example.org");
    assert!(
        v["commits"][0]["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/p/hooks/code/commit/{first}"))
    );
    assert_eq!(v["head_commit"]["id"], first.as_str());
    assert_eq!(v["repository"]["name"], "code");
    assert_eq!(v["repository"]["full_name"], "hooks/code");
    assert!(
        v["repository"]["clone_url"]
            .as_str()
            .unwrap()
            .ends_with("/git/p/hooks/code.git")
    );
    assert!(
        v["repository"]["html_url"]
            .as_str()
            .unwrap()
            .ends_with("/p/hooks/code/")
    );
    assert_eq!(v["pusher"]["name"], "ann");
    assert_eq!(v["sender"]["username"], "ann");

    let pushes_before = rx.all().iter().filter(|g| g.event() == "push").count();
    let second = git
        .commit(&work, "README.md", "second commit", "second commit")
        .await;
    git.ok(&work, &["push", "-q", &remote, "HEAD:main"]).await;
    for _ in 0..600 {
        if rx.all().iter().filter(|g| g.event() == "push").count() > pushes_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let all = rx.all();
    let v = all.iter().rfind(|g| g.event() == "push").unwrap().json();
    assert_eq!(v["before"], first.as_str());
    assert_eq!(v["after"], second.as_str());
    assert_eq!(v["created"], false);
    assert_eq!(v["forced"], false);
    assert_eq!(v["total_commits"], 1);
    assert_eq!(v["commits"][0]["id"], second.as_str());

    git.ok(&work, &["tag", "v1.0"]).await;
    git.ok(&work, &["push", "-q", &remote, "v1.0"]).await;
    let tag = rx.wait_event("tag").await;
    assert_signed(&tag, SECRET);
    let v = tag.json();
    assert_eq!(v["ref"], "refs/tags/v1.0");
    assert_eq!(v["before"], ZERO);
    assert_eq!(v["after"], second.as_str());

    // Every request verifies, and each is in the log as delivered (one attempt, 200).
    let all = rx.all();
    for g in &all {
        assert_signed(g, SECRET);
    }
    let log = settled(&app, &token, "hooks", &id, all.len()).await;
    assert_eq!(log.len(), all.len());
    for d in &log {
        assert_eq!(d["state"], "delivered", "{d}");
        let attempts = d["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0]["status"], 200);
        assert_eq!(attempts[0]["response"], "thanks");
        assert!(
            all.iter()
                .any(|g| g.header("x-forge-delivery") == d["id"].as_str().unwrap())
        );
    }

    // Deleting the webhook ends the deliveries.
    let res = app
        .api(
            Method::DELETE,
            &format!("/rest/p/hooks/admin/webhooks/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let count = rx.all().len();
    edit_page(&app, &token, "hooks", "Later").await;
    app.tasks_done("notify.change").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.all().len(), count);
}

#[tokio::test]
async fn a_failed_delivery_is_retried_logged_and_redelivered() {
    let app = TestApp::with_config("hookretry", |c| c.webhook_allow_private = true).await;
    let ann = app.user("ann").await;
    app.project(&ann, "retry", false).await;
    let token = app.token(&ann).await;
    let (base, rx) = Receiver::start().await;
    rx.answers.lock().unwrap().push_back(500);
    let hook = add_hook(
        &app,
        &token,
        "retry",
        json!({"url": format!("{base}/ci"), "secret": SECRET, "events": ["wiki"], "mount": "wiki"}),
    )
    .await;
    assert_eq!(hook["mount"], "wiki");
    let id = hook["id"].as_str().unwrap().to_owned();
    edit_page(&app, &token, "retry", "Flaky").await;
    let got = rx.wait_for(2).await;
    assert_eq!(
        got[0].header("x-forge-delivery"),
        got[1].header("x-forge-delivery")
    );
    assert_eq!(got[0].body, got[1].body);
    assert_signed(&got[1], SECRET);
    let log = settled(&app, &token, "retry", &id, 1).await;
    assert_eq!(log.len(), 1, "one delivery, its attempts under it");
    let d = &log[0];
    assert_eq!(d["state"], "delivered");
    assert_eq!(d["payload"]["event"], "wiki");
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{d}");
    assert_eq!(attempts[0]["status"], 500);
    assert_eq!(attempts[0]["outcome"], "retrying");
    assert_eq!(attempts[1]["status"], 200);
    assert_eq!(attempts[1]["outcome"], "delivered");
    assert!(
        attempts[0]["request_headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "X-Forge-Signature-256")
    );
    let did = d["id"].as_str().unwrap().to_owned();

    // Redelivery through REST: the same delivery and body, a new round.
    let res = app
        .api(
            Method::POST,
            &format!("/rest/p/retry/admin/webhooks/{id}/deliveries/{did}/redeliver"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    let got = rx.wait_for(3).await;
    assert_eq!(got[2].header("x-forge-delivery"), did);
    assert_eq!(got[2].body, got[0].body);
    let mut log = Vec::new();
    for _ in 0..400 {
        log = deliveries(&app, &token, "retry", &id).await;
        if log[0]["attempts"].as_array().unwrap().len() == 3 && log[0]["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["round"], 1);
    assert_eq!(log[0]["attempts"][2]["round"], 1);
    assert_eq!(log[0]["attempts"][2]["outcome"], "delivered");

    // The admin page: the list, the log with its redeliver button, which works.
    let browser = app.browser(&ann).await;
    let page = app.get("/p/retry/admin/webhooks", &browser).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(&format!("{base}/ci")));
    assert!(page.body.contains("/p/retry/admin/webhooks\">Webhooks</a>"));
    let log_page = app
        .get(&format!("/p/retry/admin/webhooks/{id}"), &browser)
        .await;
    assert_eq!(log_page.status, StatusCode::OK);
    assert!(log_page.body.contains(&did));
    assert!(log_page.body.contains("Redeliver"));
    assert!(!log_page.body.contains(SECRET));
    let res = app
        .post_form(
            &format!("/p/retry/admin/webhooks/{id}/deliveries/{did}/redeliver"),
            &browser,
            &[],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let got = rx.wait_for(4).await;
    assert_eq!(got[3].header("x-forge-delivery"), did);
    // Without the CSRF token the form is refused.
    let res = app
        .post_raw(
            &format!("/p/retry/admin/webhooks/{id}/deliveries/{did}/redeliver"),
            &browser,
            &[],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn private_targets_are_refused_and_logged() {
    // The default: private targets refused.
    let app = TestApp::new("hookssrf").await;
    let ann = app.user("ann").await;
    app.project(&ann, "ssrf", false).await;
    let token = app.token(&ann).await;
    let (base, rx) = Receiver::start().await;
    let port = base.rsplit(':').next().unwrap().to_owned();
    let targets = [
        format!("{base}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        "http://10.1.2.3/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ];
    let mut ids = Vec::new();
    for url in &targets {
        let hook = add_hook(
            &app,
            &token,
            "ssrf",
            json!({"url": url, "secret": SECRET, "events": ["wiki"]}),
        )
        .await;
        ids.push(hook["id"].as_str().unwrap().to_owned());
    }
    edit_page(&app, &token, "ssrf", "Inside").await;
    for (id, url) in ids.iter().zip(&targets) {
        let log = settled(&app, &token, "ssrf", id, 1).await;
        assert_eq!(log[0]["state"], "refused", "{url}: {}", log[0]);
        let attempt = &log[0]["attempts"][0];
        assert!(attempt["status"].is_null());
        let error = attempt["error"].as_str().unwrap();
        assert!(error.starts_with("refused:"), "{url}: {error}");
    }
    assert!(rx.all().is_empty(), "nothing reached the receiver");
}

#[tokio::test]
async fn a_redirect_inward_is_refused() {
    // Private targets allowed (the receiver is on loopback), but never the metadata address,
    // at whatever hop.
    let app = TestApp::with_config("hookredirect", |c| c.webhook_allow_private = true).await;
    let ann = app.user("ann").await;
    app.project(&ann, "redir", false).await;
    let token = app.token(&ann).await;
    let (base, rx) = Receiver::start().await;
    let hook = add_hook(
        &app,
        &token,
        "redir",
        json!({"url": format!("{base}/to-metadata"), "secret": SECRET, "events": ["wiki"]}),
    )
    .await;
    edit_page(&app, &token, "redir", "Away").await;
    let log = settled(&app, &token, "redir", hook["id"].as_str().unwrap(), 1).await;
    assert_eq!(log[0]["state"], "refused", "{}", log[0]);
    let error = log[0]["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("metadata"), "{error}");
    assert_eq!(rx.all().len(), 1, "only the redirecting hop was reached");
}

#[tokio::test]
async fn a_webhook_of_someone_who_lost_access_delivers_nothing() {
    let app = TestApp::with_config("hooklost", |c| c.webhook_allow_private = true).await;
    let ann = app.user("ann").await;
    let bob = app.user("bob").await;
    let project = app.project(&ann, "secret", true).await;
    app.add_member(&project, &bob, Role::Admin).await;
    let ann_token = app.token(&ann).await;
    let bob_token = app.token(&bob).await;
    let (base, rx) = Receiver::start().await;
    let hook = add_hook(
        &app,
        &bob_token,
        "secret",
        json!({"url": format!("{base}/bob"), "secret": SECRET, "events": ["wiki"]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    // While bob is an admin, his webhook delivers.
    edit_page(&app, &ann_token, "secret", "Before").await;
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].json()["project"]["private"], true);
    settled(&app, &ann_token, "secret", &id, 1).await;

    let res = app
        .api(
            Method::DELETE,
            "/rest/p/secret/admin/members/bob",
            Some(&ann_token),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.body);
    edit_page(&app, &ann_token, "secret", "After").await;
    let log = settled(&app, &ann_token, "secret", &id, 2).await;
    let newest = &log[0];
    assert_eq!(newest["state"], "refused", "{newest}");
    let error = newest["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("bob"), "{error}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.all().len(), 1, "nothing more reached bob's receiver");
    // Bob no longer sees the project's webhooks at all.
    let res = app
        .api(
            Method::GET,
            "/rest/p/secret/admin/webhooks",
            Some(&bob_token),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn only_admins_manage_webhooks_and_input_is_checked() {
    let app = TestApp::new("hookaccess").await;
    let owner = app.user("owner").await;
    let outsider = app.user("outsider").await;
    let member = app.user("member").await;
    let dev = app.user("dev").await;
    let admin = app.user("admin2").await;
    for (name, private) in [("pubhooks", false), ("privhooks", true)] {
        let project = app.project(&owner, name, private).await;
        app.add_member(&project, &member, Role::Member).await;
        app.add_member(&project, &dev, Role::Developer).await;
        app.add_member(&project, &admin, Role::Admin).await;
        let admin_token = app.token(&admin).await;
        let hook = add_hook(
            &app,
            &admin_token,
            name,
            json!({"url": "https://ci.example.org/hook", "secret": SECRET, "events": ["push"]}),
        )
        .await;
        let id = hook["id"].as_str().unwrap().to_owned();
        let list = format!("/rest/p/{name}/admin/webhooks");
        let one = format!("{list}/{id}");
        let log = format!("{one}/deliveries");
        let body = json!({"url": "https://x.example/", "secret": "s", "events": ["wiki"]});
        for (who, user) in [
            ("anonymous", None),
            ("outsider", Some(&outsider)),
            ("member", Some(&member)),
            ("developer", Some(&dev)),
        ] {
            let token = match user {
                Some(u) => Some(app.token(u).await),
                None => None,
            };
            let expected: &[StatusCode] = match (who, private) {
                (_, true) if who == "anonymous" || who == "outsider" => &[StatusCode::NOT_FOUND],
                ("anonymous", false) => &[StatusCode::UNAUTHORIZED],
                _ => &[StatusCode::FORBIDDEN],
            };
            for (method, path, body) in [
                (Method::GET, &list, None),
                (Method::POST, &list, Some(body.clone())),
                (Method::DELETE, &one, None),
                (Method::GET, &log, None),
            ] {
                let res = app.api(method.clone(), path, token.as_deref(), body).await;
                assert!(
                    expected.contains(&res.status),
                    "{who} {method} {path} ({name}): {} {}",
                    res.status,
                    res.body
                );
                assert!(!res.body.contains(SECRET));
            }
            // The page too.
            let browser = match user {
                Some(u) => app.browser(u).await,
                None => Browser::anonymous(),
            };
            let page = app
                .get(&format!("/p/{name}/admin/webhooks"), &browser)
                .await;
            assert!(
                matches!(
                    page.status,
                    StatusCode::FORBIDDEN | StatusCode::NOT_FOUND | StatusCode::SEE_OTHER
                ),
                "{who} page ({name}): {}",
                page.status
            );
        }
        // The admin (not the owner) may; the hook is still there.
        let res = app.api(Method::GET, &list, Some(&admin_token), None).await;
        assert_eq!(res.status, StatusCode::OK);
        assert_eq!(res.json()["webhooks"].as_array().unwrap().len(), 1);
    }

    // Validation: 422 with a message per field.
    let token = app.token(&owner).await;
    let bad = [
        (
            json!({"url": "ftp://example.org/", "secret": "s", "events": ["wiki"]}),
            "url",
        ),
        (
            json!({"url": format!("https://example.org/{}", "a".repeat(2100)), "secret": "s", "events": ["wiki"]}),
            "url",
        ),
        (
            json!({"url": "https://user:pw@example.org/", "secret": "s", "events": ["wiki"]}),
            "url",
        ),
        (
            json!({"url": "https://example.org/", "secret": "", "events": ["wiki"]}),
            "secret",
        ),
        (
            json!({"url": "https://example.org/", "secret": "x".repeat(257), "events": ["wiki"]}),
            "secret",
        ),
        (
            json!({"url": "https://example.org/", "secret": "s", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://example.org/", "secret": "s", "events": ["deploy"]}),
            "events",
        ),
        (
            json!({"url": "https://example.org/", "secret": "s", "events": ["push"], "mount": "wiki"}),
            "events",
        ),
        (
            json!({"url": "https://example.org/", "secret": "s", "events": ["wiki"], "mount": "nothing"}),
            "mount",
        ),
    ];
    for (body, field) in bad {
        let res = app
            .api(
                Method::POST,
                "/rest/p/pubhooks/admin/webhooks",
                Some(&token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            res.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            res.body
        );
        let v = res.json();
        assert_eq!(v["error"]["code"], "invalid");
        assert!(v["error"]["fields"][field].is_string(), "{body}: {v}");
    }
    // At most 20 per project (one is there).
    for i in 1..20 {
        add_hook(
            &app,
            &token,
            "pubhooks",
            json!({"url": format!("https://ci{i}.example.org/"), "secret": SECRET, "events": ["wiki"]}),
        )
        .await;
    }
    let res = app
        .api(
            Method::POST,
            "/rest/p/pubhooks/admin/webhooks",
            Some(&token),
            Some(
                json!({"url": "https://one-too-many.example/", "secret": "s", "events": ["wiki"]}),
            ),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);

    // The page form reports its errors in place and adds a valid webhook.
    let browser = app.browser(&owner).await;
    let res = app
        .post_form(
            "/p/privhooks/admin/webhooks",
            &browser,
            &[("url", "gopher://x"), ("secret", ""), ("mount", "")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.body.contains("Give an http:// or https:// URL"));
    assert!(res.body.contains("Give a secret"));
    assert!(res.body.contains("Choose at least one event"));
    let res = app
        .post_form(
            "/p/privhooks/admin/webhooks",
            &browser,
            &[
                ("url", "https://ci.example.org/form"),
                ("secret", SECRET),
                ("events", "wiki"),
                ("events", "ticket"),
                ("mount", ""),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let res = app
        .api(
            Method::GET,
            "/rest/p/privhooks/admin/webhooks",
            Some(&token),
            None,
        )
        .await;
    let hooks = res.json()["webhooks"].as_array().unwrap().clone();
    let added = hooks
        .iter()
        .find(|h| h["url"] == "https://ci.example.org/form")
        .unwrap();
    assert_eq!(added["events"], json!(["wiki", "ticket"]));
    assert_eq!(added["created_by"], "owner");
    // Deleted through the page.
    let res = app
        .post_form(
            &format!(
                "/p/privhooks/admin/webhooks/{}/delete",
                added["id"].as_str().unwrap()
            ),
            &browser,
            &[],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let res = app
        .api(
            Method::GET,
            "/rest/p/privhooks/admin/webhooks",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(res.json()["webhooks"].as_array().unwrap().len(), 1);
    // Unknown ids are 404s.
    let res = app
        .api(
            Method::DELETE,
            "/rest/p/privhooks/admin/webhooks/nonsense",
            Some(&token),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);

    // The spec lists the calls.
    let spec = app.api(Method::GET, "/rest/openapi.json", None, None).await;
    let paths = &spec.json()["paths"];
    assert!(paths["/rest/p/{project}/admin/webhooks"]["post"].is_object());
    assert!(paths["/rest/p/{project}/admin/webhooks/{id}"]["delete"].is_object());
    assert!(paths["/rest/p/{project}/admin/webhooks/{id}/deliveries"]["get"].is_object());
}
