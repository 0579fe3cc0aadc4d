//! A wiki page's lifecycle: renaming (the old name keeps redirecting), deleting and restoring.

use axum::extract::{Path, State};
use forge_tools::Error;
use forge_tools::tools::wiki::{self, Saved};
use serde::Deserialize;

use super::common::{Delete, page_url};
use super::ops;
use crate::auth::{CsrfForm, Empty, redirect_with_flash};
use crate::ctx::{ToolReq, Write};
use crate::error::PageResult;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    name: String,
}

pub async fn rename(
    State(st): State<AppState>,
    t: ToolReq<Write>,
    Path(name): Path<String>,
    CsrfForm(f): CsrfForm<RenameForm>,
) -> PageResult {
    let page = ops::load(&st, &t, &name).await?;
    match wiki::rename(&st.forge, t.viewer(), &t.ctx, &t.tool, &page, &f.name).await {
        Ok(Saved::Updated(p)) => Ok(redirect_with_flash(
            &st,
            &page_url(&t, &p.name),
            &format!("Renamed from {name}."),
        )),
        Ok(_) => {
            Err(Error::conflict("edit_conflict", "The page changed meanwhile; try again").into())
        }
        Err(Error::Invalid(errs)) => Ok(redirect_with_flash(
            &st,
            &page_url(&t, &name),
            &format!("Not renamed: {errs}"),
        )),
        Err(e) => Err(e.into()),
    }
}

pub async fn delete(
    State(st): State<AppState>,
    t: ToolReq<Delete>,
    Path(name): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    set_deleted(&st, &t, &name, true).await
}

pub async fn undelete(
    State(st): State<AppState>,
    t: ToolReq<Delete>,
    Path(name): Path<String>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    set_deleted(&st, &t, &name, false).await
}

async fn set_deleted(st: &AppState, t: &ToolReq<Delete>, name: &str, deleted: bool) -> PageResult {
    ops::set_deleted(st, t, name, deleted).await?;
    let message = if deleted {
        format!("Deleted {name}. It can be restored from this page.")
    } else {
        format!("Restored {name}.")
    };
    Ok(redirect_with_flash(st, &page_url(t, name), &message))
}
