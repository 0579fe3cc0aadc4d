//! Web side of the wiki: pages (view, edit with preview and conflict handling, history, diff,
//! revert, rename, delete), the page index, labels, recent changes, attachments, comments on
//! pages (the shared discussion routes), and the REST API under `/rest/p/<project>/<mount>/`.
//!
//! Each handler declares the permission it needs in its [`ToolReq`](crate::ctx::ToolReq)
//! (checked before any body is read; the domain call checks again). Pages and REST share the
//! domain calls in `ops`; only the rendering differs.

mod admin;
mod attach;
mod common;
mod edit;
mod history;
mod lifecycle;
mod lists;
mod ops;
mod rest;
mod templates;
mod view;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// The wiki's pages, below its mount point.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(view::home))
        .route("/_index", get(lists::index))
        .route("/_recent", get(lists::recent))
        .route("/_labels", get(lists::labels))
        .route("/_new", get(edit::new_page))
        .route("/_admin", get(admin::admin_page).post(admin::save_admin))
        .route("/{page}", get(view::add_slash))
        .route("/{page}/", get(view::view))
        .route("/{page}/edit", get(edit::edit_page).post(edit::save))
        .route("/{page}/history", get(history::history))
        .route("/{page}/diff", get(history::diff))
        .route("/{page}/revert", post(history::revert))
        .route("/{page}/rename", post(lifecycle::rename))
        .route("/{page}/delete", post(lifecycle::delete))
        .route("/{page}/undelete", post(lifecycle::undelete))
        .route("/{page}/attachments", post(attach::upload))
        .route("/{page}/attachments/{file}", get(attach::download))
        .route("/{page}/attachments/{file}/delete", post(attach::remove))
        .merge(crate::discussion::routes())
}

/// The wiki's REST API, below `/rest/p/<project>/<mount>`.
pub fn api_router() -> Router<AppState> {
    Router::new()
        .route("/", get(rest::list))
        .route(
            "/{page}",
            get(rest::get_page)
                .put(rest::put_page)
                .delete(rest::delete_page),
        )
        .route("/{page}/history", get(rest::history))
        .route(
            "/{page}/attachments",
            get(rest::list_attachments).post(rest::upload),
        )
        .route("/{page}/attachments/{file}", get(rest::download))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        rest::list,
        rest::get_page,
        rest::put_page,
        rest::delete_page,
        rest::history
    ),
    components(schemas(rest::PageSummary, rest::PageJson, rest::PutPage))
)]
struct WikiApi;

/// The OpenAPI description of the wiki's REST calls.
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;
    WikiApi::openapi()
}
