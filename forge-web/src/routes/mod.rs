//! HTTP handlers, one module per area. Handlers stay thin: extract (the request contexts of
//! `ctx` check access), call the domain, render.

pub mod accounts;
pub mod activity;
pub mod admin;
pub mod assets;
pub mod events;
pub mod health;
pub mod notify;
pub mod projects;
pub mod rest;
pub mod search;
pub mod site_admin;
pub mod stats;
pub mod stats_live;
pub mod tools;
pub mod webhooks;
