//! `manifest.json`: what a backup holds and how to check it. Written last, so a directory
//! without one is an unfinished backup.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{BackupError, Result, io};

pub const FILE: &str = "manifest.json";
/// The folders of the forge's database and of the event log's.
pub const STORE_DIR: &str = "store";
pub const LOG_DIR: &str = "events";
/// The layout this forge writes. Format 2 added `events/` (the event log's database): a
/// forge that reads only format 1 would restore such a backup without its event log, so
/// it refuses it. Format 1 backups are read too (their log is among `collections`).
pub const FORMAT: u32 = 2;
/// The oldest layout this forge reads.
const OLDEST_FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`FORMAT`]).
    pub format: u32,
    /// Version of the forge that made the backup.
    pub forge_version: String,
    /// When the backup started and ended (RFC 3339, UTC).
    pub created: String,
    pub finished: String,
    pub store: StoreInfo,
    pub consistency: Consistency,
    pub collections: Vec<CollectionEntry>,
    /// The event log's database, copied after the rest (`events/`); missing from backups of
    /// versions that kept the log among `collections`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_log: Option<LogInfo>,
    pub repositories: Vec<RepoEntry>,
    pub attachments: TreeEntry,
}

/// The event log's database (see `crate::events::log_db`): its collections are files under
/// `events/`, as those of `collections` are under `store/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogInfo {
    pub database: String,
    pub consistency: Consistency,
    pub collections: Vec<CollectionEntry>,
}

/// The database the documents come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreInfo {
    /// What the store server reports (`buildInfo.version`).
    pub server_version: String,
    pub database: String,
    /// The store migrations applied when the backup was made, in order; the last one is the
    /// schema version.
    pub migrations: Vec<String>,
}

/// How the documents were made consistent (see the module doc of `backup`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Consistency {
    /// `change-stream`: every collection as of one moment, the end of the copy.
    pub method: String,
    /// The store's cluster time of that moment (`[seconds, increment]`), when it reported
    /// one.
    pub cluster_time: Option<[u32; 2]>,
    /// Changes made while the collections were copied, applied to the copy.
    pub changes_applied: u64,
    /// Copies started over because the store changed shape (a collection dropped or
    /// renamed) during one.
    pub retries: u32,
}

/// One collection: `store/<file>.bson` and `store/<file>.metadata.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CollectionEntry {
    pub name: String,
    /// File name stem under `store/` (the name, with anything unsafe in a file name escaped).
    pub file: String,
    pub count: u64,
    pub bytes: u64,
    pub sha256: String,
    pub metadata_sha256: String,
}

/// One git repository: a directory under `repos/` of the backup holding its bundle and the
/// files the forge's repositories carry besides objects and refs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoEntry {
    /// Where it lives in the data dir: `repos/<tool id>.git` (or `repos-removed/...` for
    /// repositories of removed tools, which the forge keeps).
    pub path: String,
    /// References in the bundle (branches, tags, ...; `HEAD` not counted).
    pub refs: u64,
    pub tree: TreeEntry,
}

/// A directory tree of the backup: files, bytes, checksum (see `checksum::tree`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TreeEntry {
    pub files: u64,
    pub bytes: u64,
    pub sha256: String,
}

impl From<super::checksum::TreeSum> for TreeEntry {
    fn from(s: super::checksum::TreeSum) -> Self {
        Self {
            files: s.files,
            bytes: s.bytes,
            sha256: s.sha256,
        }
    }
}

impl Manifest {
    /// Writes `manifest.json` into `dir` (through a temporary file, so it appears whole).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = dir.join(FILE);
        let tmp = dir.join(format!("{FILE}.tmp"));
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| BackupError::Format(format!("manifest: {e}")))?;
        std::fs::write(&tmp, json).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    /// Reads `manifest.json` of the backup in `dir`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(BackupError::Corrupt(format!(
                    "{} is not a finished backup: it has no {FILE}",
                    dir.display()
                )));
            }
            Err(e) => return Err(io(&path)(e)),
        };
        let m: Self = serde_json::from_slice(&bytes)
            .map_err(|e| BackupError::Corrupt(format!("{} is unreadable: {e}", path.display())))?;
        if !(OLDEST_FORMAT..=FORMAT).contains(&m.format) {
            return Err(BackupError::Corrupt(format!(
                "{} has format {}, this forge reads formats {OLDEST_FORMAT} to {FORMAT}",
                path.display(),
                m.format
            )));
        }
        m.check_names()?;
        Ok(m)
    }

    /// Every collection with the backup's folder its files are in (`store`, `events`).
    pub fn all_collections(&self) -> impl Iterator<Item = (&'static str, &CollectionEntry)> {
        let log = self.event_log.iter().flat_map(|l| &l.collections);
        self.collections
            .iter()
            .map(|c| (STORE_DIR, c))
            .chain(log.map(|c| (LOG_DIR, c)))
    }

    /// Refuses names that would write outside the places a restore writes to.
    fn check_names(&self) -> Result<()> {
        for (_, c) in self.all_collections() {
            if c.name.is_empty() || c.name.starts_with("system.") || c.name.contains('\0') {
                return Err(BackupError::Corrupt(format!(
                    "the manifest names a collection {:?} a restore does not write",
                    c.name
                )));
            }
            if c.file != file_stem(&c.name) {
                return Err(BackupError::Corrupt(format!(
                    "the manifest names file {:?} for collection {:?}",
                    c.file, c.name
                )));
            }
        }
        for r in &self.repositories {
            if !repo_path_ok(&r.path) {
                return Err(BackupError::Corrupt(format!(
                    "the manifest names a repository path {:?} outside repos/",
                    r.path
                )));
            }
        }
        Ok(())
    }
}

/// A repository path as the data dir has them: `repos/<name>` or `repos-removed/<name>`,
/// one plain name (letters, digits, `.`, `-`, `_`; not `.` or `..`).
pub fn repo_path_ok(path: &str) -> bool {
    let Some((top, name)) = path.split_once('/') else {
        return false;
    };
    matches!(top, "repos" | "repos-removed")
        && !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// A collection's file name stem: the name, with bytes other than letters, digits, `.`,
/// `-` and `_` written `%XX` (and `%` itself), as mongodump escapes them.
pub fn file_stem(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_their_folder_are_refused() {
        assert!(repo_path_ok("repos/65f0a1b2c3d4e5f6a7b8c9d0.git"));
        assert!(repo_path_ok("repos-removed/1712345-abc.git"));
        assert!(!repo_path_ok("repos/../etc"));
        assert!(!repo_path_ok("repos/a/b"));
        assert!(!repo_path_ok("attachments/x"));
        assert!(!repo_path_ok("repos/.."));
        assert_eq!(file_stem("wiki_pages"), "wiki_pages");
        assert_eq!(file_stem("a/b c%"), "a%2Fb%20c%25");
    }

    fn with_format(format: u32) -> Manifest {
        let consistency = Consistency {
            method: "change-stream".into(),
            cluster_time: None,
            changes_applied: 0,
            retries: 0,
        };
        Manifest {
            format,
            forge_version: "0".into(),
            created: String::new(),
            finished: String::new(),
            store: StoreInfo {
                server_version: String::new(),
                database: "forge".into(),
                migrations: Vec::new(),
            },
            consistency: consistency.clone(),
            collections: Vec::new(),
            event_log: (format >= 2).then(|| LogInfo {
                database: "forge_events".into(),
                consistency,
                collections: Vec::new(),
            }),
            repositories: Vec::new(),
            attachments: TreeEntry::default(),
        }
    }

    #[test]
    fn backups_of_a_newer_layout_are_refused_and_older_ones_read() {
        let dir = tempfile::tempdir().unwrap();
        for format in [1, 2] {
            with_format(format).write(dir.path()).unwrap();
            let read = Manifest::read(dir.path()).unwrap();
            assert_eq!(read.format, format);
            assert_eq!(read.event_log.is_some(), format >= 2);
        }
        with_format(FORMAT + 1).write(dir.path()).unwrap();
        let err = Manifest::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("reads formats 1 to 2"), "{err}");
    }
}
