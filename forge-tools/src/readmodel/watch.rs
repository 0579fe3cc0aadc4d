//! Following the database's change stream for a read model: each change to a collection a
//! kind keeps goes to that kind, which drops what it made stale; a lost stream drops
//! everything and stops the model serving until the watcher resubscribes.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bson::{Document, doc};
use mongodb::Database;
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType};

use super::{Change, ChangeKind, Kept, ReadModel};

/// The longest wait before resubscribing after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The model of `db`'s database keeping `kinds`, with a task following its change stream;
/// the caller keeps it alive (the task ends with it).
pub fn start(db: &Database, kinds: Vec<Arc<dyn Kept>>) -> Arc<ReadModel> {
    let (model, new) = ReadModel::register(db, kinds);
    if new {
        tokio::spawn(follow(db.clone(), Arc::downgrade(&model)));
    }
    model
}

/// Follows `db`'s change stream for as long as the model lives.
async fn follow(db: Database, model: Weak<ReadModel>) {
    let mut backoff = Duration::from_millis(100);
    let mut warned = false;
    loop {
        // Only the collections the model keeps, and only which document changed: the event
        // log's inserts and the rest never reach this node.
        let Some(kept) = model.upgrade().map(|m| m.collections()) else {
            return;
        };
        let opened = db
            .watch()
            .pipeline([
                doc! {"$match": {"$or": [
                    {"ns.coll": {"$in": kept.to_vec()}},
                    {"operationType": {"$in": ["dropDatabase", "invalidate"]}},
                ]}},
                doc! {"$project": {"fullDocument": 0}},
            ])
            .max_await_time(super::POLL)
            .await;
        let Some(m) = model.upgrade() else { return };
        match opened {
            Ok(mut stream) => {
                // Whatever changed before the stream opened is not in it: start empty.
                m.reset();
                m.heard();
                if warned {
                    tracing::info!("read model: change stream open");
                }
                warned = false;
                backoff = Duration::from_millis(100);
                drop(m);
                loop {
                    let next = stream.next_if_any().await;
                    let Some(m) = model.upgrade() else { return };
                    match next {
                        Ok(Some(event)) => {
                            apply(&m, &event);
                            m.heard();
                        }
                        Ok(None) => m.heard(),
                        Err(e) => {
                            tracing::warn!(error = %e, "read model: change stream lost; reading the store until it is back");
                            m.stream_losses
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            m.lost();
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                m.lost();
                if !warned {
                    tracing::warn!(error = %e, "read model: no change stream; reading the store until there is one");
                    warned = true;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Hands one change to the kinds it concerns.
fn apply(m: &ReadModel, event: &ChangeStreamEvent<Document>) {
    let kind = match event.operation_type {
        OperationType::Insert => ChangeKind::Insert,
        OperationType::Update => ChangeKind::Update,
        OperationType::Replace => ChangeKind::Replace,
        OperationType::Delete => ChangeKind::Delete,
        // A collection or the database dropped or renamed, the stream invalidated, or a
        // kind of change this build does not know: start over.
        _ => {
            m.reset();
            return;
        }
    };
    let Some(coll) = event.ns.as_ref().and_then(|ns| ns.coll.as_deref()) else {
        m.reset();
        return;
    };
    let fields = event
        .update_description
        .as_ref()
        .map(|u| {
            u.updated_fields
                .keys()
                .cloned()
                .chain(u.removed_fields.iter().cloned())
                .collect()
        })
        .unwrap_or_default();
    let change = Change {
        kind,
        id: event
            .document_key
            .as_ref()
            .and_then(|k| k.get("_id"))
            .cloned(),
        fields,
    };
    m.changed(coll, &change);
}
