//! The wiki tool: versioned Markdown pages with history, diffs, reverts, renames (the old name
//! redirects), soft deletion, labels, attachments and cross-references with backlinks.
//!
//! Storage lives in [`pages`]; this module holds the tool kind and the actions the web layer
//! calls, each checking the viewer's permission first.

pub mod pages;

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bson::oid::ObjectId;
use bson::{Bson, Document, doc};

use crate::acl::{Ace, Principal, perm};
use crate::error::{Error, Result};
use crate::forge::{Forge, ProjectCtx, Viewer};
use crate::projects::Project;
use crate::refs::{self, RefTarget, Resolution, ResolvedRefs};
use crate::tool::{SearchDoc, Tool, ToolInstance, instance};
pub use pages::{Edit, EditConflict, Page, Saved};

pub const KIND: &str = "wiki";
pub const DEFAULT_HOME: &str = "Home";
/// Deleting pages is its own permission (developers and admins by default).
pub const DELETE: &str = "delete";

pub struct WikiTool;

#[async_trait]
impl Tool for WikiTool {
    fn kind(&self) -> &'static str {
        KIND
    }
    fn title(&self) -> &'static str {
        "Wiki"
    }
    fn default_label(&self) -> &'static str {
        "Wiki"
    }
    fn default_mount(&self) -> &'static str {
        "wiki"
    }
    fn permissions(&self) -> &'static [&'static str] {
        &[perm::READ, perm::WRITE, DELETE, perm::ADMIN]
    }
    fn default_acl(&self) -> Vec<Ace> {
        // Members may create and edit pages; developers may also delete them.
        vec![
            Ace::allow(Principal::Member, perm::WRITE),
            Ace::allow(Principal::Developer, DELETE),
        ]
    }
    fn install_by_default(&self) -> bool {
        true
    }
    fn options(&self, _given: &serde_json::Value) -> Result<Document> {
        Ok(doc! {"home": DEFAULT_HOME})
    }
    async fn install(&self, forge: &Forge, project: &Project, tool: &ToolInstance) -> Result<()> {
        let text = format!(
            "# {}\n\nWelcome to the wiki of **{}**. Edit this page to tell people what the project is about; \
             link other pages with `[PageName]`.\n",
            DEFAULT_HOME, project.name
        );
        let edit = Edit {
            text,
            labels: Vec::new(),
            comment: "Created with the wiki".into(),
            base_version: 0,
        };
        pages::save(forge.db(), tool.id, DEFAULT_HOME, edit, "").await?;
        Ok(())
    }
    async fn uninstall(
        &self,
        forge: &Forge,
        _project: &Project,
        tool: &ToolInstance,
    ) -> Result<()> {
        pages::delete_tool(forge.db(), tool.id).await?;
        forge.attachments().delete_tool(forge.db(), tool.id).await?;
        Ok(())
    }
    async fn search_documents(
        &self,
        forge: &Forge,
        project: &Project,
        tool: &ToolInstance,
    ) -> Result<Vec<SearchDoc>> {
        Ok(pages::all_with_text(forge.db(), tool.id)
            .await?
            .iter()
            .map(|p| search_doc(project, tool, p))
            .collect())
    }
    async fn search_document(
        &self,
        forge: &Forge,
        project: &Project,
        tool: &ToolInstance,
        key: &str,
    ) -> Result<Option<SearchDoc>> {
        let Some(id) = key
            .strip_prefix("wiki:")
            .and_then(|id| bson::oid::ObjectId::parse_str(id).ok())
        else {
            return Ok(None);
        };
        Ok(pages::by_id(forge.db(), id)
            .await?
            .filter(|p| !p.deleted && p.tool_id == tool.id)
            .map(|p| search_doc(project, tool, &p)))
    }
}

/// The search document of one page.
/// (`kind` is the type users filter on: `wiki`.)
pub fn search_doc(project: &Project, tool: &ToolInstance, page: &Page) -> SearchDoc {
    SearchDoc {
        id: format!("wiki:{}", page.id),
        kind: "wiki".into(),
        title: page.name.clone(),
        text: format!(
            "{}\n{}",
            crate::markdown::to_plain_text(&page.text),
            page.labels.join(" ")
        ),
        url: page_url(project, tool, &page.name),
        author: Some(page.author.clone()).filter(|a| !a.is_empty()),
        updated: page.updated,
    }
}

/// The wiki's configured home page.
pub fn home_page(tool: &ToolInstance) -> String {
    tool.options
        .get_str("home")
        .unwrap_or(DEFAULT_HOME)
        .to_owned()
}

const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'(')
    .remove(b')')
    .remove(b':');

/// A page name as a URL path segment.
pub fn encode_name(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, SEGMENT).to_string()
}

pub fn page_url(project: &Project, tool: &ToolInstance, name: &str) -> String {
    format!("{}{}/{}/", project.url(), tool.mount, encode_name(name))
}

fn link_key(tool: &ToolInstance, name: &str) -> String {
    format!("wiki:{}:{}", tool.id, name)
}

/// Rendered page HTML and the references it makes (as backlink keys).
pub struct Rendered {
    pub html: Arc<String>,
    pub link_keys: Vec<String>,
}

type CacheKey = (ObjectId, i32, i64, bool);

fn cache() -> &'static moka::sync::Cache<CacheKey, Arc<String>> {
    static CACHE: OnceLock<moka::sync::Cache<CacheKey, Arc<String>>> = OnceLock::new();
    // Weighted by HTML size: about 64 MB of rendered pages per process.
    CACHE.get_or_init(|| {
        moka::sync::Cache::builder()
            .weigher(|_k, v: &Arc<String>| v.len().try_into().unwrap_or(u32::MAX))
            .max_capacity(64 << 20)
            .build()
    })
}

/// Renders page text with its references resolved for this viewer. With `version` (a saved
/// version of a page), the HTML is cached; the key includes the project's wiki epochs, which
/// move whenever a page is created, renamed or deleted, so link targets stay right.
pub async fn render(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    version: Option<(ObjectId, i32)>,
    text: &str,
) -> Result<Rendered> {
    let can_write = ctx.can_tool(tool, perm::WRITE);
    let epoch: i64 = ctx
        .tools
        .iter()
        .filter(|t| t.kind == KIND)
        .map(|t| t.epoch)
        .sum();
    let key = version.map(|(id, v)| (id, v, epoch, can_write));
    if let Some(k) = key
        && let Some(html) = cache().get(&k)
    {
        return Ok(Rendered {
            html,
            link_keys: Vec::new(),
        });
    }
    let (resolved, link_keys) = resolve_refs(forge, ctx, tool, text, can_write).await?;
    let html = Arc::new(crate::markdown::render_async(text.to_owned(), resolved).await?);
    if let Some(k) = key {
        cache().insert(k, html.clone());
    }
    Ok(Rendered { html, link_keys })
}

/// Resolves every reference in `text`: pages of this project's wikis are looked up (missing
/// ones become "create" links for those who may write); other projects' pages are linked
/// without a look-up, so nothing about them leaks.
async fn resolve_refs(
    forge: &Forge,
    ctx: &ProjectCtx,
    here: &ToolInstance,
    text: &str,
    can_write: bool,
) -> Result<(ResolvedRefs, Vec<String>)> {
    let mut resolved = ResolvedRefs::new();
    let mut keys = Vec::new();
    let mut wanted: Vec<(String, &ToolInstance, String)> = Vec::new();
    for raw in refs::scan(text) {
        match refs::parse(&raw) {
            Some(RefTarget::Artifact {
                project: None,
                mount,
                name,
            }) => {
                let tool = match &mount {
                    None => Some(here),
                    Some(m) => ctx.tools.iter().find(|t| &t.mount == m && t.kind == KIND),
                };
                match tool {
                    Some(t) => wanted.push((raw, t, name)),
                    None => {
                        resolved.insert(raw, Resolution::Text);
                    }
                }
            }
            Some(RefTarget::Artifact {
                project: Some(p),
                mount: Some(m),
                name,
            }) => {
                let url = format!("/p/{p}/{m}/{}/", encode_name(&name));
                resolved.insert(raw, Resolution::Link { url });
            }
            _ => {
                resolved.insert(raw, Resolution::Text);
            }
        }
    }
    let mut by_tool: Vec<(&ToolInstance, Vec<String>)> = Vec::new();
    for (_, t, name) in &wanted {
        match by_tool.iter_mut().find(|(bt, _)| bt.id == t.id) {
            Some((_, names)) => names.push(name.clone()),
            None => by_tool.push((t, vec![name.clone()])),
        }
    }
    let mut found: Vec<(ObjectId, String, String)> = Vec::new();
    for (t, names) in &by_tool {
        for (asked, current) in pages::existing(forge.db(), t.id, names).await? {
            found.push((t.id.0, asked, current));
        }
    }
    for (raw, t, name) in wanted {
        keys.push(link_key(t, &name));
        let hit = found
            .iter()
            .find(|(tid, asked, _)| *tid == t.id.0 && *asked == name);
        let resolution = match hit {
            Some((_, _, current)) => Resolution::Link {
                url: page_url(&ctx.project, t, current),
            },
            None if can_write && ctx.can_tool(t, perm::WRITE) => Resolution::Create {
                url: format!("{}edit", page_url(&ctx.project, t, &name)),
            },
            None => Resolution::Text,
        };
        resolved.insert(raw, resolution);
    }
    keys.sort();
    keys.dedup();
    Ok((resolved, keys))
}

/// Loads a page the viewer may read (deleted pages only for those who may delete).
pub async fn load_page(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    name: &str,
) -> Result<Option<Page>> {
    let page = pages::get(forge.db(), tool.id, name).await?;
    Ok(page.filter(|p| !p.deleted || ctx.can_tool(tool, DELETE)))
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

fn event(
    forge: &Forge,
    kind: &str,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    extra: Document,
) {
    forge.events().record(
        kind,
        viewer.event_context(Some(&ctx.project), Some(&tool.mount)),
        Bson::Document(extra),
    );
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
    let (_, keys) = resolve_refs(forge, ctx, tool, &page.text, false).await?;
    crate::links::replace(
        forge.db(),
        &format!("wiki:{}", page.id),
        &page.name,
        &page_url(&ctx.project, tool, &page.name),
        &keys,
    )
    .await?;
    event(
        forge,
        kind,
        viewer,
        ctx,
        tool,
        doc! {"page": &page.name, "version": page.version},
    );
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
            &resolve_refs(forge, ctx, tool, &p.text, false).await?.1,
        )
        .await?;
        event(
            forge,
            "wiki.page.rename",
            viewer,
            ctx,
            tool,
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
    event(forge, kind, viewer, ctx, tool, doc! {"page": &page.name});
    let action = if deleted { "deleted" } else { "restored" };
    changed(forge, viewer, ctx, tool, page, action, "").await
}

pub fn record_view(
    forge: &Forge,
    viewer: &Viewer,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    page: &Page,
) {
    event(
        forge,
        "wiki.page.view",
        viewer,
        ctx,
        tool,
        doc! {"page": &page.name},
    );
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
