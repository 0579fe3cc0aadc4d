//! Request contexts: one extractor per kind of request, used by pages and REST alike, each
//! carrying what its handlers need with the access for the route already checked.
//!
//! - [`ProjectReq<P>`]: the project named in the path, loaded for the viewer, with project
//!   permission `P` checked ([`ProjectAdmin`] for the admin pages and API).
//! - [`ToolReq<P>`]: the tool instance the dispatcher found under the project, with tool
//!   permission `P` checked.
//! - [`SiteAdmin`]: a logged-in site administrator (`/nf/admin/`).
//! - [`SignedIn`]: any logged-in user.
//!
//! They read nothing but the request head, so a request without the permission is refused
//! before its body is read (a handler's body extractor always runs last). Refusals take the
//! caller's format: the API's JSON error under `/rest/`, an error page (or the log-in page)
//! elsewhere.
//!
//! Page views are logged here too, one way for every page of a project: [`track_views`]
//! (a layer on the project pages of `/p` and `/u`) gives each GET a [`ViewSlot`], the project
//! context fills in the project and the tool dispatcher the tool's mount, a handler may say
//! what was viewed ([`ToolReq::viewed`]), and once the response is ready a `page.view` is
//! logged if it is a page: a 200 HTML response that is not a download. REST calls, feeds,
//! files, redirects, errors and form posts are not views.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use forge_tools::acl::perm;
use forge_tools::events::EventContext;
use forge_tools::projects::Neighborhood;
use forge_tools::tool::ToolInstance;
use forge_tools::users::User;
use forge_tools::{Error, Forge, ProjectCtx, Viewer};

use crate::error::{ApiError, PageError};
use crate::extract::{bad_request, is_api};
use crate::page::{Page, PageCtx};
use crate::state::AppState;

/// A permission a route requires, as a type, so the check is declared in the handler's
/// signature.
pub trait Permission: Send + Sync + 'static {
    const NAME: &'static str;
}

/// Reading (checked on every tool request by the dispatcher, and on every project load).
#[derive(Clone, Copy)]
pub struct Read;
/// Changing a tool's content.
#[derive(Clone, Copy)]
pub struct Write;
/// Administering a project or a tool.
#[derive(Clone, Copy)]
pub struct Admin;

impl Permission for Read {
    const NAME: &'static str = perm::READ;
}
impl Permission for Write {
    const NAME: &'static str = perm::WRITE;
}
impl Permission for Admin {
    const NAME: &'static str = perm::ADMIN;
}

/// Which neighborhood a nested project router serves (set as a router extension).
#[derive(Clone, Copy)]
pub struct Nbhd(pub Neighborhood);

/// A refusal in the caller's format. `next`: where to come back to after logging in.
pub fn refuse(api: bool, e: Error, next: &str) -> Response {
    if api {
        ApiError(e).into_response()
    } else {
        PageError::from(e).with_next(next).into_response()
    }
}

/// A project request: the project named by the path's `name`, in the router's neighborhood,
/// as the viewer sees it, with `P` checked on it.
pub struct ProjectReq<P = Read> {
    pub page: PageCtx,
    pub ctx: ProjectCtx,
    /// Where this request's page view is noted (pages only).
    view: Option<ViewSlot>,
    checked: PhantomData<P>,
}

/// The project admin pages' and API's context.
pub type ProjectAdmin = ProjectReq<Admin>;

impl<P> ProjectReq<P> {
    pub fn viewer(&self) -> &Viewer {
        &self.page.viewer
    }

    /// The project's URL (with a trailing slash).
    pub fn url(&self) -> String {
        self.ctx.project.url()
    }

    /// The page shell inside the project; `active` names the current navigation entry.
    pub fn shell(&self, forge: &Forge, title: impl Into<String>, active: &str) -> Page {
        Page::new(&self.page, title).in_project(forge, &self.ctx, active)
    }
}

impl<P: Permission> FromRequestParts<AppState> for ProjectReq<P> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let page = PageCtx::from_request_parts(parts, st).await?;
        let api = is_api(parts);
        let params = RawPathParams::from_request_parts(parts, st)
            .await
            .map_err(|e| bad_request(api, &e.body_text()))?;
        let name = params
            .iter()
            .find_map(|(k, v)| (k == "name").then(|| v.to_owned()));
        let nbhd = parts.extensions.get::<Nbhd>().map(|n| n.0);
        let loaded = async {
            let (Some(name), Some(nbhd)) = (name, nbhd) else {
                return Err(Error::Internal("project route without a project".into()));
            };
            let ctx = st.forge.load_project(&page.viewer, nbhd, &name).await?;
            ctx.authorize(P::NAME)?;
            Ok(ctx)
        };
        match loaded.await {
            Ok(ctx) => {
                let view = parts.extensions.get::<ViewSlot>().cloned();
                if let Some(v) = &view {
                    v.set(page.viewer.event_context(Some(&ctx.project), None));
                }
                Ok(Self {
                    page,
                    ctx,
                    view,
                    checked: PhantomData,
                })
            }
            Err(e) => Err(refuse(api, e, &page.path)),
        }
    }
}

/// A tool request: the tool instance the dispatcher found under the mount point, the project
/// it belongs to, and the viewer, with `P` checked on the tool.
pub struct ToolReq<P = Read> {
    pub page: PageCtx,
    pub ctx: ProjectCtx,
    pub tool: ToolInstance,
    /// The tool's URL, with a trailing slash.
    pub base: String,
    view: Option<ViewSlot>,
    checked: PhantomData<P>,
}

impl<P> Clone for ToolReq<P> {
    fn clone(&self) -> Self {
        Self {
            page: self.page.clone(),
            ctx: self.ctx.clone(),
            tool: self.tool.clone(),
            base: self.base.clone(),
            view: self.view.clone(),
            checked: PhantomData,
        }
    }
}

impl ToolReq<Read> {
    /// The tool mounted at `mount` in a loaded project, if the viewer may read it. The
    /// dispatcher hands this to the tool's router as a request extension.
    pub fn open(project: ProjectReq, mount: &str) -> Result<Self, Error> {
        let ProjectReq {
            page, ctx, view, ..
        } = project;
        let tool = ctx.tool(mount).cloned().ok_or(Error::NotFound("tool"))?;
        ctx.authorize_tool(&tool, perm::READ)?;
        let base = format!("{}{}/", ctx.project.url(), tool.mount);
        if let Some(v) = &view {
            v.set(
                page.viewer
                    .event_context(Some(&ctx.project), Some(&tool.mount)),
            );
        }
        Ok(Self {
            page,
            ctx,
            tool,
            base,
            view,
            checked: PhantomData,
        })
    }
}

impl<P> ToolReq<P> {
    pub fn viewer(&self) -> &Viewer {
        &self.page.viewer
    }

    /// Whether the viewer holds a further permission on the tool (for what a page offers).
    pub fn can(&self, permission: &str) -> bool {
        self.ctx.can_tool(&self.tool, permission)
    }

    /// The page shell inside the project, with the tool as the current entry.
    pub fn shell(&self, forge: &Forge, title: &str) -> Page {
        Page::new(&self.page, title).in_project(forge, &self.ctx, &self.base)
    }

    /// An error for a page, sending an anonymous viewer to log in and back here.
    pub fn page_error(&self, e: Error) -> PageError {
        PageError::from(e).with_next(&self.page.path)
    }

    /// Says what this page shows, for its `page.view` (`extra`; a wiki page's name). Nothing
    /// when the request is not a page.
    pub fn viewed(&self, extra: bson::Document) {
        if let Some(v) = &self.view {
            v.detail(extra);
        }
    }
}

impl<P: Permission, S: Send + Sync> FromRequestParts<S> for ToolReq<P> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let api = is_api(parts);
        let Some(t) = parts.extensions.get::<ToolReq<Read>>() else {
            let e = Error::Internal("tool route outside the tool dispatcher".into());
            return Err(refuse(api, e, "/"));
        };
        if let Err(e) = t.ctx.authorize_tool(&t.tool, P::NAME) {
            return Err(refuse(api, e, &t.page.path));
        }
        Ok(Self {
            page: t.page.clone(),
            ctx: t.ctx.clone(),
            tool: t.tool.clone(),
            base: t.base.clone(),
            view: t.view.clone(),
            checked: PhantomData,
        })
    }
}

/// A logged-in viewer; anyone else is sent to log in and come back.
pub struct SignedIn {
    pub page: PageCtx,
    pub user: User,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let page = PageCtx::from_request_parts(parts, st).await?;
        match page.viewer.require_user() {
            Ok(user) => Ok(Self {
                user: user.clone(),
                page,
            }),
            Err(e) => Err(refuse(is_api(parts), e, &page.path)),
        }
    }
}

/// A logged-in site administrator (`/nf/admin/`); others are refused (403), anonymous
/// viewers sent to log in.
pub struct SiteAdmin {
    pub page: PageCtx,
}

impl FromRequestParts<AppState> for SiteAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let SignedIn { page, user } = SignedIn::from_request_parts(parts, st).await?;
        if user.site_admin {
            Ok(Self { page })
        } else {
            Err(refuse(is_api(parts), Error::Forbidden, &page.path))
        }
    }
}

/// What a page request viewed, as the request contexts note it (see [`track_views`]): the
/// event's context (viewer, project, tool) and what the handler said it showed.
#[derive(Clone, Default)]
pub struct ViewSlot(Arc<Mutex<Viewed>>);

#[derive(Default)]
struct Viewed {
    context: Option<EventContext>,
    extra: Option<bson::Document>,
}

impl ViewSlot {
    fn with(&self, f: impl FnOnce(&mut Viewed)) {
        // A poisoned lock only loses a view.
        if let Ok(mut v) = self.0.lock() {
            f(&mut v);
        }
    }

    fn set(&self, context: EventContext) {
        self.with(|v| v.context = Some(context));
    }

    fn detail(&self, extra: bson::Document) {
        self.with(|v| v.extra = Some(extra));
    }

    fn take(&self) -> Option<(EventContext, Option<bson::Document>)> {
        let mut out = None;
        self.with(|v| out = v.context.take().map(|c| (c, v.extra.take())));
        out
    }
}

/// Whether a response is a page someone viewed: 200, HTML, and not a file download (those
/// carry a `Content-Disposition`).
fn is_page(res: &Response) -> bool {
    let h = res.headers();
    res.status() == StatusCode::OK
        && h.get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"))
        && !h.contains_key(header::CONTENT_DISPOSITION)
}

/// The layer that logs page views (`page.view`) of a project's pages and its tools' pages:
/// one per GET answered with a page, with the context the project (and tool) request context
/// noted. Requests that never loaded a project (a refusal, a redirect to add a slash) log
/// nothing.
pub async fn track_views(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    let slot = ViewSlot::default();
    req.extensions_mut().insert(slot.clone());
    let res = next.run(req).await;
    if is_page(&res)
        && let Some((context, extra)) = slot.take()
    {
        let extra = extra.map_or(bson::Bson::Null, bson::Bson::Document);
        st.forge.page_view(context, extra);
    }
    res
}
