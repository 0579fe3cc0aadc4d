//! The link tool: a menu entry pointing elsewhere (a homepage, a mailing list), like Allura's
//! "External Link" tool. Its page redirects to the URL.

use async_trait::async_trait;
use bson::{Document, doc};

use crate::error::{Error, Result};
use crate::projects::Project;
use crate::tool::{NavEntry, Tool, ToolInstance};

/// The kind name stored on instances.
pub const KIND: &str = "link";

pub struct LinkTool;

impl LinkTool {
    pub fn url(tool: &ToolInstance) -> Option<&str> {
        tool.options.get_str("url").ok()
    }
}

#[async_trait]
impl Tool for LinkTool {
    fn kind(&self) -> &'static str {
        KIND
    }
    fn title(&self) -> &'static str {
        "External link"
    }
    fn default_label(&self) -> &'static str {
        "Link"
    }
    fn default_mount(&self) -> &'static str {
        "link"
    }
    fn permissions(&self) -> &'static [&'static str] {
        &[crate::acl::perm::READ, crate::acl::perm::ADMIN]
    }
    fn options(&self, given: &serde_json::Value) -> Result<Document> {
        let url = given
            .get("url")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .trim();
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && url.len() <= 2000
            && !url.contains(char::is_whitespace);
        if !ok {
            return Err(Error::invalid(
                "url",
                "Give an http:// or https:// URL for the link",
            ));
        }
        Ok(doc! {"url": url})
    }
    fn nav(&self, project: &Project, tool: &ToolInstance) -> Vec<NavEntry> {
        vec![NavEntry {
            label: tool.label.clone(),
            url: Self::url(tool).map_or_else(
                || format!("{}{}/", project.url(), tool.mount),
                str::to_owned,
            ),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_urls_are_accepted() {
        let t = LinkTool;
        assert!(
            t.options(&serde_json::json!({"url": "https://example.org/x"}))
                .is_ok()
        );
        assert!(
            t.options(&serde_json::json!({"url": "javascript:alert(1)"}))
                .is_err()
        );
        assert!(t.options(&serde_json::json!({})).is_err());
    }
}
