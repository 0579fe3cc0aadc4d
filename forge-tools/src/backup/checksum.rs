//! Checksums as the manifest records them: SHA-256 of a file, and of a directory tree (the
//! SHA-256 of its sorted `<relative path> <file sha256>` lines, so a file renamed, added,
//! removed or changed changes it). Blocking: run them off the async threads.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::error::{BackupError, Result, io};

/// Files, bytes and checksum of a directory tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeSum {
    pub files: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// SHA-256 (hex) and length of a file.
pub fn file(path: &Path) -> Result<(String, u64)> {
    let mut f = File::open(path).map_err(io(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), bytes))
}

/// Every regular file under `root` (which may be missing: no files), as `/`-separated paths
/// relative to it, sorted. Symbolic links and other special files are refused: a backup
/// holds plain files only.
pub fn files_under(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if !root.exists() {
        return Ok(out);
    }
    let mut stack = vec![(root.to_owned(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let entry = entry.map_err(io(&dir))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io(&path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if kind.is_dir() {
                stack.push((path, rel));
            } else if kind.is_file() {
                out.push(rel);
            } else {
                return Err(BackupError::Format(format!(
                    "{} is not a regular file or directory",
                    path.display()
                )));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The checksum of the tree under `root` (see the module doc); `each` sees every file's
/// relative path, checksum and size as it goes.
pub fn tree(root: &Path, mut each: impl FnMut(&str, &str, u64) -> Result<()>) -> Result<TreeSum> {
    let mut hasher = Sha256::new();
    let mut sum = TreeSum::default();
    for rel in files_under(root)? {
        let (sha, bytes) = file(&root.join(&rel))?;
        each(&rel, &sha, bytes)?;
        hasher.update(format!("{rel} {sha}\n").as_bytes());
        sum.files += 1;
        sum.bytes += bytes;
    }
    sum.sha256 = hex::encode(hasher.finalize());
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_sums_change_with_names_and_contents() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/b/one"), b"1").unwrap();
        std::fs::write(root.join("two"), b"22").unwrap();
        let first = tree(root, |_, _, _| Ok(())).unwrap();
        assert_eq!((first.files, first.bytes), (2, 3));
        assert_eq!(files_under(root).unwrap(), ["a/b/one", "two"]);
        std::fs::write(root.join("two"), b"23").unwrap();
        let changed = tree(root, |_, _, _| Ok(())).unwrap();
        assert_ne!(first.sha256, changed.sha256);
        std::fs::rename(root.join("two"), root.join("three")).unwrap();
        let renamed = tree(root, |_, _, _| Ok(())).unwrap();
        assert_ne!(changed.sha256, renamed.sha256);
        let empty = tree(&root.join("missing"), |_, _, _| Ok(())).unwrap();
        assert_eq!(empty.files, 0);
    }
}
