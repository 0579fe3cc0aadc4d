//! The event log (Zarkov's format): every domain action records
//! `{timestamp, type, context: {neighborhood, project, tool, user, visitor, private}, extra}` in
//! the `events` collection, which the analytics aggregations (`crate::analytics`) read.
//!
//! The log and its counter live in a database of their own, the forge's name with
//! [`DB_SUFFIX`] (see [`log_db`]): the read model follows the forge's database's change
//! stream, and a store builds a change event for every insert into a watched database, even
//! one the stream's filter drops. Kept apart, the log's inserts cost the store a quarter to a
//! third less CPU (`bench/store-watch.py`). [`ensure_indexes`] moves the log of an earlier
//! version there.
//!
//! Recording never waits for the store: events go through a bounded channel to a writer task
//! that inserts them in unordered batches; when the channel is full the event is dropped and
//! counted ([`EventStats`]), never blocking the request that recorded it.
//!
//! Each written batch is numbered from a store-wide counter of events: the counter moves by
//! the batch's size and the batch takes the new value (the position of its last event in the
//! log). Its events get the ids `batch << ID_SHIFT | index`, with the batch's size in `n`.
//! Ids therefore follow the order batches were numbered on every node; a reader can tell a
//! batch it sees in part (still being written) from a whole one, and batch `b` of size `n`
//! follows batch `b - n` directly. A range of batch numbers is a range of log positions, so a
//! reader takes a bounded number of events with a closed range of ids: what the aggregations
//! need to count each event once, quickly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bson::raw::cstr;
use bson::{Bson, DateTime, Document, RawBsonRef, RawDocumentBuf, doc};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Client, Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot, watch};

use crate::activity::{ACTIVITY, is_activity};
use crate::error::{Error, Result};

pub const COLLECTION: &str = "events";
/// What the name of the log's database adds to the forge's (see [`log_db`]).
pub const DB_SUFFIX: &str = "_events";
/// The longest database name the forge may be given: the log's must fit MongoDB's 63 bytes.
pub const MAX_DB_NAME: usize = 63 - DB_SUFFIX.len();
/// The event counter (`{_id: "events", seq}`): the number of the last batch numbered.
pub const SEQUENCE: &str = "event_sequence";
/// Bits of an event id that number the event within its batch.
pub const ID_SHIFT: u32 = 20;
/// Largest batch one insert writes (`forge events load` and `POST /rest/events` too).
pub const MAX_BATCH: usize = 10_000;
/// Events waiting for the writer; more are dropped.
const QUEUE: usize = 200_000;
/// Batches the writer has in flight at once: a batch is numbered and sent while the store
/// still writes the one before.
const IN_FLIGHT: usize = 4;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventContext {
    pub neighborhood: Option<String>,
    pub project: Option<String>,
    /// The tool's mount point in the project.
    pub tool: Option<String>,
    pub user: Option<String>,
    /// Anonymous visitors: a digest of the address with a site secret and the day, so a
    /// visitor is counted once a day and cannot be followed from one day to the next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor: Option<String>,
    /// The project was private when this happened (per-user figures leave it out).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
    /// The address the request came from: only used to derive `visitor`, never stored.
    #[serde(skip)]
    pub ip: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub timestamp: DateTime,
    #[serde(rename = "type")]
    pub kind: String,
    pub context: EventContext,
    pub extra: Bson,
}

enum Msg {
    Event(Box<Event>),
    Flush(oneshot::Sender<()>),
}

/// Counters of the log, for `/metrics`.
#[derive(Debug, Default)]
pub struct EventStats {
    pub written: AtomicU64,
    /// Dropped because the writer's queue was full.
    pub dropped: AtomicU64,
    /// Lost because the store refused or failed the insert.
    pub failed: AtomicU64,
}

/// Handle for recording events; cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    tx: mpsc::Sender<Msg>,
    salt: Arc<[u8]>,
    stats: Arc<EventStats>,
    written: Arc<watch::Sender<u64>>,
    db: Database,
    /// The log's database (see [`log_db`]).
    log: Database,
}

/// The database of the event log of the forge whose database is `db`: same client, the
/// name with [`DB_SUFFIX`].
pub fn log_db(db: &Database) -> Database {
    db.client().database(&format!("{}{DB_SUFFIX}", db.name()))
}

/// The forge's databases: its own, and the event log's (see [`log_db`]) on a
/// client of its own when the caller made one (see [`crate::store::connect_log`]).
#[derive(Clone)]
pub struct Databases {
    main: Database,
    log: Database,
}

impl Databases {
    /// `main`, and the event log's database on `log_client`.
    pub fn new(main: Database, log_client: &Client) -> Self {
        let log = log_client.database(log_db(&main).name());
        Self { main, log }
    }

    pub fn main(&self) -> &Database {
        &self.main
    }

    pub fn log(&self) -> &Database {
        &self.log
    }
}

/// The event log on the same client as the forge's database.
impl From<Database> for Databases {
    fn from(main: Database) -> Self {
        let log = log_db(&main);
        Self { main, log }
    }
}

/// The event log of the forge whose database is `db`.
pub fn collection<T: Send + Sync>(db: &Database) -> Collection<T> {
    log_db(db).collection(COLLECTION)
}

/// Moves an earlier version's log, its counter first, then its events, and then makes the
/// log's indexes.
pub async fn ensure_indexes(db: &Database, retention_days: u64) -> Result<()> {
    let log = log_db(db);
    // One question to the store in the usual case, where there is nothing to move.
    let earlier = db
        .list_collection_names()
        .filter(doc! {"name": {"$in": [SEQUENCE, COLLECTION]}})
        .await?;
    for name in [SEQUENCE, COLLECTION] {
        if earlier.iter().any(|n| n == name) {
            move_to_log_db(db, &log, name).await?;
        }
    }
    let db = &log;
    let coll: Collection<Document> = db.collection(COLLECTION);
    let ttl = retention_days.saturating_mul(86_400).min(i32::MAX as u64) as i64;
    let existing = match coll.list_index_names().await {
        Ok(names) => names,
        // A new database has no `events` collection yet.
        Err(e) if matches!(*e.kind, mongodb::error::ErrorKind::Command(ref c) if c.code == 26) => {
            Vec::new()
        }
        Err(e) => return Err(e.into()),
    };
    if existing.iter().any(|n| n == "type_1_timestamp_1") {
        // Not read by anything since events are only scanned by id: it only slowed inserts.
        coll.drop_index("type_1_timestamp_1").await?;
    }
    if existing.iter().any(|n| n == "timestamp_1") {
        // Turns the plain index of earlier versions into the TTL index, or changes its
        // period; collMod does both in place.
        let changed = db
            .run_command(doc! {
                "collMod": COLLECTION,
                "index": {"keyPattern": {"timestamp": 1}, "expireAfterSeconds": ttl},
            })
            .await;
        if changed.is_err() {
            coll.drop_index("timestamp_1").await?;
        } else {
            return Ok(());
        }
    }
    coll.create_index(
        IndexModel::builder()
            .keys(doc! {"timestamp": 1})
            .options(
                IndexOptions::builder()
                    .expire_after(std::time::Duration::from_secs(ttl as u64))
                    .build(),
            )
            .build(),
    )
    .await?;
    Ok(())
}

/// Moves `name` (the log or its counter) of a forge of an earlier version, which kept them
/// in the forge's database, to the log's (see the module doc). Starting nodes may do it at
/// once, and a node of the earlier version may still write to the old place: the fast way
/// (one `renameCollection`, indexes and all) is for a log's database that has no such
/// collection yet; otherwise, or when the rename failed, the documents are copied (those
/// already there are kept: ids are never reused) and the old collection dropped. Events an
/// earlier node writes to the old place between that copy and the drop are lost: stop the
/// earlier version's nodes before starting this one's.
async fn move_to_log_db(db: &Database, log: &Database, name: &str) -> Result<()> {
    let old: Collection<RawDocumentBuf> = db.collection(name);
    if !has_collection(log, name).await? {
        let renamed = db
            .client()
            .database("admin")
            .run_command(doc! {
                "renameCollection": format!("{}.{name}", db.name()),
                "to": format!("{}.{name}", log.name()),
            })
            .await;
        match renamed {
            Ok(_) => {
                tracing::info!(
                    collection = name,
                    to = log.name(),
                    "moved the event log's collection to its database"
                );
                return Ok(());
            }
            // Another node moved it first or is moving it (NamespaceNotFound,
            // NamespaceExists), or the deployment cannot rename across databases (a sharded
            // collection): copying does it in every case.
            Err(e) => {
                tracing::info!(error = %e, collection = name, "renaming the event log's collection failed; copying it")
            }
        }
    }
    match copy_to_log_db(&old, &log.collection(name), name).await {
        Ok(()) => Ok(()),
        // Nodes starting at once all copy; the first done drops the old collection under
        // the others' cursors, after copying every document of it.
        Err(_) if !has_collection(db, name).await? => Ok(()),
        Err(e) => Err(e),
    }
}

/// The copy of [`move_to_log_db`], then the drop of the old collection.
async fn copy_to_log_db(
    old: &Collection<RawDocumentBuf>,
    new: &Collection<RawDocumentBuf>,
    name: &str,
) -> Result<()> {
    if name == SEQUENCE {
        // The counter only ever grows: the larger of the two is right.
        if let Some(d) = old.find_one(doc! {"_id": "events"}).await?
            && let Ok(seq) = d.get_i64("seq")
        {
            new.update_one(doc! {"_id": "events"}, doc! {"$max": {"seq": seq}})
                .upsert(true)
                .await?;
        }
    } else {
        use futures::TryStreamExt;
        let mut batches = old
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .await?
            .try_chunks(1000);
        let mut copied = 0u64;
        while let Some(batch) = batches.try_next().await.map_err(|e| e.1)? {
            copied += batch.len() as u64;
            if let Err(e) = new.insert_many(&batch).ordered(false).await
                && !Error::only_duplicate_keys(&e)
            {
                return Err(e.into());
            }
        }
        tracing::info!(
            collection = name,
            copied,
            to = %new.namespace().db,
            "copied the event log to its database"
        );
    }
    old.drop().await?;
    Ok(())
}

/// Whether a collection of that name is in `db`.
async fn has_collection(db: &Database, name: &str) -> Result<bool> {
    Ok(!db
        .list_collection_names()
        .filter(doc! {"name": name})
        .await?
        .is_empty())
}

/// Short names of projects with changes (views excluded) since `since`.
pub async fn projects_active_since(db: &Database, since: DateTime) -> Result<Vec<String>> {
    let coll: Collection<Event> = collection(db);
    let values = coll
        .distinct(
            "context.project",
            doc! {
                "timestamp": {"$gte": since},
                "type": {"$not": {"$regex": r"\.view$"}},
            },
        )
        .await?;
    Ok(values
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect())
}

/// The batch number of an event id.
pub fn batch_of(id: i64) -> i64 {
    id >> ID_SHIFT
}

impl EventLog {
    /// Starts the writer task, writing the log on `db`'s client.
    pub async fn start(db: &Database) -> Result<Self> {
        Self::start_on(&Databases::from(db.clone())).await
    }

    /// Starts the writer task, writing the log through `dbs.log()`.
    pub async fn start_on(dbs: &Databases) -> Result<Self> {
        let (db, log) = (dbs.main(), dbs.log().clone());
        let salt = crate::secret::site_secret(db).await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(EventStats::default());
        let written = Arc::new(watch::Sender::new(0_u64));
        tokio::spawn(writer(
            db.clone(),
            log.clone(),
            rx,
            stats.clone(),
            written.clone(),
        ));
        Ok(Self {
            tx,
            salt,
            stats,
            written,
            db: db.clone(),
            log,
        })
    }

    /// Records an event; drops it (and counts it) rather than wait when the queue is full.
    pub fn record(&self, kind: &str, context: EventContext, extra: Bson) {
        let event = Event {
            timestamp: DateTime::now(),
            kind: kind.to_owned(),
            context: self.anonymize(context),
            extra,
        };
        if self.tx.try_send(Msg::Event(Box::new(event))).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Replaces the address of an anonymous event by the day's visitor digest.
    fn anonymize(&self, mut context: EventContext) -> EventContext {
        if let Some(ip) = context.ip.take()
            && context.user.is_none()
            && context.visitor.is_none()
        {
            context.visitor = Some(visitor_digest(&self.salt, &ip, chrono::Utc::now()));
        }
        context
    }

    /// Appends events given by another service or a backfill, waiting for the store (these
    /// are not dropped): numbered and written like the writer's batches. Returns how many
    /// were written.
    pub async fn append(&self, events: Vec<Event>) -> Result<usize> {
        let mut written = 0;
        for chunk in events.chunks(MAX_BATCH) {
            let docs: Vec<RawDocumentBuf> = chunk
                .iter()
                .map(|e| {
                    let mut e = e.clone();
                    e.context = self.anonymize(e.context);
                    e
                })
                .map(|e| bson::serialize_to_raw_document_buf(&e))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| Error::Internal(format!("event: {e}")))?;
            written += write_batch(&self.db, &self.log, docs, &self.stats).await?;
            self.written.send_modify(|w| *w += 1);
        }
        Ok(written)
    }

    /// Waits until everything recorded so far is written.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Msg::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    pub fn stats(&self) -> &EventStats {
        &self.stats
    }

    /// The log's database, on the client the log writes through.
    pub fn log_db(&self) -> &Database {
        &self.log
    }

    /// Batches this process has written; changes after each (the aggregations wake on it).
    pub fn written(&self) -> watch::Receiver<u64> {
        self.written.subscribe()
    }
}

/// `visitor` of an anonymous event: the first 16 hex digits of SHA-256 over the site secret,
/// the UTC day and the address.
pub fn visitor_digest(salt: &[u8], ip: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(now.format("%Y-%m-%d").to_string().as_bytes());
    h.update(ip.as_bytes());
    hex::encode(&h.finalize()[..8])
}

/// The number of the last batch numbered so far (0 when none was) in `log`, the log's
/// database: no event has a higher batch number.
pub async fn head(log: &Database) -> Result<i64> {
    let d = log
        .collection::<Document>(SEQUENCE)
        .find_one(doc! {"_id": "events"})
        .await?;
    Ok(d.and_then(|d| d.get_i64("seq").ok()).unwrap_or(0))
}

/// The number of a new batch of `n` events: the counter moved past them. The first writers
/// of a new database may all try to create the counter: one refused (duplicate key)
/// increments the counter another made. `db` is the log's database.
async fn next_batch(db: &Database, n: i64) -> Result<i64> {
    let coll = db.collection::<Document>(SEQUENCE);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let got = coll
            .find_one_and_update(doc! {"_id": "events"}, doc! {"$inc": {"seq": n}})
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await;
        match got {
            Ok(Some(d)) if d.get_i64("seq").is_ok() => return Ok(d.get_i64("seq").unwrap_or(0)),
            // Seen from SecantusDB when upserts race: no document back; asking again works.
            Ok(_) if attempt < 5 => continue,
            Ok(_) => return Err(Error::Internal("event sequence missing".into())),
            Err(e) if attempt < 5 && is_duplicate_key(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::Command(c) => c.code == 11000,
        _ => false,
    }
}

/// Numbers a batch, gives its events their ids and writes them (to `log`, the log's
/// database), then their activity copies (to `db`, the forge's).
/// Events stay raw BSON from serialization to the wire: no document tree is built for them.
async fn write_batch(
    db: &Database,
    log: &Database,
    mut docs: Vec<RawDocumentBuf>,
    stats: &EventStats,
) -> Result<usize> {
    if docs.is_empty() {
        return Ok(0);
    }
    let n = docs.len() as i32;
    let seq = next_batch(log, i64::from(n)).await?;
    let written = DateTime::now();
    for (i, d) in docs.iter_mut().enumerate() {
        d.append(cstr!("_id"), (seq << ID_SHIFT) | i as i64);
        d.append(cstr!("n"), n);
        d.append(cstr!("w"), written);
    }
    let total = docs.len();
    let inserted = match log
        .collection::<RawDocumentBuf>(COLLECTION)
        .insert_many(&docs)
        .ordered(false)
        .await
    {
        Ok(r) => r.inserted_ids.len(),
        Err(e) => {
            let ok = match *e.kind {
                mongodb::error::ErrorKind::InsertMany(ref f) => f
                    .write_errors
                    .as_ref()
                    .map_or(0, |w| total.saturating_sub(w.len())),
                _ => 0,
            };
            stats
                .failed
                .fetch_add((total - ok) as u64, Ordering::Relaxed);
            tracing::error!(error = %e, count = total - ok, "writing events failed");
            ok
        }
    };
    stats.written.fetch_add(inserted as u64, Ordering::Relaxed);
    // Activity is the few events whose `extra` has a title (edits, tickets, posts), not views.
    let copies: Vec<Document> = docs
        .iter()
        .filter(|d| {
            matches!(d.get("extra"), Ok(Some(RawBsonRef::Document(x)))
                if matches!(x.get("title"), Ok(Some(_))))
        })
        .filter_map(|d| Document::try_from(d.as_ref()).ok())
        .filter(|d| d.get("extra").is_some_and(is_activity))
        .collect();
    if !copies.is_empty() {
        if let Err(e) = db
            .collection::<Document>(ACTIVITY)
            .insert_many(copies.iter())
            .ordered(false)
            .await
        {
            tracing::error!(error = %e, "writing activity failed");
        }
        // A change made to these (restricted, retracted) while they waited in a queue is
        // applied now.
        if let Err(e) = crate::activity::reconcile(db, copies.iter()).await {
            tracing::error!(error = %e, "reconciling activity failed");
        }
    }
    Ok(inserted)
}

async fn writer(
    db: Database,
    log: Database,
    mut rx: mpsc::Receiver<Msg>,
    stats: Arc<EventStats>,
    written: Arc<watch::Sender<u64>>,
) {
    let mut in_flight = tokio::task::JoinSet::new();
    let mut acks = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Event(e) => batch.push(*e),
                Msg::Flush(ack) => acks.push(ack),
            }
            if batch.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        let docs: Vec<RawDocumentBuf> = batch
            .into_iter()
            .filter_map(|e| bson::serialize_to_raw_document_buf(&e).ok())
            .collect();
        while in_flight.len() >= IN_FLIGHT {
            in_flight.join_next().await;
        }
        let (db, log, stats, written) = (db.clone(), log.clone(), stats.clone(), written.clone());
        in_flight.spawn(async move {
            let count = docs.len() as u64;
            match write_batch(&db, &log, docs, &stats).await {
                Ok(n) if n > 0 => written.send_modify(|w| *w += 1),
                Ok(_) => {}
                Err(e) => {
                    stats.failed.fetch_add(count, Ordering::Relaxed);
                    tracing::error!(error = %e, "numbering events failed");
                }
            }
        });
        if !acks.is_empty() {
            // A flush waits for every batch before it.
            while in_flight.join_next().await.is_some() {}
            for ack in acks.drain(..) {
                let _ = ack.send(());
            }
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// Largest `extra` of an event given from outside, in bytes of JSON.
pub const MAX_EXTRA_BYTES: usize = 16 * 1024;
/// Deepest nesting of an outside event's `extra`.
const MAX_DEPTH: usize = 32;
/// Longest type or context field of an outside event.
const MAX_FIELD: usize = 200;

/// An event given by another service or a backfill (`POST /rest/events`, `forge events
/// load`): `{type, timestamp?, context?, extra?}`, with `timestamp` an RFC 3339 date and time
/// or epoch milliseconds (default: now). Says what is wrong, for a person.
pub fn from_json(v: &serde_json::Value) -> std::result::Result<Event, String> {
    let obj = v.as_object().ok_or("an event must be a JSON object")?;
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "type" | "timestamp" | "context" | "extra"))
    {
        return Err(format!(
            "unknown field {k:?} (an event has type, timestamp, context, extra)"
        ));
    }
    let kind = obj
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or("`type` is missing or not a string")?;
    if kind.is_empty()
        || kind.len() > MAX_FIELD
        || !kind
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))
    {
        return Err(format!(
            "`type` must be 1 to {MAX_FIELD} letters, digits, '.', '_', '-' or ':'"
        ));
    }
    let timestamp = match obj.get("timestamp") {
        None | Some(serde_json::Value::Null) => DateTime::now(),
        Some(serde_json::Value::Number(n)) => {
            DateTime::from_millis(n.as_i64().ok_or("`timestamp` must be whole milliseconds")?)
        }
        Some(serde_json::Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| DateTime::from_millis(t.timestamp_millis()))
            .map_err(|e| format!("`timestamp` is not an RFC 3339 date and time: {e}"))?,
        Some(_) => return Err("`timestamp` must be a string or a number".into()),
    };
    let context = match obj.get("context") {
        None | Some(serde_json::Value::Null) => EventContext::default(),
        Some(serde_json::Value::Object(c)) => {
            let mut ctx = EventContext::default();
            for (k, v) in c {
                if k == "private" {
                    ctx.private = v
                        .as_bool()
                        .ok_or("`context.private` must be true or false")?;
                    continue;
                }
                let slot = match k.as_str() {
                    "neighborhood" => &mut ctx.neighborhood,
                    "project" => &mut ctx.project,
                    "tool" => &mut ctx.tool,
                    "user" => &mut ctx.user,
                    "visitor" => &mut ctx.visitor,
                    other => {
                        return Err(format!(
                            "unknown context field {other:?} (there are neighborhood, project, \
                             tool, user, visitor, private; addresses are never kept)"
                        ));
                    }
                };
                match v {
                    serde_json::Value::Null => {}
                    serde_json::Value::String(s) if s.len() <= MAX_FIELD => {
                        *slot = Some(s.clone());
                    }
                    _ => {
                        return Err(format!(
                            "`context.{k}` must be a string of at most {MAX_FIELD} bytes"
                        ));
                    }
                }
            }
            ctx
        }
        Some(_) => return Err("`context` must be an object".into()),
    };
    let extra = match obj.get("extra") {
        None => Bson::Null,
        Some(x) => {
            if depth(x) > MAX_DEPTH {
                return Err(format!("`extra` is nested deeper than {MAX_DEPTH}"));
            }
            if x.to_string().len() > MAX_EXTRA_BYTES {
                return Err(format!("`extra` is larger than {MAX_EXTRA_BYTES} bytes"));
            }
            Bson::try_from(x.clone()).map_err(|e| format!("`extra`: {e}"))?
        }
    };
    Ok(Event {
        timestamp,
        kind: kind.to_owned(),
        context,
        extra,
    })
}

/// Nesting depth of a JSON value, without recursion (the value comes from outside).
fn depth(v: &serde_json::Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 1)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            serde_json::Value::Array(a) => stack.extend(a.iter().map(|x| (x, d + 1))),
            serde_json::Value::Object(o) => stack.extend(o.values().map(|x| (x, d + 1))),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn outside_events_are_checked() {
        let e = from_json(&json!({
            "type": "repo.clone",
            "timestamp": "2026-12-04T10:00:00Z",
            "context": {"project": "forge", "tool": "code", "user": null},
            "extra": {"n": 1}
        }))
        .unwrap();
        assert_eq!(e.kind, "repo.clone");
        assert_eq!(e.timestamp.timestamp_millis(), 1_796_378_400_000);
        assert_eq!(e.context.project.as_deref(), Some("forge"));
        let e = from_json(&json!({"type": "x", "timestamp": 5})).unwrap();
        assert_eq!(e.timestamp.timestamp_millis(), 5);
        for (bad, says) in [
            (json!([]), "JSON object"),
            (json!({"timestamp": 1}), "`type`"),
            (json!({"type": "a b"}), "`type` must"),
            (json!({"type": "x", "timestamp": "yesterday"}), "RFC 3339"),
            (
                json!({"type": "x", "context": {"ip": "1.2.3.4"}}),
                "addresses",
            ),
            (json!({"type": "x", "context": {"user": 5}}), "context.user"),
            (json!({"type": "x", "color": 1}), "unknown field"),
            (json!({"type": "x", "extra": "y".repeat(20_000)}), "larger"),
        ] {
            let err = from_json(&bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let mut deep = json!(1);
        for _ in 0..40 {
            deep = json!([deep]);
        }
        assert!(
            from_json(&json!({"type": "x", "extra": deep}))
                .unwrap_err()
                .contains("deeper")
        );
    }

    #[test]
    fn visitors_change_every_day_and_hide_the_address() {
        let day1 = chrono::DateTime::from_timestamp(1_796_378_400, 0).unwrap();
        let day2 = day1 + chrono::Days::new(1);
        let a = visitor_digest(b"salt", "10.0.0.1", day1);
        assert_eq!(a.len(), 16);
        assert!(!a.contains("10.0.0.1"));
        assert_eq!(a, visitor_digest(b"salt", "10.0.0.1", day1));
        assert_ne!(a, visitor_digest(b"salt", "10.0.0.1", day2));
        assert_ne!(a, visitor_digest(b"other", "10.0.0.1", day1));
        assert_ne!(a, visitor_digest(b"salt", "10.0.0.2", day1));
    }
}
