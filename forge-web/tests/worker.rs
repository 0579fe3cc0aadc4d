//! `forge worker` as an operator runs it: refuses to start without a broker, consumes tasks a
//! web node published, and exits cleanly on SIGTERM. Runs the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use forge_tasks::{Amqp, AmqpOptions, TaskState, Tasks};

fn forge() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_forge"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("FORGE_")) {
        cmd.env_remove(k);
    }
    cmd
}

#[test]
fn worker_without_a_broker_says_why() {
    let out = forge()
        .arg("worker")
        .env("FORGE_MONGODB_URI", common::store_uri())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("FORGE_AMQP_URL is unset"), "{err}");
}

#[tokio::test]
async fn worker_runs_published_tasks_and_stops_on_sigterm() {
    let amqp_url = std::env::var("FORGE_TEST_AMQP_URL").expect("run scripts/test");
    let db_name = common::fresh_db_name("worker");
    let prefix = format!("test.worker.{}", bson::oid::ObjectId::new());
    let data = tempfile::tempdir().unwrap();
    let mut child = forge()
        .arg("worker")
        .env("FORGE_MONGODB_URI", common::store_uri())
        .env("FORGE_DB_NAME", &db_name)
        .env("FORGE_DATA_DIR", data.path())
        .env("FORGE_AMQP_URL", &amqp_url)
        .env("FORGE_AMQP_PREFIX", &prefix)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // What a web node does: store the record, publish through the broker.
    let db = mongodb::Client::with_uri_str(common::store_uri())
        .await
        .unwrap()
        .database(&db_name);
    let mut opts = AmqpOptions::new(&amqp_url);
    opts.prefix = prefix;
    let transport = Amqp::connect(opts).await.unwrap();
    let tasks = Tasks::new(&db, transport.clone());
    // A real task of the forge: refreshing a repository that does not exist fails for good,
    // which proves the worker's own handlers ran it.
    let id = tasks
        .enqueue(
            "repo.refresh",
            serde_json::json!({"tool": bson::oid::ObjectId::new().to_hex()}),
        )
        .await
        .unwrap();
    let rec = tasks
        .wait(id, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    assert!(rec.state.is_final(), "{rec:?}");
    let err = rec.last_error.clone().unwrap_or_default();
    assert!(!err.is_empty() && !err.contains("no handler"), "{rec:?}");
    assert_eq!(rec.state, TaskState::Failed, "{rec:?}");

    common::process::terminate(&child);
    let status = common::process::exited(
        &mut child,
        Duration::from_secs(20),
        "the worker stops on SIGTERM",
    );
    assert!(status.success(), "{status:?}");
    transport.delete_queues(5).await.unwrap();
}
