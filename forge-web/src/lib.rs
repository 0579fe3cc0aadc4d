//! Forge web application: HTTP routes, views, the REST API, and the start-up of the `forge`
//! command's services. Domain logic lives in `forge-tools`.
//!
//! Layers, each using only those before it: `page` (page context, layout, error page),
//! `error`, `extract`; `client_ip`, `metrics`, `load_shed`, `store_health`, then `state`; `auth`;
//! `ctx` (the request contexts every handler extracts); `views`; `tools` and `routes`;
//! `app`; `analytics` and `server` (processes and commands).

pub mod analytics;
pub mod app;
pub mod auth;
pub mod client_ip;
pub mod csrf;
pub mod ctx;
pub mod discussion;
pub mod download;
pub mod error;
pub mod etag;
pub mod extract;
pub mod git;
pub mod guard;
pub mod listen;
pub mod load_shed;
pub mod metrics;
pub mod page;
pub mod routes;
pub mod server;
pub mod state;
pub mod store_health;
pub mod tools;
pub mod upload;
pub mod views;
