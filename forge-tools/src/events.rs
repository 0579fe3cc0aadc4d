//! The event log (Zarkov's format): every domain action records
//! `{timestamp, type, context: {neighborhood, project, tool, user, ip}, extra}` in the `events`
//! collection. Recording never waits for the store: events go through a channel to a writer
//! task that inserts them in batches.

use bson::{Bson, DateTime, Document, doc};
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::error::Result;

pub const COLLECTION: &str = "events";
/// Copies of the events that are activity (`extra.title` set; see `crate::activity`), the
/// same documents under the same ids: the streams read this small collection instead of
/// filtering every page view out of the whole log.
pub const ACTIVITY: &str = "activity";
const QUEUE: usize = 100_000;
const BATCH: usize = 1_000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventContext {
    pub neighborhood: Option<String>,
    pub project: Option<String>,
    pub tool: Option<String>,
    pub user: Option<String>,
    pub ip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub timestamp: DateTime,
    #[serde(rename = "type")]
    pub kind: String,
    pub context: EventContext,
    pub extra: Bson,
}

enum Msg {
    Event(Event),
    Flush(oneshot::Sender<()>),
}

/// Handle for recording events; cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    tx: mpsc::Sender<Msg>,
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    let coll: Collection<Event> = db.collection(COLLECTION);
    coll.create_indexes([
        IndexModel::builder().keys(doc! {"timestamp": 1}).build(),
        IndexModel::builder()
            .keys(doc! {"type": 1, "timestamp": 1})
            .build(),
    ])
    .await?;
    Ok(())
}

/// Short names of projects with changes (views excluded) since `since`.
pub async fn projects_active_since(db: &Database, since: DateTime) -> Result<Vec<String>> {
    let coll: Collection<Event> = db.collection(COLLECTION);
    let values = coll
        .distinct(
            "context.project",
            doc! {
                "timestamp": {"$gte": since},
                "type": {"$not": {"$regex": r"\.view$"}},
            },
        )
        .await?;
    Ok(values
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect())
}

impl EventLog {
    /// Starts the writer task.
    pub fn start(db: &Database) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(
            db.collection(COLLECTION),
            db.collection(ACTIVITY),
            rx,
        ));
        Self { tx }
    }

    /// Records an event; drops it (with a warning) rather than block when the queue is full.
    pub fn record(&self, kind: &str, context: EventContext, extra: Bson) {
        let event = Event {
            timestamp: DateTime::now(),
            kind: kind.to_owned(),
            context,
            extra,
        };
        if self.tx.try_send(Msg::Event(event)).is_err() {
            tracing::warn!(kind, "event queue full; event dropped");
        }
    }

    /// Waits until everything recorded so far is written.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

/// Whether an event is activity (the convention of `crate::activity`).
pub fn is_activity(extra: &Bson) -> bool {
    matches!(extra, Bson::Document(d) if d.contains_key("title"))
}

async fn writer(
    coll: Collection<Document>,
    activity: Collection<Document>,
    mut rx: mpsc::Receiver<Msg>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut acks = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Event(e) => batch.push(e),
                Msg::Flush(ack) => acks.push(ack),
            }
            if batch.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let docs: Vec<Document> = batch
                .drain(..)
                .filter_map(|e: Event| {
                    let mut d = bson::serialize_to_document(&e).ok()?;
                    // Ids given here, so the activity copy has the event's.
                    d.insert("_id", bson::oid::ObjectId::new());
                    Some(d)
                })
                .collect();
            if let Err(e) = coll.insert_many(&docs).ordered(false).await {
                tracing::error!(error = %e, count = docs.len(), "writing events failed");
            }
            let copies: Vec<&Document> = docs
                .iter()
                .filter(|d| d.get("extra").is_some_and(is_activity))
                .collect();
            if !copies.is_empty()
                && let Err(e) = activity.insert_many(copies).ordered(false).await
            {
                tracing::error!(error = %e, "writing activity failed");
            }
        }
        for ack in acks.drain(..) {
            let _ = ack.send(());
        }
    }
}
