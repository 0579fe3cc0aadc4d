//! Wiki attachments as pages see them: upload (a multipart form carrying its CSRF token),
//! download (with types and dispositions that keep browsers from running what users upload),
//! delete. The calls themselves are in `ops`, shared with the REST API.

use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use forge_tools::Error;

use super::common::{FilePath, page_url};
use super::ops;
use crate::auth::{CsrfForm, Empty, redirect_with_flash};
use crate::ctx::{ToolReq, Write};
use crate::error::PageResult;
use crate::page::error_response;
use crate::state::AppState;

pub async fn upload(
    State(st): State<AppState>,
    t: ToolReq<Write>,
    Path(name): Path<String>,
    mp: Multipart,
) -> PageResult {
    let csrf = t.page.csrf.clone();
    match ops::upload(&st, &t, &name, mp, Some(&csrf)).await {
        Ok((page, a)) => Ok(redirect_with_flash(
            &st,
            &page_url(&t, &page.name),
            &format!("Attached {}.", a.filename),
        )),
        Err(Error::Invalid(errs)) => Ok(error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Upload refused",
            &errs.to_string(),
        )),
        Err(e) => Err(e.into()),
    }
}

pub async fn download(
    State(st): State<AppState>,
    t: ToolReq,
    Path(FilePath { page, file }): Path<FilePath>,
) -> PageResult {
    let (_, a) = ops::attachment(&st, &t, &page, &file).await?;
    Ok(crate::upload::serve(&st, &t, &a).await?)
}

pub async fn remove(
    State(st): State<AppState>,
    t: ToolReq<Write>,
    Path(FilePath { page, file }): Path<FilePath>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    let (page, a) = ops::attachment(&st, &t, &page, &file).await?;
    st.forge.attachments().delete(st.forge.db(), &a).await?;
    Ok(redirect_with_flash(
        &st,
        &page_url(&t, &page.name),
        &format!("Removed {}.", a.filename),
    ))
}
