//! Reading a repository for the browser and REST: refs, trees, blobs, logs, commits with
//! diffs, and the reading of `git blame` output. Everything reads git objects through git2
//! (blocking: call from `spawn_blocking`). Ref names and paths from URLs are validated before
//! use; sizes are capped, so no page costs more than its caps whatever the repository holds.
//!
//! This module holds the caps, opening a repository and validating and resolving what a URL
//! names; `tree` reads refs, directories and files, `history` commits and logs, `commit` one
//! commit's diff, `blame` git's blame output.

mod blame;
mod commit;
mod history;
mod tree;

use std::path::Path;

use git2::{Oid, Repository};

use crate::error::{Error, Result};
pub use blame::parse_blame;
pub use commit::{CommitDetail, FileDiff, commit};
pub use history::{CommitInfo, LastCommits, last_commits, log};
pub use tree::{Blob, MAX_RAW_LOADED, Raw, RefEntry, TreeEntry, blob, raw, readme, refs, tree};

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

pub(super) fn git(e: git2::Error) -> Error {
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
        .unwrap_or_else(|| crate::tools::repo::DEFAULT_BRANCH.to_owned())
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
