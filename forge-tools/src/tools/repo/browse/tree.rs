//! Refs, directories and files at a commit (sizes read from object headers, so nothing large
//! is loaded to list or cap it), and the README shown on a repository's front page.

use std::path::Path;

use git2::{ObjectType, Oid, Repository};

use super::{MAX_BLOB, check_path, git, lossy};
use crate::error::{Error, Result};

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
