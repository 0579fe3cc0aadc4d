//! Where wiki pages are: the configured home page, page names as URL segments, page URLs and
//! the backlink keys references to pages are recorded under.

use crate::projects::Project;
use crate::tool::ToolInstance;

use super::DEFAULT_HOME;

/// The wiki's configured home page.
pub fn home_page(tool: &ToolInstance) -> String {
    tool.options
        .get_str("home")
        .unwrap_or(DEFAULT_HOME)
        .to_owned()
}

/// A page name as a URL path segment (the platform's encoding of artifact names, so the
/// links cross-references make and the wiki's own URLs agree).
pub fn encode_name(name: &str) -> String {
    crate::tool::xref::encode_segment(name)
}

pub fn page_url(project: &Project, tool: &ToolInstance, name: &str) -> String {
    format!("{}{}/{}/", project.url(), tool.mount, encode_name(name))
}

pub(super) fn link_key(tool: &ToolInstance, name: &str) -> String {
    format!("wiki:{}:{}", tool.id, name)
}
