//! The page shell every HTML answer shares: the request's page context (viewer, CSRF token,
//! flash, path), the layout model, rendering, and the error page. It depends on nothing else
//! in the crate, so errors, extractors and views can all build on it.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use forge_tools::tool::NavEntry;
use forge_tools::{Forge, ProjectCtx, Viewer, acl::perm};

/// Everything a page handler needs to render the shell: viewer, CSRF token, flash, path.
/// Extracted by `auth` (its `FromRequestParts` impl lives there, next to the viewer's).
#[derive(Clone)]
pub struct PageCtx {
    pub viewer: Viewer,
    /// Authenticated by a valid access token rather than a session cookie.
    pub token_auth: bool,
    pub csrf: String,
    pub flash: Option<String>,
    /// The whole path and query, where to come back to after logging in.
    pub path: String,
    /// The order the viewer last chose for discussion threads (`flat` or `threaded`, from
    /// the [`POSTS_ORDER_COOKIE`]), used where a page's address names none.
    pub posts_order: Option<String>,
}

/// The cookie remembering the viewer's choice of discussion order.
pub const POSTS_ORDER_COOKIE: &str = "forge_posts";

/// The logged-in user as the header shows them.
pub struct UserInfo {
    pub username: String,
    pub display_name: String,
    pub site_admin: bool,
}

/// The project header and navigation.
pub struct ProjectShell {
    pub name: String,
    pub shortname: String,
    pub url: String,
    pub private: bool,
    pub nav: Vec<NavEntry>,
    pub is_admin: bool,
    /// Which entry is current: a tool URL, `admin`, or empty for the home page.
    pub active: String,
}

/// What every page's layout needs.
pub struct Page {
    pub title: String,
    pub user: Option<UserInfo>,
    pub csrf: String,
    pub flash: Option<String>,
    pub path: String,
    pub project: Option<ProjectShell>,
    /// The page's Atom feed (`<link rel="alternate">`), when it has a public one.
    pub feed: Option<String>,
}

impl Page {
    pub fn new(ctx: &PageCtx, title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            user: ctx.viewer.user.as_ref().map(|u| UserInfo {
                username: u.username.clone(),
                display_name: u.display_name.clone(),
                site_admin: u.site_admin,
            }),
            csrf: ctx.csrf.clone(),
            flash: ctx.flash.clone(),
            path: ctx.path.clone(),
            project: None,
            feed: None,
        }
    }

    /// A page without request context (error pages built outside handlers).
    pub fn bare(title: &str) -> Self {
        Self {
            title: title.into(),
            user: None,
            csrf: String::new(),
            flash: None,
            path: String::new(),
            project: None,
            feed: None,
        }
    }

    pub fn in_project(mut self, forge: &Forge, pctx: &ProjectCtx, active: &str) -> Self {
        let p = &pctx.project;
        self.project = Some(ProjectShell {
            name: p.name.clone(),
            shortname: p.shortname.clone(),
            url: p.url(),
            private: !p.is_public(),
            nav: forge.nav(pctx),
            is_admin: pctx.can(perm::ADMIN),
            active: active.to_owned(),
        });
        // Feeds show what anyone may read: a private project has none. A tool page links
        // its tool's feed, the others the project's (a user's, on a personal project).
        if p.is_public() {
            let base = if active.ends_with('/') {
                active.to_owned()
            } else {
                p.url()
            };
            self.feed = Some(format!("{base}feed.atom"));
        }
        self
    }

    /// Links an Atom feed from the page's head.
    pub fn with_feed(mut self, url: impl Into<String>) -> Self {
        self.feed = Some(url.into());
        self
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorTpl {
    pub page: Page,
    pub status: u16,
    pub message: String,
}

/// Renders a template as a 200 page (500 if the template itself fails).
pub fn render(t: &impl Template) -> Response {
    render_status(StatusCode::OK, t)
}

pub fn render_status(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

/// The HTML of an error page.
pub fn error_page(status: u16, title: &str, message: &str) -> String {
    ErrorTpl {
        page: Page::bare(title),
        status,
        message: message.to_owned(),
    }
    .render()
    .unwrap_or_else(|_| format!("{status} {title}"))
}

/// An error page as a response.
pub fn error_response(status: StatusCode, title: &str, message: &str) -> Response {
    (status, Html(error_page(status.as_u16(), title, message))).into_response()
}
