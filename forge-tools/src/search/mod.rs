//! Full-text search on tantivy: one index under `<data>/search`, written by a single writer
//! (the process that runs tasks) and read by every web node, which picks up commits and swaps
//! by itself.
//!
//! Layout: `<data>/search/CURRENT` names the live index directory (`v<schema>-<millis>`).
//! `forge reindex` builds a complete new directory beside it and then replaces `CURRENT`
//! atomically; the writer follows the pointer before its next batch and removes the old
//! directory, readers re-open within a second. Nobody waits on a rebuild.
//!
//! Documents carry the access tokens of everyone who may read them (see
//! [`indexer::read_tokens`]); every search includes the viewer's tokens in the query itself,
//! so private content is neither returned nor counted.

mod index;
pub mod indexer;
mod layout;
mod model;
mod query;
mod rebuild;
mod schema;
mod snippet;
mod writer;

pub use index::SearchIndex;
pub use model::{Access, Change, Facets, Hit, IndexDoc, MAX_PAGE, Results, SearchRequest};
pub use rebuild::Rebuild;
