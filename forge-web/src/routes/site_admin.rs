//! Site administration (`/nf/admin/`): users, projects and background tasks. Site admins only.

use axum::extract::{Path, State};
use forge_tasks::TaskId;
use forge_tools::{Error, projects, users};

use crate::auth::{CsrfForm, PageCtx, redirect_with_flash};
use crate::error::{PageError, PageResult};
use crate::routes::accounts::Empty;
use crate::state::AppState;
use crate::views::{Page, ProjectCard, SiteAdminTpl, TaskRow, UserRow, date, render};

fn require_site_admin(page: &PageCtx) -> Result<(), PageError> {
    let user = page
        .viewer
        .require_user()
        .map_err(|e| PageError::from(e).with_next(&page.path))?;
    if user.site_admin {
        Ok(())
    } else {
        Err(Error::Forbidden.into())
    }
}

pub async fn index(State(st): State<AppState>, page: PageCtx) -> PageResult {
    require_site_admin(&page)?;
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
        .list(None, 50)
        .await
        .map_err(Error::from)?
        .into_iter()
        .map(|t| TaskRow {
            id: t.id.to_string(),
            name: t.name,
            state: t.state.as_str().into(),
            attempts: t.attempts,
            created: date(t.created),
            last_error: t.last_error.unwrap_or_default(),
        })
        .collect();
    Ok(render(&SiteAdminTpl {
        page: Page::new(&page, "Site admin"),
        users,
        projects,
        task_counts,
        tasks: recent,
    }))
}

pub async fn retry_task(
    State(st): State<AppState>,
    page: PageCtx,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    require_site_admin(&page)?;
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
    Ok(redirect_with_flash(&st, "/nf/admin/", "Task queued again."))
}
