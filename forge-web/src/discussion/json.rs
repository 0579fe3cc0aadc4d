//! A post as the REST API shows it (the tracker's and the forum's comment lists use it).

use forge_tools::discussion::Post;
use serde::Serialize;
use utoipa::ToSchema;

fn rfc3339(d: bson::DateTime) -> Option<String> {
    d.try_to_rfc3339_string().ok()
}

/// `{id, parent, author, text, status, created, edited}`: ids as hex strings, times as
/// RFC 3339 (`edited` is null for a post never edited).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PostJson {
    pub id: String,
    pub parent: Option<String>,
    pub author: String,
    pub text: String,
    /// `ok`, `pending` or `spam`.
    pub status: String,
    pub created: Option<String>,
    pub edited: Option<String>,
}

pub fn post_json(p: &Post) -> PostJson {
    PostJson {
        id: p.id.to_hex(),
        parent: p.parent.map(|id| id.to_hex()),
        author: p.author.clone(),
        text: p.text.clone(),
        status: p.status.as_str().to_owned(),
        created: rfc3339(p.created),
        edited: p.edited.and_then(rfc3339),
    }
}
