//! The store of webhooks: `webhooks` (a project's hooks: URL, secret, events, optional tool,
//! who added it) and `webhook_deliveries` (one per announced change and hook: the body sent,
//! its state and every attempt, kept [`DELIVERIES_KEPT`]). The secret is stored (it signs
//! every delivery) and never leaves this crate but as a signature.

use std::time::Duration;

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use super::payload::Readers;
use crate::error::{Error, Result};
use crate::ids::{ProjectId, ToolId, UserId};

pub const WEBHOOKS: &str = "webhooks";
pub const DELIVERIES: &str = "webhook_deliveries";
/// Webhooks one project may have.
pub const MAX_PER_PROJECT: u64 = 20;
/// Longest webhook URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Longest secret, in characters.
pub const MAX_SECRET_CHARS: usize = 256;
/// How long a delivery and its attempts are kept.
pub const DELIVERIES_KEPT: Duration = Duration::from_secs(30 * 86_400);
/// Attempts kept per delivery (the latest; a delivery redelivered many times drops its
/// oldest).
pub const ATTEMPTS_KEPT: i32 = 30;
/// Longest response excerpt kept per attempt, in bytes.
pub const RESPONSE_KEPT_BYTES: usize = 4096;

/// A project's webhook.
#[derive(Clone, Serialize, Deserialize)]
pub struct Webhook {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub project_id: ProjectId,
    pub url: String,
    /// Signs each delivery (`X-Forge-Signature-256`); never shown.
    pub secret: String,
    /// Event names (see `crate::tool::Tool::webhook_events`).
    pub events: Vec<String>,
    /// Only this tool's events; `None`: every tool's.
    #[serde(default)]
    pub tool_id: Option<ToolId>,
    /// Who added it: deliveries go only while they may still read what is announced.
    pub created_by: UserId,
    pub created: DateTime,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("project_id", &self.project_id)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("events", &self.events)
            .field("tool_id", &self.tool_id)
            .field("created_by", &self.created_by)
            .finish()
    }
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting for its first attempt (or a redelivery's).
    Queued,
    /// An attempt failed; the task runner tries again after its backoff.
    Retrying,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: the last attempt failed and no more will be made (redeliver to try again).
    Failed,
    /// Not sent: the target is not allowed (a private address), or whoever added the
    /// webhook may no longer read what it is about.
    Refused,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Retrying => "retrying",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Refused => "refused",
        }
    }

    /// No further attempt will be made in this round.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Failed | Self::Refused)
    }
}

/// A request header as it was sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// One attempt of a delivery: what was sent, what came back, how long it took.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    /// The round it belongs to: 0 for the first delivery, one more per redelivery.
    pub round: i32,
    pub at: DateTime,
    /// The URL of the last request made (after redirects).
    pub url: String,
    pub request_headers: Vec<Header>,
    /// The receiver's status code, when it answered.
    #[serde(default)]
    pub status: Option<i32>,
    /// The first bytes of its answer (at most [`RESPONSE_KEPT_BYTES`]), as text.
    #[serde(default)]
    pub response: String,
    pub duration_ms: i64,
    /// Why it did not succeed.
    #[serde(default)]
    pub error: Option<String>,
    /// The delivery's state this attempt left.
    pub outcome: State,
}

/// One announced change (a push, an edited page...) for one webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// Also the `X-Forge-Delivery` header: a UUID derived from the announcement and the
    /// webhook, so announcing the same change twice delivers it once.
    #[serde(rename = "_id")]
    pub id: String,
    pub webhook_id: ObjectId,
    pub project_id: ProjectId,
    /// The tool that announced it.
    pub tool_id: ToolId,
    pub event: String,
    pub action: String,
    /// The JSON body, exactly as signed and sent (redeliveries send it again).
    pub body: String,
    /// Narrower readers than the tool's (a private ticket).
    #[serde(default)]
    pub readers: Option<Readers>,
    pub state: State,
    /// 0, then one more per redelivery.
    pub round: i32,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    pub created: DateTime,
    pub updated: DateTime,
}

fn hooks(db: &Database) -> Collection<Webhook> {
    db.collection(WEBHOOKS)
}

fn deliveries(db: &Database) -> Collection<Delivery> {
    db.collection(DELIVERIES)
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    hooks(db)
        .create_index(IndexModel::builder().keys(doc! {"project_id": 1}).build())
        .await?;
    deliveries(db)
        .create_indexes([
            IndexModel::builder()
                .keys(doc! {"webhook_id": 1, "created": -1})
                .build(),
            IndexModel::builder()
                .keys(doc! {"created": 1})
                .options(
                    IndexOptions::builder()
                        .expire_after(DELIVERIES_KEPT)
                        .build(),
                )
                .build(),
        ])
        .await?;
    Ok(())
}

pub async fn insert(db: &Database, hook: &Webhook) -> Result<()> {
    hooks(db).insert_one(hook).await?;
    Ok(())
}

pub async fn count(db: &Database, project: ProjectId) -> Result<u64> {
    Ok(hooks(db)
        .count_documents(doc! {"project_id": project})
        .await?)
}

/// A project's webhooks, oldest first.
pub async fn of_project(db: &Database, project: ProjectId) -> Result<Vec<Webhook>> {
    Ok(hooks(db)
        .find(doc! {"project_id": project})
        .sort(doc! {"_id": 1})
        .limit(MAX_PER_PROJECT as i64 * 2)
        .await?
        .try_collect()
        .await?)
}

pub async fn by_id(db: &Database, id: ObjectId) -> Result<Option<Webhook>> {
    Ok(hooks(db).find_one(doc! {"_id": id}).await?)
}

/// Removes a webhook and its delivery log; whether it existed.
pub async fn remove(db: &Database, project: ProjectId, id: ObjectId) -> Result<bool> {
    let gone = hooks(db)
        .delete_one(doc! {"_id": id, "project_id": project})
        .await?
        .deleted_count
        == 1;
    if gone {
        deliveries(db).delete_many(doc! {"webhook_id": id}).await?;
    }
    Ok(gone)
}

/// Whether the project has any webhook (the cheap check before announcing anything).
pub async fn any(db: &Database, project: ProjectId) -> Result<bool> {
    Ok(hooks(db)
        .clone_with_type::<bson::Document>()
        .find_one(doc! {"project_id": project})
        .projection(doc! {"_id": 1})
        .await?
        .is_some())
}

/// The project's webhooks listening to one of `events` from this tool.
pub async fn listening(
    db: &Database,
    project: ProjectId,
    tool: ToolId,
    events: &[&str],
) -> Result<Vec<Webhook>> {
    Ok(hooks(db)
        .find(doc! {
            "project_id": project,
            "events": {"$in": events},
            "$or": [{"tool_id": null}, {"tool_id": tool}],
        })
        .await?
        .try_collect()
        .await?)
}

/// Stores a new delivery; false when one with its id exists already (the same change
/// announced again).
pub async fn insert_delivery(db: &Database, d: &Delivery) -> Result<bool> {
    match deliveries(db).insert_one(d).await {
        Ok(_) => Ok(true),
        Err(e) if Error::is_duplicate_key(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

pub async fn delivery(db: &Database, id: &str) -> Result<Option<Delivery>> {
    Ok(deliveries(db).find_one(doc! {"_id": id}).await?)
}

/// A webhook's deliveries, newest first.
pub async fn deliveries_of(db: &Database, hook: ObjectId, limit: i64) -> Result<Vec<Delivery>> {
    Ok(deliveries(db)
        .find(doc! {"webhook_id": hook})
        .sort(doc! {"created": -1, "_id": -1})
        .limit(limit)
        .await?
        .try_collect()
        .await?)
}

/// Logs an attempt of the delivery's round `round` and the state it left (nothing when a
/// redelivery started meanwhile); the last [`ATTEMPTS_KEPT`] attempts are kept.
pub async fn record_attempt(db: &Database, id: &str, round: i32, attempt: &Attempt) -> Result<()> {
    let a = bson::serialize_to_bson(attempt).map_err(|e| Error::Internal(e.to_string()))?;
    deliveries(db)
        .update_one(
            doc! {"_id": id, "round": round},
            doc! {
                "$push": {"attempts": {"$each": [a], "$slice": -ATTEMPTS_KEPT}},
                "$set": {"state": attempt.outcome.as_str(), "updated": DateTime::now()},
            },
        )
        .await?;
    Ok(())
}

/// Starts a new round of a delivery (a redelivery): queued again, attempts counted afresh.
/// Returns the round.
pub async fn start_round(db: &Database, id: &str) -> Result<i32> {
    let d = deliveries(db)
        .find_one_and_update(
            doc! {"_id": id},
            doc! {"$inc": {"round": 1}, "$set": {"state": State::Queued.as_str(), "updated": DateTime::now()}},
        )
        .return_document(mongodb::options::ReturnDocument::After)
        .await?
        .ok_or(Error::NotFound("delivery"))?;
    Ok(d.round)
}
