//! The repository's views that never change, kept in the read model: a commit's page (its
//! diff, by commit id), a directory's listing with the newest commit of each entry (by
//! commit id, path and how far back it looked) and a page of history (by commit id, path and
//! page). Their keys name git objects, so they are
//! never stale and no change empties them (only a lost change stream or memory pressure
//! does). A view is computed once however many requests ask for it at the same time (the
//! others wait for that computation): a burst on a new commit's page costs one diff.

use std::sync::Arc;

use git2::{Oid, Repository};

use super::browse::{self, CommitDetail, CommitInfo, LastCommits, TreeEntry};
use crate::error::{Error, Result};
use crate::ids::ToolId;
use crate::readmodel::{Change, Kept, Part, PartStats, ReadModel};

/// A directory's entries with the newest commit that changed each.
pub type TreeView = Arc<(Vec<TreeEntry>, LastCommits)>;

type TreeKey = (ToolId, Oid, String, usize);
/// Tool, commit, path, skip, limit.
type LogKey = (ToolId, Oid, String, usize, usize);

/// The git tool's kind of the read model.
pub struct GitViews {
    commits: Part<(ToolId, Oid), Arc<CommitDetail>>,
    trees: Part<TreeKey, TreeView>,
    logs: Part<LogKey, Arc<Vec<CommitInfo>>>,
}

/// The kind, within `max_bytes`.
pub fn kept(max_bytes: u64) -> Arc<dyn Kept> {
    Arc::new(GitViews {
        commits: Part::new("git_commits", max_bytes / 2, |_, d| {
            let diff: usize = d
                .files
                .iter()
                .map(|f| f.patch.len() + f.old_path.len() + f.new_path.len() + 128)
                .sum();
            crate::readmodel::len(&d.info.message).saturating_add(clamp(diff + 512))
        }),
        logs: Part::new("git_logs", max_bytes / 4, |k, v| {
            let commits: usize = v
                .iter()
                .map(|c| c.message.len() + c.author.len() + c.email.len() + 256)
                .sum();
            clamp(k.2.len() + commits + 128)
        }),
        trees: Part::new("git_trees", max_bytes / 4, |k, v| {
            let entries: usize = v.0.iter().map(|e| e.name.len() + e.path.len() + 64).sum();
            let last: usize =
                v.1.iter()
                    .map(|(n, c)| n.len() + c.message.len() + 256)
                    .sum();
            clamp(k.2.len() + entries + last + 128)
        }),
    })
}

fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Kept for GitViews {
    /// Registered under the commits the refresh records, but no change makes a view stale.
    fn collection(&self) -> &'static str {
        super::refresh::COMMITS
    }
    fn changed(&self, _: &Change) {}
    fn reset(&self) {
        self.commits.invalidate_all();
        self.trees.invalidate_all();
        self.logs.invalidate_all();
    }
    fn stats(&self) -> Vec<PartStats> {
        vec![self.commits.stats(), self.trees.stats(), self.logs.stats()]
    }
}

/// Errors shared by the requests that waited on one computation: each gets its own copy.
fn shared(e: Arc<Error>) -> Error {
    match &*e {
        Error::NotFound(what) => Error::NotFound(what),
        Error::BadRequest(m) => Error::BadRequest(m.clone()),
        Error::TooLarge(m) => Error::TooLarge(m.clone()),
        Error::Busy(m) => Error::Busy(m.clone()),
        other => Error::Internal(other.to_string()),
    }
}

/// The commit `rev` names (resolved each time: a branch moves) with its diff (see
/// [`browse::commit`]), through `model` when given.
pub fn commit(
    model: Option<&ReadModel>,
    tool: ToolId,
    repo: &Repository,
    rev: &str,
) -> Result<Arc<CommitDetail>> {
    let oid = browse::resolve(repo, rev)?;
    let compute = || browse::commit(repo, &oid.to_string()).map(Arc::new);
    match model.and_then(|m| m.part::<GitViews>()) {
        Some(v) => v
            .commits
            .get_immutable((tool, oid), compute)
            .map_err(shared),
        None => compute(),
    }
}

/// The directory `path` at commit `oid` and, with `last_depth`, the newest commit that changed
/// each entry (see [`browse::tree`] and [`browse::last_commits`]), through `model` when given.
pub fn tree(
    model: Option<&ReadModel>,
    tool: ToolId,
    repo: &Repository,
    oid: Oid,
    path: &str,
    last_depth: Option<usize>,
) -> Result<TreeView> {
    let compute = || {
        let list = browse::tree(repo, oid, path)?;
        let last = match last_depth {
            Some(depth) => browse::last_commits(repo, oid, path, depth)?,
            None => LastCommits::default(),
        };
        Ok(Arc::new((list, last)))
    };
    let key = (tool, oid, path.to_owned(), last_depth.unwrap_or(0));
    match model.and_then(|m| m.part::<GitViews>()) {
        Some(v) => v.trees.get_immutable(key, compute).map_err(shared),
        None => compute(),
    }
}

/// `limit` commits of the history of `path` from commit `oid`, after `skip` (see
/// [`browse::log`]), through `model` when given.
pub fn log(
    model: Option<&ReadModel>,
    tool: ToolId,
    repo: &Repository,
    oid: Oid,
    path: &str,
    skip: usize,
    limit: usize,
) -> Result<Arc<Vec<CommitInfo>>> {
    let compute = || browse::log(repo, oid, path, skip, limit).map(Arc::new);
    let key = (tool, oid, path.to_owned(), skip, limit);
    match model.and_then(|m| m.part::<GitViews>()) {
        Some(v) => v.logs.get_immutable(key, compute).map_err(shared),
        None => compute(),
    }
}
