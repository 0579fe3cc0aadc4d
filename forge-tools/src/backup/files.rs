//! Attachment files. They are stored by content (`<first two hex digits>/<sha256>`), written
//! whole under a temporary name and renamed into place before their record is inserted,
//! never changed afterwards, and removed only after their last record is. So a copy needs
//! no lock: every file present before the store is copied is copied first, then (once the
//! copied records are known) any file they name that appeared meanwhile, and files no
//! copied record names are left out. Every file is checked against its name as it is
//! copied, in both directions.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::checksum::{self, TreeSum};
use super::error::{BackupError, Result, io};

/// Whether `rel` is a content file's path: `ab/ab<62 more hex digits>`.
fn content_name(rel: &str) -> Option<&str> {
    let (dir, name) = rel.split_once('/')?;
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    (name.len() == 64 && hex(name) && dir.len() == 2 && name.starts_with(dir)).then_some(name)
}

fn path_of(root: &Path, sha: &str) -> std::path::PathBuf {
    root.join(&sha[..2]).join(sha)
}

/// Copies `from` to `to` (through a temporary file) checking its content is `sha`; returns
/// its size.
fn copy_checked(from: &Path, to: &Path, sha: &str) -> Result<u64> {
    let mut input = std::fs::File::open(from).map_err(io(from))?;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let tmp = to.with_extension("part");
    let mut out = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = input.read(&mut buf).map_err(io(from))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io(&tmp))?;
        size += n as u64;
    }
    out.sync_all().map_err(io(&tmp))?;
    drop(out);
    if hex::encode(hasher.finalize()) != sha {
        let _ = std::fs::remove_file(&tmp);
        return Err(BackupError::Corrupt(format!(
            "attachment file {} does not match its checksum (damaged on disk)",
            from.display()
        )));
    }
    std::fs::rename(&tmp, to).map_err(io(to))?;
    Ok(size)
}

/// Copies every content file under `src` into `dest` (the first pass); returns how many.
pub fn copy_present(src: &Path, dest: &Path, mut each: impl FnMut(u64)) -> Result<u64> {
    let mut copied = 0;
    for rel in checksum::files_under(src)? {
        let Some(sha) = content_name(&rel) else {
            // `tmp/` uploads in progress, and anything else that is not a stored file.
            continue;
        };
        match copy_checked(&src.join(&rel), &path_of(dest, sha), sha) {
            Ok(size) => {
                copied += 1;
                each(size);
            }
            // Removed since it was listed: its record is gone too, or it is not wanted.
            Err(BackupError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(copied)
}

/// The second pass: copies the `wanted` files `dest` lacks from `src` and removes from
/// `dest` those not wanted; returns how many were added.
pub fn settle(src: &Path, dest: &Path, wanted: &HashSet<String>) -> Result<u64> {
    let mut added = 0;
    let mut sorted: Vec<&String> = wanted.iter().collect();
    sorted.sort();
    for sha in sorted {
        if content_name(&format!("{}/{sha}", sha.get(..2).unwrap_or(""))).is_none() {
            return Err(BackupError::Format(format!(
                "an attachment record names {sha:?}, which is not a checksum"
            )));
        }
        let to = path_of(dest, sha);
        if to.exists() {
            continue;
        }
        let from = path_of(src, sha);
        if !from.exists() {
            return Err(BackupError::Unsettled(format!(
                "attachment file {} was removed during the backup (or is missing); run the backup again",
                from.display()
            )));
        }
        copy_checked(&from, &to, sha)?;
        added += 1;
    }
    for rel in checksum::files_under(dest)? {
        if content_name(&rel).is_none_or(|sha| !wanted.contains(sha)) {
            let path = dest.join(&rel);
            std::fs::remove_file(&path).map_err(io(&path))?;
        }
    }
    Ok(added)
}

/// Checks every file under `root` is a content file whose content matches its name; the
/// tree's checksum.
pub fn verify(root: &Path) -> Result<TreeSum> {
    checksum::tree(root, |rel, sha, _| match content_name(rel) {
        Some(name) if name == sha => Ok(()),
        _ => Err(BackupError::Corrupt(format!(
            "attachment file {} does not match its checksum",
            root.join(rel).display()
        ))),
    })
}

/// Copies the backup's files under `src` into the data dir's `dest`; returns how many.
pub fn restore(src: &Path, dest: &Path, mut each: impl FnMut(u64)) -> Result<u64> {
    let mut copied = 0;
    for rel in checksum::files_under(src)? {
        let Some(sha) = content_name(&rel) else {
            return Err(BackupError::Corrupt(format!(
                "{} is not an attachment file",
                src.join(&rel).display()
            )));
        };
        let size = copy_checked(&src.join(&rel), &path_of(dest, sha), sha)?;
        copied += 1;
        each(size);
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_content_files_count() {
        let sha = hex::encode(Sha256::digest(b"x"));
        assert_eq!(
            content_name(&format!("{}/{sha}", &sha[..2])),
            Some(sha.as_str())
        );
        assert_eq!(content_name(&format!("zz/{sha}")), None);
        assert_eq!(content_name("tmp/65f0a1b2c3d4e5f6a7b8c9d0"), None);
    }

    #[test]
    fn passes_copy_what_is_named_and_refuse_damage() {
        let (src, dest) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let put = |content: &[u8]| {
            let sha = hex::encode(Sha256::digest(content));
            let p = path_of(src.path(), &sha);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
            sha
        };
        let kept = put(b"kept");
        let dropped = put(b"dropped");
        assert_eq!(copy_present(src.path(), dest.path(), |_| {}).unwrap(), 2);
        let late = put(b"late");
        let wanted: HashSet<String> = [kept.clone(), late.clone()].into();
        assert_eq!(settle(src.path(), dest.path(), &wanted).unwrap(), 1);
        assert!(path_of(dest.path(), &late).exists());
        assert!(!path_of(dest.path(), &dropped).exists());
        assert_eq!(verify(dest.path()).unwrap().files, 2);
        std::fs::write(path_of(dest.path(), &kept), b"changed").unwrap();
        assert!(verify(dest.path()).is_err());
    }
}
