//! What the wiki's handlers share: the wiki's own permission, its navigation, page URLs, and
//! the path of an attachment.

use forge_tools::acl::perm;
use forge_tools::tools::wiki;
use serde::Deserialize;

use super::templates::WikiNav;
use crate::ctx::{Permission, ToolReq};

/// Deleting and restoring pages (the wiki's own permission).
#[derive(Clone, Copy)]
pub struct Delete;

impl Permission for Delete {
    const NAME: &'static str = wiki::DELETE;
}

pub fn nav<P>(t: &ToolReq<P>) -> WikiNav {
    WikiNav {
        base: t.base.clone(),
        project: t.ctx.project.shortname.clone(),
        mount: t.tool.mount.clone(),
        home: wiki::encode_name(&wiki::home_page(&t.tool)),
        can_write: t.can(perm::WRITE),
        can_admin: t.can(perm::ADMIN),
    }
}

/// A page's URL (with a trailing slash).
pub fn page_url<P>(t: &ToolReq<P>, name: &str) -> String {
    wiki::page_url(&t.ctx.project, &t.tool, name)
}

/// Where a page is edited (or written, when it does not exist yet).
pub fn edit_url<P>(t: &ToolReq<P>, name: &str) -> String {
    format!("{}edit", page_url(t, name))
}

/// Who to show for a change: its author, or the forge itself for changes nobody made.
pub fn author_or_forge(author: String) -> String {
    if author.is_empty() {
        "Forge".into()
    } else {
        author
    }
}

/// The path of one attachment.
#[derive(Deserialize)]
pub struct FilePath {
    pub page: String,
    pub file: String,
}
