//! Rendering page text: references resolved for the viewer (existing pages linked, missing
//! ones offered for creation to those who may write), with rendered versions cached.

use std::sync::{Arc, OnceLock};

use bson::oid::ObjectId;

use super::KIND;
use super::pages;
use super::urls::{encode_name, link_key, page_url};
use crate::acl::perm;
use crate::error::Result;
use crate::project_ctx::ProjectCtx;
use crate::refs::{self, RefTarget, Resolution, ResolvedRefs};
use crate::tool::{Forge, ToolInstance};

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
pub(super) async fn resolve_refs(
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
