//! Web side of the link tool: its page redirects to the configured URL.

use axum::Router;
use axum::extract::Extension;
use axum::response::{IntoResponse, Redirect, Response};
use forge_tools::link::LinkTool;

use super::ToolRequest;
use crate::error::PageError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().fallback(follow)
}

async fn follow(Extension(req): Extension<ToolRequest>) -> Response {
    match LinkTool::url(&req.tool) {
        Some(url) => Redirect::to(url).into_response(),
        None => PageError::from(forge_tools::Error::NotFound("link")).into_response(),
    }
}
