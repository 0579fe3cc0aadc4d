//! Repository REST API under `/rest/p/<project>/<mount>/`: `branches`, `tags`,
//! `tree/<ref>[/<path>]`, `file/<ref>/<path>` (content of files up to 1 MiB; larger ones are
//! `truncated` with no content: use the raw download), `commits/<ref>[/<path>]?page=&limit=`,
//! `commit/<sha>` (its diff within the commit page's caps). The reads are those of the pages
//! (`read`); only the rendering differs.

use axum::Json;
use axum::extract::{Path, Query, State};
use base64::Engine;
use forge_tools::tools::repo::browse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::read::{self, At, log_paging};
use crate::ctx::ToolReq;
use crate::error::ApiResult;
use crate::state::AppState;

fn commit_json(c: &browse::CommitInfo) -> Value {
    json!({"id": c.id, "summary": c.summary, "message": c.message, "author": c.author, "email": c.email,
        "time": chrono::DateTime::from_timestamp(c.time, 0).map(|t| t.to_rfc3339()), "parents": c.parents})
}

async fn refs(
    st: &AppState,
    t: &ToolReq,
    prefix: &'static str,
    key: &str,
) -> ApiResult<Json<Value>> {
    let list = read::refs(st, t, prefix).await?;
    let items: Vec<Value> = list
        .iter()
        .map(|e| json!({"name": e.name, "commit": e.target, "summary": e.summary}))
        .collect();
    Ok(Json(json!({ key: items })))
}

pub async fn branches(State(st): State<AppState>, t: ToolReq) -> ApiResult<Json<Value>> {
    refs(&st, &t, "refs/heads/", "branches").await
}

pub async fn tags(State(st): State<AppState>, t: ToolReq) -> ApiResult<Json<Value>> {
    refs(&st, &t, "refs/tags/", "tags").await
}

pub async fn tree(
    State(st): State<AppState>,
    t: ToolReq,
    Path(rest): Path<String>,
) -> ApiResult<Json<Value>> {
    let (At { rev, oid, path }, list, _) = read::tree(&st, &t, rest, None).await?;
    let entries: Vec<Value> = list
        .into_iter()
        .map(|e| json!({"name": e.name, "path": e.path, "type": if e.is_dir { "dir" } else { "file" }, "size": e.size}))
        .collect();
    Ok(Json(
        json!({"ref": rev, "commit": oid.to_string(), "path": path, "entries": entries}),
    ))
}

pub async fn file(
    State(st): State<AppState>,
    t: ToolReq,
    Path(rest): Path<String>,
) -> ApiResult<Json<Value>> {
    let (At { rev, oid, path }, b) = read::blob(&st, &t, rest).await?;
    let (encoding, content) = if b.binary {
        (
            "base64",
            base64::engine::general_purpose::STANDARD.encode(&b.content),
        )
    } else {
        ("utf-8", String::from_utf8_lossy(&b.content).into_owned())
    };
    Ok(Json(
        json!({"ref": rev, "commit": oid.to_string(), "path": path, "size": b.size, "binary": b.binary,
            "truncated": b.truncated, "encoding": encoding, "content": content}),
    ))
}

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<String>,
    limit: Option<String>,
}

pub async fn commits(
    State(st): State<AppState>,
    t: ToolReq,
    Path(rest): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<Value>> {
    let paging = log_paging(q.page.as_deref(), q.limit.as_deref())?;
    let (at, list, more) = read::log(&st, &t, rest, paging).await?;
    Ok(Json(
        json!({"ref": at.rev, "page": paging.page, "more": more, "commits": list.iter().map(commit_json).collect::<Vec<_>>()}),
    ))
}

pub async fn commit(
    State(st): State<AppState>,
    t: ToolReq,
    Path(sha): Path<String>,
) -> ApiResult<Json<Value>> {
    let d = read::commit(&st, &t, sha).await?;
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
