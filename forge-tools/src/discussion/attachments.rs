//! Files attached to posts, kept in the shared attachment store under the post's tool with
//! the post's id as the artifact. Who may attach and remove is who may change the post (its
//! author while they may post, or a moderator); who may download is who may see the post, so
//! a deleted post's files are hidden with it, and a held post's are seen by its author and
//! moderators only. Whether the viewer may read the artifact the thread belongs to is the
//! caller's check (`Tool::can_read_artifact`), made before these.
//!
//! The upload itself is streamed by the caller into [`crate::attachments::AttachmentStore`]
//! once [`for_attaching`] allowed it; [`attached`] records it.

use std::collections::HashMap;

use bson::doc;
use bson::oid::ObjectId;

use super::actions::{authorize_change, event, get_post};
use super::model::{self, Post, Thread};
use crate::attachments::Attachment;
use crate::error::{Error, Result};
use crate::project_ctx::ProjectCtx;
use crate::tool::{Forge, ToolInstance};
use crate::viewer::Viewer;

/// A post the viewer may see, with its thread (whose artifact the caller checks is readable).
pub async fn post_in_thread(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    id: ObjectId,
) -> Result<(Post, Thread)> {
    ctx.authorize_tool(tool, crate::acl::perm::READ)?;
    let post = get_post(forge, viewer, ctx, tool, id).await?;
    let thread = model::thread_by_id(forge.db(), post.thread_id)
        .await?
        .filter(|t| t.tool_id == tool.id)
        .ok_or(Error::NotFound("post"))?;
    Ok((post, thread))
}

/// Refuses unless the viewer may attach files to this post (one they may see) and remove
/// them: its author while they may post, or a moderator.
pub fn for_attaching(
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    post: &Post,
) -> Result<()> {
    if post.tool_id != tool.id || post.deleted {
        return Err(Error::NotFound("post"));
    }
    authorize_change(viewer, ctx, tool, post)
}

/// [`for_attaching`] for a post the viewer is about to write (its files are checked before it
/// is): an account that may post (it will be their own post), or a moderator.
pub fn for_attaching_own(viewer: &Viewer, ctx: &ProjectCtx, tool: &ToolInstance) -> Result<()> {
    let own = viewer.user.is_some() && ctx.can_tool(tool, super::perm::POST);
    if own || ctx.can_tool(tool, super::perm::MODERATE) {
        Ok(())
    } else if viewer.user.is_none() {
        Err(Error::Unauthenticated)
    } else {
        Err(Error::Forbidden)
    }
}

/// Records a file attached to a post.
pub fn attached(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    post: &Post,
    a: &Attachment,
) {
    event(
        forge,
        "discussion.post.attach",
        viewer,
        ctx,
        tool,
        doc! {"post": post.id, "file": &a.filename, "size": a.size},
    );
}

/// One file of a post the viewer may see (`post` from [`post_in_thread`]).
pub async fn attachment(
    forge: &Forge,
    tool: &ToolInstance,
    post: &Post,
    filename: &str,
) -> Result<Attachment> {
    if post.tool_id != tool.id || post.deleted {
        return Err(Error::NotFound("attachment"));
    }
    forge
        .attachments()
        .get(forge.db(), tool.id, post.id, filename)
        .await?
        .ok_or(Error::NotFound("attachment"))
}

/// Removes one file of a post (its author or a moderator); the record removed.
pub async fn remove_attachment(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    post: &Post,
    filename: &str,
) -> Result<Attachment> {
    for_attaching(viewer, ctx, tool, post)?;
    let a = attachment(forge, tool, post, filename).await?;
    forge.attachments().delete(forge.db(), &a).await?;
    event(
        forge,
        "discussion.post.detach",
        viewer,
        ctx,
        tool,
        doc! {"post": post.id, "file": &a.filename},
    );
    Ok(a)
}

/// The files of posts the viewer was shown (those [`super::posts`] returned), by post id, in
/// one store query. Deleted posts and posts of other tools list nothing.
pub async fn attachments_of(
    forge: &Forge,
    tool: &ToolInstance,
    posts: &[Post],
) -> Result<HashMap<ObjectId, Vec<Attachment>>> {
    let ids: Vec<ObjectId> = posts
        .iter()
        .filter(|p| p.tool_id == tool.id && !p.deleted)
        .map(|p| p.id)
        .collect();
    let mut out: HashMap<ObjectId, Vec<Attachment>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    for a in forge
        .attachments()
        .list_many(forge.db(), tool.id, &ids)
        .await?
    {
        out.entry(a.artifact_id).or_default().push(a);
    }
    Ok(out)
}
