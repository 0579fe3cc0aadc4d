//! Shared state of the web app. It holds only types from modules below it (client addresses, metrics,
//! load shedding, store health), so anything may depend on it without a cycle.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use forge_tools::Forge;

use crate::client_ip::Proxies;
use crate::load_shed::InFlight;
use crate::metrics::Metrics;
use crate::store_health::Health;

#[derive(Clone)]
pub struct AppState {
    pub forge: Forge,
    /// `uploadpack.packObjectsHook` for clones, when this process is the `forge` binary
    /// (see `forge_tools::tools::repo::pack_cache`); unset, clones run pack-objects.
    pub pack_hook: Option<Arc<str>>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub proxies: Arc<Proxies>,
    pub metrics: Arc<Metrics>,
    /// The store's health as `/healthz` last saw it.
    pub health: Arc<Health>,
    /// The cap on requests handled at once (load shedding).
    pub in_flight: InFlight,
    /// The web side of each tool kind, with state applied, keyed by kind.
    pub tool_routers: Arc<HashMap<&'static str, Router>>,
    /// The REST side of each tool kind, keyed by kind.
    pub tool_api_routers: Arc<HashMap<&'static str, Router>>,
}
