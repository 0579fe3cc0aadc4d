//! The in-process task runner on a real store: success, retries with backoff, fatal failure,
//! retry from the admin side, de-duplication, and recovery of tasks left by a dead process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

mod common;

use common::db;
use forge_tasks::{InProcess, Registry, TaskError, TaskOptions, TaskState, Tasks};

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn tasks_run_retry_and_fail() {
    let db = db("runner").await;
    let flaky_calls = Arc::new(AtomicU32::new(0));
    let ran = Arc::new(AtomicU32::new(0));
    let mut reg = Registry::new();
    {
        let ran = ran.clone();
        reg.register("ok", move |args: serde_json::Value| {
            let ran = ran.clone();
            async move {
                assert_eq!(args["n"], 7);
                ran.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
    }
    {
        let calls = flaky_calls.clone();
        reg.register("flaky", move |_| {
            let calls = calls.clone();
            async move {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(TaskError::Retry("not yet".into()))
                } else {
                    Ok(())
                }
            }
        });
    }
    reg.register("always", |_| async {
        Err(TaskError::Retry("broken for good".into()))
    });
    reg.register("fatal", |_| async {
        Err(TaskError::Fatal("bad arguments".into()))
    });
    let transport = InProcess::start(&db, reg, 4, Duration::from_millis(5))
        .await
        .unwrap();
    let tasks = Tasks::new(&db, transport);

    let ok = tasks
        .enqueue("ok", serde_json::json!({"n": 7}))
        .await
        .unwrap();
    let rec = tasks.wait(ok, WAIT).await.unwrap().unwrap();
    assert_eq!(rec.state, TaskState::Complete);
    assert_eq!(rec.attempts, 1);
    assert_eq!(ran.load(Ordering::SeqCst), 1, "ran exactly once");

    let flaky = tasks.enqueue("flaky", serde_json::json!({})).await.unwrap();
    let rec = tasks.wait(flaky, WAIT).await.unwrap().unwrap();
    assert_eq!(rec.state, TaskState::Complete);
    assert_eq!(rec.attempts, 3);

    let opts = TaskOptions {
        max_attempts: 3,
        ..TaskOptions::default()
    };
    let always = tasks
        .enqueue_with("always", serde_json::json!({}), opts)
        .await
        .unwrap();
    let rec = tasks.wait(always, WAIT).await.unwrap().unwrap();
    assert_eq!(rec.state, TaskState::Failed);
    assert_eq!(rec.attempts, 3);
    assert_eq!(rec.last_error.as_deref(), Some("broken for good"));

    let fatal = tasks.enqueue("fatal", serde_json::json!({})).await.unwrap();
    let rec = tasks.wait(fatal, WAIT).await.unwrap().unwrap();
    assert_eq!(rec.state, TaskState::Failed);
    assert_eq!(rec.attempts, 1, "fatal errors are not retried");

    let unknown = tasks
        .enqueue("nobody-handles-this", serde_json::json!({}))
        .await
        .unwrap();
    let rec = tasks.wait(unknown, WAIT).await.unwrap().unwrap();
    assert_eq!(rec.state, TaskState::Failed);
    assert!(rec.last_error.unwrap().contains("no handler"));

    // An operator retry gives the task a fresh budget.
    assert!(tasks.retry(always).await.unwrap());
    assert!(
        !tasks.retry(ok).await.unwrap(),
        "only failed tasks are retried"
    );
    let rec = tasks.wait(always, WAIT).await.unwrap().unwrap();
    assert_eq!(rec.state, TaskState::Failed);
    assert_eq!(rec.attempts, 3);

    let counts = tasks.counts().await.unwrap();
    assert!(counts.contains(&("complete".to_owned(), 2)), "{counts:?}");
    assert!(counts.contains(&("failed".to_owned(), 3)), "{counts:?}");
}

#[tokio::test]
async fn queued_duplicates_are_merged() {
    let db = db("dedup").await;
    // No handler runs yet: a transport that never delivers keeps tasks queued.
    struct Hold;
    #[async_trait::async_trait]
    impl forge_tasks::Transport for Hold {
        async fn publish(&self, _: &[forge_tasks::TaskRecord]) -> Result<(), forge_tasks::Error> {
            Ok(())
        }
    }
    let tasks = Tasks::new(&db, Arc::new(Hold));
    let opts = || TaskOptions {
        dedup_key: Some("reindex:page:1".into()),
        ..TaskOptions::default()
    };
    let a = tasks
        .enqueue_with("reindex", serde_json::json!({"page": 1}), opts())
        .await
        .unwrap();
    let b = tasks
        .enqueue_with("reindex", serde_json::json!({"page": 1}), opts())
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(
        tasks.list(Some(TaskState::Queued), 10).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn tasks_left_by_a_dead_process_run_on_restart() {
    let db = db("recover").await;
    struct Hold;
    #[async_trait::async_trait]
    impl forge_tasks::Transport for Hold {
        async fn publish(&self, _: &[forge_tasks::TaskRecord]) -> Result<(), forge_tasks::Error> {
            Ok(())
        }
    }
    // A "process" that enqueued and died before running anything.
    let dead = Tasks::new(&db, Arc::new(Hold));
    let id = dead.enqueue("count", serde_json::json!({})).await.unwrap();
    let hits = Arc::new(AtomicU32::new(0));
    let mut reg = Registry::new();
    let h = hits.clone();
    reg.register("count", move |_| {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    let transport = InProcess::start(&db, reg, 1, Duration::from_millis(5))
        .await
        .unwrap();
    let tasks = Tasks::new(&db, transport);
    let rec = tasks.wait(id, WAIT).await.unwrap().unwrap();
    assert_eq!(rec.state, TaskState::Complete);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}
