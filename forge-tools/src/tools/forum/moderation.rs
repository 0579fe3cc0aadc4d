//! What a forum's moderators do with topics and people: move a topic to another forum,
//! close or reopen it, make it sticky or an announcement, delete it, and block someone from
//! posting in the tool's forums (a deny entry for that account first in the tool's ACL, so
//! every way of posting — pages, REST, mail — refuses them). Post-level moderation (approve,
//! spam, delete one post) is the discussion component's queue.

use bson::doc;
use bson::oid::ObjectId;

use super::model::{self, Forum, Topic};
use super::topics;
use crate::acl::{Ace, Principal, perm};
use crate::discussion;
use crate::error::{Error, Result};
use crate::project_ctx::ProjectCtx;
use crate::tool::{Forge, ToolInstance, record_event};
use crate::viewer::Viewer;

/// A change a moderator makes to a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicAction {
    Close,
    Reopen,
    Sticky(bool),
    Announcement(bool),
    /// To the forum with this short name.
    Move(String),
    Delete,
}

impl TopicAction {
    /// From a form or JSON value: `close`, `reopen`, `sticky`, `unsticky`, `announce`,
    /// `unannounce`, `move` (with the target forum), `delete`.
    pub fn parse(action: &str, forum: Option<&str>) -> Option<Self> {
        Some(match action {
            "close" => Self::Close,
            "reopen" => Self::Reopen,
            "sticky" => Self::Sticky(true),
            "unsticky" => Self::Sticky(false),
            "announce" => Self::Announcement(true),
            "unannounce" => Self::Announcement(false),
            "move" => Self::Move(forum?.trim().to_owned()),
            "delete" => Self::Delete,
            _ => return None,
        })
    }

    fn event(&self) -> &'static str {
        match self {
            Self::Close => "forum.topic.close",
            Self::Reopen => "forum.topic.reopen",
            Self::Sticky(_) => "forum.topic.sticky",
            Self::Announcement(_) => "forum.topic.announce",
            Self::Move(_) => "forum.topic.move",
            Self::Delete => "forum.topic.delete",
        }
    }
}

/// Applies a moderator's change to a topic; the topic as it is after.
pub async fn topic(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    id: ObjectId,
    action: TopicAction,
) -> Result<Topic> {
    ctx.authorize_tool(tool, perm::MODERATE)?;
    let (forum, topic) = topics::get(forge, viewer, ctx, tool, id).await?;
    let db = forge.db();
    let mut extra = doc! {"topic": topic.id, "forum": &forum.shortname};
    match &action {
        TopicAction::Close | TopicAction::Reopen => {
            let closed = action == TopicAction::Close;
            set(forge, topic.id, doc! {"closed": closed}).await?;
            discussion::set_closed(forge, tool, &topic.key(), closed).await?;
        }
        TopicAction::Sticky(on) => set(forge, topic.id, doc! {"sticky": on}).await?,
        TopicAction::Announcement(on) => {
            set(forge, topic.id, doc! {"announcement": on}).await?;
        }
        TopicAction::Move(to) => {
            let target = super::forums::get(forge, ctx, tool, to)
                .await
                .map_err(|_| Error::invalid("forum", format!("There is no forum \"{to}\"")))?;
            if target.deleted {
                return Err(Error::invalid("forum", "That forum is deleted"));
            }
            if target.id != forum.id {
                set(forge, topic.id, doc! {"forum_id": target.id}).await?;
                if topic.live {
                    shift(forge, &forum, &topic, -1).await?;
                    shift(forge, &target, &topic, 1).await?;
                }
                let mut moved = topic.clone();
                moved.forum_id = target.id;
                let r = topics::thread_ref(ctx, tool, &target, &moved);
                discussion::retarget(forge, tool, &r, &r.also).await?;
                extra.insert("to", &target.shortname);
            }
        }
        TopicAction::Delete => {
            let res = model::topics(db)
                .update_one(
                    doc! {"_id": topic.id, "deleted": false},
                    doc! {"$set": {"deleted": true}},
                )
                .await?;
            if res.modified_count == 1 && topic.live {
                shift(forge, &forum, &topic, -1).await?;
            }
        }
    }
    record_event(forge, action.event(), viewer, ctx, tool, extra);
    if matches!(action, TopicAction::Move(_) | TopicAction::Delete) {
        super::visibility::restrict_activity(forge, tool, &[topic.key()]).await?;
    }
    crate::search::indexer::queue_artifacts(forge, &ctx.project, tool, vec![topic.key()]).await?;
    model::topic_by_id(db, topic.id)
        .await?
        .ok_or(Error::NotFound("topic"))
}

async fn set(forge: &Forge, id: ObjectId, fields: bson::Document) -> Result<()> {
    model::topics(forge.db())
        .update_one(doc! {"_id": id}, doc! {"$set": fields})
        .await?;
    Ok(())
}

/// Moves a live topic's counts into (`sign` 1) or out of (-1) a forum, and sets the forum's
/// last post from its topics again.
async fn shift(forge: &Forge, forum: &Forum, topic: &Topic, sign: i64) -> Result<()> {
    let db = forge.db();
    model::forums(db)
        .update_one(
            doc! {"_id": forum.id},
            doc! {"$inc": {"num_topics": sign, "num_posts": sign * topic.num_posts}},
        )
        .await?;
    model::refresh_last_post(db, forum.id).await
}

fn block_entry(user: crate::ids::UserId) -> Ace {
    Ace::deny(Principal::User(user), discussion::perm::POST)
}

/// Blocks (or unblocks) an account from posting in this tool's forums.
pub async fn block(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    username: &str,
    blocked: bool,
) -> Result<()> {
    ctx.authorize_tool(tool, perm::MODERATE)?;
    let user = crate::users::by_username(forge.db(), username.trim())
        .await?
        .ok_or_else(|| Error::invalid("username", format!("There is no user \"{username}\"")))?;
    if blocked && viewer.user.as_ref().is_some_and(|me| me.id == user.id) {
        return Err(Error::invalid("username", "You cannot block yourself"));
    }
    let entry = block_entry(user.id);
    if blocked {
        crate::instances::prepend_ace(forge.db(), tool.id, &entry).await?;
    } else {
        crate::instances::remove_ace(forge.db(), tool.id, &entry).await?;
    }
    record_event(
        forge,
        if blocked {
            "forum.user.block"
        } else {
            "forum.user.unblock"
        },
        viewer,
        ctx,
        tool,
        doc! {"username": &user.username},
    );
    Ok(())
}

/// Usernames blocked from posting in this tool (moderators).
pub async fn blocked(forge: &Forge, ctx: &ProjectCtx, tool: &ToolInstance) -> Result<Vec<String>> {
    ctx.authorize_tool(tool, perm::MODERATE)?;
    let ids: Vec<crate::ids::UserId> = tool
        .acl
        .iter()
        .filter_map(|a| match a.role {
            Principal::User(u) if a.permission == discussion::perm::POST => Some(u),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut names: Vec<String> = crate::users::by_ids(forge.db(), &ids)
        .await?
        .into_iter()
        .map(|u| u.username)
        .collect();
    names.sort();
    Ok(names)
}
