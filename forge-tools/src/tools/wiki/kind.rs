//! [`WikiTool`]: the wiki as a tool kind — what it installs and removes, its permissions, its
//! collections' indexes, the search documents of its pages, and the backlink keys other tools'
//! references to its pages use.

use async_trait::async_trait;
use bson::{Document, doc};
use mongodb::Database;

use super::pages::{self, Edit, Page};
use super::urls::{link_key, page_url};
use super::{DEFAULT_HOME, DELETE, KIND};
use crate::acl::{Ace, Principal, perm};
use crate::error::Result;
use crate::projects::Project;
use crate::tool::{Forge, SearchDoc, Tool, ToolInstance};

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
    fn permissions(&self) -> &'static [&'static str] {
        &[perm::READ, perm::WRITE, DELETE, perm::ADMIN]
    }
    fn default_acl(&self) -> Vec<Ace> {
        // Members may create and edit pages; developers may also delete them.
        vec![
            Ace::allow(Principal::Member, perm::WRITE),
            Ace::allow(Principal::Developer, DELETE),
        ]
    }
    fn install_by_default(&self) -> bool {
        true
    }
    async fn ensure_indexes(&self, db: &Database) -> Result<()> {
        pages::ensure_indexes(db).await
    }
    fn ref_key(&self, tool: &ToolInstance, name: &str) -> Option<String> {
        Some(link_key(tool, name))
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
        forge.attachments().delete_tool(forge.db(), tool.id).await?;
        Ok(())
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
        let Some(id) = key
            .strip_prefix("wiki:")
            .and_then(|id| bson::oid::ObjectId::parse_str(id).ok())
        else {
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
