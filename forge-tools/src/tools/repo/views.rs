//! The repository's views that never change, kept in the read model: a commit's page (its
//! diff, by commit id), a directory's listing with the newest commit of each entry (by
//! commit id, path and how far back it looked) and a page of history (by commit id, path and
//! page). Their keys name git objects, so they are
//! never stale and no change empties them (only a lost change stream or memory pressure
//! does). A view is computed once however many requests ask for it at the same time (the
//! others wait for that computation): a burst on a new commit's page costs one diff.
//!
//! Also each repository's branches and tags ([`GitRefs`]), so that a page whose view is kept
//! opens no repository at all. They are read from the repository and dropped when this node
//! takes a push ([`forget_refs`]) and when the push refresh records the new refs
//! (`repo_refs`, on every node through the change stream): another node may show the old tip
//! of a branch until the refresh of a push to it is done.

use std::collections::HashMap;
use std::path::PathBuf;
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
    /// Keyed by commit id: no change makes a view stale.
    fn collection(&self) -> Option<&'static str> {
        None
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

/// `compute`'s value kept in the part `pick` chooses, when `model` keeps the git views (once
/// per key, however many ask at once); else computed.
fn through<K, V>(
    model: Option<&ReadModel>,
    pick: fn(&GitViews) -> &Part<K, V>,
    key: K,
    compute: impl FnOnce() -> Result<V>,
) -> Result<V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    match model.and_then(|m| m.part::<GitViews>()) {
        Some(v) => pick(v).get_immutable(key, compute).map_err(shared),
        None => compute(),
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
    through(model, |v| &v.commits, (tool, oid), compute)
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
    through(model, |v| &v.trees, key, compute)
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
    through(model, |v| &v.logs, key, compute)
}

/// A repository's branches and tags (`refs/heads/...`, `refs/tags/...`), peeled to commits.
pub type Refs = Arc<HashMap<String, Oid>>;

/// The git tool's kind of the read model for refs.
pub struct GitRefs {
    refs: Part<ToolId, Refs>,
}

/// The refs kind, within `max_bytes`.
pub fn refs_kept(max_bytes: u64) -> Arc<dyn Kept> {
    Arc::new(GitRefs {
        refs: Part::new("git_refs", max_bytes, |_, r| {
            clamp(r.keys().map(|k| k.len() + 64).sum::<usize>() + 64)
        }),
    })
}

impl Kept for GitRefs {
    fn collection(&self) -> Option<&'static str> {
        Some(super::refresh::REFS)
    }
    fn changed(&self, _: &Change) {
        self.refs.invalidate_all();
    }
    fn reset(&self) {
        self.refs.invalidate_all();
    }
    fn stats(&self) -> Vec<PartStats> {
        vec![self.refs.stats()]
    }
}

/// The branches and tags of the repository at `path`, kept by the read model of `model`.
pub async fn refs(model: &ReadModel, tool: ToolId, path: PathBuf) -> Result<Option<Refs>> {
    let Some(kind) = model.part::<GitRefs>() else {
        return Ok(None);
    };
    kind.refs
        .get(model, tool, || async move {
            let read = tokio::task::spawn_blocking(move || read_refs(&path))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
            Ok(Some(Arc::new(read)))
        })
        .await
}

fn read_refs(path: &std::path::Path) -> Result<HashMap<String, Oid>> {
    let repo = browse::open(path)?;
    let mut out = HashMap::new();
    let all = repo
        .references_glob("refs/*")
        .map_err(|e| Error::Internal(e.to_string()))?;
    for r in all.flatten() {
        let Ok(name) = r.name() else { continue };
        if !(name.starts_with("refs/heads/") || name.starts_with("refs/tags/")) {
            continue;
        }
        if let Ok(c) = r.peel_to_commit() {
            out.insert(name.to_owned(), c.id());
        }
    }
    Ok(out)
}

/// This node took a push to `tool`'s repository: its refs are read again.
pub fn forget_refs(model: &ReadModel, tool: ToolId) {
    if let Some(kind) = model.part::<GitRefs>() {
        kind.refs.invalidate(&tool);
    }
}

/// `<ref>/<path>` resolved as [`browse::split_ref_path`] does, from kept refs: `None` when
/// only the repository can tell (a commit id, or nothing the refs name).
pub fn split_ref_path(refs: &Refs, rest: &str) -> Option<Result<(String, Oid, String)>> {
    let parts: Vec<&str> = rest.split('/').collect();
    for n in (1..=parts.len()).rev() {
        let rev = parts[..n].join("/");
        if browse::check_rev(&rev).is_err() {
            continue;
        }
        let found = refs
            .get(&format!("refs/heads/{rev}"))
            .or_else(|| refs.get(&format!("refs/tags/{rev}")));
        if let Some(oid) = found {
            let path = parts[n..].join("/");
            return Some(browse::check_path(&path).map(|()| (rev, *oid, path)));
        }
        // A (short) commit id: resolving it needs the repository.
        if rev.len() >= 4 && rev.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
    }
    None
}

/// A kept directory view, without computing one.
pub fn kept_tree(
    model: &ReadModel,
    tool: ToolId,
    oid: Oid,
    path: &str,
    last_depth: Option<usize>,
) -> Option<TreeView> {
    let kind = model.part::<GitViews>()?;
    kind.trees
        .peek(&(tool, oid, path.to_owned(), last_depth.unwrap_or(0)))
}

/// A kept page of history, without computing one.
pub fn kept_log(
    model: &ReadModel,
    tool: ToolId,
    oid: Oid,
    path: &str,
    skip: usize,
    limit: usize,
) -> Option<Arc<Vec<CommitInfo>>> {
    let kind = model.part::<GitViews>()?;
    kind.logs.peek(&(tool, oid, path.to_owned(), skip, limit))
}

/// A kept commit page by full commit id, without computing one.
pub fn kept_commit(model: &ReadModel, tool: ToolId, rev: &str) -> Option<Arc<CommitDetail>> {
    if rev.len() != 40 {
        return None;
    }
    let oid = Oid::from_str(rev).ok()?;
    model.part::<GitViews>()?.commits.peek(&(tool, oid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_refs_resolve_like_the_repository_or_defer_to_it() {
        let a = Oid::from_str("1111111111111111111111111111111111111111").unwrap();
        let b = Oid::from_str("2222222222222222222222222222222222222222").unwrap();
        let refs: Refs = Arc::new(HashMap::from([
            ("refs/heads/main".to_owned(), a),
            ("refs/heads/feature/x".to_owned(), b),
            ("refs/tags/v1".to_owned(), b),
        ]));
        let ok = |rest: &str| split_ref_path(&refs, rest).unwrap().unwrap();
        assert_eq!(ok("main/src/web"), ("main".into(), a, "src/web".into()));
        assert_eq!(
            ok("feature/x/README"),
            ("feature/x".into(), b, "README".into())
        );
        assert_eq!(ok("v1"), ("v1".into(), b, String::new()));
        // Commit ids and unknown names: the repository decides.
        assert!(split_ref_path(&refs, "abcdef12/src").is_none());
        assert!(split_ref_path(&refs, "nothing/here").is_none());
        // A bad path after a known ref is refused as the repository would.
        assert!(split_ref_path(&refs, "main/../etc").unwrap().is_err());
    }
}
