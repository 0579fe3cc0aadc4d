//! Dispatch of `/<nbhd>/<project>/<mount>/...` to the installed tool's own router, after the
//! project and tool are loaded and read access is checked.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use forge_tools::Error;

use super::{Nbhd, load};
use crate::auth::PageCtx;
use crate::error::{PageError, PageResult};
use crate::state::AppState;

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
    // Views are recorded by the tools themselves, with what was viewed (not every request
    // under a mount point is a page view). Nested under `/p` or `/u`: the path here starts at
    // the project name, so two segments address the tool.
    let next = page.path.clone();
    crate::tools::dispatch(&st.tool_routers, ctx, mount, page, req, 2)
        .await
        .map_err(|e| PageError::from(e).with_next(&next))
}

/// `/<nbhd>/<project>/<mount>` → with a trailing slash.
pub async fn add_slash(
    Extension(nbhd): Extension<Nbhd>,
    Path((name, mount)): Path<(String, String)>,
) -> Response {
    Redirect::permanent(&format!("/{}/{}/{}/", nbhd.0.prefix(), name, mount)).into_response()
}
