//! The access matrix: {anonymous, non-member, member, developer, admin} × {public, private}
//! × {view home, view admin, change members, install tool}, through pages and REST.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use axum::http::{Method, StatusCode};
use common::{Browser, TestApp};
use forge_tools::acl::Role;
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    Anonymous,
    NonMember,
    Member,
    Developer,
    Admin,
}

const WHO: [Who; 5] = [
    Who::Anonymous,
    Who::NonMember,
    Who::Member,
    Who::Developer,
    Who::Admin,
];

#[derive(Clone, Copy, Debug)]
enum Action {
    ViewHome,
    ViewAdmin,
    ChangeMembers,
    InstallTool,
}

/// The expected status, by the contract: no read → 404 (existence hidden); read but not the
/// permission → 403 (or log in first: 303 to the login page, 401 on the API).
fn expected(who: Who, private: bool, action: Action, api: bool) -> StatusCode {
    let can_read = !private || matches!(who, Who::Member | Who::Developer | Who::Admin);
    if !can_read {
        return StatusCode::NOT_FOUND;
    }
    let allowed = match action {
        Action::ViewHome => true,
        Action::ViewAdmin | Action::ChangeMembers | Action::InstallTool => who == Who::Admin,
    };
    match (allowed, who, api) {
        (true, _, false) if matches!(action, Action::ViewHome | Action::ViewAdmin) => {
            StatusCode::OK
        }
        (true, _, false) => StatusCode::SEE_OTHER,
        (true, _, true) if matches!(action, Action::InstallTool) => StatusCode::CREATED,
        (true, _, true) => StatusCode::OK,
        (false, Who::Anonymous, false) => StatusCode::SEE_OTHER,
        (false, Who::Anonymous, true) => StatusCode::UNAUTHORIZED,
        (false, _, _) => StatusCode::FORBIDDEN,
    }
}

#[tokio::test]
async fn access_matrix() {
    let app = TestApp::new("matrix").await;
    let owner = app.user("owner").await;
    let outsider = app.user("outsider").await;
    let member = app.user("member").await;
    let developer = app.user("developer").await;
    let admin = app.user("admin2").await;
    app.user("newbie").await;

    let mut failures = Vec::new();
    let mut checked = 0;
    for private in [false, true] {
        let name = if private { "priv" } else { "pub" };
        let project = app.project(&owner, name, private).await;
        app.add_member(&project, &member, Role::Member).await;
        app.add_member(&project, &developer, Role::Developer).await;
        app.add_member(&project, &admin, Role::Admin).await;

        for (i, who) in WHO.into_iter().enumerate() {
            let user = match who {
                Who::Anonymous => None,
                Who::NonMember => Some(&outsider),
                Who::Member => Some(&member),
                Who::Developer => Some(&developer),
                Who::Admin => Some(&admin),
            };
            let browser = match user {
                Some(u) => app.browser(u).await,
                None => Browser::anonymous(),
            };
            let token = match user {
                Some(u) => Some(app.token(u).await),
                None => None,
            };
            let base = format!("/p/{name}/");
            let mount = format!("m{i}");
            let page_mount = format!("p{i}");
            let cases: Vec<(Action, bool, StatusCode)> = vec![
                (Action::ViewHome, false, app.get(&base, &browser).await.status),
                (Action::ViewHome, true, app.api(Method::GET, format!("/rest{base}").trim_end_matches('/'), token.as_deref(), None).await.status),
                (Action::ViewAdmin, false, app.get(&format!("{base}admin/"), &browser).await.status),
                (
                    Action::ChangeMembers,
                    false,
                    app.post_form(&format!("{base}admin/members"), &browser, &[("username", "newbie"), ("role", "member")]).await.status,
                ),
                (
                    Action::ChangeMembers,
                    true,
                    app.api(
                        Method::POST,
                        &format!("/rest/p/{name}/admin/members"),
                        token.as_deref(),
                        Some(json!({"username": "newbie", "role": "member"})),
                    )
                    .await
                    .status,
                ),
                (
                    Action::InstallTool,
                    false,
                    app.post_form(
                        &format!("{base}admin/tools"),
                        &browser,
                        &[("kind", "link"), ("mount", &page_mount), ("url", "https://example.org")],
                    )
                    .await
                    .status,
                ),
                (
                    Action::InstallTool,
                    true,
                    app.api(
                        Method::POST,
                        &format!("/rest/p/{name}/admin/tools"),
                        token.as_deref(),
                        Some(json!({"kind": "link", "mount": mount, "options": {"url": "https://example.org"}})),
                    )
                    .await
                    .status,
                ),
            ];
            for (action, api, got) in cases {
                checked += 1;
                let want = expected(who, private, action, api);
                if got != want {
                    failures.push(format!(
                        "{who:?} private={private} {action:?} api={api}: got {got}, want {want}"
                    ));
                }
            }
        }
        // Only the admin's two installs happened; the other attempts left nothing behind.
        assert_eq!(
            app.count(
                "tools",
                bson::doc! {"project_id": project.id, "kind": "link"}
            )
            .await,
            2,
            "{name}"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, 2 * 5 * 7);
}

#[tokio::test]
async fn site_admin_pages_are_for_site_admins() {
    let app = TestApp::new("siteadmin").await;
    let root = app.user_with("siteboss", true).await;
    let plain = app.user("plain").await;
    let anon = app.get("/nf/admin/", &Browser::anonymous()).await;
    assert_eq!(anon.status, StatusCode::SEE_OTHER);
    let pb = app.browser(&plain).await;
    assert_eq!(
        app.get("/nf/admin/", &pb).await.status,
        StatusCode::FORBIDDEN
    );
    let rb = app.browser(&root).await;
    let page = app.get("/nf/admin/", &rb).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("plain@example.org"));
    // A site admin may administer any project, even a private one they are not in.
    app.project(&plain, "hidden", true).await;
    assert_eq!(
        app.get("/p/hidden/admin/", &rb).await.status,
        StatusCode::OK
    );

    // The task page: site admins only; filters by state and name; retry only for failed.
    let anon = app.get("/nf/admin/tasks", &Browser::anonymous()).await;
    assert_eq!(anon.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/nf/admin/tasks", &pb).await.status,
        StatusCode::FORBIDDEN
    );
    let tasks = app.forge.tasks();
    let bad = tasks
        .enqueue("no.such.task", serde_json::json!({"x": 1}))
        .await
        .unwrap();
    let rec = tasks
        .wait(bad, std::time::Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.state, forge_tasks::TaskState::Failed);
    let page = app.get("/nf/admin/tasks?state=failed", &rb).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("no.such.task") && page.body.contains("no handler registered"));
    assert!(page.body.contains(&format!("/nf/admin/tasks/{bad}/retry")));
    let page = app
        .get("/nf/admin/tasks?state=complete&name=no.such.task", &rb)
        .await;
    assert!(page.body.contains("No tasks match"), "{}", page.body);
    let retry = app
        .post_form(&format!("/nf/admin/tasks/{bad}/retry"), &pb, &[])
        .await;
    assert_eq!(retry.status, StatusCode::FORBIDDEN);
    let retry = app
        .post_form(&format!("/nf/admin/tasks/{bad}/retry"), &rb, &[])
        .await;
    assert_eq!(retry.status, StatusCode::SEE_OTHER);
    let rec = tasks
        .wait(bad, std::time::Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.attempts, 1, "ran again with a fresh budget");
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum TrackerAction {
    List,
    View,
    ViewPrivate,
    File,
    Comment,
    Change,
    Bulk,
    Delete,
    Export,
}

/// The tracker's defaults (Allura's): readers see public tickets; anyone logged in who can
/// read files and comments; developers change, delete and see private tickets; admins export.
fn tracker_expected(who: Who, private: bool, action: TrackerAction) -> StatusCode {
    use TrackerAction::*;
    let can_read = !private || matches!(who, Who::Member | Who::Developer | Who::Admin);
    if !can_read {
        return StatusCode::NOT_FOUND;
    }
    let dev = matches!(who, Who::Developer | Who::Admin);
    let allowed = match action {
        List | View => true,
        // Existence of a private ticket is hidden from those who may not see it.
        ViewPrivate if !dev => return StatusCode::NOT_FOUND,
        ViewPrivate => true,
        File | Comment => who != Who::Anonymous,
        Change | Bulk | Delete => dev,
        Export => who == Who::Admin,
    };
    match (allowed, who, action) {
        (true, _, File | Comment) => StatusCode::CREATED,
        (true, _, Delete) => StatusCode::NO_CONTENT,
        (true, _, _) => StatusCode::OK,
        (false, Who::Anonymous, _) => StatusCode::UNAUTHORIZED,
        (false, _, _) => StatusCode::FORBIDDEN,
    }
}

#[tokio::test]
async fn tracker_access_matrix() {
    use TrackerAction::*;
    let app = TestApp::new("matrix-tracker").await;
    let owner = app.user("owner").await;
    let outsider = app.user("outsider").await;
    let member = app.user("member").await;
    let developer = app.user("developer").await;
    let admin = app.user("admin2").await;
    let owner_token = app.token(&owner).await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for private in [false, true] {
        let name = if private { "tpriv" } else { "tpub" };
        let project = app.project(&owner, name, private).await;
        app.add_member(&project, &member, Role::Member).await;
        app.add_member(&project, &developer, Role::Developer).await;
        app.add_member(&project, &admin, Role::Admin).await;
        let base = format!("/rest/p/{name}/tickets");
        // Ticket 1 public, 2 private; one more per viewer to delete.
        for (summary, private_ticket) in [("open one", false), ("hidden one", true)] {
            let r = app
                .api(
                    Method::POST,
                    &format!("{base}/"),
                    Some(&owner_token),
                    Some(json!({"summary": summary, "private": private_ticket})),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        }
        for who in WHO {
            let user = match who {
                Who::Anonymous => None,
                Who::NonMember => Some(&outsider),
                Who::Member => Some(&member),
                Who::Developer => Some(&developer),
                Who::Admin => Some(&admin),
            };
            let token = match user {
                Some(u) => Some(app.token(u).await),
                None => None,
            };
            let victim = app
                .api(
                    Method::POST,
                    &format!("{base}/"),
                    Some(&owner_token),
                    Some(json!({"summary": "to delete"})),
                )
                .await
                .json()["ticket_num"]
                .as_i64()
                .unwrap();
            let t = token.as_deref();
            let cases = [
                (
                    List,
                    app.api(Method::GET, &format!("{base}/"), t, None)
                        .await
                        .status,
                ),
                (
                    View,
                    app.api(Method::GET, &format!("{base}/1"), t, None)
                        .await
                        .status,
                ),
                (
                    ViewPrivate,
                    app.api(Method::GET, &format!("{base}/2"), t, None)
                        .await
                        .status,
                ),
                (
                    File,
                    app.api(
                        Method::POST,
                        &format!("{base}/"),
                        t,
                        Some(json!({"summary": "mine"})),
                    )
                    .await
                    .status,
                ),
                (
                    Comment,
                    app.api(
                        Method::POST,
                        &format!("{base}/1/comments"),
                        t,
                        Some(json!({"text": "hi"})),
                    )
                    .await
                    .status,
                ),
                (
                    Change,
                    app.api(
                        Method::PATCH,
                        &format!("{base}/1"),
                        t,
                        Some(json!({"labels": [format!("{who:?}")]})),
                    )
                    .await
                    .status,
                ),
                (
                    Bulk,
                    app.api(
                        Method::POST,
                        &format!("{base}/_bulk"),
                        t,
                        Some(json!({"tickets": [1], "labels_add": ["bulk"]})),
                    )
                    .await
                    .status,
                ),
                (
                    Delete,
                    app.api(Method::DELETE, &format!("{base}/{victim}"), t, None)
                        .await
                        .status,
                ),
                (
                    Export,
                    app.api(Method::GET, &format!("{base}/_export"), t, None)
                        .await
                        .status,
                ),
            ];
            for (action, got) in cases {
                checked += 1;
                let want = tracker_expected(who, private, action);
                if got != want {
                    failures.push(format!(
                        "{who:?} private={private} {action:?}: got {got}, want {want}"
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, 2 * 5 * 9);
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum ForumAction {
    Index,
    Forum,
    Topic,
    NewTopic,
    Moderate,
    Admin,
}

/// What a forum page answered, by kind: shown, refused, hidden, sent to log in, or done
/// (a form's redirect elsewhere than the log-in page).
fn forum_outcome(res: &common::Res) -> &'static str {
    match res.status {
        StatusCode::OK => "ok",
        StatusCode::NOT_FOUND => "not found",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::SEE_OTHER if res.location().starts_with("/auth/login") => "log in",
        StatusCode::SEE_OTHER => "done",
        _ => "other",
    }
}

/// The forum's defaults (Allura's): readers read; anyone logged in who can read starts
/// topics; developers moderate; admins change the settings.
fn forum_expected(who: Who, private: bool, action: ForumAction) -> &'static str {
    use ForumAction::*;
    let can_read = !private || matches!(who, Who::Member | Who::Developer | Who::Admin);
    if !can_read {
        return "not found";
    }
    let allowed = match action {
        Index | Forum | Topic => true,
        NewTopic => who != Who::Anonymous,
        Moderate => matches!(who, Who::Developer | Who::Admin),
        Admin => who == Who::Admin,
    };
    match (allowed, who, action) {
        (true, _, Moderate) => "done",
        (true, _, _) => "ok",
        (false, Who::Anonymous, _) => "log in",
        (false, _, _) => "forbidden",
    }
}

#[tokio::test]
async fn forum_access_matrix() {
    use ForumAction::*;
    use forge_tools::tools::forum::{forums, topics};
    let app = TestApp::new("matrix-forum").await;
    let owner = app.user("owner").await;
    let outsider = app.user("outsider").await;
    let member = app.user("member").await;
    let developer = app.user("developer").await;
    let admin = app.user("admin2").await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for private in [false, true] {
        let name = if private { "fpriv" } else { "fpub" };
        let project = app.project(&owner, name, private).await;
        app.add_member(&project, &member, Role::Member).await;
        app.add_member(&project, &developer, Role::Developer).await;
        app.add_member(&project, &admin, Role::Admin).await;
        let ctx = app.ctx_of(&owner, name).await;
        let tool = ctx.tool("discussion").unwrap().clone();
        let general = forums::get(&app.forge, &ctx, &tool, "general")
            .await
            .unwrap();
        let new = topics::NewTopic {
            subject: "A topic".into(),
            text: "Its text".into(),
            honeypot: None,
        };
        let (topic, _) = topics::create(
            &app.forge,
            &common::viewer(&owner),
            &ctx,
            &tool,
            &general,
            new,
        )
        .await
        .unwrap();
        let base = format!("/p/{name}/discussion/");
        let topic_url = format!("{base}general/thread/{}/", topic.id.to_hex());
        for who in WHO {
            let user = match who {
                Who::Anonymous => None,
                Who::NonMember => Some(&outsider),
                Who::Member => Some(&member),
                Who::Developer => Some(&developer),
                Who::Admin => Some(&admin),
            };
            let b = match user {
                Some(u) => app.browser(u).await,
                None => Browser::anonymous(),
            };
            let cases = [
                (Index, app.get(&base, &b).await),
                (Forum, app.get(&format!("{base}general/"), &b).await),
                (Topic, app.get(&topic_url, &b).await),
                (NewTopic, app.get(&format!("{base}general/new"), &b).await),
                (
                    Moderate,
                    app.post_form(&format!("{topic_url}moderate"), &b, &[("action", "sticky")])
                        .await,
                ),
                (Admin, app.get(&format!("{base}_admin"), &b).await),
            ];
            for (action, res) in cases {
                checked += 1;
                let (got, want) = (forum_outcome(&res), forum_expected(who, private, action));
                if got != want {
                    failures.push(format!(
                        "{who:?} private={private} {action:?}: got {got} ({}), want {want}",
                        res.status
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, 2 * 5 * 6);
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum StatsAction {
    Page,
    Csv,
    Query,
    Rest,
    Live,
}

/// Statistics are read like the project: everyone on a public project, members only on a
/// private one (404 for the others, whose existence is hidden); the socket upgrades (101).
fn stats_expected(who: Who, private: bool, action: StatsAction) -> StatusCode {
    let can_read = !private || matches!(who, Who::Member | Who::Developer | Who::Admin);
    match (can_read, action) {
        (false, _) => StatusCode::NOT_FOUND,
        (true, StatsAction::Live) => StatusCode::SWITCHING_PROTOCOLS,
        (true, _) => StatusCode::OK,
    }
}

#[tokio::test]
async fn stats_access_matrix() {
    use StatsAction::*;
    let app = TestApp::new("matrix-stats").await;
    let owner = app.user("owner").await;
    let outsider = app.user("outsider").await;
    let member = app.user("member").await;
    let root = app.user_with("siteroot", true).await;
    let addr = app.serve().await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for private in [false, true] {
        let name = if private { "spriv" } else { "spub" };
        let project = app.project(&owner, name, private).await;
        app.add_member(&project, &member, Role::Member).await;
        for who in [Who::Anonymous, Who::NonMember, Who::Member] {
            let user = match who {
                Who::Anonymous => None,
                Who::NonMember => Some(&outsider),
                _ => Some(&member),
            };
            let b = match user {
                Some(u) => app.browser(u).await,
                None => Browser::anonymous(),
            };
            let token = match user {
                Some(u) => Some(app.token(u).await),
                None => None,
            };
            let live = match common::ws_connect(addr, &format!("/p/{name}/stats/live"), &b).await {
                Ok(_) => StatusCode::SWITCHING_PROTOCOLS,
                Err(status) => status,
            };
            let cases = [
                (Page, app.get(&format!("/p/{name}/stats/"), &b).await.status),
                (
                    Csv,
                    app.get(&format!("/p/{name}/stats/all.csv"), &b)
                        .await
                        .status,
                ),
                (
                    Query,
                    app.get(&format!("/q?c=project_day&p={name}/views/"), &b)
                        .await
                        .status,
                ),
                (
                    Rest,
                    app.api(
                        Method::GET,
                        &format!("/rest/p/{name}/stats?series=views"),
                        token.as_deref(),
                        None,
                    )
                    .await
                    .status,
                ),
                (Live, live),
            ];
            for (action, got) in cases {
                checked += 1;
                let want = stats_expected(who, private, action);
                if got != want {
                    failures.push(format!(
                        "{who:?} private={private} {action:?}: got {got}, want {want}"
                    ));
                }
            }
        }
    }
    // Site figures: site admins only (log in first; then 403 for anyone else).
    let site = "/q?c=site_day&p=site/";
    for (b, want) in [
        (Browser::anonymous(), StatusCode::UNAUTHORIZED),
        (app.browser(&outsider).await, StatusCode::FORBIDDEN),
        (app.browser(&root).await, StatusCode::OK),
    ] {
        checked += 1;
        let got = app.get(site, &b).await.status;
        if got != want {
            failures.push(format!("site series: got {got}, want {want}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, 2 * 3 * 5 + 3);
}
