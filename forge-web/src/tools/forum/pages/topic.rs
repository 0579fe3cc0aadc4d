//! A topic's page (`GET /{forum}/thread/{id}/`): subject, badges, notices (closed, waiting
//! for a moderator), watch buttons, the moderators' controls, and the topic's posts (the
//! shared discussion section). A moved topic's old address redirects to the new one.
//! Moderators' forms: `POST /{forum}/thread/{id}/moderate` (close, reopen, sticky,
//! announcement, move, delete) and `POST /_block` (block or unblock someone).

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use forge_tools::notify::{self, Target};
use forge_tools::tools::forum::model::{Forum, Topic};
use forge_tools::tools::forum::moderation::{self, TopicAction};
use forge_tools::tools::forum::{forums, topics};
use forge_tools::{Error, FieldErrors, Forge};
use serde::Deserialize;

use super::common::{Moderate, nav, topic_id};
use super::views::{ForumChoice, TopicTpl};
use crate::auth::{CsrfForm, redirect_with_flash};
use crate::ctx::ToolReq;
use crate::discussion::SectionQuery;
use crate::error::{PageError, PageResult};
use crate::extract::Query;
use crate::page::render;
use crate::state::AppState;
use crate::views::{WatchButton, date};

/// `/{forum}/thread/{id}/`.
#[derive(Deserialize)]
pub struct TopicPath {
    forum: String,
    id: String,
}

/// `GET /{forum}/thread/{id}`: to the topic's address.
pub async fn add_slash(t: ToolReq, Path(p): Path<TopicPath>) -> PageResult {
    let id = topic_id(&p.id)?;
    Ok(
        Redirect::permanent(&format!("{}{}/thread/{}/", t.base, p.forum, id.to_hex()))
            .into_response(),
    )
}

async fn watch_buttons<P>(
    forge: &Forge,
    t: &ToolReq<P>,
    f: &Forum,
    k: &Topic,
    url: &str,
) -> Result<Vec<WatchButton>, Error> {
    if t.viewer().user.is_none() {
        return Ok(Vec::new());
    }
    let watching = |key: String| {
        notify::is_watching(
            forge,
            t.viewer(),
            &t.ctx,
            Target::Artifact {
                tool: &t.tool,
                key,
                title: String::new(),
            },
        )
    };
    let on_topic = watching(k.key()).await?;
    let on_forum = watching(f.key()).await?;
    Ok(vec![
        // The topic through the project's watch route (topics are search documents)...
        WatchButton {
            action: format!("{}_watch", t.ctx.project.url()),
            tool: t.tool.mount.clone(),
            artifact: k.key(),
            watching: on_topic,
            label: "topic".into(),
            next: url.to_owned(),
        },
        // ...the forum through the forum's own.
        WatchButton {
            action: format!("{}{}/watch", t.base, f.shortname),
            tool: t.tool.mount.clone(),
            artifact: f.key(),
            watching: on_forum,
            label: "forum".into(),
            next: url.to_owned(),
        },
    ])
}

/// `GET /{forum}/thread/{id}/`: the topic and its posts (the section's `posts`,
/// `posts_page`, `post` and `quote` parameters apply), or a redirect to where it moved.
pub async fn view(
    State(st): State<AppState>,
    t: ToolReq,
    Path(p): Path<TopicPath>,
    Query(q): Query<SectionQuery>,
) -> PageResult {
    let forge = &st.forge;
    let id = topic_id(&p.id)?;
    let (f, k) = topics::get(forge, t.viewer(), &t.ctx, &t.tool, id)
        .await
        .map_err(|e| t.page_error(e))?;
    let url = topics::url(&t.ctx, &t.tool, &f, k.id);
    if f.shortname != p.forum {
        // Moved to another forum: the same page there, its query kept.
        let query = t
            .page
            .path
            .split_once('?')
            .map(|(_, q)| format!("?{q}"))
            .unwrap_or_default();
        // 301, the status links and search engines know for a page that moved.
        return Ok((
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, format!("{url}{query}"))],
        )
            .into_response());
    }
    topics::count_view(forge, k.id);
    let r = topics::thread_ref(&t.ctx, &t.tool, &f, &k);
    let discussion = crate::discussion::section(&st, &t, &r, &q)
        .await
        .map_err(|e| t.page_error(e))?;
    let can_moderate = t.can(forge_tools::acl::perm::MODERATE);
    let move_to = if can_moderate {
        forums::list(forge, &t.ctx, &t.tool)
            .await?
            .into_iter()
            .filter(|o| o.id != f.id && !o.deleted)
            .map(|o| ForumChoice {
                shortname: o.shortname,
                name: o.name,
            })
            .collect()
    } else {
        Vec::new()
    };
    let tpl = TopicTpl {
        page: t.shell(forge, &k.subject),
        nav: nav(&t),
        subject: k.subject.clone(),
        forum_name: f.name.clone(),
        forum_url: format!("{}{}/", t.base, f.shortname),
        author: if k.author.is_empty() {
            "anonymous".into()
        } else {
            k.author.clone()
        },
        created: date(k.created),
        sticky: k.sticky,
        closed: k.closed,
        announcement: k.announcement,
        pending: !k.live,
        is_author: !k.author.is_empty() && t.viewer().username() == Some(k.author.as_str()),
        can_moderate,
        moderate_url: format!("{url}moderate"),
        move_to,
        watches: watch_buttons(forge, &t, &f, &k, &url).await?,
        discussion,
    };
    Ok(render(&tpl))
}

#[derive(Deserialize)]
pub struct ModerateForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    forum: Option<String>,
}

fn done_message(a: &TopicAction) -> String {
    match a {
        TopicAction::Close => "The topic is closed.".into(),
        TopicAction::Reopen => "The topic is open again.".into(),
        TopicAction::Sticky(true) => "The topic is sticky.".into(),
        TopicAction::Sticky(false) => "The topic is no longer sticky.".into(),
        TopicAction::Announcement(true) => "The topic is an announcement.".into(),
        TopicAction::Announcement(false) => "The topic is no longer an announcement.".into(),
        TopicAction::Move(to) => format!("The topic is moved to {to}."),
        TopicAction::Delete => "The topic is deleted.".into(),
    }
}

fn messages(errs: &FieldErrors) -> String {
    errs.0
        .iter()
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `POST /{forum}/thread/{id}/moderate`: `action` (`close`, `reopen`, `sticky`,
/// `unsticky`, `announce`, `unannounce`, `move` with `forum`, `delete`).
pub async fn moderate(
    State(st): State<AppState>,
    t: ToolReq<Moderate>,
    Path(p): Path<TopicPath>,
    CsrfForm(form): CsrfForm<ModerateForm>,
) -> PageResult {
    let forge = &st.forge;
    let id = topic_id(&p.id)?;
    let action =
        TopicAction::parse(form.action.trim(), form.forum.as_deref()).ok_or_else(|| {
            PageError::from(Error::bad_request(
                "Choose close, reopen, sticky, unsticky, announce, unannounce, move or delete",
            ))
        })?;
    let (f, _) = topics::get(forge, t.viewer(), &t.ctx, &t.tool, id)
        .await
        .map_err(|e| t.page_error(e))?;
    let here = topics::url(&t.ctx, &t.tool, &f, id);
    match moderation::topic(forge, t.viewer(), &t.ctx, &t.tool, id, action.clone()).await {
        Ok(k) => {
            let to = if action == TopicAction::Delete {
                format!("{}{}/", t.base, f.shortname)
            } else {
                let now = forums::by_id(forge, &t.ctx, &t.tool, k.forum_id).await?;
                topics::url(&t.ctx, &t.tool, &now, k.id)
            };
            Ok(redirect_with_flash(&st, &to, &done_message(&action)))
        }
        // A move to a forum that is not there: back, saying so.
        Err(Error::Invalid(errs)) => Ok(redirect_with_flash(&st, &here, &messages(&errs))),
        Err(e) => Err(t.page_error(e)),
    }
}

#[derive(Deserialize)]
pub struct BlockForm {
    #[serde(default)]
    username: String,
    /// `1` blocks, `0` unblocks.
    #[serde(default)]
    block: String,
    /// Where to come back to (a page of this tool; else the admin page).
    #[serde(default)]
    next: String,
}

/// `POST /_block`: blocks (`block=1`) or unblocks (`block=0`) `username` from posting in the
/// tool's forums.
pub async fn block(
    State(st): State<AppState>,
    t: ToolReq<Moderate>,
    CsrfForm(form): CsrfForm<BlockForm>,
) -> PageResult {
    let next = if form.next.starts_with(&t.base)
        && form.next.bytes().all(|b| b.is_ascii_graphic())
        && !form.next.contains("//")
        && !form.next.contains('\\')
    {
        form.next.clone()
    } else if t.can(forge_tools::acl::perm::ADMIN) {
        format!("{}_admin", t.base)
    } else {
        t.base.clone()
    };
    let on = form.block.trim() == "1";
    let username = form.username.trim();
    match moderation::block(&st.forge, t.viewer(), &t.ctx, &t.tool, username, on).await {
        Ok(()) => {
            let message = if on {
                format!("{username} may no longer post here.")
            } else {
                format!("{username} may post here again.")
            };
            Ok(redirect_with_flash(&st, &next, &message))
        }
        Err(Error::Invalid(errs)) => Ok(redirect_with_flash(&st, &next, &messages(&errs))),
        Err(e) => Err(t.page_error(e)),
    }
}
