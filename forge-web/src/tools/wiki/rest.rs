//! Wiki REST API: `/rest/p/<project>/<mount>/` lists pages; `/<Page>` GET (optionally
//! `?version=N`), PUT `{text, labels?, comment?, base_version}` (409 on a stale base), DELETE;
//! `/<Page>/history`; `/<Page>/attachments` (list, multipart upload) and
//! `/<Page>/attachments/<file>`.

use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json, Router};
use forge_tools::acl::perm;
use forge_tools::wiki::{self, Edit, Saved, pages as store};
use forge_tools::{Error, ProjectCtx};
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use super::attach;
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::routes::rest::ApiJson;
use crate::state::AppState;
use crate::tools::ToolRequest;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list))
        .route(
            "/{page}",
            get(get_page)
                .merge(put(put_page).route_layer(crate::requires!(perm::WRITE)))
                .merge(delete(delete_page).route_layer(crate::requires!(wiki::DELETE))),
        )
        .route("/{page}/history", get(history))
        .route(
            "/{page}/attachments",
            get(list_attachments).merge(post(upload).route_layer(crate::requires!(perm::WRITE))),
        )
        .route("/{page}/attachments/{file}", get(download))
}

fn rfc3339(d: bson::DateTime) -> String {
    d.try_to_rfc3339_string().unwrap_or_default()
}

#[derive(Serialize, ToSchema)]
pub struct PageSummary {
    name: String,
    version: i32,
    author: String,
    updated: String,
    labels: Vec<String>,
    url: String,
}

#[derive(Serialize, ToSchema)]
pub struct PageJson {
    name: String,
    version: i32,
    latest_version: i32,
    text: String,
    html: String,
    labels: Vec<String>,
    author: String,
    updated: String,
    url: String,
}

fn authorize(req: &ToolRequest, permission: &str) -> Result<(), ApiError> {
    Ok(req.ctx.authorize_tool(&req.tool, permission)?)
}

async fn load(st: &AppState, req: &ToolRequest, name: &str) -> Result<store::Page, ApiError> {
    Ok(wiki::load_page(&st.forge, &req.ctx, &req.tool, name)
        .await?
        .ok_or(Error::NotFound("page"))?)
}

fn url(ctx: &ProjectCtx, req: &ToolRequest, name: &str) -> String {
    wiki::page_url(&ctx.project, &req.tool, name)
}

/// Pages of the wiki.
#[utoipa::path(get, path = "/rest/p/{project}/{mount}/", params(("project" = String, Path), ("mount" = String, Path)),
    responses((status = 200, body = Vec<PageSummary>)))]
pub async fn list(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
) -> ApiResult<Json<serde_json::Value>> {
    let pages = store::list(
        st.forge.db(),
        req.tool.id,
        bson::doc! {"deleted": false},
        false,
        10_000,
    )
    .await?;
    let out: Vec<PageSummary> = pages
        .into_iter()
        .map(|p| PageSummary {
            url: url(&req.ctx, &req, &p.name),
            name: p.name,
            version: p.version,
            author: p.author,
            updated: rfc3339(p.updated),
            labels: p.labels,
        })
        .collect();
    Ok(Json(json!({"pages": out})))
}

#[derive(Deserialize)]
pub struct VersionQuery {
    version: Option<i32>,
}

/// A page (its current version, or `?version=N`).
#[utoipa::path(get, path = "/rest/p/{project}/{mount}/{page}", params(("project" = String, Path), ("mount" = String, Path), ("page" = String, Path), ("version" = Option<i32>, Query)),
    responses((status = 200, body = PageJson), (status = 404)))]
pub async fn get_page(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
) -> ApiResult<Json<PageJson>> {
    let page = load(&st, &req, &name).await?;
    let wiki::PageVersion {
        version,
        text,
        labels,
        author,
        updated,
    } = wiki::version_of(&st.forge, &page, q.version).await?;
    let html = wiki::render(
        &st.forge,
        &req.ctx,
        &req.tool,
        Some((page.id, version)),
        &text,
    )
    .await?
    .html
    .to_string();
    Ok(Json(PageJson {
        url: url(&req.ctx, &req, &page.name),
        name: page.name,
        version,
        latest_version: page.version,
        text,
        html,
        labels,
        author,
        updated: rfc3339(updated),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct PutPage {
    text: String,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    comment: String,
    /// The version this edit started from. Absent (or 0): create the page; 409 when it exists
    /// (never overwritten).
    #[serde(default)]
    base_version: i32,
}

/// Creates (base_version 0) or edits a page; 409 with the current text when the base is stale.
#[utoipa::path(put, path = "/rest/p/{project}/{mount}/{page}", params(("project" = String, Path), ("mount" = String, Path), ("page" = String, Path)), request_body = PutPage,
    responses((status = 200, body = PageJson), (status = 201, body = PageJson), (status = 409), (status = 422)))]
pub async fn put_page(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<PutPage>,
) -> ApiResult {
    authorize(&req, perm::WRITE)?;
    let labels = store::parse_labels(&body.labels.join(","))?;
    let edit = Edit {
        text: body.text,
        labels,
        comment: body.comment,
        base_version: body.base_version,
    };
    match wiki::save(
        &st.forge,
        &req.page.viewer,
        &req.ctx,
        &req.tool,
        &name,
        edit,
    )
    .await?
    {
        Saved::Created(p) => {
            Ok((StatusCode::CREATED, Json(summary_json(&req, &p))).into_response())
        }
        Saved::Updated(p) => Ok((StatusCode::OK, Json(summary_json(&req, &p))).into_response()),
        Saved::Conflict(c) => {
            let current = c.current.as_ref();
            let body = json!({"error": {
                "code": "edit_conflict",
                "message": "The page was changed since your base version; nothing was saved. Merge and save again with the current version as base.",
                "current_version": current.map(|p| p.version),
                "current_text": current.map(|p| p.text.clone()),
                "your_text": c.yours,
                "merged": c.merged,
            }});
            Ok((StatusCode::CONFLICT, Json(body)).into_response())
        }
    }
}

fn summary_json(req: &ToolRequest, p: &store::Page) -> serde_json::Value {
    json!({
        "name": p.name, "version": p.version, "text": p.text, "labels": p.labels,
        "author": p.author, "updated": rfc3339(p.updated), "url": url(&req.ctx, req, &p.name),
    })
}

/// Deletes a page (it can be restored from the web page).
#[utoipa::path(delete, path = "/rest/p/{project}/{mount}/{page}", params(("project" = String, Path), ("mount" = String, Path), ("page" = String, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn delete_page(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(name): Path<String>,
) -> ApiResult {
    authorize(&req, wiki::DELETE)?;
    let page = load(&st, &req, &name).await?;
    wiki::set_deleted(
        &st.forge,
        &req.page.viewer,
        &req.ctx,
        &req.tool,
        &page,
        true,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Versions of a page, newest first.
#[utoipa::path(get, path = "/rest/p/{project}/{mount}/{page}/history", params(("project" = String, Path), ("mount" = String, Path), ("page" = String, Path)),
    responses((status = 200)))]
pub async fn history(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let page = load(&st, &req, &name).await?;
    let versions: Vec<_> = store::versions(st.forge.db())
        .history(page.id)
        .await?
        .into_iter()
        .map(|v| json!({"version": v.version, "author": v.author, "timestamp": rfc3339(v.timestamp), "comment": v.comment}))
        .collect();
    Ok(Json(json!({"name": page.name, "versions": versions})))
}

pub async fn list_attachments(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let page = load(&st, &req, &name).await?;
    let base = format!("/rest{}", url(&req.ctx, &req, &page.name));
    let list: Vec<_> = st
        .forge
        .attachments()
        .list(st.forge.db(), req.tool.id, page.id)
        .await?
        .into_iter()
        .map(|a| json!({"filename": a.filename, "size": a.size, "content_type": a.content_type, "sha256": a.sha256,
            "url": format!("{base}attachments/{}", wiki::encode_name(&a.filename))}))
        .collect();
    Ok(Json(json!({"attachments": list})))
}

/// Multipart upload (`file` field). Unless a valid access token authenticates the call, the
/// `X-CSRF-Token` header must carry the CSRF token the pages' forms carry (multipart bodies
/// can be sent cross-site).
pub async fn upload(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    headers: HeaderMap,
    Path(name): Path<String>,
    mp: Multipart,
) -> ApiResult {
    authorize(&req, perm::WRITE)?;
    // Only a valid access token (which ignores cookies) spares the CSRF check; any other
    // Authorization header, valid or not, does not.
    if !req.page.token_auth {
        let given = headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if req.page.csrf.is_empty() || !bool::from(given.as_bytes().ct_eq(req.page.csrf.as_bytes()))
        {
            return Err(Error::Forbidden.into());
        }
    }
    let page = load(&st, &req, &name).await?;
    let author = req.page.viewer.username().unwrap_or_default().to_owned();
    let a = attach::receive(&st.forge, &req.tool, &page, &author, mp, None).await?;
    let link = format!(
        "/rest{}attachments/{}",
        url(&req.ctx, &req, &page.name),
        wiki::encode_name(&a.filename)
    );
    Ok((StatusCode::CREATED, Json(json!({"filename": a.filename, "size": a.size, "content_type": a.content_type, "sha256": a.sha256, "url": link}))).into_response())
}

pub async fn download(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path((name, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let page = load(&st, &req, &name).await?;
    let a = st
        .forge
        .attachments()
        .get(st.forge.db(), req.tool.id, page.id, &file)
        .await?
        .ok_or(Error::NotFound("attachment"))?;
    Ok(attach::serve(&st.forge, &a).await?)
}
