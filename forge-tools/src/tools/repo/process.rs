//! Running git itself, each process in a git slot: `git archive` and `git cat-file` streamed to
//! the client, and `git blame` (time-limited, output capped).

use std::time::Duration;

use super::browse::{self, CommitInfo};
use super::kind::slots;
use super::paths::repo_path;
use super::slots::GitPermit;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::tool::{Forge, ToolInstance};

/// The longest a blame may run.
const BLAME_TIME: Duration = Duration::from_secs(20);
/// Most bytes of `git blame --porcelain` output read (a capped file makes far less).
const MAX_BLAME_OUTPUT: u64 = 32 << 20;

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
    let permit = slots(forge).acquire().await?;
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
    let permit = slots(forge).acquire().await?;
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
) -> Result<Vec<(Option<CommitInfo>, String)>> {
    browse::check_path(path)?;
    let _permit = slots(forge).acquire().await?;
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
