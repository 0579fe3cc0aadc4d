//! Reading a repository for the browser and REST: refs, trees, blobs, logs, commits with
//! diffs, and the reading of `git blame` output. Everything reads git objects through git2
//! (blocking: call from `spawn_blocking`). Ref names and paths from URLs are validated before
//! use; sizes are capped, so no page costs more than its caps whatever the repository holds.

use std::path::Path;

use git2::{DiffOptions, ObjectType, Oid, Repository, Sort};

use crate::error::{Error, Result};

/// Largest blob shown inline; bigger files link to raw.
pub const MAX_BLOB: usize = 1 << 20;
/// Largest diff text per file shown on a commit page.
pub const MAX_FILE_DIFF: usize = 100 * 1024;
/// Most diff lines per file shown on a commit page.
pub const MAX_FILE_DIFF_LINES: usize = 2_000;
/// Most files listed on a commit page.
pub const MAX_DIFF_FILES: usize = 300;
/// Most diff text of one commit shown, all files together; later files are listed as too
/// large to show.
pub const MAX_DIFF_BYTES: usize = 1 << 20;
/// Largest file version that is diffed at all.
pub const MAX_DIFF_BLOB: usize = 1 << 20;
/// Most bytes of file versions diffed for one commit, all files together.
pub const MAX_DIFF_INPUT: usize = 8 << 20;
/// Largest file blamed (bytes and lines).
pub const MAX_BLAME_BYTES: usize = 256 * 1024;
pub const MAX_BLAME_LINES: usize = 10_000;

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
    let odb = repo.odb().map_err(git)?;
    let mut out: Vec<TreeEntry> = tree
        .iter()
        .map(|e| {
            let name = lossy(e.name_bytes());
            let is_dir = e.kind() == Some(ObjectType::Tree);
            // The size from the object's header: the file itself is not read.
            let size = if is_dir {
                None
            } else {
                odb.read_header(e.id()).ok().map(|(size, _)| size)
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

pub struct Blob {
    pub size: usize,
    pub binary: bool,
    /// The content; empty when over [`MAX_BLOB`] bytes.
    pub content: Vec<u8>,
    pub truncated: bool,
}

/// Largest file a raw download reads into memory; larger ones stream from git.
pub const MAX_RAW_LOADED: usize = 8 << 20;

/// The id and size of the file at `path` in `commit`, from the object's header (the file
/// itself is not read, whatever its size).
fn blob_entry(repo: &Repository, commit: Oid, path: &str) -> Result<(Oid, usize)> {
    check_path(path)?;
    let tree = repo.find_commit(commit).map_err(git)?.tree().map_err(git)?;
    let entry = tree.get_path(Path::new(path)).map_err(git)?;
    if entry.kind() != Some(ObjectType::Blob) {
        return Err(Error::NotFound("file"));
    }
    let (size, _) = repo
        .odb()
        .map_err(git)?
        .read_header(entry.id())
        .map_err(git)?;
    Ok((entry.id(), size))
}

/// A file for a raw download: read when small, otherwise to be streamed from git.
pub enum Raw {
    Loaded { binary: bool, content: Vec<u8> },
    Large { id: Oid, size: usize },
}

pub fn raw(repo: &Repository, commit: Oid, path: &str) -> Result<Raw> {
    let (id, size) = blob_entry(repo, commit, path)?;
    if size > MAX_RAW_LOADED {
        return Ok(Raw::Large { id, size });
    }
    let blob = repo.find_blob(id).map_err(|_| Error::NotFound("file"))?;
    Ok(Raw::Loaded {
        binary: blob.is_binary(),
        content: blob.content().to_vec(),
    })
}

/// The file for viewing: its content when at most [`MAX_BLOB`] bytes; larger files are not
/// read (`truncated`, empty content, and `binary` unknown and false).
pub fn blob(repo: &Repository, commit: Oid, path: &str) -> Result<Blob> {
    let (id, size) = blob_entry(repo, commit, path)?;
    if size > MAX_BLOB {
        return Ok(Blob {
            size,
            binary: false,
            content: Vec::new(),
            truncated: true,
        });
    }
    let blob = repo.find_blob(id).map_err(|_| Error::NotFound("file"))?;
    Ok(Blob {
        size,
        binary: blob.is_binary(),
        content: blob.content().to_vec(),
        truncated: false,
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
    /// Only the start of the patch is in `patch`.
    pub truncated: bool,
    /// No patch at all: the file, or the commit's diff so far, is over the caps.
    pub too_large: bool,
}

pub struct CommitDetail {
    pub info: CommitInfo,
    pub files: Vec<FileDiff>,
    /// Lines added and removed in the files whose diff was computed.
    pub additions: usize,
    pub deletions: usize,
    /// More files changed than are listed.
    pub files_truncated: bool,
    /// Changed files in all.
    pub files_changed: usize,
    /// Some files' diffs were not computed, so the counts leave them out.
    pub partial_stats: bool,
}

/// The first `MAX_FILE_DIFF_LINES` lines and `MAX_FILE_DIFF` bytes of `body` (cut at a line
/// or character boundary), and whether anything was cut.
fn cap_patch(body: &str) -> (String, bool) {
    let mut end = body.len().min(MAX_FILE_DIFF);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    if let Some((i, _)) = body[..end].match_indices('\n').nth(MAX_FILE_DIFF_LINES - 1) {
        end = i + 1;
    }
    (body[..end].to_owned(), end < body.len())
}

/// A commit with its diff against the first parent, within the caps above: at most
/// [`MAX_DIFF_FILES`] files listed, file versions over [`MAX_DIFF_BLOB`] not diffed, and once
/// [`MAX_DIFF_BYTES`] of diff text or [`MAX_DIFF_INPUT`] of input are used, later files are
/// listed without their diff.
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
    opts.context_lines(3)
        .max_size(i64::try_from(MAX_DIFF_BLOB).unwrap_or(i64::MAX));
    let diff = repo
        .diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), Some(&mut opts))
        .map_err(git)?;
    let odb = repo.odb().map_err(git)?;
    let blob_size = |id: Oid| {
        if id.is_zero() {
            0
        } else {
            odb.read_header(id).map_or(0, |(size, _)| size)
        }
    };
    let mut files = Vec::new();
    let deltas = diff.deltas().len();
    let (mut shown_bytes, mut input_bytes) = (0usize, 0usize);
    let (mut additions, mut deletions, mut partial) = (0, 0, false);
    for i in 0..deltas.min(MAX_DIFF_FILES) {
        let Some(delta) = diff.get_delta(i) else {
            continue;
        };
        let mut patch_text = String::new();
        let (mut adds, mut dels, mut truncated) = (0, 0, false);
        let binary = delta.flags().is_binary();
        let sizes = blob_size(delta.old_file().id()).max(blob_size(delta.new_file().id()));
        input_bytes = input_bytes.saturating_add(sizes);
        let too_large = !binary
            && (sizes > MAX_DIFF_BLOB
                || shown_bytes >= MAX_DIFF_BYTES
                || input_bytes > MAX_DIFF_INPUT);
        if too_large {
            partial = true;
        } else if let Ok(Some(mut patch)) = git2::Patch::from_diff(&diff, i) {
            if let Ok((_, a, d)) = patch.line_stats() {
                adds = a;
                dels = d;
            }
            if let Ok(buf) = patch.to_buf() {
                let text = String::from_utf8_lossy(&buf);
                // Skip the file header lines; hunks start at the first "@@".
                let body = text.find("\n@@").map_or("", |p| &text[p + 1..]);
                (patch_text, truncated) = cap_patch(body);
                shown_bytes += patch_text.len();
            }
        }
        additions += adds;
        deletions += dels;
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
            too_large,
        });
    }
    Ok(CommitDetail {
        info: info(&c),
        files,
        additions,
        deletions,
        files_truncated: deltas > MAX_DIFF_FILES,
        files_changed: deltas,
        partial_stats: partial || deltas > MAX_DIFF_FILES,
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
    let (size, _) = repo.odb().ok()?.read_header(entry.id()).ok()?;
    if size > MAX_BLOB {
        return None;
    }
    let blob = repo.find_blob(entry.id()).ok()?;
    if blob.is_binary() {
        return None;
    }
    Some((name, String::from_utf8_lossy(blob.content()).into_owned()))
}

/// Reads `git blame --porcelain` output: each line of the file with the commit that last
/// changed it (author, time and summary as git reports them).
pub fn parse_blame(out: &[u8]) -> Vec<(Option<CommitInfo>, String)> {
    use std::collections::HashMap;
    let mut commits: HashMap<String, CommitInfo> = HashMap::new();
    let mut lines: Vec<(Option<String>, String)> = Vec::new();
    // The commit and final line number of the group being read.
    let mut current: Option<(String, usize)> = None;
    for raw in out.split(|&b| b == b'\n') {
        if let Some(content) = raw.strip_prefix(b"\t") {
            if let Some((id, n)) = current.take()
                && (1..=MAX_BLAME_LINES * 10).contains(&n)
            {
                if lines.len() < n {
                    lines.resize(n, (None, String::new()));
                }
                lines[n - 1] = (Some(id), lossy(content));
            }
            continue;
        }
        let text = lossy(raw);
        let mut words = text.split(' ');
        let first = words.next().unwrap_or("");
        let is_header = matches!(first.len(), 40 | 64)
            && first.bytes().all(|b| b.is_ascii_hexdigit())
            && words.next().is_some_and(|w| w.parse::<usize>().is_ok());
        if is_header {
            let line = words
                .next()
                .and_then(|w| w.parse::<usize>().ok())
                .unwrap_or(0);
            commits
                .entry(first.to_owned())
                .or_insert_with(|| CommitInfo {
                    id: first.to_owned(),
                    short: first[..10].to_owned(),
                    summary: String::new(),
                    message: String::new(),
                    author: String::new(),
                    email: String::new(),
                    time: 0,
                    parents: Vec::new(),
                });
            current = Some((first.to_owned(), line));
            continue;
        }
        let Some(c) = current.as_ref().and_then(|(id, _)| commits.get_mut(id)) else {
            continue;
        };
        let (key, value) = text.split_once(' ').unwrap_or((&text, ""));
        match key {
            "author" => c.author = value.to_owned(),
            "author-mail" => value.trim_matches(['<', '>']).clone_into(&mut c.email),
            "author-time" => c.time = value.parse().unwrap_or(0),
            "summary" => {
                c.summary = value.to_owned();
                c.message = value.to_owned();
            }
            _ => {}
        }
    }
    lines
        .into_iter()
        .map(|(id, text)| (id.and_then(|id| commits.get(&id).cloned()), text))
        .collect()
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

    #[test]
    fn blame_porcelain_is_read_by_final_line() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let out = format!(
            "{b} 2 2 1\nauthor Bea\nauthor-mail <bea@x>\nauthor-time 20\nsummary second\nfilename f\n\ttwo\n\
             {a} 1 1 1\nauthor Al\nauthor-mail <al@x>\nauthor-time 10\nsummary first\nprevious {b} f\nfilename f\n\tone\n\
             {b} 3 3\n\tthree\n"
        );
        let lines = parse_blame(out.as_bytes());
        let got: Vec<(String, &str)> = lines
            .iter()
            .map(|(c, l)| {
                (
                    c.as_ref().map(|c| c.summary.clone()).unwrap_or_default(),
                    l.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("first".into(), "one"),
                ("second".into(), "two"),
                ("second".into(), "three")
            ]
        );
        let first = lines[0].0.as_ref().unwrap();
        assert_eq!(
            (first.author.as_str(), first.email.as_str(), first.time),
            ("Al", "al@x", 10)
        );
        assert!(parse_blame(b"garbage\n\tline\n0 0 0\n").is_empty());
    }

    #[test]
    fn patches_are_capped_by_lines_and_bytes() {
        let long = "+x\n".repeat(MAX_FILE_DIFF_LINES + 5);
        let (kept, cut) = cap_patch(&long);
        assert!(cut);
        assert_eq!(kept.lines().count(), MAX_FILE_DIFF_LINES);
        let wide = "é".repeat(MAX_FILE_DIFF);
        let (kept, cut) = cap_patch(&wide);
        assert!(cut && kept.len() <= MAX_FILE_DIFF);
        assert_eq!(cap_patch("+a\n-b\n"), ("+a\n-b\n".to_owned(), false));
    }
}
