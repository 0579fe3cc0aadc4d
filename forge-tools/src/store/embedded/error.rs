//! What goes wrong running the embedded store.

use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;

use super::binary::{INSTALL_HINT, SERVER_BINARY};

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error(
        "no embedded store: `{SERVER_BINARY}` is not installed; install it with `{INSTALL_HINT}` or set FORGE_MONGODB_URI"
    )]
    NotInstalled,
    #[error("could not start {SERVER_BINARY}: {0}")]
    Spawn(std::io::Error),
    #[error("{SERVER_BINARY} exited before it was ready: {0}")]
    EarlyExit(String),
    #[error("{SERVER_BINARY} did not report its port within {0:?}")]
    Timeout(Duration),
    #[error("cannot lock {0}: {1}")]
    Lock(PathBuf, Errno),
    #[error(
        "another forge process on this data dir holds the embedded store, but no store answered within {0:?}"
    )]
    Busy(Duration),
}
