//! A project's webhooks, for its admins: the admin page (`/p/<project>/admin/webhooks`: list,
//! add, delete, each webhook's delivery log with a redeliver button) and the REST calls
//! (`GET|POST /rest/p/<project>/admin/webhooks`, `DELETE .../webhooks/<id>`,
//! `GET .../webhooks/<id>/deliveries`, `POST .../deliveries/<delivery>/redeliver`). Every
//! handler takes a [`ProjectAdmin`] (the admin permission checked before any body is read);
//! the domain (`forge_tools::webhooks`) checks again. The secret is never shown nor returned.

use askama::Template;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use forge_tools::Error;
use forge_tools::webhooks::{self, Delivery, Listed, NewWebhook};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::auth::{CsrfForm, Empty, redirect_with_flash};
use crate::ctx::ProjectAdmin;
use crate::error::{ApiResult, PageResult};
use crate::extract::ApiJson;
use crate::page::{Page, render_status};
use crate::state::AppState;
use crate::views::{FormState, date};

/// The admin pages' routes (merged into each neighborhood's project routes).
pub fn page_routes() -> Router<AppState> {
    Router::new()
        .route("/{name}/admin/webhooks", get(page).post(add))
        .route("/{name}/admin/webhooks/{id}", get(log_page))
        .route("/{name}/admin/webhooks/{id}/delete", post(remove))
        .route(
            "/{name}/admin/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(redeliver),
        )
}

/// The REST routes (merged into `/rest`).
pub fn rest_routes() -> Router<AppState> {
    Router::new()
        .route("/p/{name}/admin/webhooks", get(api_list).post(api_create))
        .route(
            "/p/{name}/admin/webhooks/{id}",
            axum::routing::delete(api_delete),
        )
        .route(
            "/p/{name}/admin/webhooks/{id}/deliveries",
            get(api_deliveries),
        )
        .route(
            "/p/{name}/admin/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(api_redeliver),
        )
}

#[derive(Deserialize)]
pub struct HookPath {
    id: String,
}

#[derive(Deserialize)]
pub struct DeliveryPath {
    id: String,
    delivery: String,
}

fn rfc3339(d: bson::DateTime) -> String {
    d.try_to_rfc3339_string().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// REST

/// A webhook (its secret is never returned).
#[derive(Serialize, ToSchema)]
pub struct WebhookJson {
    id: String,
    url: String,
    events: Vec<String>,
    /// The tool it is limited to; absent: every tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    mount: Option<String>,
    /// It was limited to a tool that is no longer installed (it hears nothing).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tool_missing: bool,
    /// Who added it: deliveries go while they may read what they are about.
    created_by: String,
    created: String,
}

impl From<Listed> for WebhookJson {
    fn from(l: Listed) -> Self {
        Self {
            id: l.hook.id.to_hex(),
            url: l.hook.url,
            events: l.hook.events,
            mount: l.mount,
            tool_missing: l.tool_missing,
            created_by: l.created_by,
            created: rfc3339(l.hook.created),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    webhooks: Vec<WebhookJson>,
}

#[derive(Deserialize, ToSchema)]
pub struct CreateWebhook {
    /// http:// or https://, at most 2048 characters.
    url: String,
    /// Signs each delivery (`X-Forge-Signature-256`); at most 256 characters.
    secret: String,
    /// Events: `push`, `tag`, `wiki`, `ticket`, `forum_post` (those the installed tool kinds
    /// announce).
    events: Vec<String>,
    /// Only this tool's events (its mount point).
    #[serde(default)]
    mount: Option<String>,
}

/// A request header as sent.
#[derive(Serialize, ToSchema)]
pub struct HeaderJson {
    name: String,
    value: String,
}

/// One attempt of a delivery.
#[derive(Serialize, ToSchema)]
pub struct AttemptJson {
    /// 0 for the first delivery, one more per redelivery.
    round: i32,
    at: String,
    /// The URL that answered (after redirects).
    url: String,
    request_headers: Vec<HeaderJson>,
    /// The receiver's status code, when it answered.
    status: Option<i32>,
    /// The first bytes of the answer.
    response: String,
    duration_ms: i64,
    error: Option<String>,
    /// The state this attempt left: `delivered`, `retrying`, `failed` or `refused`.
    outcome: String,
}

/// A delivery: the body sent (parsed) and every attempt, oldest first.
#[derive(Serialize, ToSchema)]
pub struct DeliveryJson {
    /// Also the `X-Forge-Delivery` header.
    id: String,
    event: String,
    action: String,
    /// `queued`, `retrying`, `delivered`, `failed` or `refused`.
    state: String,
    round: i32,
    created: String,
    #[schema(value_type = Object)]
    payload: serde_json::Value,
    attempts: Vec<AttemptJson>,
}

impl From<Delivery> for DeliveryJson {
    fn from(d: Delivery) -> Self {
        Self {
            payload: serde_json::from_str(&d.body).unwrap_or(serde_json::Value::Null),
            id: d.id,
            event: d.event,
            action: d.action,
            state: d.state.as_str().to_owned(),
            round: d.round,
            created: rfc3339(d.created),
            attempts: d
                .attempts
                .into_iter()
                .map(|a| AttemptJson {
                    round: a.round,
                    at: rfc3339(a.at),
                    url: a.url,
                    request_headers: a
                        .request_headers
                        .into_iter()
                        .map(|h| HeaderJson {
                            name: h.name,
                            value: h.value,
                        })
                        .collect(),
                    status: a.status,
                    response: a.response,
                    duration_ms: a.duration_ms,
                    error: a.error,
                    outcome: a.outcome.as_str().to_owned(),
                })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    deliveries: Vec<DeliveryJson>,
}

/// The project's webhooks (admins).
#[utoipa::path(get, path = "/rest/p/{project}/admin/webhooks", tag = "webhooks",
    params(("project" = String, Path)),
    responses((status = 200, body = WebhookList), (status = 403), (status = 404)))]
pub async fn api_list(State(st): State<AppState>, p: ProjectAdmin) -> ApiResult<Json<WebhookList>> {
    let hooks = webhooks::list(&st.forge, &p.ctx).await?;
    Ok(Json(WebhookList {
        webhooks: hooks.into_iter().map(WebhookJson::from).collect(),
    }))
}

/// Adds a webhook (admins); it is owned by the caller. 422 with a message per field.
#[utoipa::path(post, path = "/rest/p/{project}/admin/webhooks", tag = "webhooks",
    params(("project" = String, Path)), request_body = CreateWebhook,
    responses((status = 201, body = WebhookJson), (status = 403), (status = 404), (status = 422)))]
pub async fn api_create(
    State(st): State<AppState>,
    p: ProjectAdmin,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> ApiResult {
    let new = NewWebhook {
        url: body.url,
        secret: body.secret,
        events: body.events,
        mount: body.mount,
    };
    let hook = webhooks::create(&st.forge, p.viewer(), &p.ctx, new).await?;
    Ok((StatusCode::CREATED, Json(WebhookJson::from(hook))).into_response())
}

/// Removes a webhook and its delivery log (admins).
#[utoipa::path(delete, path = "/rest/p/{project}/admin/webhooks/{id}", tag = "webhooks",
    params(("project" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn api_delete(
    State(st): State<AppState>,
    p: ProjectAdmin,
    Path(HookPath { id }): Path<HookPath>,
) -> ApiResult {
    webhooks::delete(&st.forge, p.viewer(), &p.ctx, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A webhook's latest deliveries, newest first, with their attempts (admins).
#[utoipa::path(get, path = "/rest/p/{project}/admin/webhooks/{id}/deliveries", tag = "webhooks",
    params(("project" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = DeliveryList), (status = 403), (status = 404)))]
pub async fn api_deliveries(
    State(st): State<AppState>,
    p: ProjectAdmin,
    Path(HookPath { id }): Path<HookPath>,
) -> ApiResult<Json<DeliveryList>> {
    let list = webhooks::deliveries(&st.forge, &p.ctx, &id).await?;
    Ok(Json(DeliveryList {
        deliveries: list.into_iter().map(DeliveryJson::from).collect(),
    }))
}

/// Sends a logged delivery again: a new round of attempts, the same id and body (admins).
#[utoipa::path(post, path = "/rest/p/{project}/admin/webhooks/{id}/deliveries/{delivery}/redeliver", tag = "webhooks",
    params(("project" = String, Path), ("id" = String, Path), ("delivery" = String, Path)),
    responses((status = 202, body = DeliveryJson), (status = 403), (status = 404)))]
pub async fn api_redeliver(
    State(st): State<AppState>,
    p: ProjectAdmin,
    Path(DeliveryPath { id, delivery }): Path<DeliveryPath>,
) -> ApiResult {
    let d = webhooks::redeliver(&st.forge, p.viewer(), &p.ctx, &id, &delivery).await?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryJson::from(d))).into_response())
}

#[derive(OpenApi)]
#[openapi(
    paths(api_list, api_create, api_delete, api_deliveries, api_redeliver),
    components(schemas(
        WebhookJson,
        WebhookList,
        CreateWebhook,
        HeaderJson,
        AttemptJson,
        DeliveryJson,
        DeliveryList
    ))
)]
pub struct WebhooksDoc;

// ---------------------------------------------------------------------------------------
// Pages

pub struct HookRow {
    pub id: String,
    pub url: String,
    pub events: String,
    pub tool: String,
    pub created_by: String,
    pub created: String,
}

impl From<&Listed> for HookRow {
    fn from(l: &Listed) -> Self {
        Self {
            id: l.hook.id.to_hex(),
            url: l.hook.url.clone(),
            events: l.hook.events.join(", "),
            tool: match (&l.mount, l.tool_missing) {
                (Some(m), _) => m.clone(),
                (None, true) => "(removed tool)".into(),
                (None, false) => "any".into(),
            },
            created_by: l.created_by.clone(),
            created: date(l.hook.created),
        }
    }
}

pub struct EventChoice {
    pub name: &'static str,
    pub checked: bool,
}

pub struct ToolChoice {
    pub mount: String,
    pub label: String,
    pub selected: bool,
}

pub struct AttemptRow {
    pub at: String,
    pub url: String,
    pub status: String,
    pub duration: String,
    pub outcome: String,
    pub error: String,
    pub response: String,
    pub headers: String,
}

pub struct DeliveryRow {
    pub id: String,
    pub event: String,
    pub action: String,
    pub state: String,
    pub created: String,
    pub payload: String,
    pub attempts: Vec<AttemptRow>,
}

impl From<Delivery> for DeliveryRow {
    fn from(d: Delivery) -> Self {
        let payload = serde_json::from_str::<serde_json::Value>(&d.body)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or(d.body);
        // A long payload (a push of many commits) shows its start; REST has all of it.
        let payload = match payload.char_indices().nth(PAYLOAD_SHOWN_CHARS) {
            Some((at, _)) => format!("{}\n…", &payload[..at]),
            None => payload,
        };
        Self {
            id: d.id,
            event: d.event,
            action: d.action,
            state: d.state.as_str().to_owned(),
            created: date(d.created),
            payload,
            attempts: d
                .attempts
                .into_iter()
                .rev()
                .map(|a| AttemptRow {
                    at: a.at.try_to_rfc3339_string().unwrap_or_else(|_| date(a.at)),
                    url: a.url,
                    status: a.status.map(|s| s.to_string()).unwrap_or_default(),
                    duration: format!("{} ms", a.duration_ms),
                    outcome: a.outcome.as_str().to_owned(),
                    error: a.error.unwrap_or_default(),
                    response: a.response,
                    headers: a
                        .request_headers
                        .iter()
                        .map(|h| format!("{}: {}", h.name, h.value))
                        .collect::<Vec<_>>()
                        .join("\n"),
                })
                .collect(),
        }
    }
}

/// How much of a payload the log page shows, in characters.
const PAYLOAD_SHOWN_CHARS: usize = 16_384;

/// One webhook's delivery log.
pub struct HookLog {
    pub hook: HookRow,
    pub deliveries: Vec<DeliveryRow>,
}

#[derive(Template)]
#[template(path = "admin/webhooks.html")]
pub struct WebhooksTpl {
    pub page: Page,
    /// `/p/<project>/admin/webhooks`.
    pub base: String,
    pub hooks: Vec<HookRow>,
    pub events: Vec<EventChoice>,
    pub tools: Vec<ToolChoice>,
    pub form: FormState,
    pub max: u64,
    pub selected: Option<HookLog>,
}

fn base_url(p: &ProjectAdmin) -> String {
    format!("{}admin/webhooks", p.url())
}

/// What the add form was sent, as it was typed.
#[derive(Default)]
struct AddForm {
    url: String,
    secret: String,
    events: Vec<String>,
    mount: String,
}

impl AddForm {
    /// The form's fields; `events` may repeat (one per checked box).
    fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        let mut f = Self::default();
        for (k, v) in pairs {
            match k.as_str() {
                "url" => f.url = v,
                "secret" => f.secret = v,
                "events" => f.events.push(v),
                "mount" => f.mount = v,
                _ => {}
            }
        }
        f
    }
}

async fn view(
    st: &AppState,
    p: &ProjectAdmin,
    form: FormState,
    checked: &[String],
    selected: Option<HookLog>,
    status: StatusCode,
) -> PageResult {
    let hooks = webhooks::list(&st.forge, &p.ctx).await?;
    let events = webhooks::known_events(&st.forge)
        .into_iter()
        .map(|name| EventChoice {
            name,
            checked: checked.iter().any(|c| c == name),
        })
        .collect();
    let registry = st.forge.tools();
    let tools = p
        .ctx
        .tools
        .iter()
        .filter(|t| {
            registry
                .get(&t.kind)
                .is_some_and(|k| !k.webhook_events().is_empty())
        })
        .map(|t| ToolChoice {
            selected: form.value("mount") == t.mount,
            mount: t.mount.clone(),
            label: t.label.clone(),
        })
        .collect();
    let tpl = WebhooksTpl {
        page: p.shell(&st.forge, "Webhooks", "admin"),
        base: base_url(p),
        hooks: hooks.iter().map(HookRow::from).collect(),
        events,
        tools,
        form,
        max: webhooks::MAX_PER_PROJECT,
        selected,
    };
    Ok(render_status(status, &tpl))
}

pub async fn page(State(st): State<AppState>, p: ProjectAdmin) -> PageResult {
    view(&st, &p, FormState::default(), &[], None, StatusCode::OK).await
}

pub async fn log_page(
    State(st): State<AppState>,
    p: ProjectAdmin,
    Path(HookPath { id }): Path<HookPath>,
) -> PageResult {
    let hook = webhooks::get(&st.forge, &p.ctx, &id).await?;
    let deliveries = webhooks::deliveries(&st.forge, &p.ctx, &id).await?;
    let selected = HookLog {
        hook: HookRow::from(&hook),
        deliveries: deliveries.into_iter().map(DeliveryRow::from).collect(),
    };
    view(
        &st,
        &p,
        FormState::default(),
        &[],
        Some(selected),
        StatusCode::OK,
    )
    .await
}

pub async fn add(
    State(st): State<AppState>,
    p: ProjectAdmin,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let f = AddForm::from_pairs(pairs);
    let new = NewWebhook {
        url: f.url.clone(),
        secret: f.secret.clone(),
        events: f.events.clone(),
        mount: Some(f.mount.clone()),
    };
    match webhooks::create(&st.forge, p.viewer(), &p.ctx, new).await {
        Ok(hook) => Ok(redirect_with_flash(
            &st,
            &format!("{}/{}", base_url(&p), hook.hook.id.to_hex()),
            "Webhook added.",
        )),
        Err(Error::Invalid(errs)) => {
            let form = FormState::new(&[("url", &f.url), ("mount", &f.mount)]).with_errors(errs);
            view(
                &st,
                &p,
                form,
                &f.events,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn remove(
    State(st): State<AppState>,
    p: ProjectAdmin,
    Path(HookPath { id }): Path<HookPath>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    webhooks::delete(&st.forge, p.viewer(), &p.ctx, &id).await?;
    Ok(redirect_with_flash(&st, &base_url(&p), "Webhook deleted."))
}

pub async fn redeliver(
    State(st): State<AppState>,
    p: ProjectAdmin,
    Path(DeliveryPath { id, delivery }): Path<DeliveryPath>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    webhooks::redeliver(&st.forge, p.viewer(), &p.ctx, &id, &delivery).await?;
    Ok(redirect_with_flash(
        &st,
        &format!("{}/{id}", base_url(&p)),
        "Delivery queued again.",
    ))
}
