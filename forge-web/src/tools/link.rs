//! Web side of the link tool: its page redirects to the configured URL.

use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use forge_tools::tools::link::LinkTool;

use crate::ctx::ToolReq;
use crate::error::PageError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().fallback(follow)
}

async fn follow(t: ToolReq) -> Response {
    match LinkTool::url(&t.tool) {
        Some(url) => Redirect::to(url).into_response(),
        None => PageError::from(forge_tools::Error::NotFound("link")).into_response(),
    }
}
