//! Commits: what one says ([`CommitInfo`]), logs (of a path, paged), and the commit that last
//! changed each entry of a directory.

use std::path::Path;

use git2::{Oid, Repository, Sort};

use super::{check_path, git, lossy};
use crate::error::Result;

/// Most directory entries [`last_commits`] reads, all commits together.
const LAST_COMMITS_BUDGET: usize = 2_000_000;

/// Entry names with the commit that last changed them.
pub type LastCommits = std::sync::Arc<Vec<(String, CommitInfo)>>;

/// For each entry of the directory `dir` at `commit`, the newest commit that changed it,
/// looking back at most `limit` commits along first parents (entries older than that get
/// none). Results are cached per (repository, commit, directory): a commit never changes.
pub fn last_commits(
    repo: &Repository,
    commit: Oid,
    dir: &str,
    limit: usize,
) -> Result<LastCommits> {
    use std::sync::{Arc, OnceLock};
    type Key = (String, Oid, String);
    static CACHE: OnceLock<moka::sync::Cache<Key, LastCommits>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| moka::sync::Cache::new(10_000));
    let key = (
        repo.path().to_string_lossy().into_owned(),
        commit,
        dir.to_owned(),
    );
    if let Some(hit) = cache.get(&key) {
        return Ok(hit);
    }
    let entries_at = |c: &git2::Commit| -> Vec<(String, Oid)> {
        let Ok(root) = c.tree() else {
            return Vec::new();
        };
        let tree = if dir.is_empty() {
            Some(root)
        } else {
            root.get_path(Path::new(dir))
                .ok()
                .and_then(|e| repo.find_tree(e.id()).ok())
        };
        tree.map(|t| t.iter().map(|e| (lossy(e.name_bytes()), e.id())).collect())
            .unwrap_or_default()
    };
    let mut current = repo.find_commit(commit).map_err(git)?;
    let mut pending: Vec<(String, Oid)> = entries_at(&current);
    let mut found: Vec<(String, CommitInfo)> = Vec::new();
    // Entries read along the way: a huge directory stops early instead of costing
    // `limit` × its size.
    let mut budget = LAST_COMMITS_BUDGET;
    for _ in 0..limit {
        if pending.is_empty() || budget == 0 {
            break;
        }
        let parent = current.parents().next();
        let before: std::collections::HashMap<String, Oid> = parent
            .as_ref()
            .map(&entries_at)
            .unwrap_or_default()
            .into_iter()
            .collect();
        budget = budget.saturating_sub(before.len().max(1));
        let mut still = Vec::new();
        for (name, id) in pending {
            let same = before.get(&name) == Some(&id);
            if same {
                still.push((name, id));
            } else {
                found.push((name, info(&current)));
            }
        }
        pending = still;
        match parent {
            Some(p) => current = p,
            None => break,
        }
    }
    let out = Arc::new(found);
    cache.insert(key, out.clone());
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub id: String,
    pub short: String,
    pub summary: String,
    pub message: String,
    pub author: String,
    pub email: String,
    pub time: i64,
    pub parents: Vec<String>,
}

pub(super) fn info(c: &git2::Commit) -> CommitInfo {
    let id = c.id().to_string();
    CommitInfo {
        short: id[..10].to_owned(),
        id,
        summary: lossy(c.summary_bytes().unwrap_or_default()),
        message: lossy(c.message_bytes()),
        author: lossy(c.author().name_bytes()),
        email: lossy(c.author().email_bytes()),
        time: c.time().seconds(),
        parents: c.parent_ids().map(|p| p.to_string()).collect(),
    }
}

/// Commits reachable from `commit`, newest first, optionally only those touching `path`;
/// returns one more than `limit` when there is a next page.
pub fn log(
    repo: &Repository,
    commit: Oid,
    path: &str,
    skip: usize,
    limit: usize,
) -> Result<Vec<CommitInfo>> {
    check_path(path)?;
    let mut walk = repo.revwalk().map_err(git)?;
    // No explicit sorting: libgit2 then streams from the tips (newest first for linear
    // history); time or topological sorting would walk the whole history before the first.
    walk.set_sorting(Sort::NONE).map_err(git)?;
    walk.push(commit).map_err(git)?;
    let mut out = Vec::new();
    let mut seen = 0;
    for oid in walk {
        let c = repo.find_commit(oid.map_err(git)?).map_err(git)?;
        if !path.is_empty() && !touches(repo, &c, path)? {
            continue;
        }
        seen += 1;
        if seen <= skip {
            continue;
        }
        out.push(info(&c));
        if out.len() > limit {
            break;
        }
    }
    Ok(out)
}

fn touches(repo: &Repository, c: &git2::Commit, path: &str) -> Result<bool> {
    let tree = c.tree().map_err(git)?;
    let mine = tree.get_path(Path::new(path)).ok().map(|e| e.id());
    if c.parent_count() == 0 {
        return Ok(mine.is_some());
    }
    for p in c.parents() {
        let theirs = p
            .tree()
            .map_err(git)?
            .get_path(Path::new(path))
            .ok()
            .map(|e| e.id());
        if theirs != mine {
            return Ok(true);
        }
    }
    let _ = repo;
    Ok(false)
}
