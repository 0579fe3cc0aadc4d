//! The wiki tool: versioned Markdown pages with history, diffs, reverts, renames (the old name
//! redirects), soft deletion, labels, attachments and cross-references with backlinks.
//!
//! Storage lives in [`pages`]; the tool kind in `kind`, page addresses in `urls`, rendering
//! in `render`, and the actions the web layer calls (each checking the viewer's permission
//! first) in `actions`. Their public items are re-exported here.

mod actions;
mod kind;
pub mod pages;
mod render;
mod urls;

pub use actions::{
    PageVersion, backlinks, load_page, rename, revert, save, set_deleted, set_home, version_of,
};
pub use kind::{WikiTool, search_doc};
pub use pages::{Edit, EditConflict, Page, Saved};
pub use render::{Rendered, render};
pub use urls::{encode_name, home_page, page_url};

pub const KIND: &str = "wiki";
pub const DEFAULT_HOME: &str = "Home";
/// Deleting pages is its own permission (developers and admins by default).
pub const DELETE: &str = "delete";
