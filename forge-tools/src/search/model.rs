//! What goes in and comes out of the index: documents, changes, who is searching, a search
//! as asked and its results.

/// A document as the index stores it.
#[derive(Debug, Clone)]
pub struct IndexDoc {
    pub key: String,
    pub kind: String,
    pub project: String,
    pub project_id: String,
    pub tool: String,
    pub tool_id: String,
    pub title: String,
    pub text: String,
    pub author: String,
    pub date: bson::DateTime,
    pub url: String,
    pub read: Vec<String>,
}

/// One change to the index.
#[derive(Debug, Clone)]
pub enum Change {
    /// Adds the document, replacing any with the same key.
    Upsert(IndexDoc),
    Delete(String),
    /// Every document of a project (by project id).
    DeleteProject(String),
    /// Every document of a tool instance (by tool id).
    DeleteTool(String),
}

/// Who is searching.
#[derive(Debug, Clone)]
pub enum Access {
    /// Site admins see everything.
    All,
    /// Documents carrying any of these tokens.
    Tokens(Vec<String>),
}

/// A search as asked.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub q: String,
    pub project: Option<String>,
    pub kind: Option<String>,
    pub tool: Option<String>,
    /// 1-based.
    pub page: usize,
    pub per_page: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Hit {
    #[serde(rename = "type")]
    pub kind: String,
    pub project: String,
    pub mount: String,
    pub url: String,
    pub title: String,
    /// HTML: the text around the match, escaped, matches in `<b>`.
    pub snippet: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub author: String,
    pub date: String,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Results {
    pub total: usize,
    pub hits: Vec<Hit>,
    /// Matches per type and per project, among what the viewer may read.
    pub facets: Facets,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Facets {
    pub types: Vec<(String, u64)>,
    pub projects: Vec<(String, u64)>,
}

/// Deepest page of results served: tantivy collects `page × per_page` hits to skip to a page,
/// so the page number is what bounds that work.
pub const MAX_PAGE: u64 = 500;
