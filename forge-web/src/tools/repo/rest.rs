//! Repository REST API under `/rest/p/<project>/<mount>/`: `branches`, `tags`,
//! `tree/<ref>[/<path>]`, `file/<ref>/<path>` (content of files up to 1 MiB; larger ones are
//! `truncated` with no content: use the raw download), `commits/<ref>[/<path>]?page=&limit=`,
//! `commit/<sha>` (its diff within the commit page's caps).

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use base64::Engine;
use forge_tools::repo::browse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::with_repo;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::tools::ToolRequest;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/branches", get(branches))
        .route("/tags", get(tags))
        .route("/tree/{*rest}", get(tree))
        .route("/file/{*rest}", get(file))
        .route("/commits/{*rest}", get(commits))
        .route("/commit/{sha}", get(commit))
}

fn commit_json(c: &browse::CommitInfo) -> Value {
    json!({"id": c.id, "summary": c.summary, "message": c.message, "author": c.author, "email": c.email,
        "time": chrono::DateTime::from_timestamp(c.time, 0).map(|t| t.to_rfc3339()), "parents": c.parents})
}

async fn refs(
    st: &AppState,
    req: &ToolRequest,
    prefix: &'static str,
    key: &str,
) -> ApiResult<Json<Value>> {
    let list = with_repo(st, req, move |r| browse::refs(r, prefix)).await?;
    let items: Vec<Value> = list
        .iter()
        .map(|e| json!({"name": e.name, "commit": e.target, "summary": e.summary}))
        .collect();
    Ok(Json(json!({ key: items })))
}

pub async fn branches(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
) -> ApiResult<Json<Value>> {
    refs(&st, &req, "refs/heads/", "branches").await
}

pub async fn tags(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
) -> ApiResult<Json<Value>> {
    refs(&st, &req, "refs/tags/", "tags").await
}

pub async fn tree(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(rest): Path<String>,
) -> ApiResult<Json<Value>> {
    let out = with_repo(&st, &req, move |r| {
        let (rev, oid, path) = browse::split_ref_path(r, &rest)?;
        let entries: Vec<Value> = browse::tree(r, oid, &path)?
            .into_iter()
            .map(|e| json!({"name": e.name, "path": e.path, "type": if e.is_dir { "dir" } else { "file" }, "size": e.size}))
            .collect();
        Ok(json!({"ref": rev, "commit": oid.to_string(), "path": path, "entries": entries}))
    })
    .await?;
    Ok(Json(out))
}

pub async fn file(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(rest): Path<String>,
) -> ApiResult<Json<Value>> {
    let out = with_repo(&st, &req, move |r| {
        let (rev, oid, path) = browse::split_ref_path(r, &rest)?;
        let b = browse::blob(r, oid, &path)?;
        let (encoding, content) = if b.binary {
            ("base64", base64::engine::general_purpose::STANDARD.encode(&b.content))
        } else {
            ("utf-8", String::from_utf8_lossy(&b.content).into_owned())
        };
        Ok(json!({"ref": rev, "commit": oid.to_string(), "path": path, "size": b.size, "binary": b.binary,
            "truncated": b.truncated, "encoding": encoding, "content": content}))
    })
    .await?;
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<String>,
    limit: Option<String>,
}

pub async fn commits(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(rest): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Value>> {
    let paging = super::pages::log_paging(q.page.as_deref(), q.limit.as_deref())?;
    let (page, per) = (paging.page, paging.per_page);
    let out = with_repo(&st, &req, move |r| {
        let (rev, oid, path) = browse::split_ref_path(r, &rest)?;
        let mut list = browse::log(r, oid, &path, paging.offset(), per)?;
        let more = list.len() > per;
        list.truncate(per);
        Ok(json!({"ref": rev, "page": page, "more": more, "commits": list.iter().map(commit_json).collect::<Vec<_>>()}))
    })
    .await?;
    Ok(Json(out))
}

pub async fn commit(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(sha): Path<String>,
) -> ApiResult<Json<Value>> {
    let d = with_repo(&st, &req, move |r| browse::commit(r, &sha)).await?;
    let files: Vec<Value> = d
        .files
        .iter()
        .map(|f| json!({"old_path": f.old_path, "path": f.new_path, "status": f.status.to_string(), "additions": f.additions,
            "deletions": f.deletions, "binary": f.binary, "patch": f.patch, "truncated": f.truncated, "too_large": f.too_large}))
        .collect();
    let mut c = commit_json(&d.info);
    c["stats"] = json!({"additions": d.additions, "deletions": d.deletions, "files": d.files_changed,
        "files_listed": files.len(), "partial": d.partial_stats});
    c["files"] = Value::Array(files);
    Ok(Json(c))
}
