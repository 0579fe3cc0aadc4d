//! The git repository tool: bare repositories under the data dir (the path comes from the tool
//! id, never from user input), served over smart HTTP by `forge-web`, browsed through git2, and
//! refreshed after each push by a task that records the new commits in the store.

pub mod browse;
pub mod refresh;

use std::path::PathBuf;

use async_trait::async_trait;

use crate::acl::perm;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::forge::Forge;
use crate::projects::Project;
use crate::tool::{Tool, ToolInstance};

pub const KIND: &str = "git";
pub const DEFAULT_BRANCH: &str = "main";

pub struct GitTool;

/// Where a repository lives: `<data dir>/repos/<tool id>.git`.
pub fn repo_path(config: &Config, tool: &ToolInstance) -> PathBuf {
    config
        .data_dir
        .join("repos")
        .join(format!("{}.git", tool.id))
}

/// The public clone URL of a repository tool.
pub fn clone_url(config: &Config, project: &Project, tool: &ToolInstance) -> String {
    format!(
        "{}/git/{}/{}/{}.git",
        config.base_url(),
        project.neighborhood.prefix(),
        project.shortname,
        tool.mount
    )
}

/// Starts `git archive` of `commit` (an id already resolved, never a name from a URL) in
/// `tar.gz` or `zip` format with every path under `prefix`; the caller streams its stdout.
pub fn archive(
    config: &Config,
    tool: &ToolInstance,
    commit: git2::Oid,
    format: &str,
    prefix: &str,
) -> Result<tokio::process::Child> {
    if !matches!(format, "tar.gz" | "zip") {
        return Err(Error::NotFound("archive"));
    }
    tokio::process::Command::new("git")
        .arg("--git-dir")
        .arg(repo_path(config, tool))
        .arg("archive")
        .arg(format!("--format={format}"))
        .arg(format!("--prefix={prefix}"))
        .arg(commit.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::Internal(format!("git archive: {e}")))
}

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
    fn permissions(&self) -> &'static [&'static str] {
        // read: clone and browse; write: push.
        &[perm::READ, perm::WRITE, perm::ADMIN]
    }
    fn install_by_default(&self) -> bool {
        true
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
    ) -> Result<Vec<crate::tool::SearchDoc>> {
        refresh::search_docs(forge.db(), project, tool).await
    }
    async fn search_document(
        &self,
        forge: &Forge,
        project: &Project,
        tool: &ToolInstance,
        key: &str,
    ) -> Result<Option<crate::tool::SearchDoc>> {
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
    ) -> Result<Vec<Option<crate::tool::SearchDoc>>> {
        let ids: Vec<&str> = keys
            .iter()
            .filter_map(|k| k.strip_prefix("commit:"))
            .collect();
        let mut found: std::collections::HashMap<String, crate::tool::SearchDoc> =
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
