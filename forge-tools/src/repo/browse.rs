//! Reading a repository for the browser and REST: refs, trees, blobs, logs, commits with
//! diffs. Everything reads git objects through git2 (blocking: call from `spawn_blocking`).
//! Ref names and paths from URLs are validated before use; sizes are capped.

use std::path::Path;

use git2::{DiffOptions, ObjectType, Oid, Repository, Sort};

use crate::error::{Error, Result};

/// Largest blob shown inline; bigger files link to raw.
pub const MAX_BLOB: usize = 1 << 20;
/// Largest diff text per file shown on a commit page.
pub const MAX_FILE_DIFF: usize = 100 * 1024;
pub const MAX_DIFF_FILES: usize = 300;

fn git(e: git2::Error) -> Error {
    match e.code() {
        git2::ErrorCode::NotFound | git2::ErrorCode::InvalidSpec => Error::NotFound("revision"),
        _ => Error::Internal(format!("git: {}", e.message())),
    }
}

pub fn open(path: &Path) -> Result<Repository> {
    Repository::open_bare(path).map_err(git)
}

/// A ref name or commit id as given in a URL: no `..`, no leading `-`, no control or
/// revision-syntax characters, so it can only name a ref or an object.
pub fn check_rev(rev: &str) -> Result<()> {
    let ok = !rev.is_empty()
        && rev.len() <= 255
        && !rev.starts_with(['-', '/', '.'])
        && !rev.ends_with(['/', '.'])
        && !rev.contains("..")
        && !rev.contains("//")
        && !rev.contains("@{")
        && !rev.chars().any(|c| {
            c.is_control()
                || c.is_whitespace()
                || matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::NotFound("revision"))
    }
}

/// A path inside the tree: relative, no `.`/`..` segments.
pub fn check_path(path: &str) -> Result<()> {
    let ok = !path.starts_with('/')
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
        && !path.chars().any(char::is_control);
    if path.is_empty() || ok {
        Ok(())
    } else {
        Err(Error::NotFound("path"))
    }
}

/// The commit a branch, tag or (abbreviated) id names.
pub fn resolve(repo: &Repository, rev: &str) -> Result<Oid> {
    check_rev(rev)?;
    for candidate in [format!("refs/heads/{rev}"), format!("refs/tags/{rev}")] {
        if let Ok(r) = repo.find_reference(&candidate) {
            return r.peel_to_commit().map(|c| c.id()).map_err(git);
        }
    }
    if rev.len() >= 4 && rev.chars().all(|c| c.is_ascii_hexdigit()) {
        let obj = repo.revparse_single(rev).map_err(git)?;
        return obj.peel_to_commit().map(|c| c.id()).map_err(git);
    }
    Err(Error::NotFound("revision"))
}

/// Splits `a/b/c/file` into the longest leading ref that exists and the path after it
/// (branch names may contain slashes).
pub fn split_ref_path(repo: &Repository, rest: &str) -> Result<(String, Oid, String)> {
    let parts: Vec<&str> = rest.split('/').collect();
    for n in (1..=parts.len()).rev() {
        let rev = parts[..n].join("/");
        if check_rev(&rev).is_err() {
            continue;
        }
        if let Ok(oid) = resolve(repo, &rev) {
            let path = parts[n..].join("/");
            check_path(&path)?;
            return Ok((rev, oid, path));
        }
    }
    Err(Error::NotFound("revision"))
}

/// No branch or tag yet (libgit2's own check only knows an unborn `master`).
pub fn is_empty(repo: &Repository) -> bool {
    repo.references_glob("refs/*")
        .map(|mut r| r.next().is_none())
        .unwrap_or(true)
}

/// The branch HEAD names (even before it exists).
pub fn default_branch(repo: &Repository) -> String {
    repo.find_reference("HEAD")
        .ok()
        .and_then(|h| {
            h.symbolic_target_bytes()
                .map(|t| lossy(t).trim_start_matches("refs/heads/").to_owned())
        })
        .unwrap_or_else(|| super::DEFAULT_BRANCH.to_owned())
}

#[derive(Debug, Clone)]
pub struct RefEntry {
    pub name: String,
    pub target: String,
    pub summary: String,
    pub time: i64,
}

/// Branches or tags (`refs/heads/` or `refs/tags/`), newest commit first.
pub fn refs(repo: &Repository, prefix: &str) -> Result<Vec<RefEntry>> {
    let mut out = Vec::new();
    for r in repo.references_glob(&format!("{prefix}*")).map_err(git)? {
        let r = r.map_err(git)?;
        let name = lossy(r.name_bytes());
        let Ok(c) = r.peel_to_commit() else { continue };
        out.push(RefEntry {
            name: name.trim_start_matches(prefix).to_owned(),
            target: c.id().to_string(),
            summary: lossy(c.summary_bytes().unwrap_or_default()),
            time: c.time().seconds(),
        });
    }
    out.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| a.name.cmp(&b.name)));
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct TreeEntry {
    pub name: String,
    pub path: String,
    pub is_dir: bool,
    pub size: Option<usize>,
}

/// Entries of the directory at `path` (directories first).
pub fn tree(repo: &Repository, commit: Oid, path: &str) -> Result<Vec<TreeEntry>> {
    let root = repo.find_commit(commit).map_err(git)?.tree().map_err(git)?;
    let tree = if path.is_empty() {
        root
    } else {
        let entry = root.get_path(Path::new(path)).map_err(git)?;
        repo.find_tree(entry.id())
            .map_err(|_| Error::NotFound("directory"))?
    };
    let mut out: Vec<TreeEntry> = tree
        .iter()
        .map(|e| {
            let name = lossy(e.name_bytes());
            let is_dir = e.kind() == Some(ObjectType::Tree);
            let size = if is_dir {
                None
            } else {
                repo.find_blob(e.id()).ok().map(|b| b.size())
            };
            let path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}/{name}")
            };
            TreeEntry {
                name,
                path,
                is_dir,
                size,
            }
        })
        .collect();
    out.sort_by(|a, b| b.is_dir.cmp(&a.is_dir).then_with(|| a.name.cmp(&b.name)));
    Ok(out)
}

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
    for _ in 0..limit {
        if pending.is_empty() {
            break;
        }
        let parent = current.parents().next();
        let before: Vec<(String, Oid)> = parent.as_ref().map(&entries_at).unwrap_or_default();
        let mut still = Vec::new();
        for (name, id) in pending {
            let same = before.iter().any(|(n, i)| *n == name && *i == id);
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

pub struct Blob {
    pub size: usize,
    pub binary: bool,
    /// The content, up to [`MAX_BLOB`] bytes.
    pub content: Vec<u8>,
    pub truncated: bool,
}

fn find_blob<'r>(repo: &'r Repository, commit: Oid, path: &str) -> Result<git2::Blob<'r>> {
    check_path(path)?;
    let tree = repo.find_commit(commit).map_err(git)?.tree().map_err(git)?;
    let entry = tree.get_path(Path::new(path)).map_err(git)?;
    repo.find_blob(entry.id())
        .map_err(|_| Error::NotFound("file"))
}

/// The whole file (for raw downloads) and whether it is binary.
pub fn raw(repo: &Repository, commit: Oid, path: &str) -> Result<(bool, Vec<u8>)> {
    let blob = find_blob(repo, commit, path)?;
    Ok((blob.is_binary(), blob.content().to_vec()))
}

pub fn blob(repo: &Repository, commit: Oid, path: &str) -> Result<Blob> {
    let blob = find_blob(repo, commit, path)?;
    let content = blob.content();
    let truncated = content.len() > MAX_BLOB;
    Ok(Blob {
        size: content.len(),
        binary: blob.is_binary(),
        content: content[..content.len().min(MAX_BLOB)].to_vec(),
        truncated,
    })
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

fn info(c: &git2::Commit) -> CommitInfo {
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

pub struct FileDiff {
    pub old_path: String,
    pub new_path: String,
    pub status: char,
    pub additions: usize,
    pub deletions: usize,
    pub patch: String,
    pub binary: bool,
    pub truncated: bool,
}

pub struct CommitDetail {
    pub info: CommitInfo,
    pub files: Vec<FileDiff>,
    pub additions: usize,
    pub deletions: usize,
    pub files_truncated: bool,
}

/// A commit with its diff against the first parent.
pub fn commit(repo: &Repository, rev: &str) -> Result<CommitDetail> {
    let oid = resolve(repo, rev)?;
    let c = repo.find_commit(oid).map_err(git)?;
    let new_tree = c.tree().map_err(git)?;
    let old_tree = c
        .parents()
        .next()
        .map(|p| p.tree())
        .transpose()
        .map_err(git)?;
    let mut opts = DiffOptions::new();
    opts.context_lines(3);
    let diff = repo
        .diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), Some(&mut opts))
        .map_err(git)?;
    let stats = diff.stats().map_err(git)?;
    let mut files = Vec::new();
    let deltas = diff.deltas().len();
    for i in 0..deltas.min(MAX_DIFF_FILES) {
        let Some(delta) = diff.get_delta(i) else {
            continue;
        };
        let mut patch_text = String::new();
        let (mut adds, mut dels, mut truncated) = (0, 0, false);
        let binary = delta.flags().is_binary();
        if let Ok(Some(mut patch)) = git2::Patch::from_diff(&diff, i) {
            if let Ok((_, a, d)) = patch.line_stats() {
                adds = a;
                dels = d;
            }
            if let Ok(buf) = patch.to_buf() {
                let text = String::from_utf8_lossy(&buf);
                // Skip the file header lines; hunks start at the first "@@".
                let body = text.find("\n@@").map_or("", |p| &text[p + 1..]);
                truncated = body.len() > MAX_FILE_DIFF;
                patch_text = body.chars().take(MAX_FILE_DIFF).collect();
            }
        }
        let status = match delta.status() {
            git2::Delta::Added => 'A',
            git2::Delta::Deleted => 'D',
            git2::Delta::Renamed => 'R',
            _ => 'M',
        };
        let p = |f: git2::DiffFile| {
            f.path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        files.push(FileDiff {
            old_path: p(delta.old_file()),
            new_path: p(delta.new_file()),
            status,
            additions: adds,
            deletions: dels,
            patch: patch_text,
            binary,
            truncated,
        });
    }
    Ok(CommitDetail {
        info: info(&c),
        files,
        additions: stats.insertions(),
        deletions: stats.deletions(),
        files_truncated: deltas > MAX_DIFF_FILES,
    })
}

/// The README at the root of `commit`, if any (markdown or text).
pub fn readme(repo: &Repository, commit: Oid) -> Option<(String, String)> {
    let tree = repo.find_commit(commit).ok()?.tree().ok()?;
    let entry = tree.iter().find(|e| {
        let n = lossy(e.name_bytes()).to_ascii_lowercase();
        matches!(
            n.as_str(),
            "readme.md" | "readme.markdown" | "readme" | "readme.txt"
        )
    })?;
    let name = lossy(entry.name_bytes());
    let blob = repo.find_blob(entry.id()).ok()?;
    if blob.is_binary() || blob.size() > MAX_BLOB {
        return None;
    }
    Some((name, String::from_utf8_lossy(blob.content()).into_owned()))
}

/// Each line of `path` at `commit` with the commit that last changed it.
pub fn blame(
    repo: &Repository,
    commit: Oid,
    path: &str,
) -> Result<Vec<(Option<CommitInfo>, String)>> {
    let b = self::blob(repo, commit, path)?;
    if b.binary || b.truncated {
        return Err(Error::invalid(
            "path",
            "Blame is only shown for text files up to 1 MB",
        ));
    }
    let mut opts = git2::BlameOptions::new();
    opts.newest_commit(commit);
    let blame = repo
        .blame_file(Path::new(path), Some(&mut opts))
        .map_err(git)?;
    let text = String::from_utf8_lossy(&b.content).into_owned();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let who = blame
            .get_line(i + 1)
            .and_then(|h| repo.find_commit(h.final_commit_id()).ok())
            .map(|c| info(&c));
        out.push((who, line.to_owned()));
    }
    Ok(out)
}

pub(crate) fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_and_paths_are_validated() {
        for bad in [
            "--upload-pack=x",
            "-x",
            "a..b",
            "refs/../../x",
            "HEAD@{1}",
            "a b",
            "x~1",
            "x^",
            ":/msg",
            "",
            "../x",
        ] {
            assert!(check_rev(bad).is_err(), "{bad}");
        }
        for ok in ["main", "feature/x", "v1.0", "abc1234"] {
            assert!(check_rev(ok).is_ok(), "{ok}");
        }
        for bad in ["../etc", "a/../b", "/abs", "a//b", "./x"] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        assert!(check_path("").is_ok());
        assert!(check_path("src/main.rs").is_ok());
    }
}
