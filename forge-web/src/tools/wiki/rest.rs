//! Wiki REST API: `/rest/p/<project>/<mount>/` lists pages; `/<Page>` GET (optionally
//! `?version=N`), PUT `{text, labels?, comment?, base_version}` (409 on a stale base), DELETE;
//! `/<Page>/history`; `/<Page>/attachments` (list, multipart upload) and
//! `/<Page>/attachments/<file>`.

use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use forge_tools::tools::wiki::{self, Saved, pages as store};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::common::{Delete, FilePath};
use super::ops::{self, Listing};
use crate::ctx::{ToolReq, Write};
use crate::error::ApiResult;
use crate::extract::{ApiJson, Query};
use crate::state::AppState;

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

fn url<P>(t: &ToolReq<P>, name: &str) -> String {
    wiki::page_url(&t.ctx.project, &t.tool, name)
}

/// Pages of the wiki.
#[utoipa::path(get, path = "/rest/p/{project}/{mount}/", params(("project" = String, Path), ("mount" = String, Path)),
    responses((status = 200, body = Vec<PageSummary>)))]
pub async fn list(State(st): State<AppState>, t: ToolReq) -> ApiResult<Json<serde_json::Value>> {
    let pages = ops::list(&st, &t, Listing::Live, 10_000).await?;
    let out: Vec<PageSummary> = pages
        .into_iter()
        .map(|p| PageSummary {
            url: url(&t, &p.name),
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
    t: ToolReq,
    Path(name): Path<String>,
    Query(q): Query<VersionQuery>,
) -> ApiResult<Json<PageJson>> {
    let page = ops::load(&st, &t, &name).await?;
    let v = wiki::version_of(&st.forge, &page, q.version).await?;
    let html = ops::html(&st, &t, &page, &v).await?;
    Ok(Json(PageJson {
        url: url(&t, &page.name),
        name: page.name,
        version: v.version,
        latest_version: page.version,
        text: v.text,
        html,
        labels: v.labels,
        author: v.author,
        updated: rfc3339(v.updated),
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
    t: ToolReq<Write>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<PutPage>,
) -> ApiResult {
    let labels = body.labels.join(",");
    let (text, comment, base) = (body.text, body.comment, body.base_version);
    match ops::save(&st, &t, &name, text, &labels, comment, base).await? {
        Saved::Created(p) => Ok((StatusCode::CREATED, Json(summary_json(&t, &p))).into_response()),
        Saved::Updated(p) => Ok((StatusCode::OK, Json(summary_json(&t, &p))).into_response()),
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

fn summary_json(t: &ToolReq<Write>, p: &store::Page) -> serde_json::Value {
    json!({
        "name": p.name, "version": p.version, "text": p.text, "labels": p.labels,
        "author": p.author, "updated": rfc3339(p.updated), "url": url(t, &p.name),
    })
}

/// Deletes a page (it can be restored from the web page).
#[utoipa::path(delete, path = "/rest/p/{project}/{mount}/{page}", params(("project" = String, Path), ("mount" = String, Path), ("page" = String, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn delete_page(
    State(st): State<AppState>,
    t: ToolReq<Delete>,
    Path(name): Path<String>,
) -> ApiResult {
    ops::set_deleted(&st, &t, &name, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Versions of a page, newest first.
#[utoipa::path(get, path = "/rest/p/{project}/{mount}/{page}/history", params(("project" = String, Path), ("mount" = String, Path), ("page" = String, Path)),
    responses((status = 200)))]
pub async fn history(
    State(st): State<AppState>,
    t: ToolReq,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let (page, versions) = ops::history(&st, &t, &name).await?;
    let versions: Vec<_> = versions
        .into_iter()
        .map(|v| json!({"version": v.version, "author": v.author, "timestamp": rfc3339(v.timestamp), "comment": v.comment}))
        .collect();
    Ok(Json(json!({"name": page.name, "versions": versions})))
}

pub async fn list_attachments(
    State(st): State<AppState>,
    t: ToolReq,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let page = ops::load(&st, &t, &name).await?;
    let base = format!("/rest{}", url(&t, &page.name));
    let list: Vec<_> = ops::attachments(&st, &t, &page)
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
    t: ToolReq<Write>,
    headers: HeaderMap,
    Path(name): Path<String>,
    mp: Multipart,
) -> ApiResult {
    // Only a valid access token (which ignores cookies) spares the CSRF check; any other
    // Authorization header, valid or not, does not.
    crate::upload::check_api_csrf(&t.page, &headers)?;
    let (page, a) = ops::upload(&st, &t, &name, mp, None).await?;
    let link = format!(
        "/rest{}attachments/{}",
        url(&t, &page.name),
        wiki::encode_name(&a.filename)
    );
    Ok((StatusCode::CREATED, Json(json!({"filename": a.filename, "size": a.size, "content_type": a.content_type, "sha256": a.sha256, "url": link}))).into_response())
}

pub async fn download(
    State(st): State<AppState>,
    t: ToolReq,
    Path(FilePath { page, file }): Path<FilePath>,
) -> ApiResult {
    let (_, a) = ops::attachment(&st, &t, &page, &file).await?;
    Ok(crate::upload::serve(&st, &t, &a).await?)
}
