//! [`GitSlots`]: the bound on git processes running at once. The git tool holds the one of its
//! forge (see `kind::slots`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// How long a request waits for a free git process slot before it is told to come back.
pub const SLOT_WAIT: Duration = Duration::from_secs(1);
/// What a request that finds every git slot taken is told.
pub const BUSY: &str =
    "Too many git operations are running on this server right now; try again in a few seconds.";

/// The bound on git processes running at once (`FORGE_MAX_GIT_PROCESSES`): every clone,
/// fetch, push, ref advertisement, archive and blame holds a slot while its process lives.
#[derive(Debug, Clone)]
pub struct GitSlots(Arc<Semaphore>);

/// One git process slot; freed when dropped.
#[derive(Debug)]
pub struct GitPermit(#[allow(dead_code)] OwnedSemaphorePermit);

impl GitSlots {
    pub fn new(max: usize) -> Self {
        Self(Arc::new(Semaphore::new(max.max(1))))
    }

    /// A slot, waiting at most [`SLOT_WAIT`]; `Busy` when none frees up.
    pub async fn acquire(&self) -> Result<GitPermit> {
        match tokio::time::timeout(SLOT_WAIT, self.0.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(GitPermit(permit)),
            Ok(Err(_)) => Err(Error::Internal("git process slots closed".into())),
            Err(_) => Err(Error::Busy(BUSY.into())),
        }
    }

    /// Slots free right now.
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }
}
