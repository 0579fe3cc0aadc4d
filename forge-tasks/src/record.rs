//! The `tasks` collection: one record per enqueued task.

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::{Error, TaskOptions};

pub const COLLECTION: &str = "tasks";

/// Id of a task record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskId(pub ObjectId);

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Queued,
    Running,
    Complete,
    /// Ran out of attempts or failed fatally; kept with its error until retried.
    Failed,
}

impl TaskState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Complete => "complete",
            Self::Failed => "failed",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, Self::Complete | Self::Failed)
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Queued, Self::Running, Self::Complete, Self::Failed]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    #[serde(rename = "_id")]
    pub id: TaskId,
    pub name: String,
    /// JSON arguments, stored as a string so any JSON (big integers, odd keys) round-trips.
    pub args: String,
    pub state: TaskState,
    pub priority: u8,
    pub attempts: u32,
    pub max_attempts: u32,
    /// Absent unless set, so the sparse index holds only keyed tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_key: Option<String>,
    pub created: DateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl TaskRecord {
    pub(crate) fn new(
        name: &str,
        args: serde_json::Value,
        opts: &TaskOptions,
    ) -> Result<Self, Error> {
        Ok(Self {
            id: TaskId(ObjectId::new()),
            name: name.to_owned(),
            args: serde_json::to_string(&args).map_err(|e| Error::Args(e.to_string()))?,
            state: TaskState::Queued,
            priority: opts.priority,
            attempts: 0,
            max_attempts: opts.max_attempts.max(1),
            dedup_key: opts.dedup_key.clone(),
            created: DateTime::now(),
            started: None,
            finished: None,
            last_error: None,
        })
    }

    pub fn args_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.args).unwrap_or(serde_json::Value::Null)
    }
}

pub(crate) fn collection(db: &Database) -> Collection<TaskRecord> {
    db.collection(COLLECTION)
}

/// How long a completed task's record is kept.
const COMPLETED_KEPT: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

pub(crate) async fn ensure_indexes(db: &Database) -> Result<(), Error> {
    let coll = collection(db);
    coll.create_indexes([
        IndexModel::builder()
            .keys(doc! {"state": 1, "_id": -1})
            .build(),
        IndexModel::builder()
            .keys(doc! {"dedup_key": 1, "state": 1})
            .options(IndexOptions::builder().sparse(true).build())
            .build(),
        // Completed tasks go after a week (periodic ones would otherwise pile up); failed
        // ones stay for an operator to look at.
        IndexModel::builder()
            .keys(doc! {"finished": 1})
            .options(
                IndexOptions::builder()
                    .expire_after(COMPLETED_KEPT)
                    .partial_filter_expression(doc! {"state": TaskState::Complete.as_str()})
                    .build(),
            )
            .build(),
    ])
    .await?;
    Ok(())
}
