//! [`TrackerTool`]: the tracker as a tool kind — permissions and their defaults, indexes,
//! settings at install, search documents of tickets (private ones restricted), the `[#12]`
//! references it answers, who may read a ticket's discussion, and commits that close tickets.

use async_trait::async_trait;
use bson::{Document, doc};
use mongodb::Database;

use super::config::TrackerConfig;
use super::tickets::{self, Ticket, link_key};
use super::{KIND, actions, bins, perm as tperm};
use crate::acl::{Ace, Principal, perm};
use crate::error::Result;
use crate::project_ctx::ProjectCtx;
use crate::projects::Project;
use crate::refs::{RefKind, RefTarget, Resolution};
use crate::tool::{Forge, PushedCommit, Restricted, SearchDoc, Tool, ToolInstance, shared};

pub struct TrackerTool;

/// Comment text indexed with a ticket, at most.
const MAX_INDEXED_COMMENTS: usize = 256 * 1024;

#[async_trait]
impl Tool for TrackerTool {
    fn kind(&self) -> &'static str {
        KIND
    }
    fn title(&self) -> &'static str {
        "Tickets"
    }
    fn default_label(&self) -> &'static str {
        "Tickets"
    }
    fn default_mount(&self) -> &'static str {
        "tickets"
    }
    fn webhook_events(&self) -> &'static [&'static str] {
        &["ticket"]
    }
    /// A change to a ticket (filed, edited, commented on...) is a `ticket` webhook event.
    fn change_event(&self) -> Option<&'static str> {
        Some("ticket")
    }
    fn kept(&self, max_bytes: u64) -> Vec<std::sync::Arc<dyn crate::readmodel::Kept>> {
        use crate::readmodel::memo::kind;
        vec![
            kind(tickets::MEMO_TICKETS, tickets::TICKETS, max_bytes / 2),
            crate::readmodel::memo::kind_past(
                tickets::MEMO_PAST_COUNTS,
                tickets::TICKETS,
                max_bytes / 64,
            ),
            kind(tickets::MEMO_CHANGES, tickets::CHANGES, max_bytes * 27 / 64),
            kind(tickets::MEMO_VOTES, tickets::VOTES, max_bytes / 16),
        ]
    }
    fn permissions(&self) -> &'static [&'static str] {
        &[
            perm::READ,
            tperm::CREATE,
            tperm::UPDATE,
            tperm::DELETE,
            crate::discussion::perm::POST,
            crate::discussion::perm::UNMODERATED_POST,
            perm::MODERATE,
            tperm::SAVE_SEARCHES,
            perm::ADMIN,
        ]
    }
    fn default_acl(&self) -> Vec<Ace> {
        // Anyone logged in who can read may file and comment; developers triage.
        let mut acl = vec![
            Ace::allow(Principal::Authenticated, tperm::CREATE),
            Ace::allow(Principal::Developer, tperm::UPDATE),
            Ace::allow(Principal::Developer, tperm::DELETE),
            Ace::allow(Principal::Developer, tperm::SAVE_SEARCHES),
        ];
        acl.extend(crate::discussion::default_acl());
        acl
    }
    fn install_by_default(&self) -> bool {
        true
    }
    /// A reply to a ticket's mail is a comment, through the same action as the web's.
    async fn reply_by_mail(
        &self,
        forge: &Forge,
        viewer: &crate::viewer::Viewer,
        ctx: &ProjectCtx,
        tool: &ToolInstance,
        artifact: &str,
        post: crate::discussion::NewPost,
    ) -> Result<crate::discussion::Post> {
        let found = match shared::artifact_id(artifact, "ticket") {
            Some(id) => tickets::by_id(forge.db(), id).await?,
            None => None,
        };
        let t = found
            .filter(|t| t.tool_id == tool.id && !t.deleted)
            .ok_or(crate::error::Error::NotFound("ticket"))?;
        actions::comment(forge, viewer, ctx, tool, t.ticket_num, post).await
    }
    async fn ensure_indexes(&self, db: &Database) -> Result<()> {
        tickets::ensure_indexes(db).await?;
        bins::ensure_indexes(db).await
    }
    fn options(&self, _given: &serde_json::Value) -> Result<Document> {
        Ok(doc! {super::config::OPTION: TrackerConfig::default().to_bson()?})
    }
    async fn install(&self, forge: &Forge, _project: &Project, tool: &ToolInstance) -> Result<()> {
        tickets::create_counter(forge.db(), tool.id).await
    }
    async fn uninstall(
        &self,
        forge: &Forge,
        _project: &Project,
        tool: &ToolInstance,
    ) -> Result<()> {
        tickets::delete_tool(forge.db(), tool.id).await?;
        bins::delete_tool(forge.db(), tool.id).await?;
        shared::remove_discussions(forge, tool).await
    }
    async fn search_documents(
        &self,
        forge: &Forge,
        project: &Project,
        tool: &ToolInstance,
    ) -> Result<Vec<SearchDoc>> {
        let mut out = Vec::new();
        // Every comment of the tracker in one pass, not one query per ticket.
        let posts = shared::DiscussionTexts::load(forge, tool).await?;
        for t in tickets::all(forge.db(), tool.id).await? {
            if t.moderation != tickets::LIVE {
                continue;
            }
            let comments = posts.of(&t.key(), MAX_INDEXED_COMMENTS);
            let users = private_readers(forge, &t).await?;
            out.push(search_doc(project, tool, &t, &comments, users));
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
        let Some(id) = shared::artifact_id(key, "ticket") else {
            return Ok(None);
        };
        let Some(t) = tickets::by_id(forge.db(), id)
            .await?
            .filter(|t| !t.deleted && t.tool_id == tool.id && t.moderation == tickets::LIVE)
        else {
            return Ok(None);
        };
        let comments =
            crate::discussion::texts(forge, tool, &t.key(), MAX_INDEXED_COMMENTS).await?;
        // The list's free-text filter reads the comments from the ticket: kept here, where
        // every comment change arrives (the discussion re-indexes its artifact).
        if comments != t.comments_text {
            tickets::set_comments_text(forge.db(), t.id, &comments).await?;
        }
        let users = private_readers(forge, &t).await?;
        Ok(Some(search_doc(project, tool, &t, &comments, users)))
    }
    fn ref_kinds(&self) -> &'static [RefKind] {
        &[RefKind::Ticket]
    }
    async fn resolve_refs(
        &self,
        forge: &Forge,
        ctx: &ProjectCtx,
        tool: &ToolInstance,
        targets: &[RefTarget],
        _can_write: bool,
    ) -> Result<Vec<(Resolution, Option<String>)>> {
        let nums: Vec<i64> = targets
            .iter()
            .filter_map(|t| match t {
                RefTarget::Ticket { number, .. } => i64::try_from(*number).ok(),
                _ => None,
            })
            .collect();
        let found = tickets::by_nums(forge.db(), tool.id, &nums).await?;
        Ok(targets
            .iter()
            .map(|t| {
                let RefTarget::Ticket { number, .. } = t else {
                    return (Resolution::Text, None);
                };
                let hit = found
                    .iter()
                    .find(|f| u64::try_from(f.ticket_num).ok() == Some(*number));
                match hit {
                    // Linked for those who may see the ticket (a private or waiting ticket
                    // stays plain text for others, so nothing of it leaks); the backlink is
                    // kept either way, and shown only on the ticket's own page.
                    Some(f) => {
                        let open = !f.private && f.moderation == tickets::LIVE;
                        let resolution = if open || actions::sees_private(ctx, tool) {
                            Resolution::Link {
                                url: actions::ticket_url(ctx, tool, f.ticket_num),
                            }
                        } else {
                            Resolution::Text
                        };
                        (resolution, Some(link_key(tool, f.ticket_num)))
                    }
                    None => (Resolution::Text, None),
                }
            })
            .collect())
    }
    async fn can_read_artifact(
        &self,
        forge: &Forge,
        ctx: &ProjectCtx,
        tool: &ToolInstance,
        key: &str,
    ) -> Result<bool> {
        let Some(id) = shared::artifact_id(key, "ticket") else {
            return Ok(false);
        };
        let Some(t) = tickets::by_id(forge.db(), id)
            .await?
            .filter(|t| t.tool_id == tool.id)
        else {
            return Ok(false);
        };
        let viewer = shared::viewer_of(forge, ctx).await?;
        Ok(actions::visible(&t, &viewer, ctx, tool))
    }
    async fn activity_restricted(
        &self,
        forge: &Forge,
        tool: &ToolInstance,
        key: &str,
    ) -> Result<Option<crate::activity::Restricted>> {
        let Some(id) = shared::artifact_id(key, "ticket") else {
            return Ok(None);
        };
        let t = tickets::by_id(forge.db(), id).await?;
        Ok(t.filter(|t| t.tool_id == tool.id)
            .and_then(|t| actions::restriction(&t)))
    }
    async fn on_commits(
        &self,
        forge: &Forge,
        ctx: &ProjectCtx,
        tool: &ToolInstance,
        pusher: Option<&str>,
        commits: &[PushedCommit],
    ) -> Result<()> {
        actions::close_from_commits(forge, ctx, tool, pusher, commits).await
    }
}

/// The search document of a ticket: summary as title; description, labels, custom field
/// values and comments as text; private tickets only for those who see them.
pub fn search_doc(
    project: &Project,
    tool: &ToolInstance,
    t: &Ticket,
    comments: &str,
    readers: Vec<crate::ids::UserId>,
) -> SearchDoc {
    let custom: Vec<String> = t
        .custom_fields
        .values()
        .map(super::config::value_text)
        .collect();
    SearchDoc {
        id: t.key(),
        kind: "ticket".into(),
        title: format!("#{} {}", t.ticket_num, t.summary),
        text: format!(
            "{}\n{}\n{}\n{}\n{}",
            crate::markdown::to_plain_text(&t.description),
            t.labels.join(" "),
            custom.join(" "),
            t.status,
            comments
        ),
        url: format!("{}{}/{}/", project.url(), tool.mount, t.ticket_num),
        author: Some(t.reported_by.clone()).filter(|a| !a.is_empty()),
        updated: t.modified,
        restricted: t.private.then_some(Restricted {
            permission: tperm::UPDATE,
            users: readers,
        }),
    }
}

/// The accounts that may find a private ticket beside those who see all private tickets:
/// its reporter and assignee.
async fn private_readers(forge: &Forge, t: &Ticket) -> Result<Vec<crate::ids::UserId>> {
    if !t.private {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for name in [Some(t.reported_by.as_str()), t.assigned_to.as_deref()]
        .into_iter()
        .flatten()
    {
        if let Some(u) = crate::users::by_username(forge.db(), name).await? {
            out.push(u.id);
        }
    }
    Ok(out)
}
