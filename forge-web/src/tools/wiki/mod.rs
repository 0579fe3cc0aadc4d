//! Web side of the wiki: pages (view, edit with preview and conflict handling, history, diff,
//! revert, rename, delete), the page index, labels, recent changes, attachments, and the
//! REST API under `/rest/p/<project>/<mount>/`.

mod attach;
mod pages;
pub mod rest;
mod views;

use axum::Router;
use axum::routing::{get, post};

use forge_tools::acl::perm;
use forge_tools::wiki;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    // Routes that change things check the permission in a route layer, before the body is
    // read; handlers check again (the domain call is the authority).
    let write = || crate::requires!(perm::WRITE);
    Router::new()
        .route("/", get(pages::home))
        .route("/_index", get(pages::index))
        .route("/_recent", get(pages::recent))
        .route("/_labels", get(pages::labels))
        .route("/_new", get(pages::new_page))
        .route(
            "/_admin",
            get(pages::admin_page)
                .post(pages::save_admin)
                .route_layer(crate::requires!(perm::ADMIN)),
        )
        .route("/{page}", get(pages::add_slash))
        .route("/{page}/", get(pages::view))
        .route(
            "/{page}/edit",
            get(pages::edit_page).post(pages::save).route_layer(write()),
        )
        .route("/{page}/history", get(pages::history))
        .route("/{page}/diff", get(pages::diff))
        .route("/{page}/revert", post(pages::revert).route_layer(write()))
        .route("/{page}/rename", post(pages::rename).route_layer(write()))
        .route(
            "/{page}/delete",
            post(pages::delete).route_layer(crate::requires!(wiki::DELETE)),
        )
        .route(
            "/{page}/undelete",
            post(pages::undelete).route_layer(crate::requires!(wiki::DELETE)),
        )
        .route(
            "/{page}/attachments",
            post(attach::upload).route_layer(write()),
        )
        .route("/{page}/attachments/{file}", get(attach::download))
        .route(
            "/{page}/attachments/{file}/delete",
            post(attach::remove).route_layer(write()),
        )
}
