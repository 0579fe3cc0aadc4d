//! Tracker REST API, below `/rest/p/<project>/<mount>`: `GET /` lists tickets (`q`, `sort`,
//! `page`, `limit`), `POST /` files one; `GET|PATCH|DELETE /<num>` (PATCH merges with
//! `base_version`, 409 naming the fields changed meanwhile); `GET|POST /<num>/comments`;
//! `POST /<num>/vote`; `POST /_bulk`; `GET /_milestones`; `GET /_bins`; `GET /_export` and
//! `POST /_import` (Allura's tracker JSON).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bson::{Bson, Document};
use forge_tools::Error;
use forge_tools::discussion::{self, NewPost};
use forge_tools::paging::Paging;
use forge_tools::tools::tracker::actions::{self, BulkEdit, NewTicket, TicketPatch};
use forge_tools::tools::tracker::export::{self, Export};
use forge_tools::tools::tracker::tickets::Ticket;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::json;
use utoipa::{OpenApi, ToSchema};

use super::req::{FilePath, Update, num_of};
use crate::ctx::{Admin, ToolReq};
use crate::discussion::{CanPost, PostJson, post_json};
use crate::error::ApiResult;
use crate::extract::{ApiJson, Query};
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/", get(list).post(create))
        .route("/_milestones", get(milestones))
        .route("/_bins", get(bins))
        .route("/_bulk", post(bulk))
        .route("/_export", get(export_json))
        .route("/_import", post(import_json))
        .route(
            "/{num}",
            get(get_ticket).patch(patch_ticket).delete(delete_ticket),
        )
        .route("/{num}/comments", get(list_comments).post(add_comment))
        .route("/{num}/vote", post(vote))
        .route("/{num}/attachments", get(list_attachments).post(upload))
        .route("/{num}/attachments/{file}", get(download))
}

fn rfc3339(d: bson::DateTime) -> String {
    d.try_to_rfc3339_string().unwrap_or_default()
}

fn custom_json(d: &Document) -> serde_json::Map<String, serde_json::Value> {
    d.iter()
        .map(|(k, v)| {
            let v = match v {
                Bson::Null => serde_json::Value::Null,
                Bson::Boolean(b) => json!(b),
                Bson::Double(x) => serde_json::Number::from_f64(*x)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number),
                other => json!(forge_tools::tools::tracker::config::value_text(other)),
            };
            (k.clone(), v)
        })
        .collect()
}

/// A ticket as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct TicketJson {
    ticket_num: i64,
    summary: String,
    description: String,
    status: String,
    labels: Vec<String>,
    assigned_to: Option<String>,
    reported_by: String,
    milestone: Option<String>,
    private: bool,
    votes_up: i64,
    votes_down: i64,
    #[schema(value_type = Object)]
    custom_fields: serde_json::Map<String, serde_json::Value>,
    created: String,
    modified: String,
    version: i64,
    /// `ok`, or `pending` while a moderator has not approved it.
    moderation: String,
    url: String,
}

fn ticket_json<P>(t: &ToolReq<P>, k: &Ticket) -> TicketJson {
    TicketJson {
        ticket_num: k.ticket_num,
        summary: k.summary.clone(),
        description: k.description.clone(),
        status: k.status.clone(),
        labels: k.labels.clone(),
        assigned_to: k.assigned_to.clone(),
        reported_by: k.reported_by.clone(),
        milestone: k.milestone.clone(),
        private: k.private,
        votes_up: k.votes_up,
        votes_down: k.votes_down,
        custom_fields: custom_json(&k.custom_fields),
        created: rfc3339(k.created),
        modified: rfc3339(k.modified),
        version: k.version,
        moderation: k.moderation.clone(),
        url: actions::ticket_url(&t.ctx, &t.tool, k.ticket_num),
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    sort: String,
    page: Option<u64>,
    limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct TicketList {
    total: u64,
    page: usize,
    limit: usize,
    tickets: Vec<TicketJson>,
}

/// Tickets matching a query (the list page's syntax), a page at a time.
#[utoipa::path(get, path = "/rest/p/{project}/{mount}/", tag = "tracker",
    params(("project" = String, Path), ("mount" = String, Path), ("q" = Option<String>, Query), ("sort" = Option<String>, Query), ("page" = Option<u64>, Query), ("limit" = Option<u64>, Query)),
    responses((status = 200, body = TicketList), (status = 400, description = "invalid query, sort or paging")))]
pub async fn list(
    State(st): State<AppState>,
    t: ToolReq,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<TicketList>> {
    let paging = Paging::new(q.page, q.limit, 25, forge_tools::paging::MAX_PAGE)?;
    let (found, total) = actions::list(
        &st.forge,
        t.viewer(),
        &t.ctx,
        &t.tool,
        &q.q,
        &q.sort,
        paging,
    )
    .await?;
    Ok(Json(TicketList {
        total,
        page: paging.page,
        limit: paging.per_page,
        tickets: found.iter().map(|k| ticket_json(&t, k)).collect(),
    }))
}

/// Custom field values as given: any JSON scalar, read as text against the field's type.
fn custom_pairs(m: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, String)> {
    m.iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

#[derive(Deserialize, ToSchema)]
pub struct CreateTicket {
    summary: String,
    #[serde(default)]
    description: String,
    status: Option<String>,
    #[serde(default)]
    labels: Vec<String>,
    assigned_to: Option<String>,
    milestone: Option<String>,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    #[schema(value_type = Object)]
    custom_fields: serde_json::Map<String, serde_json::Value>,
}

/// Files a ticket (201). Anonymous callers only where the tracker allows anonymous tickets.
#[utoipa::path(post, path = "/rest/p/{project}/{mount}/", tag = "tracker", request_body = CreateTicket,
    params(("project" = String, Path), ("mount" = String, Path)),
    responses((status = 201, body = TicketJson), (status = 422, description = "invalid fields")))]
pub async fn create(
    State(st): State<AppState>,
    t: ToolReq,
    ApiJson(b): ApiJson<CreateTicket>,
) -> ApiResult {
    let new = NewTicket {
        summary: b.summary,
        description: b.description,
        status: b.status,
        labels: b.labels,
        assigned_to: b.assigned_to,
        milestone: b.milestone,
        private: b.private,
        custom_fields: custom_pairs(&b.custom_fields),
        honeypot: None,
    };
    let k = actions::create(&st.forge, t.viewer(), &t.ctx, &t.tool, new).await?;
    Ok((StatusCode::CREATED, Json(ticket_json(&t, &k))).into_response())
}

/// A ticket.
#[utoipa::path(get, path = "/rest/p/{project}/{mount}/{num}", tag = "tracker",
    params(("project" = String, Path), ("mount" = String, Path), ("num" = i64, Path)),
    responses((status = 200, body = TicketJson), (status = 404)))]
pub async fn get_ticket(
    State(st): State<AppState>,
    t: ToolReq,
    Path(num): Path<String>,
) -> ApiResult<Json<TicketJson>> {
    let k = actions::get(&st.forge, t.viewer(), &t.ctx, &t.tool, num_of(&num)?).await?;
    Ok(Json(ticket_json(&t, &k)))
}

/// `null` and absent differ: `"assigned_to": null` unassigns, leaving it out changes nothing.
fn some_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Deserialize, ToSchema, Default)]
pub struct PatchTicket {
    summary: Option<String>,
    description: Option<String>,
    status: Option<String>,
    labels: Option<Vec<String>>,
    #[serde(default, deserialize_with = "some_option")]
    #[schema(value_type = Option<String>)]
    assigned_to: Option<Option<String>>,
    #[serde(default, deserialize_with = "some_option")]
    #[schema(value_type = Option<String>)]
    milestone: Option<Option<String>>,
    private: Option<bool>,
    #[serde(default)]
    #[schema(value_type = Object)]
    custom_fields: serde_json::Map<String, serde_json::Value>,
    /// The version the change starts from: fields changed since by others are kept, and a
    /// field changed both ways answers 409.
    base_version: Option<i64>,
}

/// Changes a ticket's fields (update permission).
#[utoipa::path(patch, path = "/rest/p/{project}/{mount}/{num}", tag = "tracker", request_body = PatchTicket,
    params(("project" = String, Path), ("mount" = String, Path), ("num" = i64, Path)),
    responses((status = 200, body = TicketJson), (status = 409, description = "a field you change was changed since base_version"), (status = 422)))]
pub async fn patch_ticket(
    State(st): State<AppState>,
    t: ToolReq<Update>,
    Path(num): Path<String>,
    ApiJson(b): ApiJson<PatchTicket>,
) -> ApiResult<Json<TicketJson>> {
    let patch = TicketPatch {
        summary: b.summary,
        description: b.description,
        status: b.status,
        labels: b.labels,
        assigned_to: b.assigned_to,
        milestone: b.milestone,
        private: b.private,
        custom_fields: custom_pairs(&b.custom_fields),
        base_version: b.base_version,
    };
    let k = actions::update(&st.forge, t.viewer(), &t.ctx, &t.tool, num_of(&num)?, patch).await?;
    Ok(Json(ticket_json(&t, &k)))
}

/// Deletes a ticket (delete permission): 204.
#[utoipa::path(delete, path = "/rest/p/{project}/{mount}/{num}", tag = "tracker",
    params(("project" = String, Path), ("mount" = String, Path), ("num" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn delete_ticket(
    State(st): State<AppState>,
    t: ToolReq,
    Path(num): Path<String>,
) -> ApiResult {
    actions::delete(&st.forge, t.viewer(), &t.ctx, &t.tool, num_of(&num)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
pub struct CommentsQuery {
    page: Option<u64>,
    limit: Option<u64>,
}

/// A ticket's comments, oldest first, as the caller may see them.
#[utoipa::path(get, path = "/rest/p/{project}/{mount}/{num}/comments", tag = "tracker",
    params(("project" = String, Path), ("mount" = String, Path), ("num" = i64, Path), ("page" = Option<u64>, Query), ("limit" = Option<u64>, Query)),
    responses((status = 200, body = Vec<PostJson>)))]
pub async fn list_comments(
    State(st): State<AppState>,
    t: ToolReq,
    Path(num): Path<String>,
    Query(q): Query<CommentsQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let paging = Paging::new(q.page, q.limit, 100, forge_tools::paging::MAX_PAGE)?;
    let k = actions::get(&st.forge, t.viewer(), &t.ctx, &t.tool, num_of(&num)?).await?;
    let posts = actions::comments(
        &st.forge,
        t.viewer(),
        &t.ctx,
        &t.tool,
        &k,
        discussion::Order::Flat,
        Some(paging),
    )
    .await?;
    let list: Vec<PostJson> = posts.iter().map(post_json).collect();
    Ok(Json(
        json!({"comments": list, "page": paging.page, "limit": paging.per_page}),
    ))
}

#[derive(Deserialize, ToSchema)]
pub struct NewComment {
    text: String,
    /// The id of the comment this one replies to.
    parent: Option<String>,
}

/// Comments on a ticket (201); `status` is `pending` when a moderator must approve it.
#[utoipa::path(post, path = "/rest/p/{project}/{mount}/{num}/comments", tag = "tracker", request_body = NewComment,
    params(("project" = String, Path), ("mount" = String, Path), ("num" = i64, Path)),
    responses((status = 201, body = PostJson), (status = 422)))]
pub async fn add_comment(
    State(st): State<AppState>,
    t: ToolReq<CanPost>,
    Path(num): Path<String>,
    ApiJson(b): ApiJson<NewComment>,
) -> ApiResult {
    let parent = match b.parent.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(
            bson::oid::ObjectId::parse_str(p)
                .map_err(|_| Error::invalid("parent", "Not a comment id"))?,
        ),
        None => None,
    };
    let post = actions::comment(
        &st.forge,
        t.viewer(),
        &t.ctx,
        &t.tool,
        num_of(&num)?,
        NewPost {
            text: b.text,
            parent,
            honeypot: None,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(post_json(&post))).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct VoteBody {
    /// 1 up, -1 down, 0 withdraws.
    vote: i32,
}

/// Votes on a ticket; answers the totals.
#[utoipa::path(post, path = "/rest/p/{project}/{mount}/{num}/vote", tag = "tracker", request_body = VoteBody,
    params(("project" = String, Path), ("mount" = String, Path), ("num" = i64, Path)),
    responses((status = 200, description = "{votes_up, votes_down}")))]
pub async fn vote(
    State(st): State<AppState>,
    t: ToolReq,
    Path(num): Path<String>,
    ApiJson(b): ApiJson<VoteBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let (up, down) = actions::vote(
        &st.forge,
        t.viewer(),
        &t.ctx,
        &t.tool,
        num_of(&num)?,
        b.vote,
    )
    .await?;
    Ok(Json(json!({"votes_up": up, "votes_down": down})))
}

#[derive(Deserialize, ToSchema)]
pub struct BulkBody {
    tickets: Vec<i64>,
    status: Option<String>,
    #[serde(default, deserialize_with = "some_option")]
    #[schema(value_type = Option<String>)]
    milestone: Option<Option<String>>,
    #[serde(default, deserialize_with = "some_option")]
    #[schema(value_type = Option<String>)]
    assigned_to: Option<Option<String>>,
    #[serde(default)]
    labels_add: Vec<String>,
    #[serde(default)]
    labels_remove: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    custom_fields: serde_json::Map<String, serde_json::Value>,
    private: Option<bool>,
}

/// Changes many tickets at once (update permission); answers how many changed.
#[utoipa::path(post, path = "/rest/p/{project}/{mount}/_bulk", tag = "tracker", request_body = BulkBody,
    params(("project" = String, Path), ("mount" = String, Path)),
    responses((status = 200, description = "{changed}")))]
pub async fn bulk(
    State(st): State<AppState>,
    t: ToolReq<Update>,
    ApiJson(b): ApiJson<BulkBody>,
) -> ApiResult<Json<serde_json::Value>> {
    let edit = BulkEdit {
        status: b.status,
        milestone: b.milestone,
        assigned_to: b.assigned_to,
        labels_add: b.labels_add,
        labels_remove: b.labels_remove,
        custom_fields: custom_pairs(&b.custom_fields),
        private: b.private,
    };
    let n = actions::bulk(&st.forge, t.viewer(), &t.ctx, &t.tool, &b.tickets, edit).await?;
    Ok(Json(json!({"changed": n})))
}

/// Milestones with their progress.
#[utoipa::path(get, path = "/rest/p/{project}/{mount}/_milestones", tag = "tracker",
    params(("project" = String, Path), ("mount" = String, Path)),
    responses((status = 200, description = "{milestones: [{name, description, due, closed, tickets_closed, tickets_total}]}")))]
pub async fn milestones(
    State(st): State<AppState>,
    t: ToolReq,
) -> ApiResult<Json<serde_json::Value>> {
    let list = actions::milestones(&st.forge, t.viewer(), &t.ctx, &t.tool).await?;
    let out: Vec<serde_json::Value> = list
        .into_iter()
        .map(|(m, closed, total)| {
            json!({"name": m.name, "description": m.description, "due": m.due, "closed": m.closed,
                   "tickets_closed": closed, "tickets_total": total})
        })
        .collect();
    Ok(Json(json!({"milestones": out})))
}

/// Saved searches the caller sees, with their ticket counts.
#[utoipa::path(get, path = "/rest/p/{project}/{mount}/_bins", tag = "tracker",
    params(("project" = String, Path), ("mount" = String, Path)),
    responses((status = 200, description = "{bins: [{id, name, q, sort, shared, count}]}")))]
pub async fn bins(State(st): State<AppState>, t: ToolReq) -> ApiResult<Json<serde_json::Value>> {
    let list = actions::bins_with_counts(&st.forge, t.viewer(), &t.ctx, &t.tool).await?;
    let out: Vec<serde_json::Value> = list
        .into_iter()
        .map(|(b, n)| json!({"id": b.id.to_hex(), "name": b.name, "q": b.q, "sort": b.sort, "shared": b.owner.is_none(), "count": n}))
        .collect();
    Ok(Json(json!({"bins": out})))
}

/// The tracker in Allura's JSON format (admins).
#[utoipa::path(get, path = "/rest/p/{project}/{mount}/_export", tag = "tracker",
    params(("project" = String, Path), ("mount" = String, Path)),
    responses((status = 200, description = "Allura tracker JSON: tickets, tracker_config, milestones, custom_fields, saved_bins")))]
pub async fn export_json(State(st): State<AppState>, t: ToolReq<Admin>) -> ApiResult<Json<Export>> {
    Ok(Json(export::export(&st.forge, &t.ctx, &t.tool).await?))
}

/// Imports Allura tracker JSON (admins): all or nothing; ticket numbers kept, a number taken
/// already answers 409 naming it.
#[utoipa::path(post, path = "/rest/p/{project}/{mount}/_import", tag = "tracker",
    params(("project" = String, Path), ("mount" = String, Path)),
    responses((status = 200, description = "{tickets, comments, saved_bins}"), (status = 409, description = "duplicate ticket numbers"), (status = 422)))]
pub async fn import_json(
    State(st): State<AppState>,
    t: ToolReq<Admin>,
    ApiJson(b): ApiJson<Export>,
) -> ApiResult<Response> {
    let done = export::import(&st.forge, t.viewer(), &t.ctx, &t.tool, b).await?;
    Ok(Json(done).into_response())
}

fn attachment_json<P>(
    t: &ToolReq<P>,
    num: i64,
    a: &forge_tools::attachments::Attachment,
) -> serde_json::Value {
    json!({
        "filename": a.filename,
        "size": a.size,
        "content_type": a.content_type,
        "sha256": a.sha256,
        "author": a.author,
        "created": rfc3339(a.created),
        "url": format!("/rest{}attachments/{}", actions::ticket_url(&t.ctx, &t.tool, num), forge_tools::tool::xref::encode_segment(&a.filename)),
    })
}

/// Files attached to a ticket.
#[utoipa::path(get, path = "/rest/p/{project}/{mount}/{num}/attachments", tag = "tracker",
    params(("project" = String, Path), ("mount" = String, Path), ("num" = i64, Path)),
    responses((status = 200, description = "{attachments: [{filename, size, content_type, sha256, author, created, url}]}")))]
pub async fn list_attachments(
    State(st): State<AppState>,
    t: ToolReq,
    Path(num): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let forge = &st.forge;
    let k = actions::get(forge, t.viewer(), &t.ctx, &t.tool, num_of(&num)?).await?;
    let list = actions::attachments(forge, &k).await?;
    let out: Vec<serde_json::Value> = list
        .iter()
        .map(|a| attachment_json(&t, k.ticket_num, a))
        .collect();
    Ok(Json(json!({"attachments": out})))
}

/// Attaches a file (multipart `file` field) to a ticket: those who may update tickets, and
/// its reporter (201).
#[utoipa::path(post, path = "/rest/p/{project}/{mount}/{num}/attachments", tag = "tracker",
    params(("project" = String, Path), ("mount" = String, Path), ("num" = i64, Path)),
    responses((status = 201, description = "the attachment"), (status = 413), (status = 422)))]
pub async fn upload(
    State(st): State<AppState>,
    t: ToolReq,
    headers: axum::http::HeaderMap,
    Path(num): Path<String>,
    mp: axum::extract::Multipart,
) -> ApiResult {
    crate::upload::check_api_csrf(&t.page, &headers)?;
    let forge = &st.forge;
    let k = actions::for_attaching(forge, t.viewer(), &t.ctx, &t.tool, num_of(&num)?).await?;
    let author = t.viewer().username().unwrap_or_default().to_owned();
    let a = crate::upload::receive(forge, t.tool.id, k.id, &author, mp, None).await?;
    actions::attachment_changed(forge, t.viewer(), &t.ctx, &t.tool, &k, &a.filename, true).await?;
    Ok((
        StatusCode::CREATED,
        Json(attachment_json(&t, k.ticket_num, &a)),
    )
        .into_response())
}

/// A file attached to a ticket.
pub async fn download(
    State(st): State<AppState>,
    t: ToolReq,
    Path(FilePath { num, file }): Path<FilePath>,
) -> ApiResult {
    let (_, a) =
        actions::attachment(&st.forge, t.viewer(), &t.ctx, &t.tool, num_of(&num)?, &file).await?;
    Ok(crate::upload::serve(&st, &t, &a).await?)
}

#[derive(OpenApi)]
#[openapi(
    paths(
        list,
        create,
        get_ticket,
        patch_ticket,
        delete_ticket,
        list_comments,
        add_comment,
        vote,
        bulk,
        milestones,
        bins,
        export_json,
        import_json
    ),
    components(schemas(
        TicketJson,
        TicketList,
        CreateTicket,
        PatchTicket,
        PostJson,
        NewComment,
        VoteBody,
        BulkBody
    ))
)]
pub struct TrackerApi;
