//! Shared set-up for the broker tests: a fresh database and queue prefix per test, on the real
//! store and the real RabbitMQ that `scripts/test` starts.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use forge_tasks::{Amqp, AmqpOptions, Registry, Tasks, WorkerOptions};
use mongodb::Database;
use tokio::sync::oneshot;

pub async fn db(label: &str) -> Database {
    let uri = std::env::var("FORGE_TEST_MONGODB_URI")
        .expect("FORGE_TEST_MONGODB_URI is unset: run scripts/test");
    let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
    let db = client.database(&format!(
        "t_{label}_{}_{}",
        std::process::id(),
        bson::oid::ObjectId::new()
    ));
    Tasks::ensure_indexes(&db).await.unwrap();
    db
}

/// Broker options with a queue prefix of this test's own.
pub fn amqp_options(label: &str) -> AmqpOptions {
    let url = std::env::var("FORGE_TEST_AMQP_URL")
        .expect("FORGE_TEST_AMQP_URL is unset: run scripts/test");
    let mut opts = AmqpOptions::new(url);
    opts.prefix = format!("test.{label}.{}", bson::oid::ObjectId::new());
    opts.base_backoff = Duration::from_millis(50);
    opts
}

/// A worker running in this process until the returned sender fires (or is dropped).
pub struct TestWorker {
    stop: Option<oneshot::Sender<()>>,
    pub done: tokio::task::JoinHandle<()>,
}

impl TestWorker {
    pub fn start(
        db: &Database,
        registry: Registry,
        amqp: AmqpOptions,
        opts: WorkerOptions,
    ) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let db = db.clone();
        let done = tokio::spawn(async move {
            forge_tasks::run_worker(&db, registry, amqp, opts, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Self {
            stop: Some(stop),
            done,
        }
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.done)
            .await
            .expect("worker did not stop")
            .unwrap();
    }
}

pub async fn tasks(db: &Database, amqp: &AmqpOptions) -> (Tasks, Arc<Amqp>) {
    let transport = Amqp::connect(amqp.clone()).await.unwrap();
    (Tasks::new(db, transport.clone()), transport)
}
