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

pub(super) fn link_key(tool: &ToolInstance, name: &str) -> String {
    format!("wiki:{}:{}", tool.id, name)
}
