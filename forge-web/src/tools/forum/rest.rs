//! Forum REST API, below `/rest/p/<project>/<mount>` (contract: `GET /` forums, `POST /` a
//! forum (admins); `GET /<forum>/?page=` topics, `POST /<forum>/` `{subject, text}` starts
//! one; `GET /<forum>/thread/<id>/` a topic with its posts, `POST` replies `{text, parent?}`),
//! plus moderators' calls: `POST /<forum>/thread/<id>/moderate` `{action, forum?}` and
//! `POST /_block` `{username, blocked}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bson::oid::ObjectId;
use forge_tools::Error;
use forge_tools::discussion::{self, NewPost, Order};
use forge_tools::paging::Paging;
use forge_tools::tools::forum::model::{Forum, Topic};
use forge_tools::tools::forum::moderation::{self, TopicAction};
use forge_tools::tools::forum::{forums, topics};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::ctx::{Admin, ToolReq};
use crate::discussion::{CanModerate, CanPost, PostJson, post_json};
use crate::error::ApiResult;
use crate::extract::{ApiJson, Query};
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/", get(list_forums).post(create_forum))
        .route("/_block", post(block))
        .route("/{forum}/", get(list_topics).post(create_topic))
        .route("/{forum}/thread/{id}/", get(get_topic).post(reply))
        .route("/{forum}/thread/{id}/moderate", post(moderate))
}

fn rfc3339(d: bson::DateTime) -> String {
    d.try_to_rfc3339_string().unwrap_or_default()
}

/// The last post of a forum.
#[derive(Serialize, ToSchema)]
pub struct LastPostJson {
    author: String,
    at: String,
    thread_id: String,
    subject: String,
}

/// A forum as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct ForumJson {
    shortname: String,
    name: String,
    description: String,
    order: i32,
    hidden: bool,
    num_topics: i64,
    num_posts: i64,
    last_post: Option<LastPostJson>,
    /// Mail to this address starts a topic.
    posting_address: String,
    url: String,
}

fn forum_json<P>(st: &AppState, t: &ToolReq<P>, f: &Forum) -> ForumJson {
    ForumJson {
        shortname: f.shortname.clone(),
        name: f.name.clone(),
        description: f.description.clone(),
        order: f.order,
        hidden: f.hidden,
        num_topics: f.num_topics,
        num_posts: f.num_posts,
        last_post: f.last_post.as_ref().map(|l| LastPostJson {
            author: l.author.clone(),
            at: rfc3339(l.at),
            thread_id: l.topic_id.to_hex(),
            subject: l.subject.clone(),
        }),
        posting_address: forums::posting_address(f, &t.tool, &t.ctx.project, &mail_domain(st)),
        url: format!("{}{}/", t.base, f.shortname),
    }
}

fn mail_domain(st: &AppState) -> String {
    st.forge.config().mail_domain()
}

/// A topic as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct ThreadJson {
    id: String,
    forum: String,
    subject: String,
    author: String,
    created: String,
    sticky: bool,
    announcement: bool,
    closed: bool,
    /// `ok` once the first post is approved, else `pending`.
    status: String,
    num_replies: i64,
    num_views: i64,
    last_post: String,
    last_author: String,
    url: String,
}

fn thread_json<P>(t: &ToolReq<P>, forum: &Forum, k: &Topic) -> ThreadJson {
    ThreadJson {
        id: k.id.to_hex(),
        forum: forum.shortname.clone(),
        subject: k.subject.clone(),
        author: k.author.clone(),
        created: rfc3339(k.created),
        sticky: k.sticky,
        announcement: k.announcement,
        closed: k.closed,
        status: if k.live { "ok" } else { "pending" }.into(),
        num_replies: k.replies(),
        num_views: k.num_views,
        last_post: rfc3339(k.last_post_at),
        last_author: k.last_author.clone(),
        url: topics::url(&t.ctx, &t.tool, forum, k.id),
    }
}

#[derive(Serialize, ToSchema)]
pub struct ForumList {
    forums: Vec<ForumJson>,
}

/// The forums the caller may see, in order.
#[utoipa::path(get, path = "/rest/p/{project}/{mount}/", tag = "forum",
    params(("project" = String, Path), ("mount" = String, Path)),
    responses((status = 200, body = ForumList), (status = 404)))]
pub async fn list_forums(State(st): State<AppState>, t: ToolReq) -> ApiResult<Json<ForumList>> {
    let found = forums::list(&st.forge, &t.ctx, &t.tool).await?;
    Ok(Json(ForumList {
        forums: found.iter().map(|f| forum_json(&st, &t, f)).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct CreateForum {
    shortname: String,
    name: String,
    #[serde(default)]
    description: String,
}

/// Adds a forum (the tool's admins); 201 with the forum.
#[utoipa::path(post, path = "/rest/p/{project}/{mount}/", tag = "forum", request_body = CreateForum,
    params(("project" = String, Path), ("mount" = String, Path)),
    responses((status = 201, body = ForumJson), (status = 403), (status = 422, description = "invalid or taken short name")))]
pub async fn create_forum(
    State(st): State<AppState>,
    t: ToolReq<Admin>,
    ApiJson(b): ApiJson<CreateForum>,
) -> ApiResult {
    let f = forums::create(
        &st.forge,
        t.viewer(),
        &t.ctx,
        &t.tool,
        forums::NewForum {
            shortname: b.shortname,
            name: b.name,
            description: b.description,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(forum_json(&st, &t, &f))).into_response())
}

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<u64>,
    limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct TopicList {
    forum: ForumJson,
    total: u64,
    page: usize,
    limit: usize,
    /// Announcements of the whole tool (shown atop every forum).
    announcements: Vec<ThreadJson>,
    /// Sticky topics first, then by last activity.
    threads: Vec<ThreadJson>,
}

/// A page of a forum's topics.
#[utoipa::path(get, path = "/rest/p/{project}/{mount}/{forum}/", tag = "forum",
    params(("project" = String, Path), ("mount" = String, Path), ("forum" = String, Path), ("page" = Option<u64>, Query), ("limit" = Option<u64>, Query)),
    responses((status = 200, body = TopicList), (status = 400), (status = 404)))]
pub async fn list_topics(
    State(st): State<AppState>,
    t: ToolReq,
    Path(forum): Path<String>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<TopicList>> {
    let paging = Paging::new(q.page, q.limit, 25, forge_tools::paging::MAX_PAGE)?;
    let forum = forums::get(&st.forge, &t.ctx, &t.tool, &forum).await?;
    let (found, total) = topics::list(&st.forge, &t.ctx, &t.tool, &forum, paging).await?;
    let all = forums::list(&st.forge, &t.ctx, &t.tool).await?;
    let announcements = topics::announcements(&st.forge, &t.ctx, &t.tool)
        .await?
        .iter()
        .filter_map(|k| {
            let f = all.iter().find(|f| f.id == k.forum_id)?;
            Some(thread_json(&t, f, k))
        })
        .collect();
    Ok(Json(TopicList {
        total,
        page: paging.page,
        limit: paging.per_page,
        announcements,
        threads: found.iter().map(|k| thread_json(&t, &forum, k)).collect(),
        forum: forum_json(&st, &t, &forum),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct CreateTopic {
    subject: String,
    text: String,
}

/// What starting a topic answers.
#[derive(Serialize, ToSchema)]
pub struct TopicCreated {
    thread_id: String,
    post_id: String,
    /// `ok`, or `pending` when the author may not post unmoderated.
    status: String,
}

/// Starts a topic (201).
#[utoipa::path(post, path = "/rest/p/{project}/{mount}/{forum}/", tag = "forum", request_body = CreateTopic,
    params(("project" = String, Path), ("mount" = String, Path), ("forum" = String, Path)),
    responses((status = 201, body = TopicCreated), (status = 401), (status = 403), (status = 422), (status = 429)))]
pub async fn create_topic(
    State(st): State<AppState>,
    t: ToolReq<CanPost>,
    Path(forum): Path<String>,
    ApiJson(b): ApiJson<CreateTopic>,
) -> ApiResult {
    let forum = forums::get(&st.forge, &t.ctx, &t.tool, &forum).await?;
    let (topic, post) = topics::create(
        &st.forge,
        t.viewer(),
        &t.ctx,
        &t.tool,
        &forum,
        topics::NewTopic {
            subject: b.subject,
            text: b.text,
            honeypot: None,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(TopicCreated {
            thread_id: topic.id.to_hex(),
            post_id: post.id.to_hex(),
            status: post.status.as_str().into(),
        }),
    )
        .into_response())
}

fn topic_id(s: &str) -> Result<ObjectId, Error> {
    ObjectId::parse_str(s).map_err(|_| Error::NotFound("topic"))
}

#[derive(Deserialize)]
pub struct TopicQuery {
    page: Option<u64>,
    limit: Option<u64>,
    /// `flat` (oldest first) or `threaded` (replies under their parent; the default).
    #[serde(default)]
    order: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TopicWithPosts {
    thread: ThreadJson,
    page: usize,
    limit: usize,
    posts: Vec<PostJson>,
}

/// A topic with a page of its posts, as the caller may see them.
#[utoipa::path(get, path = "/rest/p/{project}/{mount}/{forum}/thread/{id}/", tag = "forum",
    params(("project" = String, Path), ("mount" = String, Path), ("forum" = String, Path), ("id" = String, Path),
        ("page" = Option<u64>, Query), ("limit" = Option<u64>, Query), ("order" = Option<String>, Query)),
    responses((status = 200, body = TopicWithPosts), (status = 404)))]
pub async fn get_topic(
    State(st): State<AppState>,
    t: ToolReq,
    Path((_forum, id)): Path<(String, String)>,
    Query(q): Query<TopicQuery>,
) -> ApiResult<Json<TopicWithPosts>> {
    let paging = Paging::new(q.page, q.limit, 100, forge_tools::paging::MAX_PAGE)?;
    let order = match q.order.as_deref() {
        None | Some("threaded") => Order::Threaded,
        Some("flat") => Order::Flat,
        Some(_) => return Err(Error::bad_request("order must be flat or threaded").into()),
    };
    let (forum, topic, thread) =
        topics::with_thread(&st.forge, t.viewer(), &t.ctx, &t.tool, topic_id(&id)?).await?;
    let posts = discussion::posts(
        &st.forge,
        t.viewer(),
        &t.ctx,
        &t.tool,
        &thread,
        order,
        Some(paging),
    )
    .await?;
    Ok(Json(TopicWithPosts {
        thread: thread_json(&t, &forum, &topic),
        page: paging.page,
        limit: paging.per_page,
        posts: posts.iter().map(post_json).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct ReplyBody {
    text: String,
    /// The id of the post this one answers.
    parent: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Replied {
    post_id: String,
    /// `ok`, or `pending` when a moderator must approve it.
    status: String,
}

/// Replies in a topic (201).
#[utoipa::path(post, path = "/rest/p/{project}/{mount}/{forum}/thread/{id}/", tag = "forum", request_body = ReplyBody,
    params(("project" = String, Path), ("mount" = String, Path), ("forum" = String, Path), ("id" = String, Path)),
    responses((status = 201, body = Replied), (status = 401), (status = 403), (status = 404), (status = 409, description = "the topic is closed"), (status = 422)))]
pub async fn reply(
    State(st): State<AppState>,
    t: ToolReq<CanPost>,
    Path((_forum, id)): Path<(String, String)>,
    ApiJson(b): ApiJson<ReplyBody>,
) -> ApiResult {
    let parent = match b.parent.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => {
            Some(ObjectId::parse_str(p).map_err(|_| Error::invalid("parent", "Not a post id"))?)
        }
        None => None,
    };
    let (_, topic) = topics::get(&st.forge, t.viewer(), &t.ctx, &t.tool, topic_id(&id)?).await?;
    let post = topics::reply(
        &st.forge,
        t.viewer(),
        &t.ctx,
        &t.tool,
        &topic,
        NewPost {
            text: b.text,
            parent,
            honeypot: None,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Replied {
            post_id: post.id.to_hex(),
            status: post.status.as_str().into(),
        }),
    )
        .into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct ModerateBody {
    /// `close`, `reopen`, `sticky`, `unsticky`, `announce`, `unannounce`, `move`, `delete`.
    action: String,
    /// The forum to move the topic to (with `move`).
    forum: Option<String>,
}

/// A moderator's change to a topic; answers the topic as it is after.
#[utoipa::path(post, path = "/rest/p/{project}/{mount}/{forum}/thread/{id}/moderate", tag = "forum", request_body = ModerateBody,
    params(("project" = String, Path), ("mount" = String, Path), ("forum" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = ThreadJson), (status = 403), (status = 404), (status = 422)))]
pub async fn moderate(
    State(st): State<AppState>,
    t: ToolReq<CanModerate>,
    Path((_forum, id)): Path<(String, String)>,
    ApiJson(b): ApiJson<ModerateBody>,
) -> ApiResult<Response> {
    let action = TopicAction::parse(&b.action, b.forum.as_deref()).ok_or_else(|| {
        Error::invalid(
            "action",
            "action must be close, reopen, sticky, unsticky, announce, unannounce, move (with forum) or delete",
        )
    })?;
    let topic = moderation::topic(
        &st.forge,
        t.viewer(),
        &t.ctx,
        &t.tool,
        topic_id(&id)?,
        action,
    )
    .await?;
    let forum = forums::by_id(&st.forge, &t.ctx, &t.tool, topic.forum_id).await?;
    Ok(Json(thread_json(&t, &forum, &topic)).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct BlockBody {
    username: String,
    /// `true` blocks, `false` unblocks.
    #[serde(default = "yes")]
    blocked: bool,
}

fn yes() -> bool {
    true
}

/// Blocks (or unblocks) someone from posting in this tool's forums (moderators); answers the
/// usernames blocked.
#[utoipa::path(post, path = "/rest/p/{project}/{mount}/_block", tag = "forum", request_body = BlockBody,
    params(("project" = String, Path), ("mount" = String, Path)),
    responses((status = 200), (status = 403), (status = 422)))]
pub async fn block(
    State(st): State<AppState>,
    t: ToolReq<CanModerate>,
    ApiJson(b): ApiJson<BlockBody>,
) -> ApiResult<Response> {
    moderation::block(
        &st.forge,
        t.viewer(),
        &t.ctx,
        &t.tool,
        &b.username,
        b.blocked,
    )
    .await?;
    // The ACL just changed: read the tool again for the list.
    let tool = forge_tools::instances::by_id(st.forge.db(), t.tool.id)
        .await?
        .ok_or(Error::NotFound("tool"))?;
    let names = moderation::blocked(&st.forge, &t.ctx, &tool).await?;
    Ok(Json(serde_json::json!({ "blocked": names })).into_response())
}

#[derive(OpenApi)]
#[openapi(
    paths(
        list_forums,
        create_forum,
        list_topics,
        create_topic,
        get_topic,
        reply,
        moderate,
        block
    ),
    components(schemas(
        ForumJson,
        ForumList,
        LastPostJson,
        CreateForum,
        TopicList,
        ThreadJson,
        CreateTopic,
        TopicCreated,
        TopicWithPosts,
        PostJson,
        ReplyBody,
        Replied,
        ModerateBody,
        BlockBody
    ))
)]
pub struct ForumApi;
