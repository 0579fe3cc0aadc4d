//! The tool framework: what a tool kind (wiki, tracker, forum, git, link...) provides, and the
//! registry of kinds. Each kind lives in its own folder of this crate; its web routes live in
//! `forge-web` under the same kind name.

pub mod instance;

use std::sync::Arc;

use async_trait::async_trait;
use bson::{DateTime, Document};

use crate::Forge;
use crate::acl::{Ace, perm};
use crate::error::Result;
use crate::events::Event;
use crate::projects::Project;
pub use instance::ToolInstance;

/// An entry of a tool's menu in the project navigation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NavEntry {
    pub label: String,
    pub url: String,
}

/// What a tool offers the search index; `crate::search::indexer` adds project, tool and access.
#[derive(Debug, Clone)]
pub struct SearchDoc {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub text: String,
    pub url: String,
    pub author: Option<String>,
    pub updated: DateTime,
}

/// One tool kind.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// Stable identifier stored on instances (`wiki`, `git`...).
    fn kind(&self) -> &'static str;
    /// Name shown when choosing a tool to install.
    fn title(&self) -> &'static str;
    fn default_label(&self) -> &'static str;
    fn default_mount(&self) -> &'static str;
    /// Permissions this tool checks, shown on its permission page.
    fn permissions(&self) -> &'static [&'static str] {
        &[perm::READ, perm::WRITE, perm::MODERATE, perm::ADMIN]
    }
    /// Entries a new instance's ACL starts with (checked before the project's).
    fn default_acl(&self) -> Vec<Ace> {
        Vec::new()
    }
    /// Whether new projects get this tool.
    fn install_by_default(&self) -> bool {
        false
    }
    /// Checks and normalises the options given at install time.
    fn options(&self, given: &serde_json::Value) -> Result<Document> {
        let _ = given;
        Ok(Document::new())
    }
    /// Called once the instance document exists (create repositories, first pages...).
    async fn install(&self, forge: &Forge, project: &Project, tool: &ToolInstance) -> Result<()> {
        let _ = (forge, project, tool);
        Ok(())
    }
    /// Called before the instance document is removed.
    async fn uninstall(&self, forge: &Forge, project: &Project, tool: &ToolInstance) -> Result<()> {
        let _ = (forge, project, tool);
        Ok(())
    }
    /// Menu entries for the project navigation.
    fn nav(&self, project: &Project, tool: &ToolInstance) -> Vec<NavEntry> {
        vec![NavEntry {
            label: tool.label.clone(),
            url: format!("{}{}/", project.url(), tool.mount),
        }]
    }
    /// Every document of this instance for the search index.
    async fn search_documents(
        &self,
        forge: &Forge,
        project: &Project,
        tool: &ToolInstance,
    ) -> Result<Vec<SearchDoc>> {
        let _ = (forge, project, tool);
        Ok(Vec::new())
    }
    /// One document by its key (a `SearchDoc::id` this tool produced); `None` when it is gone
    /// (deleted), so the index drops it.
    async fn search_document(
        &self,
        forge: &Forge,
        project: &Project,
        tool: &ToolInstance,
        key: &str,
    ) -> Result<Option<SearchDoc>> {
        let _ = (forge, project, tool, key);
        Ok(None)
    }
    /// Several documents by key, in order (`None` for each one gone). The default asks one by
    /// one; tools with many small artifacts (commits) fetch them in one query.
    async fn search_documents_for(
        &self,
        forge: &Forge,
        project: &Project,
        tool: &ToolInstance,
        keys: &[String],
    ) -> Result<Vec<Option<SearchDoc>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.search_document(forge, project, tool, key).await?);
        }
        Ok(out)
    }
    /// Called for project events the tool may react to (renames, deletion...).
    async fn on_event(
        &self,
        forge: &Forge,
        project: &Project,
        tool: &ToolInstance,
        event: &Event,
    ) -> Result<()> {
        let _ = (forge, project, tool, event);
        Ok(())
    }
}

/// The tool kinds this build knows, in menu order (new projects get their default tools in
/// this order).
#[derive(Clone, Default)]
pub struct ToolRegistry {
    kinds: Vec<Arc<dyn Tool>>,
}

impl ToolRegistry {
    /// Every tool kind shipped with the forge.
    pub fn builtin() -> Self {
        let mut r = Self::default();
        r.register(crate::wiki::WikiTool);
        r.register(crate::repo::GitTool);
        r.register(crate::link::LinkTool);
        r
    }

    pub fn register(&mut self, tool: impl Tool) {
        self.kinds.retain(|t| t.kind() != tool.kind());
        self.kinds.push(Arc::new(tool));
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Tool>> {
        self.kinds.iter().find(|t| t.kind() == kind)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Tool>> {
        self.kinds.iter()
    }
}
