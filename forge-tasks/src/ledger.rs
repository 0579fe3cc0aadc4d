//! Batched bookkeeping of task records for the broker worker.
//!
//! A worker finishing thousands of short tasks a second cannot afford three store round trips
//! per task. Marks (running, complete, retry, failed) go to one writer that drains whatever has
//! piled up and writes it as a few `update_many` calls; callers that must not ack a message
//! before its record is durable wait for the flush that carried their mark.

use std::collections::HashMap;

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use mongodb::Collection;
use tokio::sync::{mpsc, oneshot};

use crate::record::{TaskId, TaskRecord, TaskState};

/// What happened to a task.
#[derive(Debug, Clone)]
pub(crate) enum Mark {
    Running,
    /// Finished; carries when the handler started (no `running` mark may have been written).
    Complete {
        started: DateTime,
    },
    /// Failed this attempt; goes back to `queued` for a later one.
    Retry(String),
    Failed(String),
}

struct Entry {
    id: TaskId,
    attempts: u32,
    mark: Mark,
    at: DateTime,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

/// Handle to the writer task.
#[derive(Clone)]
pub(crate) struct Ledger {
    tx: mpsc::UnboundedSender<Entry>,
}

/// How long a flush waits for more marks once several are already waiting.
const GATHER: std::time::Duration = std::time::Duration::from_millis(3);

/// Most marks written in one flush.
const BATCH: usize = 1000;

impl Ledger {
    pub(crate) fn start(coll: Collection<TaskRecord>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Entry>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                // Under load, a moment's wait turns many small writes into one big one; when
                // idle the first mark is written at once.
                if batch.len() > 1 && batch.len() < BATCH {
                    tokio::time::sleep(GATHER).await;
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(e) => batch.push(e),
                            Err(_) => break,
                        }
                    }
                }
                let result = flush(&coll, &batch).await.map_err(|e| e.to_string());
                if let Err(e) = &result {
                    tracing::error!(error = %e, marks = batch.len(), "task bookkeeping failed");
                }
                for entry in batch.drain(..) {
                    if let Some(done) = entry.done {
                        let _ = done.send(result.clone());
                    }
                }
            }
        });
        Self { tx }
    }

    /// Records a mark without waiting for it to be written.
    pub(crate) fn note(&self, id: TaskId, attempts: u32, mark: Mark) {
        let _ = self.tx.send(Entry {
            id,
            attempts,
            mark,
            at: DateTime::now(),
            done: None,
        });
    }

    /// Records a mark and returns once it is in the store.
    pub(crate) async fn write(&self, id: TaskId, attempts: u32, mark: Mark) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Entry {
                id,
                attempts,
                mark,
                at: DateTime::now(),
                done: Some(done),
            })
            .map_err(|_| "bookkeeping stopped".to_owned())?;
        wait.await.map_err(|_| "bookkeeping stopped".to_owned())?
    }
}

async fn flush(
    coll: &Collection<TaskRecord>,
    batch: &[Entry],
) -> Result<(), mongodb::error::Error> {
    // A task that started and finished within one batch only needs its final state written.
    let mut last: HashMap<ObjectId, usize> = HashMap::new();
    for (i, e) in batch.iter().enumerate() {
        last.insert(e.id.0, i);
    }
    let mut running: HashMap<u32, (Vec<ObjectId>, DateTime)> = HashMap::new();
    let mut complete: HashMap<u32, (Vec<ObjectId>, DateTime)> = HashMap::new();
    for (i, e) in batch.iter().enumerate() {
        if last.get(&e.id.0) != Some(&i) {
            continue;
        }
        match &e.mark {
            Mark::Running => {
                let g = running.entry(e.attempts).or_insert((Vec::new(), e.at));
                g.0.push(e.id.0);
            }
            Mark::Complete { started } => {
                // One start time per group: the earliest, a few milliseconds off at most.
                let g = complete.entry(e.attempts).or_insert((Vec::new(), *started));
                g.0.push(e.id.0);
                if *started < g.1 {
                    g.1 = *started;
                }
            }
            Mark::Retry(msg) => {
                coll.update_one(
                    doc! {"_id": e.id.0},
                    doc! {"$set": {
                        "state": TaskState::Queued.as_str(),
                        "attempts": e.attempts,
                        "last_error": msg,
                    }},
                )
                .await?;
            }
            Mark::Failed(msg) => {
                coll.update_one(
                    doc! {"_id": e.id.0},
                    doc! {"$set": {
                        "state": TaskState::Failed.as_str(),
                        "attempts": e.attempts,
                        "finished": e.at,
                        "last_error": msg,
                    }},
                )
                .await?;
            }
        }
    }
    for (attempts, (ids, at)) in running {
        // Only a task still waiting may become running: a late mark must not undo a finish.
        coll.update_many(
            doc! {"_id": {"$in": ids}, "state": {"$in": [TaskState::Queued.as_str(), TaskState::Running.as_str()]}},
            doc! {"$set": {"state": TaskState::Running.as_str(), "attempts": attempts, "started": at}},
        )
        .await?;
    }
    let now = DateTime::now();
    for (attempts, (ids, started)) in complete {
        coll.update_many(
            doc! {"_id": {"$in": ids}},
            doc! {"$set": {
                "state": TaskState::Complete.as_str(),
                "attempts": attempts,
                "started": started,
                "finished": now,
            }},
        )
        .await?;
    }
    Ok(())
}
