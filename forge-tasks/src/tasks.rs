//! [`Tasks`]: the handle that enqueues tasks and reads their records.

use std::sync::Arc;
use std::time::Duration;

use bson::doc;
use mongodb::{Collection, Database};

use crate::error::Error;
use crate::options::TaskOptions;
use crate::record::{self, TaskId, TaskRecord, TaskState};
use crate::runner::Transport;

/// How long a queued record with a dedup key stands for later tasks with that key.
const DEDUP_WINDOW_MS: i64 = 60_000;

/// The handle domain code uses to enqueue work and operators use to inspect it.
#[derive(Clone)]
pub struct Tasks {
    coll: Collection<TaskRecord>,
    transport: Arc<dyn Transport>,
}

impl Tasks {
    pub fn new(db: &Database, transport: Arc<dyn Transport>) -> Self {
        Self {
            coll: record::collection(db),
            transport,
        }
    }

    /// Creates the indexes the task collection needs.
    pub async fn ensure_indexes(db: &Database) -> Result<(), Error> {
        record::ensure_indexes(db).await
    }

    pub async fn enqueue(&self, name: &str, args: serde_json::Value) -> Result<TaskId, Error> {
        self.enqueue_with(name, args, TaskOptions::default()).await
    }

    pub async fn enqueue_with(
        &self,
        name: &str,
        args: serde_json::Value,
        opts: TaskOptions,
    ) -> Result<TaskId, Error> {
        if let Some(key) = &opts.dedup_key {
            // Only a recent record stands for this one: an old one still queued may be one
            // whose publish never happened (until a worker's sweep), and must not swallow
            // every later task with its key.
            let recent = bson::DateTime::from_millis(
                bson::DateTime::now().timestamp_millis() - DEDUP_WINDOW_MS,
            );
            let existing = self
                .coll
                .find_one(doc! {
                    "dedup_key": key,
                    "state": TaskState::Queued.as_str(),
                    "created": {"$gte": recent},
                })
                .await?;
            if let Some(existing) = existing {
                return Ok(existing.id);
            }
        }
        let rec = TaskRecord::new(name, args, &opts)?;
        self.coll.insert_one(&rec).await?;
        self.publish(std::slice::from_ref(&rec)).await?;
        Ok(rec.id)
    }

    /// Enqueues many tasks of one name at once (bulk work such as reindexing): one store write
    /// and one pipelined publish for the lot. No de-duplication.
    pub async fn enqueue_many(
        &self,
        name: &str,
        args: impl IntoIterator<Item = serde_json::Value>,
        opts: TaskOptions,
    ) -> Result<Vec<TaskId>, Error> {
        let recs = args
            .into_iter()
            .map(|a| TaskRecord::new(name, a, &opts))
            .collect::<Result<Vec<_>, _>>()?;
        if recs.is_empty() {
            return Ok(Vec::new());
        }
        self.coll.insert_many(&recs).await?;
        self.publish(&recs).await?;
        Ok(recs.iter().map(|r| r.id).collect())
    }

    /// Publishes stored records; when the transport refuses them, the records are marked failed
    /// with the reason, so they show on the admin page and can be retried instead of sitting
    /// `queued` forever with nothing to run them.
    async fn publish(&self, recs: &[TaskRecord]) -> Result<(), Error> {
        if let Err(e) = self.transport.publish(recs).await {
            let ids: Vec<_> = recs.iter().map(|r| r.id.0).collect();
            let _ = self
                .coll
                .update_many(
                    doc! {"_id": {"$in": ids}, "state": TaskState::Queued.as_str()},
                    doc! {"$set": {
                        "state": TaskState::Failed.as_str(),
                        "finished": bson::DateTime::now(),
                        "last_error": format!("could not queue: {e}"),
                    }},
                )
                .await;
            return Err(e);
        }
        Ok(())
    }

    /// Messages waiting in the transport's queues (RabbitMQ), for the admin page.
    pub async fn queue_depth(&self) -> Result<Vec<(String, u64)>, Error> {
        self.transport.queue_depth().await
    }

    pub async fn get(&self, id: TaskId) -> Result<Option<TaskRecord>, Error> {
        Ok(self.coll.find_one(doc! {"_id": id.0}).await?)
    }

    /// Most recent tasks, optionally of one state.
    pub async fn list(
        &self,
        state: Option<TaskState>,
        limit: i64,
    ) -> Result<Vec<TaskRecord>, Error> {
        self.find(state, None, limit).await
    }

    /// Most recent tasks, optionally of one state and one name (the admin page's filters).
    pub async fn find(
        &self,
        state: Option<TaskState>,
        name: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TaskRecord>, Error> {
        use futures::TryStreamExt;
        let mut filter = doc! {};
        if let Some(s) = state {
            filter.insert("state", s.as_str());
        }
        if let Some(n) = name {
            filter.insert("name", n);
        }
        let cursor = self
            .coll
            .find(filter)
            .sort(doc! {"_id": -1})
            .limit(limit)
            .await?;
        Ok(cursor.try_collect().await?)
    }

    /// Puts a failed task back in the queue with a fresh attempt budget.
    pub async fn retry(&self, id: TaskId) -> Result<bool, Error> {
        let res = self
            .coll
            .find_one_and_update(
                doc! {"_id": id.0, "state": TaskState::Failed.as_str()},
                doc! {"$set": {"state": TaskState::Queued.as_str(), "attempts": 0, "last_error": null}},
            )
            .await?;
        match res {
            Some(mut rec) => {
                rec.state = TaskState::Queued;
                rec.attempts = 0;
                self.publish(std::slice::from_ref(&rec)).await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Waits until the task reaches a final state (tests and CLI use this).
    pub async fn wait(&self, id: TaskId, timeout: Duration) -> Result<Option<TaskRecord>, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let rec = self.get(id).await?;
            if let Some(r) = &rec
                && r.state.is_final()
            {
                return Ok(rec);
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(rec);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Task names seen so far, sorted (the admin page's filter).
    pub async fn names(&self) -> Result<Vec<String>, Error> {
        let values = self.coll.distinct("name", doc! {}).await?;
        let mut names: Vec<String> = values
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Number of tasks per state, for the admin page.
    pub async fn counts(&self) -> Result<Vec<(String, i64)>, Error> {
        use futures::TryStreamExt;
        let cursor = self
            .coll
            .clone_with_type::<bson::Document>()
            .aggregate([doc! {"$group": {"_id": "$state", "n": {"$sum": 1}}}])
            .await?;
        let docs: Vec<bson::Document> = cursor.try_collect().await?;
        let mut out: Vec<(String, i64)> = docs
            .iter()
            .map(|d| {
                let state = d.get_str("_id").unwrap_or("?").to_owned();
                let n = d
                    .get_i32("n")
                    .map(i64::from)
                    .or_else(|_| d.get_i64("n"))
                    .unwrap_or(0);
                (state, n)
            })
            .collect();
        out.sort();
        Ok(out)
    }
}
