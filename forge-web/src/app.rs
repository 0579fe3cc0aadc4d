//! The router: every URL of the site, with its middleware.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get, post};
use axum::{Extension, Router, middleware};
use forge_tools::Forge;
use forge_tools::projects::Neighborhood;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::client_ip::Proxies;
use crate::ctx::Nbhd;
use crate::error::PageError;
use crate::load_shed::InFlight;
use crate::metrics::Metrics;
use crate::routes::{
    accounts, activity, admin, assets, health, notify, projects, rest, search, site_admin, stats,
    stats_live, tools, webhooks,
};
use crate::state::AppState;

/// Builds the web app over an opened domain.
pub fn build(forge: Forge) -> Result<Router, prometheus::Error> {
    build_with(forge, None)
}

/// [`build`], with clones packed through `pack_hook` (an `uploadpack.packObjectsHook`
/// setting that runs the `forge` binary's hook).
pub fn build_with(forge: Forge, pack_hook: Option<String>) -> Result<Router, prometheus::Error> {
    build_served(forge, pack_hook, Arc::default())
}

/// [`build_with`], reporting its health through `health`, which the server tells when it
/// starts draining.
pub fn build_served(
    forge: Forge,
    pack_hook: Option<String>,
    health: Arc<crate::store_health::Health>,
) -> Result<Router, prometheus::Error> {
    let mut state = AppState {
        pack_hook: pack_hook.map(Arc::from),
        forge: forge.clone(),
        // Checked when the configuration was read.
        proxies: Arc::new(Proxies::new(
            forge.config().trusted_proxy_nets().unwrap_or_default(),
        )),
        metrics: Arc::new(Metrics::new()?),
        in_flight: InFlight::new(forge.config().max_requests),
        health,
        tool_routers: Arc::new(HashMap::new()),
        tool_api_routers: Arc::new(HashMap::new()),
    };
    state.tool_routers = Arc::new(crate::tools::routers(&state));
    state.tool_api_routers = Arc::new(crate::tools::api_routers(&state));
    Ok(router(state))
}

/// Routes of one project, shared by the `p` and `u` neighborhoods.
fn project_routes() -> Router<AppState> {
    Router::new()
        .route("/{name}", get(projects::add_slash))
        .route("/{name}/", get(projects::project_home))
        .route("/{name}/_watch", post(notify::watch))
        .route("/{name}/_follow", post(activity::follow))
        .route("/{name}/feed.atom", get(activity::project_feed))
        // Before the tool dispatch, for every tool kind alike (static segments win).
        .route("/{name}/{mount}/feed.atom", get(activity::tool_feed))
        .route(
            "/{name}/admin/",
            get(admin::settings_page).post(admin::save_settings),
        )
        .route("/{name}/admin/delete", post(admin::delete_project))
        // Statistics: the page, its live socket and CSV downloads (static segments win over
        // the tool dispatch below).
        .route("/{name}/stats/", get(stats::page))
        .route("/{name}/stats/live", get(stats_live::live))
        .route("/{name}/stats/{file}", get(stats::csv))
        .route(
            "/{name}/admin/members",
            get(admin::members_page).post(admin::set_member),
        )
        .route(
            "/{name}/admin/members/{username}/remove",
            post(admin::remove_member),
        )
        .route(
            "/{name}/admin/tools",
            get(admin::tools_page).post(admin::install_tool),
        )
        .route("/{name}/admin/tools/{mount}", post(admin::update_tool))
        .route(
            "/{name}/admin/tools/{mount}/uninstall",
            post(admin::uninstall_tool),
        )
        .merge(webhooks::page_routes())
        .route("/{name}/{mount}", get(tools::add_slash))
        .route("/{name}/{mount}/", any(tools::dispatch))
        .route("/{name}/{mount}/{*rest}", any(tools::dispatch))
}

fn rest_routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(rest::openapi))
        .route("/events", post(crate::routes::events::post_events))
        .route("/search", get(search::api))
        .route("/p", get(rest::list_projects).post(rest::create_project))
        .route(
            "/p/{name}",
            get(rest::get_project).delete(rest::delete_project),
        )
        .route("/p/{name}/stats", get(stats::api_series))
        .route("/p/{name}/admin/tools", post(rest::install_tool))
        .route(
            "/p/{name}/admin/tools/{mount}",
            axum::routing::delete(rest::uninstall_tool),
        )
        .route("/p/{name}/admin/members", post(rest::set_member))
        .route(
            "/p/{name}/admin/members/{username}",
            axum::routing::delete(rest::remove_member),
        )
        .merge(webhooks::rest_routes())
        .route("/p/{name}/{mount}/", any(rest::tool_dispatch))
        .route("/p/{name}/{mount}/{*rest}", any(rest::tool_dispatch))
        .fallback(rest::not_found)
        // The API addresses projects of the `p` neighborhood only.
        .layer(Extension(Nbhd(Neighborhood::Projects)))
}

fn router(state: AppState) -> Router {
    // Page views of projects and their tools are logged by one layer (see `ctx`).
    let views = middleware::from_fn_with_state(state.clone(), crate::ctx::track_views);
    let p = project_routes()
        .layer(Extension(Nbhd(Neighborhood::Projects)))
        .layer(views.clone());
    let u = project_routes()
        .layer(Extension(Nbhd(Neighborhood::Users)))
        .layer(views);
    Router::new()
        .route("/", get(projects::site_home))
        .route("/feed.atom", get(activity::site_feed))
        .route("/dashboard", get(activity::dashboard))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/static/{file}", get(assets::file))
        .route(assets::UPLOT_JS, get(assets::uplot_js))
        .route(assets::UPLOT_CSS, get(assets::uplot_css))
        .route(assets::UPLOT_LICENSE, get(assets::uplot_license))
        .route("/q", get(stats::query))
        .route("/auth/", get(accounts::auth_index))
        .route(
            "/auth/signup",
            get(accounts::signup_page).post(accounts::signup),
        )
        .route(
            "/auth/login",
            get(accounts::login_page).post(accounts::login),
        )
        .route("/auth/logout", post(accounts::logout))
        .route(
            "/auth/tokens",
            get(accounts::tokens_page).post(accounts::create_token),
        )
        .route("/auth/tokens/{id}/revoke", post(accounts::revoke_token))
        .route("/nf/admin/", get(site_admin::index))
        .route("/nf/admin/tasks", get(site_admin::tasks))
        .route("/nf/admin/tasks/{id}/retry", post(site_admin::retry_task))
        .route(
            "/p",
            get(|| async { axum::response::Redirect::permanent("/p/") }),
        )
        .route("/p/", get(projects::directory))
        .route("/search", get(search::page))
        .route(
            "/auth/unsubscribe",
            get(notify::unsubscribe_page).post(notify::unsubscribe),
        )
        .route(
            "/auth/notifications",
            get(notify::settings_page).post(notify::save_settings),
        )
        .route("/p/add", get(projects::add_page).post(projects::add))
        .nest("/p", p)
        .nest("/u", u)
        .nest("/rest", rest_routes())
        .route(
            "/git/{nbhd}/{project}/{repo}/info/refs",
            get(crate::git::info_refs),
        )
        .route(
            "/git/{nbhd}/{project}/{repo}/{service}",
            post(crate::git::rpc),
        )
        .fallback(|| async { PageError::from(forge_tools::Error::NotFound("page")) })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::session_layer,
        ))
        // Bodies are limited by `guard::body_limit`, per route and viewer, not by axum's
        // one default.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::guard::body_limit,
        ))
        .layer(middleware::from_fn_with_state(
            state.in_flight.clone(),
            crate::load_shed::shed_load,
        ))
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track,
        ))
        .layer(middleware::from_fn(crate::guard::security_headers))
        // A bug that panics answers 500 (logged) instead of dropping the connection.
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        // Validators on the uncompressed body, so one tag fits every encoding.
        .layer(middleware::from_fn(crate::etag::revalidate))
        // Pages compress only once their form tokens are masked, after the validator.
        .layer(middleware::from_fn(crate::csrf::mask_tokens))
        .layer(compression())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(tower_http::LatencyUnit::Micros),
                ),
        )
        .with_state(state)
}

/// Responses worth compressing: HTML pages whose form tokens are masked
/// ([`crate::csrf::Masked`]: compressing a page that holds a stable secret beside text a
/// visitor can make it reflect would leak the secret through sizes, BREACH), JSON, style
/// sheets, scripts, SVG, CSV, feeds and plain text, of 1 KB or more, for clients that ask
/// (gzip or brotli, at a level that costs little CPU). Never git's pack streams, archives or
/// binary files.
fn compression() -> tower_http::compression::CompressionLayer<
    tower_http::compression::predicate::And<tower_http::compression::predicate::SizeAbove, Text>,
> {
    use tower_http::compression::predicate::{Predicate, SizeAbove};
    use tower_http::compression::{CompressionLayer, CompressionLevel};
    CompressionLayer::new()
        .quality(CompressionLevel::Precise(4))
        .compress_when(SizeAbove::new(1024).and(Text))
}

/// The content types of [`COMPRESSIBLE`].
#[derive(Clone, Copy)]
struct Text;

impl tower_http::compression::Predicate for Text {
    fn should_compress<B: axum::body::HttpBody>(&self, response: &axum::http::Response<B>) -> bool {
        let ty = response
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if ty.starts_with("text/html") {
            return response.extensions().get::<crate::csrf::Masked>().is_some();
        }
        COMPRESSIBLE.iter().any(|t| ty.starts_with(t))
    }
}

/// Content types [`compression`] applies to (prefixes).
const COMPRESSIBLE: &[&str] = &[
    "application/json",
    "text/css",
    "text/javascript",
    "application/javascript",
    "image/svg+xml",
    "text/csv",
    "application/atom+xml",
    "application/xml",
    "text/plain",
];
