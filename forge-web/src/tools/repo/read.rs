//! The repository's reads, shared by its pages and its REST API: each opens the tool's
//! repository on a blocking thread, resolves `<ref>/<path>` from the URL, and returns what
//! `forge_tools::tools::repo::browse` found; the callers only render it (HTML or JSON). Also the
//! checked paging of commit logs, the same for both.

use std::sync::Arc;

use forge_tools::Error;
use forge_tools::paging::Paging;
use forge_tools::readmodel::ReadModel;
use forge_tools::tools::repo::{self, browse, views};

use crate::ctx::ToolReq;
use crate::state::AppState;

/// Commits on a log page, unless the API asks for another number.
pub const PER_PAGE: usize = 50;
/// Deepest log page: each page walks every commit before it.
pub const MAX_LOG_PAGE: u64 = 1_000;

/// Runs a blocking read of the tool's repository.
pub async fn with_repo<P, T: Send + 'static>(
    st: &AppState,
    t: &ToolReq<P>,
    f: impl FnOnce(&git2::Repository) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let path = repo::repo_path(st.forge.config(), &t.tool);
    tokio::task::spawn_blocking(move || {
        let r = browse::open(&path)?;
        f(&r)
    })
    .await
    .map_err(|e| Error::Internal(e.to_string()))?
}

/// Where a `<ref>/<path>` URL points: the ref as named, its commit, and the path.
pub struct At {
    pub rev: String,
    pub oid: git2::Oid,
    pub path: String,
}

fn at(r: &git2::Repository, rest: &str) -> Result<At, Error> {
    let (rev, oid, path) = browse::split_ref_path(r, rest)?;
    Ok(At { rev, oid, path })
}

/// Branches (`refs/heads/`) or tags (`refs/tags/`), newest first.
pub async fn refs<P>(
    st: &AppState,
    t: &ToolReq<P>,
    prefix: &'static str,
) -> Result<Vec<browse::RefEntry>, Error> {
    with_repo(st, t, move |r| browse::refs(r, prefix)).await
}

/// The newest commit that changed each entry of a directory, by entry name.
pub type LastCommits = Arc<Vec<(String, browse::CommitInfo)>>;

/// A directory's entries, with the newest commit that changed each when `last_depth` says
/// how far back to look.
pub async fn tree<P>(
    st: &AppState,
    t: &ToolReq<P>,
    rest: String,
    last_depth: Option<usize>,
) -> Result<(At, Vec<browse::TreeEntry>, LastCommits), Error> {
    let model = ReadModel::of(st.forge.db());
    let tool = t.tool.id;
    // Kept refs and a kept view: no repository opened.
    if let Some(m) = model.as_deref()
        && let Some((rev, oid, path)) = kept_at(st, t, m, &rest).await?
        && let Some(view) = views::kept_tree(m, tool, oid, &path, last_depth)
    {
        let at = At { rev, oid, path };
        return Ok((at, view.0.clone(), view.1.clone()));
    }
    with_repo(st, t, move |r| {
        let at = at(r, &rest)?;
        let view = views::tree(model.as_deref(), tool, r, at.oid, &at.path, last_depth)?;
        Ok((at, view.0.clone(), view.1.clone()))
    })
    .await
}

/// A file (its content up to `browse::MAX_BLOB`).
pub async fn blob<P>(
    st: &AppState,
    t: &ToolReq<P>,
    rest: String,
) -> Result<(At, browse::Blob), Error> {
    with_repo(st, t, move |r| {
        let at = at(r, &rest)?;
        let b = browse::blob(r, at.oid, &at.path)?;
        Ok((at, b))
    })
    .await
}

/// A page of the commits on a ref (touching a path, if the URL names one), and whether there
/// are more.
pub async fn log<P>(
    st: &AppState,
    t: &ToolReq<P>,
    rest: String,
    paging: Paging,
) -> Result<(At, Vec<browse::CommitInfo>, bool), Error> {
    let model = ReadModel::of(st.forge.db());
    let tool = t.tool.id;
    let per = paging.per_page;
    if let Some(m) = model.as_deref()
        && let Some((rev, oid, path)) = kept_at(st, t, m, &rest).await?
        && let Some(found) = views::kept_log(m, tool, oid, &path, paging.offset(), per)
    {
        let mut list = found.to_vec();
        let more = list.len() > per;
        list.truncate(per);
        return Ok((At { rev, oid, path }, list, more));
    }
    with_repo(st, t, move |r| {
        let at = at(r, &rest)?;
        let found = views::log(
            model.as_deref(),
            tool,
            r,
            at.oid,
            &at.path,
            paging.offset(),
            per,
        )?;
        let mut list = found.to_vec();
        let more = list.len() > per;
        list.truncate(per);
        Ok((at, list, more))
    })
    .await
}

/// A commit with its diff, within the diff caps.
pub async fn commit<P>(
    st: &AppState,
    t: &ToolReq<P>,
    sha: String,
) -> Result<Arc<browse::CommitDetail>, Error> {
    let model = ReadModel::of(st.forge.db());
    let tool = t.tool.id;
    if let Some(d) = model
        .as_deref()
        .and_then(|m| views::kept_commit(m, tool, &sha))
    {
        return Ok(d);
    }
    with_repo(st, t, move |r| {
        views::commit(model.as_deref(), tool, r, &sha)
    })
    .await
}

/// Where `<ref>/<path>` points by the kept refs, when they can tell.
async fn kept_at<P>(
    st: &AppState,
    t: &ToolReq<P>,
    model: &ReadModel,
    rest: &str,
) -> Result<Option<(String, git2::Oid, String)>, Error> {
    let path = repo::repo_path(st.forge.config(), &t.tool);
    // Whatever goes wrong here, the repository itself answers below, and says it.
    let Ok(Some(refs)) = views::refs(model, t.tool.id, path).await else {
        return Ok(None);
    };
    views::split_ref_path(&refs, rest).transpose()
}

/// A number from the query string, or a 400 saying what is allowed.
fn number(name: &str, value: Option<&str>, max: u64) -> Result<Option<u64>, Error> {
    value
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| {
                Error::bad_request(format!("{name} must be a number between 1 and {max}"))
            })
        })
        .transpose()
}

/// The page of a commit log, checked.
pub fn log_paging(page: Option<&str>, limit: Option<&str>) -> Result<Paging, Error> {
    let page = number("page", page, MAX_LOG_PAGE)?;
    let limit = number("limit", limit, forge_tools::paging::MAX_LIMIT)?;
    Paging::new(page, limit, PER_PAGE as u64, MAX_LOG_PAGE)
}
