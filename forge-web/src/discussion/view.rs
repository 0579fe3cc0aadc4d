//! What the discussion shows: the "Discussion" section a tool embeds in an artifact's page
//! (posts in threaded or flat order, paged, with their history, status, files and controls,
//! and the form to post), the page a post is edited on (also the answer to a refused post,
//! with the text kept), and the moderation queue.

use std::collections::HashMap;

use askama::Template;
use bson::oid::ObjectId;
use forge_tools::attachments::{Attachment, human_size};
use forge_tools::discussion::{self, Order, Post, PostEdit, Status, ThreadRef};
use forge_tools::paging::{MAX_PAGE, Paging};
use forge_tools::tool::xref;
use forge_tools::{Error, Forge, ProjectCtx, markdown};
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;

use super::access::check_readable;
use crate::ctx::ToolReq;
use crate::error::urlencode;
use crate::page::Page;
use crate::views::date;

/// Posts per page of a thread.
pub const PER_PAGE: u64 = 50;
/// Replies are indented by their depth up to this many levels; deeper ones line up.
const MAX_INDENT: i32 = 6;
/// Posts rendered at once (each resolves its references, then renders).
const RENDER_CONCURRENCY: usize = 8;

/// The section's own query parameters, read beside the tool page's: `posts=flat` for the
/// oldest-first order (else the viewer's remembered choice), `posts_page` for a page of a
/// long thread, `post` for the page holding that post (permalinks), `quote` for the form
/// prefilled with a reply quoting that post. Unreadable values are ignored rather than
/// refused, so they never break the page they are part of.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SectionQuery {
    #[serde(default)]
    pub posts: Option<String>,
    #[serde(default)]
    pub posts_page: Option<String>,
    #[serde(default)]
    pub post: Option<String>,
    #[serde(default)]
    pub quote: Option<String>,
}

impl SectionQuery {
    /// The order asked for, else the one the viewer chose last (its cookie), else threaded.
    fn order(&self, remembered: Option<&str>) -> Order {
        match self.posts.as_deref().or(remembered) {
            Some("flat") => Order::Flat,
            _ => Order::Threaded,
        }
    }

    fn post_id(&self) -> Option<ObjectId> {
        self.post
            .as_deref()
            .and_then(|p| ObjectId::parse_str(p.trim()).ok())
    }

    fn quote_id(&self) -> Option<ObjectId> {
        self.quote
            .as_deref()
            .and_then(|p| ObjectId::parse_str(p.trim()).ok())
    }

    fn page(&self) -> u64 {
        self.posts_page
            .as_deref()
            .and_then(|p| p.trim().parse::<u64>().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
    }
}

/// A thread reference with its signature, as the forms carry it.
pub struct SignedRef {
    pub artifact: String,
    pub title: String,
    pub url: String,
    pub sig: String,
}

impl SignedRef {
    pub async fn new(
        forge: &Forge,
        tool: &forge_tools::tool::ToolInstance,
        r: &ThreadRef,
    ) -> Result<Self, Error> {
        Ok(Self {
            sig: discussion::sign_ref(forge, tool.id, r).await?,
            artifact: r.artifact.clone(),
            title: r.title.clone(),
            url: r.url.clone(),
        })
    }

    /// The reference as query parameters (for links to the edit page).
    pub fn query(&self) -> String {
        serde_urlencoded::to_string([
            ("artifact", self.artifact.as_str()),
            ("title", &self.title),
            ("url", &self.url),
            ("sig", &self.sig),
        ])
        .unwrap_or_default()
    }

    /// The reference as hidden form fields.
    pub fn fields(&self) -> Vec<(String, String)> {
        vec![
            ("artifact".into(), self.artifact.clone()),
            ("title".into(), self.title.clone()),
            ("url".into(), self.url.clone()),
            ("sig".into(), self.sig.clone()),
        ]
    }
}

/// An earlier text of a post.
pub struct EditView {
    /// Who replaced it.
    pub author: String,
    pub when: String,
    pub text: String,
}

impl From<&PostEdit> for EditView {
    fn from(e: &PostEdit) -> Self {
        Self {
            author: display_author(&e.author),
            when: date(e.when),
            text: e.text.clone(),
        }
    }
}

/// A file attached to a post.
pub struct FileView {
    pub filename: String,
    /// Where it downloads (and, with `/delete`, where it is removed).
    pub url: String,
    pub size: String,
    /// A raster image, shown as a thumbnail.
    pub is_image: bool,
}

impl FileView {
    fn new(base: &str, post: &Post, a: &Attachment) -> Self {
        Self {
            url: format!(
                "{}/{}",
                files_url(base, post),
                xref::encode_segment(&a.filename)
            ),
            size: human_size(a.size.max(0) as u64),
            is_image: a.is_image(),
            filename: a.filename.clone(),
        }
    }
}

/// The URL files are uploaded to; each file is below it.
fn files_url(base: &str, post: &Post) -> String {
    format!("{base}_discuss/post/{}/attachments", post.id.to_hex())
}

pub struct PostView {
    pub id: String,
    pub anchor: String,
    /// The post replied to (shown in the flat order).
    pub parent_anchor: Option<String>,
    pub author: String,
    pub author_url: Option<String>,
    pub created: String,
    pub created_iso: String,
    /// The text rendered (sanitized).
    pub html: String,
    /// Left margin in `em`.
    pub indent: i32,
    /// `ok`, `pending` or `spam`.
    pub status: &'static str,
    /// When the text was last replaced.
    pub edited: Option<String>,
    /// Earlier texts, oldest first.
    pub edits: Vec<EditView>,
    /// The viewer may edit and delete it, and attach and remove files (their own post, or a
    /// moderator).
    pub can_change: bool,
    /// Its files, by name.
    pub files: Vec<FileView>,
    /// Where files are uploaded to (and below which they are).
    pub files_url: String,
    /// The post's address: the thread's page that holds it.
    pub permalink: String,
    /// The section again with the form quoting this post.
    pub quote_url: String,
}

fn display_author(name: &str) -> String {
    if name.is_empty() {
        "anonymous".into()
    } else {
        name.to_owned()
    }
}

/// Whether the viewer may edit or delete a post: its author (who may still post) or a
/// moderator. The domain decides again.
pub fn may_change<P>(t: &ToolReq<P>, p: &Post) -> bool {
    discussion::may_change(t.viewer(), &t.ctx, &t.tool, p)
}

#[derive(Template)]
#[template(path = "discussion/thread.html")]
pub struct ThreadTpl {
    pub csrf: String,
    /// The tool's URL, with a trailing slash.
    pub base: String,
    pub r: SignedRef,
    pub ref_query: String,
    pub honeypot: &'static str,
    pub posts: Vec<PostView>,
    /// Posts the viewer may see in the whole thread.
    pub total: u64,
    pub flat: bool,
    pub threaded_url: String,
    pub flat_url: String,
    pub current: u64,
    pub pages: u64,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub signed_in: bool,
    pub can_post: bool,
    pub can_moderate: bool,
    pub login_url: String,
    /// The largest file a post may carry ("10 MB").
    pub max_upload: String,
    /// The thread takes no new posts.
    pub closed: bool,
    /// The form's text and parent when it quotes a post (`?quote=`).
    pub quote: Option<QuoteView>,
}

/// A reply form prefilled with a quoted post.
pub struct QuoteView {
    pub parent: String,
    pub author: String,
    pub text: String,
}

/// A post's text as a markdown blockquote, then an empty line to write under.
pub fn quoted(text: &str) -> String {
    let mut out: String = text
        .lines()
        .map(|l| {
            if l.is_empty() {
                ">\n".to_owned()
            } else {
                format!("> {l}\n")
            }
        })
        .collect();
    out.push('\n');
    out
}

/// Where the section's order links go: a route that remembers the choice, then back.
fn order_link(base: &str, url: &str, flat: bool) -> String {
    let q = serde_urlencoded::to_string([
        ("posts", if flat { "flat" } else { "threaded" }),
        ("back", url),
    ])
    .unwrap_or_default();
    format!("{base}_discuss/order?{q}")
}

/// A page of the thread with one more parameter (`post=`, `quote=`), and an anchor.
fn with_param(url: &str, name: &str, value: &str, anchor: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{name}={}#{anchor}", urlencode(value))
}

/// A link to the section in another order or page.
fn section_link(url: &str, flat: bool, page: u64) -> String {
    let mut q: Vec<String> = Vec::new();
    if flat {
        q.push("posts=flat".into());
    }
    if page > 1 {
        q.push(format!("posts_page={page}"));
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    if q.is_empty() {
        format!("{url}#discussion")
    } else {
        format!("{url}{sep}{}#discussion", q.join("&"))
    }
}

/// The "Discussion" section of an artifact's page, as HTML the tool's page template shows
/// with `{{ discussion|safe }}`: the posts the viewer may see, and the form to post. Nothing is
/// created on reading: without a thread it is the empty state and the form. `NotFound` when
/// the viewer may not read the artifact.
pub async fn section<P>(
    st: &crate::state::AppState,
    t: &ToolReq<P>,
    r: &ThreadRef,
    query: &SectionQuery,
) -> Result<String, Error> {
    let forge = &st.forge;
    check_readable(forge, &t.ctx, &t.tool, &r.artifact).await?;
    let order = query.order(t.page.posts_order.as_deref());
    let flat = order == Order::Flat;
    let thread = discussion::existing_thread(forge, &t.tool, &r.artifact).await?;
    let (posts, total, current, pages) = match &thread {
        None => (Vec::new(), 0, 1, 1),
        Some(thread) => {
            let total =
                discussion::count_visible(forge, t.viewer(), &t.ctx, &t.tool, thread).await?;
            let pages = total.div_ceil(PER_PAGE).clamp(1, MAX_PAGE);
            // A permalink opens the page holding its post (in this order), whatever page
            // was asked for.
            let wanted = match query.post_id() {
                Some(id) => {
                    discussion::position(forge, t.viewer(), &t.ctx, &t.tool, thread, order, id)
                        .await?
                        .map(|before| before / PER_PAGE + 1)
                }
                None => None,
            };
            let current = wanted.unwrap_or_else(|| query.page()).min(pages);
            let paging = Paging::new(Some(current), Some(PER_PAGE), PER_PAGE, MAX_PAGE)?;
            let posts = discussion::posts(
                forge,
                t.viewer(),
                &t.ctx,
                &t.tool,
                thread,
                order,
                Some(paging),
            )
            .await?;
            (posts, total, current, pages)
        }
    };
    // The references of the whole page resolved at once: one look-up per tool they address,
    // however many posts make them.
    let joined: Vec<&str> = posts.iter().map(|p| p.text.as_str()).collect();
    let (resolved, _) = xref::resolve(forge, &t.ctx, &t.tool, &joined.join("\n\n"), false).await?;
    let resolved = &resolved;
    // The files of the whole page in one query.
    let mut files = discussion::attachments_of(forge, &t.tool, &posts).await?;
    let base = &t.base;
    // The section's own address on this page (order and page kept), for quote links.
    let here = section_link(&r.url, flat, current);
    let here = here.trim_end_matches("#discussion");
    let posts: Vec<(Post, Vec<Attachment>)> = posts
        .into_iter()
        .map(|p| {
            let f = files.remove(&p.id).unwrap_or_default();
            (p, f)
        })
        .collect();
    let views: Vec<PostView> = futures::stream::iter(posts)
        .map(|(p, files)| async move {
            let html = markdown::render_async(p.text.clone(), resolved.clone()).await?;
            Ok::<_, Error>(PostView {
                id: p.id.to_hex(),
                anchor: p.anchor(),
                parent_anchor: p.parent.map(|id| format!("post-{}", id.to_hex())),
                author_url: (!p.author.is_empty()).then(|| format!("/u/{}/", p.author)),
                author: display_author(&p.author),
                created: date(p.created),
                created_iso: p.created.try_to_rfc3339_string().unwrap_or_default(),
                html,
                indent: if flat {
                    0
                } else {
                    p.depth.clamp(0, MAX_INDENT) * 2
                },
                status: match p.status {
                    Status::Ok => "ok",
                    Status::Pending => "pending",
                    Status::Spam => "spam",
                },
                edited: p.edited.map(date),
                edits: p.edits.iter().map(EditView::from).collect(),
                can_change: may_change(t, &p),
                files: files.iter().map(|a| FileView::new(base, &p, a)).collect(),
                files_url: files_url(base, &p),
                permalink: with_param(&r.url, "post", &p.id.to_hex(), &p.anchor()),
                quote_url: with_param(here, "quote", &p.id.to_hex(), "discussion-form"),
            })
        })
        .buffered(RENDER_CONCURRENCY)
        .try_collect()
        .await?;
    // `?quote=`: the form answers that post, its text quoted (any post the viewer sees in
    // this thread, not only those on this page).
    let quote = match (query.quote_id(), &thread) {
        (Some(id), Some(thread)) => {
            match discussion::get_post(forge, t.viewer(), &t.ctx, &t.tool, id).await {
                Ok(p) if p.thread_id == thread.id => Some(QuoteView {
                    parent: p.id.to_hex(),
                    author: display_author(&p.author),
                    text: quoted(&p.text),
                }),
                Ok(_) | Err(Error::NotFound(_)) => None,
                Err(e) => return Err(e),
            }
        }
        _ => None,
    };
    let closed = thread.as_ref().is_some_and(|th| th.closed);
    let signed = SignedRef::new(forge, &t.tool, r).await?;
    let tpl = ThreadTpl {
        csrf: t.page.csrf.clone(),
        base: t.base.clone(),
        ref_query: signed.query(),
        r: signed,
        honeypot: discussion::HONEYPOT,
        posts: views,
        total,
        flat,
        threaded_url: order_link(base, &r.url, false),
        flat_url: order_link(base, &r.url, true),
        current,
        pages,
        prev: (current > 1).then(|| section_link(&r.url, flat, current - 1)),
        next: (current < pages).then(|| section_link(&r.url, flat, current + 1)),
        signed_in: t.viewer().user.is_some(),
        can_post: t.can(discussion::perm::POST),
        can_moderate: t.can(discussion::perm::MODERATE),
        login_url: format!(
            "/auth/login?next={}",
            urlencode(&format!("{}#discussion", r.url))
        ),
        max_upload: human_size(forge.attachments().max_bytes),
        closed,
        quote,
    };
    tpl.render()
        .map_err(|e| Error::Internal(format!("discussion template: {e}")))
}

/// A text as it will show once posted (same references, same sanitizing renderer), for the
/// "Preview" buttons; nothing is saved.
pub async fn render_preview<P>(forge: &Forge, t: &ToolReq<P>, text: &str) -> Result<String, Error> {
    let (resolved, _) = xref::resolve(forge, &t.ctx, &t.tool, text, false).await?;
    markdown::render_async(text.to_owned(), resolved).await
}

/// The page a post is written on outside its thread: editing, or a refused post handed
/// back with its text.
#[derive(Template)]
#[template(path = "discussion/form.html")]
pub struct FormTpl {
    pub page: Page,
    pub heading: String,
    /// What the post belongs to ("page Home") and where it is.
    pub title: String,
    pub back: String,
    pub action: String,
    pub hidden: Vec<(String, String)>,
    pub text: String,
    pub message: Option<String>,
    pub button: String,
    /// The honeypot field's name, on forms that post anew.
    pub honeypot: Option<&'static str>,
    /// The text rendered, when the writer asked for a preview.
    pub preview: Option<String>,
    /// Where the "Preview" button sends the form (`_discuss/preview`).
    pub preview_action: String,
}

pub struct QueueRow {
    pub id: String,
    pub author: String,
    pub created: String,
    pub title: String,
    pub link: String,
    pub text: String,
    pub edited: bool,
}

impl QueueRow {
    pub fn new(p: &Post, thread: &discussion::Thread) -> Self {
        Self {
            id: p.id.to_hex(),
            author: display_author(&p.author),
            created: date(p.created),
            title: thread.title.clone(),
            link: format!("{}#{}", thread.url, p.anchor()),
            text: p.text.clone(),
            edited: p.edited.is_some(),
        }
    }
}

#[derive(Template)]
#[template(path = "discussion/queue.html")]
pub struct QueueTpl {
    pub page: Page,
    pub base: String,
    /// `pending` or `spam`.
    pub status: &'static str,
    pub rows: Vec<QueueRow>,
    pub total: u64,
    pub current: usize,
    pub pages: u64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// Rows of a queue page whose artifacts the viewer may read (a moderator may still not see
/// a private ticket: its posts stay out of their queue).
pub async fn readable_rows(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &forge_tools::tool::ToolInstance,
    rows: Vec<(Post, discussion::Thread)>,
) -> Result<Vec<(Post, discussion::Thread)>, Error> {
    let mut seen: HashMap<String, bool> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for (p, thread) in rows {
        let ok = match seen.get(&thread.artifact) {
            Some(ok) => *ok,
            None => {
                let ok = match check_readable(forge, ctx, tool, &thread.artifact).await {
                    Ok(()) => true,
                    Err(Error::NotFound(_)) => false,
                    Err(e) => return Err(e),
                };
                seen.insert(thread.artifact.clone(), ok);
                ok
            }
        };
        if ok {
            out.push((p, thread));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_links_keep_order_and_page() {
        assert_eq!(section_link("/w/A/", false, 1), "/w/A/#discussion");
        assert_eq!(
            section_link("/w/A/", true, 3),
            "/w/A/?posts=flat&posts_page=3#discussion"
        );
        assert_eq!(
            section_link("/t/1?x=1", false, 2),
            "/t/1?x=1&posts_page=2#discussion"
        );
    }
}
