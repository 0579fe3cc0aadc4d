//! The wiki's domain calls, one per operation, shared by its pages and its REST API: each
//! takes the request's [`ToolReq`] and returns domain values; the callers only render them
//! (HTML or JSON).

use axum::extract::Multipart;
use forge_tools::Error;
use forge_tools::attachments::Attachment;
use forge_tools::tools::wiki::{self, Edit, PageVersion, Saved, pages as store};
use forge_tools::versioned::VersionInfo;

use crate::ctx::ToolReq;
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
    let a = crate::upload::receive(&st.forge, t.tool.id, page.id, &author, mp, csrf).await?;
    Ok((page, a))
}
