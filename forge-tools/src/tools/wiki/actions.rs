//! What people do with pages, each action checking the viewer's permission first: read a page
//! or an old version, save, revert, rename, delete and restore, list backlinks, set the home
//! page. Changes record an event (`wiki.page.create`, `wiki.page.edit` (reverts too),
//! `wiki.page.rename`, `wiki.page.delete`, `wiki.page.undelete`), refresh backlinks, and queue
//! the search index and watchers' mail. Reading a page is a `page.view`, which the web app
//! records for every HTML page it serves (with the page's name here).

use bson::{Bson, doc};

use super::DELETE;
use super::pages::{self, Edit, Page, Saved};
use super::urls::{link_key, page_url};
use crate::acl::perm;
use crate::activity::Activity;
use crate::error::{Error, Result};
use crate::project_ctx::ProjectCtx;
use crate::tool::{Forge, ToolInstance, instance, xref};
use crate::viewer::Viewer;

/// Loads a page the viewer may read (deleted pages only for those who may delete).
pub async fn load_page(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    name: &str,
) -> Result<Option<Page>> {
    let page = pages::current(forge.db(), tool.id, name).await?;
    Ok(page.filter(|p| !p.deleted || ctx.can_tool(tool, DELETE)))
}

/// Comments on the page with this key (`wiki:<id>`), as the page's discussion section does
/// (used by replies by mail): the page must be live and readable; the thread is created by
/// the first comment that passes the checks.
pub async fn comment(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    key: &str,
    new: crate::discussion::NewPost,
) -> Result<crate::discussion::Post> {
    ctx.authorize_tool(tool, perm::READ)?;
    let page = match key
        .strip_prefix("wiki:")
        .and_then(|id| bson::oid::ObjectId::parse_str(id).ok())
    {
        Some(id) => pages::by_id(forge.db(), id).await?,
        None => None,
    }
    .filter(|p| p.tool_id == tool.id && !p.deleted)
    .ok_or(Error::NotFound("page"))?;
    let r = crate::discussion::ThreadRef {
        artifact: key.to_owned(),
        title: format!("page {}", page.name),
        url: page_url(&ctx.project, tool, &page.name),
        also: Vec::new(),
    };
    let (_, post) = crate::discussion::post_to(forge, viewer, ctx, tool, &r, new).await?;
    Ok(post)
}

/// One version of a page as shown: the current one, or an older snapshot.
pub struct PageVersion {
    pub version: i32,
    pub text: String,
    pub labels: Vec<String>,
    pub author: String,
    pub updated: bson::DateTime,
}

/// The page at `version` (the current version when `None` or equal to it).
pub async fn version_of(forge: &Forge, page: &Page, version: Option<i32>) -> Result<PageVersion> {
    match version {
        Some(v) if v != page.version => {
            let s = pages::versions(forge.db())
                .get(page.id, v)
                .await?
                .ok_or(Error::NotFound("version"))?;
            Ok(PageVersion {
                version: v,
                text: s.data.text,
                labels: s.data.labels,
                author: s.author,
                updated: s.timestamp,
            })
        }
        _ => Ok(PageVersion {
            version: page.version,
            text: page.text.clone(),
            labels: page.labels.clone(),
            author: page.author.clone(),
            updated: page.updated,
        }),
    }
}

fn author(viewer: &Viewer) -> String {
    viewer.username().unwrap_or_default().to_owned()
}

use crate::tool::{record_activity as activity, record_event as event};

/// A page's activity: its name and address (views are not activity).
fn page_activity(ctx: &ProjectCtx, tool: &ToolInstance, name: &str) -> Activity {
    Activity::new(format!("page {name}"), page_url(&ctx.project, tool, name))
}

/// Saves an edit (creating the page when `base_version` is 0).
pub async fn save(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    name: &str,
    edit: Edit,
) -> Result<Saved> {
    ctx.authorize_tool(tool, perm::WRITE)?;
    let max = forge.config().max_text_bytes;
    if edit.text.len() as u64 > max {
        return Err(Error::invalid(
            "text",
            format!(
                "The page is too long ({} at most)",
                crate::attachments::human_size(max)
            ),
        ));
    }
    if edit.base_version == 0
        && let Some(user) = &viewer.user
    {
        // Creating pages is limited per account; edits are not.
        crate::ratelimit::hit(
            forge.db(),
            "wiki.page.create",
            user.id,
            forge.config().pages_per_hour,
        )
        .await?;
    }
    let comment = edit.comment.clone();
    let saved = pages::save(forge.db(), tool.id, name, edit, &author(viewer)).await?;
    after_save(forge, viewer, ctx, tool, &saved, &comment).await?;
    Ok(saved)
}

async fn after_save(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    saved: &Saved,
    comment: &str,
) -> Result<()> {
    let (page, kind) = match saved {
        Saved::Created(p) => (p, "wiki.page.create"),
        Saved::Updated(p) => (p, "wiki.page.edit"),
        Saved::Conflict(_) => return Ok(()),
    };
    if matches!(saved, Saved::Created(_)) {
        instance::bump_epoch(forge.db(), tool.id).await?;
    }
    // The backlink keys of whatever the page refers to (pages, tickets, commits), as the tool
    // each reference addresses says.
    let (_, keys) = xref::resolve(forge, ctx, tool, &page.text, false).await?;
    crate::links::replace(
        forge.db(),
        &format!("wiki:{}", page.id),
        &page.name,
        &page_url(&ctx.project, tool, &page.name),
        &keys,
    )
    .await?;
    // The edit's comment says what changed; without one, the page's opening.
    let a = page_activity(ctx, tool, &page.name);
    let a = if comment.trim().is_empty() {
        a.summary_markdown(&page.text)
    } else {
        a.summary(comment)
    };
    let extra = doc! {"page": &page.name, "version": page.version};
    activity(forge, kind, viewer, ctx, tool, a, extra);
    let action = if matches!(saved, Saved::Created(_)) {
        "created"
    } else {
        "edited"
    };
    changed(forge, viewer, ctx, tool, page, action, comment).await
}

/// Follow-up work of any change to a page: the search index and watchers' mail.
async fn changed(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    page: &Page,
    action: &str,
    comment: &str,
) -> Result<()> {
    let key = format!("wiki:{}", page.id);
    crate::search::indexer::queue_artifacts(forge, &ctx.project, tool, vec![key.clone()]).await?;
    crate::notify::queue_change(
        forge,
        viewer,
        ctx,
        tool,
        &key,
        &format!("page {}", page.name),
        &page_url(&ctx.project, tool, &page.name),
        action,
        comment,
    )
    .await
}

/// Restores an old version's text and labels as a new version.
pub async fn revert(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    page: &Page,
    version: i32,
) -> Result<Saved> {
    ctx.authorize_tool(tool, perm::WRITE)?;
    let old = pages::versions(forge.db())
        .get(page.id, version)
        .await?
        .ok_or(Error::NotFound("version"))?;
    let edit = Edit {
        text: old.data.text,
        labels: old.data.labels,
        comment: format!("Reverted to version {version}"),
        base_version: page.version,
    };
    let comment = edit.comment.clone();
    let saved = pages::save(forge.db(), tool.id, &page.name, edit, &author(viewer)).await?;
    after_save(forge, viewer, ctx, tool, &saved, &comment).await?;
    Ok(saved)
}

pub async fn rename(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    page: &Page,
    new_name: &str,
) -> Result<Saved> {
    ctx.authorize_tool(tool, perm::WRITE)?;
    let new_name = new_name.trim();
    let saved = pages::rename(forge.db(), page, new_name, &author(viewer)).await?;
    if let Saved::Updated(p) = &saved {
        instance::bump_epoch(forge.db(), tool.id).await?;
        crate::links::replace(
            forge.db(),
            &format!("wiki:{}", p.id),
            &p.name,
            &page_url(&ctx.project, tool, &p.name),
            &xref::resolve(forge, ctx, tool, &p.text, false).await?.1,
        )
        .await?;
        activity(
            forge,
            "wiki.page.rename",
            viewer,
            ctx,
            tool,
            page_activity(ctx, tool, &p.name).summary(&format!("was {}", page.name)),
            doc! {"page": &p.name, "from": &page.name},
        );
        changed(
            forge,
            viewer,
            ctx,
            tool,
            p,
            &format!("renamed (was {})", page.name),
            "",
        )
        .await?;
    }
    Ok(saved)
}

/// Soft delete (or undelete): the page and its history stay, hidden from readers.
pub async fn set_deleted(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    page: &Page,
    deleted: bool,
) -> Result<()> {
    ctx.authorize_tool(tool, DELETE)?;
    pages::set_deleted(forge.db(), page, deleted).await?;
    instance::bump_epoch(forge.db(), tool.id).await?;
    let kind = if deleted {
        "wiki.page.delete"
    } else {
        "wiki.page.undelete"
    };
    let a = page_activity(ctx, tool, &page.name);
    activity(forge, kind, viewer, ctx, tool, a, doc! {"page": &page.name});
    let action = if deleted { "deleted" } else { "restored" };
    changed(forge, viewer, ctx, tool, page, action, "").await
}

/// Pages linking here (under this name or any name it had).
pub async fn backlinks(
    forge: &Forge,
    tool: &ToolInstance,
    page: &Page,
) -> Result<Vec<crate::links::Link>> {
    let mut out = crate::links::to(forge.db(), &link_key(tool, &page.name)).await?;
    for old in pages::former_names(forge.db(), page).await? {
        for l in crate::links::to(forge.db(), &link_key(tool, &old)).await? {
            if !out.iter().any(|o| o.from_key == l.from_key) {
                out.push(l);
            }
        }
    }
    out.retain(|l| l.from_key != format!("wiki:{}", page.id));
    Ok(out)
}

/// Sets the wiki's home page.
pub async fn set_home(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    home: &str,
) -> Result<()> {
    ctx.authorize_tool(tool, perm::ADMIN)?;
    pages::check_name(home.trim())?;
    instance::set_option(
        forge.db(),
        tool.id,
        "home",
        Bson::String(home.trim().to_owned()),
    )
    .await?;
    event(
        forge,
        "wiki.configure",
        viewer,
        ctx,
        tool,
        doc! {"home": home.trim()},
    );
    Ok(())
}
