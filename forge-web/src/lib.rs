//! Forge web application: HTTP routes, views, the REST API, and the start-up of the `forge`
//! command's services. Domain logic lives in `forge-tools`.

pub mod app;
pub mod auth;
pub mod download;
pub mod error;
pub mod extract;
pub mod git;
pub mod guard;
pub mod limits;
pub mod listen;
pub mod metrics;
pub mod routes;
pub mod server;
pub mod state;
pub mod tools;
pub mod views;
