//! One commit with its diff against its first parent, within the caps on files, bytes and
//! lines.

use git2::{DiffOptions, Oid, Repository};

use super::history::{CommitInfo, info};
use super::{
    MAX_DIFF_BLOB, MAX_DIFF_BYTES, MAX_DIFF_FILES, MAX_DIFF_INPUT, MAX_FILE_DIFF,
    MAX_FILE_DIFF_LINES, git, resolve,
};
use crate::error::Result;

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

#[cfg(test)]
mod tests {
    use super::*;

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
