//! Store round trips per page view, counted through the driver's command monitoring, so the
//! read model's gains cannot regress silently. Each page is viewed once to warm what is kept
//! in memory, then counted on the next view: the commands the request itself issues (see
//! `common::Commands`), not those of background work running meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use axum::http::{Method, StatusCode};
use common::{Browser, TestApp};
use serde_json::json;

#[tokio::test]
async fn page_views_stay_within_their_round_trip_budget() {
    let (app, commands) = TestApp::with_commands("round-trips").await;
    let ann = app.user("ann").await;
    let token = app.token(&ann).await;
    app.project(&ann, "proj", false).await;
    let r = app
        .api(Method::GET, "/rest/p/proj", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    let mounts: Vec<String> = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["mount"].as_str().map(str::to_owned))
        .collect();
    for (kind, mount) in [("tracker", "tickets"), ("forum", "discussion")] {
        if !mounts.iter().any(|m| m == mount) {
            let r = app
                .api(
                    Method::POST,
                    "/rest/p/proj/admin/tools",
                    Some(&token),
                    Some(json!({"kind": kind, "mount": mount})),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        }
    }
    let r = app
        .api(
            Method::PUT,
            "/rest/p/proj/wiki/Notes",
            Some(&token),
            Some(json!({"text": "Some *notes* linking [Home]."})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = app
        .api(
            Method::POST,
            "/rest/p/proj/tickets/",
            Some(&token),
            Some(json!({"summary": "It breaks", "description": "Steps."})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let ticket = r.json()["ticket_num"].as_i64().unwrap();
    let r = app
        .api(
            Method::POST,
            "/rest/p/proj/discussion/general/",
            Some(&token),
            Some(json!({"subject": "Hello", "text": "First post."})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let thread = r.json()["thread_id"].as_str().unwrap().to_owned();

    let member = app.browser(&ann).await;
    let anonymous = Browser::anonymous();
    // Page, viewer, and the most store round trips it may take once warm: at most one (the
    // issue's bound). Everything these pages read is kept in the read model (session, user,
    // project, tools, and each page's own content: page, ticket, thread, posts, links,
    // attachments, subscriptions, activity); the one allowed is for a memo a background
    // write emptied between the two views (the analytics run rewriting the figures).
    let thread_url = format!("/p/proj/discussion/general/thread/{thread}/");
    let ticket_url = format!("/p/proj/tickets/{ticket}/");
    let mut budget: Vec<(String, &str, &Browser, usize)> = Vec::new();
    for path in [
        "/p/proj/".to_owned(),
        "/p/proj/wiki/Notes/".to_owned(),
        ticket_url,
        thread_url,
    ] {
        budget.push((path.clone(), "anonymous", &anonymous, 1));
        budget.push((path, "member", &member, 1));
    }
    let mut report = Vec::new();
    let mut over = Vec::new();
    for (path, who, browser, most) in budget {
        let warm = app.get(&path, browser).await;
        assert_eq!(warm.status, StatusCode::OK, "{path} ({who}): {}", warm.body);
        let (res, page) = commands.of(app.get(&path, browser)).await;
        assert_eq!(res.status, StatusCode::OK, "{path} ({who})");
        report.push(format!("{path} ({who}): {} {page:?}", page.len()));
        if page.len() > most {
            over.push(format!("{path} ({who}): {} > {most}: {page:?}", page.len()));
        }
    }
    for line in &report {
        eprintln!("{line}");
    }
    assert!(over.is_empty(), "over budget:\n{}", over.join("\n"));
}
