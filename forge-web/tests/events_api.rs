//! Events from outside: `POST /rest/events` (site admins) and `forge events load` (JSON lines
//! on standard input). Good events are kept, bad ones are reported by position.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use axum::http::{Method, StatusCode};
use bson::doc;
use common::TestApp;
use serde_json::json;

#[tokio::test]
async fn site_admins_post_events_and_bad_ones_are_reported_by_index() {
    let app = TestApp::new("events_api").await;
    let admin = app.user_with("operator", true).await;
    let bob = app.user("bob").await;
    let (admin_t, bob_t) = (app.token(&admin).await, app.token(&bob).await);
    let body = json!([
        {"type": "repo.clone", "timestamp": "2026-12-04T10:00:00Z", "context": {"project": "ext"}},
        {"type": "page.view", "context": {"project": "ext", "visitor": "abc"}},
        {"type": "bad type!"},
        {"type": "x", "context": {"ip": "10.1.1.1"}},
    ]);
    let anon = app
        .api(Method::POST, "/rest/events", None, Some(body.clone()))
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED, "{}", anon.body);
    let not_admin = app
        .api(
            Method::POST,
            "/rest/events",
            Some(&bob_t),
            Some(body.clone()),
        )
        .await;
    assert_eq!(
        not_admin.status,
        StatusCode::FORBIDDEN,
        "{}",
        not_admin.body
    );
    assert_eq!(app.count_events(doc! {"context.project": "ext"}).await, 0);

    let res = app
        .api(Method::POST, "/rest/events", Some(&admin_t), Some(body))
        .await;
    assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
    let j = res.json();
    assert_eq!(j["accepted"], 2);
    let refused = j["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2);
    assert_eq!(refused[0]["index"], 2);
    assert!(refused[0]["message"].as_str().unwrap().contains("`type`"));
    assert_eq!(refused[1]["index"], 3);
    assert_eq!(app.count_events(doc! {"context.project": "ext"}).await, 2);
    assert_eq!(
        app.count_events(doc! {"context.ip": {"$exists": true}})
            .await,
        0
    );
    let clone = app
        .events()
        .find_one(doc! {"type": "repo.clone"})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        clone.get_datetime("timestamp").unwrap().timestamp_millis(),
        1_796_378_400_000
    );

    // Not an array; too many.
    let res = app
        .api(
            Method::POST,
            "/rest/events",
            Some(&admin_t),
            Some(json!({"type": "x"})),
        )
        .await;
    assert!(res.status.is_client_error(), "{}", res.status);
    assert!(res.json()["error"]["message"].is_string());
    let many: Vec<_> = (0..10_001).map(|_| json!({"type": "x"})).collect();
    let res = app
        .api(
            Method::POST,
            "/rest/events",
            Some(&admin_t),
            Some(json!(many)),
        )
        .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.body);
}

#[tokio::test]
async fn events_load_keeps_good_lines_and_names_bad_ones() {
    let app = TestApp::new("events_load").await;
    let cfg = app.forge.config();
    let mut input = String::new();
    for i in 0..25_000 {
        input.push_str(&format!(
            "{{\"type\": \"page.view\", \"timestamp\": {}, \"context\": {{\"project\": \"bulk\"}}}}\n",
            1_796_378_400_000_i64 + i
        ));
    }
    input.push_str("not json\n\n");
    input.push_str(&format!(
        "{{\"type\": \"x\", \"extra\": \"{}\"}}\n",
        "y".repeat(70_000)
    ));
    input.push_str("{\"type\": \"repo.clone\", \"context\": {\"project\": \"bulk\"}}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_forge"))
        .args(["events", "load"])
        .env("FORGE_MONGODB_URI", cfg.mongodb_uri.as_deref().unwrap())
        .env("FORGE_DB_NAME", &cfg.db_name)
        .env("FORGE_DATA_DIR", &cfg.data_dir)
        .env("FORGE_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "refused lines make the command fail");
    assert!(stdout.contains("loaded 25001 events"), "{stdout}");
    assert!(stderr.contains("line 25001: not JSON"), "{stderr}");
    assert!(stderr.contains("line 25003: longer than"), "{stderr}");
    assert!(stderr.contains("2 lines refused"), "{stderr}");
    assert_eq!(
        app.count_events(doc! {"context.project": "bulk"}).await,
        25_001
    );
}
