//! Dispatch of `/<nbhd>/<project>/<mount>/...` to the installed tool's own router, after the
//! project and tool are loaded and read access is checked.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use forge_tools::Error;
use forge_tools::acl::perm;
use tower::ServiceExt;

use super::{Nbhd, load};
use crate::auth::PageCtx;
use crate::error::{PageError, PageResult};
use crate::state::AppState;
use crate::tools::ToolRequest;

pub async fn dispatch(
    State(st): State<AppState>,
    Extension(nbhd): Extension<Nbhd>,
    page: PageCtx,
    Path(params): Path<HashMap<String, String>>,
    req: Request,
) -> PageResult {
    let (Some(name), Some(mount)) = (params.get("name"), params.get("mount")) else {
        return Err(Error::NotFound("page").into());
    };
    let ctx = load(&st.forge, &page, nbhd, name).await?;
    let tool = ctx.tool(mount).cloned().ok_or(Error::NotFound("tool"))?;
    ctx.authorize_tool(&tool, perm::READ)
        .map_err(|e| PageError::from(e).with_next(&page.path))?;
    let router = st
        .tool_routers
        .get(tool.kind.as_str())
        .cloned()
        .ok_or(Error::NotFound("tool"))?;
    // Views are recorded by the tools themselves, with what was viewed (not every request
    // under a mount point is a page view).
    // The tool's router sees paths relative to its mount point.
    let base = format!("{}{}/", ctx.project.url(), tool.mount);
    let req = crate::tools::rebase(
        req,
        2, // Nested under `/p` or `/u`: this path starts at the project name.
        ToolRequest {
            ctx,
            tool,
            base,
            page,
        },
    )?;
    match router.oneshot(req).await {
        Ok(res) => Ok(res),
        Err(never) => match never {},
    }
}

/// `/<nbhd>/<project>/<mount>` → with a trailing slash.
pub async fn add_slash(
    Extension(nbhd): Extension<Nbhd>,
    Path((name, mount)): Path<(String, String)>,
) -> Response {
    Redirect::permanent(&format!("/{}/{}/{}/", nbhd.0.prefix(), name, mount)).into_response()
}
