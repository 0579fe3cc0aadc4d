//! Files on posts, as the thread's pages see them: upload (a multipart form whose CSRF token
//! comes before the file), download (with the types and dispositions that keep browsers from
//! running what users upload), remove. Each route finds the post as the viewer may see it,
//! checks the viewer may read its thread's artifact (`NotFound` otherwise, as on the other
//! discussion routes), and leaves who may change it to the domain.

use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use forge_tools::Error;
use forge_tools::discussion::{self, Post, Thread};
use serde::Deserialize;

use super::access::{PostOrModerate, check_readable};
use super::handlers::parse_id;
use crate::auth::{CsrfForm, Empty, redirect_with_flash};
use crate::ctx::ToolReq;
use crate::error::PageResult;
use crate::page::error_response;
use crate::state::AppState;

#[derive(Deserialize)]
pub struct FilePath {
    id: String,
    file: String,
}

/// A post the viewer may see, on an artifact they may read, and its thread.
async fn load<P>(st: &AppState, t: &ToolReq<P>, id: &str) -> Result<(Post, Thread), Error> {
    let id = parse_id(id, "post")?;
    let (post, thread) =
        discussion::post_in_thread(&st.forge, t.viewer(), &t.ctx, &t.tool, id).await?;
    check_readable(&st.forge, &t.ctx, &t.tool, &thread.artifact).await?;
    Ok((post, thread))
}

/// Where the post is on its artifact's page.
fn back(thread: &Thread, post: &Post) -> String {
    format!("{}#{}", thread.url, post.anchor())
}

/// `POST /_discuss/post/{id}/attachments`: a file on a post (its author or a moderator).
pub async fn upload(
    State(st): State<AppState>,
    t: ToolReq,
    _: PostOrModerate,
    Path(id): Path<String>,
    mp: Multipart,
) -> PageResult {
    let forge = &st.forge;
    let (post, thread) = load(&st, &t, &id).await.map_err(|e| t.page_error(e))?;
    discussion::for_attaching(t.viewer(), &t.ctx, &t.tool, &post).map_err(|e| t.page_error(e))?;
    let author = t.viewer().username().unwrap_or_default().to_owned();
    let csrf = t.page.csrf.clone();
    match crate::upload::receive(forge, t.tool.id, post.id, &author, mp, Some(&csrf)).await {
        Ok(a) => {
            discussion::attached(forge, t.viewer(), &t.ctx, &t.tool, &post, &a);
            Ok(redirect_with_flash(
                &st,
                &back(&thread, &post),
                &format!("Attached {}.", a.filename),
            ))
        }
        Err(Error::Invalid(errs)) => Ok(error_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Upload refused",
            &errs.to_string(),
        )),
        Err(e) => Err(t.page_error(e)),
    }
}

/// `GET /_discuss/post/{id}/attachments/{file}`: whoever may see the post.
pub async fn download(
    State(st): State<AppState>,
    t: ToolReq,
    Path(FilePath { id, file }): Path<FilePath>,
) -> PageResult {
    let (post, _) = load(&st, &t, &id).await.map_err(|e| t.page_error(e))?;
    let a = discussion::attachment(&st.forge, &t.tool, &post, &file)
        .await
        .map_err(|e| t.page_error(e))?;
    Ok(crate::upload::serve(&st, &t, &a).await?)
}

/// `POST /_discuss/post/{id}/attachments/{file}/delete`: its author or a moderator.
pub async fn remove(
    State(st): State<AppState>,
    t: ToolReq,
    _: PostOrModerate,
    Path(FilePath { id, file }): Path<FilePath>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    let (post, thread) = load(&st, &t, &id).await.map_err(|e| t.page_error(e))?;
    let a = discussion::remove_attachment(&st.forge, t.viewer(), &t.ctx, &t.tool, &post, &file)
        .await
        .map_err(|e| t.page_error(e))?;
    Ok(redirect_with_flash(
        &st,
        &back(&thread, &post),
        &format!("Removed {}.", a.filename),
    ))
}
