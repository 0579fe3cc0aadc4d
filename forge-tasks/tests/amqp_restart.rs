//! Restarting RabbitMQ under queued and running work loses nothing. In its own test binary
//! because it stops the broker every other broker test shares (cargo runs binaries one by one).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{TestWorker, amqp_options, db, tasks};
use forge_tasks::{Registry, TaskState, WorkerOptions};

fn rabbitmqctl(args: &[&str]) {
    // A command line, e.g. `sudo rabbitmqctl` when the tests do not run as root.
    let ctl = std::env::var("FORGE_TEST_RABBITMQCTL").unwrap_or_else(|_| "rabbitmqctl".into());
    let mut words = ctl.split_whitespace();
    let status = std::process::Command::new(words.next().unwrap_or("rabbitmqctl"))
        .args(words)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot run {ctl}: {e}"));
    assert!(status.success(), "{ctl} {args:?} failed");
}

fn restart_broker() {
    rabbitmqctl(&["stop_app"]);
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup", "--timeout", "60"]);
}

#[tokio::test]
async fn queued_tasks_survive_a_broker_restart() {
    let db = db("amqp_restart").await;
    let amqp = amqp_options("restart");
    let marks = db.collection::<bson::Document>("marks");
    let mut reg = Registry::new();
    {
        let marks = marks.clone();
        reg.register("mark", move |args: serde_json::Value| {
            let marks = marks.clone();
            async move {
                marks
                    .insert_one(bson::doc! {"n": args["n"].as_i64().unwrap()})
                    .await
                    .map_err(|e| forge_tasks::TaskError::Retry(e.to_string()))?;
                Ok(())
            }
        });
    }
    let (tasks, transport) = tasks(&db, &amqp).await;

    // Queued with no worker, then the broker goes down and comes back.
    let before = tasks
        .enqueue_many(
            "mark",
            (0..300).map(|n| serde_json::json!({"n": n})),
            Default::default(),
        )
        .await
        .unwrap();
    tokio::task::spawn_blocking(restart_broker).await.unwrap();

    // The worker connects to the restarted broker; the publisher reconnects by itself.
    let worker = TestWorker::start(&db, reg, amqp.clone(), WorkerOptions::default());
    let after = tasks
        .enqueue_many(
            "mark",
            (300..400).map(|n| serde_json::json!({"n": n})),
            Default::default(),
        )
        .await
        .unwrap();

    // And once more while the worker is consuming: it reconnects and carries on.
    tokio::task::spawn_blocking(restart_broker).await.unwrap();
    let last = tasks
        .enqueue("mark", serde_json::json!({"n": 400}))
        .await
        .unwrap();

    for id in before.iter().chain(after.iter()).chain([&last]) {
        let rec = tasks
            .wait(*id, Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rec.state, TaskState::Complete, "{rec:?}");
    }
    // Every task ran (at least once: a restart may redeliver one whose ack was lost).
    let distinct = marks.distinct("n", bson::doc! {}).await.unwrap();
    assert_eq!(distinct.len(), 401);
    worker.stop().await;
    transport.delete_queues(5).await.unwrap();
}
