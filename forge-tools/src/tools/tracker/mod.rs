pub mod config;
pub mod query;
