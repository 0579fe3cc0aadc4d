//! Storage of the forum tool: forums (`forum_forums`) and topics (`forum_topics`), each
//! carrying the counters its pages show (topics, posts, replies, views, last post), kept on
//! write and never counted on read. A topic's posts are the discussion component's thread
//! for the artifact key `topic:<id>`.

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;
use mongodb::options::IndexOptions;
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::ToolId;

pub const FORUMS: &str = "forum_forums";
pub const TOPICS: &str = "forum_topics";

/// What mail to a forum's posting address from a sender the forge does not know becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnknownSenders {
    /// A topic waiting for a moderator.
    Pending,
    /// Bounced (the default: strangers' mail reaches a moderator only where an admin asks).
    #[default]
    Refuse,
}

impl UnknownSenders {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Refuse => "refuse",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "refuse" => Some(Self::Refuse),
            _ => None,
        }
    }
}

/// The last live post of a forum, for the index.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LastPost {
    pub author: String,
    pub at: DateTime,
    pub topic_id: ObjectId,
    pub subject: String,
}

/// One forum of a forum tool.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Forum {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub tool_id: ToolId,
    pub shortname: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Position on the index (admins reorder), lowest first.
    #[serde(default)]
    pub order: i32,
    /// Listed and readable for moderators only.
    #[serde(default)]
    pub hidden: bool,
    /// Gone for everyone but the tool's admins, who may restore it.
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub unknown_senders: UnknownSenders,
    /// Live topics.
    #[serde(default)]
    pub num_topics: i64,
    /// Live posts in live topics.
    #[serde(default)]
    pub num_posts: i64,
    #[serde(default)]
    pub last_post: Option<LastPost>,
    pub created: DateTime,
}

impl Forum {
    pub fn key(&self) -> String {
        format!("forum:{}", self.id.to_hex())
    }
}

/// A topic (a thread started in a forum).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Topic {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub tool_id: ToolId,
    pub forum_id: ObjectId,
    pub subject: String,
    /// Who started it; empty for an anonymous author.
    pub author: String,
    pub created: DateTime,
    /// The first post (set once it is written).
    #[serde(default)]
    pub first_post: Option<ObjectId>,
    /// Listed: its first post went live and a live post is left. Until then (and once none is
    /// left, until the first post is approved again) only its author and moderators see it.
    #[serde(default)]
    pub live: bool,
    /// Listed first in its forum.
    #[serde(default)]
    pub sticky: bool,
    /// Shown at the top of every forum of the tool.
    #[serde(default)]
    pub announcement: bool,
    /// Takes no new posts.
    #[serde(default)]
    pub closed: bool,
    #[serde(default)]
    pub deleted: bool,
    /// Live posts, the first one included.
    #[serde(default)]
    pub num_posts: i64,
    #[serde(default)]
    pub num_views: i64,
    /// When the last live post was written (the creation time until one is).
    pub last_post_at: DateTime,
    #[serde(default)]
    pub last_author: String,
}

impl Topic {
    /// The discussion artifact key (and search key) of a topic.
    pub fn key(&self) -> String {
        key_of(self.id)
    }

    pub fn replies(&self) -> i64 {
        (self.num_posts - 1).max(0)
    }
}

pub fn key_of(id: ObjectId) -> String {
    format!("topic:{}", id.to_hex())
}

/// The topic id in a topic's artifact key.
pub fn id_of_key(key: &str) -> Option<ObjectId> {
    crate::tool::shared::artifact_id(key, "topic")
}

pub(super) fn forums(db: &Database) -> Collection<Forum> {
    db.collection(FORUMS)
}

pub(super) fn topics(db: &Database) -> Collection<Topic> {
    db.collection(TOPICS)
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    forums(db)
        .create_index(
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "shortname": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await?;
    topics(db)
        .create_indexes([
            // A forum's page: sticky first, then by last activity.
            IndexModel::builder()
                .keys(
                    doc! {"forum_id": 1, "live": 1, "deleted": 1, "sticky": -1, "last_post_at": -1},
                )
                .build(),
            IndexModel::builder()
                .keys(doc! {"tool_id": 1, "announcement": 1})
                .build(),
            // A forum's newest live topic (its last post, set again when one goes).
            IndexModel::builder()
                .keys(doc! {"forum_id": 1, "live": 1, "deleted": 1, "last_post_at": -1})
                .build(),
        ])
        .await?;
    Ok(())
}

/// The read model's memos of this tool (registered through `Tool::kept`): topics and
/// forums by id, each tool's forums.
pub const MEMO_TOPICS: &str = "forum_topics";
pub const MEMO_FORUMS: &str = "forum_forums";
pub const MEMO_FORUM_LISTS: &str = "forum_lists";

fn forum_weight(f: &Forum) -> usize {
    f.name.len() + f.shortname.len() + f.description.len() + 512
}

pub(super) async fn forums_of(db: &Database, tool: ToolId) -> Result<Vec<Forum>> {
    crate::readmodel::memo(
        db,
        MEMO_FORUM_LISTS,
        tool.0.to_hex(),
        |all: &Vec<Forum>| all.iter().map(forum_weight).sum(),
        || async {
            Ok(forums(db)
                .find(doc! {"tool_id": tool})
                .sort(doc! {"order": 1, "created": 1})
                .await?
                .try_collect()
                .await?)
        },
    )
    .await
}

/// A forum of `tool` by id, deleted or not.
pub(super) async fn forum_by_id(
    db: &Database,
    tool: ToolId,
    id: ObjectId,
) -> Result<Option<Forum>> {
    crate::readmodel::memo(
        db,
        MEMO_FORUMS,
        format!("{}/{id}", tool.0),
        |f: &Option<Forum>| f.as_ref().map_or(0, forum_weight),
        || async {
            Ok(forums(db)
                .find_one(doc! {"_id": id, "tool_id": tool})
                .await?)
        },
    )
    .await
}

pub(super) async fn forum_by_name(
    db: &Database,
    tool: ToolId,
    shortname: &str,
) -> Result<Option<Forum>> {
    Ok(forums(db)
        .find_one(doc! {"tool_id": tool, "shortname": shortname})
        .await?)
}

pub(super) async fn topic_by_id(db: &Database, id: ObjectId) -> Result<Option<Topic>> {
    crate::readmodel::memo(
        db,
        MEMO_TOPICS,
        id.to_hex(),
        |t: &Option<Topic>| t.as_ref().map_or(0, |t| t.subject.len() + 512),
        || async { Ok(topics(db).find_one(doc! {"_id": id}).await?) },
    )
    .await
}

/// Sets a forum's last post again from its newest live topic (one indexed query): after a
/// post or topic left it.
pub(super) async fn refresh_last_post(db: &Database, forum: ObjectId) -> Result<()> {
    let newest = topics(db)
        .find_one(doc! {"forum_id": forum, "live": true, "deleted": false})
        .sort(doc! {"last_post_at": -1})
        .await?;
    let last = newest.map(|t| LastPost {
        author: t.last_author,
        at: t.last_post_at,
        topic_id: t.id,
        subject: t.subject,
    });
    let last = bson::serialize_to_bson(&last).map_err(|e| Error::Internal(e.to_string()))?;
    forums(db)
        .update_one(doc! {"_id": forum}, doc! {"$set": {"last_post": last}})
        .await?;
    Ok(())
}

/// Removes every forum and topic of a tool (when it is uninstalled).
pub async fn delete_tool(db: &Database, tool: ToolId) -> Result<()> {
    topics(db).delete_many(doc! {"tool_id": tool}).await?;
    forums(db).delete_many(doc! {"tool_id": tool}).await?;
    Ok(())
}
