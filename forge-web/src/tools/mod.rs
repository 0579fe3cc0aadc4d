//! The web side of each tool kind: a router per kind, mounted under the tool's mount point by
//! `routes::tools::dispatch`. Each kind has its own module here, named like its domain folder
//! in `forge-tools`.

mod link;
pub mod wiki;

use std::collections::HashMap;

use axum::Router;
use forge_tools::ProjectCtx;
use forge_tools::tool::ToolInstance;

use crate::auth::PageCtx;
use crate::state::AppState;

/// What the dispatcher hands a tool's handlers (as a request extension): the project as the
/// viewer sees it, the tool instance, its base URL, and the page context.
pub struct ToolRequest {
    pub ctx: ProjectCtx,
    pub tool: ToolInstance,
    pub base: String,
    pub page: PageCtx,
}

impl Clone for ToolRequest {
    fn clone(&self) -> Self {
        Self {
            ctx: self.ctx.clone(),
            tool: self.tool.clone(),
            base: self.base.clone(),
            page: PageCtx {
                viewer: self.page.viewer.clone(),
                csrf: self.page.csrf.clone(),
                flash: self.page.flash.clone(),
                path: self.page.path.clone(),
            },
        }
    }
}

/// Page routers for every tool kind with a web side.
pub fn routers(state: &AppState) -> HashMap<&'static str, Router> {
    let mut m = HashMap::new();
    m.insert("link", link::router().with_state(state.clone()));
    m.insert(
        forge_tools::wiki::KIND,
        wiki::router().with_state(state.clone()),
    );
    m
}

/// REST routers (under `/rest/p/<project>/<mount>/`) for tool kinds with an API.
pub fn api_routers(state: &AppState) -> HashMap<&'static str, Router> {
    let mut m = HashMap::new();
    m.insert(
        forge_tools::wiki::KIND,
        wiki::rest::router().with_state(state.clone()),
    );
    m
}
