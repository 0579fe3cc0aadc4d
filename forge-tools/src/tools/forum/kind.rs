//! [`ForumTool`]: the forum as a tool kind — Allura's permissions and defaults, indexes, the
//! default forum of a new tool, search documents per topic (hidden forums' topics for
//! moderators only), who may read a topic's discussion, and the counters posts change.

use async_trait::async_trait;
use bson::doc;
use futures::TryStreamExt;
use mongodb::Database;

use super::model::{self, Forum, Topic};
use super::{KIND, forums, topics};
use crate::acl::{Ace, perm};
use crate::discussion::{self, Post, Thread};
use crate::error::Result;
use crate::project_ctx::ProjectCtx;
use crate::projects::Project;
use crate::tool::{Forge, Restricted, SearchDoc, Tool, ToolInstance, shared};

pub struct ForumTool;

/// Mails from unknown senders one forum holds for its moderators per hour, at most.
const HELD_MAILS_PER_HOUR: u32 = 30;

/// Post text indexed with a topic, at most.
const MAX_INDEXED: usize = 256 * 1024;

#[async_trait]
impl Tool for ForumTool {
    fn kind(&self) -> &'static str {
        KIND
    }
    fn title(&self) -> &'static str {
        "Discussion"
    }
    fn default_label(&self) -> &'static str {
        "Discussion"
    }
    fn default_mount(&self) -> &'static str {
        "discussion"
    }
    fn webhook_events(&self) -> &'static [&'static str] {
        &["forum_post"]
    }
    /// A post going live (a new topic or a reply) is a `forum_post` webhook event.
    fn change_event(&self) -> Option<&'static str> {
        Some("forum_post")
    }
    fn kept(&self, max_bytes: u64) -> Vec<std::sync::Arc<dyn crate::readmodel::Kept>> {
        use crate::readmodel::memo::kind;
        vec![
            kind(model::MEMO_TOPICS, model::TOPICS, max_bytes / 2),
            kind(model::MEMO_FORUMS, model::FORUMS, max_bytes / 4),
            kind(model::MEMO_FORUM_LISTS, model::FORUMS, max_bytes / 4),
        ]
    }
    fn permissions(&self) -> &'static [&'static str] {
        &[
            perm::READ,
            discussion::perm::POST,
            discussion::perm::UNMODERATED_POST,
            perm::MODERATE,
            perm::ADMIN,
        ]
    }
    fn default_acl(&self) -> Vec<Ace> {
        // Allura's: anyone logged in posts, at once; developers moderate; anonymous posting
        // is off until an admin allows it (and then always waits for a moderator).
        discussion::default_acl()
    }
    fn install_by_default(&self) -> bool {
        true
    }
    async fn ensure_indexes(&self, db: &Database) -> Result<()> {
        model::ensure_indexes(db).await
    }
    async fn install(&self, forge: &Forge, _project: &Project, tool: &ToolInstance) -> Result<()> {
        forums::insert(
            forge,
            tool,
            forums::NewForum {
                shortname: "general".into(),
                name: "General Discussion".into(),
                description: "Anything about the project.".into(),
            },
        )
        .await
        .map(|_| ())
    }
    async fn uninstall(
        &self,
        forge: &Forge,
        _project: &Project,
        tool: &ToolInstance,
    ) -> Result<()> {
        model::delete_tool(forge.db(), tool.id).await?;
        shared::remove_discussions(forge, tool).await
    }
    async fn search_documents(
        &self,
        forge: &Forge,
        project: &Project,
        tool: &ToolInstance,
    ) -> Result<Vec<SearchDoc>> {
        let forums = model::forums_of(forge.db(), tool.id).await?;
        let posts = shared::DiscussionTexts::load(forge, tool).await?;
        let mut cursor = model::topics(forge.db())
            .find(doc! {"tool_id": tool.id, "live": true, "deleted": false})
            .await?;
        let mut out = Vec::new();
        while let Some(t) = cursor.try_next().await? {
            let Some(forum) = forums.iter().find(|f| f.id == t.forum_id) else {
                continue;
            };
            let text = posts.of(&t.key(), MAX_INDEXED);
            if let Some(d) = search_doc(project, tool, forum, &t, text) {
                out.push(d);
            }
        }
        Ok(out)
    }
    async fn search_document(
        &self,
        forge: &Forge,
        project: &Project,
        tool: &ToolInstance,
        key: &str,
    ) -> Result<Option<SearchDoc>> {
        let Some(id) = model::id_of_key(key) else {
            return Ok(None);
        };
        let Some(t) = model::topic_by_id(forge.db(), id)
            .await?
            .filter(|t| t.tool_id == tool.id && t.live && !t.deleted)
        else {
            return Ok(None);
        };
        let Some(forum) = model::forums(forge.db())
            .find_one(doc! {"_id": t.forum_id})
            .await?
        else {
            return Ok(None);
        };
        let text = discussion::texts(forge, tool, key, MAX_INDEXED).await?;
        Ok(search_doc(project, tool, &forum, &t, text))
    }
    async fn can_read_artifact(
        &self,
        forge: &Forge,
        ctx: &ProjectCtx,
        tool: &ToolInstance,
        key: &str,
    ) -> Result<bool> {
        let Some(id) = model::id_of_key(key) else {
            return Ok(false);
        };
        let viewer = shared::viewer_of(forge, ctx).await?;
        Ok(topics::get(forge, &viewer, ctx, tool, id).await.is_ok())
    }
    async fn reply_by_mail(
        &self,
        forge: &Forge,
        viewer: &crate::viewer::Viewer,
        ctx: &ProjectCtx,
        tool: &ToolInstance,
        artifact: &str,
        post: discussion::NewPost,
    ) -> Result<Post> {
        let id = model::id_of_key(artifact).ok_or(crate::error::Error::NotFound("topic"))?;
        let (_, topic) = topics::get(forge, viewer, ctx, tool, id).await?;
        topics::reply(forge, viewer, ctx, tool, &topic, post).await
    }
    async fn mail_to_address(
        &self,
        forge: &Forge,
        viewer: &crate::viewer::Viewer,
        ctx: &ProjectCtx,
        tool: &ToolInstance,
        local_part: &str,
        subject: &str,
        post: discussion::NewPost,
        sender_verified: bool,
    ) -> Result<Post> {
        let forum = forums::get(forge, ctx, tool, &local_part.to_ascii_lowercase()).await?;
        let new = topics::NewTopic {
            subject: subject.to_owned(),
            text: post.text,
            honeypot: None,
        };
        if viewer.user.is_some() && sender_verified {
            return Ok(topics::create(forge, viewer, ctx, tool, &forum, new)
                .await?
                .1);
        }
        // A sender the forge does not know: refused, or a topic for a moderator to look at
        // (whatever anonymous may do on the site: never unmoderated).
        match forum.unknown_senders {
            model::UnknownSenders::Refuse => Err(crate::error::Error::Forbidden),
            model::UnknownSenders::Pending => {
                // Held mail from strangers is bounded per forum (nothing else limits it: no
                // account, no address to count).
                crate::ratelimit::hit_key(
                    forge.db(),
                    "forum.mail.held",
                    &forum.id.to_hex(),
                    HELD_MAILS_PER_HOUR,
                )
                .await?;
                let mut held = tool.clone();
                held.acl.insert(
                    0,
                    Ace::allow(crate::acl::Principal::Anonymous, discussion::perm::POST),
                );
                held.acl.retain(|a| {
                    !(a.role == crate::acl::Principal::Anonymous
                        && a.permission == discussion::perm::UNMODERATED_POST)
                });
                let anonymous = crate::viewer::Viewer {
                    user: None,
                    ip: None,
                };
                let mut as_anonymous = ctx.clone();
                as_anonymous.subject = crate::acl::Subject::anonymous();
                Ok(
                    topics::create(forge, &anonymous, &as_anonymous, &held, &forum, new)
                        .await?
                        .1,
                )
            }
        }
    }
    async fn activity_restricted(
        &self,
        forge: &Forge,
        tool: &ToolInstance,
        key: &str,
    ) -> Result<Option<crate::activity::Restricted>> {
        // A hidden or deleted forum's topics, and deleted topics: for moderators only.
        let Some(id) = model::id_of_key(key) else {
            return Ok(None);
        };
        let Some(t) = model::topic_by_id(forge.db(), id)
            .await?
            .filter(|t| t.tool_id == tool.id)
        else {
            return Ok(None);
        };
        let forum = model::forums(forge.db())
            .find_one(doc! {"_id": t.forum_id})
            .await?;
        Ok(super::visibility::restriction(forum.as_ref(), t.deleted))
    }
    async fn on_post_change(
        &self,
        forge: &Forge,
        _ctx: &ProjectCtx,
        tool: &ToolInstance,
        thread: &Thread,
        post: &Post,
        delta: i64,
    ) -> Result<()> {
        topics::on_post_change(forge, tool, thread, post, delta).await
    }
}

/// A topic's search document: its subject as title, its posts as text; a hidden forum's
/// topics only for moderators; none for a deleted forum's.
fn search_doc(
    project: &Project,
    tool: &ToolInstance,
    forum: &Forum,
    t: &Topic,
    text: String,
) -> Option<SearchDoc> {
    if forum.deleted {
        return None;
    }
    Some(SearchDoc {
        id: t.key(),
        kind: "post".into(),
        title: t.subject.clone(),
        text: crate::markdown::to_plain_text(&text),
        url: format!(
            "{}{}/{}/thread/{}/",
            project.url(),
            tool.mount,
            forum.shortname,
            t.id.to_hex()
        ),
        author: Some(t.author.clone()).filter(|a| !a.is_empty()),
        updated: t.last_post_at,
        restricted: forum.hidden.then(|| Restricted {
            permission: perm::MODERATE,
            users: Vec::new(),
        }),
    })
}
