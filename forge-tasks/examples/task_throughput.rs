//! Benchmark: no-op tasks per second end to end through RabbitMQ (store record, publish with
//! confirms, one worker, batched bookkeeping, ack), next to raw lapin publish + consume with
//! confirms and manual acks measured in the same run. `bench/tasks.sh` runs it.
//!
//! Usage: task_throughput <mongodb-uri> <amqp-url> [tasks]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

use forge_tasks::{Amqp, AmqpOptions, Registry, TaskOptions, Tasks, WorkerOptions};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mongo = args.next().expect("mongodb uri");
    let amqp = args.next().expect("amqp url");
    let n: u64 = args.next().map_or(50_000, |s| s.parse().unwrap());

    let raw = raw_lapin(&amqp, n).await;
    println!(
        "raw lapin (publish with confirms + consume, manual ack, prefetch 500): {n} msgs in {:.2} s = {:.0} msg/s",
        raw.as_secs_f64(),
        n as f64 / raw.as_secs_f64()
    );
    let forge = forge_tasks(&mongo, &amqp, n).await;
    println!(
        "forge tasks (record + publish + run + record + ack, one worker): {n} tasks in {:.2} s = {:.0} tasks/s",
        forge.as_secs_f64(),
        n as f64 / forge.as_secs_f64()
    );
    println!(
        "forge / raw = {:.0}%",
        100.0 * raw.as_secs_f64() / forge.as_secs_f64()
    );
}

async fn raw_lapin(url: &str, n: u64) -> Duration {
    let queue = format!("bench.raw.{}", std::process::id());
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let publ = conn.create_channel().await.unwrap();
    let cons = conn.create_channel().await.unwrap();
    publ.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .unwrap();
    publ.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    cons.basic_qos(500, BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = cons
        .basic_consume(
            queue.as_str().into(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let got = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let counter = got.clone();
    let consume = tokio::spawn(async move {
        while let Some(d) = consumer.next().await {
            let d = d.unwrap();
            d.ack(BasicAckOptions::default()).await.unwrap();
            if counter.fetch_add(1, Ordering::Relaxed) + 1 == n {
                break;
            }
        }
    });
    let payload = br#"{"id":"000000000000000000000000","name":"noop","args":"{}","attempts":0,"max_attempts":5,"priority":5}"#;
    let mut sent = 0;
    while sent < n {
        let chunk = (n - sent).min(1000);
        let mut confirms = Vec::new();
        for _ in 0..chunk {
            confirms.push(
                publ.basic_publish(
                    "".into(),
                    queue.as_str().into(),
                    BasicPublishOptions::default(),
                    payload,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .unwrap(),
            );
        }
        for c in confirms {
            assert!(c.await.unwrap().is_ack());
        }
        sent += chunk;
    }
    consume.await.unwrap();
    let took = start.elapsed();
    publ.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    took
}

async fn forge_tasks(mongo: &str, url: &str, n: u64) -> Duration {
    let db = mongodb::Client::with_uri_str(mongo)
        .await
        .unwrap()
        .database(&format!("bench_tasks_{}", std::process::id()));
    Tasks::ensure_indexes(&db).await.unwrap();
    let mut opts = AmqpOptions::new(url);
    opts.prefix = format!("bench.{}", std::process::id());
    let transport = Amqp::connect(opts.clone()).await.unwrap();
    let tasks = Tasks::new(&db, transport.clone());
    let ran = Arc::new(AtomicU64::new(0));
    let mut reg = Registry::new();
    let r = ran.clone();
    reg.register("noop", move |_| {
        let r = r.clone();
        async move {
            r.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker_db = db.clone();
    let worker = tokio::spawn(async move {
        forge_tasks::run_worker(
            &worker_db,
            reg,
            opts,
            WorkerOptions {
                concurrency: 64,
                prefetch: 1000,
                ..WorkerOptions::default()
            },
            async {
                let _ = stopped.await;
            },
        )
        .await
        .unwrap();
    });
    let start = Instant::now();
    // Four producers (think: web requests) enqueue in batches of 1,000 while the worker runs.
    let producers = 4;
    let mut handles = Vec::new();
    for p in 0..producers {
        let tasks = tasks.clone();
        handles.push(tokio::spawn(async move {
            let mut i = p;
            let mut batch = Vec::with_capacity(1000);
            while i < n {
                batch.push(serde_json::json!({ "i": i }));
                if batch.len() == 1000 {
                    tasks
                        .enqueue_many("noop", batch.drain(..), TaskOptions::default())
                        .await
                        .unwrap();
                }
                i += producers;
            }
            tasks
                .enqueue_many("noop", batch, TaskOptions::default())
                .await
                .unwrap();
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    // Done when every record says complete (the worker acks only after that). Counting in the
    // store is not free, so wait for the handlers first.
    while ran.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let coll = db.collection::<bson::Document>("tasks");
    loop {
        let done = coll
            .count_documents(bson::doc! {"state": "complete"})
            .await
            .unwrap();
        if done >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = start.elapsed();
    assert_eq!(
        ran.load(Ordering::Relaxed),
        n,
        "every task ran exactly once"
    );
    let _ = stop.send(());
    worker.await.unwrap();
    transport.delete_queues(5).await.unwrap();
    db.drop().await.unwrap();
    took
}
