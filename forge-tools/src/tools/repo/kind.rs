//! [`GitTool`]: the git repository as a tool kind — creating and archiving repositories, the
//! refresh task after pushes, the commits' search documents, references to commits
//! (`[abc1234]`), the indexes of its collections — and the per-process state it holds: the
//! bound on git processes ([`slots`]).

use std::sync::OnceLock;

use async_trait::async_trait;
use mongodb::Database;

use super::paths::repo_path;
use super::refresh;
use super::slots::GitSlots;
use super::{DEFAULT_BRANCH, KIND};
use crate::acl::perm;
use crate::error::{Error, Result};
use crate::project_ctx::ProjectCtx;
use crate::projects::Project;
use crate::refs::{RefKind, RefTarget, Resolution};
use crate::tool::{Forge, SearchDoc, Tool, ToolInstance, ToolTask};

/// The git tool. Holds this forge's [`GitSlots`] (set up at start from
/// `FORGE_MAX_GIT_PROCESSES`).
#[derive(Default)]
pub struct GitTool {
    slots: OnceLock<GitSlots>,
}

/// The bound on git processes (clone, push, archive, blame) of this forge: the one the git
/// tool of its registry holds.
pub fn slots(forge: &Forge) -> &GitSlots {
    let max = forge.config().max_git_processes;
    match forge.tools().find::<GitTool>() {
        Some(tool) => tool.slots.get_or_init(|| GitSlots::new(max)),
        None => {
            // A registry without the git tool: git is still bounded, by one set of slots for
            // the process.
            static UNREGISTERED: OnceLock<GitSlots> = OnceLock::new();
            UNREGISTERED.get_or_init(|| GitSlots::new(max))
        }
    }
}

/// The tasks of the git tool.
const TASKS: &[ToolTask] = &[ToolTask {
    name: refresh::TASK,
    exclusive: false,
}];

fn git_err(e: git2::Error) -> Error {
    Error::Internal(format!("git: {}", e.message()))
}

#[async_trait]
impl Tool for GitTool {
    fn kind(&self) -> &'static str {
        KIND
    }
    fn title(&self) -> &'static str {
        "Git repository"
    }
    fn default_label(&self) -> &'static str {
        "Code"
    }
    fn default_mount(&self) -> &'static str {
        "code"
    }
    fn kept(&self, max_bytes: u64) -> Vec<std::sync::Arc<dyn crate::readmodel::Kept>> {
        vec![
            super::views::kept(max_bytes * 15 / 16),
            super::views::refs_kept(max_bytes / 16),
        ]
    }
    /// A push announces `push` (branches) and `tag` (tags) events (see `super::webhook`);
    /// comments on commits are no webhook event.
    fn webhook_events(&self) -> &'static [&'static str] {
        &[super::webhook::PUSH, super::webhook::TAG]
    }
    fn permissions(&self) -> &'static [&'static str] {
        // read: clone and browse; write: push; the discussion's, for comments on commits.
        use crate::discussion::perm as discuss;
        &[
            perm::READ,
            perm::WRITE,
            discuss::POST,
            discuss::UNMODERATED_POST,
            discuss::MODERATE,
            perm::ADMIN,
        ]
    }
    fn default_acl(&self) -> Vec<crate::acl::Ace> {
        crate::discussion::default_acl()
    }
    fn install_by_default(&self) -> bool {
        true
    }
    /// A reply to the mail about a commit's comment joins that commit's discussion (which the
    /// comment mailed about created).
    async fn reply_by_mail(
        &self,
        forge: &Forge,
        viewer: &crate::viewer::Viewer,
        ctx: &ProjectCtx,
        tool: &ToolInstance,
        artifact: &str,
        post: crate::discussion::NewPost,
    ) -> Result<crate::discussion::Post> {
        ctx.authorize_tool(tool, perm::READ)?;
        let thread = match artifact.strip_prefix(&format!("commit:{}:", tool.id)) {
            Some(_) => crate::discussion::existing_thread(forge, tool, artifact).await?,
            None => None,
        }
        .ok_or(Error::NotFound("commit discussion"))?;
        crate::discussion::post(forge, viewer, ctx, tool, &thread, post).await
    }
    async fn ensure_indexes(&self, db: &Database) -> Result<()> {
        refresh::ensure_indexes(db).await
    }
    async fn start(&self, forge: &Forge) -> Result<()> {
        let max = forge.config().max_git_processes;
        self.slots.get_or_init(|| GitSlots::new(max));
        Ok(())
    }
    fn tasks(&self) -> &'static [ToolTask] {
        TASKS
    }
    async fn run_task(&self, forge: &Forge, task: &str, args: &serde_json::Value) -> Result<()> {
        if task != refresh::TASK {
            return Err(Error::invalid(
                "task",
                format!("the git tool has no task {task:?}"),
            ));
        }
        let report = refresh::run(forge, args).await?;
        tracing::info!(
            new_commits = report.new_commits,
            refs = report.refs,
            "repository refreshed"
        );
        Ok(())
    }
    fn ref_kinds(&self) -> &'static [RefKind] {
        &[RefKind::Commit]
    }
    /// A commit id (7 to 40 hex digits) of a recorded commit links to its page; the key is
    /// the commit's (`commit:<tool id>:<sha>`, as its search document and the links its
    /// message makes). Unknown or ambiguous ids stay text, and so does every id for a viewer
    /// who may not read the repository (the key is still given: it says nothing to them).
    async fn resolve_refs(
        &self,
        forge: &Forge,
        ctx: &ProjectCtx,
        tool: &ToolInstance,
        targets: &[RefTarget],
        _can_write: bool,
    ) -> Result<Vec<(Resolution, Option<String>)>> {
        let ids: Vec<&str> = targets
            .iter()
            .map(|t| match t {
                RefTarget::Commit { id, .. } => id.as_str(),
                _ => "",
            })
            .collect();
        let found = refresh::find_by_prefixes(forge.db(), tool.id, &ids).await?;
        let can_read = ctx.can_tool(tool, perm::READ);
        Ok(found
            .into_iter()
            .map(|sha| match sha {
                Some(sha) => {
                    let resolution = if can_read {
                        Resolution::Link {
                            url: refresh::commit_url(&ctx.project, tool, &sha),
                        }
                    } else {
                        Resolution::Text
                    };
                    (resolution, Some(refresh::commit_key(tool, &sha)))
                }
                None => (Resolution::Text, None),
            })
            .collect())
    }
    async fn install(&self, forge: &Forge, _project: &Project, tool: &ToolInstance) -> Result<()> {
        let path = repo_path(forge.config(), tool);
        tokio::task::spawn_blocking(move || -> Result<()> {
            std::fs::create_dir_all(&path)
                .map_err(|e| Error::Internal(format!("creating repository: {e}")))?;
            let repo = git2::Repository::init_bare(&path).map_err(git_err)?;
            repo.set_head(&format!("refs/heads/{DEFAULT_BRANCH}"))
                .map_err(git_err)?;
            // Pushes over HTTP are authorized by the forge, not by git's own checks.
            let mut cfg = repo.config().map_err(git_err)?;
            cfg.set_bool("http.receivepack", true).map_err(git_err)?;
            cfg.set_bool("uploadpack.allowFilter", true)
                .map_err(git_err)?;
            cfg.set_bool("uploadpack.allowAnySHA1InWant", true)
                .map_err(git_err)?;
            cfg.set_bool("repack.writeBitmaps", true).map_err(git_err)?;
            cfg.set_bool("receive.denyNonFastForwards", false)
                .map_err(git_err)?;
            Ok(())
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
    }
    async fn search_documents(
        &self,
        forge: &Forge,
        project: &Project,
        tool: &ToolInstance,
    ) -> Result<Vec<SearchDoc>> {
        refresh::search_docs(forge.db(), project, tool).await
    }
    async fn search_document(
        &self,
        forge: &Forge,
        project: &Project,
        tool: &ToolInstance,
        key: &str,
    ) -> Result<Option<SearchDoc>> {
        let found = self
            .search_documents_for(forge, project, tool, &[key.to_owned()])
            .await?;
        Ok(found.into_iter().next().flatten())
    }
    async fn search_documents_for(
        &self,
        forge: &Forge,
        project: &Project,
        tool: &ToolInstance,
        keys: &[String],
    ) -> Result<Vec<Option<SearchDoc>>> {
        let ids: Vec<&str> = keys
            .iter()
            .filter_map(|k| k.strip_prefix("commit:"))
            .collect();
        let mut found: std::collections::HashMap<String, SearchDoc> =
            refresh::search_docs_by_ids(forge.db(), project, tool, &ids)
                .await?
                .into_iter()
                .map(|d| (d.id.clone(), d))
                .collect();
        Ok(keys.iter().map(|k| found.remove(k)).collect())
    }
    async fn uninstall(
        &self,
        forge: &Forge,
        _project: &Project,
        tool: &ToolInstance,
    ) -> Result<()> {
        refresh::forget(forge.db(), tool.id).await?;
        // Comments on commits (and their files) go with the tool.
        crate::tool::shared::remove_discussions(forge, tool).await?;
        let path = repo_path(forge.config(), tool);
        // Keep the data: move the repository aside instead of deleting it.
        let removed = forge.config().data_dir.join("repos-removed");
        let stamp = bson::DateTime::now().timestamp_millis();
        tokio::task::spawn_blocking(move || {
            if path.exists() {
                std::fs::create_dir_all(&removed)?;
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                std::fs::rename(&path, removed.join(format!("{stamp}-{name}")))?;
            }
            Ok::<(), std::io::Error>(())
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(format!("archiving repository: {e}")))
    }
}
