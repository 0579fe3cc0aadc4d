//! HTTP handlers, one module per area. Handlers stay thin: extract, check access through the
//! domain, call the domain, render.

pub mod accounts;
pub mod admin;
pub mod health;
pub mod notify;
pub mod projects;
pub mod rest;
pub mod search;
pub mod site_admin;
pub mod tools;

use axum::extract::Path;
use forge_tools::projects::Neighborhood;
use forge_tools::{Forge, ProjectCtx};

use crate::auth::PageCtx;
use crate::error::PageError;

/// Which neighborhood a nested project router serves (set as a router extension).
#[derive(Clone, Copy)]
pub struct Nbhd(pub Neighborhood);

/// Loads the project named in the path for a page handler.
pub async fn load(
    forge: &Forge,
    page: &PageCtx,
    nbhd: Nbhd,
    shortname: &str,
) -> Result<ProjectCtx, PageError> {
    forge
        .load_project(&page.viewer, nbhd.0, shortname)
        .await
        .map_err(|e| PageError::from(e).with_next(&page.path))
}

/// Path of `/{project}/...` routes.
pub type ProjectPath = Path<String>;
