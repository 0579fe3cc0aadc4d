//! Cross-references in user text (`[Page]`, `[#12]`, `[abc1234]`, `[mount:...]`,
//! `[project:mount:Page]`) resolved for a viewer by whichever tool each one addresses: the
//! platform finds the instance (the named mount, else the tool the text is written in, else
//! the project's first tool of a kind that answers that sort of reference) and asks its
//! kind through [`Tool::resolve_refs`](super::Tool::resolve_refs). Wiki pages, ticket
//! comments, forum posts and commit messages all render through this.

use crate::error::Result;
use crate::project_ctx::ProjectCtx;
use crate::refs::{self, RefKind, RefTarget, Resolution, ResolvedRefs};

use super::{Forge, ToolInstance};

const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'(')
    .remove(b')')
    .remove(b':');

/// An artifact name as a URL path segment.
pub fn encode_segment(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, SEGMENT).to_string()
}

fn kind_of(t: &RefTarget) -> RefKind {
    match t {
        RefTarget::Artifact { .. } => RefKind::Artifact,
        RefTarget::Ticket { .. } => RefKind::Ticket,
        RefTarget::Commit { .. } => RefKind::Commit,
    }
}

fn mount_of(t: &RefTarget) -> Option<&str> {
    match t {
        RefTarget::Artifact { mount, .. }
        | RefTarget::Ticket { mount, .. }
        | RefTarget::Commit { mount, .. } => mount.as_deref(),
    }
}

/// Resolves every reference in `text` written in tool `here` of the project, for a viewer
/// whose rights `ctx` carries. `can_write`: offer "create" links for missing pages. Returns
/// the resolutions and the backlink keys of the artifacts referred to.
pub async fn resolve(
    forge: &Forge,
    ctx: &ProjectCtx,
    here: &ToolInstance,
    text: &str,
    can_write: bool,
) -> Result<(ResolvedRefs, Vec<String>)> {
    let mut resolved = ResolvedRefs::new();
    let mut keys = Vec::new();
    // (instance index in ctx.tools or usize::MAX for `here`, raw, target)
    let mut wanted: Vec<(&ToolInstance, Vec<(String, RefTarget)>)> = Vec::new();
    for raw in refs::scan(text) {
        let Some(target) = refs::parse(&raw) else {
            continue;
        };
        if let RefTarget::Artifact {
            project: Some(p),
            mount: Some(m),
            name,
        } = &target
        {
            // Another project's page: linked without a look-up, so nothing about it leaks.
            let url = format!("/p/{p}/{m}/{}/", encode_segment(name));
            resolved.insert(raw, Resolution::Link { url });
            continue;
        }
        let kind = kind_of(&target);
        let answers = |t: &ToolInstance| {
            forge
                .tools()
                .get(&t.kind)
                .is_some_and(|k| k.ref_kinds().contains(&kind))
        };
        let tool = match mount_of(&target) {
            Some(m) => ctx.tool(m).filter(|t| answers(t)),
            None if answers(here) => Some(here),
            None => ctx.tools.iter().find(|t| answers(t)),
        };
        let Some(tool) = tool else {
            resolved.insert(raw, Resolution::Text);
            continue;
        };
        match wanted.iter_mut().find(|(t, _)| t.id == tool.id) {
            Some((_, list)) => list.push((raw, target)),
            None => wanted.push((tool, vec![(raw, target)])),
        }
    }
    for (tool, list) in wanted {
        let Some(kind) = forge.tools().get(&tool.kind) else {
            continue;
        };
        let targets: Vec<RefTarget> = list.iter().map(|(_, t)| t.clone()).collect();
        let answers = kind
            .resolve_refs(forge, ctx, tool, &targets, can_write)
            .await?;
        for ((raw, _), answer) in list.into_iter().zip(answers) {
            let (resolution, key) = answer;
            if let Some(k) = key {
                keys.push(k);
            }
            resolved.insert(raw, resolution);
        }
    }
    keys.sort();
    keys.dedup();
    Ok((resolved, keys))
}
