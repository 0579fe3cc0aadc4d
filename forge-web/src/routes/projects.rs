//! Site home, project directory, project creation and project home pages.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use forge_tools::projects::{self, Neighborhood, NewProject};
use forge_tools::{Error, markdown, users};
use serde::Deserialize;

use super::{Nbhd, load};
use crate::auth::{CsrfForm, PageCtx, redirect_with_flash};
use crate::error::{PageError, PageResult};
use crate::state::AppState;
use crate::views::{
    AddProjectTpl, DirectoryTpl, FormState, HomeTpl, MemberRow, Page, ProjectCard, ProjectHomeTpl,
    UserInfo, render, render_status,
};

pub async fn site_home(State(st): State<AppState>, page: PageCtx) -> PageResult {
    let list = projects::list_visible(st.forge.db(), page.viewer.user_id(), false, 24).await?;
    Ok(render(&HomeTpl {
        page: Page::new(&page, "Home"),
        projects: list.iter().map(ProjectCard::from).collect(),
    }))
}

pub async fn directory(State(st): State<AppState>, page: PageCtx) -> PageResult {
    let list = projects::list_visible(
        st.forge.db(),
        page.viewer.user_id(),
        page.viewer.is_site_admin(),
        200,
    )
    .await?;
    Ok(render(&DirectoryTpl {
        page: Page::new(&page, "Projects"),
        projects: list.iter().map(ProjectCard::from).collect(),
    }))
}

pub async fn add_page(page: PageCtx) -> PageResult {
    page.viewer
        .require_user()
        .map_err(|e| PageError::from(e).with_next("/p/add"))?;
    Ok(render(&AddProjectTpl {
        page: Page::new(&page, "New project"),
        form: FormState::default(),
    }))
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    shortname: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    private: Option<String>,
}

pub async fn add(
    State(st): State<AppState>,
    page: PageCtx,
    CsrfForm(f): CsrfForm<AddForm>,
) -> PageResult {
    page.viewer
        .require_user()
        .map_err(|e| PageError::from(e).with_next("/p/add"))?;
    let private = f.private.is_some();
    let new = NewProject {
        neighborhood: Neighborhood::Projects,
        shortname: f.shortname.trim().to_owned(),
        name: f.name.clone(),
        summary: f.summary.clone(),
        private,
    };
    match st.forge.create_project(&page.viewer, new).await {
        Ok(p) => Ok(redirect_with_flash(
            &st,
            &p.url(),
            &format!("Project \"{}\" created.", p.name),
        )),
        Err(e @ (Error::Invalid(_) | Error::RateLimited(_))) => {
            let form = FormState::new(&[
                ("name", &f.name),
                ("shortname", &f.shortname),
                ("summary", &f.summary),
                ("private", if private { "on" } else { "" }),
            ]);
            let (status, form) = match e {
                Error::Invalid(errs) => (StatusCode::UNPROCESSABLE_ENTITY, form.with_errors(errs)),
                other => (
                    StatusCode::TOO_MANY_REQUESTS,
                    form.with_message(other.to_string()),
                ),
            };
            Ok(render_status(
                status,
                &AddProjectTpl {
                    page: Page::new(&page, "New project"),
                    form,
                },
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// `/p/<name>` → `/p/<name>/`.
pub async fn add_slash(Extension(nbhd): Extension<Nbhd>, Path(name): Path<String>) -> Response {
    Redirect::permanent(&format!("/{}/{}/", nbhd.0.prefix(), name)).into_response()
}

pub async fn project_home(
    State(st): State<AppState>,
    Extension(nbhd): Extension<Nbhd>,
    page: PageCtx,
    Path(name): Path<String>,
) -> PageResult {
    let ctx = load(&st.forge, &page, nbhd, &name).await?;
    st.forge.page_view(&page.viewer, &ctx, None);
    let members = st
        .forge
        .members(&ctx)
        .await?
        .into_iter()
        .map(|(u, r)| MemberRow {
            username: u.username,
            display_name: u.display_name,
            role: r.as_str().into(),
        })
        .collect();
    let (profile, their_projects) = match nbhd.0 {
        Neighborhood::Users => match users::by_username(st.forge.db(), &name).await? {
            Some(u) => {
                let theirs = projects::of_member(st.forge.db(), u.id).await?;
                let visible = theirs
                    .iter()
                    .filter(|p| p.neighborhood == Neighborhood::Projects)
                    .filter(|p| st.forge.can_read(&page.viewer, p))
                    .map(ProjectCard::from)
                    .collect();
                (
                    Some(UserInfo {
                        username: u.username,
                        display_name: u.display_name,
                        site_admin: u.site_admin,
                    }),
                    visible,
                )
            }
            None => (None, Vec::new()),
        },
        Neighborhood::Projects => (None, Vec::new()),
    };
    let title = ctx.project.name.clone();
    let mut watches = Vec::new();
    if page.viewer.user.is_some() {
        let watching = forge_tools::notify::is_watching(
            &st.forge,
            &page.viewer,
            &ctx,
            forge_tools::notify::Target::Project,
        )
        .await?;
        watches.push(crate::views::WatchButton {
            action: format!("{}_watch", ctx.project.url()),
            tool: String::new(),
            artifact: String::new(),
            watching,
            label: "project".into(),
            next: ctx.project.url(),
        });
    }
    let description_html = if ctx.project.description.is_empty() {
        String::new()
    } else {
        markdown::render_async(ctx.project.description.clone(), Default::default()).await?
    };
    let tpl = ProjectHomeTpl {
        watches,
        summary: ctx.project.summary.clone(),
        description_html,
        members,
        tools: st.forge.nav(&ctx),
        profile,
        their_projects,
        page: Page::new(&page, title).in_project(&st.forge, &ctx, ""),
    };
    Ok(render(&tpl))
}
