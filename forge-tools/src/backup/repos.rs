//! Git repositories. Each is copied as a bundle, `git bundle create --all`: git reads the
//! refs first, then packs every object they reach (objects never change, and git finds them
//! across a repack that runs meanwhile), so the bundle is a complete, valid repository as of
//! the moment its refs were read, whatever is pushed while it is written. Beside it go the
//! files a forge repository has besides refs and objects: `HEAD` (the default branch),
//! `config` (what the forge set at creation: pushes over HTTP, filters, bitmaps...),
//! `description`, `hooks/` and `info/`. A restore makes a bare repository, puts those files
//! back, fetches every ref from the bundle, and checks the refs are all there.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::error::{BackupError, Result, io};
use super::manifest::repo_path_ok;

/// The bundle's name in a repository's folder of the backup (absent: no refs).
pub const BUNDLE: &str = "repo.bundle";
/// Files kept beside the bundle.
const FILES: &[&str] = &["HEAD", "config", "description"];
/// Folders kept beside the bundle (all their files).
const DIRS: &[&str] = &["hooks", "info"];
/// Files of `info/` that git generates for dumb HTTP; not copied.
const GENERATED: &[&str] = &["refs", "packs"];

/// Every repository of the data dir as (path relative to the data dir, where it is): the
/// folders of `repos/` and `repos-removed/` that hold a `HEAD`.
pub fn list(repos_root: &Path, removed_root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for (top, root) in [("repos", repos_root), ("repos-removed", removed_root)] {
        let entries = match std::fs::read_dir(root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(root)(e)),
        };
        for entry in entries {
            let path = entry.map_err(io(root))?.path();
            if !path.join("HEAD").is_file() {
                continue;
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let rel = format!("{top}/{name}");
            if !repo_path_ok(&rel) {
                tracing::warn!(path = %path.display(), "not backed up: unexpected repository name");
                continue;
            }
            out.push((rel, path));
        }
    }
    out.sort();
    Ok(out)
}

/// `git` with a clean environment (no user or system configuration).
fn git(home: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null());
    cmd
}

fn run(cmd: &mut Command, what: &str) -> Result<String> {
    let out = cmd.output().map_err(|e| BackupError::Git {
        what: what.to_owned(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(BackupError::Git {
            what: what.to_owned(),
            detail: String::from_utf8_lossy(&out.stderr)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        })
    }
}

/// Copies the repository at `src` into the folder `dest` (created); returns its refs count.
pub fn backup_one(src: &Path, dest: &Path) -> Result<u64> {
    std::fs::create_dir_all(dest).map_err(io(dest))?;
    copy_meta(src, dest)?;
    let bundle = dest.join(BUNDLE);
    let made = run(
        git(src)
            .arg("-c")
            .arg(format!("safe.directory={}", src.display()))
            .arg("--git-dir")
            .arg(src)
            .args(["bundle", "create", "-q"])
            .arg(&bundle)
            .arg("--all"),
        &format!("bundle of {}", src.display()),
    );
    match made {
        Ok(_) => {}
        // No refs yet (a repository nobody pushed to): nothing but the files.
        Err(BackupError::Git { detail, .. }) if detail.contains("empty bundle") => {
            let _ = std::fs::remove_file(&bundle);
            return Ok(0);
        }
        Err(e) => return Err(e),
    }
    let heads = run(
        git(dest).arg("bundle").arg("list-heads").arg(&bundle),
        &format!("list-heads of {}", bundle.display()),
    )?;
    Ok(count_refs(&heads))
}

/// Refs in `git bundle list-heads` or `git for-each-ref` output, `HEAD` not counted.
fn count_refs(listing: &str) -> u64 {
    listing
        .lines()
        .filter(|l| {
            let name = l.split_whitespace().last().unwrap_or("");
            !name.is_empty() && name != "HEAD"
        })
        .count() as u64
}

/// The files of [`FILES`] and [`DIRS`] from `src` into `dest`.
fn copy_meta(src: &Path, dest: &Path) -> Result<()> {
    for name in FILES {
        let from = src.join(name);
        if from.is_file() {
            let to = dest.join(name);
            std::fs::copy(&from, &to).map_err(io(&to))?;
        }
    }
    for dir in DIRS {
        let from = src.join(dir);
        if !from.is_dir() {
            continue;
        }
        for rel in super::checksum::files_under(&from)? {
            if *dir == "info" && GENERATED.contains(&rel.as_str()) {
                continue;
            }
            let to = dest.join(dir).join(&rel);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(io(parent))?;
            }
            std::fs::copy(from.join(&rel), &to).map_err(io(&to))?;
        }
    }
    Ok(())
}

/// Makes the repository `dest` (which must not exist) from its folder `src` of a backup,
/// and checks it has the `refs` the backup recorded.
pub fn restore_one(src: &Path, dest: &Path, refs: u64) -> Result<()> {
    if dest.exists() {
        return Err(BackupError::NotEmpty(format!(
            "{} already exists",
            dest.display()
        )));
    }
    std::fs::create_dir_all(dest).map_err(io(dest))?;
    run(
        git(dest)
            .args(["init", "-q", "--bare", "--template="])
            .arg(dest),
        &format!("init of {}", dest.display()),
    )?;
    copy_meta(src, dest)?;
    let bundle = src.join(BUNDLE);
    if bundle.is_file() {
        let bundle = std::fs::canonicalize(&bundle).map_err(io(&bundle))?;
        run(
            git(dest)
                .arg("--git-dir")
                .arg(dest)
                .args(["fetch", "-q", "--no-write-fetch-head"])
                .arg(&bundle)
                .arg("+refs/*:refs/*"),
            &format!("fetch into {}", dest.display()),
        )?;
    }
    let listed = run(
        git(dest)
            .arg("--git-dir")
            .arg(dest)
            .args(["for-each-ref", "--format=%(refname)"]),
        &format!("for-each-ref in {}", dest.display()),
    )?;
    let found = count_refs(&listed);
    if found != refs {
        return Err(BackupError::Corrupt(format!(
            "{} has {found} refs after the restore, the backup recorded {refs}",
            dest.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_counted_without_head() {
        let heads = "a1 refs/heads/main\nb2 refs/tags/v1\na1 HEAD\n";
        assert_eq!(count_refs(heads), 2);
        assert_eq!(count_refs("refs/heads/main\n"), 1);
        assert_eq!(count_refs(""), 0);
    }
}
