//! The REST API under `/rest/` (JSON in and out, errors as `{"error": {code, message}}`), and
//! its OpenAPI description at `/rest/openapi.json`.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use forge_tools::Error;
use forge_tools::acl::Role;
use forge_tools::projects::{self, Neighborhood, NewProject, Project};
use forge_tools::tool::ToolInstance;
use forge_tools::users::User;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::auth::Auth;
use crate::ctx::{ProjectAdmin, ProjectReq};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::routes::tools::MountPath;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct ToolJson {
    kind: String,
    mount: String,
    label: String,
    url: String,
}

#[derive(Serialize, ToSchema)]
pub struct MemberJson {
    username: String,
    role: String,
}

impl From<(User, Role)> for MemberJson {
    fn from((u, r): (User, Role)) -> Self {
        Self {
            username: u.username,
            role: r.as_str().into(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ProjectJson {
    shortname: String,
    neighborhood: String,
    name: String,
    summary: String,
    description: String,
    private: bool,
    url: String,
    tools: Vec<ToolJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    members: Option<Vec<MemberJson>>,
}

fn tool_json(p: &Project, t: &ToolInstance) -> ToolJson {
    ToolJson {
        kind: t.kind.clone(),
        mount: t.mount.clone(),
        label: t.label.clone(),
        url: format!("{}{}/", p.url(), t.mount),
    }
}

fn project_json(
    p: &Project,
    tools: &[ToolInstance],
    members: Option<Vec<MemberJson>>,
) -> ProjectJson {
    ProjectJson {
        shortname: p.shortname.clone(),
        neighborhood: p.neighborhood.prefix().into(),
        name: p.name.clone(),
        summary: p.summary.clone(),
        description: p.description.clone(),
        private: !p.is_public(),
        url: p.url(),
        tools: tools.iter().map(|t| tool_json(p, t)).collect(),
        members,
    }
}

#[derive(Serialize, ToSchema)]
pub struct ProjectList {
    projects: Vec<ProjectJson>,
}

/// Projects the caller may read.
#[utoipa::path(get, path = "/rest/p", responses((status = 200, body = ProjectList)))]
pub async fn list_projects(
    State(st): State<AppState>,
    Auth(viewer): Auth,
) -> ApiResult<Json<ProjectList>> {
    let list = projects::list_visible(st.forge.db(), viewer.user_id(), viewer.is_site_admin(), 500)
        .await?;
    Ok(Json(ProjectList {
        projects: list.iter().map(|p| project_json(p, &[], None)).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct CreateProject {
    shortname: String,
    name: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    private: bool,
}

/// Creates a project owned by the caller.
#[utoipa::path(post, path = "/rest/p", request_body = CreateProject,
    responses((status = 201, body = ProjectJson), (status = 401), (status = 409), (status = 422)))]
pub async fn create_project(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    ApiJson(body): ApiJson<CreateProject>,
) -> ApiResult {
    viewer.require_user()?;
    let new = NewProject {
        neighborhood: Neighborhood::Projects,
        shortname: body.shortname.trim().to_owned(),
        name: body.name,
        summary: body.summary,
        private: body.private,
    };
    match st.forge.create_project(&viewer, new).await {
        Ok(p) => {
            let tools = forge_tools::tool::instance::list(st.forge.db(), p.id).await?;
            Ok((StatusCode::CREATED, Json(project_json(&p, &tools, None))).into_response())
        }
        // A name that is well-formed but taken is a conflict, not a validation failure.
        Err(Error::Invalid(f))
            if f.0.len() == 1
                && f.get("shortname")
                    .is_some_and(|m| m.contains("already taken")) =>
        {
            Err(Error::conflict("taken", f.get("shortname").unwrap_or_default()).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// A project with its tools (and members, for those who may administer it).
#[utoipa::path(get, path = "/rest/p/{project}", params(("project" = String, Path)),
    responses((status = 200, body = ProjectJson), (status = 404)))]
pub async fn get_project(
    State(st): State<AppState>,
    p: ProjectReq,
) -> ApiResult<Json<ProjectJson>> {
    let members = st.forge.members(&p.ctx).await?;
    let members = members.into_iter().map(MemberJson::from).collect();
    Ok(Json(project_json(
        &p.ctx.project,
        &p.ctx.tools,
        Some(members),
    )))
}

/// Deletes a project (admins). Its name stays reserved.
#[utoipa::path(delete, path = "/rest/p/{project}", params(("project" = String, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn delete_project(State(st): State<AppState>, p: ProjectAdmin) -> ApiResult {
    st.forge.delete_project(p.viewer(), &p.ctx).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct InstallTool {
    kind: String,
    #[serde(default)]
    mount: String,
    #[serde(default)]
    label: String,
    /// Tool-specific options (e.g. `{"url": ...}` for a link).
    #[serde(default)]
    #[schema(value_type = Object)]
    options: serde_json::Value,
}

/// Installs a tool in the project (admins).
#[utoipa::path(post, path = "/rest/p/{project}/admin/tools", params(("project" = String, Path)), request_body = InstallTool,
    responses((status = 201, body = ToolJson), (status = 403), (status = 404), (status = 422)))]
pub async fn install_tool(
    State(st): State<AppState>,
    p: ProjectAdmin,
    ApiJson(body): ApiJson<InstallTool>,
) -> ApiResult {
    let (kind, mount, label) = (&body.kind, &body.mount, &body.label);
    let t = st
        .forge
        .install_tool(p.viewer(), &p.ctx, kind, mount, label, &body.options)
        .await?;
    Ok((StatusCode::CREATED, Json(tool_json(&p.ctx.project, &t))).into_response())
}

/// Removes a tool and its content (admins).
#[utoipa::path(delete, path = "/rest/p/{project}/admin/tools/{mount}", params(("project" = String, Path), ("mount" = String, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn uninstall_tool(
    State(st): State<AppState>,
    p: ProjectAdmin,
    Path(MountPath { mount }): Path<MountPath>,
) -> ApiResult {
    st.forge.uninstall_tool(p.viewer(), &p.ctx, &mount).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct SetMember {
    username: String,
    /// `admin`, `developer` or `member`.
    role: String,
}

/// Adds a member or changes a member's role (admins).
#[utoipa::path(post, path = "/rest/p/{project}/admin/members", params(("project" = String, Path)), request_body = SetMember,
    responses((status = 200, body = MemberJson), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn set_member(
    State(st): State<AppState>,
    p: ProjectAdmin,
    ApiJson(body): ApiJson<SetMember>,
) -> ApiResult<Json<MemberJson>> {
    // The admin permission is checked before the body is read (`ProjectAdmin`), so outsiders
    // learn nothing from the body's errors.
    let role = Role::parse(&body.role)
        .ok_or_else(|| Error::invalid("role", "role must be admin, developer or member"))?;
    st.forge
        .set_member(p.viewer(), &p.ctx, &body.username, role)
        .await?;
    Ok(Json(MemberJson {
        username: body.username.trim().to_owned(),
        role: role.as_str().into(),
    }))
}

#[derive(Deserialize)]
pub struct MemberPath {
    username: String,
}

/// Removes a member (admins).
#[utoipa::path(delete, path = "/rest/p/{project}/admin/members/{username}", params(("project" = String, Path), ("username" = String, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
pub async fn remove_member(
    State(st): State<AppState>,
    p: ProjectAdmin,
    Path(MemberPath { username }): Path<MemberPath>,
) -> ApiResult {
    st.forge
        .remove_member(p.viewer(), &p.ctx, &username)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Forge REST API",
        description = "Projects, tools, members and search. Authenticate with the session cookie or `Authorization: Bearer <token>`. Errors: `{\"error\": {\"code\", \"message\"}}`."
    ),
    paths(
        list_projects,
        create_project,
        get_project,
        delete_project,
        install_tool,
        uninstall_tool,
        set_member,
        remove_member,
        crate::routes::search::api
    ),
    components(schemas(
        ProjectJson,
        ProjectList,
        ToolJson,
        MemberJson,
        CreateProject,
        InstallTool,
        SetMember,
        crate::routes::search::SearchJson,
        crate::routes::search::HitJson,
        crate::routes::search::FacetsJson
    ))
)]
pub struct ApiDoc;

pub async fn openapi() -> impl IntoResponse {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::routes::events::EventsDoc::openapi());
    doc.merge(crate::routes::stats::StatsDoc::openapi());
    doc.merge(crate::routes::webhooks::WebhooksDoc::openapi());
    for tool in crate::tools::openapi_docs() {
        doc.merge(tool);
    }
    Json(doc)
}

/// `/rest/p/<project>/<mount>/...`: loads the project and tool as the caller, checks read
/// access, and hands the request to the tool kind's REST router.
pub async fn tool_dispatch(
    State(st): State<AppState>,
    project: ProjectReq,
    Path(MountPath { mount }): Path<MountPath>,
    req: Request,
) -> ApiResult {
    // Nested under `/rest`: the path here is `/p/<project>/<mount>/...`.
    Ok(crate::tools::dispatch(&st.tool_api_routers, project, &mount, req, 3).await?)
}

/// Unknown `/rest/...` paths answer in the API's error shape.
pub async fn not_found() -> ApiError {
    ApiError(Error::NotFound("resource"))
}
