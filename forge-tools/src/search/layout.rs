//! The index on disk: `<data>/search/CURRENT` names the live index directory
//! (`v<schema>-<millis>`); opening (or creating) such a directory with the current schema.

use std::path::Path;

use tantivy::Index;

use super::schema;
use crate::error::{Error, Result};

pub(super) const POINTER: &str = "CURRENT";
pub(super) const WRITER_HEAP: usize = 50_000_000;

pub(super) fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("search index: {e}"))
}

pub(super) fn read_pointer(root: &Path) -> Option<String> {
    let name = std::fs::read_to_string(root.join(POINTER)).ok()?;
    let name = name.trim();
    (!name.is_empty() && root.join(name).is_dir()).then(|| name.to_owned())
}

pub(super) fn write_pointer(root: &Path, name: &str) -> Result<()> {
    let tmp = root.join(format!("{POINTER}.{}", std::process::id()));
    std::fs::write(&tmp, name).map_err(internal)?;
    std::fs::rename(&tmp, root.join(POINTER)).map_err(internal)
}

pub(super) fn fresh_name() -> String {
    format!(
        "v{}-{}",
        schema::VERSION,
        chrono::Utc::now().timestamp_millis()
    )
}

/// Opens the index directory `name`, creating it with the current schema if empty.
pub(super) fn open_dir(root: &Path, name: &str) -> Result<Index> {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).map_err(internal)?;
    let dir_handle = tantivy::directory::MmapDirectory::open(&dir).map_err(internal)?;
    // Small doc-store blocks: showing a hit decompresses one block, so 4 KB instead of the
    // default 16 KB makes each of the 20 hits on a page cheaper to fetch.
    let settings = tantivy::IndexSettings {
        docstore_blocksize: 4096,
        ..tantivy::IndexSettings::default()
    };
    tantivy::IndexBuilder::new()
        .schema(schema::build().0)
        .settings(settings)
        .open_or_create(dir_handle)
        .map_err(internal)
}
