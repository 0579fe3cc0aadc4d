//! Web side of the repository tool: summary with clone instructions and README, tree, file
//! (highlighted, line anchors), raw, log, commit with diff, branches, tags, blame and archive
//! downloads; and the REST API. Everything reads git through `forge_tools::tools::repo::browse` on a
//! blocking thread (the reads in `read`, shared by pages and REST); archives and blame run
//! git in one of the forge's git slots.
//!
//! Pages: `browse` (summary, directories), `files` (file, raw, blame, archive), `history`
//! (log, commit, branches, tags); all need read access only, which the dispatcher checked.
//! Commits have comments: the shared discussion routes are merged in.

mod browse;
mod files;
mod history;
mod read;
mod rest;
mod templates;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

/// The repository's pages, below its mount point.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(browse::summary))
        .route("/tree/{*rest}", get(browse::tree))
        .route("/blob/{*rest}", get(files::blob))
        .route("/raw/{*rest}", get(files::raw))
        .route("/blame/{*rest}", get(files::blame))
        .route("/commits/{*rest}", get(history::log))
        .route("/commit/{sha}", get(history::commit))
        .route("/branches", get(history::branches))
        .route("/tags", get(history::tags))
        .route("/archive/{name}", get(files::archive))
        .merge(crate::discussion::routes())
}

/// The repository's REST API, below `/rest/p/<project>/<mount>`.
pub fn api_router() -> Router<AppState> {
    Router::new()
        .route("/branches", get(rest::branches))
        .route("/tags", get(rest::tags))
        .route("/tree/{*rest}", get(rest::tree))
        .route("/file/{*rest}", get(rest::file))
        .route("/commits/{*rest}", get(rest::commits))
        .route("/commit/{sha}", get(rest::commit))
}
