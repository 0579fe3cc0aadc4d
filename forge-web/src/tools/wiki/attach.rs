//! Wiki attachments: upload (multipart, streamed to the attachment store), download (with
//! types and dispositions that keep browsers from running what users upload), delete.

use axum::Extension;
use axum::body::Body;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use forge_tools::acl::perm;
use forge_tools::attachments::Attachment;
use forge_tools::wiki;
use forge_tools::{Error, Forge};
use futures::TryStreamExt;
use subtle::ConstantTimeEq;

use super::pages::{authorize, load};
use crate::auth::{CsrfForm, redirect_with_flash};
use crate::download::Download;
use crate::error::{PageError, PageResult};
use crate::routes::accounts::Empty;
use crate::state::AppState;
use crate::tools::ToolRequest;

/// Reads a multipart upload: the `file` field is streamed into the store. With `csrf`, a
/// `csrf_token` field must come first and match.
pub(crate) async fn receive(
    forge: &Forge,
    tool: &forge_tools::tool::ToolInstance,
    page: &wiki::Page,
    author: &str,
    mut mp: Multipart,
    csrf: Option<&str>,
) -> Result<Attachment, Error> {
    let bad = |m: &str| Error::invalid("file", m.to_owned());
    let mut csrf_ok = csrf.is_none();
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| bad(&format!("The upload could not be read: {e}")))?
    {
        match field.name() {
            Some("csrf_token") => {
                let given = field.text().await.map_err(|e| bad(&e.to_string()))?;
                csrf_ok = csrf.is_some_and(|c| {
                    !c.is_empty() && bool::from(given.as_bytes().ct_eq(c.as_bytes()))
                });
            }
            Some("file") => {
                if !csrf_ok {
                    return Err(Error::Forbidden);
                }
                let filename = field.file_name().unwrap_or_default().to_owned();
                let stream = field.map_err(|e| e.to_string());
                return forge
                    .attachments()
                    .save(
                        forge.db(),
                        tool.id,
                        page.id,
                        &filename,
                        author,
                        Box::pin(stream),
                    )
                    .await;
            }
            _ => {}
        }
    }
    Err(bad("Choose a file to upload"))
}

pub async fn upload(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path(name): Path<String>,
    mp: Multipart,
) -> PageResult {
    authorize(&req, perm::WRITE)?;
    let page = load(&st, &req, &name).await?;
    let csrf = req.page.csrf.clone();
    let author = req.page.viewer.username().unwrap_or_default().to_owned();
    let url = wiki::page_url(&req.ctx.project, &req.tool, &page.name);
    match receive(&st.forge, &req.tool, &page, &author, mp, Some(&csrf)).await {
        Ok(a) => Ok(redirect_with_flash(
            &st,
            &url,
            &format!("Attached {}.", a.filename),
        )),
        Err(Error::Forbidden) => Err(PageError::from(Error::Forbidden)),
        Err(Error::Invalid(errs)) => {
            let body = crate::views::error_page(422, "Upload refused", &errs.to_string());
            Ok((StatusCode::UNPROCESSABLE_ENTITY, axum::response::Html(body)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The file as a response: its type, `nosniff`, a sandboxing CSP, and `attachment`
/// disposition for anything but raster images and plain text.
pub(crate) async fn serve(forge: &Forge, a: &Attachment) -> Result<Response, Error> {
    let file = tokio::fs::File::open(forge.attachments().path_of(a))
        .await
        .map_err(|e| Error::Internal(format!("attachment file missing: {e}")))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let d = Download {
        content_type: &a.content_type,
        filename: &a.filename,
        inline: a.inline(),
        length: Some(a.size as u64),
    };
    Ok(crate::download::respond(body, d))
}

pub async fn download(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path((name, file)): Path<(String, String)>,
) -> PageResult {
    let page = load(&st, &req, &name).await?;
    let a = st
        .forge
        .attachments()
        .get(st.forge.db(), req.tool.id, page.id, &file)
        .await?
        .ok_or(Error::NotFound("attachment"))?;
    Ok(serve(&st.forge, &a).await?)
}

pub async fn remove(
    State(st): State<AppState>,
    Extension(req): Extension<ToolRequest>,
    Path((name, file)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<Empty>,
) -> PageResult {
    authorize(&req, perm::WRITE)?;
    let page = load(&st, &req, &name).await?;
    let a = st
        .forge
        .attachments()
        .get(st.forge.db(), req.tool.id, page.id, &file)
        .await?
        .ok_or(Error::NotFound("attachment"))?;
    st.forge.attachments().delete(st.forge.db(), &a).await?;
    Ok(redirect_with_flash(
        &st,
        &wiki::page_url(&req.ctx.project, &req.tool, &page.name),
        &format!("Removed {}.", a.filename),
    ))
}
