//! Filling an empty database from `store/`: each collection created with its options, its
//! documents inserted in unordered batches straight from the file, then its indexes built
//! from the metadata file.

use std::path::Path;

use bson::raw::RawDocumentBuf;
use bson::{Bson, Document, doc};
use mongodb::Database;

use super::bsonfile;
use super::error::{BackupError, Result, io};
use super::manifest::CollectionEntry;
use super::progress::Progress;
use super::store::metadata_path;

/// Documents per insert.
const BATCH_DOCS: usize = 1_000;
/// Bytes per insert (the driver splits larger ones; this keeps memory small).
const BATCH_BYTES: usize = 8 * 1024 * 1024;
/// "Namespace already exists".
const NAMESPACE_EXISTS: i32 = 48;

/// Refuses a database that holds any document (outside the store's own `system.*`).
pub async fn check_empty(db: &Database) -> Result<()> {
    let mut names = db.list_collection_names().await?;
    names.sort();
    for name in names {
        if name.starts_with("system.") {
            continue;
        }
        if db
            .collection::<Document>(&name)
            .find_one(doc! {})
            .await?
            .is_some()
        {
            return Err(BackupError::NotEmpty(format!(
                "database {} is not empty (collection {name} has documents): restore into a new database",
                db.name()
            )));
        }
    }
    Ok(())
}

/// Loads one collection from `dir` (the backup's `store/`); returns the documents inserted.
pub async fn load(
    db: &Database,
    dir: &Path,
    entry: &CollectionEntry,
    progress: &dyn Progress,
) -> Result<u64> {
    let meta = read_metadata(&metadata_path(dir, &entry.file))?;
    let mut create = doc! {"create": &entry.name};
    if let Ok(options) = meta.get_document("options") {
        create.extend(options.clone());
    }
    if let Err(e) = db.run_command(create).await
        && !matches!(*e.kind, mongodb::error::ErrorKind::Command(ref c) if c.code == NAMESPACE_EXISTS)
    {
        return Err(e.into());
    }
    let coll = db.collection::<RawDocumentBuf>(&entry.name);
    let path = dir.join(format!("{}.bson", entry.file));
    let file = tokio::fs::File::open(&path).await.map_err(io(&path))?;
    let mut input = tokio::io::BufReader::with_capacity(1 << 20, file);
    let mut batch: Vec<RawDocumentBuf> = Vec::with_capacity(BATCH_DOCS);
    let mut batch_bytes = 0usize;
    let mut inserted = 0u64;
    loop {
        let next = bsonfile::next_async(&mut input, &path).await?;
        let end = next.is_none();
        if let Some(bytes) = next {
            batch_bytes += bytes.len();
            batch.push(RawDocumentBuf::from_bytes(bytes)?);
        }
        if !batch.is_empty() && (end || batch.len() >= BATCH_DOCS || batch_bytes >= BATCH_BYTES) {
            let n = batch.len() as u64;
            coll.insert_many(&batch).ordered(false).await?;
            inserted += n;
            progress.advance(n);
            batch.clear();
            batch_bytes = 0;
        }
        if end {
            break;
        }
    }
    if inserted != entry.count {
        return Err(BackupError::Corrupt(format!(
            "{} holds {inserted} documents, the manifest says {}",
            path.display(),
            entry.count
        )));
    }
    for index in meta.get_array("indexes").map_or(&[][..], Vec::as_slice) {
        let Bson::Document(spec) = index else {
            continue;
        };
        if spec.get_str("name").is_ok_and(|n| n == "_id_") {
            continue;
        }
        let mut spec = spec.clone();
        // What describes the index on the old server, not what it is.
        for k in ["v", "ns", "background"] {
            spec.remove(k);
        }
        // Through the driver's own description of an index, so the request is the one the
        // forge's `ensure_indexes` makes at start (SecantusDB compares index options in
        // order, and would otherwise refuse the forge's request as a different index).
        let model: mongodb::IndexModel = bson::deserialize_from_document(spec).map_err(|e| {
            BackupError::Corrupt(format!("an index of {} is unreadable: {e}", entry.name))
        })?;
        db.collection::<Document>(&entry.name)
            .create_index(model)
            .await?;
    }
    Ok(inserted)
}

/// A `<name>.metadata.json` file (extended JSON), fields in the order they are written
/// (an index's key order is part of the index).
fn read_metadata(path: &Path) -> Result<Document> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    match serde_json::from_slice::<Bson>(&bytes) {
        Ok(Bson::Document(d)) => Ok(d),
        Ok(_) => Err(BackupError::Corrupt(format!(
            "{} is not an object",
            path.display()
        ))),
        Err(e) => Err(BackupError::Corrupt(format!("{}: {e}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_keeps_field_order_and_types() {
        let meta = doc! {
            "options": {},
            "indexes": [
                {"v": 2, "key": {"project_id": 1, "mount": 1}, "name": "project_id_1_mount_1", "unique": true},
                {"v": 2, "key": {"z": -1_i64, "a": 1.5}, "name": "z", "expireAfterSeconds": 0},
            ],
            "collectionName": "tools",
            "when": bson::DateTime::from_millis(1_700_000_000_000),
            "id": bson::oid::ObjectId::new(),
        };
        let mut json = String::new();
        super::super::store::canonical_extjson(&Bson::Document(meta.clone()), &mut json);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tools.metadata.json");
        std::fs::write(&path, &json).unwrap();
        let back = read_metadata(&path).unwrap();
        assert_eq!(back, meta);
        let keys: Vec<&String> = back.get_array("indexes").unwrap()[0]
            .as_document()
            .unwrap()
            .get_document("key")
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, ["project_id", "mount"]);
    }
}
