//! Web side of the forum: the pages (forum index, forum, topic, new topic, admin) and the
//! REST API in `rest`. Handlers declare the permission each needs in their
//! [`ToolReq`](crate::ctx::ToolReq); pages and REST call the same domain actions
//! (`forge_tools::tools::forum`).

mod pages;
mod rest;

use axum::Router;

use crate::state::AppState;

/// The forum's pages, below its mount point.
pub fn router() -> Router<AppState> {
    pages::router()
}

/// The forum's REST API, below `/rest/p/<project>/<mount>`.
pub fn api_router() -> Router<AppState> {
    rest::router()
}

/// The OpenAPI description of the forum's REST calls.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    rest::ForumApi::openapi()
}
