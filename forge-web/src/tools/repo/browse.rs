//! Browsing a repository: its summary (clone URL, top-level entries, README, last commit) and
//! directory pages, each entry with the newest commit that changed it.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use forge_tools::acl::perm;
use forge_tools::markdown;
use forge_tools::tools::repo::{self, browse, views};
use forge_tools::{Error, heavy};

use super::read::{self, with_repo};
use super::templates::{SummaryTpl, TreeTpl, crumbs, enc_path, entries, escape, row};
use crate::ctx::ToolReq;
use crate::error::PageResult;
use crate::page::render;
use crate::state::AppState;
use crate::views::figure;

/// How far back the tree pages look for each entry's last change.
const LAST_COMMIT_DEPTH: usize = 2000;

pub async fn summary(State(st): State<AppState>, t: ToolReq) -> PageResult {
    let base = t.base.clone();
    let b2 = base.clone();
    let model = forge_tools::readmodel::ReadModel::of(st.forge.db());
    let tool = t.tool.id;
    let (empty, branch, entries, readme, last) = with_repo(&st, &t, move |r| {
        let branch = browse::default_branch(r);
        if browse::is_empty(r) {
            return Ok((true, branch, Vec::new(), None, None));
        }
        let tip = browse::resolve(r, &branch).or_else(|_| {
            browse::refs(r, "refs/heads/")?
                .first()
                .map(|b| git2::Oid::from_str(&b.target).map_err(|e| Error::Internal(e.to_string())))
                .ok_or(Error::NotFound("branch"))?
        })?;
        let m = model.as_deref();
        let view = views::tree(m, tool, r, tip, "", Some(LAST_COMMIT_DEPTH))?;
        let list = entries(&b2, &branch, view.0.clone(), &view.1);
        let readme = browse::readme(r, tip);
        let last = views::log(m, tool, r, tip, "", 0, 1)?
            .first()
            .map(|c| row(&b2, c));
        Ok((false, branch, list, readme, last))
    })
    .await?;
    let readme = match readme {
        Some((name, text)) => Some(heavy::run(move || render_readme(name, &text)).await?),
        None => None,
    };
    let series = format!("clones:{}", t.tool.mount);
    let clones = figure("clones", st.forge.project_recent(&t.ctx, &series, 30)).await;
    let tpl = SummaryTpl {
        page: t.shell(&st.forge, &t.tool.label),
        clones,
        stats_url: format!("{}stats/", t.ctx.project.url()),
        clone_url: repo::clone_url(st.forge.config(), &t.ctx.project, &t.tool),
        can_push: t.can(perm::WRITE),
        base,
        empty,
        branch,
        entries,
        readme,
        last,
    };
    Ok(render(&tpl))
}

/// A README as HTML: markdown rendered, anything else escaped (on a blocking thread).
fn render_readme(name: String, text: &str) -> (String, String) {
    let lower = name.to_ascii_lowercase();
    let html = if lower.ends_with(".md") || lower.ends_with(".markdown") {
        markdown::render(text)
    } else {
        format!("<pre>{}</pre>", escape(text))
    };
    (name, html)
}

pub async fn tree(State(st): State<AppState>, t: ToolReq, Path(rest): Path<String>) -> PageResult {
    let base = t.base.clone();
    let (at, list, last) = match read::tree(&st, &t, rest.clone(), Some(LAST_COMMIT_DEPTH)).await {
        Ok(found) => found,
        // A file path under /tree/ goes to its file page.
        Err(Error::NotFound(what)) => match read::blob(&st, &t, rest).await {
            Ok((at, _)) => {
                let to = format!("{base}blob/{}/{}", enc_path(&at.rev), enc_path(&at.path));
                return Ok(Redirect::to(&to).into_response());
            }
            Err(_) => return Err(Error::NotFound(what).into()),
        },
        Err(e) => return Err(e.into()),
    };
    let (rev, path) = (at.rev, at.path);
    let where_ = if path.is_empty() { "/" } else { &path };
    let tpl = TreeTpl {
        page: t.shell(&st.forge, &format!("{where_} at {rev}")),
        crumbs: crumbs(&base, &rev, &path),
        entries: entries(&base, &rev, list, &last),
        base,
        rev,
        path,
    };
    Ok(render(&tpl))
}
