//! The git repository tool: bare repositories under the data dir (the path comes from the tool
//! id, never from user input), served over smart HTTP by `forge-web`, browsed through git2, and
//! refreshed after each push by a task that records the new commits in the store.
//!
//! Here: the kind's constants; `kind` is the tool (and holds the git process bound, `slots`),
//! `paths` where repositories are, `process` running git itself, [`browse`] reading
//! repositories, [`refresh`] the push refresh, [`webhook`] the push's webhook events,
//! [`pktline`] checking smart-HTTP requests.

pub mod browse;
mod kind;
pub mod pack_cache;
mod paths;
pub mod pktline;
mod process;
pub mod refresh;
mod slots;
pub mod views;
pub mod webhook;

pub use kind::{GitTool, slots};
pub use paths::{clone_url, removed_repos_root, repo_path, repos_root};
pub use process::{GitOutput, archive, blame, cat_blob};
pub use slots::{BUSY, GitPermit, GitSlots, SLOT_WAIT};

pub const KIND: &str = "git";
pub const DEFAULT_BRANCH: &str = "main";
