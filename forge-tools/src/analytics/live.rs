//! Live statistics: after each run, the new values of the project figures it changed go to
//! every web node, where the statistics pages' WebSockets pick their project's.
//!
//! In one process the [`Hub`] hands updates straight to its subscribers. With a broker, a
//! [`Relay`] (a fanout exchange) carries them to every node's hub, the sender's included, so
//! whichever process ran the aggregation, every page sees the change.
//!
//! The same news keeps the node's cache of query answers ([`Answers`]) true: every run that
//! counted something is announced (with no updates when no project figure changed), and an
//! announcement, from this node or another, retires every cached answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::builtin;
use super::run::Touched;

/// Updates a slow subscriber may fall behind by before it is dropped.
const CAPACITY: usize = 4_096;

/// A project figure's new value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveUpdate {
    /// Project key (`<shortname>` or `u/<username>`).
    pub project: String,
    pub series: String,
    /// `day` or `month`.
    pub interval: String,
    /// Start of the day or month, epoch milliseconds.
    pub t: i64,
    pub v: i64,
}

impl LiveUpdate {
    /// The update for a changed project output document, if it is one of a project series.
    pub fn from_touched(t: &Touched) -> Option<Self> {
        let interval = match t.output {
            builtin::PROJECT_DAY | builtin::PROJECT_VISITORS_DAY => "day",
            builtin::PROJECT_MONTH | builtin::PROJECT_VISITORS_MONTH => "month",
            _ => return None,
        };
        let (head, date) = t.key.rsplit_once('/')?;
        let (project, series) = head.rsplit_once('/')?;
        Some(Self {
            project: project.to_owned(),
            series: series.to_owned(),
            interval: interval.to_owned(),
            t: super::key_time(date)?,
            v: t.value,
        })
    }
}

/// Carries updates between nodes (a broker's fanout exchange); whatever it receives, from
/// any node, it hands to [`Hub::deliver`].
pub trait Relay: Send + Sync {
    fn send(&self, bytes: Vec<u8>);
}

/// This process's end of the live updates.
pub struct Hub {
    tx: broadcast::Sender<Arc<LiveUpdate>>,
    relay: OnceLock<Arc<dyn Relay>>,
    answers: Answers,
}

/// How long a cached answer is kept at most: the bound on staleness should an announcement
/// be lost (a broker restarting), or never come (several nodes without a broker).
const ANSWER_TTL: Duration = Duration::from_secs(2);

/// Rows of a query-service answer: key (epoch ms or text) and value.
pub type Rows = Arc<Vec<(bson::Bson, i64)>>;

/// Recent answers of the query service by query, each with the generation of the outputs it
/// was read at; the generation moves with every announced run, which retires them all.
pub struct Answers {
    generation: AtomicU64,
    cache: moka::sync::Cache<String, (u64, Rows)>,
}

impl Answers {
    fn new() -> Self {
        Self {
            generation: AtomicU64::new(0),
            cache: moka::sync::Cache::builder()
                // In bytes, the query included: anyone may ask, with long odd queries.
                .weigher(|k: &String, v: &(u64, Rows)| {
                    (k.len() + 64 + 48 * v.1.len())
                        .try_into()
                        .unwrap_or(u32::MAX)
                })
                // 16 MB: about 900 answers of a year of days.
                .max_capacity(16 << 20)
                .time_to_live(ANSWER_TTL)
                .build(),
        }
    }

    /// The outputs' generation now: read it before reading outputs, and store what was read
    /// with it ([`Answers::put`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The answer to `query` if one was read since the last change.
    pub fn get(&self, query: &str) -> Option<Rows> {
        self.cache
            .get(query)
            .filter(|(g, _)| *g == self.generation())
            .map(|(_, rows)| rows)
    }

    /// Keeps an answer read at `generation` (a change since then makes it unused).
    pub fn put(&self, query: String, generation: u64, rows: Rows) {
        if generation == self.generation() {
            self.cache.insert(query, (generation, rows));
        }
    }

    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate_all();
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("subscribers", &self.tx.receiver_count())
            .field("relayed", &self.relay.get().is_some())
            .finish()
    }
}

impl Hub {
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
            relay: OnceLock::new(),
            answers: Answers::new(),
        }
    }

    /// This node's cached query answers.
    pub fn answers(&self) -> &Answers {
        &self.answers
    }

    /// Sends updates through the broker from now on (once).
    pub fn set_relay(&self, relay: Arc<dyn Relay>) {
        let _ = self.relay.set(relay);
    }

    /// Updates from now on. A receiver that falls [`CAPACITY`] behind gets `Lagged`: the
    /// page is then dropped rather than slowing anyone.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveUpdate>> {
        self.tx.subscribe()
    }

    /// Announces a run that counted something, with the project figures it changed (maybe
    /// none), to every node (or, without a relay, to this one).
    pub fn publish(&self, updates: Vec<LiveUpdate>) {
        match self.relay.get() {
            // This node's answers go at once, not when the broker brings the news back.
            Some(relay) => match serde_json::to_vec(&updates) {
                Ok(bytes) => {
                    self.answers.changed();
                    relay.send(bytes);
                }
                Err(e) => tracing::warn!(error = %e, "live update not encoded"),
            },
            None => self.local(updates),
        }
    }

    /// Hands updates received from the relay to this node's subscribers.
    pub fn deliver(&self, bytes: &[u8]) {
        match serde_json::from_slice::<Vec<LiveUpdate>>(bytes) {
            Ok(updates) => self.local(updates),
            Err(e) => tracing::warn!(error = %e, "unreadable live update dropped"),
        }
    }

    fn local(&self, updates: Vec<LiveUpdate>) {
        self.answers.changed();
        for u in updates {
            // No subscribers is not an error.
            let _ = self.tx.send(Arc::new(u));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_project_documents_become_updates() {
        let t = Touched {
            output: builtin::PROJECT_DAY,
            key: "u/bob/views:wiki/1970-01-02".into(),
            value: 7,
        };
        assert_eq!(
            LiveUpdate::from_touched(&t),
            Some(LiveUpdate {
                project: "u/bob".into(),
                series: "views:wiki".into(),
                interval: "day".into(),
                t: 86_400_000,
                v: 7,
            })
        );
        let site = Touched {
            output: builtin::SITE_DAY,
            key: "site/logins/1970-01-02".into(),
            value: 1,
        };
        assert_eq!(LiveUpdate::from_touched(&site), None);
    }

    #[tokio::test]
    async fn relayed_updates_reach_subscribers_through_deliver() {
        struct Loop(Arc<Hub>);
        impl Relay for Loop {
            fn send(&self, bytes: Vec<u8>) {
                self.0.deliver(&bytes);
            }
        }
        let hub = Arc::new(Hub::new());
        hub.set_relay(Arc::new(Loop(hub.clone())));
        let mut rx = hub.subscribe();
        let u = LiveUpdate {
            project: "p1".into(),
            series: "clones".into(),
            interval: "day".into(),
            t: 0,
            v: 3,
        };
        hub.publish(vec![u.clone()]);
        assert_eq!(*rx.recv().await.unwrap(), u);
    }

    #[test]
    fn an_announced_run_retires_cached_answers() {
        let hub = Hub::new();
        let answers = hub.answers();
        let rows = Arc::new(vec![(bson::Bson::Int64(0), 1)]);
        let g = answers.generation();
        answers.put("q1".into(), g, rows.clone());
        assert!(answers.get("q1").is_some_and(|r| Arc::ptr_eq(&r, &rows)));
        // A run announced (even one that changed no project figure): the answer is gone.
        hub.publish(Vec::new());
        assert!(answers.get("q1").is_none());
        // An answer read before the change is not kept.
        answers.put("q2".into(), g, rows);
        assert!(answers.get("q2").is_none());
    }
}
