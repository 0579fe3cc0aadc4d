//! The forum tool (Allura's ForgeDiscussion): a tool holds forums (ordered by its admins,
//! hideable, each with a posting address), forums hold topics (sticky ones first, then by last
//! activity; announcements atop every forum; closed ones take no posts), and a topic's posts
//! are the shared discussion component's thread, so replies, quoting, edit history,
//! attachments, moderation and spam defence are the same as under tickets and pages.
//!
//! Storage and counters are in [`model`], forums in [`forums`], topics in [`topics`],
//! moderators' actions on topics and people in [`moderation`], the tool kind in `kind`.

pub mod forums;
mod kind;
pub mod model;
pub mod moderation;
pub mod topics;
mod visibility;

pub use kind::ForumTool;

pub const KIND: &str = "forum";
