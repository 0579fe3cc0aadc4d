//! [`WikiTool`]: the wiki as a tool kind — what it installs and removes, its permissions, its
//! collections' indexes, the search documents of its pages, and the references to its pages
//! (`[Page]`, `[wiki:Page]`) wherever they are written: how they render and their backlink keys.

use async_trait::async_trait;
use bson::{Document, doc};
use mongodb::Database;

use super::pages::{self, Edit, Page};
use super::urls::{link_key, page_url};
use super::{DEFAULT_HOME, DELETE, KIND};
use crate::acl::{Ace, Principal, perm};
use crate::error::Result;
use crate::project_ctx::ProjectCtx;
use crate::projects::Project;
use crate::refs::{RefKind, RefTarget, Resolution};
use crate::tool::{Forge, SearchDoc, Tool, ToolInstance, shared};

pub struct WikiTool;

#[async_trait]
impl Tool for WikiTool {
    fn kind(&self) -> &'static str {
        KIND
    }
    fn title(&self) -> &'static str {
        "Wiki"
    }
    fn default_label(&self) -> &'static str {
        "Wiki"
    }
    fn default_mount(&self) -> &'static str {
        "wiki"
    }
    fn webhook_events(&self) -> &'static [&'static str] {
        &["wiki"]
    }
    /// A page created, edited, renamed or commented on is a `wiki` webhook event.
    fn change_event(&self) -> Option<&'static str> {
        Some("wiki")
    }
    fn kept(&self, max_bytes: u64) -> Vec<std::sync::Arc<dyn crate::readmodel::Kept>> {
        use crate::readmodel::memo::kind;
        vec![
            kind(pages::MEMO_PAGES, pages::PAGES, max_bytes * 4 / 5),
            kind(pages::MEMO_REDIRECTS, pages::REDIRECTS, max_bytes / 5),
        ]
    }
    fn permissions(&self) -> &'static [&'static str] {
        use crate::discussion::perm as discuss;
        &[
            perm::READ,
            perm::WRITE,
            DELETE,
            discuss::POST,
            discuss::UNMODERATED_POST,
            discuss::MODERATE,
            perm::ADMIN,
        ]
    }
    fn default_acl(&self) -> Vec<Ace> {
        // Members may create and edit pages; developers may also delete them. Pages have
        // comments: the discussion's entries.
        let mut acl = vec![
            Ace::allow(Principal::Member, perm::WRITE),
            Ace::allow(Principal::Developer, DELETE),
        ];
        acl.extend(crate::discussion::default_acl());
        acl
    }
    fn install_by_default(&self) -> bool {
        true
    }
    async fn reply_by_mail(
        &self,
        forge: &Forge,
        viewer: &crate::viewer::Viewer,
        ctx: &ProjectCtx,
        tool: &ToolInstance,
        artifact: &str,
        post: crate::discussion::NewPost,
    ) -> Result<crate::discussion::Post> {
        super::actions::comment(forge, viewer, ctx, tool, artifact, post).await
    }
    async fn ensure_indexes(&self, db: &Database) -> Result<()> {
        pages::ensure_indexes(db).await
    }
    fn ref_key(&self, tool: &ToolInstance, name: &str) -> Option<String> {
        Some(link_key(tool, name))
    }
    fn ref_kinds(&self) -> &'static [RefKind] {
        &[RefKind::Artifact]
    }
    async fn resolve_refs(
        &self,
        forge: &Forge,
        ctx: &ProjectCtx,
        tool: &ToolInstance,
        targets: &[RefTarget],
        can_write: bool,
    ) -> Result<Vec<(Resolution, Option<String>)>> {
        resolve_pages(forge, ctx, tool, targets, can_write).await
    }
    fn options(&self, _given: &serde_json::Value) -> Result<Document> {
        Ok(doc! {"home": DEFAULT_HOME})
    }
    async fn install(&self, forge: &Forge, project: &Project, tool: &ToolInstance) -> Result<()> {
        let text = format!(
            "# {}\n\nWelcome to the wiki of **{}**. Edit this page to tell people what the project is about; \
             link other pages with `[PageName]`.\n",
            DEFAULT_HOME, project.name
        );
        let edit = Edit {
            text,
            labels: Vec::new(),
            comment: "Created with the wiki".into(),
            base_version: 0,
        };
        pages::save(forge.db(), tool.id, DEFAULT_HOME, edit, "").await?;
        Ok(())
    }
    async fn uninstall(
        &self,
        forge: &Forge,
        _project: &Project,
        tool: &ToolInstance,
    ) -> Result<()> {
        pages::delete_tool(forge.db(), tool.id).await?;
        shared::remove_discussions(forge, tool).await
    }
    async fn search_documents(
        &self,
        forge: &Forge,
        project: &Project,
        tool: &ToolInstance,
    ) -> Result<Vec<SearchDoc>> {
        let all = pages::all_with_text(forge.db(), tool.id).await?;
        // Markdown to plain text is CPU work proportional to the pages: off the async threads.
        let (project, tool) = (project.clone(), tool.clone());
        crate::heavy::run(move || all.iter().map(|p| search_doc(&project, &tool, p)).collect())
            .await
    }
    async fn search_document(
        &self,
        forge: &Forge,
        project: &Project,
        tool: &ToolInstance,
        key: &str,
    ) -> Result<Option<SearchDoc>> {
        let Some(id) = shared::artifact_id(key, "wiki") else {
            return Ok(None);
        };
        let Some(page) = pages::by_id(forge.db(), id)
            .await?
            .filter(|p| !p.deleted && p.tool_id == tool.id)
        else {
            return Ok(None);
        };
        let (project, tool) = (project.clone(), tool.clone());
        crate::heavy::run(move || Some(search_doc(&project, &tool, &page))).await
    }
}

/// Resolves references to pages of the wiki `tool` (the platform hands it those addressed
/// here): existing pages (or former names, which redirect) link to the page under its current
/// name; missing ones are "create" links for viewers who may write both where the text is
/// written (`can_write`) and in this wiki, else text. Every page named gets its backlink key,
/// whether or not it exists (creating it later shows the links made before). Pages are looked
/// up in one query. A viewer who may not read this wiki learns nothing: the links are made
/// without a look-up.
async fn resolve_pages(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    targets: &[RefTarget],
    can_write: bool,
) -> Result<Vec<(Resolution, Option<String>)>> {
    let names: Vec<Option<&str>> = targets
        .iter()
        .map(|t| match t {
            RefTarget::Artifact {
                project: None,
                name,
                ..
            } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let can_read = ctx.can_tool(tool, perm::READ);
    let mut wanted: Vec<String> = Vec::new();
    for name in names.iter().flatten() {
        if !wanted.iter().any(|w| w == name) {
            wanted.push((*name).to_owned());
        }
    }
    let found = if can_read && !wanted.is_empty() {
        pages::existing(forge.db(), tool.id, &wanted).await?
    } else {
        Vec::new()
    };
    let may_create = can_write && ctx.can_tool(tool, perm::WRITE);
    Ok(names
        .into_iter()
        .map(|name| {
            let Some(name) = name else {
                return (Resolution::Text, None);
            };
            let hit = found.iter().find(|(asked, _)| asked == name);
            let resolution = match hit {
                _ if !can_read => Resolution::Link {
                    url: page_url(&ctx.project, tool, name),
                },
                Some((_, current)) => Resolution::Link {
                    url: page_url(&ctx.project, tool, current),
                },
                None if may_create => Resolution::Create {
                    url: format!("{}edit", page_url(&ctx.project, tool, name)),
                },
                None => Resolution::Text,
            };
            (resolution, Some(link_key(tool, name)))
        })
        .collect())
}

/// The search document of one page.
/// (`kind` is the type users filter on: `wiki`.)
pub fn search_doc(project: &Project, tool: &ToolInstance, page: &Page) -> SearchDoc {
    SearchDoc {
        restricted: None,
        id: format!("wiki:{}", page.id),
        kind: "wiki".into(),
        title: page.name.clone(),
        text: format!(
            "{}\n{}",
            crate::markdown::to_plain_text(&page.text),
            page.labels.join(" ")
        ),
        url: page_url(project, tool, &page.name),
        author: Some(page.author.clone()).filter(|a| !a.is_empty()),
        updated: page.updated,
    }
}
