//! The repository's views that never change, kept in the read model: a commit's page (its
//! diff, by commit id) and a directory's listing with the newest commit of each entry (by
//! commit id, path and how far back it looked). Their keys name git objects, so they are
//! never stale and no change empties them (only a lost change stream or memory pressure
//! does). A view is computed once however many requests ask for it at the same time (the
//! others wait for that computation): a burst on a new commit's page costs one diff.

use std::sync::Arc;

use git2::{Oid, Repository};

use super::browse::{self, CommitDetail, LastCommits, TreeEntry};
use crate::error::{Error, Result};
use crate::ids::ToolId;
use crate::readmodel::{Change, Kept, Part, PartStats, ReadModel};

/// A directory's entries with the newest commit that changed each.
pub type TreeView = Arc<(Vec<TreeEntry>, LastCommits)>;

type TreeKey = (ToolId, Oid, String, usize);

/// The git tool's kind of the read model.
pub struct GitViews {
    commits: Part<(ToolId, Oid), Arc<CommitDetail>>,
    trees: Part<TreeKey, TreeView>,
}

/// The kind, within `max_bytes`.
pub fn kept(max_bytes: u64) -> Arc<dyn Kept> {
    Arc::new(GitViews {
        commits: Part::new("git_commits", max_bytes * 2 / 3, |_, d| {
            let diff: usize = d
                .files
                .iter()
                .map(|f| f.patch.len() + f.old_path.len() + f.new_path.len() + 128)
                .sum();
            crate::readmodel::len(&d.info.message).saturating_add(clamp(diff + 512))
        }),
        trees: Part::new("git_trees", max_bytes / 3, |k, v| {
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
    }
    fn stats(&self) -> Vec<PartStats> {
        vec![self.commits.stats(), self.trees.stats()]
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
