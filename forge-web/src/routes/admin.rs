//! Project administration pages: settings, members, tools, deletion. Every handler loads the
//! project as the viewer and the domain checks the admin permission.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use forge_tools::acl::{Role, perm};
use forge_tools::{Error, ProjectCtx, ProjectUpdate, ToolUpdate};
use serde::Deserialize;

use super::{Nbhd, load};
use crate::auth::{CsrfForm, PageCtx, redirect_with_flash};
use crate::error::{PageError, PageResult};
use crate::routes::accounts::Empty;
use crate::state::AppState;
use crate::views::{
    FormState, KindRow, MemberRow, MembersTpl, Page, SettingsTpl, ToolRow, ToolsTpl, render_status,
};

async fn load_admin(
    st: &AppState,
    page: &PageCtx,
    nbhd: Nbhd,
    name: &str,
) -> Result<ProjectCtx, PageError> {
    let ctx = load(&st.forge, page, nbhd, name).await?;
    ctx.authorize(perm::ADMIN)
        .map_err(|e| PageError::from(e).with_next(&page.path))?;
    Ok(ctx)
}

fn settings_form(ctx: &ProjectCtx) -> FormState {
    let p = &ctx.project;
    FormState::new(&[
        ("name", &p.name),
        ("summary", &p.summary),
        ("description", &p.description),
        ("private", if p.is_public() { "" } else { "on" }),
    ])
}

fn settings_view(
    st: &AppState,
    page: &PageCtx,
    ctx: &ProjectCtx,
    form: FormState,
    status: StatusCode,
) -> axum::response::Response {
    let can_delete = ctx.project.neighborhood == forge_tools::projects::Neighborhood::Projects;
    let tpl = SettingsTpl {
        page: Page::new(page, "Settings").in_project(&st.forge, ctx, "admin"),
        form,
        can_delete,
    };
    render_status(status, &tpl)
}

pub async fn settings_page(
    State(st): State<AppState>,
    Extension(nbhd): Extension<Nbhd>,
    page: PageCtx,
    Path(name): Path<String>,
) -> PageResult {
    let ctx = load_admin(&st, &page, nbhd, &name).await?;
    Ok(settings_view(
        &st,
        &page,
        &ctx,
        settings_form(&ctx),
        StatusCode::OK,
    ))
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    private: Option<String>,
}

pub async fn save_settings(
    State(st): State<AppState>,
    Extension(nbhd): Extension<Nbhd>,
    page: PageCtx,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<SettingsForm>,
) -> PageResult {
    let ctx = load_admin(&st, &page, nbhd, &name).await?;
    let upd = ProjectUpdate {
        name: f.name.clone(),
        summary: f.summary.clone(),
        description: f.description.clone(),
        private: f.private.is_some(),
    };
    match st.forge.update_project(&page.viewer, &ctx, upd).await {
        Ok(p) => Ok(redirect_with_flash(
            &st,
            &format!("{}admin/", p.url()),
            "Settings saved.",
        )),
        Err(Error::Invalid(errs)) => {
            let form = FormState::new(&[
                ("name", &f.name),
                ("summary", &f.summary),
                ("description", &f.description),
                ("private", if f.private.is_some() { "on" } else { "" }),
            ])
            .with_errors(errs);
            Ok(settings_view(
                &st,
                &page,
                &ctx,
                form,
                StatusCode::UNPROCESSABLE_ENTITY,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_project(
    State(st): State<AppState>,
    Extension(nbhd): Extension<Nbhd>,
    page: PageCtx,
    Path(name): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    let ctx = load_admin(&st, &page, nbhd, &name).await?;
    st.forge.delete_project(&page.viewer, &ctx).await?;
    Ok(redirect_with_flash(
        &st,
        "/p/",
        &format!("Project \"{}\" deleted.", ctx.project.name),
    ))
}

async fn members_view(
    st: &AppState,
    page: &PageCtx,
    ctx: &ProjectCtx,
    form: FormState,
    status: StatusCode,
) -> PageResult {
    let members = st
        .forge
        .members(ctx)
        .await?
        .into_iter()
        .map(|(u, r)| MemberRow {
            username: u.username,
            display_name: u.display_name,
            role: r.as_str().into(),
        })
        .collect();
    let tpl = MembersTpl {
        page: Page::new(page, "Members").in_project(&st.forge, ctx, "admin"),
        members,
        form,
    };
    Ok(render_status(status, &tpl))
}

pub async fn members_page(
    State(st): State<AppState>,
    Extension(nbhd): Extension<Nbhd>,
    page: PageCtx,
    Path(name): Path<String>,
) -> PageResult {
    let ctx = load_admin(&st, &page, nbhd, &name).await?;
    members_view(
        &st,
        &page,
        &ctx,
        FormState::new(&[("role", "member")]),
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
}

pub async fn set_member(
    State(st): State<AppState>,
    Extension(nbhd): Extension<Nbhd>,
    page: PageCtx,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<MemberForm>,
) -> PageResult {
    let ctx = load_admin(&st, &page, nbhd, &name).await?;
    let form = FormState::new(&[("username", &f.username), ("role", &f.role)]);
    let result = match Role::parse(&f.role) {
        Some(role) => {
            st.forge
                .set_member(&page.viewer, &ctx, &f.username, role)
                .await
        }
        None => Err(Error::invalid("role", "Choose admin, developer or member")),
    };
    match result {
        Ok(()) => Ok(redirect_with_flash(
            &st,
            &format!("{}admin/members", ctx.project.url()),
            &format!("{} is now {}.", f.username.trim(), f.role),
        )),
        Err(Error::Invalid(errs)) => {
            members_view(
                &st,
                &page,
                &ctx,
                form.with_errors(errs),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e @ Error::Conflict { .. }) => {
            members_view(
                &st,
                &page,
                &ctx,
                form.with_message(e.to_string()),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn remove_member(
    State(st): State<AppState>,
    Extension(nbhd): Extension<Nbhd>,
    page: PageCtx,
    Path((name, username)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    let ctx = load_admin(&st, &page, nbhd, &name).await?;
    match st.forge.remove_member(&page.viewer, &ctx, &username).await {
        Ok(()) => Ok(redirect_with_flash(
            &st,
            &format!("{}admin/members", ctx.project.url()),
            &format!("{username} removed."),
        )),
        Err(e @ Error::Conflict { .. }) => {
            members_view(
                &st,
                &page,
                &ctx,
                FormState::new(&[("role", "member")]).with_message(e.to_string()),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

fn tools_view(
    st: &AppState,
    page: &PageCtx,
    ctx: &ProjectCtx,
    form: FormState,
    status: StatusCode,
) -> axum::response::Response {
    let registry = st.forge.tools();
    let tools = ctx
        .tools
        .iter()
        .map(|t| ToolRow {
            kind: t.kind.clone(),
            kind_title: registry
                .get(&t.kind)
                .map_or_else(|| t.kind.clone(), |k| k.title().to_owned()),
            mount: t.mount.clone(),
            label: t.label.clone(),
            ordinal: t.ordinal,
            url: format!("{}{}/", ctx.project.url(), t.mount),
        })
        .collect();
    let kinds = registry
        .all()
        .map(|k| KindRow {
            kind: k.kind().into(),
            title: k.title().into(),
            needs_url: k.kind() == "link",
        })
        .collect();
    let tpl = ToolsTpl {
        page: Page::new(page, "Tools").in_project(&st.forge, ctx, "admin"),
        tools,
        kinds,
        form,
    };
    render_status(status, &tpl)
}

pub async fn tools_page(
    State(st): State<AppState>,
    Extension(nbhd): Extension<Nbhd>,
    page: PageCtx,
    Path(name): Path<String>,
) -> PageResult {
    let ctx = load_admin(&st, &page, nbhd, &name).await?;
    Ok(tools_view(
        &st,
        &page,
        &ctx,
        FormState::default(),
        StatusCode::OK,
    ))
}

#[derive(Deserialize)]
pub struct InstallForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    mount: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    url: String,
}

pub async fn install_tool(
    State(st): State<AppState>,
    Extension(nbhd): Extension<Nbhd>,
    page: PageCtx,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<InstallForm>,
) -> PageResult {
    let ctx = load_admin(&st, &page, nbhd, &name).await?;
    let options = serde_json::json!({"url": f.url});
    match st
        .forge
        .install_tool(&page.viewer, &ctx, &f.kind, &f.mount, &f.label, &options)
        .await
    {
        Ok(t) => Ok(redirect_with_flash(
            &st,
            &format!("{}admin/tools", ctx.project.url()),
            &format!("Installed \"{}\".", t.label),
        )),
        Err(Error::Invalid(errs)) => {
            let form = FormState::new(&[
                ("kind", &f.kind),
                ("mount", &f.mount),
                ("label", &f.label),
                ("url", &f.url),
            ])
            .with_errors(errs);
            Ok(tools_view(
                &st,
                &page,
                &ctx,
                form,
                StatusCode::UNPROCESSABLE_ENTITY,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct ToolForm {
    #[serde(default)]
    label: String,
    #[serde(default)]
    mount: String,
    #[serde(default)]
    ordinal: String,
}

pub async fn update_tool(
    State(st): State<AppState>,
    Extension(nbhd): Extension<Nbhd>,
    page: PageCtx,
    Path((name, mount)): Path<(String, String)>,
    CsrfForm(f): CsrfForm<ToolForm>,
) -> PageResult {
    let ctx = load_admin(&st, &page, nbhd, &name).await?;
    let Ok(ordinal) = f.ordinal.trim().parse::<i32>() else {
        let form = FormState::default().with_message("Order must be a whole number");
        return Ok(tools_view(
            &st,
            &page,
            &ctx,
            form,
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    };
    let upd = ToolUpdate {
        label: f.label,
        mount: f.mount,
        ordinal,
    };
    match st.forge.update_tool(&page.viewer, &ctx, &mount, upd).await {
        Ok(t) => Ok(redirect_with_flash(
            &st,
            &format!("{}admin/tools", ctx.project.url()),
            &format!("Saved \"{}\".", t.label),
        )),
        Err(Error::Invalid(errs)) => {
            let form = FormState::default().with_message(errs.to_string());
            Ok(tools_view(
                &st,
                &page,
                &ctx,
                form,
                StatusCode::UNPROCESSABLE_ENTITY,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn uninstall_tool(
    State(st): State<AppState>,
    Extension(nbhd): Extension<Nbhd>,
    page: PageCtx,
    Path((name, mount)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    let ctx = load_admin(&st, &page, nbhd, &name).await?;
    st.forge.uninstall_tool(&page.viewer, &ctx, &mount).await?;
    Ok(redirect_with_flash(
        &st,
        &format!("{}admin/tools", ctx.project.url()),
        "Tool uninstalled.",
    ))
}
