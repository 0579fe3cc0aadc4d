//! The forum's pages, below its mount point:
//!
//! - `GET /`: the index: announcements, then each forum with its counters and last post
//!   (`index`); `GET /{forum}/`: a forum's topics, sticky first, a page at a time, its
//!   posting address, and `POST /{forum}/watch` (`index`).
//! - `GET|POST /{forum}/new`: starting a topic, with a preview (`new`).
//! - `GET /{forum}/thread/{id}/`: a topic with its posts (the shared discussion section) and
//!   the moderators' controls; `POST /{forum}/thread/{id}/moderate`, `POST /_block`
//!   (`topic`).
//! - `GET|POST /_admin`: the forums, their order, anonymous posting, blocked people
//!   (`admin`).
//! - The discussion's routes (`/_discuss/...`, and `/_moderate`, the queue of posts waiting
//!   for a moderator), merged from [`crate::discussion::routes`].
//!
//! Each handler takes the [`ToolReq`](crate::ctx::ToolReq) with the permission its route
//! needs first and its body last; the domain (`forge_tools::tools::forum`) checks again.

mod admin;
mod common;
mod index;
mod new;
mod topic;
mod views;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index::index))
        .route("/_admin", get(admin::settings).post(admin::save))
        .route("/_block", post(topic::block))
        .route("/{forum}", get(index::add_slash))
        .route("/{forum}/", get(index::forum))
        .route("/{forum}/watch", post(index::watch))
        .route("/{forum}/new", get(new::form).post(new::create))
        .route("/{forum}/thread/{id}", get(topic::add_slash))
        .route("/{forum}/thread/{id}/", get(topic::view))
        .route("/{forum}/thread/{id}/moderate", post(topic::moderate))
        .merge(crate::discussion::routes())
}
