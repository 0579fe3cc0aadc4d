//! The store's health as `/healthz` reports it: a cached ping, refreshed in the background.
//! Held in the app state, so it needs nothing of the app itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The store's health as last seen, refreshed in the background: `/healthz` answers from it
/// at once, so an overloaded store or server cannot make the liveness check itself slow.
#[derive(Default)]
pub struct Health {
    /// When the store last answered a ping, and whether it did.
    last: Mutex<Option<(Instant, bool)>>,
    checking: AtomicBool,
    /// The node is stopping: it still serves, but tells the load balancer to move away.
    draining: AtomicBool,
}

/// A result newer than this is served as it is.
const FRESH: Duration = Duration::from_secs(1);
/// A result older than this is not trusted: the request pings and waits.
const STALE: Duration = Duration::from_secs(10);

impl Health {
    /// From now on `/healthz` fails, whatever the store's health.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    fn last(&self) -> Option<(Instant, bool)> {
        self.last.lock().ok().and_then(|l| *l)
    }

    async fn check(&self, db: &mongodb::Database) -> bool {
        let ok = matches!(
            tokio::time::timeout(Duration::from_secs(2), forge_tools::store::ping(db)).await,
            Ok(Ok(()))
        );
        if !ok {
            tracing::warn!("health check: store unreachable");
        }
        if let Ok(mut l) = self.last.lock() {
            *l = Some((Instant::now(), ok));
        }
        ok
    }

    /// Whether the store answers: a fresh result as it is, a recent one while a background
    /// check refreshes it, and otherwise a ping waited for.
    pub async fn store_ok(self: &Arc<Self>, db: &mongodb::Database) -> bool {
        match self.last() {
            Some((at, ok)) if at.elapsed() < FRESH => ok,
            Some((at, ok)) if at.elapsed() < STALE => {
                // Refresh in the background (one check at a time); answer with what we know.
                if !self.checking.swap(true, Ordering::AcqRel) {
                    let health = Arc::clone(self);
                    let db = db.clone();
                    tokio::spawn(async move {
                        health.check(&db).await;
                        health.checking.store(false, Ordering::Release);
                    });
                }
                ok
            }
            _ => self.check(db).await,
        }
    }
}
