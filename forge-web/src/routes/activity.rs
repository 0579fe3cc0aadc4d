//! Activity: the dashboard (what the viewer follows), follow/unfollow, and the Atom feeds of
//! the site, a project, a tool and a user. Feeds show only what anonymous visitors may read,
//! whoever asks, so they are the same for everyone and answer `If-None-Match` with 304.

use atom_syndication as atom;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use forge_tools::acl::perm;
use forge_tools::activity::follows;
use forge_tools::activity::stream::{self, ActivityPage, Source};
use forge_tools::paging::Paging;
use forge_tools::projects::{self, Neighborhood};
use forge_tools::{Error, Viewer, users};
use serde::Deserialize;

use crate::auth::{CsrfForm, redirect_with_flash};
use crate::ctx::{Nbhd, ProjectReq, SignedIn};
use crate::error::PageResult;
use crate::extract::Query;
use crate::page::{Page, render};
use crate::routes::accounts::safe_next;
use crate::state::AppState;
use crate::views::{ActivityRow, DashboardTpl, ProjectCard};

/// Entries per dashboard page.
const PER_PAGE: u64 = 20;

#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<u64>,
}

/// `GET /dashboard`: the activity of what the viewer follows and the projects they belong to.
pub async fn dashboard(
    State(st): State<AppState>,
    SignedIn { page, user }: SignedIn,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let paging = Paging::new(q.page, None, PER_PAGE, stream::MAX_PAGE)?;
    let found = stream::read(&st.forge, &page.viewer, Source::Followed(user.id), paging).await?;
    let mine = projects::of_member(st.forge.db(), user.id).await?;
    let n = paging.page;
    Ok(render(&DashboardTpl {
        page: Page::new(&page, "Dashboard"),
        activity: found.entries.iter().map(ActivityRow::from).collect(),
        prev: (n > 1).then(|| format!("/dashboard?page={}", n - 1)),
        next: found.more.then(|| format!("/dashboard?page={}", n + 1)),
        projects: mine
            .iter()
            .filter(|p| p.neighborhood == Neighborhood::Projects)
            .map(ProjectCard::from)
            .collect(),
    }))
}

#[derive(Deserialize)]
pub struct FollowForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    next: String,
}

/// `POST /<nbhd>/<project>/_follow`: follow or unfollow the project (on `/u/`, the user).
pub async fn follow(
    State(st): State<AppState>,
    _: SignedIn,
    p: ProjectReq,
    CsrfForm(form): CsrfForm<FollowForm>,
) -> PageResult {
    let on = match form.action.as_str() {
        "follow" => true,
        "unfollow" => false,
        _ => return Err(Error::invalid("action", "use follow or unfollow").into()),
    };
    follows::set_following(st.forge.db(), p.viewer(), &p.ctx, on).await?;
    let what = &p.ctx.project.name;
    let message = if on {
        format!("You follow {what}: its activity is on your dashboard.")
    } else {
        format!("You no longer follow {what}.")
    };
    let next = if form.next.is_empty() {
        p.url()
    } else {
        safe_next(&form.next)
    };
    Ok(redirect_with_flash(&st, &next, &message))
}

/// `GET /feed.atom`: the whole site's public activity.
pub async fn site_feed(State(st): State<AppState>, headers: HeaderMap) -> PageResult {
    let found = stream::public(&st.forge, Source::Site).await?;
    Ok(feed(&st, &headers, "/feed.atom", "Forge", &found))
}

/// `GET /p/<project>/feed.atom` (a project's) and `GET /u/<username>/feed.atom` (what the
/// user did anywhere public). A project anonymous may not read is a 404, like its pages.
pub async fn project_feed(
    State(st): State<AppState>,
    Extension(nbhd): Extension<Nbhd>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> PageResult {
    let anonymous = Viewer::default();
    let ctx = st.forge.load_project(&anonymous, nbhd.0, &name).await?;
    let path = format!("{}feed.atom", ctx.project.url());
    match nbhd.0 {
        Neighborhood::Projects => {
            let found = stream::public(&st.forge, Source::Project(&ctx.project)).await?;
            Ok(feed(&st, &headers, &path, &ctx.project.name, &found))
        }
        Neighborhood::Users => {
            let user = users::by_username(st.forge.db(), &name)
                .await?
                .ok_or(Error::NotFound("user"))?;
            let found = stream::public(&st.forge, Source::User(&user.username)).await?;
            Ok(feed(&st, &headers, &path, &user.display_name, &found))
        }
    }
}

/// `GET /<nbhd>/<project>/<mount>/feed.atom`: one tool's public activity, whatever its kind.
pub async fn tool_feed(
    State(st): State<AppState>,
    Extension(nbhd): Extension<Nbhd>,
    Path((name, mount)): Path<(String, String)>,
    headers: HeaderMap,
) -> PageResult {
    let anonymous = Viewer::default();
    let ctx = st.forge.load_project(&anonymous, nbhd.0, &name).await?;
    let tool = ctx
        .tool(&mount)
        .filter(|t| ctx.can_tool(t, perm::READ))
        .ok_or(Error::NotFound("tool"))?;
    let found = stream::public(&st.forge, Source::Tool(&ctx.project, &tool.mount)).await?;
    let path = format!("{}{}/feed.atom", ctx.project.url(), tool.mount);
    let title = format!("{} · {}", ctx.project.name, tool.label);
    Ok(feed(&st, &headers, &path, &title, &found))
}

/// The feed as an answer: 304 when the client holds this version, else the Atom document.
fn feed(
    st: &AppState,
    headers: &HeaderMap,
    path: &str,
    title: &str,
    found: &ActivityPage,
) -> Response {
    let etag = format!("\"{}\"", found.fingerprint());
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        });
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    let base = st.forge.config().base_url();
    let mut res = if cached {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/atom+xml; charset=utf-8"),
            )],
            atom_document(&base, path, title, found),
        )
            .into_response()
    };
    res.headers_mut().insert(header::ETAG, etag_value);
    // Same for everyone; clients check back with the tag instead of trusting a copy.
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// The Atom document of a page of activity. Every field is text the writer escapes.
fn atom_document(base: &str, path: &str, title: &str, found: &ActivityPage) -> String {
    let tag = tag_prefix(base);
    let time = |d: bson::DateTime| {
        chrono::DateTime::from_timestamp_millis(d.timestamp_millis())
            .unwrap_or_default()
            .fixed_offset()
    };
    let entries: Vec<atom::Entry> = found
        .entries
        .iter()
        .map(|e| {
            let who = e.user.clone().unwrap_or_else(|| "someone".into());
            atom::Entry {
                id: format!("{tag}event:{}", e.id),
                title: atom::Text::plain(format!(
                    "{who} {} {} in {}",
                    e.verb(),
                    e.activity.title,
                    e.project_name
                )),
                updated: time(e.timestamp),
                authors: vec![atom::Person {
                    name: who.clone(),
                    email: None,
                    uri: e.user.as_ref().map(|u| format!("{base}/u/{u}/")),
                    ..Default::default()
                }],
                links: vec![atom::Link {
                    href: format!("{base}{}", e.activity.url),
                    rel: "alternate".into(),
                    mime_type: Some("text/html".into()),
                    ..Default::default()
                }],
                summary: e.activity.summary.clone().map(atom::Text::plain),
                ..Default::default()
            }
        })
        .collect();
    let updated = found
        .entries
        .first()
        .map(|e| time(e.timestamp))
        .unwrap_or_default();
    let html = path.trim_end_matches("feed.atom");
    let feed = atom::Feed {
        title: atom::Text::plain(format!("{title}: activity")),
        id: format!("{base}{path}"),
        updated,
        links: vec![
            atom::Link {
                href: format!("{base}{path}"),
                rel: "self".into(),
                mime_type: Some("application/atom+xml".into()),
                ..Default::default()
            },
            atom::Link {
                href: format!("{base}{html}"),
                rel: "alternate".into(),
                mime_type: Some("text/html".into()),
                ..Default::default()
            },
        ],
        generator: Some(atom::Generator {
            value: "Forge".into(),
            uri: None,
            version: None,
        }),
        entries,
        ..Default::default()
    };
    feed.to_string()
}

/// The start of this forge's entry ids: a `tag:` URI (RFC 4151) on the base URL's host, so
/// ids stay the same whatever path or scheme serves the feed.
fn tag_prefix(base: &str) -> String {
    let host = base
        .split("://")
        .nth(1)
        .unwrap_or(base)
        .split(['/', ':'])
        .next()
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost");
    format!("tag:{host},2026:forge:")
}
