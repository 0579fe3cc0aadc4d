//! The git repository tool: bare repositories under the data dir (the path comes from the tool
//! id, never from user input), served over smart HTTP by `forge-web`, browsed through git2, and
//! refreshed after each push by a task that records the new commits in the store.

pub mod browse;
pub mod pktline;
pub mod refresh;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// How long a request waits for a free git process slot before it is told to come back.
pub const SLOT_WAIT: Duration = Duration::from_secs(1);
/// What a request that finds every git slot taken is told.
pub const BUSY: &str =
    "Too many git operations are running on this server right now; try again in a few seconds.";
/// The longest a blame may run.
const BLAME_TIME: Duration = Duration::from_secs(20);
/// Most bytes of `git blame --porcelain` output read (a capped file makes far less).
const MAX_BLAME_OUTPUT: u64 = 32 << 20;

/// The bound on git processes running at once (`FORGE_MAX_GIT_PROCESSES`): every clone,
/// fetch, push, ref advertisement, archive and blame holds a slot while its process lives.
#[derive(Debug, Clone)]
pub struct GitSlots(Arc<Semaphore>);

/// One git process slot; freed when dropped.
#[derive(Debug)]
pub struct GitPermit(#[allow(dead_code)] OwnedSemaphorePermit);

impl GitSlots {
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max.max(1))))
    }

    /// A slot, waiting at most [`SLOT_WAIT`]; `Busy` when none frees up.
    pub async fn acquire(&self) -> Result<GitPermit> {
        match tokio::time::timeout(SLOT_WAIT, self.0.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(GitPermit(permit)),
            Ok(Err(_)) => Err(Error::Internal("git process slots closed".into())),
            Err(_) => Err(Error::Busy(BUSY.into())),
        }
    }

    /// Slots free right now.
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }
}

/// The output of a running git process, holding the process and its slot: dropping it (the
/// client went away) kills the process at once and frees the slot.
pub struct GitOutput {
    stdout: tokio::process::ChildStdout,
    /// Spawned with `kill_on_drop`.
    _child: tokio::process::Child,
    _permit: GitPermit,
}

impl tokio::io::AsyncRead for GitOutput {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stdout).poll_read(cx, buf)
    }
}

/// `git` with a clean environment, on the repository's own directory.
fn git_command(config: &Config, tool: &ToolInstance) -> tokio::process::Command {
    let path = repo_path(config, tool);
    let mut cmd = tokio::process::Command::new("git");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &path)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .arg("--git-dir")
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Starts `git archive` of `commit` (an id already resolved, never a name from a URL) in
/// `tar.gz` or `zip` format with every path under `prefix`, once a git slot is free; the
/// caller streams the output.
pub async fn archive(
    forge: &Forge,
    tool: &ToolInstance,
    commit: git2::Oid,
    format: &str,
    prefix: &str,
) -> Result<GitOutput> {
    if !matches!(format, "tar.gz" | "zip") {
        return Err(Error::NotFound("archive"));
    }
    let permit = forge.git_slots().acquire().await?;
    let mut child = git_command(forge.config(), tool)
        .arg("archive")
        .arg(format!("--format={format}"))
        .arg(format!("--prefix={prefix}"))
        .arg(commit.to_string())
        .spawn()
        .map_err(|e| Error::Internal(format!("git archive: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::Internal("git archive: no output".into()))?;
    Ok(GitOutput {
        stdout,
        _child: child,
        _permit: permit,
    })
}

/// Streams the file `id` (an id read from the repository, never from a URL) with
/// `git cat-file`, once a git slot is free: large raw downloads are never held in memory.
pub async fn cat_blob(forge: &Forge, tool: &ToolInstance, id: git2::Oid) -> Result<GitOutput> {
    let permit = forge.git_slots().acquire().await?;
    let mut child = git_command(forge.config(), tool)
        .arg("cat-file")
        .arg("blob")
        .arg(id.to_string())
        .spawn()
        .map_err(|e| Error::Internal(format!("git cat-file: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::Internal("git cat-file: no output".into()))?;
    Ok(GitOutput {
        stdout,
        _child: child,
        _permit: permit,
    })
}

/// Each line of `path` at `commit` with the commit that last changed it, from `git blame`
/// (run in a git slot, killed after [`BLAME_TIME`]); the caller caps the file's size first.
pub async fn blame(
    forge: &Forge,
    tool: &ToolInstance,
    commit: git2::Oid,
    path: &str,
) -> Result<Vec<(Option<browse::CommitInfo>, String)>> {
    browse::check_path(path)?;
    let _permit = forge.git_slots().acquire().await?;
    let mut child = git_command(forge.config(), tool)
        .arg("blame")
        .arg("--porcelain")
        .arg(commit.to_string())
        .arg("--")
        .arg(path)
        .spawn()
        .map_err(|e| Error::Internal(format!("git blame: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::Internal("git blame: no output".into()))?;
    let run = async {
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(
            &mut tokio::io::AsyncReadExt::take(stdout, MAX_BLAME_OUTPUT),
            &mut out,
        )
        .await?;
        let status = child.wait().await?;
        Ok::<_, std::io::Error>((status, out))
    };
    match tokio::time::timeout(BLAME_TIME, run).await {
        Ok(Ok((status, out))) if status.success() => {
            Ok(
                tokio::task::spawn_blocking(move || browse::parse_blame(&out))
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))?,
            )
        }
        Ok(Ok((status, _))) => Err(Error::Internal(format!("git blame: {status}"))),
        Ok(Err(e)) => Err(Error::Internal(format!("git blame: {e}"))),
        // The child is killed when dropped here.
        Err(_) => Err(Error::Busy(
            "Blame took too long for this file; try its history instead.".into(),
        )),
    }
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
