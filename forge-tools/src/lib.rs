//! Forge domain: the store and its collections, accounts, projects, access control, the tool
//! framework and tools, events. No HTTP here: `forge-web` calls into this crate.
//!
//! Layers, bottom up (a module uses only those below it, see `scripts/check-cycles.py`): the
//! store modules and shared components (`store`, `users`, `projects`, `acl`, `events`,
//! `markdown`, the `activity` convention, ...); the domain handle's parts (`handle`,
//! `viewer`, `project_ctx`); the tool framework (`tool`, which also names the handle
//! [`Forge`]); the platform services built on it (`search`, `notify`, `webhooks`,
//! `activity::stream`);
//! the tools (`tools::<kind>`); and on top the actions (`forge`) and the task handlers
//! (`jobs`).

pub mod acl;
pub mod activity;
pub mod analytics;
pub mod attachments;
pub mod backup;
pub mod config;
pub mod diff;
pub mod discussion;
pub mod error;
pub mod events;
mod forge;
pub mod handle;
pub mod heavy;
pub mod ids;
pub mod instances;
pub mod jobs;
pub mod links;
pub mod mail;
pub mod mail_in;
pub mod mail_token;
pub mod markdown;
pub mod names;
pub mod notify;
pub mod paging;
pub mod project_ctx;
pub mod projects;
pub mod ratelimit;
pub mod readmodel;
pub mod refs;
pub mod search;
pub mod secret;
pub mod sessions;
pub mod store;
pub mod tokens;
pub mod tool;
pub mod tools;
pub mod users;
pub mod versioned;
pub mod viewer;
pub mod webhooks;

pub use error::{Error, FieldErrors, Result};
pub use forge::{Interval, ProjectUpdate, Series, ToolUpdate};
pub use project_ctx::ProjectCtx;
pub use tool::Forge;
pub use viewer::Viewer;
