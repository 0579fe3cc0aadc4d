//! The web crate's integration tests, in one binary: each module below is one suite (run
//! one with `cargo test -p forge-web --test it <module>::`). One binary instead of one per
//! file keeps the build to a single link of the forge and its dependencies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod access_matrix;
mod accounts;
mod activity;
mod analytics_crash;
mod backup;
mod compression;
mod deploy_sync;
mod discussion;
mod embedded;
mod event_log;
mod events_api;
mod forum;
mod forum_mail;
mod forum_pages;
mod git;
mod hardening;
mod hostile;
mod http_caching;
mod listen;
mod live_relay;
mod local_cluster;
mod mail_in;
mod notify;
mod pack_cache;
mod projects;
mod readme;
mod round_trips;
mod search;
mod stats;
mod stream_loss;
mod tracker;
mod tracker_pages;
mod two_nodes;
mod webhooks;
mod wiki;
mod worker;
mod xref;
