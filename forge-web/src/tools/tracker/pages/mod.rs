//! The tracker's pages, below its mount point:
//!
//! - `GET /`: the ticket list (filters composed into the query language, free-text query,
//!   sortable columns, chosen columns, pages, saved searches, bulk edit); `POST /_bulk`,
//!   `POST /_bins`, `POST /_bins/{id}/delete` (`list`).
//! - `GET|POST /new`: filing a ticket (`new`).
//! - `GET /{num}/`: a ticket with its history, comments and forms; `POST /{num}/vote`,
//!   `/edit`, `/delete`, `/move`, `/approve` (`ticket`); `POST /{num}/attachments`,
//!   `GET /{num}/attachments/{file}`, `POST .../{file}/delete` (`attach`).
//! - `GET /_milestones`, `GET|POST /_admin`, `GET /_pending` (tickets waiting for a
//!   moderator) (`admin`).
//! - The discussion's routes (`/_discuss/...`, and `/_moderate`, the queue of comments),
//!   merged from [`crate::discussion::routes`]: comments are the shared discussion section.
//!
//! Each handler takes the [`ToolReq`](crate::ctx::ToolReq) with the permission its route
//! needs (the markers are in `common`) first and its body last; the domain calls check again.
//! Filing a ticket and saving a search take `Read`: anonymous visitors may file tickets
//! where the tracker allows it, and anyone logged in may save a search of their own (the
//! domain checks `create` and `save_searches`).

mod admin;
mod attach;
mod common;
mod list;
mod new;
mod ticket;
mod views;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;
use common::PENDING_PATH;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list::list))
        .route("/_bulk", post(list::bulk))
        .route("/_bins", post(list::save_bin))
        .route("/_bins/{id}/delete", post(list::delete_bin))
        .route("/_milestones", get(admin::milestones))
        .route("/_admin", get(admin::settings).post(admin::save_settings))
        .route(&format!("/{PENDING_PATH}"), get(admin::pending))
        .route("/new", get(new::form).post(new::create))
        .route("/{num}", get(ticket::add_slash))
        .route("/{num}/", get(ticket::view))
        .route("/{num}/vote", post(ticket::vote))
        .route("/{num}/edit", post(ticket::edit))
        .route("/{num}/delete", post(ticket::delete))
        .route("/{num}/move", post(ticket::move_ticket))
        .route("/{num}/approve", post(ticket::approve))
        .route("/{num}/attachments", post(attach::upload))
        .route("/{num}/attachments/{file}", get(attach::download))
        .route("/{num}/attachments/{file}/delete", post(attach::remove))
        .merge(crate::discussion::routes())
}
