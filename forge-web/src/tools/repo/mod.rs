//! Web side of the repository tool: summary with clone instructions and README, tree, file
//! (highlighted, line anchors), raw, log, commit with diff, branches, tags, blame and archive
//! downloads; and the REST API. Everything reads git through `forge_tools::repo::browse` on a
//! blocking thread; archives and blame run git in one of the forge's git slots.

mod pages;
pub mod rest;

use axum::Router;
use axum::routing::get;
use forge_tools::Error;
use forge_tools::repo::{self, browse};

use crate::state::AppState;
use crate::tools::ToolRequest;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::summary))
        .route("/tree/{*rest}", get(pages::tree))
        .route("/blob/{*rest}", get(pages::blob))
        .route("/raw/{*rest}", get(pages::raw))
        .route("/blame/{*rest}", get(pages::blame))
        .route("/commits/{*rest}", get(pages::log))
        .route("/commit/{sha}", get(pages::commit))
        .route("/branches", get(pages::branches))
        .route("/tags", get(pages::tags))
        .route("/archive/{name}", get(pages::archive))
}

/// Runs a blocking read of the tool's repository.
pub(crate) async fn with_repo<T: Send + 'static>(
    st: &AppState,
    req: &ToolRequest,
    f: impl FnOnce(&git2::Repository) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let path = repo::repo_path(st.forge.config(), &req.tool);
    tokio::task::spawn_blocking(move || {
        let r = browse::open(&path)?;
        f(&r)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}
