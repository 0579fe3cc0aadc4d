//! Tasks through the real RabbitMQ: run once, retry through the delay queues, dead-letter after
//! the last attempt, priorities, graceful shutdown, and redelivery after a worker is killed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{TestWorker, amqp_options, db, tasks};
use forge_tasks::{Registry, TaskError, TaskOptions, TaskState, Transport, WorkerOptions};
use tokio::sync::Mutex;

const WAIT: Duration = Duration::from_secs(20);

fn counter(reg: &mut Registry, name: &str) -> Arc<AtomicU32> {
    let n = Arc::new(AtomicU32::new(0));
    let c = n.clone();
    reg.register(name, move |_| {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    n
}

#[tokio::test]
async fn a_task_runs_once_retries_and_dead_letters() {
    let db = db("amqp").await;
    let amqp = amqp_options("basic");
    let mut reg = Registry::new();
    let ok_runs = counter(&mut reg, "ok");
    let flaky = Arc::new(AtomicU32::new(0));
    {
        let flaky = flaky.clone();
        reg.register("flaky", move |_| {
            let flaky = flaky.clone();
            async move {
                if flaky.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(TaskError::Retry("not yet".into()))
                } else {
                    Ok(())
                }
            }
        });
    }
    reg.register("always", |_| async {
        Err(TaskError::Retry("disk on fire".into()))
    });
    let (tasks, transport) = tasks(&db, &amqp).await;
    let worker = TestWorker::start(&db, reg, amqp.clone(), WorkerOptions::default());

    let ok = tasks.enqueue("ok", serde_json::json!({})).await.unwrap();
    let fl = tasks.enqueue("flaky", serde_json::json!({})).await.unwrap();
    let bad = tasks
        .enqueue_with(
            "always",
            serde_json::json!({}),
            TaskOptions {
                max_attempts: 3,
                ..TaskOptions::default()
            },
        )
        .await
        .unwrap();

    let rec = tasks.wait(ok, WAIT).await.unwrap().unwrap();
    assert_eq!(rec.state, TaskState::Complete);
    assert_eq!(rec.attempts, 1);
    assert!(rec.started.is_some() && rec.finished.is_some());

    let rec = tasks.wait(fl, WAIT).await.unwrap().unwrap();
    assert_eq!(rec.state, TaskState::Complete, "{rec:?}");
    assert_eq!(rec.attempts, 3);
    assert_eq!(flaky.load(Ordering::SeqCst), 3);

    let rec = tasks.wait(bad, WAIT).await.unwrap().unwrap();
    assert_eq!(rec.state, TaskState::Failed);
    assert_eq!(rec.attempts, 3);
    assert_eq!(rec.last_error.as_deref(), Some("disk on fire"));

    // The spent task sits in the dead-letter queue for operators.
    let mut dead = 0;
    for _ in 0..50 {
        let depth = transport.queue_depth().await.unwrap();
        dead = depth
            .iter()
            .find(|(q, _)| q.ends_with(".dead"))
            .map_or(0, |d| d.1);
        if dead == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead, 1);

    // Ran once: nothing comes back later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ok_runs.load(Ordering::SeqCst), 1);

    // An operator's retry puts the failed task back through the broker.
    assert!(tasks.retry(bad).await.unwrap());
    let rec = tasks.wait(bad, WAIT).await.unwrap().unwrap();
    assert_eq!(rec.state, TaskState::Failed);
    assert_eq!(rec.attempts, 3, "a retry starts a fresh attempt budget");

    worker.stop().await;
    transport.delete_queues(5).await.unwrap();
}

#[tokio::test]
async fn many_tasks_complete_and_priorities_go_first() {
    let db = db("amqp_prio").await;
    let amqp = amqp_options("prio");
    let order = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut reg = Registry::new();
    {
        let order = order.clone();
        reg.register("note", move |args: serde_json::Value| {
            let order = order.clone();
            async move {
                order
                    .lock()
                    .await
                    .push(args["tag"].as_str().unwrap().to_owned());
                Ok(())
            }
        });
    }
    let (tasks, transport) = tasks(&db, &amqp).await;
    // Queued before any worker exists: bulk first, then one interactive task.
    let bulk = TaskOptions {
        priority: 0,
        ..TaskOptions::default()
    };
    let ids = tasks
        .enqueue_many(
            "note",
            (0..200).map(|i| serde_json::json!({"tag": format!("bulk{i}")})),
            bulk,
        )
        .await
        .unwrap();
    let urgent = tasks
        .enqueue_with(
            "note",
            serde_json::json!({"tag": "urgent"}),
            TaskOptions {
                priority: 9,
                ..TaskOptions::default()
            },
        )
        .await
        .unwrap();
    let worker = TestWorker::start(
        &db,
        reg,
        amqp.clone(),
        WorkerOptions {
            concurrency: 1,
            prefetch: 1,
            ..WorkerOptions::default()
        },
    );
    tasks.wait(urgent, WAIT).await.unwrap();
    for id in &ids {
        let rec = tasks.wait(*id, WAIT).await.unwrap().unwrap();
        assert_eq!(rec.state, TaskState::Complete);
    }
    let order = order.lock().await;
    assert_eq!(order.len(), 201);
    assert_eq!(
        order[0], "urgent",
        "the interactive task jumps the bulk queue"
    );
    worker.stop().await;
    transport.delete_queues(5).await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_the_running_task_finish() {
    let db = db("amqp_stop").await;
    let amqp = amqp_options("stop");
    let started = Arc::new(tokio::sync::Notify::new());
    let mut reg = Registry::new();
    {
        let started = started.clone();
        reg.register("slow", move |_| {
            let started = started.clone();
            async move {
                started.notify_one();
                tokio::time::sleep(Duration::from_millis(500)).await;
                Ok(())
            }
        });
    }
    let (tasks, transport) = tasks(&db, &amqp).await;
    let worker = TestWorker::start(&db, reg, amqp.clone(), WorkerOptions::default());
    let id = tasks.enqueue("slow", serde_json::json!({})).await.unwrap();
    tokio::time::timeout(WAIT, started.notified())
        .await
        .unwrap();
    worker.stop().await; // returns only after the handler finished and was acked
    let rec = tasks.get(id).await.unwrap().unwrap();
    assert_eq!(rec.state, TaskState::Complete);
    let depth = transport.queue_depth().await.unwrap();
    assert!(depth.iter().all(|(_, n)| *n == 0), "{depth:?}");
    transport.delete_queues(5).await.unwrap();
}

/// Set in the child process this test starts: it then only runs a worker whose handler hangs.
const CHILD: &str = "FORGE_TASKS_TEST_CHILD";

#[tokio::test]
async fn a_killed_worker_s_task_is_redelivered_and_completes() {
    if let Ok(spec) = std::env::var(CHILD) {
        return child_worker(&spec).await;
    }
    let db = db("amqp_kill").await;
    let amqp = amqp_options("kill");
    let (tasks, transport) = tasks(&db, &amqp).await;
    let id = tasks.enqueue("hang", serde_json::json!({})).await.unwrap();

    // A worker in another process picks the task up and hangs in it.
    let spec = format!("{}|{}|{}", db.name(), amqp.prefix, id);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "a_killed_worker_s_task_is_redelivered_and_completes",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, &spec)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let marks = db.collection::<bson::Document>("marks");
    let mut running = false;
    for _ in 0..400 {
        if marks.count_documents(bson::doc! {}).await.unwrap() == 1 {
            running = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(running, "the child worker never started the task");
    let mut state = TaskState::Queued;
    for _ in 0..100 {
        state = tasks.get(id).await.unwrap().unwrap().state;
        if state == TaskState::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state, TaskState::Running);
    child.kill().unwrap(); // SIGKILL: no chance to ack or return anything
    child.wait().unwrap();

    // Another worker gets the unacknowledged message again and finishes it.
    let mut reg = Registry::new();
    {
        let marks = marks.clone();
        reg.register("hang", move |_| {
            let marks = marks.clone();
            async move {
                marks
                    .insert_one(bson::doc! {"by": "survivor"})
                    .await
                    .unwrap();
                Ok(())
            }
        });
    }
    let worker = TestWorker::start(&db, reg, amqp.clone(), WorkerOptions::default());
    let rec = tasks.wait(id, WAIT).await.unwrap().unwrap();
    assert_eq!(rec.state, TaskState::Complete, "{rec:?}");
    assert_eq!(rec.attempts, 2, "the killed attempt counts");
    assert_eq!(marks.count_documents(bson::doc! {}).await.unwrap(), 2);
    worker.stop().await;
    transport.delete_queues(5).await.unwrap();
}

async fn child_worker(spec: &str) {
    let mut parts = spec.split('|');
    let (db_name, prefix) = (parts.next().unwrap(), parts.next().unwrap());
    let uri = std::env::var("FORGE_TEST_MONGODB_URI").unwrap();
    let db = mongodb::Client::with_uri_str(&uri)
        .await
        .unwrap()
        .database(db_name);
    let mut amqp = amqp_options("child");
    amqp.prefix = prefix.to_owned();
    let marks = db.collection::<bson::Document>("marks");
    let mut reg = Registry::new();
    reg.register("hang", move |_| {
        let marks = marks.clone();
        async move {
            marks.insert_one(bson::doc! {"by": "child"}).await.unwrap();
            tokio::time::sleep(Duration::from_secs(600)).await;
            Ok(())
        }
    });
    forge_tasks::run_worker(
        &db,
        reg,
        amqp,
        WorkerOptions::default(),
        std::future::pending(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn exclusive_tasks_run_only_on_the_worker_that_holds_the_resource() {
    let db = db("amqp_excl").await;
    let amqp = amqp_options("excl");
    let marks = db.collection::<bson::Document>("marks");
    let registry = |who: &'static str| {
        let mut reg = Registry::new();
        let m = marks.clone();
        reg.register_exclusive("index", move |_| {
            let m = m.clone();
            async move {
                m.insert_one(bson::doc! {"by": who}).await.unwrap();
                Ok(())
            }
        });
        reg
    };
    let (tasks, transport) = tasks(&db, &amqp).await;
    let plain = TestWorker::start(
        &db,
        registry("plain"),
        amqp.clone(),
        WorkerOptions::default(),
    );
    let ids = tasks
        .enqueue_many(
            "index",
            (0..40).map(|i| serde_json::json!({"i": i})),
            TaskOptions::default(),
        )
        .await
        .unwrap();
    // The plain worker hands every one of them to the exclusive queue...
    let mut forwarded = 0;
    for _ in 0..200 {
        let depth = transport.queue_depth().await.unwrap();
        forwarded = depth
            .iter()
            .find(|(q, _)| q.ends_with(".exclusive"))
            .map_or(0, |d| d.1);
        if forwarded == 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(forwarded, 40);
    // ...where the worker holding the resource runs them.
    let holder = TestWorker::start(
        &db,
        registry("holder"),
        amqp.clone(),
        WorkerOptions {
            exclusive: true,
            ..WorkerOptions::default()
        },
    );
    for id in ids {
        let rec = tasks.wait(id, WAIT).await.unwrap().unwrap();
        assert_eq!(rec.state, TaskState::Complete);
        assert_eq!(rec.attempts, 1, "forwarding is not an attempt");
    }
    assert_eq!(
        marks
            .count_documents(bson::doc! {"by": "holder"})
            .await
            .unwrap(),
        40
    );
    assert_eq!(
        marks
            .count_documents(bson::doc! {"by": "plain"})
            .await
            .unwrap(),
        0
    );
    plain.stop().await;
    holder.stop().await;
    transport.delete_queues(5).await.unwrap();
}

#[tokio::test]
async fn a_plain_worker_takes_over_exclusive_tasks_when_the_resource_is_free() {
    let db = db("amqp").await;
    let amqp = amqp_options("takeover");
    let runs = Arc::new(AtomicU32::new(0));
    let mut reg = Registry::new();
    {
        let runs = runs.clone();
        reg.register_exclusive("index", move |_| {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        });
    }
    let (tasks, transport) = tasks(&db, &amqp).await;
    // The resource is held elsewhere (by a holder that will die) until `free` is set.
    let free = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let takeover = {
        let free = free.clone();
        forge_tasks::Takeover(Arc::new(move || free.load(Ordering::SeqCst)))
    };
    let worker = TestWorker::start(
        &db,
        reg,
        amqp.clone(),
        WorkerOptions {
            takeover: Some(takeover),
            ..WorkerOptions::default()
        },
    );
    let ids = tasks
        .enqueue_many(
            "index",
            (0..10).map(|i| serde_json::json!({"i": i})),
            TaskOptions::default(),
        )
        .await
        .unwrap();
    // Forwarded to the exclusive queue, where nobody runs them...
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    // ...until the worker can take the resource: then it consumes that queue too.
    free.store(true, Ordering::SeqCst);
    for id in ids {
        let rec = tasks.wait(id, WAIT).await.unwrap().unwrap();
        assert_eq!(rec.state, TaskState::Complete);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 10);
    worker.stop().await;
    transport.delete_queues(5).await.unwrap();
}

#[tokio::test]
async fn a_record_stored_but_never_published_is_swept_and_run_once() {
    let db = db("amqp").await;
    let amqp = amqp_options("sweep");
    let mut reg = Registry::new();
    let runs = counter(&mut reg, "lost");
    let (tasks, transport) = tasks(&db, &amqp).await;
    // What a web node that died between storing and publishing leaves: a queued record the
    // broker never saw; and one that did run (complete), which must not run again.
    let record = |state: &str| {
        bson::doc! {
            "_id": bson::oid::ObjectId::new(),
            "name": "lost",
            "args": "{}",
            "state": state,
            "priority": 5_i32,
            "attempts": 0_i32,
            "max_attempts": 3_i32,
            "created": bson::DateTime::from_millis(bson::DateTime::now().timestamp_millis() - 5_000),
        }
    };
    let stranded = record("queued");
    let done = record("complete");
    let coll = db.collection::<bson::Document>("tasks");
    coll.insert_many([&stranded, &done]).await.unwrap();
    let worker = TestWorker::start(
        &db,
        reg,
        amqp.clone(),
        WorkerOptions {
            sweep_after: Duration::from_secs(1),
            ..WorkerOptions::default()
        },
    );
    let id = forge_tasks::TaskId(stranded.get_object_id("_id").unwrap());
    let rec = tasks.wait(id, WAIT).await.unwrap().unwrap();
    assert_eq!(rec.state, TaskState::Complete, "{rec:?}");
    assert_eq!(rec.attempts, 1);
    // Swept once: a later sweep (the next worker start) finds nothing to publish.
    let again = TestWorker::start(
        &db,
        Registry::new(),
        amqp.clone(),
        WorkerOptions {
            sweep_after: Duration::from_secs(1),
            ..WorkerOptions::default()
        },
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    worker.stop().await;
    again.stop().await;
    transport.delete_queues(5).await.unwrap();
}
