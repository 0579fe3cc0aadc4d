//! [`Rebuild`]: a complete new index built beside the live one (`forge reindex`), then made
//! live by pointing `CURRENT` at it.

use std::path::{Path, PathBuf};

use tantivy::{Index, IndexWriter};

use super::layout::{WRITER_HEAP, fresh_name, internal, open_dir, read_pointer, write_pointer};
use super::model::IndexDoc;
use super::schema::{self, Fields};
use super::writer::to_document;
use crate::error::Result;

/// Builds a complete new index beside the live one (`forge reindex`), then makes it live.
pub struct Rebuild {
    root: PathBuf,
    index: Index,
    name: String,
    fields: Fields,
    writer: IndexWriter,
    pending: usize,
}

impl Rebuild {
    pub fn start(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(internal)?;
        let live = read_pointer(root);
        // Left-overs of interrupted rebuilds: any directory that is not live.
        if let Ok(entries) = std::fs::read_dir(root) {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if e.path().is_dir() && Some(&n) != live.as_ref() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let name = fresh_name();
        let index = open_dir(root, &name)?;
        let writer = index
            .writer_with_num_threads(2, 2 * WRITER_HEAP)
            .map_err(internal)?;
        Ok(Self {
            root: root.to_owned(),
            index,
            name,
            fields: schema::build().1,
            writer,
            pending: 0,
        })
    }

    pub fn add(&mut self, doc: &IndexDoc) -> Result<()> {
        self.writer
            .add_document(to_document(&self.fields, doc))
            .map_err(internal)?;
        self.pending += 1;
        Ok(())
    }

    /// Commits and points `CURRENT` at the new index.
    pub fn finish(mut self) -> Result<String> {
        self.writer.commit().map_err(internal)?;
        // One segment: every query pays a fixed cost per segment, and this index is read
        // far more than it is written.
        let ids = self.index.searchable_segment_ids().map_err(internal)?;
        if ids.len() > 1 {
            self.writer.merge(&ids).wait().map_err(internal)?;
        }
        self.writer.wait_merging_threads().map_err(internal)?;
        write_pointer(&self.root, &self.name)?;
        Ok(self.name)
    }
}
