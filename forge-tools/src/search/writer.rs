//! The single writer of the live index (a thread of its own in the process that runs tasks):
//! batches of changes applied and committed together, following `CURRENT` after a rebuild.

use std::path::{Path, PathBuf};

use tantivy::schema::Facet;
use tantivy::{DateTime, IndexWriter, TantivyDocument, Term};
use tokio::sync::{mpsc, oneshot};

use super::layout::{WRITER_HEAP, open_dir, read_pointer};
use super::model::{Change, IndexDoc};
use super::schema::{self, Fields};
use crate::error::Result;

pub(super) struct Batch {
    pub(super) changes: Vec<Change>,
    pub(super) done: oneshot::Sender<Result<(), String>>,
}

pub(super) fn to_document(f: &Fields, d: &IndexDoc) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_text(f.key, &d.key);
    doc.add_text(f.kind, &d.kind);
    doc.add_text(f.project, &d.project);
    doc.add_text(f.project_id, &d.project_id);
    doc.add_text(f.tool, &d.tool);
    doc.add_text(f.tool_id, &d.tool_id);
    doc.add_text(f.title, &d.title);
    doc.add_text(f.text, &d.text);
    doc.add_text(f.author, &d.author);
    doc.add_date(
        f.date,
        DateTime::from_timestamp_millis(d.date.timestamp_millis()),
    );
    doc.add_text(f.url, &d.url);
    for t in &d.read {
        doc.add_text(f.read, t);
    }
    doc.add_facet(f.facet, Facet::from_path(["type", d.kind.as_str()]));
    doc.add_facet(f.facet, Facet::from_path(["project", d.project.as_str()]));
    doc
}

fn apply_change(w: &IndexWriter, f: &Fields, change: &Change) -> tantivy::Result<()> {
    match change {
        Change::Upsert(d) => {
            w.delete_term(Term::from_field_text(f.key, &d.key));
            w.add_document(to_document(f, d))?;
        }
        Change::Delete(key) => {
            w.delete_term(Term::from_field_text(f.key, key));
        }
        Change::DeleteProject(id) => {
            w.delete_term(Term::from_field_text(f.project_id, id));
        }
        Change::DeleteTool(id) => {
            w.delete_term(Term::from_field_text(f.tool_id, id));
        }
    }
    Ok(())
}

/// The single writer: drains whatever batches are waiting, applies them, commits once, and
/// follows `CURRENT` when a rebuild swapped the index.
pub(super) fn spawn_writer(
    root: PathBuf,
    mut rx: mpsc::UnboundedReceiver<Batch>,
    initial: Option<(String, IndexWriter)>,
) {
    let spawned = std::thread::Builder::new()
        .name("search-writer".into())
        .spawn(move || {
            let (_, fields) = schema::build();
            let mut current = initial;
            while let Some(first) = rx.blocking_recv() {
                let mut batches = vec![first];
                while batches.len() < 512 {
                    match rx.try_recv() {
                        Ok(b) => batches.push(b),
                        Err(_) => break,
                    }
                }
                let result = write_batches(&root, &fields, &mut current, &batches);
                if let Err(e) = &result {
                    tracing::error!(error = %e, "search index write failed");
                    // A broken writer is dropped; the next batch opens a fresh one.
                    current = None;
                }
                for b in batches {
                    let _ = b.done.send(result.clone());
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the search writer");
    }
}

fn write_batches(
    root: &Path,
    fields: &Fields,
    current: &mut Option<(String, IndexWriter)>,
    batches: &[Batch],
) -> Result<(), String> {
    let name = read_pointer(root).ok_or("the search index has no CURRENT pointer")?;
    if current.as_ref().is_none_or(|(n, _)| *n != name) {
        if let Some((old, w)) = current.take() {
            drop(w);
            // The rebuild replaced it and we held its only writer: nobody writes there again.
            if old != name {
                let _ = std::fs::remove_dir_all(root.join(&old));
                tracing::info!(old, new = %name, "search index swapped");
            }
        }
        let index = open_dir(root, &name).map_err(|e| e.to_string())?;
        let w = index
            .writer_with_num_threads(1, WRITER_HEAP)
            .map_err(|e| e.to_string())?;
        *current = Some((name, w));
    }
    let Some((_, w)) = current.as_mut() else {
        return Err("no writer".into());
    };
    for b in batches {
        for c in &b.changes {
            apply_change(w, fields, c).map_err(|e| e.to_string())?;
        }
    }
    w.commit().map_err(|e| e.to_string())?;
    Ok(())
}
