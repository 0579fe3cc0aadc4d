//! Lists of wiki pages: the index (with deleted pages for those who may restore them), recent
//! changes, and labels.

use axum::extract::State;
use forge_tools::tools::wiki::pages as store;
use serde::Deserialize;

use super::common::{Delete, author_or_forge, nav, page_url};
use super::ops::{self, Listing};
use super::templates::{ListRow, ListTpl};
use crate::ctx::{Permission, ToolReq};
use crate::error::PageResult;
use crate::extract::Query;
use crate::page::render;
use crate::state::AppState;
use crate::views::date;

fn list_page(
    st: &AppState,
    t: &ToolReq,
    heading: String,
    list: Vec<store::Page>,
    labels: Vec<(String, i64)>,
) -> axum::response::Response {
    let rows = list
        .into_iter()
        .map(|p| ListRow {
            url: page_url(t, &p.name),
            author: author_or_forge(p.author),
            updated: date(p.updated),
            labels: p.labels,
            deleted: p.deleted,
            name: p.name,
        })
        .collect();
    render(&ListTpl {
        page: t.shell(&st.forge, &heading),
        nav: nav(t),
        heading,
        rows,
        labels,
    })
}

#[derive(Deserialize)]
pub struct IndexQuery {
    #[serde(default)]
    deleted: Option<String>,
}

pub async fn index(
    State(st): State<AppState>,
    t: ToolReq,
    Query(q): Query<IndexQuery>,
) -> PageResult {
    let listing = if q.deleted.is_some() && t.can(Delete::NAME) {
        Listing::WithDeleted
    } else {
        Listing::Live
    };
    let list = ops::list(&st, &t, listing, 5000).await?;
    Ok(list_page(&st, &t, "Page index".into(), list, Vec::new()))
}

pub async fn recent(State(st): State<AppState>, t: ToolReq) -> PageResult {
    let list = ops::list(&st, &t, Listing::Recent, 50).await?;
    Ok(list_page(
        &st,
        &t,
        "Recent changes".into(),
        list,
        Vec::new(),
    ))
}

#[derive(Deserialize)]
pub struct LabelQuery {
    label: Option<String>,
}

pub async fn labels(
    State(st): State<AppState>,
    t: ToolReq,
    Query(q): Query<LabelQuery>,
) -> PageResult {
    let (heading, list) = match &q.label {
        Some(label) => (
            format!("Pages labelled “{label}”"),
            ops::list(&st, &t, Listing::Labelled(label), 5000).await?,
        ),
        None => ("Labels".to_owned(), Vec::new()),
    };
    let labels = store::labels(st.forge.db(), t.tool.id).await?;
    Ok(list_page(&st, &t, heading, list, labels))
}
