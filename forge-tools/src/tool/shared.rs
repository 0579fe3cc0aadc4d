//! What several tool kinds' [`Tool`](super::Tool) implementations do alike, written once:
//! reading an artifact key's id, the viewer a project context was made for, the text of a
//! tool's discussions for its search documents, and removing its discussions and files when
//! it is uninstalled.

use std::collections::HashMap;

use bson::oid::ObjectId;

use super::{Forge, ToolInstance};
use crate::discussion::{self, Post};
use crate::error::Result;
use crate::project_ctx::ProjectCtx;
use crate::viewer::Viewer;

/// The id in an artifact key `<prefix>:<hex id>` (`ticket:…`, `wiki:…`, `topic:…`); `None`
/// for another tool's key or a malformed one.
pub fn artifact_id(key: &str, prefix: &str) -> Option<ObjectId> {
    key.strip_prefix(prefix)?
        .strip_prefix(':')
        .and_then(|id| ObjectId::parse_str(id).ok())
}

/// The viewer a project context was made for (its account loaded again), for the hooks
/// given the context only (`Tool::can_read_artifact`).
pub async fn viewer_of(forge: &Forge, ctx: &ProjectCtx) -> Result<Viewer> {
    let user = match ctx.subject.user {
        Some(uid) => crate::users::by_id(forge.db(), uid).await?,
        None => None,
    };
    Ok(Viewer { user, ip: None })
}

/// The live posts of every discussion of a tool, read in one pass for its search documents
/// (not one query per artifact).
pub struct DiscussionTexts(HashMap<String, Vec<Post>>);

impl DiscussionTexts {
    pub async fn load(forge: &Forge, tool: &ToolInstance) -> Result<Self> {
        Ok(Self(discussion::live_posts_by_artifact(forge, tool).await?))
    }

    /// The texts of the artifact's live posts, at most `max_bytes` (empty without any).
    pub fn of(&self, key: &str, max_bytes: usize) -> String {
        self.0
            .get(key)
            .map_or_else(String::new, |p| discussion::joined_texts(p, max_bytes))
    }
}

/// Removes a tool's discussions and the files attached to its artifacts and posts (part of
/// `Tool::uninstall` for the kinds that have them).
pub async fn remove_discussions(forge: &Forge, tool: &ToolInstance) -> Result<()> {
    discussion::delete_tool(forge.db(), tool.id).await?;
    forge.attachments().delete_tool(forge.db(), tool.id).await
}
