//! The forum index (`GET /`) and a forum's page (`GET /{forum}/`, `POST /{forum}/watch`):
//! announcements first, then the forums with their counters and last post, or a forum's
//! topics (sticky first, then by last activity) a page at a time.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use forge_tools::discussion;
use forge_tools::notify::{self, Target};
use forge_tools::paging::{MAX_PAGE, Paging};
use forge_tools::tools::forum::model::Forum;
use forge_tools::tools::forum::{forums, topics};
use forge_tools::{Error, Forge};
use serde::Deserialize;

use super::common::{PER_PAGE, announcement_rows, feed_url, nav, topic_row};
use super::views::{ForumRow, ForumTpl, IndexTpl, LastPostView};
use crate::auth::{CsrfForm, redirect_with_flash};
use crate::ctx::ToolReq;
use crate::error::PageResult;
use crate::extract::Query;
use crate::page::render;
use crate::state::AppState;
use crate::views::{WatchButton, date};

fn forum_url<P>(t: &ToolReq<P>, f: &Forum) -> String {
    format!("{}{}/", t.base, f.shortname)
}

/// `GET /`: announcements, then every forum the viewer sees.
pub async fn index(State(st): State<AppState>, t: ToolReq) -> PageResult {
    let forge = &st.forge;
    let all = forums::list(forge, &t.ctx, &t.tool)
        .await
        .map_err(|e| t.page_error(e))?;
    let ann = topics::announcements(forge, &t.ctx, &t.tool).await?;
    let can_post = t.can(discussion::perm::POST);
    let rows = all
        .iter()
        .map(|f| ForumRow {
            shortname: f.shortname.clone(),
            name: f.name.clone(),
            description: f.description.clone(),
            url: forum_url(&t, f),
            topics: f.num_topics,
            posts: f.num_posts,
            last: f.last_post.as_ref().map(|l| LastPostView {
                author: if l.author.is_empty() {
                    "anonymous".into()
                } else {
                    l.author.clone()
                },
                when: date(l.at),
                subject: l.subject.clone(),
                url: topics::url(&t.ctx, &t.tool, f, l.topic_id),
            }),
            hidden: f.hidden,
            deleted: f.deleted,
            new_url: (can_post && !f.deleted).then(|| format!("{}new", forum_url(&t, f))),
        })
        .collect();
    let tpl = IndexTpl {
        page: t.shell(forge, &t.tool.label),
        nav: nav(&t),
        announcements: announcement_rows(&t, &all, &ann),
        forums: rows,
        feed_url: feed_url(&t),
    };
    Ok(render(&tpl))
}

/// `GET /{forum}`: to the forum's address.
pub async fn add_slash(
    State(st): State<AppState>,
    t: ToolReq,
    Path(forum): Path<String>,
) -> PageResult {
    let f = forums::get(&st.forge, &t.ctx, &t.tool, &forum)
        .await
        .map_err(|e| t.page_error(e))?;
    Ok(Redirect::permanent(&forum_url(&t, &f)).into_response())
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    /// Read leniently: garbage is the first page, past the end the last.
    #[serde(default)]
    page: Option<String>,
}

async fn watch_button<P>(
    forge: &Forge,
    t: &ToolReq<P>,
    f: &Forum,
) -> Result<Option<WatchButton>, Error> {
    if t.viewer().user.is_none() {
        return Ok(None);
    }
    let watching = notify::is_watching(
        forge,
        t.viewer(),
        &t.ctx,
        Target::Artifact {
            tool: &t.tool,
            key: f.key(),
            title: String::new(),
        },
    )
    .await?;
    let url = forum_url(t, f);
    Ok(Some(WatchButton {
        action: format!("{url}watch"),
        tool: t.tool.mount.clone(),
        artifact: f.key(),
        watching,
        label: "forum".into(),
        next: url,
    }))
}

/// `GET /{forum}/`: announcements, then the forum's topics.
pub async fn forum(
    State(st): State<AppState>,
    t: ToolReq,
    Path(forum): Path<String>,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let forge = &st.forge;
    let f = forums::get(forge, &t.ctx, &t.tool, &forum)
        .await
        .map_err(|e| t.page_error(e))?;
    let pages = (f.num_topics.max(0) as u64)
        .div_ceil(PER_PAGE)
        .clamp(1, MAX_PAGE);
    let current = q
        .page
        .as_deref()
        .and_then(|p| p.trim().parse::<u64>().ok())
        .unwrap_or(1)
        .clamp(1, pages);
    let paging = Paging::new(Some(current), Some(PER_PAGE), PER_PAGE, MAX_PAGE)?;
    let (list, total) = topics::list(forge, &t.ctx, &t.tool, &f, paging)
        .await
        .map_err(|e| t.page_error(e))?;
    let all = forums::list(forge, &t.ctx, &t.tool).await?;
    let ann = topics::announcements(forge, &t.ctx, &t.tool).await?;
    let url = forum_url(&t, &f);
    let page_url = |n: u64| {
        if n > 1 {
            format!("{url}?page={n}")
        } else {
            url.clone()
        }
    };
    let tpl = ForumTpl {
        page: t.shell(forge, &f.name),
        nav: nav(&t),
        name: f.name.clone(),
        description: f.description.clone(),
        hidden: f.hidden,
        announcements: announcement_rows(&t, &all, &ann),
        // Announcements are listed above, not again among the topics.
        topics: list
            .iter()
            .filter(|k| !k.announcement)
            .map(|k| topic_row(&t, &f, k))
            .collect(),
        total,
        current: paging.page,
        pages,
        prev: (current > 1).then(|| page_url(current - 1)),
        next: (current < pages).then(|| page_url(current + 1)),
        posting_address: forums::posting_address(
            &f,
            &t.tool,
            &t.ctx.project,
            &forge.config().mail_domain(),
        ),
        new_url: (t.can(discussion::perm::POST) && !f.deleted).then(|| format!("{url}new")),
        watch: watch_button(forge, &t, &f).await?,
        feed_url: feed_url(&t),
    };
    Ok(render(&tpl))
}

#[derive(Deserialize)]
pub struct WatchForm {
    #[serde(default)]
    action: String,
}

/// `POST /{forum}/watch`: mail about every new topic and post in the forum (`action=watch`),
/// or no more (`unwatch`).
pub async fn watch(
    State(st): State<AppState>,
    t: ToolReq,
    Path(forum): Path<String>,
    CsrfForm(form): CsrfForm<WatchForm>,
) -> PageResult {
    let forge = &st.forge;
    let f = forums::get(forge, &t.ctx, &t.tool, &forum)
        .await
        .map_err(|e| t.page_error(e))?;
    let target = Target::Artifact {
        tool: &t.tool,
        key: f.key(),
        title: format!("forum \"{}\"", f.name),
    };
    let on = form.action == "watch";
    let done = if on {
        notify::watch(forge, t.viewer(), &t.ctx, target).await
    } else {
        notify::unwatch(forge, t.viewer(), &t.ctx, target).await
    };
    done.map_err(|e| t.page_error(e))?;
    let message = if on {
        format!("You are watching {}.", f.name)
    } else {
        format!("You no longer watch {}.", f.name)
    };
    Ok(redirect_with_flash(&st, &forum_url(&t, &f), &message))
}
