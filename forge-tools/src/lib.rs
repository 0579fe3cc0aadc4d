//! Forge domain: the store and its collections, accounts, projects, access control, the tool
//! framework and tools, events. No HTTP here: `forge-web` calls into this crate.

pub mod acl;
pub mod attachments;
pub mod config;
pub mod diff;
pub mod error;
pub mod events;
mod forge;
pub mod heavy;
pub mod ids;
pub mod jobs;
pub mod link;
pub mod links;
pub mod mail;
pub mod markdown;
pub mod names;
pub mod notify;
pub mod paging;
pub mod projects;
pub mod ratelimit;
pub mod refs;
pub mod repo;
pub mod search;
pub mod secret;
pub mod sessions;
pub mod store;
pub mod tokens;
pub mod tool;
pub mod users;
pub mod versioned;
pub mod wiki;

pub use error::{Error, FieldErrors, Result};
pub use forge::{Forge, ProjectCtx, ProjectUpdate, ToolUpdate, Viewer};
