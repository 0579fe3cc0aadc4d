//! What can go wrong in a backup or a restore: one variant per kind of cause, each with a
//! message that fits on one line (the command prints it as its reason).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Reading or writing a file or directory.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] mongodb::error::Error),
    #[error("{0}")]
    Domain(#[from] crate::Error),
    #[error(transparent)]
    Embedded(#[from] crate::store::embedded::EmbeddedError),
    /// A document, an index description or the manifest is not what it should be.
    #[error("{0}")]
    Format(String),
    /// A `git` command failed.
    #[error("git {what}: {detail}")]
    Git { what: String, detail: String },
    /// The backup cannot be restored as it is: missing or damaged files, checksums that do
    /// not match, a format or migration this forge does not know.
    #[error("{0}")]
    Corrupt(String),
    /// The place to write to already holds something.
    #[error("{0}")]
    NotEmpty(String),
    /// The store changed in a way a consistent copy cannot follow (a collection dropped or
    /// renamed while it was copied), even after retrying.
    #[error("{0}")]
    Unsettled(String),
}

pub type Result<T, E = BackupError> = std::result::Result<T, E>;

/// Maps an I/O error to [`BackupError::Io`] naming `path`.
pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A blocking job that panicked or was cancelled.
pub fn joined(e: &tokio::task::JoinError) -> BackupError {
    BackupError::Format(format!("a background job failed: {e}"))
}

impl From<bson::error::Error> for BackupError {
    fn from(e: bson::error::Error) -> Self {
        Self::Format(format!("BSON: {e}"))
    }
}
