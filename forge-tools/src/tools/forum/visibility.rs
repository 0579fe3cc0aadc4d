//! Keeping what was recorded about topics in line with who may see them now: a forum hidden,
//! deleted or restored, a topic deleted or moved changes who may read its posts' activity
//! (feeds, dashboards), as it changes who finds them in search.

use bson::{Document, doc};
use futures::TryStreamExt;

use super::model::{self, Forum};
use crate::acl::perm;
use crate::activity::Restricted;
use crate::error::Result;
use crate::project_ctx::ProjectCtx;
use crate::tool::{Forge, ToolInstance};

/// Topics of a forum handled per round trip when the whole forum changes.
const PAGE: usize = 500;

/// Who may see activity about a topic: moderators only when its forum is hidden or deleted,
/// or the topic is deleted; else whoever may read the tool.
pub(super) fn restriction(forum: Option<&Forum>, topic_deleted: bool) -> Option<Restricted> {
    (forum.is_some_and(|f| f.hidden || f.deleted) || topic_deleted).then(|| Restricted {
        permission: perm::MODERATE.to_owned(),
        users: Vec::new(),
    })
}

/// Brings the activity of topics in line with who may now see them (the topic deleted or
/// moved): feeds and dashboards follow the forum, as search does.
pub async fn restrict_activity(forge: &Forge, tool: &ToolInstance, keys: &[String]) -> Result<()> {
    let Some(kind) = forge.tools().get(&tool.kind) else {
        return Ok(());
    };
    for key in keys {
        let restricted = kind.activity_restricted(forge, tool, key).await?;
        crate::activity::set_restricted(
            forge.db(),
            doc! {"extra.artifact": key},
            restricted.as_ref(),
        )
        .await?;
    }
    Ok(())
}

/// After a forum was hidden, shown, deleted or restored: its topics' activity as visible as
/// the forum now is, and their search documents queued again. A page of [`PAGE`] topics at a
/// time (at most two activity updates and one queued task each), whatever the forum's size.
pub async fn forum_changed(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    forum: bson::oid::ObjectId,
) -> Result<()> {
    let db = forge.db();
    let Some(forum) = model::forums(db).find_one(doc! {"_id": forum}).await? else {
        return Ok(());
    };
    let mut cursor = model::topics(db)
        .clone_with_type::<Document>()
        .find(doc! {"forum_id": forum.id})
        .projection(doc! {"_id": 1, "deleted": 1})
        .batch_size(PAGE as u32)
        .await?;
    let mut page: Vec<(String, bool)> = Vec::with_capacity(PAGE);
    loop {
        let next = cursor.try_next().await?;
        if let Some(d) = &next
            && let Ok(id) = d.get_object_id("_id")
        {
            page.push((model::key_of(id), d.get_bool("deleted").unwrap_or(false)));
        }
        if page.len() == PAGE || (next.is_none() && !page.is_empty()) {
            apply(forge, ctx, tool, &forum, std::mem::take(&mut page)).await?;
        }
        if next.is_none() {
            return Ok(());
        }
    }
}

/// One page of [`forum_changed`].
async fn apply(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    forum: &Forum,
    topics: Vec<(String, bool)>,
) -> Result<()> {
    let (deleted, kept): (Vec<_>, Vec<_>) = topics.into_iter().partition(|(_, d)| *d);
    let mut keys = Vec::with_capacity(deleted.len() + kept.len());
    for (group, topic_deleted) in [(kept, false), (deleted, true)] {
        if group.is_empty() {
            continue;
        }
        let group: Vec<String> = group.into_iter().map(|(k, _)| k).collect();
        crate::activity::set_restricted(
            forge.db(),
            doc! {"extra.artifact": {"$in": &group}},
            restriction(Some(forum), topic_deleted).as_ref(),
        )
        .await?;
        keys.extend(group);
    }
    crate::search::indexer::queue_artifacts(forge, &ctx.project, tool, keys).await
}
