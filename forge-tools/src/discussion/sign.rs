//! The thread reference a post form carries, signed: a tool's page names the artifact a
//! thread belongs to (key, title, URL) when it renders the form, and the first post creates
//! the thread from what the form sends back. The signature, an HMAC-SHA256 keyed with the
//! site's secret ([`crate::secret::site_secret`], the key of the unsubscribe links too) over
//! the tool, key, title and URL, keeps a forged form from naming a thread after something
//! else or sending readers (and mail) to another address. The fields are length-prefixed, so
//! no two references share a message.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::actions::ThreadRef;
use crate::error::{Error, Result};
use crate::ids::ToolId;
use crate::tool::Forge;

/// What the MAC covers: a label (so no other signed message of the site can pass for a
/// reference), then each field as `\0<length>:<field>`.
fn message(tool: ToolId, r: &ThreadRef) -> String {
    let mut message = String::from("forge-discussion-thread");
    for field in [tool.to_string().as_str(), &r.artifact, &r.title, &r.url] {
        message.push_str(&format!("\0{}:{field}", field.len()));
    }
    message
}

/// The MAC of a reference under `key`, before finalizing. HMAC takes a key of any length, so
/// this fails only if that ever changes.
fn mac(key: &[u8], tool: ToolId, r: &ThreadRef) -> Result<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map_err(|e| Error::Internal(format!("signing key: {e}")))?;
    mac.update(message(tool, r).as_bytes());
    Ok(mac)
}

/// The tag of a reference under `key`, in hex.
fn tag(key: &[u8], tool: ToolId, r: &ThreadRef) -> Result<String> {
    Ok(hex::encode(mac(key, tool, r)?.finalize().into_bytes()))
}

/// Whether `sig` (hex) is the tag of the reference under `key`, compared in constant time.
fn check(key: &[u8], tool: ToolId, r: &ThreadRef, sig: &str) -> Result<bool> {
    let Ok(sig) = hex::decode(sig.trim()) else {
        return Ok(false);
    };
    Ok(mac(key, tool, r)?.verify_slice(&sig).is_ok())
}

/// The signature of a thread reference of the tool `tool` (hex HMAC-SHA256 under the site's
/// secret).
pub async fn sign_ref(forge: &Forge, tool: ToolId, r: &ThreadRef) -> Result<String> {
    let key = crate::secret::site_secret(forge.db()).await?;
    tag(&key, tool, r)
}

/// Whether `sig` is the signature of the reference for the tool `tool` (constant-time).
pub async fn verify_ref(forge: &Forge, tool: ToolId, r: &ThreadRef, sig: &str) -> Result<bool> {
    let key = crate::secret::site_secret(forge.db()).await?;
    check(&key, tool, r, sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(artifact: &str, title: &str, url: &str) -> ThreadRef {
        ThreadRef {
            artifact: artifact.into(),
            title: title.into(),
            url: url.into(),
            also: Vec::new(),
        }
    }

    fn t(key: &str, tool: ToolId, r: &ThreadRef) -> String {
        tag(key.as_bytes(), tool, r).unwrap()
    }

    fn ok(key: &str, tool: ToolId, r: &ThreadRef, sig: &str) -> bool {
        check(key.as_bytes(), tool, r, sig).unwrap()
    }

    #[test]
    fn tags_bind_every_field() {
        let tool = ToolId::new();
        let a = t("k", tool, &r("wiki:1", "page A", "/p/x/wiki/A/"));
        assert_eq!(a, t("k", tool, &r("wiki:1", "page A", "/p/x/wiki/A/")));
        assert_ne!(a, t("k2", tool, &r("wiki:1", "page A", "/p/x/wiki/A/")));
        assert_ne!(
            a,
            t("k", ToolId::new(), &r("wiki:1", "page A", "/p/x/wiki/A/"))
        );
        assert_ne!(a, t("k", tool, &r("wiki:2", "page A", "/p/x/wiki/A/")));
        assert_ne!(a, t("k", tool, &r("wiki:1", "page B", "/p/x/wiki/A/")));
        assert_ne!(a, t("k", tool, &r("wiki:1", "page A", "https://evil/")));
        // Moving text from one field to the next changes the message.
        assert_ne!(
            t("k", tool, &r("ab", "c", "/")),
            t("k", tool, &r("a", "bc", "/"))
        );
    }

    #[test]
    fn tags_are_hmac_sha256() {
        // RFC 4231, test case 2: the primitive is the standard HMAC-SHA256.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // And a tag is that MAC of the reference's message.
        let tool = ToolId::new();
        let reference = r("wiki:1", "page A", "/p/x/wiki/A/");
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"k").unwrap();
        m.update(message(tool, &reference).as_bytes());
        assert_eq!(
            t("k", tool, &reference),
            hex::encode(m.finalize().into_bytes())
        );
    }

    #[test]
    fn only_the_exact_tag_verifies() {
        let tool = ToolId::new();
        let reference = r("wiki:1", "page A", "/p/x/wiki/A/");
        let good = t("k", tool, &reference);
        assert_eq!(good.len(), 64);
        assert!(ok("k", tool, &reference, &good));
        assert!(!ok("k2", tool, &reference, &good));
        assert!(!ok("k", ToolId::new(), &reference, &good));
        assert!(!ok(
            "k",
            tool,
            &r("wiki:2", "page A", "/p/x/wiki/A/"),
            &good
        ));
        assert!(!ok("k", tool, &reference, &good[..62]));
        assert!(!ok("k", tool, &reference, &format!("{good}00")));
        assert!(!ok("k", tool, &reference, ""));
        assert!(!ok("k", tool, &reference, "not hex"));
        let mut flipped = good.into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        assert!(!ok(
            "k",
            tool,
            &reference,
            &String::from_utf8(flipped).unwrap()
        ));
    }
}
