//! Web side of the tracker: the ticket pages (list with filters and saved searches, new
//! ticket, ticket with its timeline of changes and comments, edit, bulk edit, milestones,
//! settings, moderation) in `pages`, and the REST API in `rest`. Handlers declare the
//! permission each needs in their [`ToolReq`](crate::ctx::ToolReq); pages and REST call the
//! same domain actions (`forge_tools::tools::tracker::actions`).

mod pages;
mod req;
mod rest;

use axum::Router;

use crate::state::AppState;

/// The tracker's pages, below its mount point.
pub fn router() -> Router<AppState> {
    pages::router()
}

/// The tracker's REST API, below `/rest/p/<project>/<mount>`.
pub fn api_router() -> Router<AppState> {
    rest::router()
}

/// The OpenAPI description of the tracker's REST calls.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    rest::TrackerApi::openapi()
}
