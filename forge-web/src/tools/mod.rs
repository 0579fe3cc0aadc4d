//! The web side of each tool kind: a router per kind, mounted under the tool's mount point by
//! the dispatcher here (pages: `routes::tools`, REST: `routes::rest`). Each kind has its own
//! module, named like its domain folder in `forge-tools`; its handlers take a
//! [`ToolReq`](crate::ctx::ToolReq) declaring the permission each route needs.

pub mod forum;
mod link;
pub mod repo;
pub mod tracker;
pub mod wiki;

use std::collections::HashMap;

use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use forge_tools::Error;

use crate::ctx::{ProjectReq, ToolReq};
use crate::state::AppState;

/// The request a tool's router sees: the path below the tool's mount point, the original
/// method, headers, body and connection info, and the [`ToolReq`]. Built afresh so the
/// outer route's path parameters do not leak into the tool's `Path` extractors.
fn rebase(req: Request, skip: usize, tool: ToolReq) -> Result<Request, Error> {
    // `skip`: how many leading segments of the (nest-relative) path address the tool. The
    // rest is taken from the raw path, still percent-encoded, so page names with spaces or
    // other escaped characters reach the tool intact.
    let raw = req.uri().path();
    let segments: Vec<&str> = raw.trim_start_matches('/').splitn(skip + 1, '/').collect();
    let below = segments.get(skip).copied().unwrap_or("");
    let query = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let uri: axum::http::Uri = format!("/{below}{query}")
        .parse()
        .map_err(|_| Error::NotFound("page"))?;
    let (parts, body) = req.into_parts();
    let mut inner = Request::new(body);
    *inner.method_mut() = parts.method;
    *inner.uri_mut() = uri;
    *inner.version_mut() = parts.version;
    *inner.headers_mut() = parts.headers;
    let ext = inner.extensions_mut();
    if let Some(ci) = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        ext.insert(*ci);
    }
    if let Some(m) = parts
        .extensions
        .get::<axum::extract::connect_info::MockConnectInfo<std::net::SocketAddr>>()
    {
        ext.insert(*m);
    }
    if let Some(o) = parts.extensions.get::<axum::extract::OriginalUri>() {
        ext.insert(o.clone());
    }
    if let Some(a) = parts.extensions.get::<crate::auth::Auth>() {
        ext.insert(a.clone());
    }
    if let Some(c) = parts.extensions.get::<crate::auth::CsrfToken>() {
        ext.insert(c.clone());
    }
    if let Some(f) = parts.extensions.get::<crate::auth::Flash>() {
        ext.insert(f.clone());
    }
    ext.insert(tool);
    Ok(inner)
}

/// Hands a request to the router of the tool mounted at `mount` in a loaded project, after
/// checking the viewer may read it. `skip` is as for [`rebase`]. Used for pages and for REST
/// alike.
pub async fn dispatch(
    routers: &HashMap<&'static str, Router>,
    project: ProjectReq,
    mount: &str,
    req: Request,
    skip: usize,
) -> Result<Response, Error> {
    use tower::ServiceExt;
    let tool = ToolReq::open(project, mount)?;
    let router = routers
        .get(tool.tool.kind.as_str())
        .cloned()
        .ok_or(Error::NotFound("tool"))?;
    let req = rebase(req, skip, tool)?;
    match router.oneshot(req).await {
        Ok(res) => Ok(res),
        Err(never) => match never {},
    }
}

/// The web side of one tool kind: its page router and, if it has an API, its REST router.
struct WebTool {
    kind: &'static str,
    pages: fn() -> Router<AppState>,
    api: Option<fn() -> Router<AppState>>,
    /// Its REST calls' OpenAPI description, merged into `/rest/openapi.json`.
    openapi: Option<fn() -> utoipa::openapi::OpenApi>,
}

/// Every tool kind with a web side: one line each.
const TOOLS: &[WebTool] = &[
    WebTool {
        kind: forge_tools::tools::wiki::KIND,
        pages: wiki::router,
        api: Some(wiki::api_router),
        openapi: Some(wiki::openapi),
    },
    WebTool {
        kind: forge_tools::tools::tracker::KIND,
        pages: tracker::router,
        api: Some(tracker::api_router),
        openapi: Some(tracker::openapi),
    },
    WebTool {
        kind: forge_tools::tools::forum::KIND,
        pages: forum::router,
        api: Some(forum::api_router),
        openapi: Some(forum::openapi),
    },
    WebTool {
        kind: forge_tools::tools::repo::KIND,
        pages: repo::router,
        api: Some(repo::api_router),
        openapi: None,
    },
    WebTool {
        kind: forge_tools::tools::link::KIND,
        pages: link::router,
        api: None,
        openapi: None,
    },
];

/// Page routers for every tool kind with a web side.
pub fn routers(state: &AppState) -> HashMap<&'static str, Router> {
    TOOLS
        .iter()
        .map(|t| (t.kind, (t.pages)().with_state(state.clone())))
        .collect()
}

/// REST routers (under `/rest/p/<project>/<mount>/`) for tool kinds with an API.
pub fn api_routers(state: &AppState) -> HashMap<&'static str, Router> {
    TOOLS
        .iter()
        .filter_map(|t| t.api.map(|api| (t.kind, api().with_state(state.clone()))))
        .collect()
}

/// The OpenAPI descriptions of the tools' REST calls.
pub fn openapi_docs() -> impl Iterator<Item = utoipa::openapi::OpenApi> {
    TOOLS.iter().filter_map(|t| t.openapi.map(|f| f()))
}
