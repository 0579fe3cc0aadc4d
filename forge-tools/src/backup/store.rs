//! Copying the store: every collection of the forge's database into `store/` as mongodump
//! writes them (`<name>.bson`, the documents one after the other, and
//! `<name>.metadata.json`, its options and indexes in extended JSON), all as of one moment.
//!
//! A change stream on the database is opened before anything is read; the collections are
//! then copied one by one, each through one cursor, while the stream's changes are gathered
//! (see `changes`); a marker document written after the last read ends the window (the
//! stream delivers it after every change made before it); the gathered changes are then
//! applied to the copied files. Each file is streamed from the cursor and back, never held
//! in memory; only the changes of the window are. A collection dropped or renamed during
//! the window starts the copy over (a few times at most).

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bson::oid::ObjectId;
use bson::raw::RawDocumentBuf;
use bson::{Bson, DateTime, Document, Timestamp, doc};
use futures::{StreamExt, TryStreamExt};
use mongodb::Database;
use mongodb::change_stream::ChangeStream;
use mongodb::change_stream::event::ChangeStreamEvent;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::bsonfile;
use super::changes::{Change, Changes, Reshaped, apply_update, id_key};
use super::error::{BackupError, Result, io, joined};
use super::manifest::{CollectionEntry, Consistency, file_stem};
use super::progress::Progress;

/// The collection the end-of-copy markers go to; never copied.
pub const MARKS: &str = "_backup_marks";
/// Copies started before giving up when the store keeps changing shape.
const ATTEMPTS: u32 = 3;
/// Changes one copy may gather (they are held in memory).
const MAX_CHANGES: u64 = 5_000_000;
/// How long the marker may take to come through the change stream.
const MARKER_WAIT: Duration = Duration::from_secs(120);

/// What the copy of the store produced.
#[derive(Debug)]
pub struct Dumped {
    pub collections: Vec<CollectionEntry>,
    pub consistency: Consistency,
    pub server_version: String,
    /// The applied store migrations, in order.
    pub migrations: Vec<String>,
    /// The checksums (names) of the attachment files the copied records refer to.
    pub attachment_files: HashSet<String>,
}

/// A collection as `listCollections` describes it.
struct Spec {
    name: String,
    options: Document,
}

/// One collection copied, before the window's changes are applied.
struct Part {
    spec: Spec,
    stem: String,
    count: u64,
    bytes: u64,
    sha256: String,
    metadata_sha256: String,
}

/// Copies every collection of `db` into `dir` (see the module doc).
pub async fn dump(db: &Database, dir: &Path, progress: &Arc<dyn Progress>) -> Result<Dumped> {
    let server_version = server_version(db).await;
    let mut retries = 0;
    loop {
        match attempt(db, dir, progress).await? {
            Ok((parts, changes, cluster_time)) => {
                let applied = changes.events;
                let (collections, attachment_files, migrations) =
                    finish(db, dir, parts, changes).await?;
                return Ok(Dumped {
                    collections,
                    consistency: Consistency {
                        method: "change-stream".into(),
                        cluster_time: cluster_time.map(|t| [t.time, t.increment]),
                        changes_applied: applied,
                        retries,
                    },
                    server_version,
                    migrations,
                    attachment_files,
                });
            }
            Err(Reshaped(why)) => {
                clear_dir(dir)?;
                retries += 1;
                if retries >= ATTEMPTS {
                    return Err(BackupError::Unsettled(format!(
                        "the store kept changing shape during the copy ({why}; {ATTEMPTS} tries): a collection was dropped or renamed (is `forge analytics rebuild` running?); try again"
                    )));
                }
                tracing::warn!(%why, "the store changed shape during the copy; starting over");
            }
        }
    }
}

type Window = (Vec<Part>, Changes, Option<Timestamp>);

/// One try: opens the change stream, copies every collection, closes the window.
async fn attempt(
    db: &Database,
    dir: &Path,
    progress: &Arc<dyn Progress>,
) -> Result<std::result::Result<Window, Reshaped>> {
    let marker = ObjectId::new();
    let stream = db.watch().await?;
    // From here on, every change to the database reaches the collector.
    let mut collector = tokio::spawn(collect(stream, marker));
    let specs = list_collections(db).await?;
    let mut total = 0u64;
    for s in &specs {
        total += db
            .collection::<Document>(&s.name)
            .estimated_document_count()
            .await?;
    }
    progress.phase("store", total);
    let mut parts = Vec::with_capacity(specs.len());
    for spec in specs {
        if collector.is_finished() {
            // The stream ended early: the store changed shape, or it failed.
            break;
        }
        parts.push(copy_collection(db, dir, spec, progress.as_ref()).await?);
    }
    if !collector.is_finished() {
        db.collection::<Document>(MARKS)
            .insert_one(doc! {"_id": marker, "at": DateTime::now()})
            .await?;
    }
    let outcome = match tokio::time::timeout(MARKER_WAIT, &mut collector).await {
        Ok(joined_result) => joined_result.map_err(|e| joined(&e))?,
        Err(_) => {
            collector.abort();
            Err(BackupError::Unsettled(
                "the store's change stream did not deliver the end-of-copy marker within 2 minutes"
                    .into(),
            ))
        }
    };
    // The marker has done its work (a failure here leaves one small document behind).
    let _ = db
        .collection::<Document>(MARKS)
        .delete_one(doc! {"_id": marker})
        .await;
    Ok(outcome?.map(|(changes, time)| (parts, changes, time)))
}

type Collected = std::result::Result<(Changes, Option<Timestamp>), Reshaped>;

/// Gathers the stream's changes until the marker comes through.
async fn collect(
    mut stream: ChangeStream<ChangeStreamEvent<Document>>,
    marker: ObjectId,
) -> Result<Collected> {
    let mut changes = Changes::default();
    while let Some(ev) = stream.next().await {
        let ev = ev?;
        let coll = ev.ns.as_ref().and_then(|ns| ns.coll.as_deref());
        if coll == Some(MARKS) {
            let id = ev.document_key.as_ref().and_then(|k| k.get("_id"));
            if id == Some(&Bson::ObjectId(marker)) {
                return Ok(Ok((changes, ev.cluster_time)));
            }
            continue;
        }
        if let Err(reshaped) = changes.record(ev, MARKS)? {
            return Ok(Err(reshaped));
        }
        if changes.events > MAX_CHANGES {
            return Err(BackupError::Unsettled(format!(
                "more than {MAX_CHANGES} changes were made while the store was copied; back up at a quieter time"
            )));
        }
    }
    Err(BackupError::Unsettled(
        "the store's change stream ended during the copy".into(),
    ))
}

/// The collections to copy: every one but the store's own (`system.*`) and the markers.
async fn list_collections(db: &Database) -> Result<Vec<Spec>> {
    let listed: Vec<Document> = db
        .run_cursor_command(doc! {"listCollections": 1})
        .await?
        .try_collect()
        .await?;
    let mut out = Vec::new();
    for c in listed {
        let name = c.get_str("name").unwrap_or_default().to_owned();
        if name.is_empty() || name.starts_with("system.") || name == MARKS {
            continue;
        }
        let kind = c.get_str("type").unwrap_or("collection");
        if kind != "collection" {
            return Err(BackupError::Format(format!(
                "{name} is a {kind}, which a backup does not copy"
            )));
        }
        let options = c.get_document("options").cloned().unwrap_or_default();
        out.push(Spec { name, options });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The indexes of a collection, as `listIndexes` describes them.
async fn list_indexes(db: &Database, name: &str) -> Result<Vec<Document>> {
    Ok(db
        .run_cursor_command(doc! {"listIndexes": name})
        .await?
        .try_collect()
        .await?)
}

async fn server_version(db: &Database) -> String {
    match db
        .client()
        .database("admin")
        .run_command(doc! {"buildInfo": 1})
        .await
    {
        Ok(info) => info.get_str("version").unwrap_or("unknown").to_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "the store did not tell its version");
            "unknown".into()
        }
    }
}

fn bson_path(dir: &Path, stem: &str) -> PathBuf {
    dir.join(format!("{stem}.bson"))
}

fn part_path(dir: &Path, stem: &str) -> PathBuf {
    dir.join(format!("{stem}.bson.part"))
}

/// `<stem>.metadata.json`.
pub fn metadata_path(dir: &Path, stem: &str) -> PathBuf {
    dir.join(format!("{stem}.metadata.json"))
}

/// Writes the collection's metadata file and streams its documents into `<stem>.bson.part`.
async fn copy_collection(
    db: &Database,
    dir: &Path,
    spec: Spec,
    progress: &dyn Progress,
) -> Result<Part> {
    let stem = file_stem(&spec.name);
    let indexes = list_indexes(db, &spec.name).await?;
    let metadata_sha256 = write_metadata(dir, &stem, &spec, indexes)?;
    let path = part_path(dir, &stem);
    let file = tokio::fs::File::create(&path).await.map_err(io(&path))?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut cursor = db
        .collection::<RawDocumentBuf>(&spec.name)
        .find(doc! {})
        .await?;
    while let Some(raw) = cursor.try_next().await? {
        let data = raw.as_bytes();
        hasher.update(data);
        out.write_all(data).await.map_err(io(&path))?;
        count += 1;
        bytes += data.len() as u64;
        if count.is_multiple_of(256) {
            progress.advance(256);
        }
    }
    progress.advance(count % 256);
    out.flush().await.map_err(io(&path))?;
    out.into_inner().sync_all().await.map_err(io(&path))?;
    Ok(Part {
        spec,
        stem,
        count,
        bytes,
        sha256: hex::encode(hasher.finalize()),
        metadata_sha256,
    })
}

/// Writes `<stem>.metadata.json` as mongodump does (options, indexes, name, type, in
/// canonical extended JSON); returns its checksum.
fn write_metadata(dir: &Path, stem: &str, spec: &Spec, indexes: Vec<Document>) -> Result<String> {
    let meta = doc! {
        "options": spec.options.clone(),
        "indexes": indexes,
        "collectionName": &spec.name,
        "type": "collection",
    };
    let mut json = String::new();
    canonical_extjson(&Bson::Document(meta), &mut json);
    let json = json.into_bytes();
    let path = metadata_path(dir, stem);
    std::fs::write(&path, &json).map_err(io(&path))?;
    Ok(hex::encode(Sha256::digest(&json)))
}

/// Writes `value` as canonical extended JSON, keeping the order of every document's fields
/// (an index's key order is part of the index; `serde_json::Value` would sort them).
pub fn canonical_extjson(value: &Bson, out: &mut String) {
    match value {
        Bson::Document(d) => {
            out.push('{');
            for (i, (k, v)) in d.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                canonical_extjson(v, out);
            }
            out.push('}');
        }
        Bson::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_extjson(v, out);
            }
            out.push(']');
        }
        // Scalars: small objects whose field order does not matter (`$numberInt`, `$date`...).
        other => out.push_str(&other.clone().into_canonical_extjson().to_string()),
    }
}

/// Applies the window's changes to the copied files and describes the result.
async fn finish(
    db: &Database,
    dir: &Path,
    parts: Vec<Part>,
    mut changes: Changes,
) -> Result<(Vec<CollectionEntry>, HashSet<String>, Vec<String>)> {
    let mut entries = Vec::new();
    let mut attachment_files = HashSet::new();
    let mut migrations = Vec::new();
    let mut done: HashSet<String> = HashSet::new();
    for part in parts {
        let name = part.spec.name.clone();
        let edits = changes.take(&name);
        let entry = finish_one(dir, part, edits).await?;
        done.insert(name);
        entries.push(entry);
    }
    // Collections created during the copy: everything in them was inserted meanwhile.
    for name in changes.collections() {
        if done.contains(&name) {
            continue;
        }
        let spec = Spec {
            name: name.clone(),
            options: Document::new(),
        };
        let stem = file_stem(&name);
        let indexes = list_indexes(db, &name).await.unwrap_or_default();
        let metadata_sha256 = write_metadata(dir, &stem, &spec, indexes)?;
        let path = part_path(dir, &stem);
        std::fs::write(&path, b"").map_err(io(&path))?;
        let part = Part {
            spec,
            stem,
            count: 0,
            bytes: 0,
            sha256: String::new(),
            metadata_sha256,
        };
        entries.push(finish_one(dir, part, changes.take(&name)).await?);
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    // What the restore and the rest of the backup need to know from the final files.
    for entry in &entries {
        let path = bson_path(dir, &entry.file);
        let wanted = match entry.name.as_str() {
            crate::attachments::COLLECTION => "sha256",
            crate::store::migrations::COLLECTION => "_id",
            _ => continue,
        };
        let values = tokio::task::spawn_blocking(move || string_fields(&path, wanted))
            .await
            .map_err(|e| joined(&e))??;
        if entry.name == crate::attachments::COLLECTION {
            attachment_files.extend(values);
        } else {
            migrations = values;
            migrations.sort();
        }
    }
    Ok((entries, attachment_files, migrations))
}

/// Turns `<stem>.bson.part` into `<stem>.bson`, with the window's changes of the collection
/// applied when it has any.
async fn finish_one(
    dir: &Path,
    part: Part,
    edits: Option<HashMap<Vec<u8>, Change>>,
) -> Result<CollectionEntry> {
    let from = part_path(dir, &part.stem);
    let to = bson_path(dir, &part.stem);
    let (count, bytes, sha256) = match edits {
        None => {
            std::fs::rename(&from, &to).map_err(io(&to))?;
            (part.count, part.bytes, part.sha256)
        }
        Some(edits) => {
            let (f, t) = (from.clone(), to.clone());
            let result = tokio::task::spawn_blocking(move || rewrite(&f, &t, edits))
                .await
                .map_err(|e| joined(&e))??;
            std::fs::remove_file(&from).map_err(io(&from))?;
            result
        }
    };
    Ok(CollectionEntry {
        name: part.spec.name,
        file: part.stem,
        count,
        bytes,
        sha256,
        metadata_sha256: part.metadata_sha256,
    })
}

/// Copies `from` to `to` with the changes applied: deleted documents left out, replaced ones
/// written in their final state, updated ones updated, inserted ones appended.
fn rewrite(
    from: &Path,
    to: &Path,
    mut edits: HashMap<Vec<u8>, Change>,
) -> Result<(u64, u64, String)> {
    let mut input = BufReader::with_capacity(1 << 20, std::fs::File::open(from).map_err(io(from))?);
    let mut out = Hashing::new(BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(to).map_err(io(to))?,
    ));
    while let Some(bytes) = bsonfile::next(&mut input, from)? {
        let raw = RawDocumentBuf::from_bytes(bytes)?;
        let id = raw.get("_id")?.map(Bson::try_from).transpose()?;
        let change = match &id {
            Some(id) => edits.remove(&id_key(id)?),
            None => None,
        };
        match change {
            None => out.doc(raw.as_bytes(), to)?,
            Some(Change::Deleted) => {}
            Some(Change::Doc(d)) => out.doc(&d.to_vec()?, to)?,
            Some(Change::Updates(list)) => {
                let mut d = Document::try_from(raw)?;
                for u in &list {
                    apply_update(&mut d, u);
                }
                out.doc(&d.to_vec()?, to)?;
            }
        }
    }
    // What is left was not in the copy: inserted during the window (in no particular
    // order), or updated and then not found (it cannot have existed before the window
    // without being copied; nothing to write).
    let mut inserted: Vec<Document> = edits
        .into_values()
        .filter_map(|c| match c {
            Change::Doc(d) => Some(d),
            _ => None,
        })
        .collect();
    inserted.sort_by_key(|d| d.get("_id").map(ToString::to_string));
    for d in inserted {
        out.doc(&d.to_vec()?, to)?;
    }
    out.finish(to)
}

/// A writer that counts and checksums the documents written through it.
struct Hashing<W: Write> {
    inner: W,
    hasher: Sha256,
    count: u64,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
            bytes: 0,
        }
    }

    fn doc(&mut self, data: &[u8], path: &Path) -> Result<()> {
        self.hasher.update(data);
        self.inner.write_all(data).map_err(io(path))?;
        self.count += 1;
        self.bytes += data.len() as u64;
        Ok(())
    }

    fn finish(mut self, path: &Path) -> Result<(u64, u64, String)> {
        self.inner.flush().map_err(io(path))?;
        Ok((self.count, self.bytes, hex::encode(self.hasher.finalize())))
    }
}

/// The string values of one field of every document of a `.bson` file.
fn string_fields(path: &Path, field: &str) -> Result<Vec<String>> {
    let mut input = BufReader::new(std::fs::File::open(path).map_err(io(path))?);
    let mut out = Vec::new();
    while let Some(bytes) = bsonfile::next(&mut input, path)? {
        let raw = RawDocumentBuf::from_bytes(bytes)?;
        if let Some(v) = raw.get(field)?.and_then(|v| v.as_str()) {
            out.push(v.to_owned());
        }
    }
    Ok(out)
}

/// Removes what a failed try left in `dir`.
fn clear_dir(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let path = entry.map_err(io(dir))?.path();
        std::fs::remove_file(&path).map_err(io(&path))?;
    }
    Ok(())
}
