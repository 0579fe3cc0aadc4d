//! Delivery of tasks to handlers: the [`Transport`] trait and the in-process default.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bson::{DateTime, doc};
use futures::TryStreamExt;
use mongodb::options::ReturnDocument;
use mongodb::{Collection, Database};
use tokio::sync::{Semaphore, mpsc};

use crate::record::{self, TaskId, TaskRecord, TaskState};
use crate::{Error, Registry, TaskError};

/// Carries task ids from the enqueuing side to whatever runs them.
///
/// The task record is written to the store before `publish`, so a transport only moves ids;
/// a broker transport adds durability across processes.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Hands the (already stored) tasks to whatever runs them.
    async fn publish(&self, tasks: &[TaskRecord]) -> Result<(), Error>;

    /// Messages waiting in the transport, by queue, for the admin page. Transports without
    /// queues of their own report nothing (the store's `queued` count says it all).
    async fn queue_depth(&self) -> Result<Vec<(String, u64)>, Error> {
        Ok(Vec::new())
    }
}

/// Stores task records without delivering them: for short-lived processes (CLI commands)
/// whose tasks the running `forge serve` picks up (it looks for such tasks every 2 s).
pub struct StoreOnly;

#[async_trait]
impl Transport for StoreOnly {
    async fn publish(&self, _tasks: &[TaskRecord]) -> Result<(), Error> {
        Ok(())
    }
}

/// Runs tasks on the local tokio runtime, at most `concurrency` at a time.
///
/// On start it re-queues tasks left `queued` or `running` by a previous process, so a restart
/// loses no work.
pub struct InProcess {
    tx: mpsc::UnboundedSender<TaskId>,
    local: Local,
}

/// Ids handed to the local queue and not yet run, so the poller does not hand them again.
type Local = Arc<std::sync::Mutex<std::collections::HashSet<TaskId>>>;

/// Shared state of the executing side.
#[derive(Clone)]
struct Executor {
    coll: Collection<TaskRecord>,
    registry: Arc<Registry>,
    tx: mpsc::UnboundedSender<TaskId>,
    base_backoff: Duration,
    local: Local,
}

impl InProcess {
    pub async fn start(
        db: &Database,
        registry: Registry,
        concurrency: usize,
        base_backoff: Duration,
    ) -> Result<Arc<Self>, Error> {
        let (tx, mut rx) = mpsc::unbounded_channel::<TaskId>();
        let exec = Executor {
            coll: record::collection(db),
            registry: Arc::new(registry),
            tx: tx.clone(),
            base_backoff,
            local: Local::default(),
        };
        let local = exec.local.clone();
        exec.recover().await?;
        exec.clone().poll_for_others(Duration::from_secs(2));
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        tokio::spawn(async move {
            while let Some(id) = rx.recv().await {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let exec = exec.clone();
                tokio::spawn(async move {
                    exec.execute(id).await;
                    if let Ok(mut l) = exec.local.lock() {
                        l.remove(&id);
                    }
                    drop(permit);
                });
            }
        });
        Ok(Arc::new(Self { tx, local }))
    }
}

#[async_trait]
impl Transport for InProcess {
    async fn publish(&self, tasks: &[TaskRecord]) -> Result<(), Error> {
        for t in tasks {
            if let Ok(mut l) = self.local.lock() {
                l.insert(t.id);
            }
            self.tx.send(t.id).map_err(|_| Error::TransportClosed)?;
        }
        Ok(())
    }
}

impl Executor {
    async fn recover(&self) -> Result<(), Error> {
        self.coll
            .update_many(
                doc! {"state": TaskState::Running.as_str()},
                doc! {"$set": {"state": TaskState::Queued.as_str()}},
            )
            .await?;
        let mut cursor = self
            .coll
            .find(doc! {"state": TaskState::Queued.as_str()})
            .sort(doc! {"_id": 1})
            .await?;
        while let Some(rec) = cursor.try_next().await? {
            if let Ok(mut l) = self.local.lock() {
                l.insert(rec.id);
            }
            let _ = self.tx.send(rec.id);
        }
        Ok(())
    }

    /// Picks up tasks other processes (CLI commands) stored without delivering them. Only
    /// never-attempted tasks older than one period: local ones were sent at once, and tasks
    /// waiting out a retry backoff have attempts. A task sent twice is claimed once.
    fn poll_for_others(self, every: Duration) {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let cutoff = DateTime::from_millis(
                    DateTime::now().timestamp_millis() - every.as_millis() as i64,
                );
                let found = self
                    .coll
                    .find(doc! {"state": TaskState::Queued.as_str(), "attempts": 0, "created": {"$lt": cutoff}})
                    .sort(doc! {"_id": 1})
                    .limit(1000)
                    .await;
                let Ok(mut cursor) = found else { continue };
                while let Ok(Some(rec)) = cursor.try_next().await {
                    let fresh = self.local.lock().is_ok_and(|mut l| l.insert(rec.id));
                    if fresh && self.tx.send(rec.id).is_err() {
                        return;
                    }
                }
            }
        });
    }

    /// Claims the task (queued → running), runs it, and records the outcome.
    async fn execute(&self, id: TaskId) {
        if let Err(e) = self.try_execute(id).await {
            tracing::error!(task = %id, error = %e, "task bookkeeping failed");
        }
    }

    async fn try_execute(&self, id: TaskId) -> Result<(), Error> {
        let claimed = self
            .coll
            .find_one_and_update(
                doc! {"_id": id.0, "state": TaskState::Queued.as_str()},
                doc! {
                    "$set": {"state": TaskState::Running.as_str(), "started": DateTime::now()},
                    "$inc": {"attempts": 1},
                },
            )
            .return_document(ReturnDocument::After)
            .await?;
        // Already claimed elsewhere or finished: the id was delivered twice, which is harmless.
        let Some(rec) = claimed else { return Ok(()) };
        let outcome = match self.registry.get(&rec.name) {
            None => Err(TaskError::Fatal(format!(
                "no handler registered for task {:?}",
                rec.name
            ))),
            Some(handler) => {
                let args = rec.args_json();
                // A panicking handler must not take the runner down: run it as its own task.
                match tokio::spawn(async move { handler.run(args).await }).await {
                    Ok(r) => r,
                    Err(join) => Err(TaskError::Retry(format!("handler panicked: {join}"))),
                }
            }
        };
        match outcome {
            Ok(()) => {
                self.coll
                    .update_one(
                        doc! {"_id": id.0},
                        doc! {"$set": {"state": TaskState::Complete.as_str(), "finished": DateTime::now()}},
                    )
                    .await?;
                tracing::debug!(task = %id, name = %rec.name, "task complete");
            }
            Err(TaskError::Retry(msg)) if rec.attempts < rec.max_attempts => {
                self.coll
                    .update_one(
                        doc! {"_id": id.0},
                        doc! {"$set": {"state": TaskState::Queued.as_str(), "last_error": &msg}},
                    )
                    .await?;
                let delay = backoff(self.base_backoff, rec.attempts);
                tracing::warn!(task = %id, name = %rec.name, attempt = rec.attempts, error = %msg, ?delay, "task failed; will retry");
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tx.send(id);
                });
            }
            Err(e) => {
                self.coll
                    .update_one(
                        doc! {"_id": id.0},
                        doc! {"$set": {
                            "state": TaskState::Failed.as_str(),
                            "finished": DateTime::now(),
                            "last_error": e.to_string(),
                        }},
                    )
                    .await?;
                tracing::error!(task = %id, name = %rec.name, error = %e, "task failed for good");
            }
        }
        Ok(())
    }
}

/// Exponential backoff: base × 2^(attempt-1), capped at ten minutes.
pub(crate) fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
    (base * factor).min(Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_millis(100);
        assert_eq!(backoff(b, 1), Duration::from_millis(100));
        assert_eq!(backoff(b, 2), Duration::from_millis(200));
        assert_eq!(backoff(b, 4), Duration::from_millis(800));
        assert_eq!(backoff(b, 40), Duration::from_secs(600));
    }
}
