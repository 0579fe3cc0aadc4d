//! The incremental runner: feeds events logged since each aggregation's watermark to its
//! outputs, exactly once.
//!
//! - **Order.** Events are read by id, that is by batch number (see `crate::events`). The
//!   watermark is the last batch an aggregation has counted. A pass takes whole batches in
//!   sequence and stops at the first one missing or seen in part (still being written); such
//!   a hole is waited for [`STALE`] at most, then passed (a writer that died).
//! - **Speed.** Batch numbers are log positions, so a pass reads closed ranges of ids of at
//!   most [`CHUNK`] events each (an open range costs the store the whole rest of the log),
//!   maps them as they come and keeps only the reduced keys, up to [`PASS_EVENTS`] events or
//!   about [`PASS_KEYS`] keys a pass: each output document is written once per pass, however
//!   many events touched it.
//! - **Exactly once.** A pass first records its end (`pending`) in the aggregation's state,
//!   then writes its outputs, then moves the watermark to the end. Each output document keeps
//!   the end of the last pass that wrote it (`b`) and a write only applies where `b` is lower:
//!   a pass cut short by a crash is redone from the same state over the same events, and the
//!   documents it already wrote refuse the second write (a duplicate-key error on upsert).
//! - **One runner at a time.** A lease in the store; a run that finds it held asks the holder
//!   to go round again (`again`), so events logged during a run are not left for the next tick.
//!   State changes are compare-and-set on `pending`, so a runner that lost its lease cannot
//!   move a watermark under the next one.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use bson::{Bson, DateTime, Document, doc};
use futures::TryStreamExt;
use mongodb::Database;
use serde::{Deserialize, Serialize};

use super::{AggDef, Emitter, LoggedEvent, Output, Scope, collection, stored};
use crate::error::{Error, Result};
use crate::events::{self, ID_SHIFT};

/// Runner state: one document per aggregation (`agg:<name>`) and the lease (`lease`).
pub const STATE: &str = "analytics_state";
/// Batch numbers (log positions, so events at most) one read covers.
const CHUNK: i64 = 50_000;
/// Events one pass counts at most before it writes its outputs.
const PASS_EVENTS: u64 = 2_000_000;
/// Keys one pass holds at most before it writes its outputs (its memory: a few hundred bytes
/// a key). Each output document is written once per pass, and a document written again by a
/// later pass costs an update, several times an insert: passes are as long as memory allows.
const PASS_KEYS: usize = 400_000;
/// How often a long pass renews its lease.
const RENEW_EVERY: Duration = Duration::from_secs(10);
/// How long a missing or partly written batch is waited for.
pub const STALE: Duration = Duration::from_secs(60);
/// How long a lease lasts without renewal.
const LEASE: Duration = Duration::from_secs(60);
/// Updates (or inserts) sent in one command.
const UPDATES_PER_COMMAND: usize = 10_000;
/// Output keys looked up in one query.
const LOOKUPS_PER_QUERY: usize = 1_000;
/// Output documents a run reports as changed (for live pages), at most.
const MAX_TOUCHED: usize = 2_000;
/// Suffix of the outputs and states a rebuild writes before they replace the live ones.
const REBUILD: &str = "__rebuild";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AggState {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    watermark: i64,
    #[serde(default)]
    pending: Option<i64>,
    #[serde(default)]
    last_run: Option<DateTime>,
    #[serde(default)]
    events: i64,
}

/// How a run behaves.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Who holds the lease (host and process).
    pub owner: String,
    /// Stop the process right after a pass wrote its outputs and before it moves the
    /// watermark (the crash test).
    pub crash_after_outputs: bool,
    /// The event log's database to read (the forge's, on a client of its own, see
    /// `store::connect_log`); by default `events::log_db` of the database run over.
    pub log: Option<Database>,
}

impl RunOptions {
    fn log_db(&self, db: &Database) -> Database {
        self.log.clone().unwrap_or_else(|| events::log_db(db))
    }
}

/// What a run did.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Events read.
    pub events: u64,
    pub passes: u64,
    /// Another runner held the lease: it was asked to run again instead.
    pub busy: bool,
    /// Project-scoped output documents written, with their new values (at most
    /// [`MAX_TOUCHED`]).
    pub touched: Vec<Touched>,
}

/// An output document a run changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Touched {
    pub output: &'static str,
    pub key: String,
    pub value: i64,
}

/// The default owner name of this process.
pub fn owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    format!("{host}:{}", std::process::id())
}

/// Runs the aggregations over every event logged since their watermarks.
pub async fn run(db: &Database, aggs: &[AggDef], opts: &RunOptions) -> Result<RunReport> {
    let mut report = RunReport::default();
    // The lease is held by an owner (a process): a second run of the same owner would take
    // it too and race the first, so it asks the running one for another round instead.
    let Some(_local) = LocalRun::start(db, &opts.owner) else {
        Lease::ask_again(db).await?;
        report.busy = true;
        return Ok(report);
    };
    let Some(mut lease) = Lease::acquire(db, &opts.owner).await? else {
        report.busy = true;
        return Ok(report);
    };
    let live = Target {
        suffix: "",
        settled: 0,
    };
    let result = run_held(db, aggs, opts, &mut lease, &live, &mut report, &mut |_| {}).await;
    let released = lease.release().await;
    match result {
        // Another runner took over (this one was too slow to keep its lease): it counts
        // from the watermark this one left, so nothing is lost or counted twice.
        Err(Error::Conflict { code, .. }) if code == MOVED_ON || code == LEASE_LOST => {
            tracing::info!(code, "analytics run handed over to another runner");
            report.busy = true;
        }
        other => other?,
    }
    released?;
    Ok(report)
}

async fn run_held(
    db: &Database,
    aggs: &[AggDef],
    opts: &RunOptions,
    lease: &mut Lease,
    target: &Target,
    report: &mut RunReport,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<()> {
    loop {
        let read = pass(db, aggs, opts, target, lease, report).await?;
        progress(read.events);
        if read.advanced {
            lease.renew().await?;
            continue;
        }
        // Caught up: done unless someone asked for another round meanwhile.
        if !lease.take_again().await? {
            return Ok(());
        }
    }
}

/// Where a run writes: the live outputs and states, or a rebuild's (`suffix`); and the batches
/// known settled (see [`cut`]).
struct Target {
    suffix: &'static str,
    settled: i64,
}

struct PassResult {
    events: u64,
    advanced: bool,
}

async fn pass(
    db: &Database,
    aggs: &[AggDef],
    opts: &RunOptions,
    target: &Target,
    lease: &Lease,
    report: &mut RunReport,
) -> Result<PassResult> {
    let (suffix, settled) = (target.suffix, target.settled);
    let log = &opts.log_db(db);
    let states = load_states(db, aggs, suffix).await?;
    // Batches an aggregation has already passed are settled: one missing there never comes.
    let settled = states
        .iter()
        .map(|s| s.watermark)
        .max()
        .unwrap_or(0)
        .max(settled);
    let mut writer = Writer {
        db,
        suffix,
        opts,
        lease,
        renewed: std::time::Instant::now(),
    };
    // A pass cut short is finished first, over exactly its events.
    for (agg, st) in aggs.iter().zip(&states) {
        if let Some(to) = st.pending {
            let mut maps: Mappers = vec![(agg.xmap, Emitter::new(agg.outputs))];
            let mut n = 0u64;
            let mut from = st.watermark;
            while from < to {
                let hi = (from + CHUNK).min(to);
                let raws = read_raw(log, from, hi).await?;
                let (count, back) = tokio::task::spawn_blocking(move || {
                    let evs = decode(raws);
                    map_events(&evs, &mut maps);
                    (evs.len() as u64, maps)
                })
                .await
                .map_err(|e| Error::Internal(format!("mapping events: {e}")))?;
                maps = back;
                n += count;
                from = hi;
            }
            let em = maps
                .pop()
                .map(|(_, em)| em)
                .unwrap_or_else(|| Emitter::new(agg.outputs));
            writer.write(agg, em, to, report).await?;
            commit(db, agg, st, to, n, suffix).await?;
            report.events += n;
            report.passes += 1;
            return Ok(PassResult {
                events: n,
                advanced: true,
            });
        }
    }
    let Some(low) = states.iter().map(|s| s.watermark).min() else {
        return Ok(PassResult {
            events: 0,
            advanced: false,
        });
    };
    // Aggregations ahead (after a rebuild of one) wait here until the others catch up to
    // them, so that all read the log together again.
    let ahead = states
        .iter()
        .map(|s| s.watermark)
        .filter(|&w| w > low)
        .min();
    let bound = match ahead {
        Some(a) => a,
        None => events::head(log).await?,
    };
    // Every aggregation at the lowest watermark takes this pass; the others (ahead, after a
    // rebuild of one) wait until the low ones catch up.
    let takers: Vec<(&AggDef, &AggState)> = aggs
        .iter()
        .zip(&states)
        .filter(|(_, st)| st.watermark == low)
        .collect();
    // Two sets of emitters: each range is mapped in two halves at once (the store is idle
    // meanwhile: the next range was read ahead), the second merged into the first after each.
    let fresh = || -> Mappers {
        takers
            .iter()
            .map(|(agg, _)| (agg.xmap, Emitter::new(agg.outputs)))
            .collect()
    };
    let mut maps: [Mappers; 2] = [fresh(), fresh()];
    let (mut to, mut n) = (low, 0u64);
    // The store reads the next range while this one is decoded and mapped on a blocking
    // thread: the two take about as long, and the async threads stay free for requests.
    let mut ranges = Ranges {
        log,
        scanned: low,
        bound,
    };
    let mut reading = ranges.next_read();
    let started = std::time::Instant::now();
    let (mut waited, mut mapping) = (Duration::ZERO, Duration::ZERO);
    while let Some(read) = reading.take() {
        let t = std::time::Instant::now();
        let raws = read
            .await
            .map_err(|e| Error::Internal(format!("reading events: {e}")))??;
        waited += t.elapsed();
        let held: usize = maps[0].iter().map(|(_, em)| em.len()).sum();
        let more = n + (raws.len() as u64) < PASS_EVENTS && held < PASS_KEYS;
        reading = if more { ranges.next_read() } else { None };
        if raws.is_empty() {
            // Nothing there: numbered but not written (yet); what comes after decides.
            continue;
        }
        let after = to;
        // One runner per store holds the lease, so this is one blocking task at most (with
        // a helper thread for the second half): not the heavy-work pool, which pages wait on.
        let t = std::time::Instant::now();
        let (mapped, back) = tokio::task::spawn_blocking(move || {
            let mapped = map_range(raws, after, settled, &mut maps);
            (mapped, maps)
        })
        .await
        .map_err(|e| Error::Internal(format!("mapping events: {e}")))?;
        mapping += t.elapsed();
        maps = back;
        let Some(Mapped { taken, last, count }) = mapped else {
            break;
        };
        n += count;
        to = taken;
        if taken < last {
            // Stopped at a batch still on its way.
            break;
        }
    }
    if let Some(read) = reading {
        read.abort();
    }
    if to == low {
        return Ok(PassResult {
            events: 0,
            advanced: false,
        });
    }
    tracing::debug!(
        events = n,
        read_wait_ms = waited.as_millis() as u64,
        map_ms = mapping.as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "analytics pass read and mapped"
    );
    let [mut merged, second] = maps;
    for ((_, em), (_, other)) in merged.iter_mut().zip(second) {
        em.merge(other);
    }
    let takers = takers
        .into_iter()
        .zip(merged)
        .map(|((agg, st), (_, em))| (agg, st, em));
    for (agg, st, em) in takers {
        set_pending(db, agg, st, to, suffix).await?;
        writer.write(agg, em, to, report).await?;
        commit(db, agg, st, to, n, suffix).await?;
    }
    report.events += n;
    report.passes += 1;
    Ok(PassResult {
        events: n,
        advanced: true,
    })
}

fn state_id(agg: &AggDef, suffix: &str) -> String {
    format!("agg:{}{suffix}", agg.name)
}

async fn load_states(db: &Database, aggs: &[AggDef], suffix: &str) -> Result<Vec<AggState>> {
    let coll = db.collection::<AggState>(STATE);
    let mut out = Vec::with_capacity(aggs.len());
    for agg in aggs {
        let id = state_id(agg, suffix);
        let st = coll
            .find_one_and_update(
                doc! {"_id": &id},
                doc! {"$setOnInsert": {"watermark": 0_i64, "pending": Bson::Null, "events": 0_i64}},
            )
            .upsert(true)
            .return_document(mongodb::options::ReturnDocument::After)
            .await?
            .ok_or_else(|| Error::Internal(format!("analytics state {id} missing")))?;
        out.push(st);
    }
    Ok(out)
}

/// Each aggregation's map and what it emitted so far.
type Mappers = Vec<(fn(&LoggedEvent, &mut Emitter), Emitter)>;

/// What one range gave: the last batch taken and the last seen, and the events counted.
struct Mapped {
    taken: i64,
    last: i64,
    count: u64,
}

/// Decodes a range's events, keeps the batches that can be counted now ([`cut`]) and maps
/// them, each half on its own thread with its own emitters; `None` when none can be.
fn map_range(
    raws: Vec<bson::RawDocumentBuf>,
    after: i64,
    settled: i64,
    maps: &mut [Mappers; 2],
) -> Option<Mapped> {
    let evs = decode_halves(raws);
    let last = evs.last().map(|e| events::batch_of(e.id))?;
    let (taken, evs) = cut(evs, after, settled);
    let taken = taken?;
    let (first, second) = evs.split_at(evs.len() / 2);
    let [m1, m2] = maps;
    std::thread::scope(|s| {
        s.spawn(|| map_events(second, &mut *m2));
        map_events(first, &mut *m1);
    });
    // One set of keys held between ranges: what the pass holds is what it will write.
    for ((_, a), (_, b)) in m1.iter_mut().zip(m2.iter_mut()) {
        a.merge(b.take());
    }
    Some(Mapped {
        taken,
        last,
        count: evs.len() as u64,
    })
}

/// [`decode`], each half on its own thread (decoding is most of a run's CPU).
fn decode_halves(mut raws: Vec<bson::RawDocumentBuf>) -> Vec<LoggedEvent> {
    let second = raws.split_off(raws.len() / 2);
    let (mut evs, rest) = std::thread::scope(|s| {
        let other = s.spawn(|| decode(second));
        let first = decode(raws);
        (first, other.join().unwrap_or_default())
    });
    evs.extend(rest);
    evs
}

/// Stored events decoded (raw documents straight into events); an unreadable one is skipped
/// with a warning.
fn decode(raws: Vec<bson::RawDocumentBuf>) -> Vec<LoggedEvent> {
    raws.iter()
        .filter_map(
            |raw| match bson::deserialize_from_slice::<LoggedEvent>(raw.as_bytes()) {
                Ok(e) => Some(e),
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable event skipped");
                    None
                }
            },
        )
        .collect()
}

fn map_events(evs: &[LoggedEvent], maps: &mut Mappers) {
    for e in evs {
        for (xmap, em) in maps.iter_mut() {
            xmap(e, em);
        }
    }
}

/// Consecutive ranges of at most [`CHUNK`] batch numbers up to `bound`, each read by a task
/// of its own.
struct Ranges<'a> {
    /// The event log's database.
    log: &'a Database,
    scanned: i64,
    bound: i64,
}

type RawRead = tokio::task::JoinHandle<Result<Vec<bson::RawDocumentBuf>>>;

impl Ranges<'_> {
    fn next_read(&mut self) -> Option<RawRead> {
        if self.scanned >= self.bound {
            return None;
        }
        let (after, hi) = (self.scanned, (self.scanned + CHUNK).min(self.bound));
        self.scanned = hi;
        let log = self.log.clone();
        Some(tokio::spawn(async move { read_raw(&log, after, hi).await }))
    }
}

/// The stored events of batches `after + 1 ..= to`, undecoded (a closed range of ids: the
/// store reads only those).
async fn read_raw(log: &Database, after: i64, to: i64) -> Result<Vec<bson::RawDocumentBuf>> {
    let range = doc! {"$gte": (after + 1) << ID_SHIFT, "$lt": (to + 1) << ID_SHIFT};
    let coll = log.collection::<bson::RawDocumentBuf>(events::COLLECTION);
    let cursor = coll
        .find(doc! {"_id": range})
        .sort(doc! {"_id": 1})
        .batch_size(10_000)
        .await?;
    Ok(cursor.try_collect().await?)
}

/// The whole batches of `evs` that can be counted now, in sequence after batch `after`, and
/// the last batch taken. Batch `b` of `n` events follows batch `b - n` (numbers are log
/// positions); logs written before that numbering counted batches one by one (`b - 1`).
///
/// A batch missing from the sequence, or present in part, may still be on its way (batches
/// are numbered before they are written, several at once). It is waited for while the
/// batch after the hole (or the partial one itself) was written less than [`STALE`] ago:
/// batches are numbered in order, so one missing before an old batch is older still and its
/// writer is gone (or the retention period removed it). Batches up to `settled` are not
/// waited for at all (another aggregation, or the live one a rebuild replaces, passed them).
fn cut(mut evs: Vec<LoggedEvent>, after: i64, settled: i64) -> (Option<i64>, Vec<LoggedEvent>) {
    let mut groups: BTreeMap<i64, (usize, i32, Option<DateTime>)> = BTreeMap::new();
    for e in &evs {
        let g = groups
            .entry(events::batch_of(e.id))
            .or_insert((0, e.n, e.written));
        g.0 += 1;
    }
    let now = DateTime::now().timestamp_millis();
    let old = |written: Option<DateTime>| {
        written.is_none_or(|w| now - w.timestamp_millis() > STALE.as_millis() as i64)
    };
    let mut prev = after;
    let mut to = None;
    for (&batch, &(count, n, written)) in &groups {
        let n = i64::from(n.max(1));
        let whole = count as i64 >= n;
        let next = batch - n == prev || batch == prev + 1;
        if !next || !whole {
            if batch > settled && !old(written) {
                break;
            }
            if batch > settled {
                tracing::warn!(
                    after = prev,
                    batch,
                    "events of a batch never arrived in full; counting without them"
                );
            }
        }
        to = Some(batch);
        prev = batch;
    }
    if let Some(to) = to {
        evs.retain(|e| events::batch_of(e.id) <= to);
    } else {
        evs.clear();
    }
    (to, evs)
}

async fn set_pending(
    db: &Database,
    agg: &AggDef,
    st: &AggState,
    to: i64,
    suffix: &str,
) -> Result<()> {
    let r = db
        .collection::<Document>(STATE)
        .update_one(
            doc! {"_id": state_id(agg, suffix), "watermark": st.watermark, "pending": Bson::Null},
            doc! {"$set": {"pending": to}},
        )
        .await?;
    if r.matched_count == 0 {
        return Err(Error::Conflict {
            code: MOVED_ON,
            message: format!("analytics {}: another runner moved on", agg.name),
        });
    }
    Ok(())
}

async fn commit(
    db: &Database,
    agg: &AggDef,
    st: &AggState,
    to: i64,
    n: u64,
    suffix: &str,
) -> Result<()> {
    let r = db
        .collection::<Document>(STATE)
        .update_one(
            doc! {"_id": state_id(agg, suffix), "watermark": st.watermark, "pending": to},
            doc! {
                "$set": {"watermark": to, "pending": Bson::Null, "last_run": DateTime::now()},
                "$inc": {"events": n as i64},
            },
        )
        .await?;
    if r.matched_count == 0 {
        return Err(Error::Conflict {
            code: MOVED_ON,
            message: format!("analytics {}: another runner moved on", agg.name),
        });
    }
    Ok(())
}

/// Writes a pass's reduced outputs.
struct Writer<'a> {
    db: &'a Database,
    suffix: &'a str,
    opts: &'a RunOptions,
    lease: &'a Lease,
    renewed: std::time::Instant,
}

impl Writer<'_> {
    /// Writes the outputs of one aggregation, each document guarded by the pass end `to`.
    async fn write(
        &mut self,
        agg: &AggDef,
        em: Emitter,
        to: i64,
        report: &mut RunReport,
    ) -> Result<()> {
        let (db, suffix) = (self.db, self.suffix);
        for (output, keys) in agg.outputs.iter().zip(em.into_outputs()) {
            if keys.is_empty() {
                continue;
            }
            let coll = format!("{}{suffix}", collection(output.name));
            let t = std::time::Instant::now();
            let key_count = keys.len();
            // One entry per key; documents hold a key, or a month of days (`stored`).
            let touched: Vec<String> = if output.scope == Scope::Project && suffix.is_empty() {
                keys.keys()
                    .take(MAX_TOUCHED.saturating_sub(report.touched.len()))
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            let (docs, unplaced) = stored::group(output, keys);
            if unplaced > 0 {
                tracing::warn!(
                    output = output.name,
                    unplaced,
                    "keys of a daily output must end in a day; those were not counted"
                );
            }
            // Documents new to the output are inserted (several times faster than upserts
            // in the store); those that exist get the guarded update. A document that
            // already has this pass (`b` at `to`: a pass redone) is left alone.
            let ids: Vec<&str> = docs.keys().map(String::as_str).collect();
            let distinct = output.reduce == super::Reduce::Distinct;
            let mut seen = passes_of(db, &coll, &ids, distinct).await?;
            let (mut inserts, mut updates) = (Vec::new(), Vec::new());
            for (id, mut entries) in docs {
                match seen.remove(&id) {
                    Some((b, _)) if b >= to => {}
                    Some((b, existing)) => {
                        if let Some(existing) = existing {
                            stored::merge_existing(&existing, &mut entries);
                        }
                        updates.push((id, entries, Some(b)));
                    }
                    None => inserts.push((id, entries)),
                }
            }
            let new_docs = inserts.len();
            for chunk in inserts.chunks(UPDATES_PER_COMMAND) {
                let new: Vec<Document> = chunk
                    .iter()
                    .map(|(id, entries)| stored::new_document(id, to, entries))
                    .collect();
                // Made meanwhile by another runner (doing this same pass: it holds the
                // lease now): the guard of an update decides.
                for i in insert_new(db, &coll, new).await? {
                    if let Some((id, entries)) = chunk.get(i) {
                        updates.push((id.clone(), entries.clone(), None));
                    }
                }
                self.keep_lease().await?;
            }
            let updates: Vec<Document> = updates
                .into_iter()
                .map(|(id, entries, read)| {
                    let mut u = stored::update(output.reduce, &entries);
                    let mut set = u.get_document("$set").cloned().unwrap_or_default();
                    set.insert("b", to);
                    u.insert("$set", set);
                    // A distinct count is rewritten whole from what was read: only over
                    // exactly that (its pass mark unchanged). Sums add up: any mark before
                    // this pass will do.
                    let guard = match (distinct, read) {
                        (true, Some(b)) => Bson::Int64(b),
                        _ => Bson::Document(doc! {"$lt": to}),
                    };
                    doc! {"q": {"_id": id, "b": guard}, "u": u, "upsert": true}
                })
                .collect();
            let (inserted, updated) = (new_docs, updates.len());
            for chunk in updates.chunks(UPDATES_PER_COMMAND) {
                write_guarded(db, &coll, chunk).await?;
                self.keep_lease().await?;
            }
            tracing::debug!(
                output = output.name,
                keys = key_count,
                inserted,
                updated,
                ms = t.elapsed().as_millis() as u64,
                "analytics output written"
            );
            if !touched.is_empty() {
                report
                    .touched
                    .extend(read_values(db, output, &coll, touched).await?);
            }
        }
        if self.opts.crash_after_outputs {
            // The crash test: outputs written, watermark not moved.
            std::process::abort();
        }
        Ok(())
    }

    /// Renews the lease now and then: a pass over many keys can outlast it.
    async fn keep_lease(&mut self) -> Result<()> {
        if self.renewed.elapsed() > RENEW_EVERY {
            self.lease.renew().await?;
            self.renewed = std::time::Instant::now();
        }
        Ok(())
    }
}

/// Which of the documents `ids` exist in `coll`, with the end of the last pass that wrote
/// each, and (`whole`) the document itself.
async fn passes_of(
    db: &Database,
    coll: &str,
    ids: &[&str],
    whole: bool,
) -> Result<HashMap<String, (i64, Option<Document>)>> {
    let coll = db.collection::<Document>(coll);
    let mut seen = HashMap::new();
    for chunk in ids.chunks(LOOKUPS_PER_QUERY) {
        let mut find = coll.find(doc! {"_id": {"$in": chunk}});
        if !whole {
            find = find.projection(doc! {"b": 1});
        }
        let mut cursor = find.await?;
        while let Some(d) = cursor.try_next().await? {
            if let Ok(id) = d.get_str("_id") {
                let b = d.get_i64("b").unwrap_or(0);
                seen.insert(id.to_owned(), (b, whole.then_some(d)));
            }
        }
    }
    Ok(seen)
}

/// Inserts new output documents; the positions of those refused because they exist.
async fn insert_new(db: &Database, coll: &str, docs: Vec<Document>) -> Result<Vec<usize>> {
    let result = db
        .collection::<Document>(coll)
        .insert_many(docs)
        .ordered(false)
        .await;
    match result {
        Ok(_) => Ok(Vec::new()),
        Err(e) => match *e.kind {
            mongodb::error::ErrorKind::InsertMany(ref f) if Error::only_duplicate_keys(&e) => {
                Ok(f.write_errors.iter().flatten().map(|w| w.index).collect())
            }
            _ => Err(e.into()),
        },
    }
}

/// Sends guarded upserts; a duplicate key means the document already has this pass.
async fn write_guarded(db: &Database, coll: &str, updates: &[Document]) -> Result<()> {
    let reply = db
        .run_command(doc! {"update": coll, "updates": updates.to_vec(), "ordered": false})
        .await?;
    if let Ok(errors) = reply.get_array("writeErrors") {
        for e in errors {
            let code = e
                .as_document()
                .and_then(|d| d.get("code"))
                .and_then(|c| match c {
                    Bson::Int32(c) => Some(i64::from(*c)),
                    Bson::Int64(c) => Some(*c),
                    _ => None,
                });
            if code != Some(11000) {
                return Err(Error::Internal(format!("writing {coll}: {e}")));
            }
        }
    }
    Ok(())
}

/// The values of `keys` of `output` after a pass wrote them.
async fn read_values(
    db: &Database,
    output: &'static Output,
    coll: &str,
    keys: Vec<String>,
) -> Result<Vec<Touched>> {
    let ids: BTreeSet<String> = keys
        .iter()
        .filter_map(|k| stored::place(output, k).map(|p| p.id))
        .collect();
    let keys: HashSet<String> = keys.into_iter().collect();
    let docs: Vec<Document> = db
        .collection::<Document>(coll)
        .find(doc! {"_id": {"$in": ids.into_iter().collect::<Vec<_>>()}})
        .await?
        .try_collect()
        .await?;
    Ok(docs
        .iter()
        .flat_map(|d| stored::unpack(output, d))
        .filter(|(key, _)| keys.contains(key))
        .map(|(key, value)| Touched {
            output: output.name,
            key,
            value,
        })
        .collect())
}

/// Recomputes aggregations from the whole log beside their live outputs, then swaps them in.
/// Holds the lease throughout (incremental runs wait); `progress` gets the events read.
pub async fn rebuild(
    db: &Database,
    aggs: &[AggDef],
    opts: &RunOptions,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<RunReport> {
    let _local = LocalRun::wait(db, &opts.owner).await?;
    let mut lease = Lease::wait(db, &opts.owner).await?;
    let mut report = RunReport::default();
    let result = rebuild_held(db, aggs, opts, &mut lease, &mut report, progress).await;
    let released = lease.release().await;
    result?;
    released?;
    Ok(report)
}

async fn rebuild_held(
    db: &Database,
    aggs: &[AggDef],
    opts: &RunOptions,
    lease: &mut Lease,
    report: &mut RunReport,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<()> {
    let states = db.collection::<Document>(STATE);
    for agg in aggs {
        states
            .delete_one(doc! {"_id": state_id(agg, REBUILD)})
            .await?;
        for o in agg.outputs {
            db.collection::<Document>(&format!("{}{REBUILD}", o.collection()))
                .drop()
                .await?;
        }
    }
    let live = load_states(db, aggs, "").await?;
    let settled = live.iter().map(|s| s.watermark).max().unwrap_or(0);
    let target = Target {
        suffix: REBUILD,
        settled,
    };
    run_held(db, aggs, opts, lease, &target, report, progress).await?;
    let admin = db.client().database("admin");
    for agg in aggs {
        for o in agg.outputs {
            let from = format!("{}.{}{REBUILD}", db.name(), o.collection());
            let to = format!("{}.{}", db.name(), o.collection());
            let names = db.list_collection_names().await?;
            if names.contains(&format!("{}{REBUILD}", o.collection())) {
                admin
                    .run_command(doc! {"renameCollection": from, "to": to, "dropTarget": true})
                    .await?;
            } else {
                // Nothing to count: the live output goes too.
                db.collection::<Document>(&o.collection()).drop().await?;
            }
        }
        let shadow = states
            .find_one(doc! {"_id": state_id(agg, REBUILD)})
            .await?
            .ok_or_else(|| Error::Internal("rebuild state missing".into()))?;
        states
            .update_one(
                doc! {"_id": state_id(agg, "")},
                doc! {"$set": {
                    "watermark": shadow.get_i64("watermark").unwrap_or(0),
                    "pending": Bson::Null,
                    "events": shadow.get_i64("events").unwrap_or(0),
                    "last_run": DateTime::now(),
                }},
            )
            .upsert(true)
            .await?;
        states
            .delete_one(doc! {"_id": state_id(agg, REBUILD)})
            .await?;
    }
    Ok(())
}

/// Conflict codes of a run another runner overtook: it hands over, loses nothing.
const MOVED_ON: &str = "analytics_moved_on";
const LEASE_LOST: &str = "analytics_lease_lost";

/// The owners running in this process now, by database: one run per owner at a time.
static LOCAL_RUNS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// This process's claim on running as an owner; released on drop.
struct LocalRun(String);

impl LocalRun {
    fn start(db: &Database, owner: &str) -> Option<Self> {
        let key = format!("{}/{owner}", db.name());
        let mut runs = LOCAL_RUNS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if runs.contains(&key) {
            return None;
        }
        runs.push(key.clone());
        Some(Self(key))
    }

    /// Waits for a run of the same owner to end, as long as the lease would.
    async fn wait(db: &Database, owner: &str) -> Result<Self> {
        wait_for(|| async { Ok(Self::start(db, owner)) }).await
    }
}

/// Polls `take` until it gives something, for as long as a lease lasts (twice), then
/// answers busy.
async fn wait_for<T, F, Fut>(mut take: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + 2 * LEASE;
    loop {
        if let Some(t) = take().await? {
            return Ok(t);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::Busy("another analytics run holds the lease".into()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Drop for LocalRun {
    fn drop(&mut self) {
        let mut runs = LOCAL_RUNS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        runs.retain(|o| *o != self.0);
    }
}

/// The runner's lease.
struct Lease {
    db: Database,
    owner: String,
}

const LEASE_ID: &str = "lease";

impl Lease {
    async fn acquire(db: &Database, owner: &str) -> Result<Option<Self>> {
        let coll = db.collection::<Document>(STATE);
        let now = DateTime::now();
        let until = DateTime::from_millis(now.timestamp_millis() + LEASE.as_millis() as i64);
        let got = coll
            .find_one_and_update(
                doc! {"_id": LEASE_ID, "$or": [{"until": {"$lt": now}}, {"owner": owner}]},
                doc! {"$set": {"owner": owner, "until": until, "again": false}},
            )
            .upsert(true)
            .return_document(mongodb::options::ReturnDocument::After)
            .await;
        match got {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(None),
            Err(e) if is_duplicate(&e) => {
                let holder = coll
                    .find_one(doc! {"_id": LEASE_ID})
                    .await?
                    .and_then(|d| d.get_str("owner").ok().map(str::to_owned));
                // A runner of this machine that died (a crash, a kill) frees its lease at
                // once rather than when it runs out.
                if let Some(h) = holder.filter(|h| dead_here(h)) {
                    let taken = coll
                        .update_one(
                            doc! {"_id": LEASE_ID, "owner": &h},
                            doc! {"$set": {"owner": owner, "until": until, "again": false}},
                        )
                        .await?;
                    if taken.modified_count == 1 {
                        tracing::warn!(previous = %h, "took over the lease of a runner that died");
                        return Ok(Some(Self {
                            db: db.clone(),
                            owner: owner.to_owned(),
                        }));
                    }
                }
                // Held: ask the holder for one more round.
                Self::ask_again(db).await?;
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
        Ok(Some(Self {
            db: db.clone(),
            owner: owner.to_owned(),
        }))
    }

    /// Waits for the lease (a rebuild), up to twice its length.
    async fn wait(db: &Database, owner: &str) -> Result<Self> {
        wait_for(|| Self::acquire(db, owner)).await
    }

    async fn renew(&self) -> Result<()> {
        let until =
            DateTime::from_millis(DateTime::now().timestamp_millis() + LEASE.as_millis() as i64);
        let r = self
            .db
            .collection::<Document>(STATE)
            .update_one(
                doc! {"_id": LEASE_ID, "owner": &self.owner},
                doc! {"$set": {"until": until}},
            )
            .await?;
        if r.matched_count == 0 {
            return Err(Error::Conflict {
                code: LEASE_LOST,
                message: "the analytics lease was lost".into(),
            });
        }
        Ok(())
    }

    /// Asks whoever holds the lease for one more round (events came while it ran).
    async fn ask_again(db: &Database) -> Result<()> {
        db.collection::<Document>(STATE)
            .update_one(doc! {"_id": LEASE_ID}, doc! {"$set": {"again": true}})
            .await?;
        Ok(())
    }

    /// Whether another round was asked for (and clears the request).
    async fn take_again(&self) -> Result<bool> {
        let r = self
            .db
            .collection::<Document>(STATE)
            .update_one(
                doc! {"_id": LEASE_ID, "owner": &self.owner, "again": true},
                doc! {"$set": {"again": false}},
            )
            .await?;
        Ok(r.modified_count > 0)
    }

    async fn release(self) -> Result<()> {
        self.db
            .collection::<Document>(STATE)
            .update_one(
                doc! {"_id": LEASE_ID, "owner": &self.owner},
                doc! {"$set": {"until": DateTime::from_millis(0)}},
            )
            .await?;
        Ok(())
    }
}

/// Whether a lease owner (`host:pid`, see [`owner`]) is a process of this machine that is no
/// longer running.
fn dead_here(holder: &str) -> bool {
    let mine = owner();
    let (Some((host, pid)), Some((my_host, _))) = (holder.rsplit_once(':'), mine.rsplit_once(':'))
    else {
        return false;
    };
    if host != my_host || holder == mine {
        return false;
    }
    pid.parse::<u32>()
        .is_ok_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
}

fn is_duplicate(e: &mongodb::error::Error) -> bool {
    matches!(
        *e.kind,
        mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(ref w)) if w.code == 11000
    ) || matches!(*e.kind, mongodb::error::ErrorKind::Command(ref c) if c.code == 11000)
}

/// Output values by key (for tests and checks): `{key: value}` of an output collection.
pub async fn dump(db: &Database, output: &str) -> Result<HashMap<String, i64>> {
    let Some(out) = super::builtin::output(output) else {
        return Err(Error::NotFound("analytics output"));
    };
    let docs: Vec<Document> = db
        .collection::<Document>(&collection(output))
        .find(doc! {})
        .await?
        .try_collect()
        .await?;
    Ok(docs.iter().flat_map(|d| stored::unpack(out, d)).collect())
}
