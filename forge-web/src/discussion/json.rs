//! A post as the REST API shows it (the tracker's and the forum's comment lists use it).

use forge_tools::discussion::Post;
use serde_json::{Value, json};

fn rfc3339(d: bson::DateTime) -> Value {
    d.try_to_rfc3339_string().map_or(Value::Null, Value::String)
}

/// `{id, parent, author, text, status, created, edited}`: ids as hex strings, times as
/// RFC 3339 (`edited` is null for a post never edited).
pub fn post_json(p: &Post) -> Value {
    json!({
        "id": p.id.to_hex(),
        "parent": p.parent.map(|id| id.to_hex()),
        "author": p.author,
        "text": p.text,
        "status": p.status.as_str(),
        "created": rfc3339(p.created),
        "edited": p.edited.map_or(Value::Null, rfc3339),
    })
}
