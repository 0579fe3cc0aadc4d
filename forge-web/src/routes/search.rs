//! Search: the `/search` page and `GET /rest/search`. Both ask the domain with the viewer's
//! access tokens, so neither can return (or count) what the viewer may not read.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use forge_tools::Error;
use forge_tools::search::{Results, SearchRequest, indexer};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Auth;
use crate::error::{ApiResult, PageResult};
use crate::extract::Query;
use crate::page::{Page, PageCtx, render, render_status};
use crate::state::AppState;
use crate::views::SearchTpl;

const PER_PAGE: usize = 20;

#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct SearchParams {
    /// Words, `"phrases"`, `field:value` (title, text, author, type, project, tool), `prefix*`.
    #[serde(default)]
    q: String,
    /// Only this project (short name).
    #[serde(default)]
    project: String,
    /// Only this type: `project`, `wiki`, `commit`.
    #[serde(default, rename = "type")]
    kind: String,
    /// Only this tool mount (with `project`).
    #[serde(default)]
    tool: String,
    /// 1-based page of results (1 to 500).
    #[serde(default)]
    page: Option<u64>,
}

impl SearchParams {
    fn request(&self) -> SearchRequest {
        let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        SearchRequest {
            q: self.q.clone(),
            project: opt(&self.project),
            kind: opt(&self.kind),
            tool: opt(&self.tool),
            // Checked by the domain (0 or past the last servable page is a 400).
            page: usize::try_from(self.page.unwrap_or(1)).unwrap_or(usize::MAX),
            per_page: PER_PAGE,
        }
    }

    fn is_empty(&self) -> bool {
        self.q.trim().is_empty() && self.project.is_empty() && self.kind.is_empty()
    }
}

/// `/search?q=`: results with snippets, facets and pages.
pub async fn page(
    State(st): State<AppState>,
    page: PageCtx,
    Query(params): Query<SearchParams>,
) -> PageResult {
    let req = params.request();
    let mut bad = false;
    let (results, error) = if params.is_empty() {
        (Results::default(), String::new())
    } else {
        match indexer::search_as(&st.forge, &page.viewer, &req).await {
            Ok(r) => (r, String::new()),
            Err(Error::Invalid(f)) => (Results::default(), f.to_string()),
            Err(Error::BadRequest(m)) => {
                bad = true;
                (Results::default(), m)
            }
            Err(e) => return Err(e.into()),
        }
    };
    let pages = results.total.div_ceil(PER_PAGE).min(50);
    let link = |n: usize, kind: &str, project: &str| {
        let mut pairs: Vec<(&str, String)> = vec![("q", params.q.clone())];
        if !project.is_empty() {
            pairs.push(("project", project.to_owned()));
        }
        if !kind.is_empty() {
            pairs.push(("type", kind.to_owned()));
        }
        if !params.tool.is_empty() {
            pairs.push(("tool", params.tool.clone()));
        }
        if n > 1 {
            pairs.push(("page", n.to_string()));
        }
        format!(
            "/search?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    };
    let tpl = SearchTpl {
        page: Page::new(
            &page,
            if params.q.is_empty() {
                "Search".to_owned()
            } else {
                format!("Search: {}", params.q)
            },
        ),
        q: params.q.clone(),
        project: params.project.clone(),
        kind: params.kind.clone(),
        tool: params.tool.clone(),
        error: error.clone(),
        searched: !params.is_empty(),
        total: results.total,
        type_facets: results
            .facets
            .types
            .iter()
            .map(|(t, n)| (t.clone(), *n, link(1, t, &params.project)))
            .collect(),
        project_facets: results
            .facets
            .projects
            .iter()
            .map(|(p, n)| (p.clone(), *n, link(1, &params.kind, p)))
            .collect(),
        hits: results.hits,
        current: req.page.min(500),
        prev: (req.page > 1 && !bad).then(|| link(req.page - 1, &params.kind, &params.project)),
        next: (req.page < pages).then(|| link(req.page + 1, &params.kind, &params.project)),
        pages,
    };
    if error.is_empty() {
        Ok(render(&tpl))
    } else if bad {
        Ok(render_status(StatusCode::BAD_REQUEST, &tpl))
    } else {
        Ok(render_status(StatusCode::UNPROCESSABLE_ENTITY, &tpl))
    }
}

#[derive(Serialize, ToSchema)]
pub struct HitJson {
    #[serde(rename = "type")]
    kind: String,
    project: String,
    mount: String,
    url: String,
    title: String,
    /// HTML, escaped, with matches in `<b>`.
    snippet: String,
    author: String,
    date: String,
}

#[derive(Serialize, ToSchema)]
pub struct FacetsJson {
    /// `[type, count]` pairs.
    types: Vec<(String, u64)>,
    /// `[project, count]` pairs, most matches first.
    projects: Vec<(String, u64)>,
}

#[derive(Serialize, ToSchema)]
pub struct SearchJson {
    total: usize,
    hits: Vec<HitJson>,
    facets: FacetsJson,
}

/// Searches everything the caller may read.
#[utoipa::path(get, path = "/rest/search", params(SearchParams),
    responses((status = 200, body = SearchJson), (status = 400), (status = 422)))]
pub async fn api(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Query(params): Query<SearchParams>,
) -> ApiResult<Json<SearchJson>> {
    let results = indexer::search_as(&st.forge, &viewer, &params.request()).await?;
    Ok(Json(SearchJson {
        total: results.total,
        hits: results
            .hits
            .into_iter()
            .map(|h| HitJson {
                kind: h.kind,
                project: h.project,
                mount: h.mount,
                url: h.url,
                title: h.title,
                snippet: h.snippet,
                author: h.author,
                date: h.date,
            })
            .collect(),
        facets: FacetsJson {
            types: results.facets.types,
            projects: results.facets.projects,
        },
    }))
}
