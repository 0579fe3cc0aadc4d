//! Site administration (`/nf/admin/`): users, projects and background tasks. Site admins only:
//! every handler takes a [`SiteAdmin`].

use axum::extract::{Path, State};
use forge_tasks::TaskId;
use forge_tools::{Error, projects, users};
use serde::Deserialize;

use crate::auth::{CsrfForm, Empty, redirect_with_flash};
use crate::ctx::SiteAdmin;
use crate::error::PageResult;
use crate::extract::Query;
use crate::page::{Page, render};
use crate::state::AppState;
use crate::views::{
    ProjectCard, SiteAdminTpl, SiteTasksTpl, TaskRow, UserRow, date, figure, labelled,
};

/// The site figures of the admin page, with their labels.
const SITE_FIGURES: &[(&str, &str)] = &[
    ("signups", "Sign-ups, last 30 days"),
    ("logins", "Log-ins, last 30 days"),
    ("projects_created", "Projects created, last 30 days"),
    ("active_users_today", "Active users today"),
];

pub async fn index(State(st): State<AppState>, SiteAdmin { page }: SiteAdmin) -> PageResult {
    let db = st.forge.db();
    let users = users::list(db, 200)
        .await?
        .into_iter()
        .map(|u| UserRow {
            username: u.username,
            email: u.email,
            site_admin: u.site_admin,
            created: date(u.created),
        })
        .collect();
    let projects = projects::list_visible(db, None, true, 200)
        .await?
        .iter()
        .map(ProjectCard::from)
        .collect();
    let tasks = st.forge.tasks();
    let task_counts = tasks.counts().await.map_err(Error::from)?;
    let recent = tasks
        .list(None, 10)
        .await
        .map_err(Error::from)?
        .into_iter()
        .map(TaskRow::from)
        .collect();
    let site_figures = figure("site", st.forge.site_recent(&page.viewer, 30))
        .await
        .map(|found| labelled(&found, SITE_FIGURES))
        .unwrap_or_default();
    Ok(render(&SiteAdminTpl {
        site_figures,
        page: Page::new(&page, "Site admin"),
        users,
        projects,
        task_counts,
        tasks: recent,
    }))
}

#[derive(Debug, Default, Deserialize)]
pub struct TaskFilter {
    #[serde(default)]
    state: String,
    #[serde(default)]
    name: String,
}

/// `/nf/admin/tasks`: every background task, filtered by state and name, with queue depth.
pub async fn tasks(
    State(st): State<AppState>,
    SiteAdmin { page }: SiteAdmin,
    Query(filter): Query<TaskFilter>,
) -> PageResult {
    let tasks = st.forge.tasks();
    let state = forge_tasks::TaskState::parse(&filter.state);
    let name = Some(filter.name.trim()).filter(|n| !n.is_empty());
    let rows = tasks
        .find(state, name, 200)
        .await
        .map_err(Error::from)?
        .into_iter()
        .map(TaskRow::from)
        .collect();
    let counts = tasks.counts().await.map_err(Error::from)?;
    // The broker being away must not hide the task list: show the depth as unknown instead.
    let depth = tasks.queue_depth().await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "queue depth unavailable");
        vec![("broker unavailable".to_owned(), 0)]
    });
    let names = tasks.names().await.map_err(Error::from)?;
    Ok(render(&SiteTasksTpl {
        page: Page::new(&page, "Background tasks"),
        counts,
        depth,
        names,
        state: state.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        name: name.unwrap_or_default().to_owned(),
        tasks: rows,
    }))
}

pub async fn retry_task(
    State(st): State<AppState>,
    _: SiteAdmin,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    let id = bson::oid::ObjectId::parse_str(&id).map_err(|_| Error::NotFound("task"))?;
    if !st
        .forge
        .tasks()
        .retry(TaskId(id))
        .await
        .map_err(Error::from)?
    {
        return Err(Error::conflict("not_failed", "Only failed tasks can be retried").into());
    }
    Ok(redirect_with_flash(
        &st,
        "/nf/admin/tasks",
        "Task queued again.",
    ))
}
