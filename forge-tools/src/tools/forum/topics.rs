//! Topics: starting one (its first post through the discussion component, so every check a
//! post passes applies), listing a forum's (sticky first, then by last activity), reading one
//! (its view count kept off the request's path), replying, and the counters each live post
//! changes (see [`on_post_change`]).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use futures::TryStreamExt;

use super::forums;
use super::model::{self, Forum, LastPost, Topic};
use crate::acl::perm;
use crate::discussion::{self, NewPost, Post, Thread, ThreadRef};
use crate::error::{Error, Result};
use crate::paging::Paging;
use crate::project_ctx::ProjectCtx;
use crate::tool::{Forge, ToolInstance, record_event};
use crate::viewer::Viewer;

pub const MAX_SUBJECT: usize = 200;
/// Announcements shown at the top of a forum, at most.
const MAX_ANNOUNCEMENTS: i64 = 20;

/// A topic as someone starts it.
#[derive(Debug, Clone, Default)]
pub struct NewTopic {
    pub subject: String,
    pub text: String,
    /// The honeypot field (see [`discussion::HONEYPOT`]).
    pub honeypot: Option<String>,
}

/// Path of a topic's page.
pub fn url(ctx: &ProjectCtx, tool: &ToolInstance, forum: &Forum, topic: ObjectId) -> String {
    format!(
        "{}{}/{}/thread/{}/",
        ctx.project.url(),
        tool.mount,
        forum.shortname,
        topic.to_hex()
    )
}

/// How a topic's discussion thread is named: its key, title, page, and the forum's watchers.
pub fn thread_ref(ctx: &ProjectCtx, tool: &ToolInstance, forum: &Forum, t: &Topic) -> ThreadRef {
    ThreadRef {
        artifact: t.key(),
        title: format!("topic \"{}\"", t.subject),
        url: url(ctx, tool, forum, t.id),
        also: vec![forum.key()],
    }
}

fn check_subject(subject: &str) -> Result<String> {
    let s = subject.trim();
    let n = s.chars().count();
    if n == 0 {
        return Err(Error::invalid("subject", "Give the topic a subject"));
    }
    if n > MAX_SUBJECT {
        return Err(Error::invalid(
            "subject",
            format!("The subject must be at most {MAX_SUBJECT} characters"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::invalid(
            "subject",
            "The subject may not contain control characters",
        ));
    }
    Ok(s.to_owned())
}

/// Whether the viewer sees a topic: live ones, their own, all for moderators; deleted ones
/// for nobody.
pub fn visible(viewer: &Viewer, ctx: &ProjectCtx, tool: &ToolInstance, t: &Topic) -> bool {
    !t.deleted
        && (t.live
            || ctx.can_tool(tool, perm::MODERATE)
            || (!t.author.is_empty() && viewer.username() == Some(t.author.as_str())))
}

/// Starts a topic in a forum. Nothing is left behind when the first post is refused (the
/// topic is removed again). The topic and its first post (`ok`, or `pending` for a moderator).
pub async fn create(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    forum: &Forum,
    new: NewTopic,
) -> Result<(Topic, Post)> {
    ctx.authorize_tool(tool, discussion::perm::POST)?;
    if forum.deleted {
        return Err(Error::NotFound("forum"));
    }
    let subject = check_subject(&new.subject)?;
    let now = DateTime::now();
    let mut topic = Topic {
        id: ObjectId::new(),
        tool_id: tool.id,
        forum_id: forum.id,
        subject,
        author: viewer.username().unwrap_or_default().to_owned(),
        created: now,
        first_post: None,
        live: false,
        sticky: false,
        announcement: false,
        closed: false,
        deleted: false,
        num_posts: 0,
        num_views: 0,
        last_post_at: now,
        last_author: viewer.username().unwrap_or_default().to_owned(),
    };
    // The topic first, not live: the first post's hook (which makes it live and counts it)
    // must find it.
    model::topics(forge.db()).insert_one(&topic).await?;
    let r = thread_ref(ctx, tool, forum, &topic);
    let posted = discussion::post_to(
        forge,
        viewer,
        ctx,
        tool,
        &r,
        NewPost {
            text: new.text,
            parent: None,
            honeypot: new.honeypot,
        },
    )
    .await;
    let (_, post) = match posted {
        Ok(p) => p,
        Err(e) => {
            model::topics(forge.db())
                .delete_one(doc! {"_id": topic.id})
                .await?;
            return Err(e);
        }
    };
    model::topics(forge.db())
        .update_one(
            doc! {"_id": topic.id},
            doc! {"$set": {"first_post": post.id}},
        )
        .await?;
    topic = model::topic_by_id(forge.db(), topic.id)
        .await?
        .ok_or(Error::NotFound("topic"))?;
    // Whoever starts a topic hears of its replies (Allura's default).
    if viewer.user.is_some() {
        crate::notify::watch(
            forge,
            viewer,
            ctx,
            crate::notify::Target::Artifact {
                tool,
                key: topic.key(),
                title: r.title.clone(),
            },
        )
        .await?;
    }
    // Not an activity entry itself: the first post's `discussion.post` event is (one entry
    // per new topic in feeds and dashboards).
    let extra = doc! {
        "forum": &forum.shortname, "topic": topic.id, "post": post.id,
        "status": post.status.as_str(),
    };
    record_event(forge, "forum.topic.create", viewer, ctx, tool, extra);
    Ok((topic, post))
}

/// A page of a forum's live topics: sticky first, then by last activity. The total is the
/// forum's counter.
pub async fn list(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    forum: &Forum,
    paging: Paging,
) -> Result<(Vec<Topic>, u64)> {
    ctx.authorize_tool(tool, perm::READ)?;
    let topics: Vec<Topic> = model::topics(forge.db())
        .find(doc! {"forum_id": forum.id, "live": true, "deleted": false})
        .sort(doc! {"sticky": -1, "last_post_at": -1})
        .skip(paging.offset() as u64)
        .limit(paging.per_page as i64)
        .await?
        .try_collect()
        .await?;
    Ok((topics, forum.num_topics.max(0) as u64))
}

/// The tool's live announcements, newest activity first (shown atop every forum).
pub async fn announcements(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
) -> Result<Vec<Topic>> {
    ctx.authorize_tool(tool, perm::READ)?;
    Ok(model::topics(forge.db())
        .find(doc! {"tool_id": tool.id, "announcement": true, "live": true, "deleted": false})
        .sort(doc! {"last_post_at": -1})
        .limit(MAX_ANNOUNCEMENTS)
        .await?
        .try_collect()
        .await?)
}

/// One topic the viewer may see, with its forum (which the viewer must see too).
pub async fn get(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    id: ObjectId,
) -> Result<(Forum, Topic)> {
    ctx.authorize_tool(tool, perm::READ)?;
    let topic = model::topic_by_id(forge.db(), id)
        .await?
        .filter(|t| t.tool_id == tool.id && visible(viewer, ctx, tool, t))
        .ok_or(Error::NotFound("topic"))?;
    let forum = forums::by_id(forge, ctx, tool, topic.forum_id).await?;
    Ok((forum, topic))
}

/// Views counted but not written yet, by database name, then topic.
type Unwritten = HashMap<String, (mongodb::Database, HashMap<ObjectId, i64>)>;
static UNWRITTEN: LazyLock<Mutex<Unwritten>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// How long views are added up in memory before one write per topic.
const VIEWS_EVERY: Duration = Duration::from_secs(5);
/// Topics with views waiting, at most (more are not counted until the next write).
const MAX_UNWRITTEN: usize = 10_000;

/// Counts a view of a topic, off the request's path: views are added up in memory and
/// written every [`VIEWS_EVERY`], one `$inc` per topic, so reading a topic costs no write
/// (and does not empty the kept topics at every view). A lost count (a process stopped
/// meanwhile) is no harm; a slower page would be.
pub fn count_view(forge: &Forge, topic: ObjectId) {
    let db = forge.db();
    let first = {
        let mut all = UNWRITTEN.lock().unwrap_or_else(|e| e.into_inner());
        let (_, views) = all
            .entry(db.name().to_owned())
            .or_insert_with(|| (db.clone(), HashMap::new()));
        let first = views.is_empty();
        if views.len() < MAX_UNWRITTEN || views.contains_key(&topic) {
            *views.entry(topic).or_default() += 1;
        }
        first
    };
    if first {
        let name = db.name().to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(VIEWS_EVERY).await;
            write_views(&name).await;
        });
    }
}

/// Writes the views added up for one database.
async fn write_views(name: &str) {
    let taken = UNWRITTEN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(name);
    let Some((db, views)) = taken else {
        return;
    };
    let coll = model::topics(&db);
    for (topic, n) in views {
        if let Err(e) = coll
            .update_one(doc! {"_id": topic}, doc! {"$inc": {"num_views": n}})
            .await
        {
            tracing::debug!(error = %e, "topic views not counted");
        }
    }
}

/// The topic's discussion thread (every topic has one from its first post).
pub async fn thread_of(forge: &Forge, tool: &ToolInstance, topic: &Topic) -> Result<Thread> {
    discussion::existing_thread(forge, tool, &topic.key())
        .await?
        .ok_or(Error::NotFound("thread"))
}

/// Replies in a topic (to the topic, or to one of its posts).
pub async fn reply(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    topic: &Topic,
    new: NewPost,
) -> Result<Post> {
    let thread = thread_of(forge, tool, topic).await?;
    discussion::post(forge, viewer, ctx, tool, &thread, new).await
}

/// Keeps a topic's and its forum's counters as posts go live (`delta` 1) or stop being live
/// (-1). Called by the discussion component once the thread's own counters changed.
pub async fn on_post_change(
    forge: &Forge,
    tool: &ToolInstance,
    thread: &Thread,
    post: &Post,
    delta: i64,
) -> Result<()> {
    let Some(id) = model::id_of_key(&thread.artifact) else {
        return Ok(());
    };
    let db = forge.db();
    let Some(topic) = model::topic_by_id(db, id).await? else {
        return Ok(());
    };
    // The thread's counters as they are now (the caller just changed them).
    let counts = discussion::existing_thread(forge, tool, &thread.artifact)
        .await?
        .unwrap_or_else(|| thread.clone());
    // Only the topic's own first post brings it out of the queue (a moderator's answer to
    // a held topic must not publish its subject). While the topic is being started its first
    // post is not recorded yet: then it is the top-level post of its author.
    let first = match topic.first_post {
        Some(id) => post.id == id,
        None => post.parent.is_none() && post.author == topic.author,
    };
    // The thread's last post is set again when one is removed; with no live post left, the
    // topic's is its start.
    let (last_at, last_author) = match counts.last_post {
        Some(at) => (at, counts.last_author.clone().unwrap_or_default()),
        None => (topic.created, topic.author.clone()),
    };
    model::topics(db)
        .update_one(
            doc! {"_id": topic.id},
            doc! {"$set": {
                "num_posts": counts.num_posts,
                "last_post_at": last_at,
                "last_author": last_author,
            }},
        )
        .await?;
    // Made live once, by whichever call flips it (two approvals at once count it once).
    let goes_live = delta > 0
        && !topic.live
        && first
        && model::topics(db)
            .update_one(
                doc! {"_id": topic.id, "live": false},
                doc! {"$set": {"live": true}},
            )
            .await?
            .modified_count
            == 1;
    // A topic left with no live post (its only post deleted or spam) is listed no more, as
    // one waiting for a moderator; its first post approved again brings it back.
    let empties = delta < 0
        && topic.live
        && counts.num_posts <= 0
        && model::topics(db)
            .update_one(
                doc! {"_id": topic.id, "live": true, "num_posts": {"$lte": 0_i64}},
                doc! {"$set": {"live": false}},
            )
            .await?
            .modified_count
            == 1;
    // A forum counts the posts of its live topics only: a topic going live brings all its
    // live posts at once (moderators may have answered while it waited).
    let inc = if goes_live {
        doc! {"num_topics": 1_i64, "num_posts": counts.num_posts}
    } else if empties {
        doc! {"num_topics": -1_i64, "num_posts": delta}
    } else if topic.live {
        doc! {"num_posts": delta}
    } else {
        return Ok(());
    };
    if topic.deleted {
        return Ok(());
    }
    model::forums(db)
        .update_one(doc! {"_id": topic.forum_id}, doc! {"$inc": inc})
        .await?;
    if delta > 0 {
        let last = LastPost {
            author: post.author.clone(),
            at: post.created,
            topic_id: topic.id,
            subject: topic.subject.clone(),
        };
        let last = bson::serialize_to_bson(&last).map_err(|e| Error::Internal(e.to_string()))?;
        model::forums(db)
            .update_one(
                doc! {"_id": topic.forum_id, "$or": [
                    {"last_post": null},
                    {"last_post.at": {"$lte": post.created}},
                ]},
                doc! {"$set": {"last_post": last}},
            )
            .await?;
    } else {
        model::refresh_last_post(db, topic.forum_id).await?;
    }
    Ok(())
}

/// A topic the viewer may see, with its forum and its discussion thread (what its page shows).
pub async fn with_thread(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    id: ObjectId,
) -> Result<(Forum, Topic, Thread)> {
    let (forum, topic) = get(forge, viewer, ctx, tool, id).await?;
    let thread = thread_of(forge, tool, &topic).await?;
    Ok((forum, topic, thread))
}
