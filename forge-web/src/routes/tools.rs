//! Dispatch of `/<nbhd>/<project>/<mount>/...` to the installed tool's own router, after the
//! project and tool are loaded and read access is checked.

use axum::Extension;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::ctx::{Nbhd, ProjectReq};
use crate::error::{PageError, PageResult};
use crate::state::AppState;

/// The path parameters below the project's: which tool.
#[derive(Deserialize)]
pub struct MountPath {
    pub mount: String,
}

pub async fn dispatch(
    State(st): State<AppState>,
    project: ProjectReq,
    Path(MountPath { mount }): Path<MountPath>,
    req: Request,
) -> PageResult {
    // Views are logged by `ctx::track_views` for the responses that are pages (not every
    // request under a mount point is a page view). Nested under `/p` or `/u`: the path here
    // starts at the project name, so two segments address the tool.
    let next = project.page.path.clone();
    crate::tools::dispatch(&st.tool_routers, project, &mount, req, 2)
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
