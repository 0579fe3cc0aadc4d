//! A repository's history: commit logs (of a ref, or of a path on it), a commit with its
//! diff and discussion, and the branch and tag lists.

use axum::extract::{Path, Query, State};
use forge_tools::tools::repo::refresh;
use forge_tools::{heavy, markdown};
use serde::Deserialize;

use super::read::{self, At, log_paging};
use super::templates::{CommitRow, CommitTpl, FileView, LogTpl, RefsTpl, enc_path, row, time};
use crate::ctx::ToolReq;
use crate::discussion::{self, SectionQuery, ThreadRef};
use crate::error::PageResult;
use crate::page::render;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<String>,
}

pub async fn log(
    State(st): State<AppState>,
    t: ToolReq,
    Path(rest): Path<String>,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let base = t.base.clone();
    let paging = log_paging(q.page.as_deref(), None)?;
    let page = paging.page;
    let (At { rev, path, .. }, list, more) = read::log(&st, &t, rest, paging).await?;
    let commits = list.iter().map(|c| row(&base, c)).collect();
    let here = format!(
        "{base}commits/{}{}",
        enc_path(&rev),
        if path.is_empty() {
            String::new()
        } else {
            format!("/{}", enc_path(&path))
        }
    );
    let next = more.then(|| format!("{here}?page={}", page + 1));
    let prev = (page > 1).then(|| format!("{here}?page={}", page - 1));
    let tpl = LogTpl {
        page: t.shell(&st.forge, &format!("Commits on {rev}")),
        base,
        rev,
        path,
        commits,
        prev,
        next,
    };
    Ok(render(&tpl))
}

pub async fn commit(
    State(st): State<AppState>,
    t: ToolReq,
    Path(sha): Path<String>,
    Query(dq): Query<SectionQuery>,
) -> PageResult {
    let base = t.base.clone();
    let d = read::commit(&st, &t, sha).await?;
    let id = d.info.id.clone();
    // Comments on the commit, under its page.
    let thread = ThreadRef {
        artifact: refresh::commit_key(&t.tool, &id),
        title: format!("commit {}", d.info.short),
        url: refresh::commit_url(&t.ctx.project, &t.tool, &id),
        also: Vec::new(),
    };
    let discussion = discussion::section(&st, &t, &thread, &dq).await?;
    let parent = d.info.parents.first().cloned();
    let blob_url = |rev: &str, path: &str| format!("{base}blob/{rev}/{}", enc_path(path));
    let files = d
        .files
        .iter()
        .map(|f| FileView {
            too_large: f.too_large,
            old_url: parent
                .as_deref()
                .filter(|_| f.status != 'A')
                .map(|p| blob_url(p, &f.old_path)),
            new_url: (f.status != 'D').then(|| blob_url(&id, &f.new_path)),
            path: if f.status == 'R' {
                format!("{} → {}", f.old_path, f.new_path)
            } else {
                f.new_path.clone()
            },
            status: f.status,
            additions: f.additions,
            deletions: f.deletions,
            lines: f
                .patch
                .lines()
                .map(|l| {
                    let class = match l.chars().next() {
                        Some('+') => "add",
                        Some('-') => "del",
                        Some('@') => "hunk",
                        _ => "ctx",
                    };
                    (class.to_owned(), l.to_owned())
                })
                .collect(),
            binary: f.binary,
            truncated: f.truncated,
        })
        .collect();
    let body = d
        .info
        .message
        .split_once('\n')
        .map(|(_, rest)| rest.trim().to_owned())
        .unwrap_or_default();
    let message_html = if body.is_empty() {
        String::new()
    } else {
        heavy::run(move || markdown::render(&body)).await?
    };
    let tpl = CommitTpl {
        page: t.shell(&st.forge, &d.info.summary),
        c: row(&base, &d.info),
        message_html,
        parents: d.info.parents.clone(),
        base,
        files,
        additions: d.additions,
        deletions: d.deletions,
        files_truncated: d.files_truncated,
        files_changed: d.files_changed,
        partial_stats: d.partial_stats,
        discussion,
    };
    Ok(render(&tpl))
}

async fn refs_page(st: &AppState, t: &ToolReq, prefix: &'static str, heading: &str) -> PageResult {
    let base = t.base.clone();
    let refs = read::refs(st, t, prefix)
        .await?
        .into_iter()
        .map(|e| {
            let c = CommitRow {
                url: format!("{base}commit/{}", e.target),
                short: e.target[..10].to_owned(),
                id: e.target,
                summary: e.summary,
                author: String::new(),
                when: time(e.time),
            };
            (e.name, c)
        })
        .collect();
    Ok(render(&RefsTpl {
        page: t.shell(&st.forge, heading),
        base,
        heading: heading.to_owned(),
        refs,
    }))
}

pub async fn branches(State(st): State<AppState>, t: ToolReq) -> PageResult {
    refs_page(&st, &t, "refs/heads/", "Branches").await
}

pub async fn tags(State(st): State<AppState>, t: ToolReq) -> PageResult {
    refs_page(&st, &t, "refs/tags/", "Tags").await
}
