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

/// Runs tasks on the local tokio runtime, at most `concurrency` at a time.
///
/// On start it re-queues tasks left `queued` or `running` by a previous process, so a restart
/// loses no work.
pub struct InProcess {
    tx: mpsc::UnboundedSender<TaskId>,
}

/// Shared state of the executing side.
#[derive(Clone)]
struct Executor {
    coll: Collection<TaskRecord>,
    registry: Arc<Registry>,
    tx: mpsc::UnboundedSender<TaskId>,
    base_backoff: Duration,
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
        };
        exec.recover().await?;
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        tokio::spawn(async move {
            while let Some(id) = rx.recv().await {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let exec = exec.clone();
                tokio::spawn(async move {
                    exec.execute(id).await;
                    drop(permit);
                });
            }
        });
        Ok(Arc::new(Self { tx }))
    }
}

#[async_trait]
impl Transport for InProcess {
    async fn publish(&self, tasks: &[TaskRecord]) -> Result<(), Error> {
        for t in tasks {
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
            let _ = self.tx.send(rec.id);
        }
        Ok(())
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
