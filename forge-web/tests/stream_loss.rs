//! The read model when its change stream is lost: the node stops serving what it keeps as
//! soon as it has not heard from the store for `readmodel::FRESH`, and when the store answers
//! again drops what it kept (the stream may have been resumed by the driver, or reopened)
//! and serves what the store holds, including what changed while it was not listening. The
//! store here is a server of the test's own, frozen and thawed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use common::{Browser, TestApp};
use serde_json::json;

/// The test's own store server, killed when dropped, so a failing test leaves no server
/// behind (SIGKILL ends a frozen process too).
struct OwnStore(Child);

impl Drop for OwnStore {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_store(port: u16, storage: &std::path::Path) -> OwnStore {
    let bin = forge_tools::store::embedded::find_binary().expect("secantusd-rs installed");
    let child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("--storage-path")
        .arg(storage)
        .args(["--cache-size", "256M", "--log-level", "WARNING"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("store started");
    OwnStore(child)
}

async fn until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn a_lost_stream_stops_serving_from_memory_and_a_new_one_serves_what_changed_meanwhile() {
    let port = common::free_port();
    let storage = tempfile::tempdir().unwrap();
    let store = start_store(port, storage.path());
    let uri = format!("mongodb://127.0.0.1:{port}/?directConnection=true");
    let app = TestApp::with_config("stream-loss", |c| c.mongodb_uri = Some(uri.clone())).await;
    let model = app.forge.read_model();
    until("a first stream", Duration::from_secs(15), || {
        model.coherent()
    })
    .await;

    let ann = app.user("ann").await;
    let token = app.token(&ann).await;
    app.project(&ann, "lost", false).await;
    let r = app
        .api(
            Method::PUT,
            "/rest/p/lost/wiki/Page",
            Some(&token),
            Some(json!({"text": "before the loss"})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let anon = Browser::anonymous();
    for _ in 0..2 {
        let page = app.get("/p/lost/wiki/Page/", &anon).await;
        assert!(page.body.contains("before the loss"));
    }
    let (_, _, losses_before) = model.stats();

    // The store stops answering (frozen, as a stalled connection or a paused machine would
    // look): within FRESH (and a poll) nothing is served from memory.
    signal(&store, "-STOP");
    let stale_after = until("serving stopped", Duration::from_secs(5), || {
        !model.coherent()
    })
    .await;
    assert!(
        stale_after <= forge_tools::readmodel::FRESH + Duration::from_millis(500),
        "{stale_after:?}"
    );

    // Someone else changes the page meanwhile (the write waits for the store); then the store
    // answers again.
    let other = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let pages = other
        .database(app.forge.db().name())
        .collection::<bson::Document>("wiki_pages");
    let writer = {
        let pages = pages.clone();
        tokio::spawn(async move {
            pages
                .update_one(
                    bson::doc! {"name": "Page"},
                    bson::doc! {"$set": {"text": "changed while nobody listened"}, "$inc": {"version": 1}},
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&store, "-CONT");
    let written = writer.await.unwrap().unwrap();
    assert_eq!(written.matched_count, 1);
    until("a new stream", Duration::from_secs(20), || model.coherent()).await;
    // Whether the driver resumed the stream by itself or it failed and was reopened, the
    // lapse is counted and what was kept dropped.
    let (_, _, losses_after) = model.stats();
    assert!(losses_after > losses_before, "the lapse was not counted");
    let page = app.get("/p/lost/wiki/Page/", &anon).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("changed while nobody listened"),
        "a value from before the loss was served"
    );
    // And the new stream keeps the node coherent: a later change shows up too.
    pages
        .update_one(
            bson::doc! {"name": "Page"},
            bson::doc! {"$set": {"text": "after the return"}, "$inc": {"version": 1}},
        )
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let page = app.get("/p/lost/wiki/Page/", &anon).await;
        if page.body.contains("after the return") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the new stream carried nothing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(store);
}

fn signal(store: &OwnStore, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &store.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}
