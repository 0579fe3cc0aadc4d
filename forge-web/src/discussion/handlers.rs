//! The discussion's routes, merged into each tool's page router: posting (a comment or a
//! reply), editing and deleting a post, and the moderation queue. Each takes the
//! [`ToolReq`] of the tool it is mounted under, checks the thread's artifact is readable
//! (a private ticket's thread is `NotFound` to those who may not see it), and calls the
//! domain, which checks the permissions again.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use bson::oid::ObjectId;
use forge_tools::discussion::{self, Moderation, NewPost, Post, Status, Thread, ThreadRef};
use forge_tools::paging::{MAX_PAGE, Paging};
use forge_tools::{Error, FieldErrors};
use serde::Deserialize;

use super::access::{CanModerate, CanPost, PostOrModerate, check_readable};
use super::view::{FormTpl, QueueRow, QueueTpl, SignedRef, may_change, readable_rows};
use crate::auth::{CsrfForm, redirect_with_flash};
use crate::ctx::ToolReq;
use crate::error::{PageError, PageResult, urlencode};
use crate::extract::Query;
use crate::page::{render, render_status};
use crate::state::AppState;

/// Posts a moderation queue page lists.
const QUEUE_PER_PAGE: u64 = 25;

/// A url-encoded form read as its pairs: the honeypot's name is a constant of the domain,
/// and the queue's checkboxes repeat a name.
struct Fields(Vec<(String, String)>);

impl Fields {
    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn opt(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn thread_ref(&self) -> (ThreadRef, String) {
        (
            ThreadRef {
                artifact: self.get("artifact").to_owned(),
                title: self.get("title").to_owned(),
                url: self.get("url").to_owned(),
                also: Vec::new(),
            },
            self.get("sig").to_owned(),
        )
    }

    /// Browsers send form text with CRLF line ends.
    fn text(&self) -> String {
        self.get("text").replace("\r\n", "\n")
    }
}

/// The thread reference of a link (the edit page's).
#[derive(Deserialize)]
pub struct RefQuery {
    #[serde(default)]
    artifact: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    sig: String,
}

/// Checks a thread reference a form or link sent: signed by this site for this tool, and
/// naming an artifact the viewer may read.
async fn check_ref<P>(
    st: &AppState,
    t: &ToolReq<P>,
    r: &ThreadRef,
    sig: &str,
) -> Result<(), Error> {
    if r.artifact.is_empty() || !discussion::verify_ref(&st.forge, t.tool.id, r, sig).await? {
        return Err(Error::bad_request(
            "This form does not name its discussion correctly; reload the page and try again",
        ));
    }
    check_readable(&st.forge, &t.ctx, &t.tool, &r.artifact).await
}

pub(super) fn parse_id(s: &str, what: &'static str) -> Result<ObjectId, Error> {
    ObjectId::parse_str(s.trim()).map_err(|_| Error::NotFound(what))
}

/// The thread of a checked reference and one of its posts the viewer may see.
async fn load_post<P>(
    st: &AppState,
    t: &ToolReq<P>,
    r: &ThreadRef,
    sig: &str,
    id: &str,
) -> Result<(Thread, Post), Error> {
    check_ref(st, t, r, sig).await?;
    let id = parse_id(id, "post")?;
    let thread = discussion::existing_thread(&st.forge, &t.tool, &r.artifact)
        .await?
        .ok_or(Error::NotFound("post"))?;
    let post = discussion::get_post(&st.forge, t.viewer(), &t.ctx, &t.tool, id).await?;
    if post.thread_id != thread.id {
        return Err(Error::NotFound("post"));
    }
    Ok((thread, post))
}

fn messages(errs: &FieldErrors) -> String {
    errs.0
        .iter()
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `POST /_discuss/new`: a comment on an artifact, or a reply (`parent`). The thread is
/// created by its first post (once the post passed every check), from the signed reference
/// the form carries.
pub async fn new_post(
    State(st): State<AppState>,
    t: ToolReq<CanPost>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields(pairs);
    let (r, sig) = f.thread_ref();
    check_ref(&st, &t, &r, &sig)
        .await
        .map_err(|e| t.page_error(e))?;
    let parent = match f.get("parent").trim() {
        "" => None,
        p => Some(ObjectId::parse_str(p).map_err(|_| {
            Error::invalid("parent", "The post you reply to is not in this thread")
        })?),
    };
    let text = f.text();
    let new = NewPost {
        text: text.clone(),
        parent,
        honeypot: f.opt(discussion::HONEYPOT),
    };
    let forge = &st.forge;
    let posted = discussion::post_to(forge, t.viewer(), &t.ctx, &t.tool, &r, new).await;
    let form = |message: String| {
        let signed = SignedRef {
            artifact: r.artifact.clone(),
            title: r.title.clone(),
            url: r.url.clone(),
            sig: sig.clone(),
        };
        let mut hidden = signed.fields();
        if let Some(p) = parent {
            hidden.push(("parent".into(), p.to_hex()));
        }
        FormTpl {
            page: t.shell(forge, "Your comment"),
            heading: "Your comment was not posted".into(),
            title: r.title.clone(),
            back: format!("{}#discussion", r.url),
            action: format!("{}_discuss/new", t.base),
            hidden,
            text: text.clone(),
            message: Some(message),
            button: "Post".into(),
            honeypot: Some(discussion::HONEYPOT),
            preview: None,
            preview_action: format!("{}_discuss/preview", t.base),
        }
    };
    match posted {
        Ok((thread, post)) => {
            let message = if post.status == Status::Ok {
                "Your comment is posted."
            } else {
                "Your post waits for a moderator."
            };
            Ok(redirect_with_flash(
                &st,
                &format!("{}#{}", thread.url, post.anchor()),
                message,
            ))
        }
        // Refused (empty, too long, the honeypot, too many posts): the form again, with what
        // was typed and why.
        Err(Error::Invalid(errs)) => Ok(render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &form(messages(&errs)),
        )),
        Err(Error::RateLimited(m)) => Ok(render_status(StatusCode::TOO_MANY_REQUESTS, &form(m))),
        Err(e) => Err(t.page_error(e)),
    }
}

fn edit_form<P>(
    st: &AppState,
    t: &ToolReq<P>,
    signed: SignedRef,
    post: &Post,
    text: String,
    message: Option<String>,
) -> FormTpl {
    let mut hidden = signed.fields();
    // Tells the preview this form edits that post.
    hidden.push(("edit".into(), post.id.to_hex()));
    FormTpl {
        page: t.shell(&st.forge, "Edit a post"),
        heading: "Edit your post".into(),
        title: signed.title.clone(),
        back: format!("{}#{}", signed.url, post.anchor()),
        action: format!("{}_discuss/post/{}/edit", t.base, post.id.to_hex()),
        hidden,
        text,
        message,
        button: "Save".into(),
        honeypot: None,
        preview: None,
        preview_action: format!("{}_discuss/preview", t.base),
    }
}

/// `POST /_discuss/preview`: the text of a post form rendered as it would show, on the
/// form page with the text (and what it answers or edits) kept, so the writer can post or
/// change it. Nothing is saved; the form's CSRF token and thread reference are checked as
/// for posting.
pub async fn preview(
    State(st): State<AppState>,
    t: ToolReq<CanPost>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields(pairs);
    let (r, sig) = f.thread_ref();
    let text = f.text();
    let signed = SignedRef {
        artifact: r.artifact.clone(),
        title: r.title.clone(),
        url: r.url.clone(),
        sig: sig.clone(),
    };
    let mut tpl = match f.get("edit").trim() {
        "" => {
            check_ref(&st, &t, &r, &sig)
                .await
                .map_err(|e| t.page_error(e))?;
            let mut hidden = signed.fields();
            let parent = f.get("parent").trim();
            if ObjectId::parse_str(parent).is_ok() {
                hidden.push(("parent".into(), parent.to_owned()));
            }
            FormTpl {
                page: t.shell(&st.forge, "Preview"),
                heading: "Preview your post".into(),
                title: r.title.clone(),
                back: format!("{}#discussion", r.url),
                action: format!("{}_discuss/new", t.base),
                hidden,
                text: String::new(),
                message: None,
                button: "Post".into(),
                honeypot: Some(discussion::HONEYPOT),
                preview: None,
                preview_action: format!("{}_discuss/preview", t.base),
            }
        }
        id => {
            let (_, post) = load_post(&st, &t, &r, &sig, id)
                .await
                .map_err(|e| t.page_error(e))?;
            if !may_change(&t, &post) {
                return Err(t.page_error(Error::Forbidden));
            }
            edit_form(&st, &t, signed, &post, String::new(), None)
        }
    };
    if text.len() as u64 > st.forge.config().max_text_bytes {
        tpl.message = Some("The text is too long to post.".into());
    } else if text.trim().is_empty() {
        tpl.message = Some("Write something first.".into());
    } else {
        let html = super::view::render_preview(&st.forge, &t, &text)
            .await
            .map_err(|e| t.page_error(e))?;
        tpl.preview = Some(html);
    }
    tpl.text = text;
    Ok(render(&tpl))
}

/// `?posts=flat|threaded&back=<page>` of the order links.
#[derive(Deserialize)]
pub struct OrderQuery {
    #[serde(default)]
    posts: String,
    #[serde(default)]
    back: String,
}

/// `GET /_discuss/order`: remembers the viewer's choice of order (a cookie, read where a
/// page's address names no order) and goes back to the thread in that order. `back` must be
/// a page of this tool.
pub async fn choose_order(
    State(st): State<AppState>,
    t: ToolReq,
    Query(q): Query<OrderQuery>,
) -> PageResult {
    let order = if q.posts == "flat" {
        "flat"
    } else {
        "threaded"
    };
    // A page of this tool, as printable ASCII only (no header splitting, no other site).
    let back = if q.back.starts_with(&t.base)
        && q.back.bytes().all(|b| b.is_ascii_graphic())
        && !q.back.contains("//")
        && !q.back.contains('\\')
    {
        q.back
    } else {
        t.base.clone()
    };
    let sep = if back.contains('?') { '&' } else { '?' };
    let to = format!("{back}{sep}posts={order}#discussion");
    let mut res = axum::response::Redirect::to(&to).into_response();
    res.headers_mut().append(
        axum::http::header::SET_COOKIE,
        crate::auth::cookie(
            crate::page::POSTS_ORDER_COOKIE,
            order.to_owned(),
            st.forge.config().secure_cookies(),
            axum_extra::extract::cookie::SameSite::Lax,
            Some(365 * 24 * 3600),
        ),
    );
    Ok(res)
}

/// `GET /_discuss/post/{id}/edit`: the post's text in an editor.
pub async fn edit_page(
    State(st): State<AppState>,
    t: ToolReq,
    _: PostOrModerate,
    Path(id): Path<String>,
    Query(q): Query<RefQuery>,
) -> PageResult {
    let r = ThreadRef {
        artifact: q.artifact,
        title: q.title,
        url: q.url,
        also: Vec::new(),
    };
    let (_, post) = load_post(&st, &t, &r, &q.sig, &id)
        .await
        .map_err(|e| t.page_error(e))?;
    if !may_change(&t, &post) {
        return Err(t.page_error(Error::Forbidden));
    }
    let signed = SignedRef {
        artifact: r.artifact,
        title: r.title,
        url: r.url,
        sig: q.sig,
    };
    let text = post.text.clone();
    Ok(render(&edit_form(&st, &t, signed, &post, text, None)))
}

/// `POST /_discuss/post/{id}/edit`: replaces the text; the earlier one stays in the post's
/// history.
pub async fn save_edit(
    State(st): State<AppState>,
    t: ToolReq,
    _: PostOrModerate,
    Path(id): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields(pairs);
    let (r, sig) = f.thread_ref();
    let (thread, post) = load_post(&st, &t, &r, &sig, &id)
        .await
        .map_err(|e| t.page_error(e))?;
    let text = f.text();
    let saved = discussion::edit_post(
        &st.forge,
        t.viewer(),
        &t.ctx,
        &t.tool,
        post.id,
        text.clone(),
    )
    .await;
    let again = |status: StatusCode, message: String| {
        let signed = SignedRef {
            artifact: r.artifact.clone(),
            title: r.title.clone(),
            url: r.url.clone(),
            sig: sig.clone(),
        };
        render_status(
            status,
            &edit_form(&st, &t, signed, &post, text.clone(), Some(message)),
        )
    };
    match saved {
        Ok(p) => Ok(redirect_with_flash(
            &st,
            &format!("{}#{}", thread.url, p.anchor()),
            "Your changes are saved.",
        )),
        Err(Error::Invalid(errs)) => Ok(again(StatusCode::UNPROCESSABLE_ENTITY, messages(&errs))),
        Err(e @ Error::Conflict { .. }) => Ok(again(StatusCode::CONFLICT, e.to_string())),
        Err(e) => Err(t.page_error(e)),
    }
}

/// `POST /_discuss/post/{id}/delete`: by its author or a moderator; replies stay.
pub async fn delete(
    State(st): State<AppState>,
    t: ToolReq,
    _: PostOrModerate,
    Path(id): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let f = Fields(pairs);
    let (r, sig) = f.thread_ref();
    let (thread, post) = load_post(&st, &t, &r, &sig, &id)
        .await
        .map_err(|e| t.page_error(e))?;
    discussion::delete_post(&st.forge, t.viewer(), &t.ctx, &t.tool, post.id)
        .await
        .map_err(|e| t.page_error(e))?;
    Ok(redirect_with_flash(
        &st,
        &format!("{}#discussion", thread.url),
        "The post is deleted.",
    ))
}

#[derive(Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    page: Option<u64>,
}

fn queue_status(s: Option<&str>) -> (Status, &'static str) {
    if s == Some("spam") {
        (Status::Spam, "spam")
    } else {
        (Status::Pending, "pending")
    }
}

fn queue_url<P>(t: &ToolReq<P>, status: &str, page: usize) -> String {
    if page > 1 {
        format!(
            "{}_moderate?status={}&page={page}",
            t.base,
            urlencode(status)
        )
    } else {
        format!("{}_moderate?status={}", t.base, urlencode(status))
    }
}

fn queue_paging(page: Option<u64>) -> Result<Paging, Error> {
    Paging::new(page, Some(QUEUE_PER_PAGE), QUEUE_PER_PAGE, MAX_PAGE)
}

/// `GET /_moderate`: posts waiting for a moderator (or marked as spam), newest first.
pub async fn queue_page(
    State(st): State<AppState>,
    t: ToolReq<CanModerate>,
    Query(q): Query<QueueQuery>,
) -> PageResult {
    let forge = &st.forge;
    let (status, name) = queue_status(q.status.as_deref());
    let paging = queue_paging(q.page)?;
    let (rows, total) = discussion::queue(forge, &t.ctx, &t.tool, status, paging)
        .await
        .map_err(|e| t.page_error(e))?;
    let rows = readable_rows(forge, &t.ctx, &t.tool, rows).await?;
    let pages = total.div_ceil(QUEUE_PER_PAGE).max(1);
    let current = paging.page;
    let tpl = QueueTpl {
        page: t.shell(forge, "Moderation queue"),
        base: t.base.clone(),
        status: name,
        rows: rows.iter().map(|(p, th)| QueueRow::new(p, th)).collect(),
        total,
        current,
        pages,
        prev: (current > 1).then(|| queue_url(&t, name, current - 1)),
        next: ((current as u64) < pages).then(|| queue_url(&t, name, current + 1)),
    };
    Ok(render(&tpl))
}

fn done_message(action: Moderation, n: usize) -> String {
    let posts = if n == 1 { "post" } else { "posts" };
    match action {
        Moderation::Approve => format!("{n} {posts} approved."),
        Moderation::Spam => format!("{n} {posts} marked as spam."),
        Moderation::Delete => format!("{n} {posts} deleted."),
    }
}

/// `POST /_moderate`: approves, marks as spam or deletes the selected posts (`post`, one or
/// more), from the queue (`status`, `page`: only posts listed there are acted on) or from a
/// thread (its signed reference: only posts of that thread).
pub async fn moderate(
    State(st): State<AppState>,
    t: ToolReq<CanModerate>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let forge = &st.forge;
    let f = Fields(pairs);
    let action = Moderation::parse(f.get("action"))
        .ok_or_else(|| PageError::from(Error::bad_request("Choose approve, spam or delete")))?;
    let mut wanted = Vec::new();
    for id in f.all("post") {
        wanted
            .push(ObjectId::parse_str(id.trim()).map_err(|_| {
                PageError::from(Error::bad_request("A selected post is not valid"))
            })?);
    }
    if wanted.len() > 500 {
        return Err(Error::bad_request("Select at most 500 posts at a time").into());
    }
    let (r, sig) = f.thread_ref();
    let (ids, back) = if r.artifact.is_empty() {
        // From the queue: the posts of the page the moderator saw that they may still read.
        let (status, name) = queue_status(Some(f.get("status")));
        let page = f.get("page").trim().parse::<u64>().ok();
        let paging = queue_paging(page)?;
        let (rows, _) = discussion::queue(forge, &t.ctx, &t.tool, status, paging)
            .await
            .map_err(|e| t.page_error(e))?;
        let rows = readable_rows(forge, &t.ctx, &t.tool, rows).await?;
        let ids: Vec<ObjectId> = rows
            .iter()
            .map(|(p, _)| p.id)
            .filter(|id| wanted.contains(id))
            .collect();
        (ids, queue_url(&t, name, paging.page))
    } else {
        check_ref(&st, &t, &r, &sig)
            .await
            .map_err(|e| t.page_error(e))?;
        let thread = discussion::existing_thread(forge, &t.tool, &r.artifact)
            .await?
            .ok_or(Error::NotFound("thread"))?;
        let mut ids = Vec::new();
        for id in wanted {
            let p = discussion::get_post(forge, t.viewer(), &t.ctx, &t.tool, id)
                .await
                .map_err(|e| t.page_error(e))?;
            if p.thread_id != thread.id {
                return Err(t.page_error(Error::NotFound("post")));
            }
            ids.push(id);
        }
        (ids, format!("{}#discussion", thread.url))
    };
    if ids.is_empty() {
        return Ok(redirect_with_flash(&st, &back, "Select the posts first."));
    }
    let n = discussion::moderate(forge, t.viewer(), &t.ctx, &t.tool, &ids, action)
        .await
        .map_err(|e| t.page_error(e))?;
    Ok(redirect_with_flash(&st, &back, &done_message(action, n)))
}
