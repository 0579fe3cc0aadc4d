//! Reply tokens: what a notification's `Reply-To: reply+<token>@<mail domain>` carries, so a
//! reply by mail is posted as the person the notification was sent to, on the artifact it was
//! about, whatever the reply's `From` says.
//!
//! A token is signed with HMAC-SHA256 under the site's signing key
//! (`crate::secret::site_secret`) over (user, tool, artifact key, expiry). Those do not fit in
//! an address's local part (64 octets at most, RFC 5321; lettre and many mail systems hold to
//! it), so the token carries a *handle* instead of the user, tool and artifact: the id of a
//! `mail_reply_keys` record naming them, one per (user, tool, artifact), made when the first
//! notification is mailed. The token is handle (12 bytes), expiry (4, Unix seconds, big
//! endian) and the first [`MAC_BYTES`] of the MAC, in lower-case base32 without padding: 45
//! letters and digits, so `reply+<token>` is 51 characters, and a mail system that changes
//! the case of the local part does not break it (decoding ignores case).
//!
//! Verifying reads the record and recomputes the MAC over what it names: a token is good only
//! for the user, tool and artifact it was signed for, until its expiry.

use bson::oid::ObjectId;
use bson::{DateTime, doc};
use hmac::{Hmac, Mac};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::ids::{ToolId, UserId};

/// How long a reply address works after the notification was sent.
pub const VALIDITY_SECS: i64 = 30 * 24 * 3_600;
/// MAC bytes kept: 96 bits, far beyond what anyone can guess by sending mail.
pub const MAC_BYTES: usize = 12;
/// Longest artifact key a token is made for (longer keys get no reply address).
pub const MAX_ARTIFACT: usize = 512;
/// The local part's prefix of reply addresses: `reply+<token>@<mail domain>`.
pub const REPLY_PREFIX: &str = "reply+";
const TOKEN_BYTES: usize = 12 + 4 + MAC_BYTES;
const COLLECTION: &str = "mail_reply_keys";

/// What a reply token stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyToken {
    pub user: UserId,
    pub tool: ToolId,
    /// The artifact's key in its tool (its search and discussion key).
    pub artifact: String,
    /// Unix seconds after which the token is refused.
    pub expires: i64,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the reply address is malformed")]
    Malformed,
    #[error("the reply address's signature does not match")]
    BadSignature,
    #[error("the reply address has expired (replies by mail work for 30 days)")]
    Expired,
}

/// The record a token's handle names.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Key {
    #[serde(rename = "_id")]
    id: ObjectId,
    user_id: UserId,
    tool_id: ToolId,
    artifact: String,
    created: DateTime,
}

fn keys(db: &Database) -> Collection<Key> {
    db.collection(COLLECTION)
}

pub async fn ensure_indexes(db: &Database) -> Result<()> {
    keys(db)
        .create_index(
            IndexModel::builder()
                .keys(doc! {"user_id": 1, "tool_id": 1, "artifact": 1})
                .options(IndexOptions::builder().unique(true).build())
                .build(),
        )
        .await?;
    Ok(())
}

/// The address replies go to.
pub fn reply_address(token: &str, domain: &str) -> String {
    format!("{REPLY_PREFIX}{token}@{domain}")
}

fn mac(
    secret: &[u8],
    handle: ObjectId,
    expires: u32,
    user: UserId,
    tool: ToolId,
    artifact: &str,
) -> Option<[u8; MAC_BYTES]> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(b"reply-token:");
    mac.update(&handle.bytes());
    mac.update(&expires.to_be_bytes());
    mac.update(&user.0.bytes());
    mac.update(&tool.0.bytes());
    mac.update(artifact.as_bytes());
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; MAC_BYTES];
    out.copy_from_slice(&full[..MAC_BYTES]);
    Some(out)
}

/// The token of `handle`, which stands for `t` (its expiry included).
pub fn seal(secret: &[u8], handle: ObjectId, t: &ReplyToken) -> Option<String> {
    let expires = u32::try_from(t.expires).ok()?;
    let tag = mac(secret, handle, expires, t.user, t.tool, &t.artifact)?;
    let mut bytes = Vec::with_capacity(TOKEN_BYTES);
    bytes.extend_from_slice(&handle.bytes());
    bytes.extend_from_slice(&expires.to_be_bytes());
    bytes.extend_from_slice(&tag);
    Some(
        data_encoding::BASE32_NOPAD
            .encode(&bytes)
            .to_ascii_lowercase(),
    )
}

/// A token's parts: the handle, the expiry and the MAC (nothing checked yet).
pub struct Opened {
    pub handle: ObjectId,
    expires: u32,
    tag: [u8; MAC_BYTES],
}

/// Decodes a token (any case).
pub fn open(token: &str) -> Result<Opened, TokenError> {
    if token.is_empty() || token.len() > 64 {
        return Err(TokenError::Malformed);
    }
    let bytes = data_encoding::BASE32_NOPAD
        .decode(token.to_ascii_uppercase().as_bytes())
        .map_err(|_| TokenError::Malformed)?;
    if bytes.len() != TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let mut handle = [0u8; 12];
    handle.copy_from_slice(&bytes[..12]);
    let mut expires = [0u8; 4];
    expires.copy_from_slice(&bytes[12..16]);
    let mut tag = [0u8; MAC_BYTES];
    tag.copy_from_slice(&bytes[16..]);
    Ok(Opened {
        handle: ObjectId::from_bytes(handle),
        expires: u32::from_be_bytes(expires),
        tag,
    })
}

/// Checks an opened token against what its handle names (user, tool, artifact): the MAC
/// first, then the expiry against `now` (Unix seconds).
pub fn check(
    secret: &[u8],
    opened: &Opened,
    user: UserId,
    tool: ToolId,
    artifact: &str,
    now: i64,
) -> Result<ReplyToken, TokenError> {
    let expected = mac(secret, opened.handle, opened.expires, user, tool, artifact)
        .ok_or(TokenError::BadSignature)?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        &expected[..],
        &opened.tag[..],
    )) {
        return Err(TokenError::BadSignature);
    }
    let expires = i64::from(opened.expires);
    if now > expires {
        return Err(TokenError::Expired);
    }
    Ok(ReplyToken {
        user,
        tool,
        artifact: artifact.to_owned(),
        expires,
    })
}

/// A token for `user` replying on `artifact` of `tool`, valid [`VALIDITY_SECS`] from `now`
/// (Unix seconds); `None` when the artifact key is empty or too long to stand for.
pub async fn issue(
    db: &Database,
    secret: &[u8],
    user: UserId,
    tool: ToolId,
    artifact: &str,
    now: i64,
) -> Result<Option<String>> {
    if artifact.is_empty() || artifact.len() > MAX_ARTIFACT {
        return Ok(None);
    }
    let fresh = doc! {"_id": ObjectId::new(), "created": DateTime::now()};
    let filter = doc! {"user_id": user, "tool_id": tool, "artifact": artifact};
    let coll = keys(db);
    let upsert = || {
        coll.find_one_and_update(filter.clone(), doc! {"$setOnInsert": fresh.clone()})
            .upsert(true)
            .return_document(ReturnDocument::After)
    };
    // Two notifications at once: the unique index makes one insert win, the other finds it.
    let key = match upsert().await {
        Ok(k) => k,
        Err(e) if Error::is_duplicate_key(&e) => upsert().await?,
        Err(e) => return Err(e.into()),
    }
    .ok_or(Error::NotFound("reply key"))?;
    let t = ReplyToken {
        user,
        tool,
        artifact: artifact.to_owned(),
        expires: now.saturating_add(VALIDITY_SECS),
    };
    Ok(seal(secret, key.id, &t))
}

/// What a token stands for, once its signature and expiry are checked at `now`.
/// `Ok(Err)`: the token is refused; `Err`: the store failed.
pub async fn verify(
    db: &Database,
    secret: &[u8],
    token: &str,
    now: i64,
) -> Result<Result<ReplyToken, TokenError>> {
    let opened = match open(token) {
        Ok(o) => o,
        Err(e) => return Ok(Err(e)),
    };
    let Some(key) = keys(db).find_one(doc! {"_id": opened.handle}).await? else {
        // No such handle: as good as a wrong signature (handles are not secret, MACs are).
        return Ok(Err(TokenError::BadSignature));
    };
    Ok(check(
        secret,
        &opened,
        key.user_id,
        key.tool_id,
        &key.artifact,
        now,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a site secret for the tests";
    const NOW: i64 = 1_780_000_000;

    fn token_for(artifact: &str) -> (ObjectId, ReplyToken, String) {
        let t = ReplyToken {
            user: UserId::new(),
            tool: ToolId::new(),
            artifact: artifact.to_owned(),
            expires: NOW + VALIDITY_SECS,
        };
        let handle = ObjectId::new();
        let token = seal(SECRET, handle, &t).unwrap();
        (handle, t, token)
    }

    fn check_as(token: &str, t: &ReplyToken, now: i64) -> Result<ReplyToken, TokenError> {
        check(SECRET, &open(token)?, t.user, t.tool, &t.artifact, now)
    }

    #[test]
    fn fits_an_address_and_round_trips_in_any_case() {
        let (handle, t, token) = token_for(&format!("ticket:{}", ObjectId::new().to_hex()));
        assert_eq!(token.len(), 45);
        assert!(reply_address(&token, "x").split('@').next().unwrap().len() <= 64);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{token}"
        );
        assert_eq!(open(&token).unwrap().handle, handle);
        assert_eq!(check_as(&token, &t, NOW), Ok(t.clone()));
        // Mail systems may change the case of a local part.
        assert_eq!(check_as(&token.to_ascii_uppercase(), &t, NOW), Ok(t));
    }

    #[test]
    fn expires_after_thirty_days() {
        let (_, t, token) = token_for("wiki:x");
        assert!(check_as(&token, &t, NOW + VALIDITY_SECS).is_ok());
        assert_eq!(
            check_as(&token, &t, NOW + VALIDITY_SECS + 1),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn binds_the_user_tool_and_artifact_and_refuses_alterations() {
        let (_, t, token) = token_for("ticket:1");
        // Every single changed character is caught.
        for i in 0..token.len() {
            let mut b: Vec<u8> = token.clone().into_bytes();
            b[i] = if b[i] == b'a' { b'b' } else { b'a' };
            let altered = String::from_utf8(b).unwrap();
            assert!(check_as(&altered, &t, NOW).is_err(), "changed at {i}");
        }
        // Good for what it was signed for only.
        let other_user = ReplyToken {
            user: UserId::new(),
            ..t.clone()
        };
        assert_eq!(
            check_as(&token, &other_user, NOW),
            Err(TokenError::BadSignature)
        );
        let other_artifact = ReplyToken {
            artifact: "ticket:2".into(),
            ..t.clone()
        };
        assert_eq!(
            check_as(&token, &other_artifact, NOW),
            Err(TokenError::BadSignature)
        );
        let opened = open(&token).unwrap();
        assert_eq!(
            check(b"another site", &opened, t.user, t.tool, &t.artifact, NOW),
            Err(TokenError::BadSignature)
        );
        for bad in ["", "not base32!", "aaaa", &"a".repeat(44), &"a".repeat(100)] {
            assert!(open(bad).is_err(), "{bad}");
        }
    }
}
