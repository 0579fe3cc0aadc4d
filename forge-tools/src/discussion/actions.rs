//! What people do with discussions, each action checking the viewer's permission on the tool
//! first: open an artifact's thread, post (with spam checks and the moderation status), read a
//! thread as the viewer may see it, edit (keeping the earlier text), delete, and moderate.
//! Changes record an event, refresh the post's backlinks, re-index the artifact and tell its
//! watchers.

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::options::ReturnDocument;

use super::model::{self, MAX_DEPTH, MAX_EDITS, Post, PostEdit, Status, Thread};
use super::perm;
use super::spam;
use crate::error::{Error, Result};
use crate::paging::Paging;
use crate::project_ctx::ProjectCtx;
use crate::tool::{Forge, ToolInstance};
use crate::viewer::Viewer;

/// The artifact a thread belongs to, as its tool names it.
#[derive(Debug, Clone)]
pub struct ThreadRef {
    /// The tool's key for the artifact (its search key).
    pub artifact: String,
    /// "ticket #12", "page Home".
    pub title: String,
    /// Path of the artifact's page.
    pub url: String,
    /// More watch keys whose watchers hear of its posts (see [`Thread::also`]).
    pub also: Vec<String>,
}

/// A post as submitted (defined with the model, so the tool framework can name it).
pub use super::model::NewPost;

/// Reading order of a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Replies under their parent.
    #[default]
    Threaded,
    /// Oldest first.
    Flat,
}

/// What a moderator does with posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moderation {
    Approve,
    Spam,
    Delete,
}

impl Moderation {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "approve" => Some(Self::Approve),
            "spam" => Some(Self::Spam),
            "delete" => Some(Self::Delete),
            _ => None,
        }
    }
}

use crate::tool::record_activity;
pub(super) use crate::tool::record_event as event;

/// A post's activity: its thread's title, the post's address, its opening words, and the
/// restriction of what the thread is about (a private ticket's).
async fn post_activity(
    forge: &Forge,
    tool: &ToolInstance,
    thread: &Thread,
    post: &Post,
) -> Result<crate::activity::Activity> {
    let restricted = match forge.tools().get(&tool.kind) {
        Some(kind) => {
            kind.activity_restricted(forge, tool, &thread.artifact)
                .await?
        }
        None => None,
    };
    let url = format!("{}#{}", thread.url, post.anchor());
    Ok(crate::activity::Activity::new(&thread.title, url)
        .summary_markdown(&post.text)
        .restricted(restricted))
}

/// The `discussion.post` event of a post (to attach or retract its activity).
fn post_event(post: ObjectId) -> Document {
    doc! {"type": "discussion.post", "extra.post": post}
}

/// The thread of an artifact, created on first use.
pub async fn thread(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    r: &ThreadRef,
) -> Result<Thread> {
    if let Some(t) = model::thread_by_artifact(forge.db(), tool.id, &r.artifact).await? {
        return Ok(t);
    }
    create_thread(forge, ctx, tool, r).await
}

/// Creates the thread of an artifact (or finds the one a concurrent first post created).
async fn create_thread(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    r: &ThreadRef,
) -> Result<Thread> {
    let fresh = Thread {
        id: ObjectId::new(),
        project_id: ctx.project.id,
        tool_id: tool.id,
        artifact: r.artifact.clone(),
        title: r.title.clone(),
        url: r.url.clone(),
        num_posts: 0,
        last_post: None,
        last_author: None,
        created: DateTime::now(),
        closed: false,
        also: r.also.clone(),
    };
    let set_on_insert =
        bson::serialize_to_document(&fresh).map_err(|e| Error::Internal(e.to_string()))?;
    // Two first posts at once both land in one thread: the upsert is keyed by the unique
    // (tool, artifact) index; the loser of a race retries as an update.
    let coll = model::threads(forge.db());
    let upsert = || {
        coll.find_one_and_update(
            doc! {"tool_id": tool.id, "artifact": &r.artifact},
            doc! {"$setOnInsert": set_on_insert.clone()},
        )
        .upsert(true)
        .return_document(ReturnDocument::After)
    };
    let found = match upsert().await {
        Ok(t) => t,
        Err(e) if Error::is_duplicate_key(&e) => upsert().await?,
        Err(e) => return Err(e.into()),
    };
    found.ok_or(Error::NotFound("thread"))
}

/// The thread of an artifact, if anyone has posted.
pub async fn existing_thread(
    forge: &Forge,
    tool: &ToolInstance,
    artifact: &str,
) -> Result<Option<Thread>> {
    let db = forge.db();
    crate::readmodel::memo(
        db,
        MEMO_THREADS,
        format!("{}/{artifact}", tool.id.0),
        |t: &Option<Thread>| t.as_ref().map_or(0, |t| t.title.len() + t.url.len() + 256),
        || model::thread_by_artifact(db, tool.id, artifact),
    )
    .await
}

/// The read model's memos: threads by artifact, pages of posts, counts of posts.
pub const MEMO_THREADS: &str = "discussion_threads";
pub const MEMO_POSTS: &str = "discussion_posts";
pub const MEMO_POST_COUNTS: &str = "discussion_post_counts";

fn check_text(forge: &Forge, text: &str) -> Result<()> {
    if text.trim().is_empty() {
        return Err(Error::invalid("text", "Write something first"));
    }
    let max = forge.config().max_text_bytes;
    if text.len() as u64 > max {
        return Err(Error::invalid(
            "text",
            format!(
                "The post is too long ({} at most)",
                crate::attachments::human_size(max)
            ),
        ));
    }
    Ok(())
}

fn check_open(thread: &Thread) -> Result<()> {
    if thread.closed {
        return Err(Error::conflict(
            "thread_closed",
            "This thread is closed: it takes no new posts",
        ));
    }
    Ok(())
}

/// Closes or reopens an artifact's thread (see [`Thread::closed`]); the thread, if any.
pub async fn set_closed(
    forge: &Forge,
    tool: &ToolInstance,
    artifact: &str,
    closed: bool,
) -> Result<Option<Thread>> {
    Ok(model::threads(forge.db())
        .find_one_and_update(
            doc! {"tool_id": tool.id, "artifact": artifact},
            doc! {"$set": {"closed": closed}},
        )
        .return_document(ReturnDocument::After)
        .await?)
}

/// Gives an artifact's thread a new title, page and further watch keys ([`Thread::also`]:
/// the artifact was renamed or moved), so the queue, mail and backlinks of later posts point
/// to where it is now.
pub async fn retarget(
    forge: &Forge,
    tool: &ToolInstance,
    r: &ThreadRef,
    also: &[String],
) -> Result<()> {
    model::threads(forge.db())
        .update_one(
            doc! {"tool_id": tool.id, "artifact": &r.artifact},
            doc! {"$set": {"title": &r.title, "url": &r.url, "also": also}},
        )
        .await?;
    Ok(())
}

/// Tells the tool that a post went live (`delta` 1) or stopped being live (-1), once the
/// thread's counters have changed (see [`crate::tool::Tool::on_post_change`]).
async fn tell_tool(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    thread: &Thread,
    post: &Post,
    delta: i64,
) -> Result<()> {
    match forge.tools().get(&tool.kind) {
        Some(kind) => {
            kind.on_post_change(forge, ctx, tool, thread, post, delta)
                .await
        }
        None => Ok(()),
    }
}

/// The checks that may refuse a post, in order: the `post` permission, the text, the
/// honeypot, then the rate limits (which count the post: run once per post, last). Nothing
/// of the post is written before they pass.
async fn admit(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    new: &NewPost,
) -> Result<()> {
    ctx.authorize_tool(tool, perm::POST)?;
    check_text(forge, &new.text)?;
    let moderator = ctx.can_tool(tool, perm::MODERATE);
    spam::admit(forge, viewer, ctx, tool, new.honeypot.as_deref(), moderator).await
}

/// Where a post goes in its thread: its parent's path and its depth. A reply must answer a
/// post of the same thread (so nothing can reply within a thread not yet created).
async fn place(
    forge: &Forge,
    thread: Option<&Thread>,
    parent: Option<ObjectId>,
) -> Result<(String, i32)> {
    let Some(pid) = parent else {
        return Ok((String::new(), 0));
    };
    let parent = match thread {
        Some(thread) => model::post_by_id(forge.db(), pid)
            .await?
            .filter(|p| p.thread_id == thread.id),
        None => None,
    }
    .ok_or_else(|| Error::invalid("parent", "The post you reply to is not in this thread"))?;
    if parent.depth as usize >= MAX_DEPTH {
        // Too deep: answer beside the parent instead of under it.
        let up = parent
            .path
            .rsplit_once('/')
            .map_or("", |(a, _)| a)
            .to_owned();
        Ok((up, parent.depth))
    } else {
        Ok((parent.path.clone(), parent.depth + 1))
    }
}

/// Posts to an existing thread. The post is `ok`, or `pending` when the viewer may not post
/// unmoderated (or trips the new-account link rule). To post to an artifact whose thread may
/// not exist yet, use [`post_to`].
pub async fn post(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    thread: &Thread,
    new: NewPost,
) -> Result<Post> {
    if thread.tool_id != tool.id {
        return Err(Error::NotFound("thread"));
    }
    check_open(thread)?;
    admit(forge, viewer, ctx, tool, &new).await?;
    let placed = place(forge, Some(thread), new.parent).await?;
    insert(forge, viewer, ctx, tool, thread, new, placed).await
}

/// Posts to an artifact's thread, creating the thread with the first post: every check that
/// may refuse the post (permission, text, honeypot, rate limits, the parent) runs first, so a
/// refused first post leaves no empty thread behind. The thread and the post; the post is
/// `ok` or `pending` as with [`post`].
pub async fn post_to(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    r: &ThreadRef,
    new: NewPost,
) -> Result<(Thread, Post)> {
    admit(forge, viewer, ctx, tool, &new).await?;
    let existing = model::thread_by_artifact(forge.db(), tool.id, &r.artifact).await?;
    if let Some(t) = &existing {
        check_open(t)?;
    }
    let placed = place(forge, existing.as_ref(), new.parent).await?;
    let thread = match existing {
        Some(t) => t,
        None => create_thread(forge, ctx, tool, r).await?,
    };
    let post = insert(forge, viewer, ctx, tool, &thread, new, placed).await?;
    Ok((thread, post))
}

/// Writes an admitted post at its place, then records it and, when it is live, does the work
/// that follows (see [`went_live`]).
async fn insert(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    thread: &Thread,
    new: NewPost,
    (parent_path, depth): (String, i32),
) -> Result<Post> {
    let unmoderated = ctx.can_tool(tool, perm::UNMODERATED_POST);
    let status = spam::status_for(forge, viewer, ctx, tool, &new.text, unmoderated);
    let id = ObjectId::new();
    let created = DateTime::now();
    let segment = Post::segment(created, id);
    let path = if parent_path.is_empty() {
        segment
    } else {
        format!("{parent_path}/{segment}")
    };
    let post = Post {
        id,
        thread_id: thread.id,
        project_id: ctx.project.id,
        tool_id: tool.id,
        parent: new.parent,
        path,
        depth,
        author: viewer.username().unwrap_or_default().to_owned(),
        text: new.text,
        status,
        created,
        edited: None,
        edits: Vec::new(),
        deleted: false,
    };
    model::posts(forge.db()).insert_one(&post).await?;
    let mut extra = doc! {"thread": thread.id, "post": id, "artifact": &thread.artifact, "status": status.as_str()};
    // Only a post everyone may see is shown as activity; a held one is recorded hidden, and
    // shows where it was written once approved (`crate::activity::attach`).
    if status != Status::Ok {
        extra.insert(crate::activity::HIDDEN, true);
    }
    let a = post_activity(forge, tool, thread, &post).await?;
    record_activity(forge, "discussion.post", viewer, ctx, tool, a, extra);
    if status == Status::Ok {
        went_live(forge, viewer, ctx, tool, thread, &post, "commented on").await?;
    } else {
        event(
            forge,
            "discussion.post.held",
            viewer,
            ctx,
            tool,
            doc! {"post": id, "status": status.as_str()},
        );
    }
    Ok(post)
}

/// Work once a post is visible to everyone: counters, backlinks, the index, mail.
async fn went_live(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    thread: &Thread,
    post: &Post,
    action: &str,
) -> Result<()> {
    model::threads(forge.db())
        .update_one(
            doc! {"_id": thread.id},
            vec![doc! {"$set": {
                "num_posts": {"$add": [{"$ifNull": ["$num_posts", 0_i64]}, 1_i64]},
                "last_post": {"$max": [{"$ifNull": ["$last_post", post.created]}, post.created]},
                "last_author": {"$cond": [
                    {"$gte": [post.created, {"$ifNull": ["$last_post", post.created]}]},
                    &post.author,
                    "$last_author",
                ]},
            }}],
        )
        .await?;
    tell_tool(forge, ctx, tool, thread, post, 1).await?;
    refresh_links(forge, ctx, tool, thread, post).await?;
    reindex(forge, ctx, tool, thread).await?;
    let mut change = crate::notify::change(
        viewer,
        ctx,
        tool,
        &thread.artifact,
        &thread.title,
        &format!("{}#{}", thread.url, post.anchor()),
        action,
        &excerpt(&post.text),
    );
    change.also.clone_from(&thread.also);
    // Only those who may see what the thread is about hear of it (a private ticket, a
    // hidden forum's topic): the same restriction its activity carries.
    if let Some(kind) = forge.tools().get(&tool.kind)
        && let Some(r) = kind
            .activity_restricted(forge, tool, &thread.artifact)
            .await?
    {
        change.readers = Some(crate::notify::Readers {
            permission: r.permission,
            usernames: r.users,
        });
    }
    crate::notify::queue(forge, change).await
}

fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(500).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

async fn refresh_links(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    thread: &Thread,
    post: &Post,
) -> Result<()> {
    let from = format!("post:{}", post.id);
    if post.deleted || post.status != Status::Ok {
        return crate::links::remove_from(forge.db(), &from).await;
    }
    let (_, keys) = crate::tool::xref::resolve(forge, ctx, tool, &post.text, false).await?;
    crate::links::replace(
        forge.db(),
        &from,
        &thread.title,
        &format!("{}#{}", thread.url, post.anchor()),
        &keys,
    )
    .await
}

async fn reindex(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    thread: &Thread,
) -> Result<()> {
    crate::search::indexer::queue_artifacts(
        forge,
        &ctx.project,
        tool,
        vec![thread.artifact.clone()],
    )
    .await
}

/// Whether the viewer may see a post: live ones, their own, and all of them for moderators.
fn visible(p: &Post, viewer: &Viewer, moderator: bool) -> bool {
    !p.deleted
        && (p.status == Status::Ok
            || moderator
            || (!p.author.is_empty() && viewer.username() == Some(p.author.as_str())))
}

/// A thread's posts as the viewer may see them, in reading order; a page of them when
/// `paging` is given.
pub async fn posts(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    thread: &Thread,
    order: Order,
    paging: Option<Paging>,
) -> Result<Vec<Post>> {
    ctx.authorize_tool(tool, crate::acl::perm::READ)?;
    let moderator = ctx.can_tool(tool, perm::MODERATE);
    let mut filter = doc! {"thread_id": thread.id, "deleted": false};
    if !moderator {
        match viewer.username() {
            Some(me) => {
                filter.insert("$or", vec![doc! {"status": "ok"}, doc! {"author": me}]);
            }
            None => {
                filter.insert("status", "ok");
            }
        }
    }
    let sort = match order {
        Order::Threaded => doc! {"path": 1},
        Order::Flat => doc! {"created": 1, "_id": 1},
    };
    // A whole thread at once is bounded too: the rest is reached by paging.
    let (skip, limit) = paging.map_or((0, 5_000), |p| (p.offset() as u64, p.per_page as i64));
    let db = forge.db();
    let key = format!("{filter}/{sort}/{skip}/{limit}");
    let all: Vec<Post> = crate::readmodel::memo(
        db,
        MEMO_POSTS,
        key,
        |posts: &Vec<Post>| {
            posts
                .iter()
                .map(|p| p.text.len() + p.path.len() + p.author.len() + 256)
                .sum()
        },
        || async {
            let found = model::posts(db)
                .find(filter)
                .sort(sort)
                .skip(skip)
                .limit(limit)
                .await?;
            Ok(found.try_collect().await?)
        },
    )
    .await?;
    Ok(all
        .into_iter()
        .filter(|p| visible(p, viewer, moderator))
        .collect())
}

/// Posts of a thread the viewer may see (for page counts).
pub async fn count_visible(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    thread: &Thread,
) -> Result<u64> {
    let db = forge.db();
    let count = |filter: bson::Document| {
        crate::readmodel::memo(
            db,
            MEMO_POST_COUNTS,
            filter.to_string(),
            |_: &u64| 0,
            || async move { Ok(model::posts(db).count_documents(filter).await?) },
        )
    };
    if ctx.can_tool(tool, perm::MODERATE) {
        return count(doc! {"thread_id": thread.id, "deleted": false}).await;
    }
    let mine = match viewer.username() {
        Some(me) => count(
            doc! {"thread_id": thread.id, "deleted": false, "status": {"$ne": "ok"}, "author": me},
        )
        .await?,
        None => 0,
    };
    Ok(thread.num_posts.max(0) as u64 + mine)
}

/// How many posts the viewer sees before post `id` in the thread, in `order` (so a permalink
/// can open the page that holds it); `None` when the viewer does not see that post there.
pub async fn position(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    thread: &Thread,
    order: Order,
    id: ObjectId,
) -> Result<Option<u64>> {
    let post = match get_post(forge, viewer, ctx, tool, id).await {
        Ok(p) if p.thread_id == thread.id => p,
        Ok(_) | Err(Error::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    // The same posts `posts` lists, cut at this one.
    let mut seen = doc! {"thread_id": thread.id, "deleted": false};
    if !ctx.can_tool(tool, perm::MODERATE) {
        match viewer.username() {
            Some(me) => {
                seen.insert("$or", vec![doc! {"status": "ok"}, doc! {"author": me}]);
            }
            None => {
                seen.insert("status", "ok");
            }
        }
    }
    let before = match order {
        Order::Threaded => doc! {"path": {"$lt": &post.path}},
        Order::Flat => doc! {"$or": [
            {"created": {"$lt": post.created}},
            {"created": post.created, "_id": {"$lt": post.id}},
        ]},
    };
    Ok(Some(
        model::posts(forge.db())
            .count_documents(doc! {"$and": [seen, before]})
            .await?,
    ))
}

/// One post the viewer may see.
pub async fn get_post(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    id: ObjectId,
) -> Result<Post> {
    let moderator = ctx.can_tool(tool, perm::MODERATE);
    model::post_by_id(forge.db(), id)
        .await?
        .filter(|p| p.tool_id == tool.id && visible(p, viewer, moderator))
        .ok_or(Error::NotFound("post"))
}

async fn own_or_moderate(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    id: ObjectId,
) -> Result<(Post, Thread)> {
    let post = get_post(forge, viewer, ctx, tool, id).await?;
    authorize_change(viewer, ctx, tool, &post)?;
    let thread = model::thread_by_id(forge.db(), post.thread_id)
        .await?
        .ok_or(Error::NotFound("thread"))?;
    Ok((post, thread))
}

/// Whether the viewer may change a post (its text, its files): its author while they may
/// post, or a moderator.
pub fn may_change(viewer: &Viewer, ctx: &ProjectCtx, tool: &ToolInstance, post: &Post) -> bool {
    let mine = !post.author.is_empty() && viewer.username() == Some(post.author.as_str());
    ctx.can_tool(tool, perm::MODERATE) || mine && ctx.can_tool(tool, perm::POST)
}

/// [`may_change`] as a refusal: `Unauthenticated` for anonymous viewers, else `Forbidden`.
pub(super) fn authorize_change(
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    post: &Post,
) -> Result<()> {
    if may_change(viewer, ctx, tool, post) {
        Ok(())
    } else if viewer.user.is_none() {
        Err(Error::Unauthenticated)
    } else {
        Err(Error::Forbidden)
    }
}

/// Replaces a post's text (its author or a moderator); the earlier text stays in the post's
/// history for readers to see.
pub async fn edit_post(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    id: ObjectId,
    text: String,
) -> Result<Post> {
    let (post, thread) = own_or_moderate(forge, viewer, ctx, tool, id).await?;
    check_text(forge, &text)?;
    if text == post.text {
        return Ok(post);
    }
    let edit = PostEdit {
        author: viewer.username().unwrap_or_default().to_owned(),
        when: DateTime::now(),
        text: post.text.clone(),
    };
    let edit = bson::serialize_to_document(&edit).map_err(|e| Error::Internal(e.to_string()))?;
    let updated = model::posts(forge.db())
        .find_one_and_update(
            // Only from the text the editor saw: two edits at once both keep their history.
            doc! {"_id": id, "text": &post.text},
            doc! {
                "$set": {"text": &text, "edited": DateTime::now()},
                "$push": {"edits": {"$each": [edit], "$slice": -(MAX_EDITS as i64)}},
            },
        )
        .return_document(ReturnDocument::After)
        .await?
        .ok_or_else(|| {
            Error::conflict(
                "edit_conflict",
                "Someone changed this post meanwhile; reload it and edit again",
            )
        })?;
    event(
        forge,
        "discussion.post.edit",
        viewer,
        ctx,
        tool,
        doc! {"post": id},
    );
    if updated.status == Status::Ok {
        refresh_links(forge, ctx, tool, &thread, &updated).await?;
        reindex(forge, ctx, tool, &thread).await?;
    }
    Ok(updated)
}

/// Deletes a post (its author or a moderator). Replies stay; the post shows as deleted.
pub async fn delete_post(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    id: ObjectId,
) -> Result<Post> {
    let (post, thread) = own_or_moderate(forge, viewer, ctx, tool, id).await?;
    remove(forge, ctx, tool, &thread, &post).await?;
    crate::activity::retract(forge.db(), post_event(id)).await?;
    event(
        forge,
        "discussion.post.delete",
        viewer,
        ctx,
        tool,
        doc! {"post": id},
    );
    let mut post = post;
    post.deleted = true;
    refresh_links(forge, ctx, tool, &thread, &post).await?;
    reindex(forge, ctx, tool, &thread).await?;
    Ok(post)
}

async fn remove(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    thread: &Thread,
    post: &Post,
) -> Result<()> {
    let res = model::posts(forge.db())
        .update_one(
            doc! {"_id": post.id, "deleted": false},
            doc! {"$set": {"deleted": true}},
        )
        .await?;
    if res.modified_count == 1 && post.status == Status::Ok {
        count_removed(forge, thread, post).await?;
        tell_tool(forge, ctx, tool, thread, post, -1).await?;
    }
    Ok(())
}

/// Counts a live post of the thread that stopped being live (deleted, marked spam): one post
/// fewer, and the last post again from the newest live one (one indexed query), unless a
/// newer post than this one is the last (it may have come meanwhile).
async fn count_removed(forge: &Forge, thread: &Thread, post: &Post) -> Result<()> {
    let newest = model::posts(forge.db())
        .find_one(doc! {"thread_id": thread.id, "status": "ok", "deleted": false})
        .sort(doc! {"created": -1})
        .await?;
    let (at, author) = match newest {
        Some(p) => (Bson::DateTime(p.created), Bson::String(p.author)),
        None => (Bson::Null, Bson::Null),
    };
    let newer = doc! {"$gt": [{"$ifNull": ["$last_post", Bson::Null]}, post.created]};
    model::threads(forge.db())
        .update_one(
            doc! {"_id": thread.id},
            vec![doc! {"$set": {
                "num_posts": {"$add": [{"$ifNull": ["$num_posts", 0_i64]}, -1_i64]},
                "last_post": {"$cond": [&newer, "$last_post", {"$literal": at}]},
                "last_author": {"$cond": [&newer, "$last_author", {"$literal": author}]},
            }}],
        )
        .await?;
    Ok(())
}

/// Approves, marks as spam or deletes posts of this tool (moderators); the number changed.
pub async fn moderate(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    ids: &[ObjectId],
    action: Moderation,
) -> Result<usize> {
    ctx.authorize_tool(tool, perm::MODERATE)?;
    if ids.len() > 500 {
        return Err(Error::bad_request("at most 500 posts at a time"));
    }
    let found: Vec<Post> = model::posts(forge.db())
        .find(doc! {"_id": {"$in": ids}, "tool_id": tool.id, "deleted": false})
        .await?
        .try_collect()
        .await?;
    let thread_ids: Vec<ObjectId> = found.iter().map(|p| p.thread_id).collect();
    let threads = model::threads_by_ids(forge.db(), &thread_ids).await?;
    let mut changed = 0;
    for post in found {
        let Some(thread) = threads.iter().find(|t| t.id == post.thread_id) else {
            continue;
        };
        match action {
            Moderation::Approve if post.status != Status::Ok => {
                let res = model::posts(forge.db())
                    .update_one(
                        doc! {"_id": post.id, "status": post.status.as_str()},
                        doc! {"$set": {"status": "ok"}},
                    )
                    .await?;
                if res.modified_count == 1 {
                    let mut live = post.clone();
                    live.status = Status::Ok;
                    let author = Viewer {
                        user: crate::users::by_username(forge.db(), &post.author).await?,
                        ip: None,
                    };
                    went_live(forge, &author, ctx, tool, thread, &live, "commented on").await?;
                    let a = post_activity(forge, tool, thread, &live).await?;
                    crate::activity::attach(forge.db(), post_event(post.id), a).await?;
                    changed += 1;
                }
            }
            Moderation::Spam if post.status != Status::Spam => {
                let res = model::posts(forge.db())
                    .update_one(
                        doc! {"_id": post.id, "status": post.status.as_str()},
                        doc! {"$set": {"status": "spam"}},
                    )
                    .await?;
                if res.modified_count == 1 {
                    if post.status == Status::Ok {
                        crate::activity::retract(forge.db(), post_event(post.id)).await?;
                        count_removed(forge, thread, &post).await?;
                        tell_tool(forge, ctx, tool, thread, &post, -1).await?;
                        crate::links::remove_from(forge.db(), &format!("post:{}", post.id)).await?;
                        reindex(forge, ctx, tool, thread).await?;
                    }
                    changed += 1;
                }
            }
            Moderation::Delete => {
                remove(forge, ctx, tool, thread, &post).await?;
                crate::activity::retract(forge.db(), post_event(post.id)).await?;
                crate::links::remove_from(forge.db(), &format!("post:{}", post.id)).await?;
                changed += 1;
            }
            _ => continue,
        }
        let kind = match action {
            Moderation::Approve => "discussion.moderate.approve",
            Moderation::Spam => "discussion.moderate.spam",
            Moderation::Delete => "discussion.moderate.delete",
        };
        event(
            forge,
            kind,
            viewer,
            ctx,
            tool,
            doc! {"post": post.id, "author": &post.author},
        );
    }
    Ok(changed)
}

/// The tool's moderation queue: posts waiting (`pending`) or held as spam, newest first, with
/// their threads.
pub async fn queue(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    status: Status,
    paging: Paging,
) -> Result<(Vec<(Post, Thread)>, u64)> {
    ctx.authorize_tool(tool, perm::MODERATE)?;
    let filter = doc! {"tool_id": tool.id, "status": status.as_str(), "deleted": false};
    let total = model::posts(forge.db())
        .count_documents(filter.clone())
        .await?;
    let posts: Vec<Post> = model::posts(forge.db())
        .find(filter)
        .sort(doc! {"created": -1})
        .skip(paging.offset() as u64)
        .limit(paging.per_page as i64)
        .await?
        .try_collect()
        .await?;
    let ids: Vec<ObjectId> = posts.iter().map(|p| p.thread_id).collect();
    let threads = model::threads_by_ids(forge.db(), &ids).await?;
    let out = posts
        .into_iter()
        .filter_map(|p| {
            let t = threads.iter().find(|t| t.id == p.thread_id)?.clone();
            Some((p, t))
        })
        .collect();
    Ok((out, total))
}

/// Every live post of a tool's threads, oldest first, by artifact key: what exports and
/// full re-indexing read in one pass instead of one query per artifact.
pub async fn live_posts_by_artifact(
    forge: &Forge,
    tool: &ToolInstance,
) -> Result<std::collections::HashMap<String, Vec<Post>>> {
    let threads: Vec<Thread> = model::threads(forge.db())
        .find(doc! {"tool_id": tool.id})
        .await?
        .try_collect()
        .await?;
    let mut cursor = model::posts(forge.db())
        .find(doc! {"tool_id": tool.id, "status": "ok", "deleted": false})
        .sort(doc! {"created": 1, "_id": 1})
        .await?;
    let artifact_of: std::collections::HashMap<ObjectId, &str> = threads
        .iter()
        .map(|t| (t.id, t.artifact.as_str()))
        .collect();
    let mut out: std::collections::HashMap<String, Vec<Post>> = Default::default();
    while let Some(p) = cursor.try_next().await? {
        if let Some(a) = artifact_of.get(&p.thread_id) {
            out.entry((*a).to_owned()).or_default().push(p);
        }
    }
    Ok(out)
}

/// Texts of posts joined for a search document, at most `max_bytes`.
pub fn joined_texts(posts: &[Post], max_bytes: usize) -> String {
    let mut out = String::new();
    for p in posts {
        if out.len() + p.text.len() > max_bytes {
            break;
        }
        out.push_str(&p.text);
        out.push('\n');
    }
    out
}

/// The live posts' texts of a thread, for the artifact's search document (bounded).
pub async fn texts(
    forge: &Forge,
    tool: &ToolInstance,
    artifact: &str,
    max_bytes: usize,
) -> Result<String> {
    let Some(thread) = model::thread_by_artifact(forge.db(), tool.id, artifact).await? else {
        return Ok(String::new());
    };
    let mut cursor = model::posts(forge.db())
        .clone_with_type::<Document>()
        .find(doc! {"thread_id": thread.id, "status": "ok", "deleted": false})
        .sort(doc! {"created": 1})
        .projection(doc! {"text": 1})
        .limit(5_000)
        .await?;
    let mut out = String::new();
    while let Some(d) = cursor.try_next().await? {
        let text = d.get_str("text").unwrap_or_default();
        if out.len() + text.len() > max_bytes {
            break;
        }
        out.push_str(text);
        out.push('\n');
    }
    Ok(out)
}
