//! The wiki's domain calls, one per operation, shared by its pages and its REST API: each
//! takes the request's [`ToolReq`] and returns domain values; the callers only render them
//! (HTML or JSON).

use axum::body::Body;
use axum::extract::Multipart;
use axum::response::Response;
use forge_tools::attachments::Attachment;
use forge_tools::tools::wiki::{self, Edit, PageVersion, Saved, pages as store};
use forge_tools::versioned::VersionInfo;
use forge_tools::{Error, Forge};
use futures::TryStreamExt;
use subtle::ConstantTimeEq;

use crate::ctx::ToolReq;
use crate::download::Download;
use crate::state::AppState;

/// A live or deleted page of the wiki, or `NotFound`.
pub async fn load<P>(st: &AppState, t: &ToolReq<P>, name: &str) -> Result<store::Page, Error> {
    wiki::load_page(&st.forge, &t.ctx, &t.tool, name)
        .await?
        .ok_or(Error::NotFound("page"))
}

/// Which pages a listing shows.
pub enum Listing<'a> {
    /// Live pages by name.
    Live,
    /// Live and deleted pages by name.
    WithDeleted,
    /// Live pages, most recently changed first.
    Recent,
    /// Live pages with a label, by name.
    Labelled(&'a str),
}

/// Pages of the wiki (without their text).
pub async fn list<P>(
    st: &AppState,
    t: &ToolReq<P>,
    listing: Listing<'_>,
    limit: i64,
) -> Result<Vec<store::Page>, Error> {
    let (filter, recent) = match listing {
        Listing::Live => (bson::doc! {"deleted": false}, false),
        Listing::WithDeleted => (bson::doc! {}, false),
        Listing::Recent => (bson::doc! {"deleted": false}, true),
        Listing::Labelled(label) => (bson::doc! {"deleted": false, "labels": label}, false),
    };
    store::list(st.forge.db(), t.tool.id, filter, recent, limit).await
}

/// A version's text as HTML, its references resolved for the viewer.
pub async fn html<P>(
    st: &AppState,
    t: &ToolReq<P>,
    page: &store::Page,
    v: &PageVersion,
) -> Result<String, Error> {
    let rendered = wiki::render(
        &st.forge,
        &t.ctx,
        &t.tool,
        Some((page.id, v.version)),
        &v.text,
    )
    .await?;
    Ok(rendered.html.to_string())
}

/// Saves an edit of `name` (creating the page from base version 0). `labels`: comma
/// separated, as typed.
pub async fn save<P>(
    st: &AppState,
    t: &ToolReq<P>,
    name: &str,
    text: String,
    labels: &str,
    comment: String,
    base_version: i32,
) -> Result<Saved, Error> {
    let edit = Edit {
        text,
        labels: store::parse_labels(labels)?,
        comment,
        base_version,
    };
    wiki::save(&st.forge, t.viewer(), &t.ctx, &t.tool, name, edit).await
}

/// Deletes or restores a page.
pub async fn set_deleted<P>(
    st: &AppState,
    t: &ToolReq<P>,
    name: &str,
    deleted: bool,
) -> Result<(), Error> {
    let page = load(st, t, name).await?;
    wiki::set_deleted(&st.forge, t.viewer(), &t.ctx, &t.tool, &page, deleted).await
}

/// A page and its versions, newest first.
pub async fn history<P>(
    st: &AppState,
    t: &ToolReq<P>,
    name: &str,
) -> Result<(store::Page, Vec<VersionInfo>), Error> {
    let page = load(st, t, name).await?;
    let versions = store::versions(st.forge.db()).history(page.id).await?;
    Ok((page, versions))
}

/// The files attached to a page.
pub async fn attachments<P>(
    st: &AppState,
    t: &ToolReq<P>,
    page: &store::Page,
) -> Result<Vec<Attachment>, Error> {
    let forge = &st.forge;
    forge
        .attachments()
        .list(forge.db(), t.tool.id, page.id)
        .await
}

/// One file attached to a page, with the page.
pub async fn attachment<P>(
    st: &AppState,
    t: &ToolReq<P>,
    name: &str,
    file: &str,
) -> Result<(store::Page, Attachment), Error> {
    let page = load(st, t, name).await?;
    let forge = &st.forge;
    let a = forge
        .attachments()
        .get(forge.db(), t.tool.id, page.id, file)
        .await?
        .ok_or(Error::NotFound("attachment"))?;
    Ok((page, a))
}

/// Attaches the upload to page `name`, the viewer as its author: the multipart `file` field
/// is streamed into the store. With `csrf`, a `csrf_token` field must come first and match.
pub async fn upload<P>(
    st: &AppState,
    t: &ToolReq<P>,
    name: &str,
    mp: Multipart,
    csrf: Option<&str>,
) -> Result<(store::Page, Attachment), Error> {
    let page = load(st, t, name).await?;
    let author = t.viewer().username().unwrap_or_default().to_owned();
    let a = receive(&st.forge, &t.tool, &page, &author, mp, csrf).await?;
    Ok((page, a))
}

async fn receive(
    forge: &Forge,
    tool: &forge_tools::tool::ToolInstance,
    page: &store::Page,
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

/// The file as a response: its type, `nosniff`, a sandboxing CSP, and `attachment`
/// disposition for anything but raster images and plain text.
pub async fn serve(st: &AppState, a: &Attachment) -> Result<Response, Error> {
    let file = tokio::fs::File::open(st.forge.attachments().path_of(a))
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
