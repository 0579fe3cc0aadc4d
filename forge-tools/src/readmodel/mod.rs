//! The read model: what nearly every request reads before it does anything else (its session
//! or access token, the user, the project with its members and ACL, the project's tools),
//! kept in memory so a page costs no store round trip for them.
//!
//! - **Kinds.** Each thing kept is a [`Kept`] kind defined by the module that owns its
//!   collection (`sessions`, `tokens`, `users`, `projects`, `instances`), made of [`Part`]s
//!   (bounded caches). The forge registers the kinds when it opens ([`watch::start`]);
//!   the owner modules read through theirs ([`get`], [`get_many`]) and drop what their writes
//!   change at once ([`with`]), so a node reads its own writes. This module names none of
//!   them, and a tool can bring its own.
//! - **Coherent across nodes.** Each node follows the database's change stream for the kinds'
//!   collections ([`watch`]) and hands each change to its kind, a few milliseconds after the
//!   write. Entries are served only while the stream is known to be live: the watcher polls
//!   at least every [`POLL`], and when it has not heard from the store for [`FRESH`] (a lost
//!   stream, a stalled connection) every lookup goes to the store until it resubscribes, and
//!   the caches are emptied then. A change made anywhere is thus seen everywhere within
//!   [`FRESH`] plus one poll: under a second.
//! - **No stale fills.** A lookup that missed notes its part's epoch before reading the
//!   store and keeps what it read only if no invalidation came meanwhile; otherwise a read
//!   racing a write could put the old value back after the write dropped it.
//! - **Bounded.** `FORGE_CACHE_MB`, shared out by the kinds, each entry weighed by an
//!   estimate of its size; hits, misses, evictions and bytes per part go to `/metrics`.
//!
//! Without a live model (a command-line process, a test that did not open a forge) every
//! lookup reads the store.

pub mod memo;
pub mod watch;

pub use memo::memo;

use std::any::Any;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::Duration;

use bson::{Bson, DateTime};
use moka::notification::RemovalCause;
use moka::sync::Cache;
use mongodb::Database;

use crate::error::Result;

/// The longest wait of one poll of the change stream.
pub const POLL: Duration = Duration::from_millis(250);
/// How long after the watcher last heard from the store entries are still served.
pub const FRESH: Duration = Duration::from_millis(750);

/// What changed in a kind's collection.
#[derive(Debug, Clone)]
pub struct Change {
    pub kind: ChangeKind,
    /// The changed document's `_id`.
    pub id: Option<Bson>,
    /// An update's changed and removed fields (top-level names and paths).
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Update,
    Replace,
    Delete,
}

/// One kind of thing the model keeps, by the collection it comes from.
pub trait Kept: Any + Send + Sync {
    /// The collection whose changes make its entries stale; `None` for entries no change
    /// makes stale (keyed by content), which the change stream need not carry.
    fn collection(&self) -> Option<&'static str>;
    /// Drops what a change made stale.
    fn changed(&self, change: &Change);
    /// Drops everything.
    fn reset(&self);
    /// Counters of its parts, for `/metrics`.
    fn stats(&self) -> Vec<PartStats>;
}

/// One cache of the model, with its counters.
pub struct Part<K, V> {
    name: &'static str,
    cache: Cache<K, V>,
    /// Moves on every invalidation (see the module's "no stale fills").
    epoch: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: Arc<AtomicU64>,
}

impl<K, V> Part<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub fn new(name: &'static str, max_bytes: u64, weigh: fn(&K, &V) -> u32) -> Self {
        let evictions = Arc::new(AtomicU64::new(0));
        let counted = evictions.clone();
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(weigh)
            .eviction_listener(move |_, _, cause| {
                if cause == RemovalCause::Size {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build();
        Self {
            name,
            cache,
            epoch: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions,
        }
    }

    /// The value of `key`: from memory while the model is coherent, else through `load`
    /// (kept when it found something and nothing was invalidated meanwhile).
    pub async fn get<F, Fut>(&self, model: &ReadModel, key: K, load: F) -> Result<Option<V>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>>>,
    {
        let coherent = model.coherent();
        if coherent && let Some(v) = self.cache.get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(v));
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let epoch = self.epoch.load(Ordering::Acquire);
        let found = load().await?;
        if let Some(v) = &found
            && coherent
            && model.coherent()
            && self.epoch.load(Ordering::Acquire) == epoch
        {
            self.cache.insert(key, v.clone());
        }
        Ok(found)
    }

    /// The values of several keys: those in memory, and the others through one `load` of
    /// the missing keys (kept as [`Part::get`] keeps what it loads). A key `load` does not
    /// return has no value.
    pub async fn get_many<F, Fut>(&self, model: &ReadModel, keys: &[K], load: F) -> Result<Vec<V>>
    where
        K: Clone,
        F: FnOnce(Vec<K>) -> Fut,
        Fut: Future<Output = Result<Vec<(K, V)>>>,
    {
        let coherent = model.coherent();
        let (mut found, mut missing) = (Vec::with_capacity(keys.len()), Vec::new());
        let mut asked = std::collections::HashSet::with_capacity(keys.len());
        for k in keys {
            if !asked.insert(k) {
                continue;
            }
            match self.cache.get(k).filter(|_| coherent) {
                Some(v) => found.push(v),
                None => missing.push(k.clone()),
            }
        }
        self.hits.fetch_add(found.len() as u64, Ordering::Relaxed);
        if missing.is_empty() {
            return Ok(found);
        }
        self.misses
            .fetch_add(missing.len() as u64, Ordering::Relaxed);
        let epoch = self.epoch.load(Ordering::Acquire);
        let loaded = load(missing).await?;
        let keep = coherent && model.coherent() && self.epoch.load(Ordering::Acquire) == epoch;
        for (k, v) in loaded {
            if keep {
                self.cache.insert(k, v.clone());
            }
            found.push(v);
        }
        Ok(found)
    }

    /// The value of `key` for values that never change once computed (keyed by content, as
    /// a commit's id): computed by `compute` once, however many callers ask at the same time
    /// (the others wait for that one computation and share its result), then kept until
    /// evicted. For blocking threads. A failed computation is not kept; every caller waiting
    /// on it gets the error.
    pub fn get_immutable<E>(
        &self,
        key: K,
        compute: impl FnOnce() -> std::result::Result<V, E>,
    ) -> std::result::Result<V, Arc<E>>
    where
        E: Send + Sync + 'static,
    {
        let mut computed = false;
        let v = self.cache.try_get_with(key, || {
            computed = true;
            compute()
        });
        let counter = if computed { &self.misses } else { &self.hits };
        counter.fetch_add(1, Ordering::Relaxed);
        v
    }

    /// The value of `key` if kept (counted as a hit; a miss is counted by whoever then
    /// computes it, through [`Part::get_immutable`]). For values that never go stale.
    pub fn peek(&self, key: &K) -> Option<V> {
        let v = self.cache.get(key);
        if v.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        v
    }

    pub fn invalidate(&self, key: &K) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate(key);
    }

    pub fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate_all();
    }

    pub fn stats(&self) -> PartStats {
        self.cache.run_pending_tasks();
        PartStats {
            name: self.name,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            bytes: self.cache.weighted_size(),
            entries: self.cache.entry_count(),
        }
    }
}

/// The counters of one part, for `/metrics`.
#[derive(Debug, Clone)]
pub struct PartStats {
    pub name: &'static str,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub bytes: u64,
    pub entries: u64,
}

/// The read model of one database (see the module documentation).
pub struct ReadModel {
    /// Until when (ms since the epoch) entries may be served; 0 while the stream is down.
    fresh_until: AtomicI64,
    /// Times the change stream was lost and the caches dropped.
    pub(crate) stream_losses: AtomicU64,
    kinds: Vec<Arc<dyn Kept>>,
}

/// Live models by database name (weak: a model lives as long as the forge that opened it).
static MODELS: LazyLock<Mutex<HashMap<String, Weak<ReadModel>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The size of a string, for weighing entries.
pub fn len(s: &str) -> u32 {
    u32::try_from(s.len()).unwrap_or(u32::MAX)
}

impl ReadModel {
    fn new(kinds: Vec<Arc<dyn Kept>>) -> Self {
        Self {
            fresh_until: AtomicI64::new(0),
            stream_losses: AtomicU64::new(0),
            kinds,
        }
    }

    /// The live model of `db`'s database, if a forge of this process opened one.
    pub fn of(db: &Database) -> Option<Arc<ReadModel>> {
        Self::named(db.name())
    }

    /// The live model of the database named `name`, if any.
    pub fn named(name: &str) -> Option<Arc<ReadModel>> {
        let models = MODELS.lock().unwrap_or_else(|e| e.into_inner());
        models.get(name).and_then(Weak::upgrade)
    }

    /// The model of `db`'s database keeping `kinds` (one per database and process: a second
    /// forge of the process on the same database shares the first one's), and whether it is
    /// new (then someone must follow its change stream: [`watch::start`]).
    fn register(db: &Database, kinds: Vec<Arc<dyn Kept>>) -> (Arc<ReadModel>, bool) {
        let mut models = MODELS.lock().unwrap_or_else(|e| e.into_inner());
        models.retain(|_, m| m.strong_count() > 0);
        if let Some(m) = models.get(db.name()).and_then(Weak::upgrade) {
            return (m, false);
        }
        let model = Arc::new(Self::new(kinds));
        models.insert(db.name().to_owned(), Arc::downgrade(&model));
        (model, true)
    }

    /// The kind `P`, if this model keeps it.
    pub fn part<P: Kept>(&self) -> Option<&P> {
        self.kinds
            .iter()
            .find_map(|k| (k.as_ref() as &dyn Any).downcast_ref::<P>())
    }

    /// The collections of the kinds kept.
    pub fn collections(&self) -> Vec<&'static str> {
        self.kinds.iter().filter_map(|k| k.collection()).collect()
    }

    /// Hands a change of `collection` to the kinds it concerns.
    pub fn changed(&self, collection: &str, change: &Change) {
        for k in self
            .kinds
            .iter()
            .filter(|k| k.collection() == Some(collection))
        {
            k.changed(change);
        }
    }

    /// Whether entries may be served now: the change stream was heard from lately.
    pub fn coherent(&self) -> bool {
        DateTime::now().timestamp_millis() < self.fresh_until.load(Ordering::Acquire)
    }

    /// The watcher heard from the store: entries may be served for [`FRESH`] more. After a
    /// silence longer than that (a stalled connection, a store restarted under a stream the
    /// driver resumed by itself) what is kept is dropped first, and the lapse counted as a
    /// lost stream: a resumed stream need not carry every change made meanwhile.
    fn heard(&self) {
        let now = DateTime::now().timestamp_millis();
        let was = self.fresh_until.load(Ordering::Acquire);
        if was != 0 && now >= was {
            self.stream_losses.fetch_add(1, Ordering::Relaxed);
            self.reset();
        }
        self.fresh_until
            .fetch_max(now + FRESH.as_millis() as i64, Ordering::AcqRel);
    }

    /// The stream is lost (or not there yet): nothing is served from memory, and what is
    /// there is dropped.
    fn lost(&self) {
        self.fresh_until.store(0, Ordering::Release);
        self.reset();
    }

    /// Drops every entry.
    pub fn reset(&self) {
        for k in &self.kinds {
            k.reset();
        }
    }

    /// Counters of every part, whether the model is coherent now, and the streams lost.
    pub fn stats(&self) -> (Vec<PartStats>, bool, u64) {
        (
            self.kinds.iter().flat_map(|k| k.stats()).collect(),
            self.coherent(),
            self.stream_losses.load(Ordering::Relaxed),
        )
    }
}

/// The value of `key` in the part `pick` chooses of kind `P`, through the live model of `db`
/// when there is one (see [`Part::get`]), else straight from `load`.
pub async fn get<P, K, V, F, Fut>(
    db: &Database,
    pick: fn(&P) -> &Part<K, V>,
    key: K,
    load: F,
) -> Result<Option<V>>
where
    P: Kept,
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Option<V>>>,
{
    let model = ReadModel::of(db);
    match model.as_deref().and_then(|m| Some((m, m.part::<P>()?))) {
        Some((m, kind)) => pick(kind).get(m, key, load).await,
        None => load().await,
    }
}

/// The values of `keys` in the part `pick` chooses of kind `P` (see [`Part::get_many`]).
pub async fn get_many<P, K, V, F, Fut>(
    db: &Database,
    pick: fn(&P) -> &Part<K, V>,
    keys: &[K],
    load: F,
) -> Result<Vec<V>>
where
    P: Kept,
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    F: FnOnce(Vec<K>) -> Fut,
    Fut: Future<Output = Result<Vec<(K, V)>>>,
{
    let model = ReadModel::of(db);
    match model.as_deref().and_then(|m| Some((m, m.part::<P>()?))) {
        Some((m, kind)) => pick(kind).get_many(m, keys, load).await,
        None => {
            let mut unique = keys.to_vec();
            let mut seen = std::collections::HashSet::new();
            unique.retain(|k| seen.insert(k.clone()));
            Ok(load(unique).await?.into_iter().map(|(_, v)| v).collect())
        }
    }
}

/// Runs `f` on kind `P` of `db`'s live model, if any (a write drops what it changed).
pub fn with<P: Kept>(db: &Database, f: impl FnOnce(&P)) {
    if let Some(m) = ReadModel::of(db)
        && let Some(kind) = m.part::<P>()
    {
        f(kind);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Plain {
        by_key: Part<String, u64>,
    }

    impl Kept for Plain {
        fn collection(&self) -> Option<&'static str> {
            Some("plain")
        }
        fn changed(&self, c: &Change) {
            match &c.id {
                Some(Bson::String(k)) => self.by_key.invalidate(k),
                _ => self.by_key.invalidate_all(),
            }
        }
        fn reset(&self) {
            self.by_key.invalidate_all();
        }
        fn stats(&self) -> Vec<PartStats> {
            vec![self.by_key.stats()]
        }
    }

    fn model() -> ReadModel {
        let m = ReadModel::new(vec![Arc::new(Plain {
            by_key: Part::new("plain", 1 << 20, |_, _| 64),
        })]);
        m.heard();
        m
    }

    fn part(m: &ReadModel) -> &Part<String, u64> {
        &m.part::<Plain>().unwrap().by_key
    }

    #[test]
    fn immutable_values_are_computed_once_for_concurrent_callers() {
        let part: Part<u32, u64> = Part::new("once", 1 << 20, |_, _| 64);
        let runs = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let v = part.get_immutable(7, || {
                        runs.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(50));
                        Ok::<_, String>(42)
                    });
                    assert_eq!(v.ok(), Some(42));
                });
            }
        });
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let stats = part.stats();
        assert_eq!((stats.hits, stats.misses), (7, 1));
        // A failure is not kept: the next caller computes again.
        let failed = part.get_immutable(8, || Err::<u64, _>("no".to_owned()));
        assert!(failed.is_err());
        assert_eq!(part.get_immutable(8, || Ok::<_, String>(1)).ok(), Some(1));
    }

    #[tokio::test]
    async fn a_coherent_model_serves_what_it_loaded() {
        let m = model();
        let loads = AtomicU64::new(0);
        for _ in 0..3 {
            let v = part(&m)
                .get(&m, "k".to_owned(), || async {
                    loads.fetch_add(1, Ordering::Relaxed);
                    Ok(Some(7))
                })
                .await
                .unwrap();
            assert_eq!(v, Some(7));
        }
        assert_eq!(loads.load(Ordering::Relaxed), 1);
        let s = part(&m).stats();
        assert_eq!((s.hits, s.misses), (2, 1));
    }

    #[tokio::test]
    async fn a_change_of_its_collection_drops_the_entry() {
        let m = model();
        part(&m)
            .get(&m, "k".to_owned(), || async { Ok(Some(1)) })
            .await
            .unwrap();
        let change = Change {
            kind: ChangeKind::Update,
            id: Some(Bson::String("k".into())),
            fields: vec!["x".into()],
        };
        m.changed("other", &change);
        let kept = part(&m)
            .get(&m, "k".to_owned(), || async { Ok(Some(2)) })
            .await
            .unwrap();
        assert_eq!(kept, Some(1), "another collection's change dropped it");
        m.changed("plain", &change);
        let fresh = part(&m)
            .get(&m, "k".to_owned(), || async { Ok(Some(2)) })
            .await
            .unwrap();
        assert_eq!(fresh, Some(2));
    }

    #[tokio::test]
    async fn nothing_is_served_or_kept_without_the_stream() {
        let m = model();
        m.lost();
        let loads = AtomicU64::new(0);
        for _ in 0..2 {
            part(&m)
                .get(&m, "k".to_owned(), || async {
                    loads.fetch_add(1, Ordering::Relaxed);
                    Ok(Some(1))
                })
                .await
                .unwrap();
        }
        assert_eq!(loads.load(Ordering::Relaxed), 2);
        // Heard from again, then lost: the stream's loss drops what was kept.
        m.heard();
        part(&m)
            .get(&m, "k".to_owned(), || async { Ok(Some(1)) })
            .await
            .unwrap();
        m.lost();
        m.heard();
        let again = part(&m)
            .get(&m, "k".to_owned(), || async { Ok(None) })
            .await
            .unwrap();
        assert!(again.is_none(), "an entry survived the loss of the stream");
    }

    #[tokio::test]
    async fn a_value_read_before_an_invalidation_is_not_kept() {
        let m = model();
        let v = part(&m)
            .get(&m, "k".to_owned(), || async {
                // A write lands (and invalidates) while this read is on its way.
                part(&m).invalidate(&"k".to_owned());
                Ok(Some(1))
            })
            .await
            .unwrap();
        assert_eq!(v, Some(1), "the caller still gets what it read");
        let next = part(&m)
            .get(&m, "k".to_owned(), || async { Ok(None) })
            .await
            .unwrap();
        assert!(
            next.is_none(),
            "the old value was put back after the write dropped it"
        );
    }

    #[tokio::test]
    async fn many_keys_take_one_load_for_those_missing() {
        let m = model();
        part(&m)
            .get(&m, "a".to_owned(), || async { Ok(Some(1)) })
            .await
            .unwrap();
        let asked = Mutex::new(Vec::new());
        let keys = [
            "a".to_owned(),
            "b".to_owned(),
            "b".to_owned(),
            "c".to_owned(),
        ];
        let mut got = part(&m)
            .get_many(&m, &keys, |missing| async {
                asked.lock().unwrap().push(missing.clone());
                Ok(missing
                    .into_iter()
                    .filter(|k| k != "c")
                    .map(|k| (k, 2))
                    .collect())
            })
            .await
            .unwrap();
        got.sort_unstable();
        assert_eq!(got, vec![1, 2]);
        assert_eq!(
            *asked.lock().unwrap(),
            vec![vec!["b".to_owned(), "c".to_owned()]]
        );
    }
}
