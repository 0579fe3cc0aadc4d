//! Rendering page text: references resolved for the viewer by the platform's resolver
//! (`crate::tool::xref`: pages by the wiki, tickets by the tracker, commits by the
//! repository), with rendered versions cached.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use bson::oid::ObjectId;

use crate::acl::perm;
use crate::error::Result;
use crate::project_ctx::ProjectCtx;
use crate::tool::{Forge, ToolInstance, xref};

/// Rendered page HTML and the references it makes (as backlink keys).
pub struct Rendered {
    pub html: Arc<String>,
    pub link_keys: Vec<String>,
}

/// Page id, version, whether the viewer may write here, and the state of the project's tools
/// as this viewer sees them (see [`tools_state`]).
type CacheKey = (ObjectId, i32, bool, u64);

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
/// version of a page), the HTML is cached. The key includes:
/// - the project's address, its tools (a reference names one by its mount) and their epochs
///   (all kinds): a wiki's moves whenever a page is created, renamed or deleted, a
///   repository's whenever a refresh records new commits, so page and commit links stay
///   right. Ticket links (`[#12]`) are a known, accepted staleness: a tracker whose tickets
///   come and go without moving its epoch leaves a cached reference as it was until some
///   epoch moves or the page is edited (a ticket's existence rarely changes);
/// - what the viewer may do (write here; read and write each tool), since references render
///   differently for those who may not read the tool they address or may create pages.
///   Finer, per-account differences a tool may make (a private ticket linked for its
///   reporter) are shared between viewers with the same rights: a reference renders as a
///   link or as text, never with the artifact's content.
pub async fn render(
    forge: &Forge,
    ctx: &ProjectCtx,
    tool: &ToolInstance,
    version: Option<(ObjectId, i32)>,
    text: &str,
) -> Result<Rendered> {
    let can_write = ctx.can_tool(tool, perm::WRITE);
    let key = version.map(|(id, v)| (id, v, can_write, tools_state(ctx)));
    if let Some(k) = key
        && let Some(html) = cache().get(&k)
    {
        return Ok(Rendered {
            html,
            link_keys: Vec::new(),
        });
    }
    let (resolved, link_keys) = xref::resolve(forge, ctx, tool, text, can_write).await?;
    let html = Arc::new(crate::markdown::render_async(text.to_owned(), resolved).await?);
    if let Some(k) = key {
        cache().insert(k, html.clone());
    }
    Ok(Rendered { html, link_keys })
}

/// A fingerprint of the project's address and tools (which ones, their epochs) and of what
/// the viewer may do with each (read, write).
fn tools_state(ctx: &ProjectCtx) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ctx.project.url().hash(&mut h);
    for t in &ctx.tools {
        t.id.0.hash(&mut h);
        t.mount.hash(&mut h);
        t.epoch.hash(&mut h);
        ctx.can_tool(t, perm::READ).hash(&mut h);
        ctx.can_tool(t, perm::WRITE).hash(&mut h);
    }
    h.finish()
}
