//! Files attached to a ticket, as pages see them: upload (a multipart form carrying its CSRF
//! token; those who may update tickets, and the reporter), download, remove. Each change is a
//! line in the ticket's history.

use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use forge_tools::Error;
use forge_tools::tools::tracker::actions;

use super::super::req::{FilePath, num_of};
use crate::auth::{CsrfForm, Empty, redirect_with_flash};
use crate::ctx::ToolReq;
use crate::error::PageResult;
use crate::page::error_response;
use crate::state::AppState;

pub async fn upload(
    State(st): State<AppState>,
    t: ToolReq,
    Path(num): Path<String>,
    mp: Multipart,
) -> PageResult {
    let forge = &st.forge;
    let k = actions::for_attaching(forge, t.viewer(), &t.ctx, &t.tool, num_of(&num)?).await?;
    let author = t.viewer().username().unwrap_or_default().to_owned();
    let csrf = t.page.csrf.clone();
    let url = actions::ticket_url(&t.ctx, &t.tool, k.ticket_num);
    match crate::upload::receive(forge, t.tool.id, k.id, &author, mp, Some(&csrf)).await {
        Ok(a) => {
            actions::attachment_changed(forge, t.viewer(), &t.ctx, &t.tool, &k, &a.filename, true)
                .await?;
            Ok(redirect_with_flash(
                &st,
                &url,
                &format!("Attached {}.", a.filename),
            ))
        }
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
    Path(FilePath { num, file }): Path<FilePath>,
) -> PageResult {
    let (_, a) =
        actions::attachment(&st.forge, t.viewer(), &t.ctx, &t.tool, num_of(&num)?, &file).await?;
    Ok(crate::upload::serve(&st, &t, &a).await?)
}

pub async fn remove(
    State(st): State<AppState>,
    t: ToolReq,
    Path(FilePath { num, file }): Path<FilePath>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    let forge = &st.forge;
    let (k, a) =
        actions::remove_attachment(forge, t.viewer(), &t.ctx, &t.tool, num_of(&num)?, &file)
            .await?;
    Ok(redirect_with_flash(
        &st,
        &actions::ticket_url(&t.ctx, &t.tool, k.ticket_num),
        &format!("Removed {}.", a.filename),
    ))
}
