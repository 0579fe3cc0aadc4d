//! CPU-heavy work (markdown of large texts, diffs, highlighting) runs here: on tokio's
//! blocking threads, never on the async workers that answer every other request, and at most
//! a few at once, so a burst of expensive requests queues instead of starving the server.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// How long a request waits for a free slot before it is told the server is busy.
const WAIT: Duration = Duration::from_secs(10);

fn slots() -> Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS
        .get_or_init(|| {
            // One core is always left to the async workers, so pages, `/healthz` and the
            // accept loop keep answering while heavy work queues.
            let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
            Arc::new(Semaphore::new(cores.saturating_sub(1).max(1)))
        })
        .clone()
}

/// Runs `f` on a blocking thread once one of the heavy-work slots is free; `Busy` when none
/// frees up within a few seconds.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let permit = tokio::time::timeout(WAIT, slots().acquire_owned())
        .await
        .map_err(|_| Error::Busy("The server is busy; try again in a moment.".into()))?
        .map_err(|e| Error::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
    })
    .await
    .map_err(|e| Error::Internal(format!("background work failed: {e}")))
}
