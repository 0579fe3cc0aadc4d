//! The REST API under `/rest/` (JSON in and out, errors as `{"error": {code, message}}`), and
//! its OpenAPI description at `/rest/openapi.json`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use forge_tools::acl::Role;
use forge_tools::projects::{self, Neighborhood, NewProject, Project};
use forge_tools::tool::ToolInstance;
use forge_tools::{Error, ProjectCtx, Viewer};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// JSON body extractor whose rejections use the API error shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::response(
                "bad_request",
                "Send a JSON body with Content-Type: application/json",
            )),
            Err(JsonRejection::JsonDataError(e)) => {
                Err(ApiError::response("invalid", &e.body_text()))
            }
            Err(e) => Err(ApiError::response("bad_request", &e.body_text())),
        }
    }
}

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

async fn load(st: &AppState, viewer: &Viewer, name: &str) -> Result<ProjectCtx, ApiError> {
    Ok(st
        .forge
        .load_project(viewer, Neighborhood::Projects, name)
        .await?)
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
    Auth(viewer): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<ProjectJson>> {
    let ctx = load(&st, &viewer, &name).await?;
    let members = st
        .forge
        .members(&ctx)
        .await?
        .into_iter()
        .map(|(u, r)| MemberJson {
            username: u.username,
            role: r.as_str().into(),
        })
        .collect();
    Ok(Json(project_json(&ctx.project, &ctx.tools, Some(members))))
}

/// Deletes a project (admins). Its name stays reserved.
#[utoipa::path(delete, path = "/rest/p/{project}", params(("project" = String, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn delete_project(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path(name): Path<String>,
) -> ApiResult {
    let ctx = load(&st, &viewer, &name).await?;
    st.forge.delete_project(&viewer, &ctx).await?;
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
    Auth(viewer): Auth,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<InstallTool>,
) -> ApiResult {
    let ctx = load(&st, &viewer, &name).await?;
    let t = st
        .forge
        .install_tool(
            &viewer,
            &ctx,
            &body.kind,
            &body.mount,
            &body.label,
            &body.options,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(tool_json(&ctx.project, &t))).into_response())
}

/// Removes a tool and its content (admins).
#[utoipa::path(delete, path = "/rest/p/{project}/admin/tools/{mount}", params(("project" = String, Path), ("mount" = String, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn uninstall_tool(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path((name, mount)): Path<(String, String)>,
) -> ApiResult {
    let ctx = load(&st, &viewer, &name).await?;
    st.forge.uninstall_tool(&viewer, &ctx, &mount).await?;
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
    Auth(viewer): Auth,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<SetMember>,
) -> ApiResult<Json<MemberJson>> {
    let ctx = load(&st, &viewer, &name).await?;
    // Check the permission before looking at the body, so outsiders learn nothing from errors.
    ctx.authorize(forge_tools::acl::perm::ADMIN)?;
    let role = Role::parse(&body.role)
        .ok_or_else(|| Error::invalid("role", "role must be admin, developer or member"))?;
    st.forge
        .set_member(&viewer, &ctx, &body.username, role)
        .await?;
    Ok(Json(MemberJson {
        username: body.username.trim().to_owned(),
        role: role.as_str().into(),
    }))
}

/// Removes a member (admins).
#[utoipa::path(delete, path = "/rest/p/{project}/admin/members/{username}", params(("project" = String, Path), ("username" = String, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
pub async fn remove_member(
    State(st): State<AppState>,
    Auth(viewer): Auth,
    Path((name, username)): Path<(String, String)>,
) -> ApiResult {
    let ctx = load(&st, &viewer, &name).await?;
    st.forge.remove_member(&viewer, &ctx, &username).await?;
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
    Json(ApiDoc::openapi())
}

/// `/rest/p/<project>/<mount>/...`: loads the project and tool as the caller, checks read
/// access, and hands the request to the tool kind's REST router.
pub async fn tool_dispatch(
    State(st): State<AppState>,
    page: crate::auth::PageCtx,
    Path(params): Path<std::collections::HashMap<String, String>>,
    req: Request,
) -> ApiResult {
    let (Some(name), Some(mount)) = (params.get("name"), params.get("mount")) else {
        return Err(Error::NotFound("resource").into());
    };
    let ctx = load(&st, &page.viewer, name).await?;
    // Nested under `/rest`: the path here is `/p/<project>/<mount>/...`.
    Ok(crate::tools::dispatch(&st.tool_api_routers, ctx, mount, page, req, 3).await?)
}

/// Unknown `/rest/...` paths answer in the API's error shape.
pub async fn not_found() -> ApiError {
    ApiError(Error::NotFound("resource"))
}
