//! `forge backup` and `forge restore`: a consistent copy of everything a forge keeps, made
//! while it runs, and its restore into an empty data dir and database.
//!
//! # What a backup holds
//!
//! ```text
//! DIR/manifest.json                   versions, counts, checksums (written last)
//! DIR/store/<collection>.bson         the documents, as mongodump writes them
//! DIR/store/<collection>.metadata.json  options and indexes, as mongodump writes them
//! DIR/events/<collection>.bson (and .metadata.json)  the event log's database, the same way
//! DIR/repos/<tool id>.git/            repo.bundle + HEAD, config, description, hooks/, info/
//! DIR/repos-removed/<name>/           the same for repositories of removed tools
//! DIR/attachments/<xx>/<sha256>       the attachment files the copied records name
//! ```
//!
//! Every collection of the forge's database is copied (`migrations`, the analytics
//! aggregates, `tasks`... everything but the server's own `system.*`), and then those of the
//! event log's database (`events` and its counter, see `crate::events::log_db`). The search
//! index is not: a restore rebuilds it from the store. Outgoing mail written as files
//! (`<data>/mail`, without SMTP) is not part of the forge's state and is not copied.
//!
//! # What is guaranteed
//!
//! - **The store is copied as of one moment**: the end of the copy. A change stream on the
//!   database is opened first, the collections are copied, a marker is written, and every
//!   change the stream carried until the marker is applied to the copy (see `store` and
//!   `changes`): what `mongodump --oplog` and `mongorestore --oplogReplay` do, applied when
//!   the backup is made, so the files are consistent by themselves, in mongodump's layout.
//!   The marker goes to `_backup_marks`, which is never copied (it stays, empty). Counters and what they count, an event batch and its events, a ticket and
//!   its comments are copied together. This needs a replica set, which the forge needs
//!   anyway (its read model follows the change stream). Snapshot reads were the other way:
//!   SecantusDB accepts `readConcern: snapshot` and keeps one cursor isolated, but does not
//!   read two collections at the same `atClusterTime`; MongoDB does, but only within
//!   `minSnapshotHistoryWindowInSeconds` (5 minutes by default), too short for a large
//!   forge. A collection dropped or renamed during the copy starts it over.
//! - **The event log is copied after the rest**, the same way, as of a later moment: it
//!   holds every event the copied aggregates counted (their watermarks are behind its
//!   counter), and the events logged between the two moments, which the aggregations count
//!   after a restore. The log has its own database so its inserts do not reach the change
//!   stream the read model follows.
//! - **Repositories are copied after the store**, each as of the moment its refs are read
//!   (`git bundle`, see `repos`): every commit the copied store knows of is in them; a
//!   push made during the backup may be in a repository but not yet in the store's record
//!   of it, so a restore queues a refresh of every repository, which records it as after a
//!   push. Each bundle is a complete repository whatever is pushed meanwhile.
//! - **Attachment files are copied around the store**: those present before it, then
//!   those its records name that appeared during it; exactly the files the copied records
//!   name are kept (see `files`).
//! - Not covered: index definitions changed during the copy (a forge starting meanwhile
//!   creates the indexes it needs again when it starts on the restored data).
//!
//! # Restore
//!
//! `restore` reads the manifest, refuses a data dir that holds anything but an embedded
//! store, verifies every checksum before writing anything, refuses a database with any
//! document, then loads the collections (unordered batches of raw documents, then their
//! indexes), makes the repositories and copies the attachment files. `finish_restore`
//! then rebuilds the search index and queues the repository refreshes through an opened
//! forge. A restore that fails part way leaves a partly filled target: empty it and run
//! the restore again.

mod bsonfile;
mod changes;
mod checksum;
mod error;
mod files;
mod load;
mod manifest;
mod progress;
mod repos;
mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mongodb::Database;

pub use error::{BackupError, Result};
pub use manifest::{CollectionEntry, LogInfo, Manifest, RepoEntry, TreeEntry};
pub use progress::{Progress, Silent};
pub use store::MARKS;

use crate::attachments::AttachmentStore;
use crate::config::Config;
use crate::ids::ToolId;
use crate::store::embedded::EmbeddedStore;
use crate::tool::Forge;
use crate::tools::repo::{refresh, removed_repos_root, repos_root};
use error::{io, joined};

/// Files the embedded store keeps in the data dir (see `store::embedded`): a restore into a
/// data dir that holds only these (and an empty database in them) is a restore into an
/// empty one.
const EMBEDDED_FILES: &[&str] = &[
    "store",
    "store.lock",
    "store.users",
    "store.port",
    "store.log",
];

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Runs a blocking job off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| joined(&e))?
}

/// Backs the forge up into `out`, which must be missing or empty (see the module doc). A
/// backup that fails removes what it wrote.
pub async fn backup(forge: &Forge, out: &Path, progress: Arc<dyn Progress>) -> Result<Manifest> {
    prepare_out(out)?;
    let result = write_backup(forge, out, progress).await;
    if result.is_err()
        && let Ok(entries) = std::fs::read_dir(out)
    {
        // `out` was empty: everything in it is this backup's.
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
    result
}

async fn write_backup(forge: &Forge, out: &Path, progress: Arc<dyn Progress>) -> Result<Manifest> {
    let created = now();
    let config = forge.config();
    let store_dir = out.join(manifest::STORE_DIR);
    std::fs::create_dir_all(&store_dir).map_err(io(&store_dir))?;
    let log_dir = out.join(manifest::LOG_DIR);
    std::fs::create_dir_all(&log_dir).map_err(io(&log_dir))?;

    // Attachment files present now (the first pass).
    let attachments_src = forge.attachments().dir().to_owned();
    let attachments_dest = out.join("attachments");
    progress.phase("attachments", 0);
    {
        let (src, dest, p) = (
            attachments_src.clone(),
            attachments_dest.clone(),
            progress.clone(),
        );
        blocking(move || files::copy_present(&src, &dest, |_| p.advance(1))).await?;
    }

    // The store, as of one moment; then the event log, as of a later one.
    let dumped = store::dump(forge.db(), &store_dir, &progress).await?;
    let log_db = crate::events::log_db(forge.db());
    let log = store::dump(&log_db, &log_dir, &progress).await?;

    // The attachment files the copied records name.
    progress.phase("attachments", dumped.attachment_files.len() as u64);
    let attachments = {
        let (src, dest) = (attachments_src, attachments_dest);
        let wanted = dumped.attachment_files.clone();
        blocking(move || {
            files::settle(&src, &dest, &wanted)?;
            files::verify(&dest)
        })
        .await?
    };
    progress.advance(attachments.files);

    // The repositories, each as of the moment its refs are read.
    let found = repos::list(&repos_root(config), &removed_repos_root(config))?;
    progress.phase("repositories", found.len() as u64);
    let mut repositories = Vec::with_capacity(found.len());
    for (rel, src) in found {
        let dest = out.join(&rel);
        let entry = blocking(move || {
            let refs = repos::backup_one(&src, &dest)?;
            let tree = checksum::tree(&dest, |_, _, _| Ok(()))?;
            Ok(RepoEntry {
                path: rel,
                refs,
                tree: tree.into(),
            })
        })
        .await?;
        repositories.push(entry);
        progress.advance(1);
    }

    let manifest = Manifest {
        format: manifest::FORMAT,
        forge_version: env!("CARGO_PKG_VERSION").to_owned(),
        created,
        finished: now(),
        store: manifest::StoreInfo {
            server_version: dumped.server_version,
            database: forge.db().name().to_owned(),
            migrations: dumped.migrations,
        },
        consistency: dumped.consistency,
        collections: dumped.collections,
        event_log: Some(LogInfo {
            database: log_db.name().to_owned(),
            consistency: log.consistency,
            collections: log.collections,
        }),
        repositories,
        attachments: attachments.into(),
    };
    manifest.write(out)?;
    Ok(manifest)
}

/// Creates `out`, or checks it is an empty directory.
fn prepare_out(out: &Path) -> Result<()> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::NotEmpty(format!(
                    "{} is not empty: back up into a new directory",
                    out.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(out).map_err(io(out))
        }
        Err(e) => Err(io(out)(e)),
    }
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    pub documents: u64,
    pub repositories: usize,
    pub attachments: u64,
}

/// Restores the backup in `from` into the configured (empty) data dir and database. The
/// search index is left to [`finish_restore`].
pub async fn restore(
    config: &Config,
    from: &Path,
    progress: Arc<dyn Progress>,
) -> Result<Restored> {
    let manifest = Manifest::read(from)?;
    let known: Vec<String> = crate::store::migrations::all()?
        .into_iter()
        .map(|m| m.name)
        .collect();
    if let Some(unknown) = manifest
        .store
        .migrations
        .iter()
        .find(|m| !known.contains(m))
    {
        return Err(BackupError::Corrupt(format!(
            "the backup was made by a newer forge ({}): its store migration {unknown} is unknown to this one",
            manifest.forge_version
        )));
    }
    check_data_dir(config)?;
    verify(from, &manifest, &progress).await?;
    let (db, embedded) = connect(config).await?;
    let result = fill(config, &db, from, manifest, &progress).await;
    if let Some(store) = embedded {
        store.stop().await;
    }
    result
}

/// Refuses a data dir with anything in it but the embedded store's files.
fn check_data_dir(config: &Config) -> Result<()> {
    let dir = &config.data_dir;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut names: Vec<String> = entries
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()
        .map_err(io(dir))?;
    names.sort();
    let embedded = config.mongodb_uri.is_none();
    if let Some(name) = names
        .iter()
        .find(|n| !(embedded && EMBEDDED_FILES.contains(&n.as_str())))
    {
        return Err(BackupError::NotEmpty(format!(
            "data dir {} is not empty (it holds {name}): restore into an empty one",
            dir.display()
        )));
    }
    Ok(())
}

/// Checks every file the manifest lists against its checksum.
async fn verify(from: &Path, manifest: &Manifest, progress: &Arc<dyn Progress>) -> Result<()> {
    let total = manifest.all_collections().count() + manifest.repositories.len() + 1;
    progress.phase("verifying", total as u64);
    let damaged = |what: &str| {
        BackupError::Corrupt(format!(
            "the backup in {} is damaged: {what} does not match the manifest",
            from.display()
        ))
    };
    for (folder, c) in manifest.all_collections() {
        let store_dir = from.join(folder);
        let bson = store_dir.join(format!("{}.bson", c.file));
        let meta = store::metadata_path(&store_dir, &c.file);
        let (sum, meta_sum) =
            blocking(move || Ok((checksum::file(&bson)?, checksum::file(&meta)?.0)))
                .await
                .map_err(|e| missing_as_damage(e, from))?;
        if sum != (c.sha256.clone(), c.bytes) {
            return Err(damaged(&format!("{folder}/{}.bson", c.file)));
        }
        if meta_sum != c.metadata_sha256 {
            return Err(damaged(&format!("{folder}/{}.metadata.json", c.file)));
        }
        progress.advance(1);
    }
    for r in &manifest.repositories {
        let dir = from.join(&r.path);
        let sum = blocking(move || checksum::tree(&dir, |_, _, _| Ok(()))).await?;
        if sum.sha256 != r.tree.sha256 || sum.files == 0 {
            return Err(damaged(&r.path));
        }
        progress.advance(1);
    }
    let dir = from.join("attachments");
    let sum = blocking(move || files::verify(&dir)).await?;
    if sum.sha256 != manifest.attachments.sha256 {
        return Err(damaged("attachments"));
    }
    progress.advance(1);
    Ok(())
}

/// A file the manifest lists that is missing is damage to the backup.
fn missing_as_damage(e: BackupError, from: &Path) -> BackupError {
    match e {
        BackupError::Io { path, source } if source.kind() == std::io::ErrorKind::NotFound => {
            BackupError::Corrupt(format!(
                "the backup in {} is incomplete: {} is missing",
                from.display(),
                path.display()
            ))
        }
        other => other,
    }
}

/// Connects to the configured store, starting the embedded one when none is configured.
async fn connect(config: &Config) -> Result<(Database, Option<EmbeddedStore>)> {
    let wait = Duration::from_secs(30);
    match &config.mongodb_uri {
        Some(uri) => Ok((
            crate::store::connect(uri, &config.db_name, wait).await?,
            None,
        )),
        None => {
            let embedded = EmbeddedStore::start(&config.data_dir).await?;
            match crate::store::connect(embedded.uri(), &config.db_name, wait).await {
                Ok(db) => Ok((db, Some(embedded))),
                Err(e) => {
                    embedded.stop().await;
                    Err(e.into())
                }
            }
        }
    }
}

/// Loads the store, makes the repositories, copies the attachment files.
async fn fill(
    config: &Config,
    db: &Database,
    from: &Path,
    manifest: Manifest,
    progress: &Arc<dyn Progress>,
) -> Result<Restored> {
    let log_db = crate::events::log_db(db);
    load::check_empty(db).await?;
    load::check_empty(&log_db).await?;
    progress.phase(
        "store",
        manifest.all_collections().map(|(_, c)| c.count).sum(),
    );
    let mut documents = 0;
    for (folder, c) in manifest.all_collections() {
        let target = if folder == manifest::LOG_DIR {
            &log_db
        } else {
            db
        };
        documents += load::load(target, &from.join(folder), c, progress.as_ref()).await?;
    }

    progress.phase("repositories", manifest.repositories.len() as u64);
    for r in &manifest.repositories {
        let dest = repo_dest(config, &r.path)?;
        let (src, refs) = (from.join(&r.path), r.refs);
        blocking(move || repos::restore_one(&src, &dest, refs)).await?;
        progress.advance(1);
    }

    progress.phase("attachments", manifest.attachments.files);
    let attachments = {
        let src = from.join("attachments");
        let dest = AttachmentStore::new(&config.data_dir, config.max_attachment_bytes)
            .dir()
            .to_owned();
        let p = progress.clone();
        blocking(move || files::restore(&src, &dest, |_| p.advance(1))).await?
    };
    Ok(Restored {
        repositories: manifest.repositories.len(),
        manifest,
        documents,
        attachments,
    })
}

/// Where a repository of the manifest goes in the data dir.
fn repo_dest(config: &Config, path: &str) -> Result<PathBuf> {
    match path.split_once('/') {
        Some(("repos", name)) => Ok(repos_root(config).join(name)),
        Some(("repos-removed", name)) => Ok(removed_repos_root(config).join(name)),
        _ => Err(BackupError::Corrupt(format!(
            "the manifest names a repository path {path:?} outside repos/"
        ))),
    }
}

/// After [`restore`], on the forge opened over the restored data: rebuilds the search index
/// and queues a refresh of every repository (recording pushes the store had not recorded
/// when it was copied). Returns the documents indexed.
pub async fn finish_restore(
    forge: &Forge,
    restored: &Restored,
    progress: Arc<dyn Progress>,
) -> Result<u64> {
    let mut seen = (0u64, 0u64);
    let docs = crate::search::indexer::rebuild(forge, |done, total| {
        if total != seen.1 {
            progress.phase("search index", total);
            seen = (0, total);
        }
        progress.advance(done.saturating_sub(seen.0));
        seen.0 = done;
    })
    .await?;
    for r in &restored.manifest.repositories {
        let Some(id) = r
            .path
            .strip_prefix("repos/")
            .and_then(|n| n.strip_suffix(".git"))
            .and_then(ToolId::parse)
        else {
            continue;
        };
        if crate::instances::by_id(forge.db(), id).await?.is_none() {
            continue;
        }
        let opts = forge_tasks::TaskOptions {
            dedup_key: Some(format!("{}:{id}", refresh::TASK)),
            ..Default::default()
        };
        forge
            .tasks()
            .enqueue_with(refresh::TASK, refresh::args(id, None, None), opts)
            .await
            .map_err(crate::Error::from)?;
    }
    Ok(docs)
}
