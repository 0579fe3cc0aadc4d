//! Project administration pages: settings, members, tools, deletion. Every handler takes a
//! [`ProjectAdmin`]: the project loaded for the viewer with the admin permission checked
//! before any form is read. The domain checks it again.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use forge_tools::acl::Role;
use forge_tools::{Error, ProjectUpdate, ToolUpdate};
use serde::Deserialize;

use crate::auth::{CsrfForm, Empty, redirect_with_flash};
use crate::ctx::ProjectAdmin;
use crate::error::PageResult;
use crate::page::render_status;
use crate::state::AppState;
use crate::views::{FormState, KindRow, MemberRow, MembersTpl, SettingsTpl, ToolRow, ToolsTpl};

fn settings_form(p: &ProjectAdmin) -> FormState {
    let p = &p.ctx.project;
    FormState::new(&[
        ("name", &p.name),
        ("summary", &p.summary),
        ("description", &p.description),
        ("private", if p.is_public() { "" } else { "on" }),
    ])
}

fn settings_view(st: &AppState, p: &ProjectAdmin, form: FormState, status: StatusCode) -> Response {
    let can_delete = p.ctx.project.neighborhood == forge_tools::projects::Neighborhood::Projects;
    let tpl = SettingsTpl {
        page: p.shell(&st.forge, "Settings", "admin"),
        form,
        can_delete,
    };
    render_status(status, &tpl)
}

pub async fn settings_page(State(st): State<AppState>, p: ProjectAdmin) -> Response {
    settings_view(&st, &p, settings_form(&p), StatusCode::OK)
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
    p: ProjectAdmin,
    CsrfForm(f): CsrfForm<SettingsForm>,
) -> PageResult {
    let upd = ProjectUpdate {
        name: f.name.clone(),
        summary: f.summary.clone(),
        description: f.description.clone(),
        private: f.private.is_some(),
    };
    match st.forge.update_project(p.viewer(), &p.ctx, upd).await {
        Ok(project) => Ok(redirect_with_flash(
            &st,
            &format!("{}admin/", project.url()),
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
                &p,
                form,
                StatusCode::UNPROCESSABLE_ENTITY,
            ))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn delete_project(
    State(st): State<AppState>,
    p: ProjectAdmin,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    st.forge.delete_project(p.viewer(), &p.ctx).await?;
    Ok(redirect_with_flash(
        &st,
        "/p/",
        &format!("Project \"{}\" deleted.", p.ctx.project.name),
    ))
}

async fn members_view(
    st: &AppState,
    p: &ProjectAdmin,
    form: FormState,
    status: StatusCode,
) -> PageResult {
    let members = st.forge.members(&p.ctx).await?;
    let tpl = MembersTpl {
        page: p.shell(&st.forge, "Members", "admin"),
        members: members.into_iter().map(MemberRow::from).collect(),
        form,
    };
    Ok(render_status(status, &tpl))
}

fn members_url(p: &ProjectAdmin) -> String {
    format!("{}admin/members", p.url())
}

pub async fn members_page(State(st): State<AppState>, p: ProjectAdmin) -> PageResult {
    let form = FormState::new(&[("role", "member")]);
    members_view(&st, &p, form, StatusCode::OK).await
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
    p: ProjectAdmin,
    CsrfForm(f): CsrfForm<MemberForm>,
) -> PageResult {
    let form = FormState::new(&[("username", &f.username), ("role", &f.role)]);
    let result = match Role::parse(&f.role) {
        Some(role) => {
            st.forge
                .set_member(p.viewer(), &p.ctx, &f.username, role)
                .await
        }
        None => Err(Error::invalid("role", "Choose admin, developer or member")),
    };
    match result {
        Ok(()) => Ok(redirect_with_flash(
            &st,
            &members_url(&p),
            &format!("{} is now {}.", f.username.trim(), f.role),
        )),
        Err(Error::Invalid(errs)) => {
            let form = form.with_errors(errs);
            members_view(&st, &p, form, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e @ Error::Conflict { .. }) => {
            let form = form.with_message(e.to_string());
            members_view(&st, &p, form, StatusCode::CONFLICT).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct MemberPath {
    username: String,
}

pub async fn remove_member(
    State(st): State<AppState>,
    p: ProjectAdmin,
    Path(MemberPath { username }): Path<MemberPath>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    match st.forge.remove_member(p.viewer(), &p.ctx, &username).await {
        Ok(()) => Ok(redirect_with_flash(
            &st,
            &members_url(&p),
            &format!("{username} removed."),
        )),
        Err(e @ Error::Conflict { .. }) => {
            let form = FormState::new(&[("role", "member")]).with_message(e.to_string());
            members_view(&st, &p, form, StatusCode::CONFLICT).await
        }
        Err(e) => Err(e.into()),
    }
}

fn tools_view(st: &AppState, p: &ProjectAdmin, form: FormState, status: StatusCode) -> Response {
    let registry = st.forge.tools();
    let tools = p
        .ctx
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
            url: format!("{}{}/", p.url(), t.mount),
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
        page: p.shell(&st.forge, "Tools", "admin"),
        tools,
        kinds,
        form,
    };
    render_status(status, &tpl)
}

fn tools_url(p: &ProjectAdmin) -> String {
    format!("{}admin/tools", p.url())
}

pub async fn tools_page(State(st): State<AppState>, p: ProjectAdmin) -> Response {
    tools_view(&st, &p, FormState::default(), StatusCode::OK)
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
    p: ProjectAdmin,
    CsrfForm(f): CsrfForm<InstallForm>,
) -> PageResult {
    let options = serde_json::json!({"url": f.url});
    let installed = st
        .forge
        .install_tool(p.viewer(), &p.ctx, &f.kind, &f.mount, &f.label, &options)
        .await;
    match installed {
        Ok(t) => Ok(redirect_with_flash(
            &st,
            &tools_url(&p),
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
            Ok(tools_view(&st, &p, form, StatusCode::UNPROCESSABLE_ENTITY))
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

#[derive(Deserialize)]
pub struct ToolPath {
    mount: String,
}

pub async fn update_tool(
    State(st): State<AppState>,
    p: ProjectAdmin,
    Path(ToolPath { mount }): Path<ToolPath>,
    CsrfForm(f): CsrfForm<ToolForm>,
) -> PageResult {
    let refused = |message: String| {
        let form = FormState::default().with_message(message);
        tools_view(&st, &p, form, StatusCode::UNPROCESSABLE_ENTITY)
    };
    let Ok(ordinal) = f.ordinal.trim().parse::<i32>() else {
        return Ok(refused("Order must be a whole number".into()));
    };
    let upd = ToolUpdate {
        label: f.label,
        mount: f.mount,
        ordinal,
    };
    match st.forge.update_tool(p.viewer(), &p.ctx, &mount, upd).await {
        Ok(t) => Ok(redirect_with_flash(
            &st,
            &tools_url(&p),
            &format!("Saved \"{}\".", t.label),
        )),
        Err(Error::Invalid(errs)) => Ok(refused(errs.to_string())),
        Err(e) => Err(e.into()),
    }
}

pub async fn uninstall_tool(
    State(st): State<AppState>,
    p: ProjectAdmin,
    Path(ToolPath { mount }): Path<ToolPath>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    st.forge.uninstall_tool(p.viewer(), &p.ctx, &mount).await?;
    Ok(redirect_with_flash(
        &st,
        &tools_url(&p),
        "Tool uninstalled.",
    ))
}
