//! Project creation, validation, visibility, settings, deletion and tools through pages and
//! REST, on a real store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use axum::http::{Method, StatusCode};
use common::{Browser, TestApp};
use serde_json::json;

#[tokio::test]
async fn create_project_in_the_browser() {
    let app = TestApp::new("createproj").await;
    let jo = app.user("joe").await;
    let b = app.browser(&jo).await;
    assert_eq!(app.get("/p/add", &b).await.status, StatusCode::OK);
    let res = app
        .post_form(
            "/p/add",
            &b,
            &[
                ("name", "Rocket Engine"),
                ("shortname", "rocket"),
                ("summary", "Goes up"),
                ("private", "on"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(res.location(), "/p/rocket/");
    let home = app.get("/p/rocket/", &b).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("Rocket Engine") && home.body.contains("Goes up"));
    assert!(home.body.contains(">private<"));
    assert!(
        home.body.contains("href=\"/p/rocket/admin/\""),
        "admin link for the owner"
    );
    app.forge.events().flush().await;
    assert_eq!(
        app.count_events(bson::doc! {"type": "project.create", "context.project": "rocket"})
            .await,
        1
    );
    assert!(
        app.count_events(bson::doc! {"type": "page.view", "context.project": "rocket"})
            .await
            >= 1
    );

    // Logged out, the page asks to log in first.
    let anon = app.get("/p/add", &Browser::anonymous()).await;
    assert_eq!(anon.status, StatusCode::SEE_OTHER);
    assert!(anon.location().starts_with("/auth/login?next="));
}

#[tokio::test]
async fn invalid_short_names_are_refused_and_nothing_is_stored() {
    let app = TestApp::new("invalidnames").await;
    let kim = app.user("kim").await;
    app.project(&kim, "taken", false).await;
    let b = app.browser(&kim).await;
    let before = app.count("projects", bson::doc! {}).await;
    let cases = [
        ("ab", "at least 3 characters"),
        ("UpperCase", "must be lowercase"),
        ("admin", "reserved"),
        ("rest", "reserved"),
        ("taken", "already taken"),
        ("9lives", "start with a letter"),
        ("has_underscore", "only lowercase letters"),
    ];
    for (name, message) in cases {
        let res = app
            .post_form(
                "/p/add",
                &b,
                &[("name", "Some name"), ("shortname", name), ("summary", "s")],
            )
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        assert!(res.body.contains(message), "{name}: expected {message:?}");
        assert!(
            res.body.contains("value=\"Some name\""),
            "values kept for {name}"
        );
    }
    let empty_name = app
        .post_form("/p/add", &b, &[("name", " "), ("shortname", "okname")])
        .await;
    assert!(empty_name.body.contains("Give the project a name"));
    assert_eq!(
        app.count("projects", bson::doc! {}).await,
        before,
        "nothing stored"
    );

    // The REST API reports the same: 422 with fields, 409 for a taken name.
    let token = app.token(&kim).await;
    let res = app
        .api(
            Method::POST,
            "/rest/p",
            Some(&token),
            Some(json!({"shortname": "UPPER", "name": "x"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(res.json()["error"]["code"], "invalid");
    assert!(
        res.json()["error"]["fields"]["shortname"]
            .as_str()
            .unwrap()
            .contains("lowercase")
    );
    let res = app
        .api(
            Method::POST,
            "/rest/p",
            Some(&token),
            Some(json!({"shortname": "taken", "name": "x"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert_eq!(res.json()["error"]["code"], "taken");
    let res = app
        .api(
            Method::POST,
            "/rest/p",
            Some(&token),
            Some(json!({"name": "no shortname"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("shortname")
    );
    assert_eq!(app.count("projects", bson::doc! {}).await, before);
}

#[tokio::test]
async fn private_projects_are_invisible_to_outsiders() {
    let app = TestApp::new("private").await;
    let owner = app.user("lea").await;
    let outsider = app.user("max").await;
    app.project(&owner, "secret", true).await;
    app.project(&owner, "open", false).await;
    let anon = Browser::anonymous();
    let ob = app.browser(&outsider).await;
    let otok = app.token(&outsider).await;

    for path in [
        "/p/secret/",
        "/p/secret/admin/",
        "/p/secret/admin/members",
        "/p/secret/nothing/",
    ] {
        assert_eq!(
            app.get(path, &anon).await.status,
            StatusCode::NOT_FOUND,
            "anonymous {path}"
        );
        assert_eq!(
            app.get(path, &ob).await.status,
            StatusCode::NOT_FOUND,
            "outsider {path}"
        );
    }
    assert_eq!(
        app.api(Method::GET, "/rest/p/secret", None, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let res = app
        .api(Method::GET, "/rest/p/secret", Some(&otok), None)
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.json()["error"]["code"], "not_found");
    // Not in listings either.
    for (what, body) in [
        ("dir", app.get("/p/", &anon).await.body),
        ("home", app.get("/", &ob).await.body),
        ("profile", app.get("/u/lea/", &anon).await.body),
    ] {
        assert!(body.contains("/p/open/"), "{what}: {body}");
        assert!(!body.contains("/p/secret/"), "{what}");
    }
    let list = app
        .api(Method::GET, "/rest/p", Some(&otok), None)
        .await
        .json();
    let names: Vec<_> = list["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["shortname"].as_str().unwrap().to_owned())
        .collect();
    assert!(names.contains(&"open".to_owned()) && !names.contains(&"secret".to_owned()));
    // The owner sees it.
    let lb = app.browser(&owner).await;
    assert_eq!(app.get("/p/secret/", &lb).await.status, StatusCode::OK);
    assert!(app.get("/p/", &lb).await.body.contains("/p/secret/"));
}

#[tokio::test]
async fn settings_visibility_and_description() {
    let app = TestApp::new("settings").await;
    let owner = app.user("nia").await;
    app.project(&owner, "proj", false).await;
    let b = app.browser(&owner).await;
    let page = app.get("/p/proj/admin/", &b).await;
    assert_eq!(page.status, StatusCode::OK);
    let res = app
        .post_form(
            "/p/proj/admin/",
            &b,
            &[
                ("name", "Renamed"),
                ("summary", "new"),
                ("description", "# Hi\n<script>alert(1)</script>"),
                ("private", "on"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let home = app.get("/p/proj/", &b).await;
    assert!(home.body.contains("Hi</h1>"), "{}", home.body);
    assert!(
        !home.body.contains("<script>alert"),
        "description is sanitized"
    );
    assert_eq!(
        app.get("/p/proj/", &Browser::anonymous()).await.status,
        StatusCode::NOT_FOUND,
        "now private"
    );
    let bad = app
        .post_form("/p/proj/admin/", &b, &[("name", ""), ("summary", "x")])
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("Give the project a name"));
}

#[tokio::test]
async fn project_names_are_one_line() {
    let app = TestApp::new("projnames").await;
    let owner = app.user("ned").await;
    app.project(&owner, "proj", false).await;
    let b = app.browser(&owner).await;
    let before = app.count("projects", bson::doc! {}).await;
    for name in ["Two\r\nLines", "Two\nLines", "Tab\tbed", "Esc\u{1b}[2J"] {
        let res = app
            .post_form(
                "/p/add",
                &b,
                &[("name", name), ("shortname", "lines"), ("summary", "")],
            )
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
        assert!(res.body.contains("Name must be one line"), "{}", res.body);
        let res = app
            .post_form("/p/proj/admin/", &b, &[("name", name), ("summary", "")])
            .await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
    }
    let too_long = "x".repeat(81);
    let res = app
        .post_form(
            "/p/add",
            &b,
            &[("name", &too_long), ("shortname", "lines"), ("summary", "")],
        )
        .await;
    assert!(res.body.contains("at most 80 characters"), "{}", res.body);
    assert_eq!(app.count("projects", bson::doc! {}).await, before);
    let token = app.token(&owner).await;
    let res = app
        .api(
            Method::POST,
            "/rest/p",
            Some(&token),
            Some(json!({"shortname": "lines", "name": "a\nb"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.json()["error"]["fields"]["name"].is_string());
    // Surrounding whitespace is trimmed, not refused.
    let res = app
        .post_form(
            "/p/proj/admin/",
            &b,
            &[("name", "  Renamed\r\n"), ("summary", "")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let stored = forge_tools::projects::get(
        app.forge.db(),
        forge_tools::projects::Neighborhood::Projects,
        "proj",
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(stored.name, "Renamed");
}

#[tokio::test]
async fn delete_is_soft_and_keeps_the_name() {
    let app = TestApp::new("deleteproj").await;
    let owner = app.user("oli").await;
    app.project(&owner, "doomed", false).await;
    let token = app.token(&owner).await;
    let res = app
        .api(Method::DELETE, "/rest/p/doomed", Some(&token), None)
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/p/doomed/", &Browser::anonymous()).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.count(
            "projects",
            bson::doc! {"shortname": "doomed", "deleted": true}
        )
        .await,
        1
    );
    let again = app
        .api(
            Method::POST,
            "/rest/p",
            Some(&token),
            Some(json!({"shortname": "doomed", "name": "Again"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    // Through the page as well.
    app.project(&owner, "doomed2", false).await;
    let b = app.browser(&owner).await;
    let res = app.post_form("/p/doomed2/admin/delete", &b, &[]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/p/doomed2/", &b).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn members_page_adds_changes_and_removes() {
    let app = TestApp::new("members").await;
    let owner = app.user("pat").await;
    app.user("quinn").await;
    app.project(&owner, "team", false).await;
    let b = app.browser(&owner).await;
    let res = app
        .post_form(
            "/p/team/admin/members",
            &b,
            &[("username", "quinn"), ("role", "developer")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let page = app.get("/p/team/admin/members", &b).await;
    assert!(page.body.contains("@quinn"));
    let unknown = app
        .post_form(
            "/p/team/admin/members",
            &b,
            &[("username", "ghost"), ("role", "member")],
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unknown.body.contains("There is no user named"));
    let bad_role = app
        .post_form(
            "/p/team/admin/members",
            &b,
            &[("username", "quinn"), ("role", "owner")],
        )
        .await;
    assert_eq!(bad_role.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The last admin cannot leave or be demoted.
    let demote = app
        .post_form(
            "/p/team/admin/members",
            &b,
            &[("username", "pat"), ("role", "member")],
        )
        .await;
    assert_eq!(demote.status, StatusCode::CONFLICT);
    assert!(demote.body.contains("at least one admin"));
    let res = app
        .post_form("/p/team/admin/members/quinn/remove", &b, &[])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let json = app
        .api(
            Method::GET,
            "/rest/p/team",
            Some(&app.token(&owner).await),
            None,
        )
        .await
        .json();
    assert_eq!(json["members"].as_array().unwrap().len(), 1);
    app.forge.events().flush().await;
    assert_eq!(
        app.count_events(bson::doc! {"type": "project.member.set"})
            .await,
        1
    );
}

#[tokio::test]
async fn tools_install_rename_reorder_uninstall() {
    let app = TestApp::new("tools").await;
    let owner = app.user("rae").await;
    app.project(&owner, "tooly", false).await;
    let b = app.browser(&owner).await;
    let res = app
        .post_form(
            "/p/tooly/admin/tools",
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
    let home = app.get("/p/tooly/", &Browser::anonymous()).await;
    assert!(home.body.contains("Homepage"));
    // The tool's page is served by its own router.
    let go = app.get("/p/tooly/home/", &Browser::anonymous()).await;
    assert_eq!(go.status, StatusCode::SEE_OTHER);
    assert_eq!(go.location(), "https://example.org/");

    // Validation: taken mount, bad mount, unknown kind, bad option; nothing stored.
    for (fields, message) in [
        (
            vec![
                ("kind", "link"),
                ("mount", "home"),
                ("url", "https://x.org"),
            ],
            "already used",
        ),
        (
            vec![
                ("kind", "link"),
                ("mount", "../x"),
                ("url", "https://x.org"),
            ],
            "only lowercase",
        ),
        (
            vec![
                ("kind", "link"),
                ("mount", "admin"),
                ("url", "https://x.org"),
            ],
            "project settings",
        ),
        (vec![("kind", "nope"), ("mount", "n")], "no tool kind"),
        (
            vec![
                ("kind", "link"),
                ("mount", "js"),
                ("url", "javascript:alert(1)"),
            ],
            "http://",
        ),
    ] {
        let res = app.post_form("/p/tooly/admin/tools", &b, &fields).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        assert!(res.body.contains(message), "{fields:?}: {message}");
    }
    assert_eq!(app.count("tools", bson::doc! {"kind": "link"}).await, 1);

    // Rename and move.
    let res = app
        .post_form(
            "/p/tooly/admin/tools/home",
            &b,
            &[("label", "Website"), ("mount", "web"), ("ordinal", "3")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(
        app.get("/p/tooly/home/", &b).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/p/tooly/web/", &b).await.status,
        StatusCode::SEE_OTHER
    );
    assert!(
        app.get("/p/tooly/admin/tools", &b)
            .await
            .body
            .contains("value=\"Website\"")
    );

    // REST install and uninstall.
    let token = app.token(&owner).await;
    let res = app
        .api(Method::POST, "/rest/p/tooly/admin/tools", Some(&token), Some(json!({"kind": "link", "mount": "docs", "options": {"url": "https://docs.example.org"}})))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert_eq!(res.json()["url"], "/p/tooly/docs/");
    assert_eq!(res.json()["label"], "Link", "default label");
    let tools = app
        .api(Method::GET, "/rest/p/tooly", None, None)
        .await
        .json();
    let mounts: Vec<_> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["mount"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        mounts,
        ["wiki", "tickets", "discussion", "code", "web", "docs"],
        "the default wiki, tracker, forum and repository, then the links in order"
    );
    let res = app
        .post_form("/p/tooly/admin/tools/web/uninstall", &b, &[])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.api(
            Method::DELETE,
            "/rest/p/tooly/admin/tools/docs",
            Some(&token),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.count("tools", bson::doc! {"kind": "link"}).await, 0);
    app.forge.events().flush().await;
    assert_eq!(
        app.count_events(bson::doc! {"type": "tool.install"}).await,
        2
    );
    assert_eq!(
        app.count_events(bson::doc! {"type": "tool.uninstall"})
            .await,
        2
    );
}

#[tokio::test]
async fn rest_errors_use_the_json_shape() {
    let app = TestApp::new("resterrors").await;
    let res = app
        .api(
            Method::POST,
            "/rest/p",
            None,
            Some(json!({"shortname": "abc", "name": "x"})),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    assert_eq!(res.json()["error"]["code"], "unauthenticated");
    let res = app.api(Method::GET, "/rest/nothing/here", None, None).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_eq!(res.json()["error"]["code"], "not_found");
    let owner = app.user("sam").await;
    let token = app.token(&owner).await;
    let req = axum::http::Request::post("/rest/p")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{not json"))
        .unwrap();
    let res = app.send(req, None).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert_eq!(res.json()["error"]["code"], "bad_request");
}

#[tokio::test]
async fn openapi_health_and_metrics() {
    let app = TestApp::new("openapi").await;
    let spec = app.api(Method::GET, "/rest/openapi.json", None, None).await;
    assert_eq!(spec.status, StatusCode::OK);
    let spec = spec.json();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/rest/p",
        "/rest/p/{project}",
        "/rest/p/{project}/admin/tools",
        "/rest/p/{project}/admin/members",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} documented");
    }
    let health = app.get("/healthz", &Browser::anonymous()).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["store"], "ok");
    app.get("/p/", &Browser::anonymous()).await;
    let metrics = app.get("/metrics", &Browser::anonymous()).await;
    assert!(
        metrics
            .body
            .contains("forge_http_requests_total{method=\"GET\",route=\"/p/\",status=\"200\"}"),
        "{}",
        metrics.body
    );
}

#[tokio::test]
async fn unknown_pages_get_the_404_page() {
    let app = TestApp::new("notfound").await;
    let res = app.get("/no/such/page", &Browser::anonymous()).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert!(res.body.contains("Not found"));
    assert_eq!(
        app.get("/p/nothing/", &Browser::anonymous()).await.status,
        StatusCode::NOT_FOUND
    );
}
