//! The tool kinds shipped with the forge, one folder each (the web side of each is
//! `forge-web/src/tools/<kind>/`), and [`ToolRegistry::builtin`], the one list of them.
//! Adding a tool: its folder here and in `forge-web`, and a line in each crate's registry.
//!
//! Tools build on the platform (the handle, the store modules, search, notifications); the
//! platform reaches them only through [`crate::tool::Tool`] and the registry.

pub mod forum;
pub mod link;
pub mod repo;
pub mod tracker;
pub mod wiki;

use crate::tool::ToolRegistry;

impl ToolRegistry {
    /// Every tool kind shipped with the forge, in menu order.
    pub fn builtin() -> Self {
        let mut r = Self::default();
        r.register(wiki::WikiTool);
        r.register(tracker::TrackerTool);
        r.register(forum::ForumTool);
        r.register(repo::GitTool::default());
        r.register(link::LinkTool);
        r
    }
}
