//! Storage of threads (`discussion_threads`: one per artifact, with counters kept on write)
//! and posts (`discussion_posts`).

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::ids::{ProjectId, ToolId};

pub const THREADS: &str = "discussion_threads";
pub const POSTS: &str = "discussion_posts";
/// Replies nest this deep at most; deeper replies are shown at this depth.
pub const MAX_DEPTH: usize = 12;
/// Edit history kept per post (the oldest edits beyond this are dropped).
pub const MAX_EDITS: usize = 50;

/// A post's moderation status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Pending,
    Spam,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Pending => "pending",
            Status::Spam => "spam",
        }
    }
}

/// The discussion of one artifact.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Thread {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub project_id: ProjectId,
    pub tool_id: ToolId,
    /// The artifact's key (the tool's search key: `ticket:<id>`, `wiki:<id>`...).
    pub artifact: String,
    /// What the artifact is called ("ticket #12", "page Home"), for the moderation queue and mail.
    pub title: String,
    /// Path of the artifact's page.
    pub url: String,
    /// Posts with status `ok` (not deleted).
    #[serde(default)]
    pub num_posts: i64,
    #[serde(default)]
    pub last_post: Option<DateTime>,
    #[serde(default)]
    pub last_author: Option<String>,
    pub created: DateTime,
    /// No new posts (a moderator closed it; the page says so).
    #[serde(default)]
    pub closed: bool,
    /// More watch keys whose watchers hear of new posts (a forum topic's forum).
    #[serde(default)]
    pub also: Vec<String>,
}

/// A post as submitted.
#[derive(Debug, Clone, Default)]
pub struct NewPost {
    pub text: String,
    pub parent: Option<ObjectId>,
    /// The honeypot field's value (see [`super::HONEYPOT`]).
    pub honeypot: Option<String>,
}

/// An earlier text of an edited post.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PostEdit {
    /// Who replaced this text.
    pub author: String,
    pub when: DateTime,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Post {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub thread_id: ObjectId,
    pub project_id: ProjectId,
    pub tool_id: ToolId,
    pub parent: Option<ObjectId>,
    /// Sorts a thread into reading order: the parent's path, `/`, then this post's creation
    /// time and id (fixed width), so replies follow their parent, oldest first.
    pub path: String,
    pub depth: i32,
    /// Username; empty for an anonymous post.
    pub author: String,
    pub text: String,
    pub status: Status,
    pub created: DateTime,
    #[serde(default)]
    pub edited: Option<DateTime>,
    /// Earlier texts, oldest first.
    #[serde(default)]
    pub edits: Vec<PostEdit>,
    #[serde(default)]
    pub deleted: bool,
}

impl Post {
    /// The path segment of a post created at `created` with id `id`.
    pub fn segment(created: DateTime, id: ObjectId) -> String {
        format!("{:013}{}", created.timestamp_millis().max(0), id.to_hex())
    }

    pub fn anchor(&self) -> String {
        format!("post-{}", self.id.to_hex())
    }
}

pub(super) fn threads(db: &Database) -> Collection<Thread> {
    db.collection(THREADS)
}

pub(super) fn posts(db: &Database) -> Collection<Post> {
    db.collection(POSTS)
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    threads(db)
        .create_index(
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "artifact": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await?;
    posts(db)
        .create_indexes([
            IndexModel::builder()
                .keys(doc! {"thread_id": 1, "path": 1})
                .build(),
            IndexModel::builder()
                .keys(doc! {"thread_id": 1, "created": 1})
                .build(),
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "status": 1, "created": -1})
                .build(),
            // A thread's newest live post (its last post again, after one is removed).
            IndexModel::builder()
                .keys(doc! {"thread_id": 1, "status": 1, "deleted": 1, "created": -1})
                .build(),
        ])
        .await?;
    Ok(())
}

pub(super) async fn thread_by_artifact(
    db: &Database,
    tool: ToolId,
    artifact: &str,
) -> Result<Option<Thread>> {
    Ok(threads(db)
        .find_one(doc! {"tool_id": tool, "artifact": artifact})
        .await?)
}

pub(super) async fn post_by_id(db: &Database, id: ObjectId) -> Result<Option<Post>> {
    Ok(posts(db).find_one(doc! {"_id": id}).await?)
}

pub(super) async fn thread_by_id(db: &Database, id: ObjectId) -> Result<Option<Thread>> {
    Ok(threads(db).find_one(doc! {"_id": id}).await?)
}

pub(super) async fn threads_by_ids(db: &Database, ids: &[ObjectId]) -> Result<Vec<Thread>> {
    Ok(threads(db)
        .find(doc! {"_id": {"$in": ids}})
        .await?
        .try_collect()
        .await?)
}

/// Removes every thread and post of a tool (when it is uninstalled). The posts' files are
/// attachments of the tool (its id, the post's id): `AttachmentStore::delete_tool` removes them
/// with the tool's own.
pub async fn delete_tool(db: &Database, tool: ToolId) -> Result<()> {
    posts(db).delete_many(doc! {"tool_id": tool}).await?;
    threads(db).delete_many(doc! {"tool_id": tool}).await?;
    Ok(())
}
