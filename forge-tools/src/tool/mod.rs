//! The tool framework: what a tool kind (wiki, tracker, forum, git, link...) provides, and the
//! registry of kinds. The platform (the domain handle's actions, search, notifications, the
//! task handlers) calls tools only through the [`Tool`] trait and a [`ToolRegistry`], never by
//! name. Each kind lives in its own folder under `crate::tools` (which also builds the
//! registry of the kinds shipped); its web routes live in `forge-web` under the same kind name.
//!
//! [`Forge`] is defined here: the tools receive the domain handle and the handle holds the
//! tools, so the handle ([`crate::handle::Handle`]) is generic and this module fixes its tool
//! set.

/// Tool instances are stored below the tool framework (the project context uses them).
pub use crate::instances as instance;
pub mod shared;
pub mod xref;

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use bson::{DateTime, Document};
use mongodb::Database;

use crate::acl::{Ace, perm};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::handle::Handle;
use crate::project_ctx::ProjectCtx;
use crate::projects::Project;
use crate::refs::{RefKind, RefTarget, Resolution};
pub use instance::ToolInstance;

/// The domain handle: the store, the event log, the task queue, the search index... and the
/// tools of this forge. Cheap to clone. Its actions (accounts, projects, members, installing
/// tools) are in `crate::forge`.
pub type Forge = Handle<ToolRegistry>;

/// Logs an event of a tool's instance (`{type, context: project, mount, user, ip, extra}`),
/// as the viewer `ctx` describes did it.
pub fn record_event(
    forge: &Forge,
    kind: &str,
    viewer: &crate::viewer::Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    extra: Document,
) {
    forge.events().record(
        kind,
        viewer.event_context(Some(&ctx.project), Some(&tool.mount)),
        bson::Bson::Document(extra),
    );
}

/// Logs an event that is also activity (see `crate::activity`): `extra` with the activity's
/// title, URL, summary and restriction added.
pub fn record_activity(
    forge: &Forge,
    kind: &str,
    viewer: &crate::viewer::Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    activity: crate::activity::Activity,
    extra: Document,
) {
    record_event(forge, kind, viewer, ctx, tool, activity.into_extra(extra));
}

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
    /// Narrower readers than the tool's (a private ticket); `None`: whoever may read the tool.
    pub restricted: Option<Restricted>,
}

/// Who may find a restricted search document: those holding `permission` on the tool, and
/// these accounts (when they may read the tool).
#[derive(Debug, Clone)]
pub struct Restricted {
    pub permission: &'static str,
    pub users: Vec<crate::ids::UserId>,
}

/// A commit pushed to a repository, as other tools hear of it.
#[derive(Debug, Clone)]
pub struct PushedCommit {
    pub sha: String,
    pub message: String,
    pub author: String,
    /// Path of the commit's page.
    pub url: String,
}

/// A background task a tool defines. The task runner registers it by name (see
/// `crate::jobs`) and calls [`Tool::run_task`] of the tool of that kind with its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolTask {
    pub name: &'static str,
    /// Only the process holding some single resource may run it (see
    /// `forge_tasks::Registry::register_exclusive`).
    pub exclusive: bool,
}

/// One tool kind. The value registered is the tool for the life of its [`Forge`]: per-process
/// state a tool needs (limits, caches) lives in its fields, set up by [`Tool::start`], and the
/// tool's own module reaches it with [`ToolRegistry::find`].
#[async_trait]
pub trait Tool: Any + Send + Sync {
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
    /// Creates the indexes of this tool's collections; called when the domain opens (before
    /// anything else touches them).
    async fn ensure_indexes(&self, db: &Database) -> Result<()> {
        let _ = db;
        Ok(())
    }
    /// What this tool keeps in the read model (its memos: [`crate::readmodel::memo`]), within
    /// `max_bytes` in all; the forge registers them when it opens.
    fn kept(&self, max_bytes: u64) -> Vec<std::sync::Arc<dyn crate::readmodel::Kept>> {
        let _ = max_bytes;
        Vec::new()
    }
    /// Start-up work once the domain is open, such as setting up per-process state. Called
    /// once per [`Forge`], before it is handed out.
    async fn start(&self, forge: &Forge) -> Result<()> {
        let _ = forge;
        Ok(())
    }
    /// The background tasks this tool defines.
    fn tasks(&self) -> &'static [ToolTask] {
        &[]
    }
    /// Runs one of [`Tool::tasks`] by name. Must be idempotent: a task may run more than once.
    async fn run_task(&self, forge: &Forge, task: &str, args: &serde_json::Value) -> Result<()> {
        let _ = (forge, args);
        Err(Error::invalid(
            "task",
            format!("the {} tool has no task {task:?}", self.kind()),
        ))
    }
    /// The webhook events this tool announces (`push`, `wiki`...): what a project's webhooks
    /// may subscribe to (see `crate::webhooks`). None by default.
    fn webhook_events(&self) -> &'static [&'static str] {
        &[]
    }
    /// The webhook event (one of [`Tool::webhook_events`]) that a change watchers are told of
    /// (`crate::notify::Change`: a page edited, a ticket changed, a post...) in one of this
    /// tool's instances is; `None`: such changes are no webhook event.
    fn change_event(&self) -> Option<&'static str> {
        None
    }
    /// The backlink key of the artifact called `name` in one of this tool's instances, for a
    /// cross-reference (`[mount:Name]`) another tool's artifact makes; `None` when the tool
    /// has no artifacts others link to by name.
    fn ref_key(&self, tool: &ToolInstance, name: &str) -> Option<String> {
        let _ = (tool, name);
        None
    }
    /// The sorts of reference (`[Page]`, `[#12]`, `[abc1234]`) this tool's artifacts answer.
    fn ref_kinds(&self) -> &'static [RefKind] {
        &[]
    }
    /// Resolves references addressed to instance `tool` (one of [`Tool::ref_kinds`]), in
    /// order: how each renders for the viewer `ctx` describes, and the backlink key of what it
    /// names. `can_write`: the viewer may create missing artifacts where the text is written.
    async fn resolve_refs(
        &self,
        forge: &Forge,
        ctx: &ProjectCtx,
        tool: &ToolInstance,
        targets: &[RefTarget],
        can_write: bool,
    ) -> Result<Vec<(Resolution, Option<String>)>> {
        let _ = (forge, ctx, tool, can_write);
        Ok(targets.iter().map(|_| (Resolution::Text, None)).collect())
    }
    /// Whether the viewer `ctx` describes may read the artifact with this key (one of the
    /// tool's search keys, which discussions are attached to). Tools with artifacts hidden
    /// from some readers (private tickets) say no for them; the rest are readable by anyone
    /// who may read the tool.
    async fn can_read_artifact(
        &self,
        forge: &Forge,
        ctx: &ProjectCtx,
        tool: &ToolInstance,
        key: &str,
    ) -> Result<bool> {
        let _ = (forge, key);
        Ok(ctx.can_tool(tool, perm::READ))
    }
    /// Who may see activity about the artifact with this key when fewer than the tool's
    /// readers may (a private ticket: its restriction, as on its search document); `None`:
    /// whoever may read the tool. Asked when a comment on the artifact is recorded.
    async fn activity_restricted(
        &self,
        forge: &Forge,
        tool: &ToolInstance,
        key: &str,
    ) -> Result<Option<crate::activity::Restricted>> {
        let _ = (forge, tool, key);
        Ok(None)
    }
    /// Told of commits pushed to the default branch of a repository in the same project
    /// (`pusher` is the account that pushed), e.g. to close tickets a message says it fixes.
    /// A refresh that stops partway tells again: hooks must tolerate hearing of a commit twice.
    async fn on_commits(
        &self,
        forge: &Forge,
        ctx: &ProjectCtx,
        tool: &ToolInstance,
        pusher: Option<&str>,
        commits: &[PushedCommit],
    ) -> Result<()> {
        let _ = (forge, ctx, tool, pusher, commits);
        Ok(())
    }
    /// Told when a post in one of this tool's discussion threads goes live (`delta` 1: posted
    /// or approved) or stops being live (-1: deleted, marked spam), after the thread's own
    /// counters changed: tools that keep counters of their own (the forum's topics and
    /// forums) update them here, on write.
    async fn on_post_change(
        &self,
        _forge: &Forge,
        _ctx: &ProjectCtx,
        _tool: &ToolInstance,
        _thread: &crate::discussion::Thread,
        _post: &crate::discussion::Post,
        _delta: i64,
    ) -> Result<()> {
        Ok(())
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
    /// Posts a reply that came by mail (`forge mail-in`, through a notification's signed
    /// `Reply-To`) on the artifact with this key, as `viewer`, the person the notification
    /// was sent to: the same action as the tool's web comment, with its permission checks,
    /// history and mail. The default refuses: this tool takes no replies by mail.
    #[allow(clippy::too_many_arguments)]
    async fn reply_by_mail(
        &self,
        forge: &Forge,
        viewer: &crate::viewer::Viewer,
        ctx: &ProjectCtx,
        tool: &ToolInstance,
        artifact: &str,
        post: crate::discussion::NewPost,
    ) -> Result<crate::discussion::Post> {
        let _ = (forge, viewer, ctx, tool, artifact, post);
        Err(Error::bad_request(format!(
            "{} ({} tool) takes no replies by mail",
            tool.label,
            self.kind()
        )))
    }
    /// Posts a mail sent to one of this tool's own addresses,
    /// `<local_part>@<mount>.<project>.<mail domain>` (a forum's posting address), e.g. as a
    /// new topic titled `subject`. `viewer` is the account whose address the mail's `From`
    /// names, or anonymous when none does; `sender_verified` says an account was found (its
    /// address counts as verified: the forge has no separate address check). The default
    /// refuses: the tool has no such address (`NotFound`, so the mail bounces as unknown).
    #[allow(clippy::too_many_arguments)]
    async fn mail_to_address(
        &self,
        forge: &Forge,
        viewer: &crate::viewer::Viewer,
        ctx: &ProjectCtx,
        tool: &ToolInstance,
        local_part: &str,
        subject: &str,
        post: crate::discussion::NewPost,
        sender_verified: bool,
    ) -> Result<crate::discussion::Post> {
        let _ = (
            forge,
            viewer,
            ctx,
            tool,
            local_part,
            subject,
            post,
            sender_verified,
        );
        Err(Error::NotFound("mail address"))
    }
}

/// The tool kinds this build knows, in menu order (new projects get their default tools in
/// this order). `ToolRegistry::builtin()` (in `crate::tools`) lists the kinds shipped.
///
/// Cloning shares the tools (and so their per-process state): give each [`Forge`] a registry
/// of its own.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    kinds: Vec<Arc<dyn Tool>>,
}

impl ToolRegistry {
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

    /// The registered tool of type `T`: how a tool's own module reaches the state its value
    /// holds.
    pub fn find<T: Tool>(&self) -> Option<&T> {
        self.kinds.iter().find_map(|t| {
            let any: &dyn Any = t.as_ref();
            any.downcast_ref::<T>()
        })
    }
}
