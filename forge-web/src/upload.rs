//! Attachments over HTTP for every tool: an upload streamed from a multipart form into the
//! attachment store (with its CSRF token checked before the file is read), and a stored file
//! served with types and dispositions that keep browsers from running what users upload.

use axum::body::Body;
use axum::extract::Multipart;
use axum::response::Response;
use forge_tools::attachments::Attachment;
use forge_tools::{Error, Forge};
use futures::TryStreamExt;

use crate::ctx::ToolReq;
use crate::download::Download;
use crate::state::AppState;

/// Streams the multipart `file` field of an upload into the attachment store, for one
/// artifact of a tool. With `csrf`, a `csrf_token` field must come first and match.
pub async fn receive(
    forge: &Forge,
    tool: forge_tools::ids::ToolId,
    artifact: bson::oid::ObjectId,
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
                csrf_ok = csrf.is_some_and(|c| forge_tools::secret::token_matches(c, &given));
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
                        tool,
                        artifact,
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

/// The file as a response: its type, `nosniff`, a sandboxing CSP, and `attachment`
/// disposition for anything but raster images and plain text. Every download of an
/// attachment (wiki page, ticket, post; pages and REST alike) comes here and is logged as
/// `attachment.download` in the tool it belongs to.
pub async fn serve<P>(st: &AppState, t: &ToolReq<P>, a: &Attachment) -> Result<Response, Error> {
    let file = tokio::fs::File::open(st.forge.attachments().path_of(a))
        .await
        .map_err(|e| Error::Internal(format!("attachment file missing: {e}")))?;
    st.forge.events().record(
        "attachment.download",
        t.viewer()
            .event_context(Some(&t.ctx.project), Some(&t.tool.mount)),
        bson::Bson::Document(bson::doc! {"file": &a.filename, "size": a.size}),
    );
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let d = Download {
        content_type: &a.content_type,
        filename: &a.filename,
        inline: a.inline(),
        length: Some(a.size as u64),
    };
    Ok(crate::download::respond(body, d))
}

/// An upload through the API: unless a valid access token authenticates the call, the
/// `X-CSRF-Token` header must carry the token the pages' forms carry (multipart bodies can be
/// sent cross-site). Any other `Authorization` header, valid or not, does not spare it.
pub fn check_api_csrf(
    page: &crate::page::PageCtx,
    headers: &axum::http::HeaderMap,
) -> Result<(), Error> {
    if page.token_auth {
        return Ok(());
    }
    let given = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !forge_tools::secret::token_matches(&page.csrf, given) {
        return Err(Error::Forbidden);
    }
    Ok(())
}
