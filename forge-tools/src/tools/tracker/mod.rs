//! The tracker tool (Allura's ForgeTracker): numbered tickets with statuses, labels,
//! assignees, milestones, custom fields, votes, private tickets and a comment thread (the
//! shared discussion component); every change kept as history; concurrent edits merged field
//! by field; a query language for lists and saved searches; bulk edits; moves between
//! trackers; commits that close tickets; import and export in Allura's JSON format.
//!
//! Storage is in [`tickets`] (tickets, history, votes) and [`bins`] (saved searches), the
//! settings in [`config`], the query language in [`query`], the tool kind in `kind`, what
//! people do in [`actions`], and Allura's format in [`export`].

pub mod actions;
pub mod bins;
pub mod config;
pub mod export;
mod kind;
pub mod query;
pub mod tickets;

pub use kind::TrackerTool;

pub const KIND: &str = "tracker";

/// Permissions of a tracker (Allura's), beside `read`, `admin` and the discussion's
/// `post`, `unmoderated_post` and `moderate`.
pub mod perm {
    /// File tickets.
    pub const CREATE: &str = "create";
    /// Change tickets' fields (and see private tickets).
    pub const UPDATE: &str = "update";
    /// Delete tickets.
    pub const DELETE: &str = "delete";
    /// Save searches for the whole tracker.
    pub const SAVE_SEARCHES: &str = "save_searches";
}
