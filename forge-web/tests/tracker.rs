//! The tracker through its REST API and domain on the real store: ticket numbers under
//! concurrency, merging concurrent edits field by field, lists (filters, sort, query syntax,
//! saved searches), bulk edit (history on each ticket, one mail per watcher), private tickets
//! hidden from outsiders everywhere, moderation of anonymous tickets, and the Allura JSON
//! export imported back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use axum::http::{Method, StatusCode};
use common::{TestApp, viewer};
use forge_tools::acl::Role;
use forge_tools::discussion::{self, NewPost};
use forge_tools::tools::tracker::actions;
use forge_tools::tools::tracker::config::{CustomField, FieldType, Milestone, TrackerConfig};
use forge_tools::users::User;
use serde_json::{Value, json};

async fn file(app: &TestApp, token: Option<&str>, project: &str, body: Value) -> Value {
    let res = app
        .api(
            Method::POST,
            &format!("/rest/p/{project}/tickets/"),
            token,
            Some(body),
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    res.json()
}

async fn list(app: &TestApp, token: Option<&str>, project: &str, query: &str) -> Value {
    let res = app
        .api(
            Method::GET,
            &format!("/rest/p/{project}/tickets/?{query}"),
            token,
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{query}: {}", res.body);
    res.json()
}

fn nums(v: &Value) -> Vec<i64> {
    v["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ticket_num"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn numbers_are_unique_and_gapless_under_concurrency() {
    let app = TestApp::new("tracker-numbers").await;
    let alice = app.user("alice").await;
    let token = app.token(&alice).await;
    app.project(&alice, "burst", false).await;
    let calls = (0..50).map(|i| {
        let app = &app;
        let token = token.clone();
        async move {
            let res = app
                .api(
                    Method::POST,
                    "/rest/p/burst/tickets/",
                    Some(&token),
                    Some(json!({"summary": format!("ticket {i}")})),
                )
                .await;
            assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
            res.json()["ticket_num"].as_i64().unwrap()
        }
    });
    let mut got = futures::future::join_all(calls).await;
    got.sort_unstable();
    assert_eq!(got, (1..=50).collect::<Vec<i64>>());
    // And the next one continues the sequence.
    let next = file(&app, Some(&token), "burst", json!({"summary": "after"})).await;
    assert_eq!(next["ticket_num"], 51);
}

#[tokio::test]
async fn concurrent_edits_merge_by_field_and_clash_on_the_same_field() {
    let app = TestApp::new("tracker-merge").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let project = app.project(&alice, "merge", false).await;
    app.add_member(&project, &bob, Role::Developer).await;
    let (ta, tb) = (app.token(&alice).await, app.token(&bob).await);
    let t = file(
        &app,
        Some(&ta),
        "merge",
        json!({"summary": "Crash on start", "labels": ["bug"]}),
    )
    .await;
    assert_eq!(t["version"], 1);
    assert_eq!(t["status"], "open");

    // Both start from version 1: Alice changes the status, Bob the summary. Both land.
    let a = app
        .api(
            Method::PATCH,
            "/rest/p/merge/tickets/1",
            Some(&ta),
            Some(json!({"status": "accepted", "base_version": 1})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let b = app
        .api(
            Method::PATCH,
            "/rest/p/merge/tickets/1",
            Some(&tb),
            Some(json!({"summary": "Crash on start-up", "base_version": 1})),
        )
        .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    let now = app
        .api(Method::GET, "/rest/p/merge/tickets/1", None, None)
        .await
        .json();
    assert_eq!(now["status"], "accepted");
    assert_eq!(now["summary"], "Crash on start-up");
    assert_eq!(now["version"], 3);

    // Bob, still on version 1, changes the status too: 409 naming it, nothing written.
    let c = app
        .api(
            Method::PATCH,
            "/rest/p/merge/tickets/1",
            Some(&tb),
            Some(json!({"status": "closed", "base_version": 1})),
        )
        .await;
    assert_eq!(c.status, StatusCode::CONFLICT, "{}", c.body);
    let msg = c.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("status"), "{msg}");
    let after = app
        .api(Method::GET, "/rest/p/merge/tickets/1", None, None)
        .await
        .json();
    assert_eq!(after["status"], "accepted");
    assert_eq!(after["version"], 3);

    // Unassigning with null differs from leaving the field out.
    let d = app
        .api(
            Method::PATCH,
            "/rest/p/merge/tickets/1",
            Some(&ta),
            Some(json!({"assigned_to": "bob"})),
        )
        .await;
    assert_eq!(d.json()["assigned_to"], "bob");
    let e = app
        .api(
            Method::PATCH,
            "/rest/p/merge/tickets/1",
            Some(&ta),
            Some(json!({"labels": ["bug", "ui"]})),
        )
        .await;
    assert_eq!(e.json()["assigned_to"], "bob");
    let f = app
        .api(
            Method::PATCH,
            "/rest/p/merge/tickets/1",
            Some(&ta),
            Some(json!({"assigned_to": null})),
        )
        .await;
    assert_eq!(f.json()["assigned_to"], Value::Null);

    // Every change is history: who, and old → new.
    let ctx = app.ctx_of(&alice, "merge").await;
    let tool = ctx.tool("tickets").unwrap().clone();
    let t = actions::get(&app.forge, &viewer(&alice), &ctx, &tool, 1)
        .await
        .unwrap();
    let history = forge_tools::tools::tracker::tickets::history(app.forge.db(), t.id)
        .await
        .unwrap();
    let status = history
        .iter()
        .flat_map(|c| c.changes.iter().map(move |f| (c.author.as_str(), f)))
        .find(|(_, f)| f.field == "status")
        .unwrap();
    assert_eq!(status.0, "alice");
    assert_eq!(
        (status.1.old.as_str(), status.1.new.as_str()),
        ("open", "accepted")
    );
    assert_eq!(history.len(), 5);

    // A non-developer may not change fields.
    let carol = app.user("carol").await;
    let tc = app.token(&carol).await;
    let g = app
        .api(
            Method::PATCH,
            "/rest/p/merge/tickets/1",
            Some(&tc),
            Some(json!({"status": "closed"})),
        )
        .await;
    assert_eq!(g.status, StatusCode::FORBIDDEN, "{}", g.body);
}

async fn configure(app: &TestApp, owner: &User, project: &str) {
    let ctx = app.ctx_of(owner, project).await;
    let tool = ctx.tool("tickets").unwrap().clone();
    let mut config = TrackerConfig::of(&tool);
    config.custom_fields.push(CustomField {
        name: "_priority".into(),
        label: "Priority".into(),
        kind: FieldType::Select,
        required: false,
        default: "normal".into(),
        options: vec!["low".into(), "normal".into(), "high".into()],
        show_in_list: true,
    });
    config.custom_fields.push(CustomField {
        name: "_estimate".into(),
        label: "Estimate".into(),
        kind: FieldType::Number,
        required: false,
        default: String::new(),
        options: Vec::new(),
        show_in_list: false,
    });
    config.milestones.push(Milestone {
        name: "1.0".into(),
        description: "First".into(),
        due: "2027-01-31".into(),
        closed: false,
    });
    config.milestones.push(Milestone {
        name: "2.0".into(),
        description: String::new(),
        due: String::new(),
        closed: false,
    });
    actions::save_config(&app.forge, &ctx, &tool, &config)
        .await
        .unwrap();
}

#[tokio::test]
async fn lists_filter_sort_query_and_saved_searches() {
    let app = TestApp::new("tracker-lists").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let project = app.project(&alice, "lists", false).await;
    app.add_member(&project, &bob, Role::Developer).await;
    configure(&app, &alice, "lists").await;
    let ta = app.token(&alice).await;
    let tb = app.token(&bob).await;
    file(&app, Some(&ta), "lists", json!({"summary": "Zebra crash", "labels": ["bug"], "milestone": "1.0", "assigned_to": "bob", "custom_fields": {"_priority": "high", "_estimate": 3}})).await;
    file(&app, Some(&ta), "lists", json!({"summary": "Apple docs", "labels": ["docs"], "milestone": "2.0", "description": "mentions the frobnicator"})).await;
    file(&app, Some(&tb), "lists", json!({"summary": "Mango bug", "labels": ["bug", "wontfix"], "milestone": "1.0", "custom_fields": {"priority": "low", "_estimate": 8}})).await;
    app.api(
        Method::PATCH,
        "/rest/p/lists/tickets/3",
        Some(&tb),
        Some(json!({"status": "closed"})),
    )
    .await;

    // Bad custom values are refused with the field named.
    let bad = app
        .api(
            Method::POST,
            "/rest/p/lists/tickets/",
            Some(&ta),
            Some(json!({"summary": "x", "custom_fields": {"_priority": "urgent"}})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains("_priority"), "{}", bad.body);
    let bad = app
        .api(
            Method::POST,
            "/rest/p/lists/tickets/",
            Some(&ta),
            Some(json!({"summary": "x", "milestone": "9.9"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);

    let all = list(&app, None, "lists", "").await;
    assert_eq!(all["total"], 3);
    assert_eq!(nums(&all), vec![3, 2, 1], "newest first by default");
    // The default of a select field applies when none is given.
    assert_eq!(all["tickets"][1]["custom_fields"]["_priority"], "normal");

    let cases: &[(&str, Vec<i64>)] = &[
        ("q=status:open&sort=ticket_num", vec![1, 2]),
        ("q=status:closed", vec![3]),
        ("q=label:bug&sort=ticket_num", vec![1, 3]),
        ("q=label:bug+-label:wontfix", vec![1]),
        ("q=milestone:1.0+status:open", vec![1]),
        ("q=assigned_to:bob", vec![1]),
        ("q=assigned_to:none&sort=ticket_num", vec![2, 3]),
        ("q=reported_by:bob", vec![3]),
        ("q=priority:high", vec![1]),
        ("q=_estimate:%3E5", vec![3]),
        ("q=frobnicator", vec![2]),
        ("q=%22Zebra+crash%22", vec![1]),
        ("q=status:all&sort=summary", vec![2, 3, 1]),
        ("sort=summary+desc", vec![1, 3, 2]),
        ("sort=-_estimate&q=_estimate:%3E0", vec![3, 1]),
    ];
    for (query, want) in cases {
        let got = list(&app, None, "lists", query).await;
        assert_eq!(&nums(&got), want, "{query}");
        assert_eq!(got["total"], want.len(), "{query}");
    }
    // Paging.
    let p2 = list(&app, None, "lists", "sort=ticket_num&limit=2&page=2").await;
    assert_eq!(nums(&p2), vec![3]);
    assert_eq!(p2["total"], 3);
    // Invalid queries and sorts are a clear 400.
    for q in [
        "q=stauts:open",
        "q=%22unterminated",
        "sort=nonsense",
        "page=0",
        "limit=1000",
    ] {
        let res = app
            .api(
                Method::GET,
                &format!("/rest/p/lists/tickets/?{q}"),
                None,
                None,
            )
            .await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{q}: {}", res.body);
        assert!(!res.json()["error"]["message"].as_str().unwrap().is_empty());
    }
    // `me` needs someone logged in, and means them.
    let mine = list(&app, Some(&tb), "lists", "q=assigned_to:me").await;
    assert_eq!(nums(&mine), vec![1]);

    // Saved searches with their counts; a shared one needs save_searches (developers).
    let ctx_b = app.ctx_of(&bob, "lists").await;
    let tool = ctx_b.tool("tickets").unwrap().clone();
    actions::save_bin(
        &app.forge,
        &viewer(&bob),
        &ctx_b,
        &tool,
        "Open bugs",
        "status:open label:bug",
        "",
        true,
    )
    .await
    .unwrap();
    let carol = app.user("carol").await;
    let ctx_c = app.ctx_of(&carol, "lists").await;
    let denied = actions::save_bin(
        &app.forge,
        &viewer(&carol),
        &ctx_c,
        &tool,
        "Mine",
        "status:open",
        "",
        true,
    )
    .await;
    assert!(
        matches!(denied, Err(forge_tools::Error::Forbidden)),
        "{denied:?}"
    );
    actions::save_bin(
        &app.forge,
        &viewer(&carol),
        &ctx_c,
        &tool,
        "Docs",
        "label:docs",
        "",
        false,
    )
    .await
    .unwrap();
    let bad_bin = actions::save_bin(
        &app.forge,
        &viewer(&carol),
        &ctx_c,
        &tool,
        "Bad",
        "stauts:x",
        "",
        false,
    )
    .await;
    assert!(
        matches!(bad_bin, Err(forge_tools::Error::Invalid(_))),
        "{bad_bin:?}"
    );
    let tc = app.token(&carol).await;
    let bins = app
        .api(Method::GET, "/rest/p/lists/tickets/_bins", Some(&tc), None)
        .await
        .json();
    let bins = bins["bins"].as_array().unwrap();
    assert_eq!(bins.len(), 2, "{bins:?}");
    let open_bugs = bins.iter().find(|b| b["name"] == "Open bugs").unwrap();
    assert_eq!(open_bugs["count"], 1);
    assert_eq!(
        bins.iter().find(|b| b["name"] == "Docs").unwrap()["count"],
        1
    );
    // Bob does not see Carol's personal bin.
    let bob_bins = app
        .api(Method::GET, "/rest/p/lists/tickets/_bins", Some(&tb), None)
        .await
        .json();
    assert_eq!(bob_bins["bins"].as_array().unwrap().len(), 1);

    // The number of saved searches is bounded (each list view counts them all).
    for i in 1..forge_tools::tools::tracker::bins::MAX_BINS {
        actions::save_bin(
            &app.forge,
            &viewer(&bob),
            &ctx_b,
            &tool,
            &format!("Bin {i}"),
            "status:open",
            "",
            true,
        )
        .await
        .unwrap();
    }
    let over = actions::save_bin(
        &app.forge,
        &viewer(&bob),
        &ctx_b,
        &tool,
        "One more",
        "status:open",
        "",
        true,
    )
    .await;
    assert!(
        matches!(over, Err(forge_tools::Error::Invalid(_))),
        "{over:?}"
    );

    // Milestones with progress.
    let ms = app
        .api(Method::GET, "/rest/p/lists/tickets/_milestones", None, None)
        .await
        .json();
    let one = ms["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "1.0")
        .unwrap()
        .clone();
    assert_eq!(
        (
            one["tickets_closed"].as_u64(),
            one["tickets_total"].as_u64()
        ),
        (Some(1), Some(2))
    );
}

#[tokio::test]
async fn bulk_edit_records_history_and_mails_each_watcher_once() {
    let app = TestApp::new("tracker-bulk").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let project = app.project(&alice, "bulk", false).await;
    app.add_member(&project, &bob, Role::Developer).await;
    configure(&app, &alice, "bulk").await;
    let ta = app.token(&alice).await;
    for s in ["one", "two", "three"] {
        file(
            &app,
            Some(&ta),
            "bulk",
            json!({"summary": s, "labels": ["old"]}),
        )
        .await;
    }
    // Bob watches the tracker and two of the tickets.
    let ctx_b = app.ctx_of(&bob, "bulk").await;
    let tool = ctx_b.tool("tickets").unwrap().clone();
    forge_tools::notify::watch(
        &app.forge,
        &viewer(&bob),
        &ctx_b,
        forge_tools::notify::Target::Tool(&tool),
    )
    .await
    .unwrap();
    for n in [1, 2] {
        let t = actions::get(&app.forge, &viewer(&bob), &ctx_b, &tool, n)
            .await
            .unwrap();
        forge_tools::notify::watch(
            &app.forge,
            &viewer(&bob),
            &ctx_b,
            forge_tools::notify::Target::Artifact {
                tool: &tool,
                key: t.key(),
                title: "t".into(),
            },
        )
        .await
        .unwrap();
    }
    app.tasks_done("notify.change").await;
    let before = app.mails().len();

    let res = app
        .api(
            Method::POST,
            "/rest/p/bulk/tickets/_bulk",
            Some(&ta),
            Some(json!({"tickets": [1, 2, 3], "status": "closed", "milestone": "1.0", "labels_add": ["new"], "labels_remove": ["old"], "custom_fields": {"_priority": "high"}})),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.json()["changed"], 3);
    app.tasks_done("notify.change").await;
    let after = app.mails();
    let to_bob: Vec<&String> = after
        .iter()
        .filter(|m| m.contains("To: bob@example.org"))
        .collect();
    assert_eq!(after.len() - before, 1, "one mail for the whole edit");
    assert!(to_bob.iter().any(|m| m.contains("3 tickets")), "{to_bob:?}");

    for n in 1..=3 {
        let t = app
            .api(
                Method::GET,
                &format!("/rest/p/bulk/tickets/{n}"),
                None,
                None,
            )
            .await
            .json();
        assert_eq!(t["status"], "closed");
        assert_eq!(t["milestone"], "1.0");
        assert_eq!(t["labels"], json!(["new"]));
        assert_eq!(t["custom_fields"]["_priority"], "high");
        let k = actions::get(&app.forge, &viewer(&bob), &ctx_b, &tool, n)
            .await
            .unwrap();
        let h = forge_tools::tools::tracker::tickets::history(app.forge.db(), k.id)
            .await
            .unwrap();
        assert_eq!(h.len(), 1, "one history entry per ticket");
        let fields: Vec<&str> = h[0].changes.iter().map(|f| f.field.as_str()).collect();
        for f in ["status", "milestone", "labels", "_priority"] {
            assert!(fields.contains(&f), "{fields:?}");
        }
    }
    // A bad value changes nothing.
    let res = app
        .api(
            Method::POST,
            "/rest/p/bulk/tickets/_bulk",
            Some(&ta),
            Some(json!({"tickets": [1, 2], "status": "nonsense"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let t = app
        .api(Method::GET, "/rest/p/bulk/tickets/1", None, None)
        .await
        .json();
    assert_eq!(t["status"], "closed");
}

#[tokio::test]
async fn private_tickets_stay_hidden_from_outsiders() {
    let app = TestApp::new("tracker-private").await;
    let alice = app.user("alice").await;
    let dev = app.user("dev").await;
    let reporter = app.user("reporter").await;
    let outsider = app.user("outsider").await;
    let project = app.project(&alice, "secrets", false).await;
    app.add_member(&project, &dev, Role::Developer).await;
    let tr = app.token(&reporter).await;
    let to = app.token(&outsider).await;
    let td = app.token(&dev).await;
    file(
        &app,
        Some(&tr),
        "secrets",
        json!({"summary": "public zanzibar"}),
    )
    .await;
    let p = file(
        &app,
        Some(&tr),
        "secrets",
        json!({"summary": "private zanzibar", "description": "the vault code", "private": true}),
    )
    .await;
    assert_eq!(p["private"], true);
    // A comment on it is as private as the ticket.
    let c = app
        .api(
            Method::POST,
            "/rest/p/secrets/tickets/2/comments",
            Some(&tr),
            Some(json!({"text": "more zanzibar"})),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);

    for (who, token) in [("anonymous", None), ("outsider", Some(to.as_str()))] {
        let l = list(&app, token, "secrets", "q=zanzibar").await;
        assert_eq!(nums(&l), vec![1], "{who}");
        assert_eq!(l["total"], 1, "{who}: counts exclude it");
        for path in [
            "/rest/p/secrets/tickets/2",
            "/rest/p/secrets/tickets/2/comments",
        ] {
            let r = app.api(Method::GET, path, token, None).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND, "{who} {path}");
        }
        let page = app
            .get("/p/secrets/tickets/2/", &common::Browser::anonymous())
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        let ms = app
            .api(
                Method::GET,
                "/rest/p/secrets/tickets/_milestones",
                token,
                None,
            )
            .await;
        assert!(!ms.body.contains("vault"));
    }
    for (who, token) in [("reporter", &tr), ("developer", &td)] {
        let l = list(&app, Some(token), "secrets", "q=zanzibar&sort=ticket_num").await;
        assert_eq!(nums(&l), vec![1, 2], "{who}");
        let r = app
            .api(Method::GET, "/rest/p/secrets/tickets/2", Some(token), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{who}");
    }
    // Search: found by its reporter and developers, never by others.
    app.tasks_done("search.index").await;
    let search = |token: Option<String>| {
        let app = &app;
        async move {
            app.api(Method::GET, "/rest/search?q=vault", token.as_deref(), None)
                .await
                .json()
        }
    };
    assert_eq!(search(Some(tr.clone())).await["total"], 1);
    assert_eq!(search(Some(td.clone())).await["total"], 1);
    assert_eq!(search(Some(to.clone())).await["total"], 0);
    assert_eq!(search(None).await["total"], 0);
    let comment_hit = app
        .api(Method::GET, "/rest/search?q=zanzibar", Some(&to), None)
        .await
        .json();
    assert_eq!(comment_hit["total"], 1, "{comment_hit}");
}

#[tokio::test]
async fn anonymous_tickets_wait_for_a_moderator() {
    let app = TestApp::new("tracker-moderation").await;
    let alice = app.user("alice").await;
    app.project(&alice, "open", false).await;
    // Off by default: anonymous visitors may not file.
    let r = app
        .api(
            Method::POST,
            "/rest/p/open/tickets/",
            None,
            Some(json!({"summary": "hello"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let ctx = app.ctx_of(&alice, "open").await;
    let tool = ctx.tool("tickets").unwrap().clone();
    let mut config = TrackerConfig::of(&tool);
    config.anonymous_tickets = true;
    actions::save_config(&app.forge, &ctx, &tool, &config)
        .await
        .unwrap();

    let t = file(&app, None, "open", json!({"summary": "anonymous report"})).await;
    assert_eq!(t["moderation"], "pending");
    assert_eq!(list(&app, None, "open", "").await["total"], 0);
    let bob = app.user("bob").await;
    let tb = app.token(&bob).await;
    assert_eq!(list(&app, Some(&tb), "open", "").await["total"], 0);
    let ta = app.token(&alice).await;
    assert_eq!(
        list(&app, Some(&ta), "open", "").await["total"],
        1,
        "moderators see it"
    );

    let ctx = app.ctx_of(&alice, "open").await;
    let tool = ctx.tool("tickets").unwrap().clone();
    actions::approve(&app.forge, &viewer(&alice), &ctx, &tool, 1)
        .await
        .unwrap();
    let l = list(&app, None, "open", "").await;
    assert_eq!(nums(&l), vec![1]);
    assert_eq!(l["tickets"][0]["moderation"], "ok");
}

#[tokio::test]
async fn a_refused_first_comment_leaves_no_thread() {
    let app = TestApp::new("tracker-refused").await;
    let alice = app.user("alice").await;
    app.project(&alice, "quiet", false).await;
    let bob = app.user("bob").await;
    let tb = app.token(&bob).await;
    file(
        &app,
        Some(&tb),
        "quiet",
        json!({"summary": "no comments yet"}),
    )
    .await;
    assert_eq!(app.count(discussion::THREADS, bson::doc! {}).await, 0);

    let ctx = app.ctx_of(&bob, "quiet").await;
    let tool = ctx.tool("tickets").unwrap().clone();
    let bot = NewPost {
        text: "Buy now".into(),
        parent: None,
        honeypot: Some("http://spam.example".into()),
    };
    let err = actions::comment(&app.forge, &viewer(&bob), &ctx, &tool, 1, bot)
        .await
        .unwrap_err();
    assert!(matches!(err, forge_tools::Error::Invalid(_)), "{err}");
    assert_eq!(app.count(discussion::THREADS, bson::doc! {}).await, 0);

    let path = "/rest/p/quiet/tickets/1/comments";
    for body in [
        json!({"text": "  "}),
        json!({"text": "a reply", "parent": "000000000000000000000000"}),
    ] {
        let r = app.api(Method::POST, path, Some(&tb), Some(body)).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(app.count(discussion::THREADS, bson::doc! {}).await, 0);
    }
    assert_eq!(app.count(discussion::POSTS, bson::doc! {}).await, 0);

    let r = app
        .api(
            Method::POST,
            path,
            Some(&tb),
            Some(json!({"text": "hello"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(
        app.count(
            discussion::THREADS,
            bson::doc! {"title": "ticket #1", "num_posts": 1_i64}
        )
        .await,
        1
    );
}

#[tokio::test]
async fn export_imports_back_into_an_empty_tracker() {
    let app = TestApp::new("tracker-export").await;
    let alice = app.user("alice").await;
    let bob = app.user("bob").await;
    let project = app.project(&alice, "moving", false).await;
    app.add_member(&project, &bob, Role::Developer).await;
    configure(&app, &alice, "moving").await;
    let ta = app.token(&alice).await;
    file(&app, Some(&ta), "moving", json!({"summary": "First", "description": "desc *one*", "labels": ["a", "b"], "milestone": "1.0", "assigned_to": "bob", "custom_fields": {"_priority": "high", "_estimate": 2.5}})).await;
    file(
        &app,
        Some(&ta),
        "moving",
        json!({"summary": "Second", "private": true}),
    )
    .await;
    for text in ["first comment", "second comment"] {
        let r = app
            .api(
                Method::POST,
                "/rest/p/moving/tickets/1/comments",
                Some(&ta),
                Some(json!({"text": text})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    app.api(
        Method::PATCH,
        "/rest/p/moving/tickets/2",
        Some(&ta),
        Some(json!({"status": "wont-fix"})),
    )
    .await;
    let ctx = app.ctx_of(&alice, "moving").await;
    let tool = ctx.tool("tickets").unwrap().clone();
    actions::save_bin(
        &app.forge,
        &viewer(&alice),
        &ctx,
        &tool,
        "Mine",
        "assigned_to:bob",
        "",
        true,
    )
    .await
    .unwrap();

    let export = app
        .api(
            Method::GET,
            "/rest/p/moving/tickets/_export",
            Some(&ta),
            None,
        )
        .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.body);
    let export = export.json();
    for key in [
        "tickets",
        "tracker_config",
        "milestones",
        "custom_fields",
        "saved_bins",
    ] {
        assert!(export.get(key).is_some(), "{key} missing");
    }
    // Non-admins may not export.
    let tb = app.token(&bob).await;
    let denied = app
        .api(
            Method::GET,
            "/rest/p/moving/tickets/_export",
            Some(&tb),
            None,
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);

    // Into a fresh tracker of another project.
    app.project(&alice, "arrive", false).await;
    let r = app
        .api(
            Method::POST,
            "/rest/p/arrive/admin/tools",
            Some(&ta),
            Some(json!({"kind": "tracker", "mount": "imported"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .api(
            Method::POST,
            "/rest/p/arrive/imported/_import",
            Some(&ta),
            Some(export.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["tickets"], 2);
    assert_eq!(r.json()["comments"], 2);

    let strip = |mut v: Value| {
        for k in ["url", "modified", "version"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    for n in [1, 2] {
        let a = app
            .api(
                Method::GET,
                &format!("/rest/p/moving/tickets/{n}"),
                Some(&ta),
                None,
            )
            .await
            .json();
        let b = app
            .api(
                Method::GET,
                &format!("/rest/p/arrive/imported/{n}"),
                Some(&ta),
                None,
            )
            .await
            .json();
        assert_eq!(strip(a), strip(b), "ticket {n}");
    }
    let comments = app
        .api(
            Method::GET,
            "/rest/p/arrive/imported/1/comments",
            Some(&ta),
            None,
        )
        .await
        .json();
    let texts: Vec<&str> = comments["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["first comment", "second comment"]);
    let bins = app
        .api(
            Method::GET,
            "/rest/p/arrive/imported/_bins",
            Some(&ta),
            None,
        )
        .await
        .json();
    assert_eq!(bins["bins"][0]["name"], "Mine");
    // The counter continues after the imported numbers.
    let next = file(&app, Some(&ta), "arrive", json!({"summary": "x"})).await;
    assert_eq!(next["ticket_num"], 1, "the default tracker is separate");
    let r = app
        .api(
            Method::POST,
            "/rest/p/arrive/imported/",
            Some(&ta),
            Some(json!({"summary": "next"})),
        )
        .await;
    assert_eq!(r.json()["ticket_num"], 3);

    // Importing again: the numbers are taken, refused with them named, nothing written.
    let before = app.count("tracker_tickets", bson::doc! {}).await;
    let again = app
        .api(
            Method::POST,
            "/rest/p/arrive/imported/_import",
            Some(&ta),
            Some(export),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(again.body.contains("1, 2"), "{}", again.body);
    assert_eq!(app.count("tracker_tickets", bson::doc! {}).await, before);
    // A file with a number twice is refused the same way.
    let dup =
        json!({"tickets": [{"ticket_num": 7, "summary": "a"}, {"ticket_num": 7, "summary": "b"}]});
    let r = app
        .api(
            Method::POST,
            "/rest/p/arrive/imported/_import",
            Some(&ta),
            Some(dup),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(app.count("tracker_tickets", bson::doc! {}).await, before);
}

#[tokio::test]
async fn attachments_by_reporter_and_developers_only() {
    let app = TestApp::new("tracker-files").await;
    let alice = app.user("alice").await;
    let reporter = app.user("reporter").await;
    let other = app.user("other").await;
    app.project(&alice, "files", false).await;
    let tr = app.token(&reporter).await;
    let to = app.token(&other).await;
    file(&app, Some(&tr), "files", json!({"summary": "Has a log"})).await;
    let anon = common::Browser::anonymous();
    let up = app
        .post_multipart(
            "/rest/p/files/tickets/1/attachments",
            &anon,
            &[],
            ("crash.log", b"boom at line 3\n"),
            Some(&tr),
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    let url = up.json()["url"].as_str().unwrap().to_owned();
    let denied = app
        .post_multipart(
            "/rest/p/files/tickets/1/attachments",
            &anon,
            &[],
            ("evil.html", b"<script>x</script>"),
            Some(&to),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{}", denied.body);
    let list = app
        .api(
            Method::GET,
            "/rest/p/files/tickets/1/attachments",
            None,
            None,
        )
        .await
        .json();
    let names: Vec<&str> = list["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["filename"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["crash.log"]);
    let got = app.api(Method::GET, &url, None, None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, "boom at line 3\n");
    // The ticket page lists it, and the history says who attached what.
    let page = app.get("/p/files/tickets/1/", &anon).await;
    assert!(page.body.contains("crash.log"), "{}", page.body);
    let ctx = app.ctx_of(&alice, "files").await;
    let tool = ctx.tool("tickets").unwrap().clone();
    let t = actions::get(&app.forge, &viewer(&alice), &ctx, &tool, 1)
        .await
        .unwrap();
    let h = forge_tools::tools::tracker::tickets::history(app.forge.db(), t.id)
        .await
        .unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(
        (
            h[0].author.as_str(),
            h[0].changes[0].field.as_str(),
            h[0].changes[0].new.as_str()
        ),
        ("reporter", "attachment", "crash.log")
    );
    // Exported by name.
    let ta = app.token(&alice).await;
    let export = app
        .api(
            Method::GET,
            "/rest/p/files/tickets/_export",
            Some(&ta),
            None,
        )
        .await
        .json();
    assert_eq!(
        export["tickets"][0]["attachments"][0]["filename"],
        "crash.log"
    );
}

#[tokio::test]
async fn imports_are_held_to_the_same_bounds_as_filed_tickets() {
    let app = TestApp::with_config("tracker-import-bounds", |c| c.max_text_bytes = 1_000).await;
    let alice = app.user("alice").await;
    app.project(&alice, "bounds", false).await;
    let ta = app.token(&alice).await;
    let cases = [
        json!({"tickets": [{"ticket_num": 1, "summary": "a", "description": "d".repeat(1_001)}]}),
        json!({"tickets": [{"ticket_num": 1, "summary": "a", "labels": ["l".repeat(51)]}]}),
        json!({"tickets": [{"ticket_num": 1, "summary": "a", "labels": vec!["x"; 21]}]}),
        json!({"tickets": [{"ticket_num": 1, "summary": "a", "discussion_thread": {"posts": [{"text": "p".repeat(1_001), "author": "alice"}]}}]}),
    ];
    for body in cases {
        let r = app
            .api(
                Method::POST,
                "/rest/p/bounds/tickets/_import",
                Some(&ta),
                Some(body),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert!(r.body.contains("Ticket 1"), "{}", r.body);
    }
    assert_eq!(app.count("tracker_tickets", bson::doc! {}).await, 0);
    assert_eq!(app.count("discussion_posts", bson::doc! {}).await, 0);
}

/// A long tracker listed newest first: pages come from among the newest numbers when they
/// fill from there, and from the whole tracker when they do not (an anonymous visitor who
/// sees only a few old tickets), and either way equal the order everyone expects.
#[tokio::test]
async fn long_trackers_list_every_page_in_order_for_every_viewer() {
    let app = TestApp::new("tracker-long").await;
    let alice = app.user("alice").await;
    app.project(&alice, "long", false).await;
    let ta = app.token(&alice).await;
    let first = file(&app, Some(&ta), "long", json!({"summary": "ticket 1"})).await;
    assert_eq!(first["ticket_num"], 1);
    // 1,999 more, written to the store directly (filing them one by one takes minutes):
    // private past 300, but for every 50th, so an anonymous list matches more tickets than
    // a window spans yet is sparse among the newest (its window does not fill).
    let db = app.forge.db();
    let tickets = db.collection::<bson::Document>("tracker_tickets");
    let model = tickets
        .find_one(bson::doc! {"ticket_num": 1_i64})
        .await
        .unwrap()
        .unwrap();
    let docs: Vec<bson::Document> = (2..=2000_i64)
        .map(|n| {
            let mut d = model.clone();
            d.insert("_id", bson::oid::ObjectId::new());
            d.insert("ticket_num", n);
            d.insert("summary", format!("ticket {n}"));
            d.insert("private", n > 300 && n % 50 != 0);
            d
        })
        .collect();
    tickets.insert_many(docs).await.unwrap();
    db.collection::<bson::Document>("tracker_counters")
        .update_one(
            bson::doc! {"_id": model.get_object_id("tool_id").unwrap()},
            bson::doc! {"$set": {"seq": 2000_i64}},
        )
        .await
        .unwrap();

    let everyone: Vec<i64> = (1..=2000).rev().collect();
    let public: Vec<i64> = everyone
        .iter()
        .copied()
        .filter(|n| *n <= 300 || n % 50 == 0)
        .collect();
    for (token, expected) in [(Some(ta.as_str()), &everyone), (None, &public)] {
        for limit in [10_usize, 25, 100] {
            for page in 1..=4 {
                let got = list(&app, token, "long", &format!("limit={limit}&page={page}")).await;
                let want: Vec<i64> = expected
                    .iter()
                    .copied()
                    .skip((page - 1) * limit)
                    .take(limit)
                    .collect();
                assert_eq!(
                    nums(&got),
                    want,
                    "limit {limit} page {page}, admin {}",
                    token.is_some()
                );
                assert_eq!(got["total"].as_u64(), Some(expected.len() as u64));
            }
        }
    }
    // A new ticket is counted and listed at once (the kept count is dropped with the change;
    // the count of the older numbers, kept apart, stays right: the new one is above them).
    let new = file(&app, Some(&ta), "long", json!({"summary": "ticket 2001"})).await;
    assert_eq!(new["ticket_num"], 2001);
    let got = list(&app, None, "long", "limit=10").await;
    assert_eq!(got["total"].as_u64(), Some(public.len() as u64 + 1));
    assert_eq!(nums(&got)[0], 2001);
    // An old ticket made private leaves the anonymous count at once (that count of older
    // numbers is dropped by the change), and so does a deleted one for its admin.
    let hide = app
        .api(
            Method::PATCH,
            "/rest/p/long/tickets/7",
            Some(&ta),
            Some(json!({"private": true})),
        )
        .await;
    assert_eq!(hide.status, StatusCode::OK, "{}", hide.body);
    let got = list(&app, None, "long", "limit=10").await;
    assert_eq!(got["total"].as_u64(), Some(public.len() as u64));
    let got = list(&app, Some(&ta), "long", "limit=10").await;
    assert_eq!(got["total"].as_u64(), Some(everyone.len() as u64 + 1));
}
