//! The thread reference a post form carries, signed: a tool's page names the artifact a
//! thread belongs to (key, title, URL) when it renders the form, and the first post creates
//! the thread from what the form sends back. The signature, made with the site's secret over
//! the tool, key, title and URL, keeps a forged form from naming a thread after something
//! else or sending readers (and mail) to another address.
//!
//! The secret is the site signing key the unsubscribe links use (`settings.signing_key`,
//! created on first use and shared by every node through the store). `forge-tools` keeps
//! its accessor private and this crate has no HMAC crate, so the key is read here and the
//! tag is a nested keyed SHA-256 (`H(outer ‖ key ‖ H(inner ‖ key ‖ message))`, the
//! construction HMAC refines; the fixed-length outer input leaves no room for length
//! extension), over length-prefixed fields so no two references share a message.

use bson::doc;
use forge_tools::discussion::ThreadRef;
use forge_tools::ids::ToolId;
use forge_tools::secret::digest;
use forge_tools::{Error, Forge};
use subtle::ConstantTimeEq;

/// Where the site's signing key lives (the document `notify` creates on first use).
const SETTINGS: &str = "settings";
const KEY_ID: &str = "signing_key";

/// The site's signing key, created on first use; of two nodes racing, the first insert wins.
async fn site_key(forge: &Forge) -> Result<String, Error> {
    let coll = forge.db().collection::<bson::Document>(SETTINGS);
    let id = doc! {"_id": KEY_ID};
    if let Some(d) = coll.find_one(id.clone()).await? {
        return Ok(d.get_str("value").unwrap_or_default().to_owned());
    }
    coll.update_one(
        id.clone(),
        doc! {"$setOnInsert": {"value": forge_tools::secret::random_token("")}},
    )
    .upsert(true)
    .await?;
    let d = coll
        .find_one(id)
        .await?
        .ok_or_else(|| Error::Internal("signing key missing".into()))?;
    Ok(d.get_str("value").unwrap_or_default().to_owned())
}

fn tag(key: &str, tool: ToolId, r: &ThreadRef) -> String {
    let mut message = String::from("forge-discussion-thread");
    for field in [tool.to_string().as_str(), &r.artifact, &r.title, &r.url] {
        message.push_str(&format!("\0{}:{field}", field.len()));
    }
    let inner = digest(&format!("inner\0{key}\0{message}"));
    digest(&format!("outer\0{key}\0{inner}"))
}

/// The signature of a thread reference of `tool`.
pub async fn sign(forge: &Forge, tool: ToolId, r: &ThreadRef) -> Result<String, Error> {
    let key = site_key(forge).await?;
    if key.is_empty() {
        return Err(Error::Internal("empty signing key".into()));
    }
    Ok(tag(&key, tool, r))
}

/// Whether `sig` is the signature of the reference.
pub async fn verify(forge: &Forge, tool: ToolId, r: &ThreadRef, sig: &str) -> Result<bool, Error> {
    let expected = sign(forge, tool, r).await?;
    Ok(bool::from(expected.as_bytes().ct_eq(sig.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(artifact: &str, title: &str, url: &str) -> ThreadRef {
        ThreadRef {
            artifact: artifact.into(),
            title: title.into(),
            url: url.into(),
        }
    }

    #[test]
    fn tags_bind_every_field() {
        let tool = ToolId::new();
        let a = tag("k", tool, &r("wiki:1", "page A", "/p/x/wiki/A/"));
        assert_eq!(a, tag("k", tool, &r("wiki:1", "page A", "/p/x/wiki/A/")));
        assert_ne!(a, tag("k2", tool, &r("wiki:1", "page A", "/p/x/wiki/A/")));
        assert_ne!(
            a,
            tag("k", ToolId::new(), &r("wiki:1", "page A", "/p/x/wiki/A/"))
        );
        assert_ne!(a, tag("k", tool, &r("wiki:2", "page A", "/p/x/wiki/A/")));
        assert_ne!(a, tag("k", tool, &r("wiki:1", "page B", "/p/x/wiki/A/")));
        assert_ne!(a, tag("k", tool, &r("wiki:1", "page A", "https://evil/")));
        // Moving text from one field to the next changes the message.
        assert_ne!(
            tag("k", tool, &r("ab", "c", "/")),
            tag("k", tool, &r("a", "bc", "/"))
        );
    }
}
