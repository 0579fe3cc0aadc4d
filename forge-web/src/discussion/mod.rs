//! The web half of the discussion component every tool shares (the domain is
//! `forge_tools::discussion`): the "Discussion" section a tool embeds in an artifact's page
//! ([`section`], HTML a field of the page's template shows with `|safe`), the routes a tool
//! merges into its page router ([`routes`]: posting, previewing, editing, deleting, files on
//! posts, the remembered reading order, the moderation queue), and a post's JSON for the tools' REST calls ([`post_json`]).
//!
//! A tool names the artifact a thread belongs to with a `ThreadRef`; the section's forms
//! carry it signed by the site (`forge_tools::discussion::sign_ref`), so the first post
//! creates the thread under the title and URL the tool gave, and nobody can aim a form at
//! another. Every route checks the viewer may read the artifact (`Tool::can_read_artifact`)
//! before showing or touching its posts.

mod access;
mod files;
mod handlers;
mod json;
mod view;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

pub use access::{CanModerate, CanPost};
pub use forge_tools::discussion::ThreadRef;
pub use json::{PostJson, post_json};
pub use view::{PER_PAGE, SectionQuery, render_preview, section};

/// The discussion's routes, below a tool's mount point: merge them into the tool's page
/// router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_discuss/new", post(handlers::new_post))
        .route("/_discuss/preview", post(handlers::preview))
        .route("/_discuss/order", get(handlers::choose_order))
        .route(
            "/_discuss/post/{id}/edit",
            get(handlers::edit_page).post(handlers::save_edit),
        )
        .route("/_discuss/post/{id}/delete", post(handlers::delete))
        // Uploads end in `/attachments`: the body limit (`guard`) sizes them as files.
        .route("/_discuss/post/{id}/attachments", post(files::upload))
        .route(
            "/_discuss/post/{id}/attachments/{file}",
            get(files::download),
        )
        .route(
            "/_discuss/post/{id}/attachments/{file}/delete",
            post(files::remove),
        )
        .route(
            "/_moderate",
            get(handlers::queue_page).post(handlers::moderate),
        )
}
