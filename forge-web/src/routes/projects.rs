//! Site home, project directory, project creation and project home pages.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use forge_tools::activity::follows;
use forge_tools::activity::stream::{self, Source};
use forge_tools::paging::Paging;
use forge_tools::projects::{self, Neighborhood, NewProject};
use forge_tools::{Error, markdown, users};
use serde::Deserialize;

use crate::auth::CsrfForm;
use crate::auth::redirect_with_flash;
use crate::ctx::{Nbhd, ProjectReq, SignedIn};
use crate::error::PageResult;
use crate::page::{Page, PageCtx, UserInfo, render, render_status};
use crate::state::AppState;
use crate::views::{
    ActivityRow, AddProjectTpl, DirectoryTpl, FollowButton, FormState, HomeTpl, MemberRow,
    ProjectCard, ProjectHomeTpl, WatchButton, figure, labelled,
};

/// Activity entries on a project's home page.
const HOME_ACTIVITY: u64 = 10;

/// A user's figures on their profile, with their labels.
const USER_FIGURES: &[(&str, &str)] = &[
    ("commits", "commits"),
    ("edits", "wiki edits"),
    ("tickets", "tickets opened"),
    ("posts", "posts"),
];

pub async fn site_home(State(st): State<AppState>, page: PageCtx) -> PageResult {
    let list = projects::list_visible(st.forge.db(), page.viewer.user_id(), false, 24).await?;
    Ok(render(&HomeTpl {
        page: Page::new(&page, "Home").with_feed("/feed.atom"),
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

pub async fn add_page(SignedIn { page, .. }: SignedIn) -> Response {
    render(&AddProjectTpl {
        page: Page::new(&page, "New project"),
        form: FormState::default(),
    })
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
    SignedIn { page, .. }: SignedIn,
    CsrfForm(f): CsrfForm<AddForm>,
) -> PageResult {
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

pub async fn project_home(State(st): State<AppState>, p: ProjectReq) -> PageResult {
    let (forge, viewer, ctx) = (&st.forge, p.viewer(), &p.ctx);
    let members = forge.members(ctx).await?;
    let (profile, their_projects) = match ctx.project.neighborhood {
        Neighborhood::Users => {
            match users::by_username(forge.db(), &ctx.project.shortname).await? {
                Some(u) => {
                    let theirs = projects::of_member(forge.db(), u.id).await?;
                    let visible = theirs
                        .iter()
                        .filter(|p| p.neighborhood == Neighborhood::Projects)
                        .filter(|p| forge.can_read(viewer, p))
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
            }
        }
        Neighborhood::Projects => (None, Vec::new()),
    };
    let mut watches = Vec::new();
    if viewer.user.is_some() {
        let watching = forge_tools::notify::is_watching(
            forge,
            viewer,
            ctx,
            forge_tools::notify::Target::Project,
        )
        .await?;
        watches.push(WatchButton {
            action: format!("{}_watch", p.url()),
            tool: String::new(),
            artifact: String::new(),
            watching,
            label: "project".into(),
            next: p.url(),
        });
    }
    let (follow, activity) = home_activity(forge, viewer, &p).await?;
    let description_html = if ctx.project.description.is_empty() {
        String::new()
    } else {
        markdown::render_async(ctx.project.description.clone(), Default::default()).await?
    };
    let user_figures = match (&profile, ctx.project.neighborhood) {
        (Some(u), Neighborhood::Users) => figure("user", forge.user_recent(&u.username, 12))
            .await
            .map(|found| labelled(&found, USER_FIGURES))
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let tpl = ProjectHomeTpl {
        user_figures,
        stats_url: format!("{}stats/", p.url()),
        watches,
        follow,
        activity,
        summary: ctx.project.summary.clone(),
        description_html,
        members: members.into_iter().map(MemberRow::from).collect(),
        tools: forge.nav(ctx),
        profile,
        their_projects,
        page: p.shell(forge, ctx.project.name.clone(), ""),
    };
    Ok(render(&tpl))
}

/// The home page's follow button and recent activity: the project's, or on a personal
/// project (`/u/<name>/`) what that user did, as the viewer may see it.
async fn home_activity(
    forge: &forge_tools::Forge,
    viewer: &forge_tools::Viewer,
    p: &ProjectReq,
) -> Result<(Option<FollowButton>, Vec<ActivityRow>), Error> {
    let project = &p.ctx.project;
    let paging = Paging::new(None, None, HOME_ACTIVITY, 1)?;
    let source = match project.neighborhood {
        Neighborhood::Projects => Source::Project(project),
        Neighborhood::Users => Source::User(&project.shortname),
    };
    let found = stream::read(forge, viewer, source, paging).await?;
    let own_page = project.neighborhood == Neighborhood::Users
        && viewer.username() == Some(&project.shortname);
    let follow = if viewer.user.is_some() && !own_page {
        Some(FollowButton {
            action: format!("{}_follow", p.url()),
            following: follows::follows_page(forge.db(), viewer, project).await?,
            label: match project.neighborhood {
                Neighborhood::Projects => "project".into(),
                Neighborhood::Users => project.shortname.clone(),
            },
            next: p.url(),
        })
    } else {
        None
    };
    Ok((
        follow,
        found.entries.iter().map(ActivityRow::from).collect(),
    ))
}
