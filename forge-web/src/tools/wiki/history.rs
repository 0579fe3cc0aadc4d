//! A wiki page's past: its versions, the diff between two, and reverting to one.

use axum::extract::{Path, State};
use forge_tools::tools::wiki::{self, Saved, pages as store};
use forge_tools::{Error, diff};
use serde::Deserialize;

use super::common::{author_or_forge, nav, page_url};
use super::ops;
use super::templates::{DiffTpl, HistoryRow, HistoryTpl};
use crate::auth::{CsrfForm, redirect_with_flash};
use crate::ctx::{ToolReq, Write};
use crate::error::PageResult;
use crate::extract::Query;
use crate::page::render;
use crate::state::AppState;
use crate::views::date;

pub async fn history(
    State(st): State<AppState>,
    t: ToolReq,
    Path(name): Path<String>,
) -> PageResult {
    let (page, versions) = ops::history(&st, &t, &name).await?;
    let rows = versions
        .into_iter()
        .map(|v| HistoryRow {
            version: v.version,
            author: author_or_forge(v.author),
            when: date(v.timestamp),
            comment: v.comment,
        })
        .collect();
    let tpl = HistoryTpl {
        page: t.shell(&st.forge, &format!("History of {}", page.name)),
        nav: nav(&t),
        url: page_url(&t, &page.name),
        name: page.name,
        rows,
        latest: page.version,
    };
    Ok(render(&tpl))
}

#[derive(Deserialize)]
pub struct DiffQuery {
    v1: Option<i32>,
    v2: Option<i32>,
}

pub async fn diff(
    State(st): State<AppState>,
    t: ToolReq,
    Path(name): Path<String>,
    Query(q): Query<DiffQuery>,
) -> PageResult {
    let page = ops::load(&st, &t, &name).await?;
    let v2 = q.v2.unwrap_or(page.version);
    let v1 = q.v1.unwrap_or(v2 - 1).max(1);
    // Versions never change: a diff between two of them is cached, so repeated views (or a
    // flood of them) skip loading both texts and comparing them again.
    let key = format!("wiki:{}:{v1}:{v2}", page.id);
    let found = match diff::cached(&key) {
        Some(found) => found,
        None => {
            let versions = store::versions(st.forge.db());
            let old = versions
                .get(page.id, v1)
                .await?
                .ok_or(Error::NotFound("version"))?;
            let new = versions
                .get(page.id, v2)
                .await?
                .ok_or(Error::NotFound("version"))?;
            // Off the async threads, with size and time caps.
            let (old_text, new_text) = (old.data.text, new.data.text);
            forge_tools::heavy::run(move || diff::unified_cached(key, &old_text, &new_text)).await?
        }
    };
    let too_large = matches!(found.as_ref(), diff::Diff::TooLarge);
    let tpl = DiffTpl {
        page: t.shell(&st.forge, &format!("{}: version {v1} → {v2}", page.name)),
        nav: nav(&t),
        url: page_url(&t, &page.name),
        name: page.name,
        v1,
        v2,
        diff: found,
        too_large,
    };
    Ok(render(&tpl))
}

#[derive(Deserialize)]
pub struct RevertForm {
    #[serde(default)]
    version: String,
}

pub async fn revert(
    State(st): State<AppState>,
    t: ToolReq<Write>,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<RevertForm>,
) -> PageResult {
    let page = ops::load(&st, &t, &name).await?;
    let version: i32 = f
        .version
        .trim()
        .parse()
        .map_err(|_| Error::invalid("version", "Choose a version"))?;
    match wiki::revert(&st.forge, t.viewer(), &t.ctx, &t.tool, &page, version).await? {
        Saved::Conflict(_) => Err(Error::conflict(
            "edit_conflict",
            "The page changed meanwhile; look at its history again",
        )
        .into()),
        Saved::Created(p) | Saved::Updated(p) => Ok(redirect_with_flash(
            &st,
            &page_url(&t, &p.name),
            &format!("Reverted to version {version} (now version {}).", p.version),
        )),
    }
}
